//! Charging records: one row per submission attempt of a part, written in the
//! same transaction as its result, with copies of the names so that records
//! outlive users and messages. The record of a submitted part later gets the
//! part's outcome (delivered, failed, delivery unknown) in the transaction that
//! decides it.

use rusqlite::{Connection, params};

use super::error::StoreError;
use super::outbox::MessageId;
use super::sending::PartRow;
use super::{Store, UnixTime};

/// One charging record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChargingRecord {
    /// When the result was recorded.
    #[serde(serialize_with = "super::rfc3339")]
    pub at: UnixTime,
    /// The sending user's address.
    pub user: String,
    /// The recipient.
    pub msisdn: String,
    /// The modem's SIM.
    pub modem_imsi: String,
    /// The message.
    pub message_id: MessageId,
    /// The part, 1-based.
    pub seq: u8,
    /// TP-MR the network gave, for a submitted part.
    pub mr: Option<u8>,
    /// `submitted`, `failed` or `unknown` (rule 4: may or may not have left).
    pub result: String,
    /// The error, for `failed` and `unknown`.
    pub detail: Option<String>,
    /// For a `submitted` record: `delivered` or `failed` from the status
    /// report, or `delivery_unknown` when none came within the report window;
    /// `None` while the report may still come.
    pub outcome: Option<String>,
    /// When the outcome was recorded.
    #[serde(serialize_with = "super::rfc3339_opt")]
    pub outcome_at: Option<UnixTime>,
}

/// The final outcome of a submitted part, for its charging record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PartOutcome {
    /// Reported delivered.
    Delivered,
    /// Reported failed.
    Failed,
    /// No report within the window, or none asked for.
    DeliveryUnknown,
}

impl PartOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::DeliveryUnknown => "delivery_unknown",
        }
    }
}

/// Records the outcome of part `seq` of `message` on its latest `submitted`
/// record (a part requeued after an unknown outcome has more than one).
pub(super) fn set_outcome(
    tx: &Connection,
    message: MessageId,
    seq: u8,
    outcome: PartOutcome,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE charging_records SET outcome = ?3, outcome_at = ?4 WHERE id = \
         (SELECT id FROM charging_records WHERE message_id = ?1 AND seq = ?2 \
          AND result = 'submitted' ORDER BY id DESC LIMIT 1)",
    )?
    .execute(params![message.0, seq, outcome.as_str(), now.0])?;
    Ok(())
}

pub(super) fn record(
    tx: &Connection,
    p: &PartRow,
    mr: Option<u8>,
    result: &str,
    detail: Option<&str>,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO charging_records (at, user_address, msisdn, modem_imsi, message_id, seq, mr, result, detail) \
         SELECT ?1, coalesce(u.sip_aor, u.imps_id, '?'), s.msisdn, ?2, m.id, ?3, ?4, ?5, ?6 \
         FROM messages m JOIN subscribers s ON s.id = m.subscriber_id LEFT JOIN users u ON u.id = m.user_id \
         WHERE m.id = ?7",
    )?
    .execute(params![
        now.0,
        p.modem_imsi.as_deref().unwrap_or("?"),
        p.seq,
        mr,
        result,
        detail,
        p.message.0
    ])?;
    Ok(())
}

impl Store {
    /// Charging records at or after `since`, oldest first.
    pub fn cdr_since(&self, since: UnixTime) -> Result<Vec<ChargingRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT at, user_address, msisdn, modem_imsi, message_id, seq, mr, result, detail, \
             outcome, outcome_at FROM charging_records WHERE at >= ?1 ORDER BY at, id",
        )?;
        let rows = stmt.query_map([since.0], |r| {
            Ok(ChargingRecord {
                at: UnixTime(r.get(0)?),
                user: r.get(1)?,
                msisdn: r.get(2)?,
                modem_imsi: r.get(3)?,
                message_id: MessageId(r.get(4)?),
                seq: r.get(5)?,
                mr: r.get(6)?,
                result: r.get(7)?,
                detail: r.get(8)?,
                outcome: r.get(9)?,
                outcome_at: r.get::<_, Option<i64>>(10)?.map(UnixTime),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
