//! What the front ends (SIP, IMPS) and the bridge say to each other: typed
//! requests and answers, no wire formats (DESIGN.md rule 2). A front end turns a
//! wire request into an [`ImToSms`] and the [`Refusal`] it may get back into its
//! own status code; the bridge hands it [`SmsToIm`] and [`DeliveryNotice`]s to
//! deliver.

use std::time::Duration;

pub use crate::modem::BoxFuture;
pub use crate::store::{
    BodyFormat, DEFAULT_LIST, FailureCause, FrontEnd, InboundId, MessageId, UnixTime,
};

/// How the front end knows who the sender is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The sender answered our digest challenge (SIP) or logged in (IMPS).
    Authenticated,
    /// A trusted peer (e.g. the operator's Kamailio, by source address) asserts the
    /// identity; it authenticated its own user.
    TrustedPeer,
    /// The server of another domain (a `[[federation.domain]]`, by source
    /// address) asserts the identity of its user.
    FederatedPeer,
}

/// The sender of an IM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// SIP address of record (`sip:alice@example.com`) or IMPS UserID (`wv:alice@…`).
    pub address: String,
    /// Display name from the request, if any.
    pub display_name: Option<String>,
    /// How the identity was established.
    pub verified: Verified,
}

/// Who an IM is for, as the request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A telephone number as written (`+4917…`, `004917…`, `017…`): normalised by
    /// the bridge with the configured country code.
    Number(String),
    /// A contact alias of the sender (`sip:<alias>@<domain>`) or an IMPS nickname.
    Alias(String),
    /// A user of another domain, as a `sip:` URI (`sip:jane@otherdomain.test`):
    /// routed there by the federating front end, never an SMS or a local user.
    Foreign(String),
}

/// Which delivery notifications the IM asked for (IMDN `Disposition-Notification`,
/// IMPS `DeliveryReport`). For an SMS, display notifications are never given
/// (TS 23.204 §6.10); between users of the bridge the recipient's client gives
/// them and the bridge passes them on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyOn {
    /// `positive-delivery`.
    pub delivered: bool,
    /// `negative-delivery`.
    pub failed: bool,
    /// `display` (IM to another user only).
    pub displayed: bool,
}

/// An IM for an SMS-only subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImToSms {
    /// Who sends it.
    pub sender: Sender,
    /// Which front end took it.
    pub front_end: FrontEnd,
    /// For whom.
    pub recipient: Recipient,
    /// The text, already decoded from its charset and unwrapped from CPIM.
    pub text: String,
    /// The IM's message id (CPIM `imdn.Message-ID`, IMPS MessageID).
    pub im_message_id: Option<String>,
    /// Delivery notifications wanted.
    pub notify: NotifyOn,
    /// The sender asked not to be named (`Privacy: id`, IMPS anonymity).
    pub anonymous: bool,
}

/// The IM is stored durably and will be sent (SIP 202, IMPS success), or
/// has already reached the recipient's device (SIP 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The outbox message (0 for an IM to another user).
    pub message: MessageId,
    /// How many SMS it takes (0 for an IM to another user).
    pub parts: usize,
    /// An IM to another user that their device has taken already (SIP
    /// answers 200 instead of 202, RFC 3428 §7).
    pub delivered: bool,
}

