//! The outbox: messages from users to subscribers, one row per message and one
//! per SMS part, and the claim protocol modem workers use to send them.
//!
//! ```text
//!  part:  queued ──claim──▶ sending ──part_sent──▶ sent ──report──▶ delivered
//!           ▲                 │  │                   ├──report──▶ failed
//!           │                 │  │                   └──no report in the window──▶ delivery_unknown
//!           │                 │  │                      (at once when none was asked for)
//!           └──Retry::At──────┘  ├──Retry::Never──▶ failed
//!           ▲                    └──part_outcome_unknown / release_claims──▶ outcome_unknown
//!           └──────────────requeue_unknown (policy)───────────────────────────┘ │
//!                                                     fail_unknown (policy) ──▶ failed
//! ```
//! The message state is derived from its parts in the same transaction as every
//! part change: failed if a part failed, else outcome_unknown if one is unknown,
//! else delivered when all are, delivery_unknown when all are delivered or
//! delivery_unknown, sent when all went out, sending once one was claimed, else
//! queued ([`crate::bridge::policy::message_state`]).

use crate::bridge::policy::PartCounts;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::contacts::{record_conversation, subscriber_id};
use super::error::StoreError;
use super::notices::{FailureCause, set_failure_cause};
use super::numbers::Msisdn;
use super::users::UserId;
use super::{Store, UnixTime};
use crate::pdu::Alphabet;

/// An outbox message's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct MessageId(pub i64);

/// A part's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct PartId(pub i64);

/// Where a message (or one of its parts) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for a modem.
    Queued,
    /// At least one part was claimed, not every part went out yet.
    Sending,
    /// Every part went out; waiting for status reports if any were asked for.
    Sent,
    /// Every part was reported delivered.
    Delivered,
    /// A part failed for good.
    Failed,
    /// A part may or may not have gone out (rule 4): a policy decides, see
    /// [`Store::requeue_unknown`] and [`Store::fail_unknown`].
    OutcomeUnknown,
    /// Every part went out, no part failed, and at least one part's status
    /// report did not come within the report window (final; see
    /// [`Store::end_overdue_reports`]).
    DeliveryUnknown,
}

impl MessageState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::OutcomeUnknown,
        Self::DeliveryUnknown,
    ];

    /// The name in the database, the command line and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::DeliveryUnknown => "delivery_unknown",
        }
    }

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub(super) fn from_db(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Failed)
    }
}

impl std::fmt::Display for MessageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which front end accepted a message (and gets its delivery notification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontEnd {
    /// SIP MESSAGE (notification: IMDN).
    Sip,
    /// OMA IMPS SendMessage (notification: DeliveryReport).
    Imps,
}

impl FrontEnd {
    /// `sip` or `imps`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sip => "sip",
            Self::Imps => "imps",
        }
    }
}

/// A message to queue. The caller encodes it once (`pdu::segment` with a
/// reference from [`Store::next_concat_reference`]) and passes the parts ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The sending user.
    pub user: UserId,
    /// The recipient.
    pub msisdn: Msisdn,
    /// The text as the user wrote it.
    pub text: String,
    /// The alphabet the parts are in.
    pub alphabet: Alphabet,
    /// One SMS-SUBMIT per part, as bytes for `AT+CMGS` (the caller's convention on
    /// the SMSC field, usually `00` first).
    pub parts: Vec<Vec<u8>>,
    /// The IM message id (SIP Message-ID of CPIM/IMDN, IMPS MessageID).
    pub im_message_id: Option<String>,
    /// Whether the parts ask for status reports.
    pub report_requested: bool,
    /// The user asked for a positive delivery notification.
    pub imdn_positive: bool,
    /// The user asked for a negative delivery notification.
    pub imdn_negative: bool,
    /// The front end that accepted it.
    pub front_end: FrontEnd,
}

