//! Raw bytes before rsipstack sees them, and the TCP framer. rsipstack
//! 0.7.14 is the one SIP parser; this screen only looks at the raw bytes for
//! what rsipstack would silently drop or silently get wrong, and answers it
//! as RFC 3261 §8.2 and §18.3 ask (the cases are RFC 4475's torture tests,
//! kept as fixtures in tests/fixtures/rfc4475). Each check, and why
//! rsipstack cannot be relied on for it:
//!
//! - **No Via → dropped**: there is nowhere to send an answer.
//! - **No From, To, Call-ID or CSeq, or two of one of them, or two
//!   Content-Lengths → 400** (RFC 4475 §3.3.1, §3.3.8, §3.3.9): rsipstack
//!   cannot key a transaction without them, so it would drop the request,
//!   and with two it silently takes the first.
//! - **Request-Line not exactly `Method SP Request-URI SP SIP/2.0` → 400,
//!   another SIP version → 505** (RFC 3261 §7.1, §8.2.2; RFC 4475
//!   §3.1.2.7–10, §3.1.2.16): rsipstack accepts extra white space, a URI in
//!   `<>`, and `SIP/7.0`. A `sip:`/`sips:` Request-URI with `?headers` is
//!   refused too (RFC 3261 §19.1.1 table 1; RFC 4475 §3.1.2.11).
//! - **A Request-URI scheme other than `sip`, `sips`, `tel` → 416** (RFC
//!   3261 §8.2.2.1; RFC 4475 §3.3.2–3): rsipstack reads
//!   `soap.beep://192.0.2.103:3002` as a host with no scheme at all.
//! - **Unknown method → 501.** rsipstack's `Method` is a closed enum: `FOO
//!   sip:x SIP/2.0` is a parse error and the datagram is dropped unanswered.
//! - **CSeq method ≠ request method → 400.** rsipstack does not compare them.
//! - **Via, From, To and Contact values the grammar refuses → 400**, and LWS
//!   rsipstack cannot read removed before it parses: see [`syntax`].
//! - **No empty line after the header fields → 400** (a datagram cannot
//!   bring the rest later).
//! - **Content-Length not a number, larger than the body, or over
//!   [`MAX_BODY`] → 400/413.** rsipstack reads a bad value as 0 and cuts the
//!   body to what arrived, so a truncated datagram would pass as a shorter
//!   message.
//! - **Header block not UTF-8 → 400.** rsipstack stops reading headers at the
//!   first line that is not UTF-8 and passes the message on without the rest.
//! - **No From tag** (RFC 2543): rsipstack cannot key the transaction, so a
//!   tag is added before it sees the request, and taken out of the answer
//!   again ([`rfc2543_from_tag`]).
//! - **Anything else rsipstack refuses → 400** with its own error: its parse
//!   and its transaction key are run here, and the parsed message is handed
//!   on ([`Screened::Pass`]) with the bytes it was parsed from: the head
//!   rewritten one header a line, folding undone, LWS squeezed out of the
//!   structured headers, and Content-Length's worth of body. On UDP
//!   rsipstack's receive loop parses those bytes again (`transport.rs`).
//!
//! Every answer has one To tag: the request's when it has one (however it
//! is spaced), else one made from the Call-ID. Pure functions over bytes.

mod syntax;

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

/// Headers whose values [`syntax::squeeze`] rewrites: the ones rsipstack
/// reads as typed values.
const STRUCTURED: [&str; 7] = [
    "Via",
    "From",
    "To",
    "Contact",
    "CSeq",
    "Route",
    "Record-Route",
];

/// Headers a request carries once (RFC 3261 §7.3, §20).
const SINGLE: [&str; 6] = [
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
];

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Screened {
    /// Hand it on: the message as rsipstack parsed it, and the bytes it
    /// parsed (for rsipstack's UDP loop, which parses again).
    Pass(Box<SipMessage>, Vec<u8>),
    /// Send these bytes back to the sender instead.
    Reply(Vec<u8>),
    /// Nothing can be answered (no Via): drop it.
    Drop(String),
}

/// The header block of a message that may be broken: the start line, and
/// each header unfolded, under rsipstack's name for it (compact forms
/// expanded), structured values squeezed.
#[derive(Debug, Default)]
struct Head {
    start_line: String,
    fields: Vec<(String, String)>,
}