/// Why a request was not accepted, one variant per cause. Each front end maps
/// these to its own codes in one table (`sip::message::refusal_reply`,
/// `imps::server::refusal_code`); nobody reads the text to decide anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender is not a user of this bridge.
    #[error("{0} is not a user of this bridge")]
    UnknownUser(String),
    /// The user's settings do not allow SMS.
    #[error("{0} may not send SMS")]
    SmsNotAllowed(String),
    /// The sender blocked this subscriber or user.
    #[error("{0} is blocked")]
    Blocked(String),
    /// The recipient (another user) blocked the sender.
    #[error("{0} blocked you")]
    BlockedByRecipient(String),
    /// The subscriber opted out of messages (STOP).
    #[error("{0} opted out of messages")]
    OptedOut(String),
    /// The watcher may not see this one: not in their contacts.
    #[error("{0} is not in your contacts")]
    NotInContacts(String),
    /// The per-user rate limit was reached.
    #[error("rate limit of {limit} messages per minute")]
    RateLimited {
        /// Messages per minute.
        limit: u32,
        /// When to try again.
        retry_after: Duration,
    },
    /// The per-user daily cap was reached.
    #[error("daily cap of {0} messages reached")]
    DailyCap(u32),
    /// Too many messages wait in the outbox.
    #[error("{queued} messages are waiting for a modem")]
    QueueFull {
        /// How many.
        queued: usize,
        /// When to try again.
        retry_after: Duration,
    },
    /// No modem can send now.
    #[error("no modem is registered")]
    NoModem {
        /// When to try again.
        retry_after: Duration,
    },
    /// More parts than the configured maximum.
    #[error("the text needs {parts} SMS, at most {max} are allowed")]
    TooLong {
        /// Parts needed.
        parts: usize,
        /// The limit.
        max: usize,
    },
    /// Policy forbids anonymous senders.
    #[error("anonymous senders are not allowed")]
    AnonymityForbidden,
    /// No such alias, contact, user or number.
    #[error("unknown recipient: {0}")]
    UnknownRecipient(String),
    /// A user of another domain, and no route leads there (or federation is
    /// off).
    #[error("no route to {0}")]
    NoRoute(String),
    /// A user of another domain may not reach this recipient (policy:
    /// foreign senders never reach SMS-only subscribers unless allowed).
    #[error("{0} may not be reached from another domain")]
    ForeignNotAllowed(String),
    /// No such contact list.
    #[error("no contact list {0}")]
    UnknownList(String),
    /// The UserID or the password or digest at Login was wrong (one answer
    /// for both, so Logins cannot tell which users exist).
    #[error("invalid UserID or password")]
    BadCredentials,
    /// The user exists but has no IMPS account.
    #[error("{0} has no IMPS account")]
    NoImpsAccount(String),
    /// The message has no text.
    #[error("empty message")]
    EmptyMessage,
    /// The request itself is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The database cannot be written now (busy, read-only, disk full).
    #[error("database busy, try again in {}s", retry_after.as_secs())]
    StoreBusy {
        /// When to try again.
        retry_after: Duration,
    },
    /// Too much work of this kind is waiting (password checks during a flood).
    #[error("busy, try again in {}s", retry_after.as_secs())]
    Busy {
        /// When to try again.
        retry_after: Duration,
    },
    /// Something failed inside the bridge (logged where it happened).
    #[error("internal error, try again in {}s", retry_after.as_secs())]
    Internal {
        /// When to try again.
        retry_after: Duration,
    },
}

impl Refusal {
    /// The refusal's name for counting (`rate_limited`, `opted_out`, …): one
    /// per variant, never the text.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::UnknownUser(_) => "unknown_user",
            Self::SmsNotAllowed(_) => "sms_not_allowed",
            Self::Blocked(_) => "blocked",
            Self::BlockedByRecipient(_) => "blocked_by_recipient",
            Self::OptedOut(_) => "opted_out",
            Self::NotInContacts(_) => "not_in_contacts",
            Self::RateLimited { .. } => "rate_limited",
            Self::DailyCap(_) => "daily_cap",
            Self::QueueFull { .. } => "queue_full",
            Self::NoModem { .. } => "no_modem",
            Self::TooLong { .. } => "too_long",
            Self::AnonymityForbidden => "anonymity_forbidden",
            Self::UnknownRecipient(_) => "unknown_recipient",
            Self::NoRoute(_) => "no_route",
            Self::ForeignNotAllowed(_) => "foreign_not_allowed",
            Self::UnknownList(_) => "unknown_list",
            Self::BadCredentials => "bad_credentials",
            Self::NoImpsAccount(_) => "no_imps_account",
            Self::EmptyMessage => "empty_message",
            Self::Invalid(_) => "invalid",
            Self::StoreBusy { .. } => "store_busy",
            Self::Busy { .. } => "busy",
            Self::Internal { .. } => "internal",
        }
    }

    /// When the sender may try again, for refusals that are about "now" (SIP
    /// 503 + Retry-After, IMPS 503/507); `None` for refusals that stay.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. }
            | Self::QueueFull { retry_after, .. }
            | Self::NoModem { retry_after }
            | Self::StoreBusy { retry_after }
            | Self::Busy { retry_after }
            | Self::Internal { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// An SMS (reassembled) for an IM user, or an IM relayed from another user of
/// the bridge: then `from` is that user's user part (`alice`), `inbound` is the
/// inbox row keeping it, and the front end names the sender in its own scheme
/// (`sip:alice@<domain>`, `wv:alice@<domain>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsToIm {
    /// The inbox row, for logs.
    pub inbound: InboundId,
    /// The user's address (SIP AOR or IMPS UserID).
    pub to_user: String,
    /// The sender's number, E.164 with `+` (or an alphanumeric sender as received).
    pub from: String,
    /// The contact's name for that number in the user's list, if any.
    pub from_name: Option<String>,
    /// The text; parts that never arrived are marked in it.
    pub text: String,
    /// When the (first part of the) SMS was received.
    pub received: UnixTime,
    /// Whether parts are missing.
    pub incomplete: bool,
    /// How the user wants bodies.
    pub body_format: BodyFormat,
    /// For an IM from another user (of the bridge or another domain): what
    /// the recipient's front end keeps of the sender's envelope, so that the
    /// recipient's reports correlate. `None` for an SMS.
    pub envelope: Option<ImEnvelope>,
}

