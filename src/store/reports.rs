//! Status reports: matching a `+CDS` to the part it is about, and what it means
//! for the message (delivered when every part is, failed as soon as one part is);
//! and the end of waiting for them: a part whose report did not come within the
//! report window ends as delivery unknown ([`Store::end_overdue_reports`]).

use rusqlite::{OptionalExtension, params};

use super::cdr::{PartOutcome, set_outcome};
use super::error::StoreError;
use super::notices::{FailureCause, set_failure_cause};
use super::numbers::{Msisdn, normalise_msisdn};
use super::outbox::{FrontEnd, MessageId, MessageState, PartId, refresh_message};
use super::sending::PartRow;
use super::sending::fail_rest;
use super::users::UserId;
use super::{Store, UnixTime};
use crate::bridge::policy;
use crate::pdu::{Outcome, Status, StatusReport};

/// How long after sending a part a status report may still match it. TP-MR is
/// one octet and wraps after 256 parts, so old parts must stop matching. The
/// configured report window (`[bridge] report_window`) is never longer.
pub const REPORT_WINDOW_SECS: i64 = 72 * 3600;

/// Parts ended per call of [`Store::end_overdue_reports`]; the rest wait for the
/// next call, so one transaction stays short after a long outage.
const OVERDUE_BATCH: i64 = 500;

/// Ends a submitted part whose report will not come: delivery unknown with
/// `why`, on the part, the message's latest error and the charging record.
/// Returns the message's (old, new) state.
pub(super) fn end_delivery_unknown(
    tx: &rusqlite::Connection,
    p: &PartRow,
    why: &str,
    now: UnixTime,
) -> Result<(MessageState, MessageState), StoreError> {
    tx.prepare_cached(
        "UPDATE parts SET state = 'delivery_unknown', last_error = ?2 WHERE id = ?1 AND state = 'sent'",
    )?
    .execute(params![p.id.0, why])?;
    tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
        .execute(params![p.message.0, why])?;
    set_outcome(tx, p.message, p.seq, PartOutcome::DeliveryUnknown, now)?;
    refresh_message(tx, p.message, now)
}

/// What a status report changed, for the bridge's delivery notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOutcome {
    /// The message.
    pub message: MessageId,
    /// The part the report matched.
    pub part: PartId,
    /// Its position, 1-based.
    pub seq: u8,
    /// The sender (`None` once removed).
    pub user: Option<UserId>,
    /// The IM message id to notify about.
    pub im_message_id: Option<String>,
    /// The front end that accepted the message.
    pub front_end: FrontEnd,
    /// The user asked for a positive notification.
    pub imdn_positive: bool,
    /// The user asked for a negative notification.
    pub imdn_negative: bool,
    /// What the report says about this part.
    pub outcome: Outcome,
    /// The message's state before the report.
    pub previous_state: MessageState,
    /// The message's state after the report.
    pub message_state: MessageState,
    /// This report made the message delivered or failed: notify now (once).
    pub newly_final: bool,
}

impl ReportOutcome {
    /// Every part of the message is delivered.
    pub fn all_delivered(&self) -> bool {
        self.message_state == MessageState::Delivered
    }

    /// The message failed.
    pub fn failed(&self) -> bool {
        self.message_state == MessageState::Failed
    }
}

impl Store {
    /// [`Store::apply_status_report`] for a decoded SMS-STATUS-REPORT (`+CDS`, or
    /// [`Received::StatusReport`](super::Received::StatusReport)): the recipient is
    /// read as E.164 (national numbers with the default country code) and TP-DT is
    /// the discharge time. A recipient that is not a number matches nothing.
    pub fn apply_report(
        &mut self,
        modem_imsi: &str,
        report: &StatusReport,
        now: UnixTime,
    ) -> Result<Option<ReportOutcome>, StoreError> {
        let r = &report.recipient;
        // Some service centres give the recipient with type of number "unknown"
        // but with its country code (4917… for +4917…): try it as national first,
        // then as international.
        let candidates = if r.is_international() {
            vec![format!("+{}", r.value)]
        } else {
            vec![r.value.clone(), format!("+{}", r.value)]
        };
        let discharge = report
            .discharge_time
            .is_valid()
            .then(|| UnixTime::from_pdu(&report.discharge_time));
        for written in candidates {
            let Ok(recipient) = normalise_msisdn(&written, self.default_country_code.as_deref())
            else {
                continue;
            };
            let outcome = self.apply_status_report(
                modem_imsi,
                &recipient,
                report.mr,
                discharge,
                report.status,
                now,
            )?;
            if outcome.is_some() {
                return Ok(outcome);
            }
        }
        Ok(None)
    }

