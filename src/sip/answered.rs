//! Final answers of server transactions, kept compactly for as long as a UDP
//! client may retransmit (64·T1, RFC 3261 §17.2.2 Timer J), so a
//! retransmission gets the same answer and the request is never handled
//! twice. rsipstack keeps each finished transaction's whole parsed response
//! for that time (some 4 KiB each: 200 MiB at 5,000 MESSAGE/s); the front end
//! moves the answer here instead, and remembers the 503s the socket gave
//! without a transaction. The usual answer (a code and a To tag, nothing
//! else) takes no allocation of its own: some 100 bytes per request with the
//! map and the expiry queue, against 220 with a whole [`Reply`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rsipstack::transaction::key::TransactionKey;

use super::wire::Reply;

/// A transaction key's digest: 128 bits, so two live keys do not collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyDigest([u64; 2]);

impl KeyDigest {
    pub(crate) fn of(key: &TransactionKey) -> Self {
        let d: [u8; 16] = Md5::digest(key.to_string().as_bytes()).into();
        let half = |b: &[u8]| {
            let mut h = [0u8; 8];
            h.copy_from_slice(b);
            u64::from_be_bytes(h)
        };
        Self([half(&d[..8]), half(&d[8..])])
    }
}

/// The length of the To tags the front end chooses.
const TAG_LEN: usize = 12;

/// How a transaction was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 503 "busy" by the socket, with no transaction.
    Busy,
    /// This reply (its To tag set), by the handler.
    Reply(Reply),
}

/// Whole seconds since the cache was made: the deadlines, in 4 bytes.
type Second = u32;

/// Replies are kept in slots of this many seconds, each dropped whole once
/// its newest reply is `keep` old: a reply is kept at least `keep` and at
/// most `SLOT` seconds more, with no deadline or expiry queue per reply.
const SLOT: Second = 4;

/// How long a 503 of the socket is kept: a retransmission sent before the
/// client had it reaches us within a round trip and its queueing, and one
/// sent after it was lost may be handled anew (nothing was done for it). T2.
const BUSY_KEEP: Second = 4;

/// At most this many 503s are kept (the oldest go first beyond it): a flood
/// faster than the daemon reads costs no more than this.
const BUSY_CAP: usize = 65_536;

/// The replies given in one slot.
struct Slot {
    /// Its first second.
    from: Second,
    /// Replies of nothing but a code and the To tag [`Answered::tag`] gives
    /// the request (8 bytes each besides the key).
    bare: HashMap<KeyDigest, u16>,
    /// Any other reply, whole.
    whole: HashMap<KeyDigest, Reply>,
}

struct Kept {
    /// The slots of replies, oldest first.
    slots: VecDeque<Slot>,
    /// Each 503 of the socket with the second from which it may go, and
    /// the same in that order.
    busy: HashMap<KeyDigest, Second>,
    busy_order: VecDeque<(Second, KeyDigest)>,
}

impl Kept {
    /// The reply to `key` still kept at `now`: its code if bare, else whole.
    fn reply(&self, key: &KeyDigest, now: Second, keep: Second) -> Option<Result<u16, &Reply>> {
        let live = |s: &&Slot| s.from.saturating_add(SLOT).saturating_add(keep) > now;
        self.slots.iter().rev().take_while(live).find_map(|s| {
            s.bare
                .get(key)
                .map(|c| Ok(*c))
                .or_else(|| s.whole.get(key).map(Err))
        })
    }

    fn is_busy(&self, key: &KeyDigest, now: Second) -> bool {
        self.busy.get(key).is_some_and(|until| *until > now)
    }

    /// Lets go of the slots and 503s due at `now`, and of the oldest 503s
    /// beyond [`BUSY_CAP`].
    fn expire(&mut self, now: Second, keep: Second) {
        while self
            .slots
            .front()
            .is_some_and(|s| s.from.saturating_add(SLOT).saturating_add(keep) <= now)
        {
            self.slots.pop_front();
        }
        while let Some(&(at, old)) = self.busy_order.front() {
            if at > now && self.busy.len() <= BUSY_CAP {
                break;
            }
            self.busy_order.pop_front();
            // Unless it was kept again since (then a later entry is queued).
            if self.busy.get(&old).is_some_and(|until| *until <= at) {
                self.busy.remove(&old);
            }
        }
        if self.busy.capacity() > 4 * self.busy.len().max(1024) {
            self.busy.shrink_to_fit();
            self.busy_order.shrink_to_fit();
        }
    }
}