/// The envelope of an IM between users, kept with it while stored (CPIM
/// `imdn.Message-ID`, `DateTime`, `From`; IMPS MessageID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImEnvelope {
    /// The IM's message id as its sender gave it (the bridge makes one up
    /// when they gave none).
    pub message_id: String,
    /// The sender's whole address (`sip:alice@example.com`,
    /// `wv:harry@example.com`, `sip:jane@otherdomain.test`).
    pub from_address: String,
    /// The sender asked for a display notification: the recipient's client
    /// is asked to give one (`Disposition-Notification: display`). Delivery
    /// notifications are the bridge's to give, never asked of the client.
    pub display: bool,
    /// The sender asked for notifications: the recipient's front end passes
    /// the envelope on (SIP: as `message/cpim` with `imdn.Message-ID`) even
    /// when the user takes plain text otherwise.
    pub cpim: bool,
    /// When the sender sent it.
    pub sent_at: UnixTime,
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Taken by the user's client or server (SIP 2xx, IMPS MessageDelivered).
    Delivered,
    /// Handed to the user's client, which has not confirmed it yet (IMPS
    /// NewMessage or MessageNotification): kept, not delivered, until
    /// [`BridgeApi::im_received`] says so; offered again when the user
    /// comes back.
    Offered,
    /// Not now (no registration, 408, 480, timeout): keep it and try again.
    Retry(String),
    /// Refused for good (other 4xx–6xx): record it as failed.
    Failed(String),
}

/// A delivery notification for an IM that asked for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryNotice {
    /// The user who sent the IM.
    pub to_user: String,
    /// The front end it came through.
    pub front_end: FrontEnd,
    /// The IM's message id.
    pub im_message_id: String,
    /// The subscriber it was for, E.164 with `+`; for an IM to another user,
    /// their address as the bridge knows it.
    pub recipient: String,
    /// For an IM to another user of the bridge: their user part (`bob`), for
    /// the front end to name them in its own scheme. `None` for a subscriber.
    pub recipient_user: Option<String>,
    /// Delivered to the phone (every part) or the user's device, or not.
    pub delivered: bool,
    /// A display notification the recipient's client gave (then `delivered`
    /// is true as well).
    pub displayed: bool,
    /// Not delivered as far as anyone knows, and the sender is to be told so
    /// neutrally (`[bridge] delivery_unknown_notice = "neutral"`): the front end
    /// uses its neutral value (IMDN `error`, IMPS 202) instead of a failure.
    pub neutral: bool,
    /// When the outcome was known.
    pub at: UnixTime,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// The kind of failure, for the front end's code (IMPS: 541 expired vs 410).
    pub cause: Option<FailureCause>,
}

