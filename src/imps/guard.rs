//! Login throttling without I/O or clock: failed Logins are counted per UserID
//! and per client address, and after a few free attempts each further one must
//! wait a delay that doubles, up to a ceiling. Both tables have a cap, so a
//! flood of made-up UserIDs or addresses costs bounded memory; when a table is
//! full the entry idle longest is forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How failures are forgiven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before any delay.
    pub free: u32,
    /// The first delay; each further failure doubles it.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
    /// An entry idle this long is forgotten.
    pub forget: Duration,
    /// Most entries kept.
    pub cap: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

#[derive(Debug)]
struct Table<K> {
    rule: Backoff,
    entries: HashMap<K, Entry>,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(rule: Backoff) -> Self {
        Self {
            rule,
            entries: HashMap::new(),
        }
    }

    /// How long `key` must still wait at `now`, if at all.
    fn wait(&self, now: Instant, key: &K) -> Option<Duration> {
        let e = self.entries.get(key)?;
        let over = e.failures.checked_sub(self.rule.free)?;
        if over == 0 {
            return None;
        }
        let delay = self
            .rule
            .first
            .saturating_mul(1u32 << (over - 1).min(20))
            .min(self.rule.max);
        let until = e.last + delay;
        (until > now).then(|| until - now)
    }

