//! The bridge's decisions as plain functions of a snapshot and `now`: no clock,
//! no store, no I/O (DESIGN.md rules 1 and 8). The glue in the other `bridge/`
//! modules loads a snapshot inside a `BEGIN IMMEDIATE` transaction
//! ([`crate::store::Store::atomically`]), calls one of these and writes what it
//! decided in that same transaction, so limits are exact and a crash leaves the
//! whole outcome or none of it.

use std::time::Duration;

use super::api::{ImToSms, Refusal};
use crate::config::{self, OutcomeUnknown, UnknownNotice};
use crate::modem::CmsClass;
use crate::pdu::{self, Alphabet, EncodeOptions, Outcome};
use crate::store::{MessageState, Msisdn, OfflineDelivery, Retry, UnixTime, User, UserId};

/// How far back the per-user rate limit looks.
pub const RATE_WINDOW_SECS: i64 = 60;
/// How far back the daily cap looks.
pub const DAY_WINDOW_SECS: i64 = 86_400;

/// When to try again after a refusal for a full queue.
const QUEUE_RETRY: Duration = Duration::from_secs(120);
/// When to try again when no modem can send, or the rate limit was hit.
const MINUTE: Duration = Duration::from_secs(60);

/// What the decision on an IM for SMS needs to know, read in the transaction
/// that will queue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitSnapshot {
    /// The sender, if they are a user of this bridge.
    pub user: Option<User>,
    /// The subscriber the IM is for, or why there is none.
    pub recipient: Result<Msisdn, Refusal>,
    /// The sender blocked that subscriber.
    pub blocked: bool,
    /// The subscriber opted out (STOP).
    pub opted_out: bool,
    /// Messages the sender queued since `now - RATE_WINDOW_SECS` (inclusive).
    pub sent_last_minute: u32,
    /// Messages the sender queued since `now - DAY_WINDOW_SECS` (inclusive).
    pub sent_last_day: u32,
    /// Messages waiting in the outbox for a modem, from every user.
    pub queued: usize,
    /// Whether any modem can send now.
    pub modems_ready: bool,
}

/// An IM accepted for SMS: what to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The sender.
    pub user: UserId,
    /// The subscriber.
    pub msisdn: Msisdn,
    /// The text as it will be sent (with the sender's name in front).
    pub text: String,
    /// How many SMS it takes.
    pub parts: usize,
    /// The alphabet it is encoded in.
    pub alphabet: Alphabet,
}

/// The start of the windows the limits count in, for the snapshot's loader.
pub fn limit_windows(now: UnixTime) -> (UnixTime, UnixTime) {
    (now.plus(-RATE_WINDOW_SECS), now.plus(-DAY_WINDOW_SECS))
}

/// Checks that do not need the store: the ones a front end's request fails on
/// before a snapshot is worth loading.
pub fn screen_submit(req: &ImToSms, policy: &config::Bridge) -> Result<(), Refusal> {
    if req.text.trim().is_empty() {
        return Err(Refusal::EmptyMessage);
    }
    if req.anonymous && !policy.allow_anonymous {
        return Err(Refusal::AnonymityForbidden);
    }
    Ok(())
}

/// May this IM go out as SMS now, and as what. The checks run in the order a
/// sender can act on: who they are, whom they write to, their limits, then the
/// bridge's state and the message itself.
pub fn decide_submit(
    snap: SubmitSnapshot,
    req: &ImToSms,
    policy: &config::Bridge,
) -> Result<Outgoing, Refusal> {
    screen_submit(req, policy)?;
    let user = snap
        .user
        .ok_or_else(|| Refusal::UnknownUser(req.sender.address.clone()))?;
    if !user.settings.may_send_sms {
        return Err(Refusal::SmsNotAllowed(user.address().to_owned()));
    }
    let msisdn = snap.recipient?;
    if snap.blocked {
        return Err(Refusal::Blocked(msisdn.to_string()));
    }
    if snap.opted_out {
        return Err(Refusal::OptedOut(msisdn.to_string()));
    }
    let st = &user.settings;
    if st.rate_per_minute > 0 && snap.sent_last_minute >= st.rate_per_minute {
        return Err(Refusal::RateLimited {
            limit: st.rate_per_minute,
            retry_after: MINUTE,
        });
    }
    if st.daily_cap > 0 && snap.sent_last_day >= st.daily_cap {
        return Err(Refusal::DailyCap(st.daily_cap));
    }
    if snap.queued >= policy.queue_limit {
        return Err(Refusal::QueueFull {
            queued: snap.queued,
            retry_after: QUEUE_RETRY,
        });
    }
    if !snap.modems_ready {
        return Err(Refusal::NoModem {
            retry_after: MINUTE,
        });
    }
    let text = with_prefix(&user, req, &policy.sender_prefix);
    let plan = pdu::plan(&text, &EncodeOptions::default());
    if plan.parts > policy.max_parts {
        return Err(Refusal::TooLong {
            parts: plan.parts,
            max: policy.max_parts,
        });
    }
    Ok(Outgoing {
        user: user.id,
        msisdn,
        text,
        parts: plan.parts,
        alphabet: plan.alphabet,
    })
}