/// What a watcher sees: a subscriber (always SMS-only, always "open"), or,
/// when `im_user` is set, another user of the bridge (an IMPS user watched from
/// SIP) with their online state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberPresence {
    /// E.164 with `+` (empty for an IM user).
    pub msisdn: String,
    /// The watcher's name for the contact.
    pub name: Option<String>,
    /// Set when the watched one is a user of the bridge, not a subscriber.
    pub im_user: Option<ImUserPresence>,
    /// What the presentity's policy decided for this watcher (for a
    /// subscriber: `Allow` when the watcher has them as a contact, else the
    /// policy of the contact's owner). `PoliteBlock`: `im_user` shows offline
    /// and nothing more is said; `Pending`: show nothing until
    /// `ImFrontEnd::watch_changed` says more. A blocked watcher gets a
    /// refusal, never this.
    pub decision: WatchDecision,
    /// Set when a subscriber cannot be reached now, with why in words
    /// ("opted out of messages (STOP)", "blocked"): shown not available with
    /// this as the note / status text instead of "SMS-only".
    pub unavailable: Option<String>,
}

/// The presence of a user of the bridge, as another front end's watchers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImUserPresence {
    /// Their user part (`erin` of `wv:erin@…`).
    pub user_part: String,
    /// The front end they use (whose news updates this).
    pub front_end: FrontEnd,
    /// What they say of themself now (offline when logged out / not
    /// registered).
    pub presence: crate::presence::Presence,
}

/// SIP digest credentials of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCredentials {
    /// The realm the HA1 was made for.
    pub realm: String,
    /// MD5(username:realm:password), lower-case hex.
    pub ha1: String,
}

/// An IM from a user of the bridge for a user of another domain, to be sent
/// there by the front end that federates (SIP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignIm {
    /// The local sender, as the other domain is to see them
    /// (`sip:harry@example.com`).
    pub from: String,
    /// Their display name, if any.
    pub display_name: Option<String>,
    /// The foreign recipient, a `sip:` URI (`sip:jane@otherdomain.test`).
    pub to: String,
    /// The text.
    pub text: String,
    /// The IM's message id (for IMDN correlation).
    pub im_message_id: Option<String>,
    /// Delivery notifications wanted (sent as CPIM with IMDN headers then).
    pub notify: NotifyOn,
}

/// Where a watch of a presentity in another domain stands, as its server
/// told us (RFC 6665 `Subscription-State`, with the NOTIFY body mapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignWatchState {
    /// Waiting for the presentity to decide.
    Pending,
    /// Authorised; what the presentity's server says of them now.
    Active(crate::presence::Presence),
    /// Ended by the other side, refused, or unreachable (the reason as given,
    /// for logs).
    Terminated(String),
}

/// News of a foreign presentity for one local watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignPresence {
    /// The local watcher's address (`wv:harry@example.com`, `sip:…`).
    pub watcher: String,
    /// The foreign presentity (`sip:jane@otherdomain.test`).
    pub presentity: String,
    /// Where the watch stands.
    pub state: ForeignWatchState,
}

/// What a presentity's rule does with a watcher (RFC 5025 `sub-handling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubHandling {
    /// Refused: the watcher learns nothing, the subscription ends.
    Block,
    /// Ask the presentity (reactive authorisation): pending until they answer.
    Confirm,
    /// Accepted, but the watcher is only ever shown "offline".
    PoliteBlock,
    /// Accepted with full presence.
    Allow,
}

impl SubHandling {
    /// The RFC 5025 name (`block`, `confirm`, `polite-block`, `allow`), as
    /// pres-rules, the store and `[presence] default_policy` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Confirm => "confirm",
            Self::PoliteBlock => "polite-block",
            Self::Allow => "allow",
        }
    }

    /// The handling named so, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Block, Self::Confirm, Self::PoliteBlock, Self::Allow]
            .into_iter()
            .find(|h| h.as_str() == s)
    }
}

/// Whom a rule is about (RFC 4745 `identity` / `one` and `domain`
/// conditions, or a rule with no condition).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatcherMatch {
    /// One watcher, by address (`sip:harry@example.com`, `wv:harry@…`).
    Identity(String),
    /// Every watcher of one domain.
    Domain(String),
    /// Anyone.
    Anyone,
}

/// One rule of a presentity's access policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRule {
    /// The rule's id (RFC 4745 `rule id`, kept for XCAP).
    pub id: String,
    /// Whom it is about.
    pub watcher: WatcherMatch,
    /// What it does.
    pub handling: SubHandling,
}

