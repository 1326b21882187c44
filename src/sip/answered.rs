//! Final answers of server transactions, kept compactly for as long as a UDP
//! client may retransmit (64·T1, RFC 3261 §17.2.2 Timer J), so a
//! retransmission gets the same answer and the request is never handled
//! twice. rsipstack keeps each finished transaction's whole parsed response
//! for that time (some 4 KiB each: 200 MiB at 5,000 MESSAGE/s); the front end
//! moves the answer here instead (a digest of the transaction key and the
//! [`Reply`], about 150 bytes), and remembers the 503s the socket gave
//! without a transaction.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rsipstack::transaction::key::TransactionKey;

use super::wire::Reply;

/// A transaction key's digest: 128 bits, so two live keys do not collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyDigest(u128);

impl KeyDigest {
    pub(crate) fn of(key: &TransactionKey) -> Self {
        let d = Md5::digest(key.to_string().as_bytes());
        Self(u128::from_be_bytes(d.into()))
    }
}

/// How a transaction was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 503 "busy" by the socket, with no transaction.
    Busy,
    /// This reply (its To tag set), by the handler.
    Reply(Box<Reply>),
}

struct Kept {
    /// Each answer, with when it may go.
    answers: HashMap<KeyDigest, (Instant, Answer)>,
    /// When each answer may go, oldest first.
    expiry: VecDeque<(Instant, KeyDigest)>,
}

/// The answers of the last `keep`.
pub(crate) struct Answered {
    keep: Duration,
    kept: Mutex<Kept>,
}

impl Answered {
    pub(crate) fn new(keep: Duration) -> Self {
        Self {
            keep,
            kept: Mutex::new(Kept {
                answers: HashMap::new(),
                expiry: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `answer` for `key` (a first answer stays while it is kept:
    /// retransmissions get that one), and lets those older than `keep` go.
    pub(crate) fn remember(&self, key: KeyDigest, answer: Answer, now: Instant) {
        let mut k = self.lock();
        while let Some(&(at, old)) = k.expiry.front() {
            if at > now {
                break;
            }
            k.expiry.pop_front();
            // Unless it was answered again since (then a later expiry is queued).
            if k.answers.get(&old).is_some_and(|(until, _)| *until <= now) {
                k.answers.remove(&old);
            }
        }
        let until = now + self.keep;
        let kept = k.answers.get(&key).is_some_and(|(u, _)| *u > now);
        if !kept {
            k.answers.insert(key, (until, answer));
            k.expiry.push_back((until, key));
        }
        if k.answers.capacity() > 4 * k.answers.len().max(1024) {
            k.answers.shrink_to_fit();
            k.expiry.shrink_to_fit();
        }
    }

    /// The answer given to `key`, if it is still kept at `now`.
    pub(crate) fn get(&self, key: KeyDigest, now: Instant) -> Option<Answer> {
        let k = self.lock();
        let (until, answer) = k.answers.get(&key)?;
        (*until > now).then(|| answer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> KeyDigest {
        KeyDigest(n)
    }

    #[test]
    fn an_answer_is_kept_for_its_time_and_the_first_one_stays() {
        let a = Answered::new(Duration::from_secs(32));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let accepted = Some(Answer::Reply(Box::new(Reply::new(202))));
        a.remember(key(1), Answer::Reply(Box::new(Reply::new(202))), t0);
        a.remember(key(1), Answer::Busy, t0);
        assert_eq!(a.get(key(1), t0), accepted);
        a.remember(key(2), Answer::Busy, at(31));
        assert_eq!(a.get(key(1), at(31)), accepted);
        // 32 s on it is gone, asked or not; the second stays.
        assert_eq!(a.get(key(1), at(32)), None);
        assert_eq!(a.get(key(2), at(32)), Some(Answer::Busy));
        // Answered anew after that, it is kept again for its own time, even
        // when the first one's expiry comes round.
        a.remember(key(1), Answer::Busy, at(33));
        a.remember(key(3), Answer::Busy, at(34));
        assert_eq!(a.get(key(1), at(34)), Some(Answer::Busy));
        assert_eq!(a.get(key(1), at(65)), None);
    }
}
