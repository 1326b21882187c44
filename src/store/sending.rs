//! The results of sending a part, as the modem worker reports them, and the
//! policy calls for parts whose outcome is unknown (rule 4). Each call is one
//! transaction that also writes the charging record and the message's state.

use rusqlite::{Connection, OptionalExtension, params};

use super::contacts::record_conversation;
use super::error::StoreError;
use super::notices::{FailureCause, set_failure_cause};
use super::outbox::{MessageId, MessageState, PartId, Retry, refresh_message};
use super::users::UserId;
use super::{Store, UnixTime};

/// The part row a result call is about, which must be in `expected` state.
pub(super) struct PartRow {
    pub(super) id: PartId,
    pub(super) message: MessageId,
    pub(super) seq: u8,
    pub(super) modem_imsi: Option<String>,
}

fn part_in_state(
    tx: &Connection,
    part: PartId,
    expected: &'static str,
) -> Result<PartRow, StoreError> {
    let (state, row): (String, PartRow) = tx
        .prepare_cached("SELECT state, message_id, seq, modem_imsi FROM parts WHERE id = ?1")?
        .query_row([part.0], |r| {
            Ok((
                r.get(0)?,
                PartRow {
                    id: part,
                    message: MessageId(r.get(1)?),
                    seq: r.get(2)?,
                    modem_imsi: r.get(3)?,
                },
            ))
        })
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "part",
            id: part.0,
        })?;
    if state != expected {
        return Err(StoreError::WrongState {
            what: "part",
            id: part.0,
            state,
            expected,
        });
    }
    Ok(row)
}

/// Fails the parts of a message that have not gone out, after one failed for good.
pub(super) fn fail_rest(tx: &Connection, message: MessageId, seq: u8) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE parts SET state = 'failed', last_error = ?2 WHERE message_id = ?1 AND state = 'queued'",
    )?
    .execute(params![message.0, format!("not sent: part {seq} failed")])?;
    Ok(())
}

fn mark_unknown(
    tx: &Connection,
    p: &PartRow,
    why: &str,
    now: UnixTime,
) -> Result<MessageState, StoreError> {
    tx.prepare_cached("UPDATE parts SET state = 'outcome_unknown', last_error = ?2 WHERE id = ?1")?
        .execute(params![p.id.0, why])?;
    tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
        .execute(params![p.message.0, why])?;
    super::cdr::record(tx, p, None, "unknown", Some(why), now)?;
    Ok(refresh_message(tx, p.message, now)?.1)
}