/// The bridge's decision on one watch (a subscription or a fetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchDecision {
    /// Full presence.
    Allow,
    /// Shown offline, without being told.
    PoliteBlock,
    /// Refused (SIP: terminated/403; IMPS: nothing).
    Block,
    /// No rule: waiting for the presentity (the presentity has been told).
    Pending,
}

impl WatchDecision {
    /// Its name in the store and logs (`allow`, `polite-block`, `block`,
    /// `pending`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::PoliteBlock => "polite-block",
            Self::Block => "block",
            Self::Pending => "pending",
        }
    }

    /// The decision named so, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Allow, Self::PoliteBlock, Self::Block, Self::Pending]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// Where one watcher of a presentity stands (RFC 3858 `watcher` status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherInfo {
    /// The watcher's address.
    pub watcher: String,
    /// Where their watch stands now.
    pub decision: WatchDecision,
    /// When the bridge first saw them watch.
    pub since: UnixTime,
}

/// News for a front end: a presentity's decision on a watcher changed
/// (a rule written, a reactive answer, a watcher removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchChanged {
    /// The presentity's address.
    pub presentity: String,
    /// The watcher's address.
    pub watcher: String,
    /// What the watcher may see now.
    pub decision: WatchDecision,
}

/// What front ends ask of the bridge.
pub trait BridgeApi: Send + Sync + 'static {
    /// Accepts an IM for SMS: authorise, resolve, count parts, store durably.
    /// `Ok` only once it is on disk (rule 3).
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>>;
    /// Digest credentials of a user by address (SIP AOR), `None` if unknown or
    /// without a SIP password.
    fn sip_credentials(&self, address: String) -> BoxFuture<Option<SipCredentials>>;
    /// The presence of `target` for `watcher`, as the presentity's policy
    /// decides (`SubscriberPresence::decision`): a user of the bridge by
    /// their policy ([`BridgeApi::authorise_watch`], so a new pending
    /// watcher is announced); a subscriber `Allow` when in the watcher's
    /// contacts, else by the policy of the contact's owner. A blocked
    /// watcher, a blocked contact, or a subscriber nobody has: a refusal
    /// (SIP 403/404).
    fn presence(
        &self,
        watcher: String,
        target: Recipient,
    ) -> BoxFuture<Result<SubscriberPresence, Refusal>>;
    /// A user came online (SIP REGISTER, IMPS login): deliver what waits for them now.
    fn user_online(&self, address: String);
    /// `user`'s client confirmed it has the message kept as `inbound` (IMPS
    /// MessageDelivered, GetMessage): delivered now, and its sender told if
    /// they asked, in one transaction. A message that is not `user`'s, or
    /// already delivered, is an `Ok` that changes nothing. The default knows
    /// no messages.
    fn im_received(&self, user: String, inbound: InboundId) -> BoxFuture<Result<(), Refusal>> {
        let _ = inbound;
        Box::pin(async move { Err(Refusal::UnknownUser(user)) })
    }
    /// The client of `from` (a recipient) reports on an IM it received from
    /// `to` (an IMDN `displayed` from a SIP client): kept and passed to the
    /// IM's sender when they are online, only if `from` was that IM's
    /// recipient. The default knows no messages.
    fn disposition(
        &self,
        from: Sender,
        to: Recipient,
        report: Disposition,
    ) -> BoxFuture<Result<(), Refusal>> {
        let _ = (to, report);
        Box::pin(async move { Err(Refusal::UnknownUser(from.address)) })
    }
    /// A user's presence changed (IMPS login, logout, UpdatePresence; SIP
    /// registration, PUBLISH): the other front ends tell their watchers. The
    /// default tells nobody.
    fn presence_changed(&self, address: String, presence: crate::presence::Presence) {
        let _ = (address, presence);
    }
    /// A presentity of another domain, watched for a local user, changed: the
    /// bridge hands it to the watcher's front end. The default drops it.
    fn foreign_presence(&self, update: ForeignPresence) {
        let _ = update;
    }
    /// The bridge's local domains and the peers it accepts requests from; the
    /// default: none known, and a front end uses what it knows itself (its
    /// own domain and listen addresses).
    fn domains(&self) -> Option<std::sync::Arc<crate::domains::Domains>> {
        None
    }
    /// Decides a watch of `presentity` by `watcher` by the presentity's
    /// access policy (SUBSCRIBE, SubscribePresence, GetPresence, local or
    /// foreign watchers alike). A watcher no rule decides is recorded as
    /// pending and the presentity is told (`ImFrontEnd::watcher_pending`).
    /// The default knows no presentity.
    fn authorise_watch(
        &self,
        presentity: String,
        watcher: String,
    ) -> BoxFuture<Result<WatchDecision, Refusal>> {
        let _ = watcher;
        Box::pin(async move { Err(Refusal::UnknownUser(presentity)) })
    }
    /// The presentity's watchers and where each stands (winfo, CSP status
    /// query for pending requests).
    fn watchers(&self, presentity: String) -> BoxFuture<Result<Vec<WatcherInfo>, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownUser(presentity)) })
    }
    /// The presentity's answer about one watcher (reactive authorisation, or
    /// removing a watcher): it becomes an identity rule of their policy, and
    /// every front end hears `ImFrontEnd::watch_changed`.
    fn decide_watcher(
        &self,
        presentity: String,
        watcher: String,
        handling: SubHandling,
    ) -> BoxFuture<Result<(), Refusal>> {
        let _ = (watcher, handling);
        Box::pin(async move { Err(Refusal::UnknownUser(presentity)) })
    }
    /// The presentity's access policy, in rule order.
    fn presence_rules(&self, presentity: String) -> BoxFuture<Result<Vec<PresenceRule>, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownUser(presentity)) })
    }
    /// Replaces the presentity's access policy (XCAP PUT of pres-rules);
    /// watchers whose decision changes are told through the front ends.
    fn set_presence_rules(
        &self,
        presentity: String,
        rules: Vec<PresenceRule>,
    ) -> BoxFuture<Result<(), Refusal>> {
        let _ = rules;
        Box::pin(async move { Err(Refusal::UnknownUser(presentity)) })
    }
}

