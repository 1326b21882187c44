//! Messages in chunks (RFC 4975 §5.1, §7.1): an outgoing message split into
//! SENDs with Byte-Range, and incoming SENDs put back together by
//! Message-ID, in any order, duplicates overwriting what they repeat, and a
//! `#` chunk dropping the message. Every size is bounded by [`Limits`]: the
//! buffer of a message never grows past `max_message` whatever its chunks
//! claim, and a session never holds more than `max_messages` partial ones.

use std::collections::HashMap;

use super::codec::{ByteRange, Chunk, Continuation, FailureReport, Kind, Method};
use super::uri::MsrpUri;

/// Hard limits for one session (and its connection's framer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Start line plus headers of one chunk.
    pub max_header_bytes: usize,
    /// Content of one chunk.
    pub max_chunk_body: usize,
    /// A reassembled message.
    pub max_message: usize,
    /// Chunks of one message.
    pub max_chunks: usize,
    /// Messages being reassembled at once in one session.
    pub max_messages: usize,
}

/// A whole message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// Its Message-ID.
    pub message_id: String,
    /// Content-Type of its first chunk.
    pub content_type: String,
    /// The bytes.
    pub body: Vec<u8>,
    /// The sender asked for a success REPORT.
    pub success_report: bool,
    /// What the sender asked of failure reports.
    pub failure_report: FailureReport,
}

/// What a SEND chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// More chunks are needed.
    Partial,
    /// The message is whole.
    Complete(Reassembled),
    /// The sender abandoned it (`#`), or it was empty (a SEND with no
    /// content, as sent to bind a connection, §7.1).
    Nothing,
}

/// Why a chunk is refused; each maps to a response code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    /// Not a SEND, or Message-ID / Byte-Range missing where needed (400).
    #[error("bad chunk: {0}")]
    Bad(String),
    /// Larger than `max_message`, or too many chunks (413).
    #[error("message too large")]
    TooLarge,
    /// Too many messages in progress (413 too: the peer must stop).
    #[error("too many messages in progress")]
    TooMany,
}

impl ReassemblyError {
    /// The response code (§7.2 and §10).
    pub fn code(&self) -> u16 {
        match self {
            ReassemblyError::Bad(_) => 400,
            ReassemblyError::TooLarge | ReassemblyError::TooMany => 413,
        }
    }
}

#[derive(Debug)]
struct Partial {
    content_type: Option<String>,
    data: Vec<u8>,
    /// Received byte intervals, 0-based half-open, sorted and merged.
    have: Vec<(u64, u64)>,
    total: Option<u64>,
    chunks: usize,
    success_report: bool,
    failure_report: FailureReport,
}

/// Incoming messages of one session.
#[derive(Debug)]
pub struct Reassembly {
    limits: Limits,
    partial: HashMap<String, Partial>,
}

impl Reassembly {
    /// Empty, with these limits.
    pub fn new(limits: Limits) -> Reassembly {
        Reassembly {
            limits,
            partial: HashMap::new(),
        }
    }

    /// Messages in progress.
    pub fn in_progress(&self) -> usize {
        self.partial.len()
    }

