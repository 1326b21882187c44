//! IMs between users keep their sender's envelope in the inbox (message id,
//! address, the notifications asked for), and the notifications owed about
//! them are inbox rows too (`kind = 'notice'`, for the user owed it), each
//! written in the same transaction as the change that caused it: the IM
//! delivered, failed or expired, or a display its recipient reported. So a
//! notification is kept and forwarded like a message, exactly once.

use rusqlite::{Connection, OptionalExtension, params};

use super::error::StoreError;
use super::inbox::InboundId;
use super::users::UserId;
use super::{Store, UnixTime};

/// What an inbound row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboundKind {
    /// A message for the user (an SMS, or an IM from another user).
    Message,
    /// A delivery or display notification owed to the user about an IM they sent.
    Notice,
}

impl InboundKind {
    pub(super) fn from_db(s: &str) -> Self {
        if s == "notice" {
            Self::Notice
        } else {
            Self::Message
        }
    }
}

/// What a notice row says about the IM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeDisposition {
    /// It reached the recipient's device.
    Delivered,
    /// It could not be delivered (failed, expired).
    Failed,
    /// The recipient's client shows it was displayed.
    Displayed,
}

impl NoticeDisposition {
    /// The name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Displayed => "displayed",
        }
    }

    pub(super) fn from_db(s: &str) -> Option<Self> {
        [Self::Delivered, Self::Failed, Self::Displayed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// The notifications an IM's sender asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyFlags {
    /// `positive-delivery`, IMPS DeliveryReport.
    pub delivered: bool,
    /// `negative-delivery`, IMPS DeliveryReport.
    pub failed: bool,
    /// `display`.
    pub displayed: bool,
}

/// The envelope of an IM between users, as the relay keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayEnvelope<'a> {
    /// The id the sender gave; `None` makes one up from the row id.
    pub message_id: Option<&'a str>,
    /// The sender's whole address (`sip:alice@example.com`, `wv:harry@…`).
    pub origin: &'a str,
    /// What the sender asked to be told.
    pub notify: NotifyFlags,
}

/// An IM from one user of the bridge for another ([`Store::enqueue_im`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayedIm<'a> {
    /// The recipient.
    pub to: UserId,
    /// The sending user, for the charging record kept with it.
    pub from: UserId,
    /// The sending user's user part, shown to the recipient.
    pub sender: &'a str,
    /// The text.
    pub text: &'a str,
    /// The sender's envelope.
    pub envelope: RelayEnvelope<'a>,
}

/// What became of a disposition a recipient reported
/// ([`Store::relay_disposition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispositionOutcome {
    /// No IM with that id from that sender was for the reporter.
    Unknown,
    /// Kept for the IM's sender as this notice row.
    Owed(InboundId),
    /// It matches, but nothing is passed on: not asked for, given already,
    /// or a delivery status (the bridge gives those itself).
    NotOwed,
}

/// Writes the envelope of the relayed IM `id` (inserted just before, in the
/// same transaction); a missing message id becomes `im-<row id>`.
pub(super) fn keep_envelope(
    tx: &Connection,
    id: i64,
    env: &RelayEnvelope<'_>,
    origin_user: Option<UserId>,
) -> Result<(), StoreError> {
    let message_id = env
        .message_id
        .map_or_else(|| format!("im-{id}"), str::to_owned);
    tx.prepare_cached(
        "UPDATE inbound SET im_message_id = ?2, origin = ?3, origin_user_id = ?4, \
         notify_delivered = ?5, notify_failed = ?6, notify_displayed = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        message_id,
        env.origin,
        origin_user.map(|u| u.0),
        env.notify.delivered,
        env.notify.failed,
        env.notify.displayed
    ])?;
    Ok(())
}

/// Inserts a notice for the sender of message row `id` saying `disposition`
/// (the reason in its text when it failed), if the sender is a user of the
/// bridge. Returns the notice row.
fn insert_notice(
    tx: &Connection,
    id: i64,
    disposition: NoticeDisposition,
    now: UnixTime,
) -> Result<Option<InboundId>, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO inbound (modem_imsi, sender, text, received_at, state, user_id, \
             next_attempt_at, kind, im_message_id, origin, disposition) \
             SELECT i.modem_imsi, coalesce(u.sip_aor, u.imps_id, i.sender), \
               CASE WHEN ?3 = 'failed' THEN coalesce(i.last_error, 'not delivered') ELSE '' END, \
               ?2, 'pending', i.origin_user_id, ?2, 'notice', i.im_message_id, \
               coalesce(u.sip_aor, u.imps_id, i.sender), ?3 \
             FROM inbound i LEFT JOIN users u ON u.id = i.user_id \
             WHERE i.id = ?1 AND i.kind = 'message' AND i.origin_user_id IS NOT NULL \
               AND i.im_message_id IS NOT NULL",
        )?
        .execute(params![id, now.0, disposition.as_str()])?;
    Ok((n == 1).then(|| InboundId(tx.last_insert_rowid())))
}

/// The notice owed now that message row `id` became final (delivered,
/// failed or expired), if its sender asked for one; called in the
/// transaction that made it final.
pub(super) fn owe_final_notice(
    tx: &Connection,
    id: InboundId,
    now: UnixTime,
) -> Result<Option<InboundId>, StoreError> {
    let row: Option<(String, String, bool, bool)> = tx
        .prepare_cached(
            "SELECT kind, state, notify_delivered, notify_failed FROM inbound WHERE id = ?1",
        )?
        .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((kind, state, positive, negative)) = row else {
        return Ok(None);
    };
    if kind != "message" {
        return Ok(None);
    }
    let disposition = match state.as_str() {
        "delivered" if positive => NoticeDisposition::Delivered,
        "failed" | "expired" if negative => NoticeDisposition::Failed,
        _ => return Ok(None),
    };
    insert_notice(tx, id.0, disposition, now)
}

impl Store {
    /// The recipient `reporter` says the IM `message_id` from the user
    /// `origin` was `disposition`: when such an IM was for them, a display
    /// the sender asked for is owed to the sender (once); anything else
    /// changes nothing. One transaction.
    pub fn relay_disposition(
        &mut self,
        reporter: UserId,
        message_id: &str,
        origin: UserId,
        disposition: NoticeDisposition,
        now: UnixTime,
    ) -> Result<DispositionOutcome, StoreError> {
        self.write(|tx| {
            let found: Option<(i64, bool)> = tx
                .prepare_cached(
                    "SELECT id, notify_displayed FROM inbound WHERE user_id = ?1 \
                     AND im_message_id = ?2 AND origin_user_id = ?3 AND kind = 'message' \
                     ORDER BY id LIMIT 1",
                )?
                .query_row(params![reporter.0, message_id, origin.0], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((id, asked)) = found else {
                return Ok(DispositionOutcome::Unknown);
            };
            if disposition != NoticeDisposition::Displayed || !asked {
                return Ok(DispositionOutcome::NotOwed);
            }
            let given: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM inbound n JOIN inbound m ON m.id = ?1 \
                     WHERE n.kind = 'notice' AND n.user_id = m.origin_user_id \
                     AND n.im_message_id = m.im_message_id AND n.disposition = 'displayed' \
                     AND n.origin IS (SELECT coalesce(sip_aor, imps_id) FROM users WHERE id = m.user_id))",
                )?
                .query_row([id], |r| r.get(0))?;
            if given {
                return Ok(DispositionOutcome::NotOwed);
            }
            Ok(insert_notice(tx, id, disposition, now)?
                .map_or(DispositionOutcome::NotOwed, DispositionOutcome::Owed))
        })
    }
}
