//! IMPS sessions without I/O or clock: Login nonces, session ids (made by the
//! caller from ≥128 random bits), the KeepAliveTime each session must be
//! touched within, the queue of server-initiated primitives a Polling-Request
//! collects, and presence subscriptions. Time comes in as `now`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::wbxml::Version;
use crate::store::InboundId;
use crate::xml::Element;

/// Session limits, from `[imps]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// KeepAliveTime when the client asks for none.
    pub keep_alive: Duration,
    /// Shortest KeepAliveTime granted.
    pub min_keep_alive: Duration,
    /// Longest KeepAliveTime granted (and the longest TimeToLive).
    pub max_keep_alive: Duration,
    /// How long a 4-way Login nonce is valid.
    pub nonce_ttl: Duration,
    /// Most server-initiated primitives queued per session.
    pub max_queue: usize,
    /// Most sessions at once.
    pub max_sessions: usize,
    /// Most sessions of one user at once.
    pub max_sessions_per_user: usize,
    /// Most 4-way Login nonces pending at once, and from one address.
    pub max_nonces: usize,
    /// Most 4-way Login nonces pending from one address.
    pub max_nonces_per_address: usize,
    /// Whether a SessionID is accepted only from the address that logged in
    /// (off for clients behind NAT whose address changes).
    pub bind_to_address: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(300),
            min_keep_alive: Duration::from_secs(30),
            max_keep_alive: Duration::from_secs(3600),
            nonce_ttl: Duration::from_secs(120),
            max_queue: 500,
            max_sessions: 1_000,
            max_sessions_per_user: 8,
            max_nonces: 4_096,
            max_nonces_per_address: 16,
            bind_to_address: true,
        }
    }
}

/// A server-initiated primitive waiting for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Our TransactionID for it.
    pub transaction_id: String,
    /// The primitive (`NewMessage`, `DeliveryReport-Request`, …).
    pub primitive: Element,
}

/// How the client takes new messages (ClientCapability's
/// `InitialDeliveryMethod`, `SetDeliveryMethod-Request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMethod {
    /// `P`: the message itself in a NewMessage (the default).
    #[default]
    Push,
    /// `N`: a MessageNotification; the client fetches it with GetMessage.
    Notify,
}

impl DeliveryMethod {
    /// The method a CSP `DeliveryMethod` value names (`N`; anything else is push).
    pub fn parse(value: &str) -> Self {
        if value.trim().eq_ignore_ascii_case("N") {
            Self::Notify
        } else {
            Self::Push
        }
    }

    /// The CSP value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "P",
            Self::Notify => "N",
        }
    }
}

/// A message handed to the client, by its MessageID: which inbound message
/// it is, and what a GetMessage answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The bridge's inbound message.
    pub inbound: InboundId,
    /// Its `MessageInfo`.
    pub info: Element,
    /// Its `ContentData`.
    pub content: String,
    /// The client confirmed it (kept so a repeated GetMessage or
    /// MessageDelivered is answered the same).
    pub confirmed: bool,
    /// Our TransactionID of the latest NewMessage that carried it: a Status
    /// 200 answering that transaction says the client has it.
    pub transaction: Option<String>,
}

/// One logged-in client.
#[derive(Debug, Clone)]
pub struct Session {
    /// The SessionID.
    pub id: String,
    /// The user's address at the bridge.
    pub user: String,
    /// The UserID as the client logged in with.
    pub user_id: String,
    /// The address the client logged in from.
    pub client: IpAddr,
    /// KeepAliveTime granted.
    pub keep_alive: Duration,
    /// Last request seen.
    pub last_seen: Instant,
    /// Server-initiated primitives not yet polled.
    pub queue: VecDeque<Pending>,
    /// Names the client subscribed to (as given), for PresenceNotification.
    pub watching: Vec<String>,
    /// The `SessionCookie` of the Login, which a CIR names.
    pub cookie: Option<String>,
    /// The CSP version the client logged in with (named in CIRs).
    pub version: Version,
    /// The secret last part of the session's standalone HTTP CIR URL (random,
    /// so the URL does not carry the SessionID).
    pub cir_token: String,
    /// The session's CIR channel, if the client opened one: bumped whenever a
    /// primitive is queued. Dropped with the session (or replaced by a newer
    /// channel), which ends the channel's connection.
    cir: Option<watch::Sender<u64>>,
    next_tid: u64,
    /// How the client takes new messages.
    pub delivery: DeliveryMethod,
    /// Messages handed to the client, by MessageID: confirmed with
    /// MessageDelivered or fetched with GetMessage.
    pub offered: HashMap<String, Offer>,
}