/// What the bridge asks of a front end.
pub trait ImFrontEnd: Send + Sync + 'static {
    /// Delivers an SMS to an IM user.
    fn deliver(&self, msg: SmsToIm) -> BoxFuture<DeliveryResult>;
    /// Sends a delivery notification (IMDN, IMPS DeliveryReport).
    fn notify(&self, notice: DeliveryNotice) -> BoxFuture<DeliveryResult>;
    /// Another front end's user (by user part) now shows `presence`: tell the
    /// watchers of that user. The default has none.
    fn presence_changed(&self, user_part: &str, presence: &crate::presence::Presence) {
        let _ = (user_part, presence);
    }
    /// What this front end's user (by user part) shows now (IMPS: the
    /// attributes of their last UpdatePresence while logged in; SIP: their
    /// publication, else their registration); `None` when the front end
    /// cannot tell.
    fn user_presence(&self, user_part: &str) -> Option<crate::presence::Presence> {
        let _ = user_part;
        None
    }
    /// Whether the user with this address is online here (SIP registered, IMPS
    /// logged in); `None` when the front end cannot tell.
    fn online(&self, address: &str) -> Option<bool> {
        let _ = address;
        None
    }
    /// Sends an IM to a user of another domain and waits for its answer there
    /// (SIP: the final response). Only the federating front end (SIP) can; the
    /// default has no route.
    fn send_foreign(&self, msg: ForeignIm) -> BoxFuture<Result<(), Refusal>> {
        Box::pin(async move { Err(Refusal::NoRoute(msg.to)) })
    }
    /// Starts (or keeps) watching a presentity of another domain for a local
    /// watcher; news comes back through [`BridgeApi::foreign_presence`]. `Ok`
    /// once the watch is under way (the first news may say `Pending`).
    fn watch_foreign(&self, watcher: String, presentity: String) -> BoxFuture<Result<(), Refusal>> {
        let _ = watcher;
        Box::pin(async move { Err(Refusal::NoRoute(presentity)) })
    }
    /// Ends a watch started by [`ImFrontEnd::watch_foreign`] (unsubscribe,
    /// logout); nothing if there is none.
    fn unwatch_foreign(&self, watcher: &str, presentity: &str) {
        let _ = (watcher, presentity);
    }
    /// News of a foreign presentity for one of this front end's users (an
    /// IMPS watcher): push it to them. The default has no such users.
    fn foreign_presence(&self, update: ForeignPresence) {
        let _ = update;
    }
    /// A watcher waits for this front end's user `presentity` to decide
    /// (SIP: a `presence.winfo` NOTIFY; IMPS: the CSP's reactive
    /// authorisation request). The default has no such users.
    fn watcher_pending(&self, presentity: &str, watcher: &str) {
        let _ = (presentity, watcher);
    }
    /// A presentity's decision on a watcher changed: this front end
    /// activates, downgrades or ends that watcher's subscriptions (SIP
    /// NOTIFY active/terminated; IMPS PresenceNotification or nothing), and
    /// tells a presentity watching its own watchers (winfo).
    fn watch_changed(&self, change: &WatchChanged) {
        let _ = change;
    }
}

