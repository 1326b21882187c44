//! IMPS sessions without I/O or clock: Login nonces, session ids (made by the
//! caller from ≥128 random bits), the KeepAliveTime each session must be
//! touched within, the queue of server-initiated primitives a Polling-Request
//! collects, and presence subscriptions. Time comes in as `now`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

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

/// One logged-in client.
#[derive(Debug, Clone)]
pub struct Session {
    /// The SessionID.
    pub id: String,
    /// The user's address at the bridge.
    pub user: String,
    /// The UserID as the client logged in with.
    pub user_id: String,
    /// KeepAliveTime granted.
    pub keep_alive: Duration,
    /// Last request seen.
    pub last_seen: Instant,
    /// Server-initiated primitives not yet polled.
    pub queue: VecDeque<Pending>,
    /// Names the client subscribed to (as given), for PresenceNotification.
    pub watching: Vec<String>,
    /// Own presence as last updated (the `PresenceSubList` children).
    pub presence: Vec<Element>,
    next_tid: u64,
}

impl Session {
    /// Queues a server-initiated primitive; `false` if the queue is full.
    pub fn push(&mut self, primitive: Element, limit: usize) -> bool {
        if self.queue.len() >= limit {
            return false;
        }
        self.next_tid += 1;
        self.queue.push_back(Pending {
            transaction_id: format!("s{}", self.next_tid),
            primitive,
        });
        true
    }
}

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
    /// Nonces issued per UserID (lower-cased), with when they were issued.
    nonces: HashMap<String, (String, Instant)>,
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

    /// Remembers a nonce for a 4-way Login of `user_id`.
    pub fn issue_nonce(&mut self, now: Instant, user_id: &str, nonce: String) {
        if self.nonces.len() >= self.limits.max_sessions {
            self.expire(now);
        }
        self.nonces
            .insert(user_id.to_ascii_lowercase(), (nonce, now));
    }

    /// Takes the nonce issued to `user_id`, if it is still valid (use once).
    pub fn take_nonce(&mut self, now: Instant, user_id: &str) -> Option<String> {
        let (nonce, at) = self.nonces.remove(&user_id.to_ascii_lowercase())?;
        (now.duration_since(at) <= self.limits.nonce_ttl).then_some(nonce)
    }

    /// Starts a session; `None` when there are too many.
    pub fn open(
        &mut self,
        now: Instant,
        id: String,
        user: String,
        user_id: String,
        keep_alive: Duration,
    ) -> Option<&mut Session> {
        self.expire(now);
        if self.live.len() >= self.limits.max_sessions {
            return None;
        }
        let s = Session {
            id: id.clone(),
            user,
            user_id,
            keep_alive,
            last_seen: now,
            queue: VecDeque::new(),
            watching: Vec::new(),
            presence: Vec::new(),
            next_tid: 0,
        };
        Some(self.live.entry(id).or_insert(s))
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

    /// Whether the user has a live session.
    pub fn is_online(&self, user: &str) -> bool {
        self.live.values().any(|s| s.user == user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> (Sessions, Instant) {
        (Sessions::new(Limits::default()), Instant::now())
    }

    #[test]
    fn keep_alive_time_is_enforced_and_expired_ids_say_so() {
        let (mut s, t0) = sessions();
        let ka = s.grant(Some(Duration::from_secs(60)));
        assert_eq!(ka, Duration::from_secs(60));
        s.open(t0, "id1".into(), "wv:a@x".into(), "wv:a@x".into(), ka)
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
        );
        assert!(s.close("id").is_some());
        assert_eq!(s.touch(t0, "id").err(), Some(SessionError::Unknown));
    }

    #[test]
    fn nonces_are_single_use_and_expire() {
        let (mut s, t0) = sessions();
        s.issue_nonce(t0, "wv:A@x", "n1".into());
        assert_eq!(s.take_nonce(t0, "wv:a@x").as_deref(), Some("n1"));
        assert_eq!(s.take_nonce(t0, "wv:a@x"), None);
        s.issue_nonce(t0, "wv:a@x", "n2".into());
        assert_eq!(s.take_nonce(t0 + Duration::from_secs(121), "wv:a@x"), None);
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
            )
            .unwrap();
        assert!(sess.push(Element::new("NewMessage"), 2));
        assert!(sess.push(Element::new("NewMessage"), 2));
        assert!(!sess.push(Element::new("NewMessage"), 2));
        assert_eq!(sess.queue[1].transaction_id, "s2");
    }
}