impl Session {
    /// Queues a server-initiated primitive; `false` if the queue is full.
    pub fn push(&mut self, primitive: Element, limit: usize) -> bool {
        self.push_tracked(primitive, limit).is_some()
    }

    /// Queues a server-initiated primitive: the TransactionID it goes out
    /// with, `None` if the queue is full.
    pub fn push_tracked(&mut self, primitive: Element, limit: usize) -> Option<String> {
        if self.queue.len() >= limit {
            return None;
        }
        self.next_tid += 1;
        let transaction_id = format!("s{}", self.next_tid);
        self.queue.push_back(Pending {
            transaction_id: transaction_id.clone(),
            primitive,
        });
        if let Some(cir) = &self.cir {
            cir.send_modify(|n| *n = n.wrapping_add(1));
        }
        Some(transaction_id)
    }

    /// Remembers `offer` as `message_id`, making room by forgetting
    /// confirmed ones; `false` if `limit` unconfirmed offers are held already.
    pub fn remember_offer(&mut self, message_id: &str, offer: Offer, limit: usize) -> bool {
        if !self.offered.contains_key(message_id) && self.offered.len() >= limit {
            self.offered.retain(|_, o| !o.confirmed);
            if self.offered.len() >= limit {
                return false;
            }
        }
        self.offered.insert(message_id.to_owned(), offer);
        true
    }

    /// Whether a primitive about `message_id` (NewMessage or
    /// MessageNotification) still waits in the queue, unpolled.
    pub fn queued_message(&self, message_id: &str) -> bool {
        self.queue
            .iter()
            .any(|p| p.primitive.text_at(&["MessageInfo", "MessageID"]) == Some(message_id))
    }

    /// Whether the client has messages it has not confirmed.
    pub fn unconfirmed(&self) -> bool {
        self.offered.values().any(|o| !o.confirmed)
    }
}

/// An attached CIR channel: woken when something is queued for the session.
#[derive(Debug)]
pub struct CirAttached {
    /// Changes when a primitive is queued; closed when the session ends or
    /// another channel replaces this one. Starts marked changed if something
    /// was already waiting.
    pub wake: watch::Receiver<u64>,
    /// The SessionCookie of the Login, if the client gave one.
    pub cookie: Option<String>,
    /// The CSP version of the session.
    pub version: Version,
}

/// Why a session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// The server holds its most sessions.
    Full,
    /// The user holds their most sessions.
    UserFull,
}

/// Why no nonce was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyNonces;

/// Why a SessionID was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// It existed and timed out (CSP 600).
    Expired,
    /// Never issued, or logged out (CSP 604).
    Unknown,
}

/// Every session, nonce and recently expired id.
#[derive(Debug, Default)]
pub struct Sessions {
    limits: Limits,
    live: HashMap<String, Session>,
    /// Expired session ids, to answer 600 rather than 604 for a while.
    expired: HashMap<String, Instant>,
    /// Nonces issued per UserID (lower-cased) and client address, with when
    /// they were issued: one client asking for a nonce never replaces
    /// another's.
    nonces: HashMap<(String, IpAddr), (String, Instant)>,
}