/// The text as sent: with the sender's name in front unless anonymous. Trailing
/// line breaks (which some clients add to the body) are dropped: an SMS has no
/// room for them. Only the configured name or the address is used: the From
/// display name is the sender's to choose, and would let anyone sign an SMS "Bank".
pub fn with_prefix(user: &User, req: &ImToSms, template: &str) -> String {
    let text = req.text.trim_end_matches(['\r', '\n']);
    if template.is_empty() || req.anonymous || user.settings.anonymous {
        return text.to_owned();
    }
    let name = user
        .settings
        .display_name
        .clone()
        .unwrap_or_else(|| super::core::user_part(user.address()).to_owned());
    format!("{}{text}", template.replace("{name}", &name))
}

/// May an IM from one user be kept for another: not when empty, not when the
/// recipient blocked the sender.
pub fn decide_relay(text: &str, blocked_by_recipient: bool, to: &str) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::EmptyMessage);
    }
    if blocked_by_recipient {
        return Err(Refusal::BlockedByRecipient(to.to_owned()));
    }
    Ok(())
}

/// Whom an IM from a user of another domain is for, once resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignReach {
    /// A user of the bridge.
    User {
        /// They blocked the sender's address.
        blocked_sender: bool,
    },
    /// An SMS-only subscriber.
    Subscriber,
    /// A user of yet another domain.
    Foreign,
}

/// May an IM from a user of another domain (its server accepted as a peer)
/// reach `to`: a user of the bridge when `[federation] foreign_to_users` and
/// they have not blocked the sender; an SMS-only subscriber only when
/// `foreign_to_sms` (an SMS costs money); a user of another domain never (the
/// bridge is no open relay).
pub fn decide_foreign_inbound(
    reach: ForeignReach,
    text: &str,
    to: &str,
    federation: &config::Federation,
) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::EmptyMessage);
    }
    match reach {
        ForeignReach::User { .. } if !federation.foreign_to_users => {
            Err(Refusal::ForeignNotAllowed(to.to_owned()))
        }
        ForeignReach::User {
            blocked_sender: true,
        } => Err(Refusal::BlockedByRecipient(to.to_owned())),
        ForeignReach::User { .. } => Ok(()),
        ForeignReach::Subscriber if federation.foreign_to_sms => Ok(()),
        ForeignReach::Subscriber | ForeignReach::Foreign => {
            Err(Refusal::ForeignNotAllowed(to.to_owned()))
        }
    }
}

/// May an IM from a user of the bridge go to a user of another domain: not
/// when empty, not when the sender blocked them.
pub fn decide_foreign_outbound(text: &str, blocked: bool, to: &str) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::EmptyMessage);
    }
    if blocked {
        return Err(Refusal::Blocked(to.to_owned()));
    }
    Ok(())
}

/// Who might get an SMS from a number, as read from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSnapshot {
    /// The user an earlier attempt already chose (kept across retries).
    pub chosen: Option<UserId>,
    /// Users with the number in their contacts (not blocked), oldest contact first.
    pub owners: Vec<UserId>,
    /// The user who last wrote to the number (and did not block it).
    pub last_writer: Option<UserId>,
    /// The configured fallback user, if it exists.
    pub fallback: Option<UserId>,
    /// The number is a user's own phone, and IMs for them went there as SMS
    /// while they were offline.
    pub phone_reply: Option<PhoneReply>,
}

/// A user's own phone that got IMs for them as SMS (TS 23.204 IP-SM-GW).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneReply {
    /// The user whose phone it is.
    pub owner: UserId,
    /// Who sent the latest IM that went there.
    pub im_sender: UserId,
}