/// A part claimed by a modem worker: send `tpdu`, then report with `part_sent`,
/// `part_failed` or `part_outcome_unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedPart {
    /// The part.
    pub part: PartId,
    /// Its message.
    pub message: MessageId,
    /// Its position, 1-based.
    pub seq: u8,
    /// Parts in the message.
    pub total: u8,
    /// The recipient.
    pub msisdn: Msisdn,
    /// The bytes to send.
    pub tpdu: Vec<u8>,
    /// Which attempt this is, 1-based.
    pub attempt: u32,
}

/// What to do after a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Queue the part again, due at this time (the PDU provably did not leave,
    /// or the network refused it with a temporary cause).
    At(UnixTime),
    /// Give up: the part and the message fail.
    Never,
}

/// An outbox message for lists and the bridge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageSummary {
    /// Row id.
    pub id: MessageId,
    /// State.
    pub state: MessageState,
    /// The sender's address (`None` once the user was removed).
    pub user: Option<String>,
    /// The sender (`None` once the user was removed).
    #[serde(skip)]
    pub user_id: Option<UserId>,
    /// The recipient.
    pub msisdn: Msisdn,
    /// The text.
    pub text: String,
    /// Parts in the message.
    pub parts: u8,
    /// Parts that went out (sent, delivered or delivery_unknown).
    pub parts_sent: u8,
    /// Send attempts over all parts.
    pub attempts: u32,
    /// IM message id.
    pub im_message_id: Option<String>,
    /// The front end that accepted it.
    pub front_end: FrontEnd,
    /// The modem the parts are pinned to.
    pub modem_imsi: Option<String>,
    /// The latest error.
    pub last_error: Option<String>,
    /// When it was queued.
    #[serde(serialize_with = "super::rfc3339")]
    pub created_at: UnixTime,
    /// When its state last changed.
    #[serde(serialize_with = "super::rfc3339")]
    pub updated_at: UnixTime,
    /// The user asked for a positive delivery notification.
    #[serde(skip)]
    pub imdn_positive: bool,
    /// The user asked for a negative delivery notification.
    #[serde(skip)]
    pub imdn_negative: bool,
}

/// Derives and stores the message's state from its parts; returns (old, new).
/// The modem pin is dropped while no part has left or is leaving, so a message
/// whose first attempt failed may go out through another modem.
pub(super) fn refresh_message(
    tx: &Connection,
    id: MessageId,
    now: UnixTime,
) -> Result<(MessageState, MessageState), StoreError> {
    let old: String = tx
        .prepare_cached("SELECT state FROM messages WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "message",
            id: id.0,
        })?;
    let mut c = PartCounts::default();
    let mut stmt = tx
        .prepare_cached("SELECT state, count(*) FROM parts WHERE message_id = ?1 GROUP BY state")?;
    let mut rows = stmt.query([id.0])?;
    while let Some(r) = rows.next()? {
        let s: String = r.get(0)?;
        let n: u32 = r.get(1)?;
        let slot = match MessageState::ALL.iter().find(|m| m.as_str() == s) {
            Some(MessageState::Queued) => &mut c.queued,
            Some(MessageState::Sending) => &mut c.sending,
            Some(MessageState::Sent) => &mut c.sent,
            Some(MessageState::Delivered) => &mut c.delivered,
            Some(MessageState::OutcomeUnknown) => &mut c.unknown,
            Some(MessageState::DeliveryUnknown) => &mut c.delivery_unknown,
            Some(MessageState::Failed) | None => &mut c.failed,
        };
        *slot += n;
    }
    // The rule itself is the policy core's.
    let new = crate::bridge::policy::message_state(c);
    let pinned = c.sending + c.sent + c.delivered + c.unknown + c.delivery_unknown > 0;
    tx.prepare_cached(
        "UPDATE messages SET state = ?2, updated_at = ?3, \
         modem_imsi = CASE WHEN ?4 THEN modem_imsi END WHERE id = ?1",
    )?
    .execute(params![id.0, new.as_str(), now.0, pinned])?;
    // Whichever part ended last (a report, or the window), the cause is the same.
    if new == MessageState::DeliveryUnknown {
        set_failure_cause(tx, id, FailureCause::DeliveryUnknown)?;
    }
    Ok((MessageState::from_db(&old), new))
}

