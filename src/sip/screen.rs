//! Raw bytes before rsipstack sees them, and the TCP framer. rsipstack
//! 0.7.14 is the one SIP parser; this screen only looks at the raw bytes for
//! what rsipstack would silently drop or silently get wrong, and answers it
//! as RFC 3261 §8.2 and §18.3 ask. Each check, and why rsipstack cannot be
//! relied on for it:
//!
//! - **Unknown method → 501.** rsipstack's `Method` is a closed enum: `FOO
//!   sip:x SIP/2.0` is a parse error and the datagram is dropped unanswered.
//! - **SIP version other than 2.0 → 400.** rsipstack accepts `SIP/3.0`.
//! - **CSeq method ≠ request method → 400.** rsipstack does not compare them.
//! - **Content-Length not a number, larger than the body, or over
//!   [`MAX_BODY`] → 400/413.** rsipstack reads a bad value as 0 and cuts the
//!   body to what arrived, so a truncated datagram would pass as a shorter
//!   message.
//! - **Header block not UTF-8 → 400.** rsipstack stops reading headers at the
//!   first line that is not UTF-8 and passes the message on without the rest.
//! - **Anything else rsipstack refuses → 400** with its own error: its parse
//!   and its transaction key (no From tag, a Via it cannot read…) are run
//!   here, and the parsed message is handed on ([`Screened::Pass`]). On UDP
//!   rsipstack's receive loop parses the datagram again (`transport.rs`).
//!
//! A request without Via, From, To, Call-ID or CSeq cannot be answered and is
//! dropped. Pure functions over bytes.

use rsipstack::sip::SipMessage;
use rsipstack::sip::headers::make_header;

/// The largest request body we take (64 KiB).
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// The longest header block we buffer on a stream.
const MAX_HEAD: usize = 16 * 1024;

/// Methods rsipstack's parser knows.
const KNOWN: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Screened {
    /// Hand it on: the message as rsipstack parsed it.
    Pass(Box<SipMessage>),
    /// Send these bytes back to the sender instead.
    Reply(Vec<u8>),
    /// Nothing can be answered (no Via, From, To, Call-ID or CSeq): drop it.
    Drop(String),
}

/// The headers a response needs, taken from a request that may be broken.
#[derive(Debug, Default)]
struct Head {
    request_line: String,
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
    content_length: Option<String>,
}

fn read_head(head: &[u8]) -> Head {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut h = Head {
        request_line: lines.next().unwrap_or_default().to_owned(),
        ..Head::default()
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            // rsipstack's own names, so compact forms match as they will later.
            let name = make_header(n.trim(), String::new()).name().to_owned();
            fields.push((name, v.trim().to_owned()));
        }
    }
    for (n, v) in fields {
        match n.to_ascii_lowercase().as_str() {
            "via" => h.vias.push(v),
            "from" => h.from = h.from.or(Some(v)),
            "to" => h.to = h.to.or(Some(v)),
            "call-id" => h.call_id = h.call_id.or(Some(v)),
            "cseq" => h.cseq = h.cseq.or(Some(v)),
            "content-length" => h.content_length = h.content_length.or(Some(v)),
            _ => {}
        }
    }
    h
}

/// Builds a response to a request whose head is `head` (which need not parse
/// as a whole), or `None` when it lacks what a response must copy.
pub(crate) fn reply_to(head: &[u8], code: u16, warning: &str) -> Option<Vec<u8>> {
    let h = read_head(head);
    build(&h, code, warning)
}