impl Head {
    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head as rsipstack will read it, ending in the empty line.
    fn rewritten(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start_line);
        for (n, v) in &self.fields {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

fn read_head(head: &[u8]) -> Head {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or_default().to_owned();
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
    for (n, v) in &mut fields {
        if STRUCTURED.iter().any(|s| s.eq_ignore_ascii_case(n)) {
            *v = syntax::squeeze(v);
        }
    }
    Head { start_line, fields }
}

/// Builds a response to a request whose head is `head` (which need not parse
/// as a whole), or `None` when it has no Via to answer to.
pub(crate) fn reply_to(head: &[u8], code: u16, warning: &str) -> Option<Vec<u8>> {
    build(&read_head(head), code, warning)
}

/// A 503 with `Retry-After: retry_after` (seconds) for a request that came
/// when the front end had all the work it takes; `None` if it has no Via.
pub(crate) fn busy_reply_to(head: &[u8], retry_after: u64, warning: &str) -> Option<Vec<u8>> {
    let mut out = build(&read_head(head), 503, warning)?;
    // Before the Warning, which `build` writes after every other header.
    let at = out.windows(9).position(|w| w == b"Warning: ")?;
    let retry = format!("Retry-After: {retry_after}\r\n");
    out.splice(at..at, retry.into_bytes());
    Some(out)
}

fn build(h: &Head, code: u16, warning: &str) -> Option<Vec<u8>> {
    h.get("Via").filter(|v| !v.is_empty())?;
    let reason = match code {
        400 => "Bad Request",
        413 => "Request Entity Too Large",
        416 => "Unsupported URI Scheme",
        501 => "Not Implemented",
        505 => "Version Not Supported",
        503 => "Service Unavailable",
        513 => "Message Too Large",
        _ => "Error",
    };
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in h.values("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    // What a request lacks (RFC 4475 §3.3.1) cannot be copied; the rest is.
    if let Some(from) = h.get("From") {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = h.get("To") {
        if syntax::header_param(to, "tag").is_some() {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            // A fixed tag per Call-ID: retransmissions get the same answer.
            let tag = &super::digest::md5_hex(h.get("Call-ID").unwrap_or_default())[..10];
            out.push_str(&format!("To: {to};tag={tag}\r\n"));
        }
    }
    for name in ["Call-ID", "CSeq"] {
        if let Some(v) = h.get(name) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
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
        None => Screened::Drop(format!("no Via to answer to: {why}")),
    }
}

/// Screens one complete message (a datagram, or a frame from [`Framer`]).
pub(crate) fn screen(msg: &[u8]) -> Screened {
    if msg.starts_with(b"SIP/") {
        // Responses are for our client transactions; nothing is answered.
        return match SipMessage::try_from(msg) {
            Ok(m) => Screened::Pass(Box::new(m), msg.to_vec()),
            Err(e) => Screened::Drop(format!("unreadable response: {e}")),
        };
    }
    let Some(end) = msg.windows(4).position(|w| w == b"\r\n\r\n") else {
        // Whole lines but no empty line after them (RFC 4475 §3.1.2.15's
        // archive file): a datagram brings no more, so that is its answer.
        // Cut inside a line, it is a truncated datagram: dropped.
        if !msg.ends_with(b"\r\n") {
            return Screened::Drop("no end of headers".into());
        }
        return answer(
            &read_head(msg),
            400,
            "no empty line after the header fields",
        );
    };
    let h = read_head(&msg[..end]);
    let body = &msg[end + 4..];
    if h.get("Via").is_none() {
        return Screened::Drop("no Via to answer to".into());
    }
    if let Some(why) = request_line_error(&h) {
        return why;
    }
    if let Some(missing) = ["From", "To", "Call-ID", "CSeq"]
        .into_iter()
        .find(|n| h.get(n).is_none())
    {
        return answer(&h, 400, &format!("no {missing}"));
    }
    if let Some(twice) = SINGLE.into_iter().find(|n| h.values(n).nth(1).is_some()) {
        return answer(&h, 400, &format!("more than one {twice}"));
    }
    let method = h.start_line.split(' ').next().unwrap_or_default();
    let cseq_ok = h.get("CSeq").is_some_and(|c| {
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
    if let Some(why) = header_error(&h) {
        return answer(&h, 400, &why);
    }
    // Octets after Content-Length's worth of body are discarded (RFC 3261
    // §18.3; RFC 4475 §3.1.1.8), so rsipstack never sees them.
    let body = match h.get("Content-Length").map(str::parse::<usize>) {
        Some(Ok(n)) if n > MAX_BODY => return answer(&h, 413, "body too large"),
        Some(Ok(n)) => match body.get(..n) {
            Some(b) => b,
            None => return answer(&h, 400, "body shorter than Content-Length"),
        },
        Some(Err(_)) => return answer(&h, 400, "bad Content-Length"),
        None if body.len() > MAX_BODY => return answer(&h, 413, "body too large"),
        None => body,
    };
    let mut h = h;
    add_rfc2543_from_tag(&mut h);
    let mut bytes = h.rewritten();
    bytes.extend_from_slice(body);
    match SipMessage::try_from(bytes.as_slice()) {
        Ok(SipMessage::Request(req)) => {
            use rsipstack::transaction::key::{TransactionKey, TransactionRole};
            match TransactionKey::from_request(&req, TransactionRole::Server) {
                Ok(_) => Screened::Pass(Box::new(SipMessage::Request(req)), bytes),
                Err(e) => answer(&h, 400, &e.to_string()),
            }
        }
        // The request line did not start with `SIP/`: not a response.
        Ok(SipMessage::Response(_)) => answer(&h, 400, "bad request line"),
        Err(e) => answer(&h, 400, &e.to_string()),
    }
}

/// The From tag a request without one is handed on with: rsipstack keys a
/// transaction by the From tag and refuses a request without one, but an
/// RFC 2543 client sends none (RFC 4475 §3.4.1). Made from the Call-ID, so
/// a retransmission meets its transaction; the glue takes it out of the
/// response again, whose From must be the request's (RFC 3261 §8.2.6.2).
pub(crate) fn rfc2543_from_tag(call_id: &str) -> String {
    format!("rfc2543-{}", &super::digest::md5_hex(call_id)[..10])
}

fn add_rfc2543_from_tag(h: &mut Head) {
    let call_id = h.get("Call-ID").unwrap_or_default().to_owned();
    if let Some((_, from)) = h.fields.iter_mut().find(|(n, _)| n == "From")
        && syntax::header_param(from, "tag").is_none()
    {
        from.push_str(&format!(";tag={}", rfc2543_from_tag(&call_id)));
    }
}

/// `Method SP Request-URI SP SIP-Version`, one space each, nothing else
/// (RFC 3261 §7.1, §25.1); a method we do not know is 501.
fn request_line_error(h: &Head) -> Option<Screened> {
    let parts: Vec<&str> = h.start_line.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Some(answer(h, 400, "bad request line"));
    };
    if [method, uri, version]
        .iter()
        .any(|p| p.is_empty() || p.contains(|c: char| c.is_ascii_whitespace()))
    {
        return Some(answer(h, 400, "bad request line"));
    }
    if version != "SIP/2.0" {
        return Some(match version.strip_prefix("SIP/") {
            Some(_) => answer(h, 505, &format!("{version} is not supported")),
            None => answer(h, 400, "bad SIP version"),
        });
    }
    if !syntax::is_token(method) {
        return Some(answer(h, 400, "bad method"));
    }
    // Before the URI: an unknown method with an odd URI is still 501.
    if !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(method)) {
        return Some(answer(h, 501, &format!("{method} is not implemented")));
    }
    let scheme = uri.split_once(':').map(|(s, _)| s).unwrap_or_default();
    if !syntax::is_scheme(scheme) {
        return Some(answer(h, 400, "the Request-URI has no scheme"));
    }
    if !["sip", "sips", "tel"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Some(answer(
            h,
            416,
            &format!("{scheme}: URIs are not served here"),
        ));
    }
    if !scheme.eq_ignore_ascii_case("tel") && uri.contains('?') {
        return Some(answer(h, 400, "headers in the Request-URI"));
    }
    None
}

/// The first Via, From, To or Contact value the grammar refuses.
fn header_error(h: &Head) -> Option<String> {
    let check = |name: &str, f: fn(&str) -> Result<(), &'static str>| {
        h.values(name)
            .find_map(|v| f(v).err())
            .map(|why| format!("{name}: {why}"))
    };
    check("Via", syntax::via)
        .or_else(|| check("From", syntax::name_addr))
        .or_else(|| check("To", syntax::name_addr))
        .or_else(|| check("Contact", syntax::contact))
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
        let h = read_head(head);
        // Two Content-Lengths: no way to know where the next message starts
        // (RFC 4475 §3.3.9).
        if h.values("Content-Length").nth(1).is_some() {
            return Err(err(400, "more than one Content-Length"));
        }
        let length = match h.get("Content-Length") {
            None => 0,
            Some(v) => v
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