impl Store {
    /// The modem accepted the part (`+CMGS: <mr>`). Writes the charging record and
    /// the conversation in the same transaction. Returns the message's new state.
    /// A part of a message that asked for no status report ends as delivery
    /// unknown at once: no report will come to say more.
    pub fn part_sent(
        &mut self,
        part: PartId,
        mr: u8,
        now: UnixTime,
    ) -> Result<MessageState, StoreError> {
        self.write(|tx| {
            let p = part_in_state(tx, part, "sending")?;
            tx.prepare_cached(
                "UPDATE parts SET state = 'sent', mr = ?2, sent_at = ?3 WHERE id = ?1",
            )?
            .execute(params![part.0, mr, now.0])?;
            super::cdr::record(tx, &p, Some(mr), "submitted", None, now)?;
            let (user, subscriber, report_requested): (Option<i64>, i64, bool) = tx
                .prepare_cached(
                    "SELECT user_id, subscriber_id, report_requested FROM messages WHERE id = ?1",
                )?
                .query_row([p.message.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            if let Some(user) = user {
                record_conversation(tx, UserId(user), subscriber, p.modem_imsi.as_deref(), now)?;
            }
            if !report_requested {
                let why = "no status report was requested";
                return Ok(super::reports::end_delivery_unknown(tx, &p, why, now)?.1);
            }
            Ok(refresh_message(tx, p.message, now)?.1)
        })
    }

    /// Sending the part failed with `error`: queue it again at a time, or give up
    /// (which fails the message and its parts not sent yet). Returns the message's new state.
    pub fn part_failed(
        &mut self,
        part: PartId,
        error: &str,
        retry: Retry,
        now: UnixTime,
    ) -> Result<MessageState, StoreError> {
        self.write(|tx| {
            let p = part_in_state(tx, part, "sending")?;
            match retry {
                Retry::At(at) => tx
                    .prepare_cached(
                        "UPDATE parts SET state = 'queued', next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                    )?
                    .execute(params![part.0, at.0, error])?,
                Retry::Never => tx
                    .prepare_cached("UPDATE parts SET state = 'failed', last_error = ?2 WHERE id = ?1")?
                    .execute(params![part.0, error])?,
            };
            match retry {
                Retry::Never => {
                    fail_rest(tx, p.message, p.seq)?;
                    set_failure_cause(tx, p.message, FailureCause::NotSent)?;
                }
                // The message backs off as a whole, so its parts still go out
                // together and through one modem.
                Retry::At(at) => {
                    tx.prepare_cached(
                        "UPDATE parts SET next_attempt_at = max(next_attempt_at, ?2) \
                         WHERE message_id = ?1 AND state = 'queued'",
                    )?
                    .execute(params![p.message.0, at.0])?;
                }
            }
            tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
                .execute(params![p.message.0, error])?;
            super::cdr::record(tx, &p, None, "failed", Some(error), now)?;
            Ok(refresh_message(tx, p.message, now)?.1)
        })
    }

    /// The PDU may have left but no final result came (rule 4): the part is
    /// recorded as outcome_unknown and never retried by itself.
    pub fn part_outcome_unknown(
        &mut self,
        part: PartId,
        now: UnixTime,
    ) -> Result<MessageState, StoreError> {
        self.write(|tx| {
            let p = part_in_state(tx, part, "sending")?;
            mark_unknown(
                tx,
                &p,
                "outcome unknown: no final result from the modem",
                now,
            )
        })
    }

    /// For a worker that (re)starts: parts this modem had claimed are in an unknown
    /// state, since a crash may have come after the PDU left and before `+CMGS`
    /// was recorded. They become outcome_unknown (never silently re-sent); the
    /// policy then calls `requeue_unknown` or `fail_unknown`. Returns how many.
    pub fn release_claims(&mut self, modem_imsi: &str, now: UnixTime) -> Result<usize, StoreError> {
        self.write(|tx| {
            let parts: Vec<PartRow> = tx
                .prepare_cached(
                    "SELECT id, message_id, seq FROM parts WHERE state = 'sending' AND modem_imsi = ?1",
                )?
                .query_map([modem_imsi], |r| {
                    Ok(PartRow {
                        id: PartId(r.get(0)?),
                        message: MessageId(r.get(1)?),
                        seq: r.get(2)?,
                        modem_imsi: Some(modem_imsi.to_owned()),
                    })
                })?
                .collect::<Result<_, _>>()?;
            for p in &parts {
                mark_unknown(tx, p, "outcome unknown: the worker stopped while sending", now)?;
            }
            Ok(parts.len())
        })
    }

    /// Policy "send again": the message's outcome_unknown parts are queued, due
    /// now. Returns how many. The recipient may get those parts twice.
    pub fn requeue_unknown(
        &mut self,
        message: MessageId,
        now: UnixTime,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE parts SET state = 'queued', next_attempt_at = ?2 \
                     WHERE message_id = ?1 AND state = 'outcome_unknown'",
                )?
                .execute(params![message.0, now.0])?;
            refresh_message(tx, message, now)?;
            Ok(n)
        })
    }

    /// Policy "give up": the message's outcome_unknown parts, and the parts not
    /// sent yet, fail. Returns how many unknown parts there were.
    pub fn fail_unknown(&mut self, message: MessageId, now: UnixTime) -> Result<usize, StoreError> {
        self.write(|tx| {
            let first: Option<u8> = tx
                .prepare_cached(
                    "SELECT min(seq) FROM parts WHERE message_id = ?1 AND state = 'outcome_unknown'",
                )?
                .query_row([message.0], |r| r.get(0))?;
            let n = tx
                .prepare_cached(
                    "UPDATE parts SET state = 'failed', last_error = 'outcome unknown, given up' \
                     WHERE message_id = ?1 AND state = 'outcome_unknown'",
                )?
                .execute([message.0])?;
            if let Some(seq) = first {
                fail_rest(tx, message, seq)?;
                set_failure_cause(tx, message, FailureCause::OutcomeUnknown)?;
            }
            refresh_message(tx, message, now)?;
            Ok(n)
        })
    }

    /// Expiry: parts still queued of messages queued before `before` (no modem
    /// could send them in time, or their modem never came back) fail, and so do
    /// their messages. Returns the messages that became failed, for negative
    /// delivery notifications.
    pub fn expire_queued(
        &mut self,
        before: UnixTime,
        now: UnixTime,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.write(|tx| {
            let ids: Vec<i64> = tx
                .prepare_cached(
                    "SELECT DISTINCT m.id FROM messages m JOIN parts p ON p.message_id = m.id \
                     WHERE p.state = 'queued' AND m.created_at < ?1 AND m.state IN ('queued', 'sending')",
                )?
                .query_map([before.0], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut failed = Vec::new();
            for id in ids {
                tx.prepare_cached(
                    "UPDATE parts SET state = 'failed', last_error = 'expired before it could be sent' \
                     WHERE message_id = ?1 AND state = 'queued'",
                )?
                .execute([id])?;
                set_failure_cause(tx, MessageId(id), FailureCause::Expired)?;
                let (old, new) = refresh_message(tx, MessageId(id), now)?;
                if new == MessageState::Failed && old != MessageState::Failed {
                    failed.push(MessageId(id));
                }
            }
            Ok(failed)
        })
    }
}