fn build(h: &Head, code: u16, warning: &str) -> Option<Vec<u8>> {
    let (from, to, call_id, cseq) = (
        h.from.as_ref()?,
        h.to.as_ref()?,
        h.call_id.as_ref()?,
        h.cseq.as_ref()?,
    );
    if h.vias.is_empty() {
        return None;
    }
    let reason = match code {
        400 => "Bad Request",
        413 => "Request Entity Too Large",
        501 => "Not Implemented",
        _ => "Error",
    };
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in &h.vias {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {from}\r\n"));
    if to.to_ascii_lowercase().contains(";tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        // A fixed tag per Call-ID: retransmissions get the same answer.
        let tag = &super::digest::md5_hex(call_id)[..10];
        out.push_str(&format!("To: {to};tag={tag}\r\n"));
    }
    out.push_str(&format!("Call-ID: {call_id}\r\nCSeq: {cseq}\r\n"));
    if code == 501 {
        out.push_str(&format!("Allow: {}\r\n", super::uas::ALLOW));
    }
    let clean: String = warning
        .chars()
        .map(|c| if c == '"' || c.is_control() { '\'' } else { c })
        .take(200)
        .collect();
    out.push_str(&format!(
        "Warning: 399 smsbridge \"{clean}\"\r\nContent-Length: 0\r\n\r\n"
    ));
    Some(out.into_bytes())
}

fn answer(h: &Head, code: u16, why: &str) -> Screened {
    match build(h, code, why) {
        Some(bytes) => Screened::Reply(bytes),
        None => Screened::Drop(why.to_owned()),
    }
}

/// Screens one complete message (a datagram, or a frame from [`Framer`]).
pub(crate) fn screen(msg: &[u8]) -> Screened {
    if msg.starts_with(b"SIP/") {
        // Responses are for our client transactions; nothing is answered.
        return match SipMessage::try_from(msg) {
            Ok(m) => Screened::Pass(Box::new(m)),
            Err(e) => Screened::Drop(format!("unreadable response: {e}")),
        };
    }
    let Some(end) = msg.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Screened::Drop("no end of headers".into());
    };
    let h = read_head(&msg[..end]);
    let body = &msg[end + 4..];
    if h.from.is_none()
        || h.to.is_none()
        || h.call_id.is_none()
        || h.cseq.is_none()
        || h.vias.is_empty()
    {
        return Screened::Drop("missing Via, From, To, Call-ID or CSeq".into());
    }
    let parts: Vec<&str> = h
        .request_line
        .split([' ', '\t'])
        .filter(|p| !p.is_empty())
        .collect();
    let [method, _uri, version] = parts[..] else {
        return answer(&h, 400, "bad request line");
    };
    if version != "SIP/2.0" {
        return answer(&h, 400, "bad SIP version");
    }
    let is_token = method
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    if !is_token {
        return answer(&h, 400, "bad method");
    }
    if !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(method)) {
        return answer(&h, 501, &format!("{method} is not implemented"));
    }
    let cseq_ok = h.cseq.as_deref().is_some_and(|c| {
        let mut it = c.split_whitespace();
        matches!(
            (it.next().map(str::parse::<u32>), it.next(), it.next()),
            (Some(Ok(_)), Some(m), None) if m == method
        )
    });
    if !cseq_ok {
        return answer(&h, 400, "bad CSeq");
    }
    if std::str::from_utf8(&msg[..end]).is_err() {
        return answer(&h, 400, "header not UTF-8");
    }
    if let Some(cl) = &h.content_length {
        match cl.trim().parse::<usize>() {
            Ok(n) if n > MAX_BODY => return answer(&h, 413, "body too large"),
            Ok(n) if n > body.len() => return answer(&h, 400, "body shorter than Content-Length"),
            Ok(_) => {}
            Err(_) => return answer(&h, 400, "bad Content-Length"),
        }
    } else if body.len() > MAX_BODY {
        return answer(&h, 413, "body too large");
    }
    match SipMessage::try_from(msg) {
        Ok(SipMessage::Request(req)) => {
            use rsipstack::transaction::key::{TransactionKey, TransactionRole};
            match TransactionKey::from_request(&req, TransactionRole::Server) {
                Ok(_) => Screened::Pass(Box::new(SipMessage::Request(req))),
                Err(e) => answer(&h, 400, &e.to_string()),
            }
        }
        // The request line did not start with `SIP/`: not a response.
        Ok(SipMessage::Response(_)) => answer(&h, 400, "bad request line"),
        Err(e) => answer(&h, 400, &e.to_string()),
    }
}

/// One item from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole message (head and Content-Length bytes of body).
    Message(Vec<u8>),
    /// A CRLFCRLF keep-alive (RFC 5626 §3.5.1): answer CRLF.
    Ping,
}

/// A stream that cannot be framed any more; answer if possible, then close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError {
    /// 400 or 413.
    pub(crate) code: u16,
    pub(crate) why: &'static str,
    /// The head of the offending message, when it was complete.
    pub(crate) head: Option<Vec<u8>>,
}

/// Splits a byte stream into SIP messages by Content-Length (RFC 3261 §18.3).
///
/// Ours, not rsipstack's `SipCodec` (0.7.14, `transport/stream.rs`), because
/// that codec cannot do what RFC 3261 §18.3 and §21.4.14 ask of a server:
/// - it fails a bad Content-Length with a bare `Error` and no head, so no
///   400 can be sent back;
/// - it does not look at Content-Length before buffering the body: a
///   `Content-Length: 1000000` message is read until 64 KiB have piled up,
///   then the whole stream fails with "too large", never a 413; and a value
///   near `usize::MAX` overflows its `headers_end + 4 + content_length`
///   ("attempt to add with overflow" in a debug build);
/// - it matches `Content-Length` only with no space before the colon, where
///   RFC 3261 §7.3.1 allows any, so `Content-Length : 5` frames as length 0;
/// - it yields parsed messages only, and a parse error ends the stream, so
///   the screen's 501/400 answers ([`screen`]) would be lost;
/// - a bare CRLF between messages comes out as a keep-alive *response*.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Appends bytes read from the stream.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether part of a message is held, waiting for the rest.
    pub(crate) fn is_mid_message(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next frame, `Ok(None)` when more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.drain(..4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.starts_with(b"\r\n") {
                if self.buf.len() < 4 && b"\r\n\r\n".starts_with(&self.buf) {
                    return Ok(None);
                }
                self.buf.drain(..2);
                continue;
            }
            break;
        }
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEAD {
                return Err(FrameError {
                    code: 400,
                    why: "header block too long",
                    head: None,
                });
            }
            return Ok(None);
        };
        let head = &self.buf[..end];
        let err = |code, why| FrameError {
            code,
            why,
            head: Some(head.to_vec()),
        };
        let length = match read_head(head).content_length {
            None => 0,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| err(400, "bad Content-Length"))?,
        };
        if length > MAX_BODY {
            return Err(err(413, "body too large"));
        }
        let total = end + 4 + length;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::Message(self.buf.drain(..total).collect())))
    }
}

#[cfg(test)]
mod tests;
