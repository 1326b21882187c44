//! What the front ends (SIP, IMPS) and the bridge say to each other: typed
//! requests and answers, no wire formats (DESIGN.md rule 2). A front end turns a
//! wire request into an [`ImToSms`] and the [`Refusal`] it may get back into its
//! own status code; the bridge hands it [`SmsToIm`] and [`DeliveryNotice`]s to
//! deliver.

use std::time::Duration;

pub use crate::modem::BoxFuture;
pub use crate::store::{BodyFormat, FrontEnd, InboundId, MessageId, UnixTime};

/// How the front end knows who the sender is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The sender answered our digest challenge (SIP) or logged in (IMPS).
    Authenticated,
    /// A trusted peer (e.g. the operator's Kamailio, by source address) asserts the
    /// identity; it authenticated its own user.
    TrustedPeer,
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
}

/// Which delivery notifications the IM asked for (IMDN `Disposition-Notification`,
/// IMPS `DeliveryReport`). Display notifications are never given (TS 23.204 §6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyOn {
    /// `positive-delivery`.
    pub delivered: bool,
    /// `negative-delivery`.
    pub failed: bool,
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

/// The IM is stored durably and will be sent (SIP 202, IMPS success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The outbox message.
    pub message: MessageId,
    /// How many SMS it takes.
    pub parts: usize,
}

/// Why an IM was not accepted. Each front end maps these to its own codes
/// (SIP: 403, 404, 413, 433, 503, 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender is not a user of this bridge.
    #[error("{0} is not a user of this bridge")]
    UnknownUser(String),
    /// Not allowed: may not send SMS, the contact is blocked, the subscriber opted out.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// No such alias, or not a telephone number.
    #[error("unknown recipient: {0}")]
    UnknownRecipient(String),
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
    /// Try later: no modem registered, queue full, database busy, rate limit.
    #[error("try again in {}s: {why}", retry_after.as_secs())]
    Unavailable {
        /// When to try again.
        retry_after: Duration,
        /// Why, for the log and the reason phrase.
        why: String,
    },
    /// The request itself is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// An SMS (reassembled) for an IM user.
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
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Taken by the user's client or server (SIP 2xx, IMPS queued for polling).
    Delivered,
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
    /// The subscriber it was for, E.164 with `+`.
    pub recipient: String,
    /// Delivered to the phone (every part), or failed.
    pub delivered: bool,
    /// When the outcome was known.
    pub at: UnixTime,
    /// Why it failed, when it did.
    pub reason: Option<String>,
}

/// A subscriber as a watcher sees it: always SMS-only, always "open".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberPresence {
    /// E.164 with `+`.
    pub msisdn: String,
    /// The watcher's name for the contact.
    pub name: Option<String>,
}

/// SIP digest credentials of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCredentials {
    /// The realm the HA1 was made for.
    pub realm: String,
    /// MD5(username:realm:password), lower-case hex.
    pub ha1: String,
}

/// What front ends ask of the bridge.
pub trait BridgeApi: Send + Sync + 'static {
    /// Accepts an IM for SMS: authorise, resolve, count parts, store durably.
    /// `Ok` only once it is on disk (rule 3).
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>>;
    /// Digest credentials of a user by address (SIP AOR), `None` if unknown or
    /// without a SIP password.
    fn sip_credentials(&self, address: String) -> BoxFuture<Option<SipCredentials>>;
    /// The presence of `target` for `watcher`: `Ok` when the subscriber is in the
    /// watcher's contacts (and not blocked), else a refusal (SIP 403/404).
    fn presence(
        &self,
        watcher: String,
        target: Recipient,
    ) -> BoxFuture<Result<SubscriberPresence, Refusal>>;
    /// A user came online (SIP REGISTER, IMPS login): deliver what waits for them now.
    fn user_online(&self, address: String);
}

/// What the bridge asks of a front end.
pub trait ImFrontEnd: Send + Sync + 'static {
    /// Delivers an SMS to an IM user.
    fn deliver(&self, msg: SmsToIm) -> BoxFuture<DeliveryResult>;
    /// Sends a delivery notification (IMDN, IMPS DeliveryReport).
    fn notify(&self, notice: DeliveryNotice) -> BoxFuture<DeliveryResult>;
}