/// The replies of the last `keep` (rounded up to the next whole second), and
/// the socket's 503s of the last [`BUSY_KEEP`], at most [`BUSY_CAP`] of them.
pub(crate) struct Answered {
    keep: Second,
    start: Instant,
    /// The key of the To tags.
    secret: String,
    kept: Mutex<Kept>,
}

impl Answered {
    pub(crate) fn new(keep: Duration) -> Self {
        let keep = keep.as_secs() + u64::from(keep.subsec_nanos() > 0);
        Self {
            keep: Second::try_from(keep).unwrap_or(Second::MAX),
            start: Instant::now(),
            secret: rsipstack::transaction::random_text(32),
            kept: Mutex::new(Kept {
                slots: VecDeque::new(),
                busy: HashMap::new(),
                busy_order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The second `now` falls in (before the cache was made: its first).
    fn second(&self, now: Instant) -> Second {
        let s = now.saturating_duration_since(self.start).as_secs();
        Second::try_from(s).unwrap_or(Second::MAX)
    }

    /// The To tag of the reply to `key`: 12 letters and digits made from the
    /// key with this cache's secret, the same for every retransmission and
    /// unguessable without the secret (RFC 3261 §19.3), so that a kept reply
    /// need not hold its tag.
    pub(crate) fn tag(&self, key: KeyDigest) -> String {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut h = Md5::new();
        h.update(self.secret.as_bytes());
        h.update(key.0[0].to_be_bytes());
        h.update(key.0[1].to_be_bytes());
        let d: [u8; 16] = h.finalize().into();
        d[..TAG_LEN]
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect()
    }

    /// Keeps `answer` for `key` (a first answer stays while it is kept:
    /// retransmissions get that one), and lets go of those due. A reply is
    /// kept at least `keep` and less than [`SLOT`] seconds longer; a 503 of
    /// the socket at least [`BUSY_KEEP`], unless more than [`BUSY_CAP`] came
    /// since.
    pub(crate) fn remember(&self, key: KeyDigest, answer: &Answer, now: Instant) {
        let now = self.second(now);
        let mut k = self.lock();
        let kept = k.reply(&key, now, self.keep).is_some() || k.is_busy(&key, now);
        match answer {
            _ if kept => {}
            Answer::Busy => {
                let until = now
                    .saturating_add(BUSY_KEEP.min(self.keep))
                    .saturating_add(1);
                k.busy.insert(key, until);
                k.busy_order.push_back((until, key));
            }
            Answer::Reply(reply) => {
                let from = now - now % SLOT;
                if k.slots.back().is_none_or(|s| s.from != from) {
                    k.slots.push_back(Slot {
                        from,
                        bare: HashMap::new(),
                        whole: HashMap::new(),
                    });
                }
                let bare = reply.headers.is_empty()
                    && reply.body.is_empty()
                    && reply.to_tag.as_deref() == Some(self.tag(key).as_str());
                if let Some(slot) = k.slots.back_mut() {
                    if bare {
                        slot.bare.insert(key, reply.code);
                    } else {
                        slot.whole.insert(key, reply.clone());
                    }
                }
            }
        }
        k.expire(now, self.keep);
    }

    /// The answer given to `key`, if it is still kept at `now`.
    pub(crate) fn get(&self, key: KeyDigest, now: Instant) -> Option<Answer> {
        let now = self.second(now);
        let k = self.lock();
        match k.reply(&key, now, self.keep) {
            Some(Ok(code)) => {
                let mut reply = Reply::new(code);
                reply.to_tag = Some(self.tag(key));
                Some(Answer::Reply(reply))
            }
            Some(Err(reply)) => Some(Answer::Reply(reply.clone())),
            None => k.is_busy(&key, now).then_some(Answer::Busy),
        }
    }

    /// Whether `key` was answered busy by the socket (`None`: it was not
    /// answered, or that is no longer kept).
    pub(crate) fn busy(&self, key: KeyDigest, now: Instant) -> Option<bool> {
        let now = self.second(now);
        let k = self.lock();
        if k.reply(&key, now, self.keep).is_some() {
            return Some(false);
        }
        k.is_busy(&key, now).then_some(true)
    }

    /// How many answers are kept (replies, 503s).
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let k = self.lock();
        let replies = k.slots.iter().map(|s| s.bare.len() + s.whole.len()).sum();
        (replies, k.busy.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> KeyDigest {
        KeyDigest([n, !n])
    }

    /// A reply of `code` to `key` as the front end makes it.
    fn reply(a: &Answered, key: KeyDigest, code: u16) -> Answer {
        let mut r = Reply::new(code);
        r.to_tag = Some(a.tag(key));
        Answer::Reply(r)
    }

    #[test]
    fn a_reply_is_kept_for_its_time_and_the_first_one_stays() {
        let a = Answered::new(Duration::from_secs(32));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        a.remember(key(1), &reply(&a, key(1), 202), t0);
        a.remember(key(1), &Answer::Busy, t0);
        a.remember(key(1), &reply(&a, key(1), 500), at(1));
        assert_eq!(a.get(key(1), t0), Some(reply(&a, key(1), 202)));
        assert_eq!(a.busy(key(1), t0), Some(false));
        a.remember(key(2), &reply(&a, key(2), 404), at(31));
        assert_eq!(a.get(key(1), at(35)), Some(reply(&a, key(1), 202)));
        // Once its slot (seconds 0-3) is 32 s old it is gone, asked or not;
        // the second stays.
        assert_eq!(a.get(key(1), at(36)), None);
        assert_eq!(a.busy(key(1), at(36)), None);
        assert_eq!(a.get(key(2), at(36)), Some(reply(&a, key(2), 404)));
        // Answered anew after that, it is kept again for its own time.
        a.remember(key(1), &reply(&a, key(1), 200), at(37));
        assert_eq!(a.get(key(1), at(40)), Some(reply(&a, key(1), 200)));
        assert_eq!(a.len(), (2, 0));
        assert_eq!(a.get(key(1), at(72)), None);
        a.remember(key(3), &reply(&a, key(3), 200), at(72));
        assert_eq!(a.len(), (1, 0));
    }

    #[test]
    fn a_reply_with_only_a_code_and_its_tag_is_kept_as_its_code() {
        let a = Answered::new(Duration::from_secs(32));
        let t0 = Instant::now();
        // The tag is the same for the same key, another for another key,
        // and another with another secret.
        assert_eq!(a.tag(key(1)), a.tag(key(1)));
        assert_ne!(a.tag(key(1)), a.tag(key(2)));
        assert_ne!(
            a.tag(key(1)),
            Answered::new(Duration::from_secs(32)).tag(key(1))
        );
        assert_eq!(a.tag(key(1)).len(), TAG_LEN);
        assert!(a.tag(key(1)).bytes().all(|b| b.is_ascii_alphanumeric()));
        a.remember(key(1), &reply(&a, key(1), 202), t0);
        assert_eq!(a.lock().slots[0].bare.get(&key(1)), Some(&202));
        // Anything more is kept whole: a header, a body, another tag.
        let Answer::Reply(accepted) = reply(&a, key(1), 202) else {
            unreachable!()
        };
        let warned = accepted.clone().with("Retry-After", "1");
        let mut other_tag = accepted.clone();
        other_tag.to_tag = Some("a-dialog-tag".into());
        let mut with_body = accepted.clone();
        with_body.body = b"x".to_vec();
        for (n, r) in [warned, other_tag, with_body].into_iter().enumerate() {
            let k = key(10 + n as u64);
            a.remember(k, &Answer::Reply(r.clone()), t0);
            assert_eq!(a.get(k, t0), Some(Answer::Reply(r)));
        }
        assert_eq!(a.lock().slots[0].whole.len(), 3);
    }

    #[test]
    fn a_busy_answer_is_kept_for_a_round_trip_and_a_flood_of_them_is_capped() {
        let a = Answered::new(Duration::from_secs(32));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        a.remember(key(1), &Answer::Busy, t0);
        // A retransmission gets the same 503, not the handler's reply.
        a.remember(key(1), &reply(&a, key(1), 202), t0);
        assert_eq!(a.get(key(1), at(4)), Some(Answer::Busy));
        assert_eq!(a.busy(key(1), at(4)), Some(true));
        assert_eq!(a.get(key(1), at(5)), None);
        // Then it may be handled, and its reply is kept as any other.
        a.remember(key(1), &reply(&a, key(1), 202), at(5));
        assert_eq!(a.busy(key(1), at(5)), Some(false));
        // A flood in one second keeps only the newest BUSY_CAP.
        let n = BUSY_CAP as u64 + 1_000;
        for i in 0..n {
            a.remember(key(1_000 + i), &Answer::Busy, at(6));
        }
        assert_eq!(a.len(), (1, BUSY_CAP));
        assert_eq!(a.get(key(1_000), at(6)), None);
        assert_eq!(a.get(key(1_000 + n - 1), at(6)), Some(Answer::Busy));
        // And they go in time.
        a.remember(key(2), &reply(&a, key(2), 200), at(11));
        assert_eq!(a.len(), (2, 0));
    }
}