impl Sessions {
    /// No sessions yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The KeepAliveTime granted for a requested TimeToLive.
    pub fn grant(&self, ttl: Option<Duration>) -> Duration {
        ttl.unwrap_or(self.limits.keep_alive)
            .clamp(self.limits.min_keep_alive, self.limits.max_keep_alive)
    }

    /// Remembers a nonce for a 4-way Login of `user_id` from `client`.
    /// Refused when too many are pending, overall or from `client`: pending
    /// nonces are never pushed out, so a flood cannot break a login under way.
    pub fn issue_nonce(
        &mut self,
        now: Instant,
        user_id: &str,
        client: IpAddr,
        nonce: String,
    ) -> Result<(), TooManyNonces> {
        let key = (user_id.to_ascii_lowercase(), client);
        if !self.nonces.contains_key(&key) {
            if self.nonces.len() >= self.limits.max_nonces {
                self.expire(now);
            }
            let from_client = self.nonces.keys().filter(|(_, c)| *c == client).count();
            if self.nonces.len() >= self.limits.max_nonces
                || from_client >= self.limits.max_nonces_per_address
            {
                return Err(TooManyNonces);
            }
        }
        self.nonces.insert(key, (nonce, now));
        Ok(())
    }

    /// Takes the nonce issued to `user_id` at `client`, if it is still valid
    /// (use once).
    pub fn take_nonce(&mut self, now: Instant, user_id: &str, client: IpAddr) -> Option<String> {
        let (nonce, at) = self
            .nonces
            .remove(&(user_id.to_ascii_lowercase(), client))?;
        (now.duration_since(at) <= self.limits.nonce_ttl).then_some(nonce)
    }

    /// How many nonces are pending.
    pub fn pending_nonces(&self) -> usize {
        self.nonces.len()
    }

    /// Starts a session for a client at `client`; refused when the server or
    /// the user holds their most sessions.
    pub fn open(
        &mut self,
        now: Instant,
        id: String,
        user: String,
        user_id: String,
        keep_alive: Duration,
        client: IpAddr,
    ) -> Result<&mut Session, OpenError> {
        self.expire(now);
        if self.live.len() >= self.limits.max_sessions {
            return Err(OpenError::Full);
        }
        if self.live.values().filter(|s| s.user == user).count()
            >= self.limits.max_sessions_per_user
        {
            return Err(OpenError::UserFull);
        }
        let s = Session {
            id: id.clone(),
            user,
            user_id,
            client,
            keep_alive,
            last_seen: now,
            queue: VecDeque::new(),
            watching: Vec::new(),
            cookie: None,
            version: Version::V13,
            cir_token: String::new(),
            cir: None,
            next_tid: 0,
            delivery: DeliveryMethod::Push,
            offered: HashMap::new(),
        };
        Ok(self.live.entry(id).or_insert(s))
    }

    /// Whether a request from `client` may use session `id`: from the address
    /// that logged in, unless sessions are not bound to addresses. Answers as
    /// for an unknown id, so a stolen SessionID tells its user nothing.
    pub fn bound(&self, id: &str, client: IpAddr) -> Result<(), SessionError> {
        match self.live.get(id) {
            Some(s) if !self.limits.bind_to_address || s.client == client => Ok(()),
            Some(_) => Err(SessionError::Unknown),
            None => Ok(()),
        }
    }

    /// The live session `id`, touched (its keep-alive restarts).
    pub fn touch(&mut self, now: Instant, id: &str) -> Result<&mut Session, SessionError> {
        if let Some(s) = self.live.get(id)
            && now.duration_since(s.last_seen) > s.keep_alive
        {
            self.expire(now);
        }
        match self.live.get_mut(id) {
            Some(s) => {
                s.last_seen = now;
                Ok(s)
            }
            None if self.expired.contains_key(id) => Err(SessionError::Expired),
            None => Err(SessionError::Unknown),
        }
    }

    /// Ends a session (Logout).
    pub fn close(&mut self, id: &str) -> Option<Session> {
        self.live.remove(id)
    }

