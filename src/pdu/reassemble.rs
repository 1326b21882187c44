//! Reassembly of concatenated SMS, as a pure rule: parts go in with the time they
//! arrived, complete messages come out, and collections past their deadline are
//! handed back by [`Reassembly::expire`], never dropped. No clock, no I/O. The
//! time is any ordered instant a [`Duration`] can be added to: `Instant` for the
//! command line and the simulator, Unix seconds for the store, which keeps the
//! parts durably and runs this same rule over the rows it holds.

use std::collections::{BTreeMap, HashMap};
use std::ops::Add;
use std::time::{Duration, Instant};

use super::address::Address;
use super::tpdu::Deliver;
use super::udh::Concat;
use super::user_data::Body;

/// What identifies the parts of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartKey {
    /// The originator.
    pub sender: Address,
    /// The concatenation reference.
    pub reference: u16,
    /// How many parts the message has.
    pub total: u8,
    /// Whether the reference is 16-bit (a different reference space than 8-bit).
    pub wide: bool,
}

impl PartKey {
    /// The key and part number of an SMS-DELIVER, or `None` if it is not part of a
    /// concatenated message (no, or an ignored, concatenation element).
    pub fn of(deliver: &Deliver) -> Option<(Self, u8)> {
        let Concat {
            reference,
            total,
            seq,
            wide,
        } = deliver.user_data.concat()?;
        Some((
            Self {
                sender: deliver.originator.clone(),
                reference,
                total,
                wide,
            },
            seq,
        ))
    }
}

/// What happened to an offered part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer<P> {
    /// This part completed the message: all parts, in order.
    Complete(Vec<P>),
    /// More parts are needed.
    Waiting {
        /// Distinct parts held so far.
        have: u8,
        /// Parts the message has.
        of: u8,
    },
    /// This part number was already held; the new copy was ignored.
    Duplicate,
}

/// A collection whose deadline passed before every part arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete<P> {
    /// Which message.
    pub key: PartKey,
    /// The parts that did arrive, by part number.
    pub parts: Vec<(u8, P)>,
}

/// Why a part was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    /// A part number of 0 or above the total.
    #[error("part {seq} of {total} is not a valid position")]
    InvalidSequence {
        /// The part number offered.
        seq: u8,
        /// The total of the key.
        total: u8,
    },
}

#[derive(Debug)]
struct Collection<P, T> {
    deadline: T,
    parts: BTreeMap<u8, P>,
}

/// Collections of parts waiting for the rest of their message.
///
/// A collection's deadline is `timeout` after its newest part, so a long message
/// whose parts trickle in is not cut while parts still arrive.
#[derive(Debug)]
pub struct Reassembly<P, T = Instant> {
    timeout: Duration,
    pending: HashMap<PartKey, Collection<P, T>>,
}

