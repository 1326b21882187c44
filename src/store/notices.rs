//! Delivery notifications owed to senders, kept with their message: once a
//! message is final, its notification is due until the sender's front end took
//! it (or it was given up). So a notification survives a restart, and a sender
//! who is offline when the report comes is told when they are back.

use rusqlite::{Connection, params};

use super::error::StoreError;
use super::numbers::Msisdn;
use super::outbox::{FrontEnd, MessageId, MessageState};
use super::users::UserId;
use super::{Store, UnixTime};

/// Why a message did not reach the phone, kept with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// No modem could send it within the outbox expiry.
    Expired,
    /// The modem or network refused it.
    NotSent,
    /// A status report says it failed.
    Rejected,
    /// It was sent, but whether it arrived is not known (rule 4).
    OutcomeUnknown,
    /// It was submitted, but no status report came within the report window,
    /// or none was asked for: whether it reached the phone is not known.
    DeliveryUnknown,
}

impl FailureCause {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotSent => "not_sent",
            Self::Rejected => "rejected",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::DeliveryUnknown => "delivery_unknown",
        }
    }

    fn from_db(s: &str) -> Option<Self> {
        [
            Self::Expired,
            Self::NotSent,
            Self::Rejected,
            Self::OutcomeUnknown,
            Self::DeliveryUnknown,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// Records why a message failed or why its delivery is unknown; the first cause
/// recorded stays.
pub(super) fn set_failure_cause(
    tx: &Connection,
    message: MessageId,
    cause: FailureCause,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE messages SET fail_cause = coalesce(fail_cause, ?2) WHERE id = ?1")?
        .execute(params![message.0, cause.as_str()])?;
    Ok(())
}

/// The notifications due at `?1`, oldest first, at most `?2`: through the
/// partial index of those still owed, named so that the planner does not
/// prefer the index by state, which also holds every message notified long
/// ago.
pub(super) const DUE_NOTICES: &str = "SELECT m.id, m.state, coalesce(u.sip_aor, u.imps_id), m.user_id, m.front_end, \
      m.im_message_id, s.msisdn, m.imdn_positive, m.imdn_negative, m.fail_cause, \
      m.last_error, m.notify_attempts, m.updated_at \
      FROM messages m INDEXED BY messages_notice_due \
      JOIN subscribers s ON s.id = m.subscriber_id \
      LEFT JOIN users u ON u.id = m.user_id \
      WHERE m.notified_at IS NULL \
      AND (m.state = 'delivered' OR m.state = 'failed' OR m.state = 'delivery_unknown') \
      AND m.notify_next_at <= ?1 ORDER BY m.notify_next_at, m.id LIMIT ?2";

/// A final message whose sender has not been told yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotice {
    /// The message.
    pub message: MessageId,
    /// Delivered, failed or delivery unknown.
    pub state: MessageState,
    /// The sender's address (`None` once the user was removed).
    pub user: Option<String>,
    /// The sender.
    pub user_id: Option<UserId>,
    /// The front end that accepted it.
    pub front_end: FrontEnd,
    /// The IM's message id.
    pub im_message_id: Option<String>,
    /// The subscriber.
    pub msisdn: Msisdn,
    /// A positive notification was asked for.
    pub imdn_positive: bool,
    /// A negative notification was asked for.
    pub imdn_negative: bool,
    /// Why it failed or its delivery is unknown.
    pub cause: Option<FailureCause>,
    /// The latest error, for the notification's text.
    pub last_error: Option<String>,
    /// Attempts to notify so far.
    pub attempts: u32,
    /// When the message became final.
    pub final_at: UnixTime,
}

impl Store {
    /// Notifications due at `now`, oldest first, at most `limit`.
    pub fn due_notices(&self, now: UnixTime, limit: usize) -> Result<Vec<DueNotice>, StoreError> {
        let mut stmt = self.conn.prepare_cached(DUE_NOTICES)?;
        let rows = stmt.query_map(params![now.0, limit as i64], |r| {
            let state: String = r.get(1)?;
            let front_end: String = r.get(4)?;
            let cause: Option<String> = r.get(9)?;
            Ok(DueNotice {
                message: MessageId(r.get(0)?),
                state: MessageState::from_db(&state),
                user: r.get(2)?,
                user_id: r.get::<_, Option<i64>>(3)?.map(UserId),
                front_end: if front_end == "imps" {
                    FrontEnd::Imps
                } else {
                    FrontEnd::Sip
                },
                im_message_id: r.get(5)?,
                msisdn: Msisdn::from_db(r.get(6)?),
                imdn_positive: r.get(7)?,
                imdn_negative: r.get(8)?,
                cause: cause.as_deref().and_then(FailureCause::from_db),
                last_error: r.get(10)?,
                attempts: r.get(11)?,
                final_at: UnixTime(r.get(12)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The sender was told (or there was nothing to tell): not due any more.
    pub fn mark_notified(&mut self, message: MessageId, now: UnixTime) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE messages SET notified_at = ?2 WHERE id = ?1")?
                .execute(params![message.0, now.0])?;
            Ok(())
        })
    }

    /// The sender could not be told now: try again at `at`.
    pub fn notice_retry(&mut self, message: MessageId, at: UnixTime) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE messages SET notify_attempts = notify_attempts + 1, notify_next_at = ?2 \
                 WHERE id = ?1",
            )?
            .execute(params![message.0, at.0])?;
            Ok(())
        })
    }

    /// `user` is online: their pending notifications are due now. Returns how many.
    pub fn notices_due_for(&mut self, user: UserId, now: UnixTime) -> Result<usize, StoreError> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached(
                    "UPDATE messages SET notify_next_at = ?2 WHERE user_id = ?1 \
                     AND notified_at IS NULL \
                     AND (state = 'delivered' OR state = 'failed' OR state = 'delivery_unknown') \
                     AND notify_next_at > ?2",
                )?
                .execute(params![user.0, now.0])?)
        })
    }
}