    /// Ends sessions idle past their KeepAliveTime and forgets old nonces and
    /// tombstones. Spurious calls are harmless. Returns the ended sessions.
    pub fn expire(&mut self, now: Instant) -> Vec<Session> {
        let dead: Vec<String> = self
            .live
            .values()
            .filter(|s| now.duration_since(s.last_seen) > s.keep_alive)
            .map(|s| s.id.clone())
            .collect();
        let ttl = self.limits.nonce_ttl;
        self.nonces
            .retain(|_, (_, at)| now.duration_since(*at) <= ttl);
        let keep = self.limits.max_keep_alive;
        self.expired.retain(|_, at| now.duration_since(*at) <= keep);
        let mut ended = Vec::new();
        for id in dead {
            if let Some(s) = self.live.remove(&id) {
                if self.expired.len() < self.limits.max_sessions * 4 {
                    self.expired.insert(id, now);
                }
                ended.push(s);
            }
        }
        ended
    }

    /// When the next session may expire.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.live.values().map(|s| s.last_seen + s.keep_alive).min()
    }

    /// Live sessions of a user (by address at the bridge).
    pub fn of_user<'a>(&'a mut self, user: &'a str) -> impl Iterator<Item = &'a mut Session> + 'a {
        self.live.values_mut().filter(move |s| s.user == user)
    }

    /// Every live session.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.live.values_mut()
    }

    /// Whether server-initiated primitives wait for session `id` (Poll T).
    pub fn has_queued(&self, id: &str) -> bool {
        self.live.get(id).is_some_and(|s| !s.queue.is_empty())
    }

    /// Attaches a CIR channel to the live session `id` used from `client`
    /// (under the same address binding as requests), replacing any earlier
    /// one: one channel per session.
    pub fn attach_cir(&mut self, id: &str, client: IpAddr) -> Result<CirAttached, SessionError> {
        self.bound(id, client)?;
        let s = self
            .live
            .get_mut(id)
            .ok_or(if self.expired.contains_key(id) {
                SessionError::Expired
            } else {
                SessionError::Unknown
            })?;
        let (tx, mut wake) = watch::channel(0);
        if !s.queue.is_empty() {
            wake.mark_changed();
        }
        s.cir = Some(tx);
        Ok(CirAttached {
            wake,
            cookie: s.cookie.clone(),
            version: s.version,
        })
    }

    /// Whether something waits for the session whose HTTP CIR token is
    /// `token`, asked from `client` (under the same address binding as
    /// requests); an unknown or empty token is [`SessionError::Unknown`].
    pub fn cir_http(&self, token: &str, client: IpAddr) -> Result<bool, SessionError> {
        let s = self
            .live
            .values()
            .find(|s| !token.is_empty() && s.cir_token == token)
            .ok_or(SessionError::Unknown)?;
        self.bound(&s.id, client)?;
        Ok(!s.queue.is_empty())
    }

    /// Whether the user has a live session.
    pub fn is_online(&self, user: &str) -> bool {
        self.live.values().any(|s| s.user == user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn sessions() -> (Sessions, Instant) {
        (Sessions::new(Limits::default()), Instant::now())
    }

    #[test]
    fn keep_alive_time_is_enforced_and_expired_ids_say_so() {
        let (mut s, t0) = sessions();
        let ka = s.grant(Some(Duration::from_secs(60)));
        assert_eq!(ka, Duration::from_secs(60));
        s.open(t0, "id1".into(), "wv:a@x".into(), "wv:a@x".into(), ka, HERE)
            .unwrap();
        assert!(s.touch(t0 + Duration::from_secs(59), "id1").is_ok());
        // Touched at 59 s: alive until 119 s.
        assert!(s.touch(t0 + Duration::from_secs(118), "id1").is_ok());
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(178)));
        assert_eq!(
            s.touch(t0 + Duration::from_secs(300), "id1").err(),
            Some(SessionError::Expired)
        );
        assert_eq!(s.touch(t0, "nope").err(), Some(SessionError::Unknown));
        assert!(!s.is_online("wv:a@x"));
    }

    #[test]
    fn keep_alive_is_clamped_and_logout_forgets() {
        let (mut s, t0) = sessions();
        assert_eq!(
            s.grant(Some(Duration::from_secs(1))),
            Duration::from_secs(30)
        );
        assert_eq!(
            s.grant(Some(Duration::from_secs(999_999))),
            Duration::from_secs(3600)
        );
        assert_eq!(s.grant(None), Duration::from_secs(300));
        s.open(
            t0,
            "id".into(),
            "u".into(),
            "u".into(),
            Duration::from_secs(30),
            HERE,
        )
        .unwrap();
        assert!(s.close("id").is_some());
        assert_eq!(s.touch(t0, "id").err(), Some(SessionError::Unknown));
    }

    #[test]
    fn nonces_are_single_use_and_expire() {
        let (mut s, t0) = sessions();
        s.issue_nonce(t0, "wv:A@x", HERE, "n1".into()).unwrap();
        assert_eq!(s.take_nonce(t0, "wv:a@x", HERE).as_deref(), Some("n1"));
        assert_eq!(s.take_nonce(t0, "wv:a@x", HERE), None);
        s.issue_nonce(t0, "wv:a@x", HERE, "n2".into()).unwrap();
        assert_eq!(
            s.take_nonce(t0 + Duration::from_secs(121), "wv:a@x", HERE),
            None
        );
    }

    #[test]
    fn a_cir_channel_is_woken_by_pushes_and_closed_with_its_session() {
        let (mut s, t0) = sessions();
        let ka = s.grant(None);
        s.open(t0, "id1".into(), "u".into(), "wv:u@x".into(), ka, HERE)
            .unwrap()
            .cookie = Some("c00k1e".into());
        assert_eq!(
            s.attach_cir("id1", THERE).unwrap_err(),
            SessionError::Unknown
        );
        assert_eq!(
            s.attach_cir("nope", HERE).unwrap_err(),
            SessionError::Unknown
        );
        let mut first = s.attach_cir("id1", HERE).unwrap();
        assert_eq!(first.cookie.as_deref(), Some("c00k1e"));
        assert!(!first.wake.has_changed().unwrap(), "nothing waits yet");
        assert!(
            s.touch(t0, "id1")
                .unwrap()
                .push(Element::new("NewMessage"), 5)
        );
        assert!(first.wake.has_changed().unwrap());
        first.wake.borrow_and_update();
        // A second HELO replaces the first channel, and starts woken since
        // something already waits.
        let second = s.attach_cir("id1", HERE).unwrap();
        assert!(
            first.wake.has_changed().is_err(),
            "replaced channel is closed"
        );
        assert!(second.wake.has_changed().unwrap());
        s.close("id1");
        assert!(
            second.wake.has_changed().is_err(),
            "closed with the session"
        );
    }

    #[test]
    fn the_http_cir_token_answers_whether_something_waits() {
        let (mut s, t0) = sessions();
        let ka = s.grant(None);
        s.open(t0, "id1".into(), "u".into(), "wv:u@x".into(), ka, HERE)
            .unwrap()
            .cir_token = "t1".into();
        s.open(t0, "id2".into(), "v".into(), "wv:v@x".into(), ka, HERE)
            .unwrap();
        assert_eq!(s.cir_http("t1", HERE), Ok(false));
        assert!(
            s.touch(t0, "id1")
                .unwrap()
                .push(Element::new("NewMessage"), 5)
        );
        assert_eq!(s.cir_http("t1", HERE), Ok(true));
        assert_eq!(s.cir_http("t1", THERE), Err(SessionError::Unknown));
        assert_eq!(
            s.cir_http("", HERE),
            Err(SessionError::Unknown),
            "id2 has none"
        );
        assert_eq!(s.cir_http("id1", HERE), Err(SessionError::Unknown));
        s.close("id1");
        assert_eq!(s.cir_http("t1", HERE), Err(SessionError::Unknown));
    }

    #[test]
    fn queue_is_bounded_and_numbers_transactions() {
        let (mut s, t0) = sessions();
        let sess = s
            .open(
                t0,
                "id".into(),
                "u".into(),
                "u".into(),
                Duration::from_secs(30),
                HERE,
            )
            .unwrap();
        assert!(sess.push(Element::new("NewMessage"), 2));
        assert!(sess.push(Element::new("NewMessage"), 2));
        assert!(!sess.push(Element::new("NewMessage"), 2));
        assert_eq!(sess.queue[1].transaction_id, "s2");
    }

    #[test]
    fn a_nonce_for_one_client_never_replaces_anothers() {
        let (mut s, t0) = sessions();
        s.issue_nonce(t0, "wv:a@x", HERE, "mine".into()).unwrap();
        // Someone else asks for a nonce for the same UserID.
        s.issue_nonce(t0, "wv:a@x", THERE, "theirs".into()).unwrap();
        assert_eq!(s.take_nonce(t0, "wv:a@x", HERE).as_deref(), Some("mine"));
        assert_eq!(s.take_nonce(t0, "wv:a@x", THERE).as_deref(), Some("theirs"));
    }

    #[test]
    fn pending_nonces_are_capped_overall_and_per_address() {
        let limits = Limits {
            max_nonces: 20,
            max_nonces_per_address: 5,
            ..Limits::default()
        };
        let (mut s, t0) = (Sessions::new(limits), Instant::now());
        for i in 0..5 {
            s.issue_nonce(t0, &format!("wv:u{i}@x"), HERE, "n".into())
                .unwrap();
        }
        assert_eq!(
            s.issue_nonce(t0, "wv:u5@x", HERE, "n".into()),
            Err(TooManyNonces)
        );
        // Asking again for a UserID already pending replaces its own nonce.
        assert_eq!(s.issue_nonce(t0, "wv:u1@x", HERE, "n2".into()), Ok(()));
        for i in 0..15u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, i));
            s.issue_nonce(t0, "wv:v@x", ip, "n".into()).unwrap();
        }
        assert_eq!(s.pending_nonces(), 20);
        assert_eq!(
            s.issue_nonce(t0, "wv:w@x", THERE, "n".into()),
            Err(TooManyNonces)
        );
        // Once they expire there is room again.
        let later = t0 + Duration::from_secs(121);
        assert_eq!(s.issue_nonce(later, "wv:w@x", THERE, "n".into()), Ok(()));
        assert_eq!(s.pending_nonces(), 1);
    }

    #[test]
    fn sessions_are_capped_per_user_and_bound_to_their_address() {
        let limits = Limits {
            max_sessions_per_user: 2,
            ..Limits::default()
        };
        let (mut s, t0) = (Sessions::new(limits), Instant::now());
        let ka = Duration::from_secs(60);
        for id in ["s1", "s2"] {
            s.open(t0, id.into(), "alice".into(), "wv:alice@x".into(), ka, HERE)
                .unwrap();
        }
        assert_eq!(
            s.open(
                t0,
                "s3".into(),
                "alice".into(),
                "wv:alice@x".into(),
                ka,
                HERE
            )
            .err(),
            Some(OpenError::UserFull)
        );
        s.open(t0, "s4".into(), "bob".into(), "wv:bob@x".into(), ka, HERE)
            .unwrap();
        assert_eq!(s.bound("s1", HERE), Ok(()));
        assert_eq!(s.bound("s1", THERE), Err(SessionError::Unknown));
        let unbound = Limits {
            bind_to_address: false,
            ..Limits::default()
        };
        let mut s = Sessions::new(unbound);
        s.open(
            t0,
            "s1".into(),
            "alice".into(),
            "wv:alice@x".into(),
            ka,
            HERE,
        )
        .unwrap();
        assert_eq!(s.bound("s1", THERE), Ok(()));
    }
}