/// Which user gets an SMS: the one already chosen; else, from a user's own
/// phone, the sender of the latest IM sent there for them; else the contact
/// owner who last wrote to the number; else the first contact owner; else
/// whoever last wrote; else the fallback; else nobody.
pub fn route_reply(snap: &RouteSnapshot) -> Option<UserId> {
    if let Some(u) = snap.chosen {
        return Some(u);
    }
    if let Some(p) = snap.phone_reply {
        return Some(p.im_sender);
    }
    let by_contact = match snap.last_writer {
        Some(l) if snap.owners.contains(&l) => Some(l),
        _ => snap.owners.first().copied(),
    };
    by_contact.or(snap.last_writer).or(snap.fallback)
}

/// Whom an SMS routed to `to` is shown as from: the user whose phone sent it
/// when it answers an IM `to` sent there for them (an IM from that user),
/// else nobody (an SMS from its number).
pub fn reply_as(snap: &RouteSnapshot, to: UserId) -> Option<UserId> {
    snap.phone_reply
        .filter(|p| p.im_sender == to)
        .map(|p| p.owner)
}

/// The phone an IM for `to` goes to as SMS instead of waiting: their own,
/// when they asked for IMs as SMS while offline and their front end says
/// they are offline now (`online`: `None` when it cannot tell, which keeps
/// the IM).
pub fn offline_phone(to: &User, online: Option<bool>) -> Option<&Msisdn> {
    if to.settings.offline_delivery != OfflineDelivery::Sms || online != Some(false) {
        return None;
    }
    to.settings.phone.as_ref()
}

/// Whether an IM that could not go to the recipient's phone as SMS is kept
/// for them instead (as if they had no phone): yes, unless the store
/// failed, whatever the SMS path refused (the sender's limits, no modem, an
/// opted-out phone), so nothing accepted is lost and nothing is refused that
/// would have been kept.
pub fn keep_instead_of_sms(refusal: &Refusal) -> bool {
    !matches!(
        refusal,
        Refusal::StoreBusy { .. } | Refusal::Internal { .. }
    )
}

/// Whether a received SMS is the opt-out keyword.
pub fn is_opt_out(text: &str, keyword: &str) -> bool {
    !keyword.is_empty() && text.trim().eq_ignore_ascii_case(keyword)
}

/// Whether a received SMS has waited too long for its user.
pub fn inbound_expired(received_at: UnixTime, now: UnixTime, expiry: Duration) -> bool {
    now.0 - received_at.0 > secs(expiry)
}

/// When the next delivery attempt of a received SMS is due after `attempts`.
pub fn inbound_retry_at(attempts: u32, now: UnixTime) -> UnixTime {
    now.plus((30i64 << attempts.min(5)).min(900))
}

/// What a status report does to the part it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEffect {
    /// The part's new state.
    pub part_state: MessageState,
    /// Why it failed, when the report says so; the rest of the message then
    /// fails too (a phone cannot join a message with a part missing).
    pub failure: Option<String>,
}

/// The effect of a report with TP-ST `status` on its part: delivered, failed
/// (0x40–0x7F and reserved values), or still sent while the centre keeps trying.
pub fn report_effect(status: pdu::Status) -> ReportEffect {
    match status.outcome() {
        Outcome::Delivered => ReportEffect {
            part_state: MessageState::Delivered,
            failure: None,
        },
        Outcome::StillTrying => ReportEffect {
            part_state: MessageState::Sent,
            failure: None,
        },
        Outcome::Failed => ReportEffect {
            part_state: MessageState::Failed,
            failure: Some(format!("status report: TP-ST {:#04x}", status.0)),
        },
    }
}

/// How many parts of a message are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartCounts {
    /// Waiting for a modem.
    pub queued: u32,
    /// Claimed by a modem.
    pub sending: u32,
    /// Submitted, no final report yet.
    pub sent: u32,
    /// Reported delivered.
    pub delivered: u32,
    /// Failed.
    pub failed: u32,
    /// Sent with no known outcome.
    pub unknown: u32,
    /// Sent; no status report came within the report window.
    pub delivery_unknown: u32,
}