    /// Takes one SEND chunk.
    pub fn push(&mut self, chunk: &Chunk) -> Result<Progress, ReassemblyError> {
        if chunk.kind != Kind::Request(Method::Send) {
            return Err(ReassemblyError::Bad("not a SEND".into()));
        }
        let Some(id) = &chunk.message_id else {
            return Err(ReassemblyError::Bad("no Message-ID".into()));
        };
        if chunk.continuation == Continuation::Abort {
            self.partial.remove(id);
            return Ok(Progress::Nothing);
        }
        let range = chunk.byte_range.unwrap_or(ByteRange {
            start: 1,
            end: Some(chunk.body.len() as u64),
            total: Some(chunk.body.len() as u64),
        });
        let len = chunk.body.len() as u64;
        let from = range.start - 1;
        let to = from + len;
        if let Some(end) = range.end
            && chunk.continuation == Continuation::End
            && end != to
        {
            return Err(ReassemblyError::Bad(format!(
                "Byte-Range ends at {end} but the chunk ends at {to}"
            )));
        }
        let max = self.limits.max_message as u64;
        if to > max || range.total.is_some_and(|t| t > max) {
            self.partial.remove(id);
            return Err(ReassemblyError::TooLarge);
        }
        if !self.partial.contains_key(id) {
            if len == 0 && chunk.continuation == Continuation::End && range.start == 1 {
                return Ok(Progress::Nothing);
            }
            if self.partial.len() >= self.limits.max_messages {
                return Err(ReassemblyError::TooMany);
            }
        }
        let p = self.partial.entry(id.clone()).or_insert_with(|| Partial {
            content_type: None,
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            chunks: 0,
            success_report: false,
            failure_report: FailureReport::Yes,
        });
        p.chunks += 1;
        if p.chunks > self.limits.max_chunks {
            self.partial.remove(id);
            return Err(ReassemblyError::TooLarge);
        }
        if range.start == 1 || p.content_type.is_none() {
            if let Some(ct) = &chunk.content_type {
                p.content_type = Some(ct.clone());
            }
            p.success_report = chunk.success_report.unwrap_or(false);
            p.failure_report = chunk.failure_report.unwrap_or(FailureReport::Yes);
        }
        let total = match (range.total, chunk.continuation) {
            (Some(t), _) => Some(t),
            (None, Continuation::End) => Some(to),
            (None, _) => None,
        };
        if let Some(t) = total {
            if p.total.is_some_and(|old| old != t) || to > t {
                self.partial.remove(id);
                return Err(ReassemblyError::Bad("the total changed".into()));
            }
            p.total = Some(t);
        }
        if len > 0 {
            // Bounded by `max_message` checked above.
            let (f, t) = (from as usize, to as usize);
            if p.data.len() < t {
                p.data.resize(t, 0);
            }
            p.data[f..t].copy_from_slice(&chunk.body);
            add_interval(&mut p.have, (from, to));
        }
        let whole = p
            .total
            .is_some_and(|t| t == 0 || p.have.first() == Some(&(0, t)));
        if !whole {
            return Ok(Progress::Partial);
        }
        let Some(p) = self.partial.remove(id) else {
            return Ok(Progress::Partial);
        };
        let Some(content_type) = p.content_type else {
            return Err(ReassemblyError::Bad("no Content-Type".into()));
        };
        Ok(Progress::Complete(Reassembled {
            message_id: id.clone(),
            content_type,
            body: p.data,
            success_report: p.success_report,
            failure_report: p.failure_report,
        }))
    }
}

fn add_interval(have: &mut Vec<(u64, u64)>, new: (u64, u64)) {
    have.push(new);
    have.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(have.len());
    for &(a, b) in have.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *have = merged;
}

/// An outgoing message, split into SEND chunks of at most `max_chunk`
/// bytes of content each.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Where it goes.
    pub to_path: &'a [MsrpUri],
    /// Our URI.
    pub from_path: &'a [MsrpUri],
    /// Its Message-ID.
    pub message_id: &'a str,
    /// Its Content-Type.
    pub content_type: &'a str,
    /// The bytes.
    pub body: &'a [u8],
    /// Ask for a success REPORT.
    pub success_report: bool,
}

impl Outgoing<'_> {
    /// The chunks, each with a tid from `new_tid` that does not occur in
    /// its content (tried again until one does not).
    pub fn chunks(&self, max_chunk: usize, mut new_tid: impl FnMut() -> String) -> Vec<Chunk> {
        let total = self.body.len() as u64;
        let pieces: Vec<&[u8]> = if self.body.is_empty() {
            vec![&[][..]]
        } else {
            self.body.chunks(max_chunk.max(1)).collect()
        };
        let count = pieces.len();
        let mut offset = 0u64;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| {
                let mut tid = new_tid();
                while Chunk::body_collides(piece, &tid) {
                    tid = new_tid();
                }
                let mut c = Chunk::send(&tid, self.to_path.to_vec(), self.from_path.to_vec());
                c.message_id = Some(self.message_id.to_owned());
                if self.success_report {
                    c.success_report = Some(true);
                }
                c.byte_range = Some(ByteRange {
                    start: offset + 1,
                    end: Some(offset + piece.len() as u64),
                    total: Some(total),
                });
                c.content_type = Some(self.content_type.to_owned());
                c.body = piece.to_vec();
                c.continuation = if i + 1 == count {
                    Continuation::End
                } else {
                    Continuation::More
                };
                offset += piece.len() as u64;
                c
            })
            .collect()
    }
}