/// How an IMPS client proves who it is at Login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginProof {
    /// The password itself (the 2-way Login).
    Password(String),
    /// The 4-way Login: Base64(MD5(nonce ‖ password)) for a nonce the front end
    /// issued.
    Md5Digest {
        /// The nonce as sent to the client.
        nonce: String,
        /// What the client sent in `DigestBytes`.
        digest: String,
    },
}

/// A user of the bridge, as a front end needs them after Login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImUser {
    /// The address the bridge knows them by (SIP AOR, else IMPS UserID).
    pub address: String,
    /// Their IMPS UserID, if they have one.
    pub imps_id: Option<String>,
    /// Their display name.
    pub display_name: Option<String>,
}

/// Whom a name leads to, for one user: an SMS-only subscriber or another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An SMS-only subscriber.
    Subscriber {
        /// E.164 with `+`.
        msisdn: String,
        /// The user's name for them.
        name: Option<String>,
    },
    /// A user of another domain (`sip:jane@otherdomain.test`).
    Foreign {
        /// Their address, a `sip:` URI.
        address: String,
        /// The user's name for them.
        name: Option<String>,
    },
    /// Another user of the bridge.
    User {
        /// Their user part (`alice` of `wv:alice@…`), how front ends name them.
        user_part: String,
        /// Which front end reaches them.
        front_end: FrontEnd,
        /// The user's name for them.
        name: Option<String>,
    },
}

/// An IM from a user to someone named by address, number or nickname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImSend {
    /// Who sends it.
    pub sender: Sender,
    /// Which front end took it.
    pub front_end: FrontEnd,
    /// For whom: a number, a user part, a nickname or alias of a contact.
    pub to: String,
    /// The text.
    pub text: String,
    /// The IM's message id.
    pub im_message_id: Option<String>,
    /// Delivery notifications wanted (for SMS).
    pub notify: NotifyOn,
}

/// An IM accepted by [`ImApi::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued as SMS.
    Sms(Accepted),
    /// For another user of the bridge (or of another domain): their device
    /// has it (`delivered`), or it is stored and delivered when they are
    /// online.
    Im {
        /// Taken by the recipient's device already.
        delivered: bool,
    },
}

/// What a recipient's client reports about an IM it received from another
/// user (an IMDN from a SIP client): passed on to that IM's sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// The IM's message id, as its envelope gave it.
    pub message_id: String,
    /// What the client says.
    pub status: DispositionStatus,
    /// When it says it happened.
    pub at: UnixTime,
}

/// The dispositions a client may report (RFC 5438 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispositionStatus {
    /// Shown to the user.
    Displayed,
    /// On the device.
    Delivered,
    /// Could not be delivered or shown.
    Failed,
}

/// One entry of a contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Whom it names (with the nickname).
    pub target: Target,
    /// Blocked by the list's owner.
    pub blocked: bool,
}

/// A user's contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactList {
    /// Its name.
    pub name: String,
    /// The entries.
    pub entries: Vec<ListEntry>,
}

