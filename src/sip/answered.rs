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

/// The length of the To tags the front end chooses (`random_text(12)`),
/// which a bare answer keeps inline.
pub(crate) const TAG_LEN: usize = 12;

/// How a transaction was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 503 "busy" by the socket, with no transaction.
    Busy,
    /// A reply with no header or body of its own: its code and To tag.
    Bare { code: u16, tag: [u8; TAG_LEN] },
    /// Any other reply (its To tag set), by the handler.
    Reply(Box<Reply>),
}

impl Answer {
    /// How `reply` (its To tag set) is kept.
    pub(crate) fn of(reply: &Reply) -> Self {
        let tag = reply
            .to_tag
            .as_deref()
            .and_then(|t| <[u8; TAG_LEN]>::try_from(t.as_bytes()).ok());
        match tag {
            Some(tag) if reply.headers.is_empty() && reply.body.is_empty() => Self::Bare {
                code: reply.code,
                tag,
            },
            _ => Self::Reply(Box::new(reply.clone())),
        }
    }

    /// The reply that was given, for a retransmission (`None`: the socket's 503).
    pub(crate) fn reply(self) -> Option<Reply> {
        match self {
            Self::Busy => None,
            Self::Bare { code, tag } => {
                let mut reply = Reply::new(code);
                reply.to_tag = Some(String::from_utf8_lossy(&tag).into_owned());
                Some(reply)
            }
            Self::Reply(reply) => Some(*reply),
        }
    }
}

/// Whole seconds since the cache was made: the deadlines, in 4 bytes.
type Second = u32;

/// How long a 503 of the socket is kept: a retransmission sent before the
/// client had it reaches us within a round trip and its queueing, and one
/// sent after it was lost may be handled anew (nothing was done for it). T2.
const BUSY_KEEP: Second = 4;

/// At most this many 503s are kept (the oldest go first beyond it): a flood
/// faster than the daemon reads costs no more than this.
const BUSY_CAP: usize = 65_536;

/// Digests with the second from which each may go, and the same in the
/// order they go.
struct Expiring<V> {
    map: HashMap<KeyDigest, (Second, V)>,
    order: VecDeque<(Second, KeyDigest)>,
}

impl<V> Expiring<V> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Lets go of what is due at `now`, and of the oldest beyond `cap`.
    fn expire(&mut self, now: Second, cap: usize) {
        while let Some(&(at, old)) = self.order.front() {
            if at > now && self.map.len() <= cap {
                break;
            }
            self.order.pop_front();
            // Unless it was kept again since (then a later entry is queued).
            if self.map.get(&old).is_some_and(|(until, _)| *until <= at) {
                self.map.remove(&old);
            }
        }
        if self.map.capacity() > 4 * self.map.len().max(1024) {
            self.map.shrink_to_fit();
            self.order.shrink_to_fit();
        }
    }

    fn get(&self, key: &KeyDigest, now: Second) -> Option<&V> {
        let (until, v) = self.map.get(key)?;
        (*until > now).then_some(v)
    }

    fn insert(&mut self, key: KeyDigest, until: Second, v: V) {
        self.map.insert(key, (until, v));
        self.order.push_back((until, key));
    }
}

struct Kept {
    /// The replies of the handler.
    replies: Expiring<Answer>,
    /// The 503s of the socket.
    busy: Expiring<()>,
}

/// The replies of the last `keep` (rounded up to the next whole second), and
/// the socket's 503s of the last [`BUSY_KEEP`], at most [`BUSY_CAP`] of them.
pub(crate) struct Answered {
    keep: Second,
    start: Instant,
    kept: Mutex<Kept>,
}