/// A message's state from its parts: failed as soon as one part failed, then
/// outcome unknown (the send itself is in doubt, a policy still decides), then
/// delivered when every part is, delivery unknown when every part is delivered
/// or delivery unknown, sent when every part left (its reports may still
/// come), sending once one was claimed, else queued.
pub fn message_state(c: PartCounts) -> MessageState {
    let total =
        c.queued + c.sending + c.sent + c.delivered + c.failed + c.unknown + c.delivery_unknown;
    let ended = c.delivered + c.delivery_unknown;
    if c.failed > 0 {
        MessageState::Failed
    } else if c.unknown > 0 {
        MessageState::OutcomeUnknown
    } else if c.delivered == total {
        MessageState::Delivered
    } else if ended == total {
        MessageState::DeliveryUnknown
    } else if c.sent + ended == total {
        MessageState::Sent
    } else if c.sending + c.sent + ended > 0 {
        MessageState::Sending
    } else {
        MessageState::Queued
    }
}

/// Whether a state is final: nothing more will happen to the message.
pub fn is_final(state: MessageState) -> bool {
    matches!(
        state,
        MessageState::Delivered | MessageState::Failed | MessageState::DeliveryUnknown
    )
}

/// The notification a final message owes its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Every part reached the phone (IMDN `delivered`, IMPS 200).
    Delivered,
    /// It did not, or (by default) nobody can say it did.
    Failed,
    /// Nobody can say whether it did (`delivery_unknown_notice = "neutral"`).
    Unknown,
}

/// Which delivery notification a message in `state` owes its sender, or `None`
/// when it is not final or the sender did not ask for that outcome. Delivery
/// unknown is not a success, so it answers a request for negative notifications:
/// as a failure, or as the front end's neutral value when so configured. The
/// store keeps whether it was sent, so it is sent once.
pub fn notification_due(
    state: MessageState,
    wants_positive: bool,
    wants_negative: bool,
    unknown_as: UnknownNotice,
) -> Option<Notice> {
    match state {
        MessageState::Delivered => wants_positive.then_some(Notice::Delivered),
        MessageState::Failed => wants_negative.then_some(Notice::Failed),
        MessageState::DeliveryUnknown => wants_negative.then_some(match unknown_as {
            UnknownNotice::Failed => Notice::Failed,
            UnknownNotice::Neutral => Notice::Unknown,
        }),
        _ => None,
    }
}

/// The cutoff for status reports: a part still `sent` that went out before it
/// (more than `window` before `now`) gets no report any more and ends as
/// delivery unknown. A part sent exactly `window` ago still waits.
pub fn reports_overdue_before(now: UnixTime, window: Duration) -> UnixTime {
    now.plus(-secs(window))
}

/// Whether the status report of a part sent at `sent_at` is overdue at `now`:
/// the rule [`reports_overdue_before`] applies in one query.
pub fn report_overdue(sent_at: UnixTime, now: UnixTime, window: Duration) -> bool {
    sent_at.0 < reports_overdue_before(now, window).0
}

/// Whether a notification the sender could not be given since `final_at` is
/// given up (the same window as a received SMS kept for an offline user).
pub fn notice_given_up(final_at: UnixTime, now: UnixTime, expiry: Duration) -> bool {
    inbound_expired(final_at, now, expiry)
}

/// What to do with a part the modem refused: retry later, or never.
pub fn send_retry(class: CmsClass, attempt: u32, max_attempts: u32, now: UnixTime) -> Retry {
    match class {
        CmsClass::Permanent => Retry::Never,
        _ if attempt >= max_attempts => Retry::Never,
        CmsClass::Transient => {
            Retry::At(now.plus((30i64 << attempt.saturating_sub(1).min(6)).min(1800)))
        }
        CmsClass::ModemState => Retry::At(now.plus(30)),
    }
}

/// Whether a message with a part of unknown outcome is queued again (and may
/// reach the phone twice) or failed (rule 4: never resent blindly by default).
pub fn requeue_unknown(policy: OutcomeUnknown) -> bool {
    policy == OutcomeUnknown::Requeue
}

/// The cutoff before which queued messages have waited too long for a modem.
pub fn outbox_expired_before(now: UnixTime, expiry: Duration) -> UnixTime {
    now.plus(-secs(expiry))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

mod watch;
pub use watch::{
    WatchSnapshot, blocks_messages, decide_watch, decision_of, normalise_address, watcher_handling,
};

#[cfg(test)]
mod tests;