const SUMMARY_SELECT: &str = "SELECT m.id, m.state, coalesce(u.sip_aor, u.imps_id), m.user_id, s.msisdn, \
     m.text, m.part_count, \
     (SELECT count(*) FROM parts p WHERE p.message_id = m.id AND p.state IN ('sent', 'delivered', 'delivery_unknown')), \
     (SELECT coalesce(sum(attempts), 0) FROM parts p WHERE p.message_id = m.id), \
     m.im_message_id, m.front_end, m.modem_imsi, m.last_error, m.created_at, m.updated_at, \
     m.imdn_positive, m.imdn_negative \
     FROM messages m JOIN subscribers s ON s.id = m.subscriber_id LEFT JOIN users u ON u.id = m.user_id";

fn summary_from_row(r: &Row<'_>) -> rusqlite::Result<MessageSummary> {
    let state: String = r.get(1)?;
    let front_end: String = r.get(10)?;
    Ok(MessageSummary {
        id: MessageId(r.get(0)?),
        state: MessageState::from_db(&state),
        user: r.get(2)?,
        user_id: r.get::<_, Option<i64>>(3)?.map(UserId),
        msisdn: Msisdn::from_db(r.get(4)?),
        text: r.get(5)?,
        parts: r.get(6)?,
        parts_sent: r.get(7)?,
        attempts: r.get(8)?,
        im_message_id: r.get(9)?,
        front_end: if front_end == "imps" {
            FrontEnd::Imps
        } else {
            FrontEnd::Sip
        },
        modem_imsi: r.get(11)?,
        last_error: r.get(12)?,
        created_at: UnixTime(r.get(13)?),
        updated_at: UnixTime(r.get(14)?),
        imdn_positive: r.get(15)?,
        imdn_negative: r.get(16)?,
    })
}

fn check_parts(m: &NewMessage) -> Result<(), StoreError> {
    check_tpdus(&m.parts)
}

pub(super) fn check_tpdus(parts: &[Vec<u8>]) -> Result<(), StoreError> {
    if parts.is_empty() || parts.len() > 255 {
        return Err(StoreError::InvalidInput(format!(
            "a message has 1 to 255 parts, not {}",
            parts.len()
        )));
    }
    if parts.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(StoreError::InvalidInput("a part is 1 to 255 octets".into()));
    }
    Ok(())
}

pub(super) fn take_reference(
    tx: &Connection,
    msisdn: &Msisdn,
    now: UnixTime,
) -> Result<u16, StoreError> {
    let s = subscriber_id(tx, msisdn, now)?;
    let next: i64 = tx
        .prepare_cached(
            "INSERT INTO concat_references (subscriber_id, next) VALUES (?1, 1) \
             ON CONFLICT (subscriber_id) DO UPDATE SET next = (next + 1) % 65536 \
             RETURNING next",
        )?
        .query_row([s], |r| r.get(0))?;
    Ok(u16::try_from((next + 65535) % 65536).unwrap_or(0))
}

fn insert_message(tx: &Connection, m: &NewMessage, now: UnixTime) -> Result<MessageId, StoreError> {
    let exists: Option<i64> = tx
        .prepare_cached("SELECT id FROM users WHERE id = ?1")?
        .query_row([m.user.0], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::UnknownUser(format!("#{}", m.user.0)));
    }
    let subscriber = subscriber_id(tx, &m.msisdn, now)?;
    tx.prepare_cached(
        "INSERT INTO messages (user_id, subscriber_id, text, alphabet, im_message_id, front_end, \
         report_requested, imdn_positive, imdn_negative, part_count, state, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', ?11, ?11)",
    )?
    .execute(params![
        m.user.0,
        subscriber,
        m.text,
        m.alphabet.name(),
        m.im_message_id,
        m.front_end.as_str(),
        m.report_requested,
        m.imdn_positive,
        m.imdn_negative,
        m.parts.len() as i64,
        now.0
    ])?;
    let id = tx.last_insert_rowid();
    insert_parts(tx, id, &m.parts, now)?;
    record_conversation(tx, m.user, subscriber, None, now)?;
    Ok(MessageId(id))
}

