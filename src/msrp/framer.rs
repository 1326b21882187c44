//! Chunks cut out of a TCP byte stream (RFC 4975 §6): the start line names
//! the transaction, the head ends at a blank line (content follows) or at
//! the end-line itself (no content), and content ends at
//! `CRLF -------<tid>` + flag + CRLF. Nothing beyond `max_header_bytes` of
//! head or `max_body` of content is ever buffered: a peer that sends more
//! gets an error and the connection is closed. The framer never resyncs
//! after an error; MSRP has no way to.

use super::codec::{Continuation, find, is_ident};

/// Why the stream cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The start line is not `MSRP <tid> ...`.
    #[error("not an MSRP start line")]
    StartLine,
    /// The head is longer than allowed.
    #[error("head longer than {0} bytes")]
    HeadTooLong(usize),
    /// The content is longer than allowed.
    #[error("chunk body longer than {0} bytes")]
    BodyTooLong(usize),
}

#[derive(Debug)]
enum State {
    /// Reading the start line and headers; `scan` is where the next line starts.
    Head { scan: usize, tid: Option<Vec<u8>> },
    /// Reading content that starts at `start`; nothing before `scan` holds
    /// the start of an end-line.
    Body {
        tid: Vec<u8>,
        start: usize,
        scan: usize,
    },
}

/// An incremental framer for one connection.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    state: State,
    max_head: usize,
    max_body: usize,
    failed: Option<FrameError>,
}

