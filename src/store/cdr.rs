//! Charging records, one for every use of the interworking service, each
//! written in the same transaction as what it records, with copies of the
//! names so that records outlive users and messages:
//!
//! - IM → SMS: one per submission attempt of a part; a submitted part's record
//!   later gets the part's outcome (delivered, failed, delivery unknown).
//! - SMS → IM and IM → IM (a user of one front end to one of the other): one
//!   per message kept for a user, when it is kept; it gets the message's
//!   outcome (delivered, failed, expired) in the transaction that ends it.

use rusqlite::{Connection, params};

use super::error::StoreError;
use super::outbox::MessageId;
use super::sending::PartRow;
use super::users::UserId;
use super::{Store, UnixTime};

/// Which way a charged message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From an IM user to a subscriber, as SMS.
    ImToSms,
    /// From a subscriber's SMS to an IM user.
    SmsToIm,
    /// From a user of one front end to a user of the bridge (IMPS ↔ SIP).
    ImToIm,
}

impl Direction {
    /// `im_to_sms`, `sms_to_im` or `im_to_im`, as stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImToSms => "im_to_sms",
            Self::SmsToIm => "sms_to_im",
            Self::ImToIm => "im_to_im",
        }
    }

    fn from_db(s: &str) -> Self {
        match s {
            "sms_to_im" => Self::SmsToIm,
            "im_to_im" => Self::ImToIm,
            _ => Self::ImToSms,
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One charging record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChargingRecord {
    /// When the message was submitted (a part to the network) or received.
    #[serde(rename = "time", serialize_with = "super::rfc3339")]
    pub at: UnixTime,
    /// Which way it went.
    pub direction: Direction,
    /// Who sent it: the IM user's address, or the subscriber's number (E.164,
    /// or as received when it is not a number).
    pub from: String,
    /// Whom it was for: the subscriber's number, or the IM user's address
    /// (`None` for an SMS not routed to a user yet, or to none).
    pub to: Option<String>,
    /// The modem's SIM (`None` for an IM between users).
    pub modem_imsi: Option<String>,
    /// The outbox message (IM → SMS) or the inbound message.
    pub message_id: i64,
    /// The part, 1-based (IM → SMS only).
    #[serde(rename = "part")]
    pub seq: Option<u8>,
    /// TP-MR the network gave, for a submitted part.
    pub mr: Option<u8>,
    /// IM → SMS: `submitted`, `failed` or `unknown` (rule 4: may or may not
    /// have left). SMS → IM and IM → IM: `received`.
    pub result: String,
    /// The error, for `failed` and `unknown`, and for an inbound message
    /// that failed or expired.
    pub detail: Option<String>,
    /// The final outcome: `delivered`, `failed`, `delivery_unknown` (IM →
    /// SMS: no status report within the window) or `expired` (an inbound
    /// message held too long); `None` while it may still change.
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
/// record (a part requeued after an unknown outcome has more than one). Only
/// IM → SMS records are `submitted`, so an inbound message with the same id
/// is never touched.
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
        "INSERT INTO charging_records (at, direction, user_address, msisdn, modem_imsi, message_id, seq, mr, result, detail) \
         SELECT ?1, 'im_to_sms', coalesce(u.sip_aor, u.imps_id, m.foreign_sender, '?'), s.msisdn, ?2, m.id, ?3, ?4, ?5, ?6 \
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

/// Records an inbound message kept for a user, in the transaction that keeps
/// it: an SMS (`from_to` `None`; its recipient is filled in when it is
/// routed) or an IM from one user to another.
pub(super) fn record_inbound(
    tx: &Connection,
    inbound: i64,
    from_to: Option<(UserId, UserId)>,
    now: UnixTime,
) -> Result<(), StoreError> {
    match from_to {
        None => tx
            .prepare_cached(
                "INSERT INTO charging_records (at, direction, msisdn, modem_imsi, message_id, result) \
                 SELECT ?1, 'sms_to_im', sender, modem_imsi, id, 'received' FROM inbound WHERE id = ?2",
            )?
            .execute(params![now.0, inbound])?,
        Some((from, to)) => tx
            .prepare_cached(
                "INSERT INTO charging_records (at, direction, user_address, peer_address, message_id, result) \
                 VALUES (?1, 'im_to_im', \
                   (SELECT coalesce(sip_aor, imps_id) FROM users WHERE id = ?3), \
                   (SELECT coalesce(sip_aor, imps_id) FROM users WHERE id = ?4), ?2, 'received')",
            )?
            .execute(params![now.0, inbound, from.0, to.0])?,
    };
    Ok(())
}

/// Records how an inbound message ended, on its record: the user an SMS went
/// to (the one it was routed to), the outcome and, for a failure, why.
pub(super) fn set_inbound_outcome(
    tx: &Connection,
    inbound: i64,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE charging_records SET \
           outcome = (SELECT CASE state WHEN 'pending' THEN NULL ELSE state END FROM inbound WHERE id = ?1), \
           outcome_at = ?2, \
           detail = (SELECT CASE WHEN state IN ('failed', 'expired') THEN last_error END FROM inbound WHERE id = ?1), \
           user_address = CASE direction WHEN 'sms_to_im' THEN \
             (SELECT coalesce(u.sip_aor, u.imps_id) FROM inbound i JOIN users u ON u.id = i.user_id \
              WHERE i.id = ?1) ELSE user_address END \
         WHERE message_id = ?1 AND direction <> 'im_to_sms'",
    )?
    .execute(params![inbound, now.0])?;
    Ok(())
}

impl Store {
    /// Charging records at or after `since`, oldest first.
    pub fn cdr_since(&self, since: UnixTime) -> Result<Vec<ChargingRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT at, direction, user_address, msisdn, peer_address, modem_imsi, message_id, seq, mr, \
             result, detail, outcome, outcome_at FROM charging_records WHERE at >= ?1 ORDER BY at, id",
        )?;
        let rows = stmt.query_map([since.0], |r| {
            let direction = Direction::from_db(&r.get::<_, String>(1)?);
            let user: Option<String> = r.get(2)?;
            let msisdn: Option<String> = r.get(3)?;
            let peer: Option<String> = r.get(4)?;
            let (from, to) = match direction {
                Direction::ImToSms => (user, msisdn),
                Direction::SmsToIm => (msisdn, user),
                Direction::ImToIm => (user, peer),
            };
            Ok(ChargingRecord {
                at: UnixTime(r.get(0)?),
                direction,
                from: from.unwrap_or_default(),
                to,
                modem_imsi: r.get(5)?,
                message_id: r.get(6)?,
                seq: r.get(7)?,
                mr: r.get(8)?,
                result: r.get(9)?,
                detail: r.get(10)?,
                outcome: r.get(11)?,
                outcome_at: r.get::<_, Option<i64>>(12)?.map(UnixTime),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