impl Answered {
    pub(crate) fn new(keep: Duration) -> Self {
        let keep = keep.as_secs() + u64::from(keep.subsec_nanos() > 0);
        Self {
            keep: Second::try_from(keep).unwrap_or(Second::MAX),
            start: Instant::now(),
            kept: Mutex::new(Kept {
                replies: Expiring::new(),
                busy: Expiring::new(),
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

    /// Keeps `answer` for `key` (a first answer stays while it is kept:
    /// retransmissions get that one), and lets go of those due. A reply is
    /// kept at least `keep` and less than a second longer; a 503 of the
    /// socket at least [`BUSY_KEEP`], unless more than [`BUSY_CAP`] came since.
    pub(crate) fn remember(&self, key: KeyDigest, answer: Answer, now: Instant) {
        let now = self.second(now);
        let mut k = self.lock();
        if k.replies.get(&key, now).is_none() && k.busy.get(&key, now).is_none() {
            let until = |keep: Second| now.saturating_add(keep).saturating_add(1);
            match answer {
                Answer::Busy => k.busy.insert(key, until(BUSY_KEEP.min(self.keep)), ()),
                answer => k.replies.insert(key, until(self.keep), answer),
            }
        }
        k.replies.expire(now, usize::MAX);
        k.busy.expire(now, BUSY_CAP);
    }

    /// The answer given to `key`, if it is still kept at `now`.
    pub(crate) fn get(&self, key: KeyDigest, now: Instant) -> Option<Answer> {
        let now = self.second(now);
        let k = self.lock();
        if let Some(answer) = k.replies.get(&key, now) {
            return Some(answer.clone());
        }
        k.busy.get(&key, now).map(|()| Answer::Busy)
    }

    /// Whether `key` was answered busy by the socket (and that is still kept).
    pub(crate) fn busy(&self, key: KeyDigest, now: Instant) -> Option<bool> {
        let now = self.second(now);
        let k = self.lock();
        if k.replies.get(&key, now).is_some() {
            return Some(false);
        }
        k.busy.get(&key, now).map(|()| true)
    }

    /// How many answers are kept (replies, 503s).
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let k = self.lock();
        (k.replies.map.len(), k.busy.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> KeyDigest {
        KeyDigest([n, !n])
    }

    fn bare(code: u16) -> Answer {
        Answer::Bare {
            code,
            tag: *b"abcdefghijkl",
        }
    }

    #[test]
    fn a_reply_is_kept_for_its_time_and_the_first_one_stays() {
        let a = Answered::new(Duration::from_secs(32));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        a.remember(key(1), bare(202), t0);
        a.remember(key(1), Answer::Busy, t0);
        a.remember(key(1), bare(500), at(1));
        assert_eq!(a.get(key(1), t0), Some(bare(202)));
        assert_eq!(a.busy(key(1), t0), Some(false));
        a.remember(key(2), bare(404), at(31));
        assert_eq!(a.get(key(1), at(32)), Some(bare(202)));
        // Less than a second after its 32 s it is gone, asked or not; the
        // second stays.
        assert_eq!(a.get(key(1), at(33)), None);
        assert_eq!(a.busy(key(1), at(33)), None);
        assert_eq!(a.get(key(2), at(33)), Some(bare(404)));
        // Answered anew after that, it is kept again for its own time, even
        // when the first one's expiry comes round.
        a.remember(key(1), bare(200), at(34));
        a.remember(key(3), bare(200), at(35));
        assert_eq!(a.get(key(1), at(35)), Some(bare(200)));
        assert_eq!(a.get(key(1), at(67)), None);
        a.remember(key(4), bare(200), at(68));
        assert_eq!(a.len(), (1, 0));
    }

    #[test]
    fn a_busy_answer_is_kept_for_a_round_trip_and_a_flood_of_them_is_capped() {
        let a = Answered::new(Duration::from_secs(32));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        a.remember(key(1), Answer::Busy, t0);
        // A retransmission gets the same 503, not the handler's reply.
        a.remember(key(1), bare(202), t0);
        assert_eq!(a.get(key(1), at(4)), Some(Answer::Busy));
        assert_eq!(a.busy(key(1), at(4)), Some(true));
        assert_eq!(a.get(key(1), at(5)), None);
        // Then it may be handled, and its reply is kept as any other.
        a.remember(key(1), bare(202), at(5));
        assert_eq!(a.busy(key(1), at(5)), Some(false));
        // A flood in one second keeps only the newest BUSY_CAP.
        let n = BUSY_CAP as u64 + 1_000;
        for i in 0..n {
            a.remember(key(1_000 + i), Answer::Busy, at(6));
        }
        assert_eq!(a.len(), (1, BUSY_CAP));
        assert_eq!(a.get(key(1_000), at(6)), None);
        assert_eq!(a.get(key(1_000 + n - 1), at(6)), Some(Answer::Busy));
        // And they go in time.
        a.remember(key(2), bare(200), at(11));
        assert_eq!(a.len(), (2, 0));
    }

    #[test]
    fn a_reply_with_only_a_code_and_a_tag_is_kept_inline() {
        let mut accepted = Reply::new(202);
        accepted.to_tag = Some("abcdefghijkl".into());
        let kept = Answer::of(&accepted);
        assert_eq!(kept, bare(202));
        assert_eq!(kept.reply(), Some(accepted.clone()));
        // Anything more is kept whole: a header, a body, another tag.
        let warned = accepted.clone().with("Retry-After", "1");
        let mut long_tag = accepted.clone();
        long_tag.to_tag = Some("a-dialog-tag-of-another-length".into());
        let mut with_body = accepted.clone();
        with_body.body = b"x".to_vec();
        for r in [warned, long_tag, with_body] {
            assert_eq!(Answer::of(&r), Answer::Reply(Box::new(r.clone())));
            assert_eq!(Answer::of(&r).reply(), Some(r));
        }
        assert_eq!(Answer::Busy.reply(), None);
    }
}