    /// Applies a status report received on `modem_imsi`. It matches the newest part
    /// sent through that modem to `recipient` with TP-MR `mr` within
    /// [`REPORT_WINDOW_SECS`] that has no final report yet. TP-ST 0x20–0x3F (still
    /// trying) is recorded but not final. `Ok(None)`: no part matches (late,
    /// duplicate or foreign report).
    pub fn apply_status_report(
        &mut self,
        modem_imsi: &str,
        recipient: &Msisdn,
        mr: u8,
        discharge: Option<UnixTime>,
        status: Status,
        now: UnixTime,
    ) -> Result<Option<ReportOutcome>, StoreError> {
        self.write(|tx| {
            let found: Option<(i64, i64, u8)> = tx
                .prepare_cached(
                    "SELECT p.id, p.message_id, p.seq FROM parts p JOIN messages m ON m.id = p.message_id \
                     JOIN subscribers s ON s.id = m.subscriber_id \
                     WHERE p.state = 'sent' AND p.modem_imsi = ?1 AND p.mr = ?2 AND s.msisdn = ?3 \
                     AND p.sent_at >= ?4 ORDER BY p.sent_at DESC, p.id DESC LIMIT 1",
                )?
                .query_row(
                    params![modem_imsi, mr, recipient.as_str(), now.0 - REPORT_WINDOW_SECS],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((part, message, seq)) = found else {
                return Ok(None);
            };
            let message = MessageId(message);
            let outcome = status.outcome();
            let effect = policy::report_effect(status);
            let state = effect.part_state.as_str();
            let error = effect.failure;
            tx.prepare_cached(
                "UPDATE parts SET state = ?2, report_status = ?3, report_time = ?4, \
                 report_received_at = ?5, last_error = coalesce(?6, last_error) WHERE id = ?1",
            )?
            .execute(params![part, state, status.0, discharge.map(|t| t.0), now.0, error])?;
            let charged = match effect.part_state {
                MessageState::Delivered => Some(PartOutcome::Delivered),
                MessageState::Failed => Some(PartOutcome::Failed),
                _ => None,
            };
            if let Some(o) = charged {
                set_outcome(tx, message, seq, o, now)?;
            }
            if let Some(e) = &error {
                fail_rest(tx, message, seq)?;
                set_failure_cause(tx, message, FailureCause::Rejected)?;
                tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
                    .execute(params![message.0, e])?;
            }
            let (old, new) = refresh_message(tx, message, now)?;
            let is_final = policy::is_final;
            let row = tx
                .prepare_cached(
                    "SELECT user_id, im_message_id, front_end, imdn_positive, imdn_negative \
                     FROM messages WHERE id = ?1",
                )?
                .query_row([message.0], |r| {
                    Ok((
                        r.get::<_, Option<i64>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, bool>(4)?,
                    ))
                })?;
            Ok(Some(ReportOutcome {
                message,
                part: PartId(part),
                seq,
                user: row.0.map(UserId),
                im_message_id: row.1,
                front_end: if row.2 == "imps" {
                    FrontEnd::Imps
                } else {
                    FrontEnd::Sip
                },
                imdn_positive: row.3,
                imdn_negative: row.4,
                outcome,
                previous_state: old,
                message_state: new,
                newly_final: !is_final(old) && is_final(new),
            }))
        })
    }

    /// The end of the report window: parts still `sent` that went out before
    /// `sent_before` ([`policy::reports_overdue_before`]) get no report any more
    /// and end as delivery unknown with `why`, in one transaction with their
    /// charging records and their messages' states. A message whose parts all
    /// ended delivered or delivery unknown becomes delivery unknown (final), and
    /// its notification is due. At most a batch of parts per call, oldest
    /// first, found by an index on `sent_at`. Returns the messages that became
    /// final.
    pub fn end_overdue_reports(
        &mut self,
        sent_before: UnixTime,
        why: &str,
        now: UnixTime,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.write(|tx| {
            let parts: Vec<PartRow> = tx
                .prepare_cached(
                    "SELECT id, message_id, seq, modem_imsi FROM parts \
                     WHERE state = 'sent' AND sent_at < ?1 ORDER BY sent_at, id LIMIT ?2",
                )?
                .query_map(params![sent_before.0, OVERDUE_BATCH], |r| {
                    Ok(PartRow {
                        id: PartId(r.get(0)?),
                        message: MessageId(r.get(1)?),
                        seq: r.get(2)?,
                        modem_imsi: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut ended = Vec::new();
            for p in &parts {
                let (old, new) = end_delivery_unknown(tx, p, why, now)?;
                if !policy::is_final(old) && policy::is_final(new) {
                    ended.push(p.message);
                }
            }
            Ok(ended)
        })
    }
}
