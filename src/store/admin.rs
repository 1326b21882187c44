//! What an operator does by hand: fail or requeue outbox messages (one by one
//! or every one pinned to a modem that is gone), and purge rows nothing needs
//! any more. Each call is one transaction, and keeps rule 4: a part that may
//! have left is never queued again unless the caller says so.

use rusqlite::{Connection, params};

use super::error::StoreError;
use super::notices::{FailureCause, set_failure_cause};
use super::outbox::{MessageId, MessageState, PartId, refresh_message};
use super::sending::PartRow;
use super::{Store, UnixTime};

/// A part of a message an operator acts on.
struct HeldPart {
    row: PartRow,
    state: String,
    /// The part may have left the modem: it is being sent, its outcome is
    /// unknown, or it once was (a charging record says `unknown`).
    may_have_left: bool,
}

/// The states a part is in once it left the modem for sure.
const OUT: [&str; 3] = ["sent", "delivered", "delivery_unknown"];

fn message_state(tx: &Connection, id: MessageId) -> Result<MessageState, StoreError> {
    let state: Option<String> = rusqlite::OptionalExtension::optional(
        tx.prepare_cached("SELECT state FROM messages WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0)),
    )?;
    state
        .map(|s| MessageState::from_db(&s))
        .ok_or(StoreError::NotFound {
            what: "message",
            id: id.0,
        })
}

fn parts_of(tx: &Connection, id: MessageId) -> Result<Vec<HeldPart>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT p.id, p.seq, p.modem_imsi, p.state, p.state IN ('sending', 'outcome_unknown') \
         OR EXISTS (SELECT 1 FROM charging_records c WHERE c.message_id = p.message_id \
                    AND c.seq = p.seq AND c.result = 'unknown') \
         FROM parts p WHERE p.message_id = ?1 ORDER BY p.seq",
    )?;
    let rows = stmt.query_map([id.0], |r| {
        Ok(HeldPart {
            row: PartRow {
                id: PartId(r.get(0)?),
                message: id,
                seq: r.get(1)?,
                modem_imsi: r.get(2)?,
            },
            state: r.get(3)?,
            may_have_left: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Refuses a message that is already final or waits for its status reports.
fn check_open(id: MessageId, state: MessageState, verb: &str) -> Result<(), StoreError> {
    let why = match state {
        MessageState::Queued | MessageState::Sending | MessageState::OutcomeUnknown => {
            return Ok(());
        }
        MessageState::Failed if verb == "requeue" => return Ok(()),
        MessageState::Sent => "every part went out; it ends when its status reports come \
                               or their window is over"
            .to_owned(),
        other => format!("it is {other} already"),
    };
    Err(StoreError::InvalidInput(format!(
        "cannot {verb} message {}: {why}",
        id.0
    )))
}

/// What [`Store::purge`] deleted (or, for a dry run, would delete), per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    /// Outbox messages: delivered, failed or delivery unknown, and notified.
    pub messages: usize,
    /// Their parts.
    pub parts: usize,
    /// Inbound messages delivered or expired.
    pub inbound: usize,
    /// Raw PDUs nothing refers to any more.
    pub inbox_pdus: usize,
    /// Charging records with their final outcome.
    pub charging_records: usize,
}

/// Outbox messages that are over and told: final, notified, last changed
/// before the cutoff `?1`.
const OLD_MESSAGES: &str = "SELECT id FROM messages WHERE state IN ('delivered', 'failed', 'delivery_unknown') \
     AND notified_at IS NOT NULL AND updated_at < ?1";

/// Inbound messages that are over: delivered or expired before the cutoff `?1`.
const OLD_INBOUND: &str = "SELECT id FROM inbound WHERE state IN ('delivered', 'expired') \
     AND coalesce(delivered_at, received_at) < ?1";

fn purge_in(tx: &Connection, cutoff: UnixTime) -> Result<Purged, StoreError> {
    let c = cutoff.0;
    let parts: i64 = tx.query_row(
        &format!("SELECT count(*) FROM parts WHERE message_id IN ({OLD_MESSAGES})"),
        [c],
        |r| r.get(0),
    )?;
    let parts = usize::try_from(parts).unwrap_or(0);
    // Parts go with their message (ON DELETE CASCADE).
    let messages = tx.execute(
        &format!("DELETE FROM messages WHERE id IN ({OLD_MESSAGES})"),
        [c],
    )?;
    // Raw PDUs: those of purged inbound messages, and old ones that belong to
    // no message; never a part still held for reassembly, nor a status report
    // not applied yet, nor the PDUs of a message not over.
    let inbox_pdus = tx.execute(
        &format!(
            "DELETE FROM inbox_pdus WHERE id NOT IN (SELECT pdu_id FROM reassembly) \
             AND NOT (kind = 'status_report' AND report_applied IS NULL) \
             AND (inbound_id IN ({OLD_INBOUND}) OR (inbound_id IS NULL AND received_at < ?1))"
        ),
        [c],
    )?;
    let inbound = tx.execute(
        &format!(
            "DELETE FROM inbound WHERE id IN ({OLD_INBOUND}) \
             AND id NOT IN (SELECT inbound_id FROM inbox_pdus WHERE inbound_id IS NOT NULL)"
        ),
        [c],
    )?;
    // A record still waiting for its outcome (a submitted part, a message
    // received and not delivered yet) is kept.
    let charging_records = tx.execute(
        "DELETE FROM charging_records WHERE at < ?1 \
         AND (outcome IS NOT NULL OR result IN ('failed', 'unknown'))",
        [c],
    )?;
    Ok(Purged {
        messages,
        parts,
        inbound,
        inbox_pdus,
        charging_records,
    })
}

impl Store {
    /// Fails a message by hand with `reason`: its parts not gone out (queued,
    /// being sent, outcome unknown) fail, it gets its cause (`outcome_unknown`
    /// when a part may have left, else `not_sent`), and its sender's
    /// notification is due like any failure's. A message that went out or is
    /// final already is refused.
    pub fn fail_message(
        &mut self,
        id: MessageId,
        reason: &str,
        now: UnixTime,
    ) -> Result<MessageState, StoreError> {
        self.write(|tx| {
            check_open(id, message_state(tx, id)?, "fail")?;
            let parts = parts_of(tx, id)?;
            let mut cause = FailureCause::NotSent;
            for p in &parts {
                if OUT.contains(&p.state.as_str()) || p.state == "failed" {
                    continue;
                }
                if p.state == "sending" {
                    let why = format!("outcome unknown: {reason}");
                    super::cdr::record(tx, &p.row, None, "unknown", Some(&why), now)?;
                }
                if p.may_have_left {
                    cause = FailureCause::OutcomeUnknown;
                }
                tx.prepare_cached(
                    "UPDATE parts SET state = 'failed', last_error = ?2 WHERE id = ?1",
                )?
                .execute(params![p.row.id.0, reason])?;
            }
            tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
                .execute(params![id.0, reason])?;
            set_failure_cause(tx, id, cause)?;
            Ok(refresh_message(tx, id, now)?.1)
        })
    }

    /// Queues a message again by hand: its parts that did not reach the phone
    /// (queued, failed, being sent, outcome unknown) are due now, its cause
    /// and notification start afresh, and it may go out through any modem
    /// unless a part already went out through one. With `leave_modem`, the
    /// message must leave its modem (gone for good): every part is sent again,
    /// those that went out too. A part that may have left, or that is sent
    /// again, needs `even_if_sent` (rule 4: never send twice blindly).
    /// Returns how many parts were queued.
    pub fn requeue_message(
        &mut self,
        id: MessageId,
        even_if_sent: bool,
        leave_modem: bool,
        now: UnixTime,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            check_open(id, message_state(tx, id)?, "requeue")?;
            let parts = parts_of(tx, id)?;
            let went_out = parts.iter().any(|p| OUT.contains(&p.state.as_str()));
            let chosen: Vec<&HeldPart> = parts
                .iter()
                .filter(|p| (leave_modem && went_out) || !OUT.contains(&p.state.as_str()))
                .collect();
            let risky: Vec<String> = chosen
                .iter()
                .filter(|p| p.may_have_left || OUT.contains(&p.state.as_str()))
                .map(|p| p.row.seq.to_string())
                .collect();
            if !risky.is_empty() && !even_if_sent {
                return Err(StoreError::InvalidInput(format!(
                    "message {}: part {} may have been sent already; requeue with --even-if-sent \
                     to send it again anyway (the phone may get it twice)",
                    id.0,
                    risky.join(", ")
                )));
            }
            for p in &chosen {
                tx.prepare_cached(
                    "UPDATE parts SET state = 'queued', next_attempt_at = ?2, modem_imsi = NULL, \
                     mr = NULL, sent_at = NULL, claimed_at = NULL WHERE id = ?1",
                )?
                .execute(params![p.row.id.0, now.0])?;
            }
            tx.prepare_cached(
                "UPDATE messages SET fail_cause = NULL, notified_at = NULL, notify_attempts = 0, \
                 notify_next_at = 0, modem_imsi = CASE WHEN ?2 THEN NULL ELSE modem_imsi END \
                 WHERE id = ?1",
            )?
            .execute(params![id.0, leave_modem])?;
            refresh_message(tx, id, now)?;
            Ok(chosen.len())
        })
    }

    /// Messages not over yet (queued, sending, outcome unknown) whose parts are
    /// pinned to `modem_imsi`, oldest first.
    pub fn messages_on_modem(&self, modem_imsi: &str) -> Result<Vec<MessageId>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM messages WHERE modem_imsi = ?1 \
             AND state IN ('queued', 'sending', 'outcome_unknown') ORDER BY id",
        )?;
        let rows = stmt.query_map([modem_imsi], |r| Ok(MessageId(r.get(0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes what is over and older than `cutoff`: outbox messages that are
    /// final and whose sender was told, with their parts; inbound messages
    /// delivered or expired; raw PDUs that belong to nothing kept; charging
    /// records with their final outcome. Never a part waiting for its status
    /// report, a notification not sent, a status report not applied, a part
    /// held for reassembly or an inbound message still pending. With `dry_run`
    /// the same deletes run and are rolled back: the counts are the ones a real
    /// run would give now.
    pub fn purge(&mut self, cutoff: UnixTime, dry_run: bool) -> Result<Purged, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let purged = purge_in(&tx, cutoff)?;
        if dry_run {
            tx.rollback()?;
        } else {
            tx.commit()?;
        }
        Ok(purged)
    }
}