impl Framer {
    /// A framer with these limits.
    pub fn new(max_header_bytes: usize, max_body: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            state: State::Head { scan: 0, tid: None },
            max_head: max_header_bytes,
            max_body,
            failed: None,
        }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that are not yet a whole chunk.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole chunk (start line through the end-line's CRLF), or
    /// `None` until more bytes come. After an error every call returns it.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(v) => Ok(v),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = Vec::new();
                Err(e)
            }
        }
    }

    fn step(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            match &mut self.state {
                State::Head { scan, tid } => {
                    let Some(rel) = find(&self.buf[*scan..], b"\r\n") else {
                        if self.buf.len() > self.max_head {
                            return Err(FrameError::HeadTooLong(self.max_head));
                        }
                        if tid.is_none() && !start_could_be(&self.buf) {
                            return Err(FrameError::StartLine);
                        }
                        return Ok(None);
                    };
                    let line_end = *scan + rel;
                    if line_end + 2 > self.max_head {
                        return Err(FrameError::HeadTooLong(self.max_head));
                    }
                    let line = &self.buf[*scan..line_end];
                    let Some(t) = tid else {
                        *tid = Some(start_tid(line).ok_or(FrameError::StartLine)?);
                        *scan = line_end + 2;
                        continue;
                    };
                    if line.is_empty() {
                        let t = std::mem::take(t);
                        let start = line_end + 2;
                        self.state = State::Body {
                            tid: t,
                            start,
                            scan: start,
                        };
                        continue;
                    }
                    if is_end_line(line, t) {
                        return Ok(Some(self.take(line_end + 2)));
                    }
                    *scan = line_end + 2;
                }
                State::Body { tid, start, scan } => {
                    let mut needle = b"\r\n-------".to_vec();
                    needle.extend_from_slice(tid);
                    let tail = needle.len() + 3;
                    loop {
                        let Some(rel) = find(&self.buf[*scan..], &needle) else {
                            *scan = self.buf.len().saturating_sub(needle.len()).max(*scan);
                            break;
                        };
                        let at = *scan + rel;
                        if at - *start > self.max_body {
                            return Err(FrameError::BodyTooLong(self.max_body));
                        }
                        if self.buf.len() < at + tail {
                            return Ok(None);
                        }
                        let flag = self.buf[at + needle.len()];
                        if Continuation::from_byte(flag).is_some()
                            && &self.buf[at + needle.len() + 1..at + tail] == b"\r\n"
                        {
                            return Ok(Some(self.take(at + tail)));
                        }
                        *scan = at + 1;
                    }
                    if self.buf.len() - *start >= self.max_body + needle.len() {
                        return Err(FrameError::BodyTooLong(self.max_body));
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        self.state = State::Head { scan: 0, tid: None };
        std::mem::replace(&mut self.buf, rest)
    }
}

/// The tid of `MSRP <tid> <rest>`.
fn start_tid(line: &[u8]) -> Option<Vec<u8>> {
    let rest = line.strip_prefix(b"MSRP ")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let tid = &rest[..sp];
    is_ident(tid).then(|| tid.to_vec())
}

/// Whether `buf` (no CRLF yet) may still become a start line: early junk
/// is refused without waiting for the head limit.
fn start_could_be(buf: &[u8]) -> bool {
    let n = buf.len().min(5);
    buf[..n] == b"MSRP "[..n]
        && (buf.len() <= 5
            || buf[5..]
                .iter()
                .take_while(|&&b| b != b' ')
                .all(|&b| b.is_ascii_alphanumeric() || b".-+%=".contains(&b)))
        && buf.len() < 5 + 33 + 1 + 64 + 1000
}

fn is_end_line(line: &[u8], tid: &[u8]) -> bool {
    line.len() == 7 + tid.len() + 1
        && line.starts_with(b"-------")
        && &line[7..7 + tid.len()] == tid
        && Continuation::from_byte(line[line.len() - 1]).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msrp::codec::tests::{OK, SEND};

    fn frames(f: &mut Framer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(frame) = f.next_frame().unwrap() {
            out.push(frame);
        }
        out
    }

    #[test]
    fn cuts_a_stream_fed_one_byte_at_a_time() {
        let stream = [SEND, OK, SEND].concat();
        let mut f = Framer::new(1024, 1024);
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            got.extend(frames(&mut f));
        }
        assert_eq!(got, vec![SEND.to_vec(), OK.to_vec(), SEND.to_vec()]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn cuts_a_stream_fed_at_once() {
        let mut f = Framer::new(1024, 1024);
        f.push(&[OK, SEND, OK].concat());
        assert_eq!(
            frames(&mut f),
            vec![OK.to_vec(), SEND.to_vec(), OK.to_vec()]
        );
    }

    #[test]
    fn end_lines_of_other_transactions_and_bad_flags_stay_in_the_body() {
        let raw = b"MSRP abcd1234 SEND\r\nTo-Path: msrp://a:1/x;tcp\r\nFrom-Path: msrp://b:2/y;tcp\r\n\
Content-Type: text/plain\r\n\r\nx\r\n-------zzzz9999$\r\n-------abcd1234!\r\ny\r\n-------abcd1234$\r\n";
        let mut f = Framer::new(1024, 1024);
        f.push(raw);
        assert_eq!(frames(&mut f), vec![raw.to_vec()]);
    }

    #[test]
    fn an_empty_body_ends_at_once() {
        let raw =
            b"MSRP abcd1234 SEND\r\nTo-Path: msrp://a:1/x;tcp\r\nFrom-Path: msrp://b:2/y;tcp\r\n\
Content-Type: text/plain\r\n\r\n\r\n-------abcd1234$\r\n";
        let mut f = Framer::new(1024, 1024);
        f.push(raw);
        assert_eq!(frames(&mut f), vec![raw.to_vec()]);
    }

    #[test]
    fn limits_hold_before_the_end_is_seen() {
        let mut f = Framer::new(64, 1024);
        f.push(&SEND[..70]);
        assert_eq!(f.next_frame(), Err(FrameError::HeadTooLong(64)));
        f.push(SEND);
        assert_eq!(
            f.next_frame(),
            Err(FrameError::HeadTooLong(64)),
            "stays failed"
        );
        assert_eq!(f.buffered(), 0);

        let mut f = Framer::new(1024, 10);
        f.push(&SEND[..SEND.len() - 43]);
        assert_eq!(f.next_frame(), Ok(None));
        f.push(&[b'x'; 26]);
        assert_eq!(
            f.next_frame(),
            Ok(None),
            "the end-line may still start at byte 10"
        );
        f.push(b"x");
        assert_eq!(f.next_frame(), Err(FrameError::BodyTooLong(10)));

        let mut f = Framer::new(1024, 10);
        f.push(SEND);
        assert_eq!(f.next_frame(), Err(FrameError::BodyTooLong(10)));

        let mut f = Framer::new(1024, 23);
        f.push(SEND);
        assert_eq!(frames(&mut f), vec![SEND.to_vec()], "exactly the limit");
    }

    #[test]
    fn junk_is_refused_early() {
        for junk in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"GET",
            b"MSRP a\x01",
            b"MSRP ab SEND\r\n",
        ] {
            let mut f = Framer::new(1024, 1024);
            f.push(junk);
            assert_eq!(f.next_frame(), Err(FrameError::StartLine), "{junk:?}");
        }
        let mut f = Framer::new(1024, 1024);
        f.push(b"MSR");
        assert_eq!(f.next_frame(), Ok(None));
    }
}