    fn failed(&mut self, now: Instant, key: &K) {
        if let Some(e) = self.entries.get_mut(key) {
            // Failures long ago are forgiven before counting this one.
            if now.duration_since(e.last) > self.rule.forget {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            return;
        }
        if self.entries.len() >= self.rule.cap {
            let forget = self.rule.forget;
            self.entries
                .retain(|_, e| now.duration_since(e.last) <= forget);
        }
        if self.entries.len() >= self.rule.cap
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(
            key.clone(),
            Entry {
                failures: 1,
                last: now,
            },
        );
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Failed Logins per UserID and per address.
#[derive(Debug)]
pub struct LoginGuard {
    users: Table<String>,
    addresses: Table<IpAddr>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self::new(
            Backoff {
                free: 5,
                first: Duration::from_secs(1),
                max: Duration::from_secs(300),
                forget: Duration::from_secs(3600),
                cap: 10_000,
            },
            Backoff {
                free: 20,
                first: Duration::from_secs(2),
                max: Duration::from_secs(900),
                forget: Duration::from_secs(3600),
                cap: 10_000,
            },
        )
    }
}

impl LoginGuard {
    /// A guard with these rules for UserIDs and for addresses.
    pub fn new(users: Backoff, addresses: Backoff) -> Self {
        Self {
            users: Table::new(users),
            addresses: Table::new(addresses),
        }
    }

    /// Admits a Login of `user` from `addr` to be checked, counting it as a
    /// failure until [`LoginGuard::succeeded`] says otherwise: concurrent
    /// attempts cannot all pass before the first failure is recorded.
    /// `Err(wait)` when it must wait instead, and then nothing is counted.
    pub fn admit(&mut self, now: Instant, user: &str, addr: IpAddr) -> Result<(), Duration> {
        self.check(now, user, addr)?;
        self.failed(now, user, addr);
        Ok(())
    }

    /// `Err(wait)` when a Login of `user` from `addr` must wait before it is
    /// even checked.
    pub fn check(&self, now: Instant, user: &str, addr: IpAddr) -> Result<(), Duration> {
        let by_user = self.users.wait(now, &user.to_ascii_lowercase());
        let by_addr = self.addresses.wait(now, &addr);
        match (by_user, by_addr) {
            (None, None) => Ok(()),
            (a, b) => Err(a.unwrap_or_default().max(b.unwrap_or_default())),
        }
    }

    /// A Login of `user` from `addr` failed.
    pub fn failed(&mut self, now: Instant, user: &str, addr: IpAddr) {
        self.users.failed(now, &user.to_ascii_lowercase());
        self.addresses.failed(now, &addr);
    }

    /// A Login of `user` from `addr` succeeded: both start afresh.
    pub fn succeeded(&mut self, user: &str, addr: IpAddr) {
        self.users.clear(&user.to_ascii_lowercase());
        self.addresses.clear(&addr);
    }

    /// Entries held (UserIDs, addresses), for tests and status.
    pub fn len(&self) -> (usize, usize) {
        (self.users.len(), self.addresses.len())
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> (LoginGuard, Instant) {
        (LoginGuard::default(), Instant::now())
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn five_free_failures_then_a_doubling_wait() {
        let (mut g, t) = guard();
        for _ in 0..5 {
            assert_eq!(g.check(t, "alice", A), Ok(()));
            g.failed(t, "alice", A);
        }
        // The fifth failure is still free.
        assert_eq!(g.check(t, "alice", A), Ok(()));
        g.failed(t, "alice", A);
        assert_eq!(g.check(t, "alice", A), Err(Duration::from_secs(1)));
        // From another address too: it is the UserID that is throttled.
        assert_eq!(g.check(t, "ALICE", B), Err(Duration::from_secs(1)));
        let t1 = t + Duration::from_secs(1);
        assert_eq!(g.check(t1, "alice", A), Ok(()));
        g.failed(t1, "alice", A);
        assert_eq!(g.check(t1, "alice", A), Err(Duration::from_secs(2)));
        let mut now = t1;
        for _ in 0..20 {
            now += Duration::from_secs(600);
            g.failed(now, "alice", A);
        }
        assert_eq!(
            g.check(now, "alice", B),
            Err(Duration::from_secs(300)),
            "capped"
        );
        // Another user from a fresh address is not held up.
        assert_eq!(g.check(now, "bob", B), Ok(()));
    }

    #[test]
    fn admitted_attempts_count_before_their_outcome_is_known() {
        let (mut g, t) = guard();
        // Six attempts in flight at once: the sixth is already over the limit.
        for _ in 0..6 {
            assert_eq!(g.admit(t, "alice", A), Ok(()));
        }
        assert_eq!(g.admit(t, "alice", A), Err(Duration::from_secs(1)));
        // One of them turns out right: the count starts afresh.
        g.succeeded("alice", A);
        assert_eq!(g.admit(t, "alice", A), Ok(()));
    }

    #[test]
    fn an_address_failing_for_many_users_is_throttled() {
        let (mut g, t) = guard();
        for i in 0..20 {
            g.failed(t, &format!("user{i}"), A);
        }
        assert_eq!(g.check(t, "someone", A), Ok(()));
        g.failed(t, "user20", A);
        assert_eq!(g.check(t, "someone", A), Err(Duration::from_secs(2)));
        assert_eq!(g.check(t, "someone", B), Ok(()));
    }

    #[test]
    fn success_clears_and_old_failures_are_forgiven() {
        let (mut g, t) = guard();
        for _ in 0..8 {
            g.failed(t, "alice", A);
        }
        assert!(g.check(t, "alice", A).is_err());
        g.succeeded("alice", A);
        assert_eq!(g.check(t, "alice", A), Ok(()));
        for _ in 0..6 {
            g.failed(t, "bob", B);
        }
        let later = t + Duration::from_secs(3601);
        g.failed(later, "bob", B);
        assert_eq!(g.check(later, "bob", B), Ok(()), "counted from 1 again");
    }

    #[test]
    fn tables_are_capped() {
        let rule = Backoff {
            free: 1,
            first: Duration::from_secs(1),
            max: Duration::from_secs(10),
            forget: Duration::from_secs(3600),
            cap: 100,
        };
        let mut g = LoginGuard::new(rule, rule);
        let t = Instant::now();
        for i in 0..10_000u32 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 + i));
            g.failed(
                t + Duration::from_millis(u64::from(i)),
                &format!("u{i}"),
                addr,
            );
        }
        assert_eq!(g.len(), (100, 100));
        // The newest are the ones kept.
        let last = IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 + 9_999));
        g.failed(t + Duration::from_secs(20), "u9999", last);
        assert!(g.check(t + Duration::from_secs(20), "u9999", last).is_err());
    }
}