/// The queued parts of message `id`.
pub(super) fn insert_parts(
    tx: &Connection,
    id: i64,
    parts: &[Vec<u8>],
    now: UnixTime,
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO parts (message_id, seq, tpdu, state, next_attempt_at) \
         VALUES (?1, ?2, ?3, 'queued', ?4)",
    )?;
    for (i, tpdu) in parts.iter().enumerate() {
        insert.execute(params![id, (i + 1) as i64, tpdu, now.0])?;
    }
    Ok(())
}

impl Store {
    /// Queues a message durably: when this returns `Ok`, the message and all its
    /// parts are committed (rule 3) and the front end may answer 202.
    pub fn enqueue(&mut self, m: &NewMessage, now: UnixTime) -> Result<MessageId, StoreError> {
        check_parts(m)?;
        self.write(|tx| insert_message(tx, m, now))
    }

    /// Takes the next concatenation reference for `msisdn` and queues the message
    /// `build` makes with it, in one transaction: one disk sync per IM instead of
    /// two. Durable like [`Store::enqueue`] when it returns `Ok`.
    pub fn enqueue_with(
        &mut self,
        msisdn: &Msisdn,
        now: UnixTime,
        build: impl FnOnce(u16) -> Result<NewMessage, StoreError>,
    ) -> Result<MessageId, StoreError> {
        self.write(|tx| {
            let reference = take_reference(tx, msisdn, now)?;
            let m = build(reference)?;
            check_parts(&m)?;
            insert_message(tx, &m, now)
        })
    }

    /// The concatenation reference for the next multipart message to `msisdn`: a
    /// per-recipient counter that wraps at 65536 (use the low 8 bits for 8-bit
    /// references), so messages in flight to one phone do not share a reference.
    pub fn next_concat_reference(
        &mut self,
        msisdn: &Msisdn,
        now: UnixTime,
    ) -> Result<u16, StoreError> {
        self.write(|tx| take_reference(tx, msisdn, now))
    }

    /// Claims the next part for `modem_imsi` and marks it sending, atomically: two
    /// workers never get the same part. Parts of a message this modem already
    /// started come first (the recipient's phone can only join parts that came
    /// from one number), then the oldest message that is due.
    pub fn claim_next_part(
        &mut self,
        modem_imsi: &str,
        now: UnixTime,
    ) -> Result<Option<ClaimedPart>, StoreError> {
        self.write(|tx| {
            let started: Option<i64> = tx
                .prepare_cached(
                    "SELECT p.id FROM messages m JOIN parts p ON p.message_id = m.id \
                     WHERE m.state IN ('queued', 'sending') AND m.modem_imsi = ?1 \
                     AND p.state = 'queued' AND p.next_attempt_at <= ?2 ORDER BY m.id, p.seq LIMIT 1",
                )?
                .query_row(params![modem_imsi, now.0], |r| r.get(0))
                .optional()?;
            let part = match started {
                Some(p) => Some(p),
                None => tx
                    .prepare_cached(
                        "SELECT p.id FROM messages m JOIN parts p ON p.message_id = m.id \
                         WHERE m.state = 'queued' AND m.modem_imsi IS NULL \
                         AND p.state = 'queued' AND p.next_attempt_at <= ?1 ORDER BY m.id, p.seq LIMIT 1",
                    )?
                    .query_row([now.0], |r| r.get(0))
                    .optional()?,
            };
            let Some(part) = part else { return Ok(None) };
            tx.prepare_cached(
                "UPDATE parts SET state = 'sending', modem_imsi = ?2, attempts = attempts + 1, \
                 claimed_at = ?3 WHERE id = ?1",
            )?
            .execute(params![part, modem_imsi, now.0])?;
            let claimed = tx
                .prepare_cached(
                    "SELECT p.message_id, p.seq, m.part_count, s.msisdn, p.tpdu, p.attempts \
                     FROM parts p JOIN messages m ON m.id = p.message_id \
                     JOIN subscribers s ON s.id = m.subscriber_id WHERE p.id = ?1",
                )?
                .query_row([part], |r| {
                    Ok(ClaimedPart {
                        part: PartId(part),
                        message: MessageId(r.get(0)?),
                        seq: r.get(1)?,
                        total: r.get(2)?,
                        msisdn: Msisdn::from_db(r.get(3)?),
                        tpdu: r.get(4)?,
                        attempt: r.get(5)?,
                    })
                })?;
            tx.prepare_cached("UPDATE messages SET modem_imsi = ?2 WHERE id = ?1")?
                .execute(params![claimed.message.0, modem_imsi])?;
            refresh_message(tx, claimed.message, now)?;
            Ok(Some(claimed))
        })
    }