/// What a watcher may see of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Whom.
    pub target: Target,
    /// For a user: whether their front end has them online, if it can tell
    /// (`Some(false)` unless `decision` is `Allow`).
    pub online: Option<bool>,
    /// What the presentity's policy decided for this watcher (see
    /// [`SubscriberPresence::decision`]); a blocked watcher gets a refusal.
    pub decision: WatchDecision,
    /// A subscriber who cannot be reached now, and why (see
    /// [`SubscriberPresence::unavailable`]).
    pub unavailable: Option<String>,
}

/// What IM front ends beyond plain IM → SMS ask of the bridge (IMPS Login,
/// contact lists, blocks, presence, messages between users). Every method has a
/// default that refuses, so fakes of [`BridgeApi`] need not implement it.
pub trait ImApi: BridgeApi {
    /// Checks a Login.
    fn login(&self, user: String, proof: LoginProof) -> BoxFuture<Result<ImUser, Refusal>> {
        let _ = proof;
        Box::pin(async move { Err(Refusal::UnknownUser(user)) })
    }
    /// Whom `name` (a `wv:`/`sip:` address, a number, a nickname) is for `user`.
    fn resolve_name(&self, user: String, name: String) -> BoxFuture<Result<Target, Refusal>> {
        let _ = user;
        Box::pin(async move { Err(Refusal::UnknownRecipient(name)) })
    }
    /// Sends an IM to a subscriber (as SMS) or to another user.
    fn send(&self, req: ImSend) -> BoxFuture<Result<Sent, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownRecipient(req.to)) })
    }
    /// The user's contact lists.
    fn lists(&self, user: String) -> BoxFuture<Result<Vec<ContactList>, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownUser(user)) })
    }
    /// Creates an empty list.
    fn create_list(&self, user: String, list: String) -> BoxFuture<Result<(), Refusal>> {
        let _ = list;
        Box::pin(async move { Err(Refusal::UnknownUser(user)) })
    }
    /// Deletes a list (and its unblocked entries); `NotAllowed` if there is none.
    fn delete_list(&self, user: String, list: String) -> BoxFuture<Result<(), Refusal>> {
        let _ = list;
        Box::pin(async move { Err(Refusal::UnknownUser(user)) })
    }
    /// Puts `name` in `list` with a nickname.
    fn list_add(
        &self,
        user: String,
        list: String,
        name: String,
        nickname: Option<String>,
    ) -> BoxFuture<Result<Target, Refusal>> {
        let _ = (user, list, nickname);
        Box::pin(async move { Err(Refusal::UnknownRecipient(name)) })
    }
    /// Removes `name` from the user's lists.
    fn list_remove(&self, user: String, name: String) -> BoxFuture<Result<(), Refusal>> {
        let _ = user;
        Box::pin(async move { Err(Refusal::UnknownRecipient(name)) })
    }
    /// Blocks or unblocks `name` for the user.
    fn block(
        &self,
        user: String,
        name: String,
        blocked: bool,
    ) -> BoxFuture<Result<Target, Refusal>> {
        let _ = (user, blocked);
        Box::pin(async move { Err(Refusal::UnknownRecipient(name)) })
    }
    /// Starts watching a presentity of another domain for a local watcher
    /// (through the federating front end); news comes to the watcher's front
    /// end as [`ImFrontEnd::foreign_presence`].
    fn watch_foreign(&self, watcher: String, presentity: String) -> BoxFuture<Result<(), Refusal>> {
        let _ = watcher;
        Box::pin(async move { Err(Refusal::NoRoute(presentity)) })
    }
    /// Ends such a watch.
    fn unwatch_foreign(&self, watcher: String, presentity: String) {
        let _ = (watcher, presentity);
    }
    /// What `watcher` may see of `name` (`Watched::decision`): a user of the
    /// bridge as their policy decides (through
    /// [`BridgeApi::authorise_watch`]; refused when the watcher blocked
    /// them or they block the watcher); a subscriber as
    /// [`BridgeApi::presence`] says; a user of another domain when in the
    /// watcher's lists and not blocked (their domain decides the rest).
    fn watch(&self, watcher: String, name: String) -> BoxFuture<Result<Watched, Refusal>> {
        let _ = watcher;
        Box::pin(async move { Err(Refusal::UnknownRecipient(name)) })
    }
}