impl<P, T> Reassembly<P, T>
where
    T: Copy + Ord + Add<Duration, Output = T>,
{
    /// An empty set of collections with the given timeout.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            pending: HashMap::new(),
        }
    }

    /// Takes part `seq` of the message `key`, received at `now`.
    pub fn offer(
        &mut self,
        now: T,
        key: PartKey,
        seq: u8,
        part: P,
    ) -> Result<Offer<P>, ReassemblyError> {
        if seq == 0 || seq > key.total {
            return Err(ReassemblyError::InvalidSequence {
                seq,
                total: key.total,
            });
        }
        let total = key.total;
        let deadline = now + self.timeout;
        let collection = self
            .pending
            .entry(key.clone())
            .or_insert_with(|| Collection {
                deadline,
                parts: BTreeMap::new(),
            });
        if collection.parts.contains_key(&seq) {
            return Ok(Offer::Duplicate);
        }
        collection.parts.insert(seq, part);
        collection.deadline = deadline;
        let have = collection.parts.len() as u8;
        if have < total {
            return Ok(Offer::Waiting { have, of: total });
        }
        let parts = self
            .pending
            .remove(&key)
            .map(|c| c.parts.into_values().collect())
            .unwrap_or_default();
        Ok(Offer::Complete(parts))
    }

    /// The earliest deadline, for the driver's timer. `None` when nothing waits.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<T> {
        self.pending.values().map(|c| c.deadline).min()
    }

    /// Removes and returns every collection whose deadline is at or before `now`.
    /// Spurious calls return nothing.
    pub fn expire(&mut self, now: T) -> Vec<Incomplete<P>> {
        let due: Vec<PartKey> = self
            .pending
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<Incomplete<P>> = due
            .into_iter()
            .filter_map(|key| {
                let c = self.pending.remove(&key)?;
                Some(Incomplete {
                    key,
                    parts: c.parts.into_iter().collect(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// How many messages are waiting for parts.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no message is waiting for parts.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The text of parts joined in order. Bodies of the same kind are joined in their
/// wire units before decoding, so an escape or surrogate pair that another
/// sender's encoder split across parts comes out whole. 8-bit data is read as
/// UTF-8, lossily.
pub fn join_text<'a>(bodies: impl IntoIterator<Item = &'a Body>) -> String {
    let mut out = String::new();
    let mut pending: Option<Body> = None;
    let flush = |pending: &mut Option<Body>, out: &mut String| {
        if let Some(b) = pending.take() {
            match &b {
                Body::Data(d) => out.push_str(&String::from_utf8_lossy(d)),
                other => out.push_str(&other.text().unwrap_or_default()),
            }
        }
    };
    for body in bodies {
        match (&mut pending, body) {
            (
                Some(Body::Gsm7 { septets, shift }),
                Body::Gsm7 {
                    septets: more,
                    shift: s,
                },
            ) if shift == s => septets.extend_from_slice(more),
            (Some(Body::Ucs2(units)), Body::Ucs2(more)) => units.extend_from_slice(more),
            (Some(Body::Data(d)), Body::Data(more)) => d.extend_from_slice(more),
            _ => {
                flush(&mut pending, &mut out);
                pending = Some(body.clone());
            }
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{Body, gsm7::Shift};

    fn key(reference: u16, total: u8) -> PartKey {
        PartKey {
            sender: Address::from_number("+4915551234").unwrap(),
            reference,
            total,
            wide: false,
        }
    }

    #[test]
    fn parts_in_any_order_complete_once() {
        let t0 = Instant::now();
        let mut r = Reassembly::new(Duration::from_secs(60));
        assert_eq!(
            r.offer(t0, key(7, 3), 3, "c"),
            Ok(Offer::Waiting { have: 1, of: 3 })
        );
        assert_eq!(
            r.offer(t0, key(7, 3), 1, "a"),
            Ok(Offer::Waiting { have: 2, of: 3 })
        );
        assert_eq!(r.offer(t0, key(7, 3), 1, "x"), Ok(Offer::Duplicate));
        assert_eq!(
            r.offer(t0, key(7, 3), 2, "b"),
            Ok(Offer::Complete(vec!["a", "b", "c"]))
        );
        assert!(r.is_empty());
        assert_eq!(r.poll_timeout(), None);
        // The same reference again later is a new message.
        assert_eq!(
            r.offer(t0, key(7, 3), 2, "b"),
            Ok(Offer::Waiting { have: 1, of: 3 })
        );
    }

    #[test]
    fn keys_keep_messages_apart() {
        let t0 = Instant::now();
        let mut r = Reassembly::new(Duration::from_secs(60));
        let wide = PartKey {
            wide: true,
            ..key(7, 2)
        };
        let other_sender = PartKey {
            sender: Address::from_number("+4915550000").unwrap(),
            ..key(7, 2)
        };
        for k in [key(7, 2), wide.clone(), other_sender, key(8, 2), key(7, 3)] {
            let of = k.total;
            assert_eq!(r.offer(t0, k, 1, 0), Ok(Offer::Waiting { have: 1, of }));
        }
        assert_eq!(r.len(), 5);
        assert_eq!(r.offer(t0, wide, 2, 1), Ok(Offer::Complete(vec![0, 1])));
    }

    #[test]
    fn expiry_hands_back_what_arrived() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(600);
        let mut r = Reassembly::new(timeout);
        r.offer(t0, key(1, 3), 1, "a").unwrap();
        r.offer(t0 + Duration::from_secs(100), key(1, 3), 3, "c")
            .unwrap();
        r.offer(t0 + Duration::from_secs(10), key(2, 2), 2, "y")
            .unwrap();
        // The deadline follows the newest part of each message.
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(610)));
        assert_eq!(r.expire(t0 + Duration::from_secs(609)), vec![]);
        let gone = r.expire(t0 + Duration::from_secs(610));
        assert_eq!(
            gone,
            vec![Incomplete {
                key: key(2, 2),
                parts: vec![(2, "y")]
            }]
        );
        let gone = r.expire(t0 + Duration::from_secs(700));
        assert_eq!(
            gone,
            vec![Incomplete {
                key: key(1, 3),
                parts: vec![(1, "a"), (3, "c")]
            }]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn invalid_positions_are_refused() {
        let mut r = Reassembly::new(Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(
            r.offer(now, key(1, 2), 0, ()),
            Err(ReassemblyError::InvalidSequence { seq: 0, total: 2 })
        );
        assert_eq!(
            r.offer(now, key(1, 2), 3, ()),
            Err(ReassemblyError::InvalidSequence { seq: 3, total: 2 })
        );
        assert!(r.is_empty());
    }

    #[test]
    fn join_mends_pairs_split_by_another_encoder() {
        // A surrogate pair split across parts (chan_dongle splits at 67 units).
        let a = Body::Ucs2(vec![0x0041, 0xD83D]);
        let b = Body::Ucs2(vec![0xDE01, 0x0042]);
        assert_eq!(join_text([&a, &b]), "A😁B");
        // An escape at the end of one part and its septet at the start of the next.
        let g = |s: &[u8]| Body::Gsm7 {
            septets: s.to_vec(),
            shift: Shift::default(),
        };
        assert_eq!(join_text([&g(&[0x41, 0x1B]), &g(&[0x65, 0x42])]), "A€B");
        // Mixed alphabets are decoded per run and concatenated.
        assert_eq!(join_text([&g(&[0x41]), &Body::Ucs2(vec![0x0436])]), "Aж");
    }
}