/// The success REPORT (§7.1.2) for a whole message received.
pub fn success_report(
    tid: &str,
    to_path: Vec<MsrpUri>,
    from_path: Vec<MsrpUri>,
    message: &Reassembled,
) -> Chunk {
    report(
        tid,
        to_path,
        from_path,
        &message.message_id,
        message.body.len() as u64,
        200,
        "OK",
    )
}

/// A REPORT with this status on bytes `1-len` of a message.
pub fn report(
    tid: &str,
    to_path: Vec<MsrpUri>,
    from_path: Vec<MsrpUri>,
    message_id: &str,
    len: u64,
    code: u16,
    reason: &str,
) -> Chunk {
    let mut c = Chunk::send(tid, to_path, from_path);
    c.kind = Kind::Request(Method::Report);
    c.message_id = Some(message_id.to_owned());
    c.byte_range = Some(ByteRange {
        start: 1,
        end: Some(len),
        total: Some(len),
    });
    c.status = Some(super::codec::Status {
        namespace: 0,
        code,
        reason: Some(reason.to_owned()),
    });
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 1024,
        max_chunk_body: 1024,
        max_message: 64,
        max_chunks: 8,
        max_messages: 2,
    };

    fn uri(s: &str) -> Vec<MsrpUri> {
        vec![MsrpUri::parse(s).unwrap()]
    }

    fn outgoing(body: &[u8], id: &'static str, max: usize) -> Vec<Chunk> {
        let (to, from) = (
            uri("msrp://b.example:2/y;tcp"),
            uri("msrp://a.example:1/x;tcp"),
        );
        let mut n = 0;
        Outgoing {
            to_path: &to,
            from_path: &from,
            message_id: id,
            content_type: "text/plain",
            body,
            success_report: false,
        }
        .chunks(max, || {
            n += 1;
            format!("tid{n:05}")
        })
    }

    #[test]
    fn splits_with_exact_ranges_and_flags() {
        let c = outgoing(b"hello world", "msg12345", 4);
        assert_eq!(c.len(), 3);
        let ranges: Vec<String> = c
            .iter()
            .map(|c| {
                let r = c.byte_range.unwrap();
                format!("{}-{:?}/{:?} {:?}", r.start, r.end, r.total, c.continuation)
            })
            .collect();
        assert_eq!(
            ranges,
            [
                "1-Some(4)/Some(11) More",
                "5-Some(8)/Some(11) More",
                "9-Some(11)/Some(11) End"
            ]
        );
        assert_eq!(
            c[2].to_bytes(),
            b"MSRP tid00003 SEND\r\nTo-Path: msrp://b.example:2/y;tcp\r\n\
From-Path: msrp://a.example:1/x;tcp\r\nMessage-ID: msg12345\r\nByte-Range: 9-11/11\r\n\
Content-Type: text/plain\r\n\r\nrld\r\n-------tid00003$\r\n"
        );
    }

    #[test]
    fn a_tid_found_in_the_content_is_replaced() {
        let c = outgoing(b"x\r\n-------tid00001$", "msg12345", 100);
        assert_eq!(c[0].tid, "tid00002");
    }

    #[test]
    fn reassembles_in_order_out_of_order_and_with_duplicates() {
        let chunks = outgoing(b"hello world", "msg12345", 4);
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut r = Reassembly::new(LIMITS);
            let mut last = None;
            assert_eq!(r.push(&chunks[order[0]]).unwrap(), Progress::Partial);
            for i in order {
                last = Some(r.push(&chunks[i]).unwrap());
            }
            match last {
                Some(Progress::Complete(m)) => {
                    assert_eq!(m.body, b"hello world");
                    assert_eq!(m.content_type, "text/plain");
                    assert_eq!(m.message_id, "msg12345");
                }
                other => panic!("{order:?}: {other:?}"),
            }
            assert_eq!(r.in_progress(), 0);
        }
    }

    #[test]
    fn an_interrupted_chunk_counts_what_it_carried() {
        let mut chunks = outgoing(b"hello world", "msg12345", 11);
        chunks[0].body.truncate(3);
        chunks[0].byte_range = Some(ByteRange {
            start: 1,
            end: None,
            total: Some(11),
        });
        chunks[0].continuation = Continuation::More;
        let mut rest = outgoing(b"lo world", "msg12345", 11).remove(0);
        rest.byte_range = Some(ByteRange {
            start: 4,
            end: Some(11),
            total: Some(11),
        });
        let mut r = Reassembly::new(LIMITS);
        assert_eq!(r.push(&chunks[0]).unwrap(), Progress::Partial);
        match r.push(&rest).unwrap() {
            Progress::Complete(m) => assert_eq!(m.body, b"hello world"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn abort_drops_the_message() {
        let mut chunks = outgoing(b"hello world", "msg12345", 4);
        let mut r = Reassembly::new(LIMITS);
        r.push(&chunks[0]).unwrap();
        chunks[1].continuation = Continuation::Abort;
        assert_eq!(r.push(&chunks[1]).unwrap(), Progress::Nothing);
        assert_eq!(r.in_progress(), 0);
        assert_eq!(
            r.push(&chunks[2]).unwrap(),
            Progress::Partial,
            "starts afresh"
        );
    }

    #[test]
    fn an_empty_send_is_nothing() {
        let c = outgoing(b"", "msg12345", 4);
        let mut r = Reassembly::new(LIMITS);
        assert_eq!(r.push(&c[0]).unwrap(), Progress::Nothing);
        let mut bare = Chunk::send("abcd1234", uri("msrp://a:1/x;tcp"), uri("msrp://b:1/x;tcp"));
        bare.message_id = Some("m1234567".into());
        assert_eq!(r.push(&bare).unwrap(), Progress::Nothing);
    }

    #[test]
    fn limits_hold_whatever_the_chunks_claim() {
        let mut r = Reassembly::new(LIMITS);
        let big = outgoing(&[b'x'; 65], "msg12345", 100);
        assert_eq!(r.push(&big[0]), Err(ReassemblyError::TooLarge));

        let mut far = outgoing(b"x", "msg12345", 100).remove(0);
        far.byte_range = Some(ByteRange {
            start: 1_000_000_000,
            end: None,
            total: None,
        });
        far.continuation = Continuation::More;
        assert_eq!(r.push(&far), Err(ReassemblyError::TooLarge));

        let many = outgoing(&[b'x'; 60], "msg12345", 6);
        for c in &many[..8] {
            assert_eq!(r.push(c), Ok(Progress::Partial));
        }
        assert_eq!(r.push(&many[8]), Err(ReassemblyError::TooLarge));
        assert_eq!(r.in_progress(), 0);

        r.push(&outgoing(b"ab", "msgAAAAA", 1)[0]).unwrap();
        r.push(&outgoing(b"ab", "msgBBBBB", 1)[0]).unwrap();
        assert_eq!(
            r.push(&outgoing(b"ab", "msgCCCCC", 1)[0]),
            Err(ReassemblyError::TooMany)
        );
        assert_eq!(ReassemblyError::TooMany.code(), 413);
    }

    #[test]
    fn contradictions_are_refused() {
        let mut r = Reassembly::new(LIMITS);
        let mut c = outgoing(b"abc", "msg12345", 100).remove(0);
        c.byte_range = Some(ByteRange {
            start: 1,
            end: Some(5),
            total: Some(5),
        });
        assert!(matches!(r.push(&c), Err(ReassemblyError::Bad(_))));
        let mut a = outgoing(b"abcd", "msg12345", 2);
        r.push(&a[0]).unwrap();
        a[1].byte_range = Some(ByteRange {
            start: 3,
            end: Some(4),
            total: Some(9),
        });
        assert!(matches!(r.push(&a[1]), Err(ReassemblyError::Bad(_))));
        let mut rep = a[0].clone();
        rep.kind = Kind::Request(Method::Report);
        assert!(matches!(r.push(&rep), Err(ReassemblyError::Bad(_))));
    }

    #[test]
    fn the_success_report_names_the_whole_message() {
        let m = Reassembled {
            message_id: "msg12345".into(),
            content_type: "text/plain".into(),
            body: b"hello".to_vec(),
            success_report: true,
            failure_report: FailureReport::Yes,
        };
        let c = success_report(
            "rep12345",
            uri("msrp://a:1/x;tcp"),
            uri("msrp://b:2/y;tcp"),
            &m,
        );
        assert_eq!(
            c.to_bytes(),
            b"MSRP rep12345 REPORT\r\nTo-Path: msrp://a:1/x;tcp\r\nFrom-Path: msrp://b:2/y;tcp\r\n\
Message-ID: msg12345\r\nByte-Range: 1-5/5\r\nStatus: 000 200 OK\r\n-------rep12345$\r\n"
        );
    }
}