    /// One message, if it exists.
    pub fn message(&self, id: MessageId) -> Result<Option<MessageSummary>, StoreError> {
        let sql = format!("{SUMMARY_SELECT} WHERE m.id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id.0], summary_from_row)
            .optional()?)
    }

    /// Outbox messages, oldest first, all or in one state.
    pub fn messages(&self, state: Option<MessageState>) -> Result<Vec<MessageSummary>, StoreError> {
        let sql = format!("{SUMMARY_SELECT} WHERE ?1 IS NULL OR m.state = ?1 ORDER BY m.id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([state.map(MessageState::as_str)], summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest failed messages, at most `limit` (for status pages).
    pub fn recent_failures(&self, limit: usize) -> Result<Vec<MessageSummary>, StoreError> {
        let sql = format!(
            "{SUMMARY_SELECT} WHERE m.state = 'failed' ORDER BY m.updated_at DESC, m.id DESC LIMIT ?1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many messages are in `state` (the outbox limit checks this for
    /// every batch of IMs): read from the counts the schema's triggers keep,
    /// not counted.
    pub fn count_messages(&self, state: MessageState) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(sum(n), 0) FROM message_counts WHERE state = ?1")?
            .query_row([state.as_str()], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Messages `user` queued at or after `since`, for rate limits and daily caps.
    pub fn messages_since(&self, user: UserId, since: UnixTime) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages WHERE user_id = ?1 AND created_at >= ?2",
            )?
            .query_row(params![user.0, since.0], |r| r.get(0))?)
    }
}

/// IMs for a user sent to their own phone as SMS while they were offline
/// (3GPP TS 23.204's IP-SM-GW): the SMS remembers whom it was for, so a reply
/// from that phone goes back to the IM's sender as an IM from the user.
impl Store {
    /// Marks message `id` as an IM for `user` sent to their phone; in the
    /// transaction that queued it.
    pub fn set_message_for_user(&mut self, id: MessageId, user: UserId) -> Result<(), StoreError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE messages SET for_user_id = ?2 WHERE id = ?1")?
                .execute(params![id.0, user.0])?;
            if n == 0 {
                return Err(StoreError::InvalidInput(format!("no message {}", id.0)));
            }
            Ok(())
        })
    }

    /// The sender of the latest IM for `owner` that went to `phone` as SMS.
    pub fn latest_sender_via_phone(
        &self,
        owner: UserId,
        phone: &Msisdn,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT m.user_id FROM messages m JOIN subscribers s ON s.id = m.subscriber_id \
                 WHERE s.msisdn = ?1 AND m.for_user_id = ?2 ORDER BY m.id DESC LIMIT 1",
            )?
            .query_row(params![phone.as_str(), owner.0], |r| r.get(0))
            .optional()?
            .map(UserId))
    }

    /// Whom message `id` was for when it was an IM sent to a user's phone.
    pub fn message_for_user(&self, id: MessageId) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT for_user_id FROM messages WHERE id = ?1")?
            .query_row([id.0], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .map(UserId))
    }
}
