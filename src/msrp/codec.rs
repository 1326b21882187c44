//! One MSRP chunk, request or response, as RFC 4975 §9 writes it:
//!
//! ```text
//! MSRP <tid> SEND | REPORT | OTHER        MSRP <tid> <code> [comment]
//! To-Path: <uri> ...                      To-Path: <uri> ...
//! From-Path: <uri> ...                    From-Path: <uri> ...
//! *(header)                               *(header)
//! [Content-Type ... CRLF CRLF body CRLF]  -------<tid>$
//! -------<tid>($ | + | #)
//! ```
//!
//! [`Chunk::parse`] takes one whole chunk (as the framer cut it) and
//! [`Chunk::to_bytes`] writes one; both are exact and reject anything the
//! grammar does not allow, with the reason.

use std::fmt::Write as _;

use super::uri::MsrpUri;

/// Request method: SEND, REPORT, or another (answered 501).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// SEND: message content.
    Send,
    /// REPORT: a delivery report on a message sent earlier.
    Report,
    /// Any other `1*UPALPHA`.
    Other(String),
}

impl Method {
    fn as_str(&self) -> &str {
        match self {
            Method::Send => "SEND",
            Method::Report => "REPORT",
            Method::Other(m) => m,
        }
    }
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `MSRP <tid> <method>`.
    Request(Method),
    /// `MSRP <tid> <code> [comment]`.
    Response {
        /// Three digits.
        code: u16,
        /// The reason text, if any.
        comment: Option<String>,
    },
}

/// The end-line's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// `$`: the last chunk of the message.
    End,
    /// `+`: more chunks follow.
    More,
    /// `#`: the message is abandoned.
    Abort,
}

impl Continuation {
    fn as_char(self) -> char {
        match self {
            Continuation::End => '$',
            Continuation::More => '+',
            Continuation::Abort => '#',
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Continuation> {
        match b {
            b'$' => Some(Continuation::End),
            b'+' => Some(Continuation::More),
            b'#' => Some(Continuation::Abort),
            _ => None,
        }
    }
}

/// `Byte-Range: start-end/total`; `None` stands for `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte, counted from 1.
    pub start: u64,
    /// Last byte, or `*` (not known yet, or interruptible).
    pub end: Option<u64>,
    /// Message size, or `*`.
    pub total: Option<u64>,
}

/// `Failure-Report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReport {
    /// `yes` (the default): responses and failure REPORTs.
    Yes,
    /// `no`: neither.
    No,
    /// `partial`: only negative responses.
    Partial,
}

/// `Status: 000 <code> [reason]` in a REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Namespace, `000` for MSRP's own codes.
    pub namespace: u16,
    /// The code.
    pub code: u16,
    /// Reason text.
    pub reason: Option<String>,
}

/// One chunk, with the headers MSRP defines read into fields and the rest
/// kept in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Transaction id: 4 to 32 of `ALPHANUM . - + % =`, starting alphanumeric.
    pub tid: String,
    /// Request or response.
    pub kind: Kind,
    /// `To-Path`, one URI or more.
    pub to_path: Vec<MsrpUri>,
    /// `From-Path`, one URI or more.
    pub from_path: Vec<MsrpUri>,
    /// `Message-ID`.
    pub message_id: Option<String>,
    /// `Byte-Range`.
    pub byte_range: Option<ByteRange>,
    /// `Success-Report` (`yes` is true).
    pub success_report: Option<bool>,
    /// `Failure-Report`.
    pub failure_report: Option<FailureReport>,
    /// `Status`.
    pub status: Option<Status>,
    /// Other headers before the content (names as written).
    pub headers: Vec<(String, String)>,
    /// `Content-Type` of the body; `Some` exactly when there is content.
    pub content_type: Option<String>,
    /// MIME headers between Content-Type's siblings (`Content-ID`, ...),
    /// written before Content-Type.
    pub content_headers: Vec<(String, String)>,
    /// The data.
    pub body: Vec<u8>,
    /// The end-line's flag.
    pub continuation: Continuation,
}

/// Why a chunk does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The start line is wrong.
    #[error("bad start line: {0}")]
    StartLine(String),
    /// A header is wrong or missing.
    #[error("bad header: {0}")]
    Header(String),
    /// The end-line does not close this transaction.
    #[error("bad end-line: {0}")]
    EndLine(String),
    /// Content without Content-Type, or a body where none may be.
    #[error("bad content: {0}")]
    Content(String),
}

/// `ident = ALPHANUM 3*31ident-char`.
pub(crate) fn is_ident(s: &[u8]) -> bool {
    (4..=32).contains(&s.len())
        && s[0].is_ascii_alphanumeric()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b".-+%=".contains(&b))
}

/// `utf8text`: printable text, tabs allowed, no control characters.
fn is_text(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\t')
}

impl Chunk {
    /// A SEND with no headers beyond the paths; fill in the rest.
    pub fn send(tid: &str, to_path: Vec<MsrpUri>, from_path: Vec<MsrpUri>) -> Chunk {
        Chunk {
            tid: tid.to_owned(),
            kind: Kind::Request(Method::Send),
            to_path,
            from_path,
            message_id: None,
            byte_range: None,
            success_report: None,
            failure_report: None,
            status: None,
            headers: Vec::new(),
            content_type: None,
            content_headers: Vec::new(),
            body: Vec::new(),
            continuation: Continuation::End,
        }
    }

    /// The response to this request (§7.2): the same tid, To-Path the
    /// request's From-Path, From-Path our URI (the request's first To-Path
    /// hop, there being no relays).
    pub fn response(&self, code: u16, comment: &str) -> Chunk {
        let mut r = Chunk::send(
            &self.tid,
            self.from_path.clone(),
            self.to_path.first().cloned().into_iter().collect(),
        );
        r.kind = Kind::Response {
            code,
            comment: (!comment.is_empty()).then(|| comment.to_owned()),
        };
        r
    }

    /// Whether a response with this code is owed for this request (§7.2):
    /// never for REPORT; for `Failure-Report: no` none; for `partial` only
    /// negative ones.
    pub fn wants_response(&self, code: u16) -> bool {
        match &self.kind {
            Kind::Request(Method::Report) | Kind::Response { .. } => false,
            Kind::Request(_) => match self.failure_report.unwrap_or(FailureReport::Yes) {
                FailureReport::Yes => true,
                FailureReport::No => false,
                FailureReport::Partial => code != 200,
            },
        }
    }

    /// The request's method, if it is one.
    pub fn method(&self) -> Option<&Method> {
        match &self.kind {
            Kind::Request(m) => Some(m),
            Kind::Response { .. } => None,
        }
    }

    /// Reads one whole chunk, end-line included.
    pub fn parse(bytes: &[u8]) -> Result<Chunk, ParseError> {
        let head_end =
            find(bytes, b"\r\n").ok_or_else(|| ParseError::StartLine("no CRLF".into()))?;
        let start = std::str::from_utf8(&bytes[..head_end])
            .map_err(|_| ParseError::StartLine("not UTF-8".into()))?;
        let (tid, kind) = parse_start(start)?;
        let mut chunk = Chunk::send(&tid, Vec::new(), Vec::new());
        chunk.kind = kind;

        let end_line_len = 7 + tid.len() + 3;
        if bytes.len() < head_end + 2 + end_line_len {
            return Err(ParseError::EndLine("too short".into()));
        }
        let (rest, end_line) = bytes.split_at(bytes.len() - end_line_len);
        let rest = &rest[head_end + 2..];
        if !end_line.starts_with(b"-------")
            || &end_line[7..7 + tid.len()] != tid.as_bytes()
            || !end_line.ends_with(b"\r\n")
        {
            return Err(ParseError::EndLine(format!(
                "does not close transaction {tid}"
            )));
        }
        chunk.continuation = Continuation::from_byte(end_line[7 + tid.len()])
            .ok_or_else(|| ParseError::EndLine("flag is not $, + or #".into()))?;

        // `rest` is headers (each ending CRLF), then optionally CRLF body CRLF.
        let (head, content) = match find(rest, b"\r\n\r\n") {
            Some(i) => {
                let body = &rest[i + 4..];
                let body = body
                    .strip_suffix(b"\r\n")
                    .ok_or_else(|| ParseError::Content("body not followed by CRLF".into()))?;
                (&rest[..i + 2], Some(body))
            }
            None => (rest, None),
        };
        let head = std::str::from_utf8(head)
            .map_err(|_| ParseError::Header("headers are not UTF-8".into()))?;
        let lines: Vec<&str> = head
            .strip_suffix("\r\n")
            .ok_or_else(|| ParseError::Header("no To-Path".into()))?
            .split("\r\n")
            .collect();
        let mut in_content = false;
        for (i, line) in lines.iter().enumerate() {
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| ParseError::Header(format!("{line:?} is not \"Name: value\"")))?;
            if name.is_empty() || !name.bytes().all(is_header_name_char) {
                return Err(ParseError::Header(format!("bad name {name:?}")));
            }
            if !is_text(value) {
                return Err(ParseError::Header(format!("control characters in {name}")));
            }
            match (i, name) {
                (0, "To-Path") => chunk.to_path = parse_path(value)?,
                (0, _) => return Err(ParseError::Header("To-Path must come first".into())),
                (1, "From-Path") => chunk.from_path = parse_path(value)?,
                (1, _) => return Err(ParseError::Header("From-Path must come second".into())),
                (_, "To-Path" | "From-Path") => {
                    return Err(ParseError::Header(format!("{name} twice")));
                }
                _ if in_content && !is_content_header(name) => {
                    return Err(ParseError::Header(format!("{name} after Content-Type")));
                }
                (_, "Content-Type") => {
                    if !is_media_type(value) {
                        return Err(ParseError::Header(format!("bad Content-Type {value:?}")));
                    }
                    set_once(&mut chunk.content_type, value.to_owned(), name)?;
                    in_content = true;
                }
                (_, n) if is_content_header(n) => {
                    chunk.content_headers.push((n.to_owned(), value.to_owned()));
                }
                (_, "Message-ID") => {
                    if !is_ident(value.as_bytes()) {
                        return Err(ParseError::Header(format!("bad Message-ID {value:?}")));
                    }
                    set_once(&mut chunk.message_id, value.to_owned(), name)?;
                }
                (_, "Byte-Range") => set_once(&mut chunk.byte_range, parse_range(value)?, name)?,
                (_, "Success-Report") => {
                    let v = match value {
                        "yes" => true,
                        "no" => false,
                        _ => return Err(ParseError::Header(format!("Success-Report {value:?}"))),
                    };
                    set_once(&mut chunk.success_report, v, name)?;
                }
                (_, "Failure-Report") => {
                    let v = match value {
                        "yes" => FailureReport::Yes,
                        "no" => FailureReport::No,
                        "partial" => FailureReport::Partial,
                        _ => return Err(ParseError::Header(format!("Failure-Report {value:?}"))),
                    };
                    set_once(&mut chunk.failure_report, v, name)?;
                }
                (_, "Status") => set_once(&mut chunk.status, parse_status(value)?, name)?,
                (_, n) => chunk.headers.push((n.to_owned(), value.to_owned())),
            }
        }
        if lines.len() < 2 {
            return Err(ParseError::Header(
                "To-Path and From-Path are required".into(),
            ));
        }
        match (content, &chunk.content_type) {
            (Some(body), Some(_)) => {
                if matches!(chunk.kind, Kind::Response { .. }) {
                    return Err(ParseError::Content("a response has no body".into()));
                }
                chunk.body = body.to_vec();
            }
            (Some(_), None) => {
                return Err(ParseError::Content("a body needs Content-Type".into()));
            }
            (None, Some(_)) => {
                return Err(ParseError::Content("Content-Type without a body".into()));
            }
            (None, None) if !chunk.content_headers.is_empty() => {
                return Err(ParseError::Content("MIME headers without a body".into()));
            }
            (None, None) => {}
        }
        Ok(chunk)
    }

    /// Writes the chunk. The body must not contain this chunk's end-line
    /// (pick another tid if it does: [`Chunk::body_collides`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        match &self.kind {
            Kind::Request(m) => {
                let _ = write!(head, "MSRP {} {}\r\n", self.tid, m.as_str());
            }
            Kind::Response { code, comment } => {
                let _ = write!(head, "MSRP {} {code:03}", self.tid);
                if let Some(c) = comment {
                    let _ = write!(head, " {c}");
                }
                head.push_str("\r\n");
            }
        }
        write_path(&mut head, "To-Path", &self.to_path);
        write_path(&mut head, "From-Path", &self.from_path);
        if let Some(id) = &self.message_id {
            let _ = write!(head, "Message-ID: {id}\r\n");
        }
        if let Some(s) = self.success_report {
            let _ = write!(head, "Success-Report: {}\r\n", if s { "yes" } else { "no" });
        }
        if let Some(f) = self.failure_report {
            let v = match f {
                FailureReport::Yes => "yes",
                FailureReport::No => "no",
                FailureReport::Partial => "partial",
            };
            let _ = write!(head, "Failure-Report: {v}\r\n");
        }
        if let Some(r) = self.byte_range {
            let _ = write!(
                head,
                "Byte-Range: {}-{}/{}\r\n",
                r.start,
                star(r.end),
                star(r.total)
            );
        }
        if let Some(s) = &self.status {
            let _ = write!(head, "Status: {:03} {:03}", s.namespace, s.code);
            if let Some(r) = &s.reason {
                let _ = write!(head, " {r}");
            }
            head.push_str("\r\n");
        }
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        let mut out = head.into_bytes();
        if let Some(ct) = &self.content_type {
            let mut c = String::new();
            let _ = write!(c, "Content-Type: {ct}\r\n");
            for (n, v) in &self.content_headers {
                let _ = write!(c, "{n}: {v}\r\n");
            }
            c.push_str("\r\n");
            out.extend_from_slice(c.as_bytes());
            out.extend_from_slice(&self.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"-------");
        out.extend_from_slice(self.tid.as_bytes());
        out.push(self.continuation.as_char() as u8);
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Whether the body holds `CRLF -------<tid>` and so would end the
    /// chunk early (§6.1: the sender picks a tid that does not occur).
    pub fn body_collides(body: &[u8], tid: &str) -> bool {
        let mut needle = b"\r\n-------".to_vec();
        needle.extend_from_slice(tid.as_bytes());
        find(body, &needle).is_some() || {
            let mut at_start = b"-------".to_vec();
            at_start.extend_from_slice(tid.as_bytes());
            body.starts_with(&at_start)
        }
    }
}

fn star(v: Option<u64>) -> String {
    v.map_or_else(|| "*".to_owned(), |n| n.to_string())
}

fn write_path(out: &mut String, name: &str, path: &[MsrpUri]) {
    let _ = write!(out, "{name}:");
    for u in path {
        let _ = write!(out, " {u}");
    }
    out.push_str("\r\n");
}

fn set_once<T>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Header(format!("{name} twice")));
    }
    *slot = Some(v);
    Ok(())
}

fn is_header_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// `Other-Mime-header`: `Content-` headers other than Content-Type (§9).
fn is_content_header(name: &str) -> bool {
    name.len() > 8 && name[..8].eq_ignore_ascii_case("Content-") && name != "Content-Type"
}

fn is_media_type(v: &str) -> bool {
    let t = v.split(';').next().unwrap_or_default().trim();
    match t.split_once('/') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(is_header_name_char)
                && b.bytes().all(is_header_name_char)
        }
        None => false,
    }
}

fn parse_start(line: &str) -> Result<(String, Kind), ParseError> {
    let bad = |why: &str| ParseError::StartLine(format!("{why}: {line:?}"));
    let rest = line.strip_prefix("MSRP ").ok_or_else(|| bad("not MSRP"))?;
    let (tid, rest) = rest
        .split_once(' ')
        .ok_or_else(|| bad("no method or code"))?;
    if !is_ident(tid.as_bytes()) {
        return Err(bad("bad transaction id"));
    }
    let (word, comment) = match rest.split_once(' ') {
        Some((w, c)) => (w, Some(c)),
        None => (rest, None),
    };
    let kind = if word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit()) {
        let code: u16 = word.parse().map_err(|_| bad("bad code"))?;
        if !(100..=999).contains(&code) {
            return Err(bad("bad code"));
        }
        if let Some(c) = comment
            && !is_text(c)
        {
            return Err(bad("control characters in the comment"));
        }
        Kind::Response {
            code,
            comment: comment.map(str::to_owned),
        }
    } else {
        if comment.is_some() {
            return Err(bad("text after the method"));
        }
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad("bad method"));
        }
        Kind::Request(match word {
            "SEND" => Method::Send,
            "REPORT" => Method::Report,
            m => Method::Other(m.to_owned()),
        })
    };
    Ok((tid.to_owned(), kind))
}

fn parse_path(value: &str) -> Result<Vec<MsrpUri>, ParseError> {
    value
        .split(' ')
        .map(|u| MsrpUri::parse(u).map_err(|e| ParseError::Header(e.to_string())))
        .collect()
}

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn parse_range(value: &str) -> Result<ByteRange, ParseError> {
    let bad = || ParseError::Header(format!("bad Byte-Range {value:?}"));
    let (start, rest) = value.split_once('-').ok_or_else(bad)?;
    let (end, total) = rest.split_once('/').ok_or_else(bad)?;
    let start = number(start).filter(|&s| s >= 1).ok_or_else(bad)?;
    let opt = |s: &str| {
        if s == "*" {
            Ok(None)
        } else {
            number(s).map(Some).ok_or_else(bad)
        }
    };
    let (end, total) = (opt(end)?, opt(total)?);
    if end.is_some_and(|e| e + 1 < start) || matches!((end, total), (Some(e), Some(t)) if e > t) {
        return Err(bad());
    }
    Ok(ByteRange { start, end, total })
}

fn parse_status(value: &str) -> Result<Status, ParseError> {
    let bad = || ParseError::Header(format!("bad Status {value:?}"));
    let mut parts = value.splitn(3, ' ');
    let three = |s: Option<&str>| {
        s.filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(bad)
    };
    let namespace = three(parts.next())?;
    let code = three(parts.next())?;
    Ok(Status {
        namespace,
        code,
        reason: parts.next().map(str::to_owned),
    })
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// RFC 4975 §7.1's first SEND, with the Byte-Range the errata give
    /// (the body is 23 bytes; the RFC's 1-25/25 counted the CRLF).
    pub(crate) const SEND: &[u8] = b"MSRP a786hjs2 SEND\r\n\
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
Message-ID: 87652491\r\n\
Byte-Range: 1-23/23\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hey Bob, are you there?\r\n\
-------a786hjs2$\r\n";

    pub(crate) const OK: &[u8] = b"MSRP a786hjs2 200 OK\r\n\
To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
-------a786hjs2$\r\n";

    /// §7.1.2's REPORT (Status 000 200 OK for the whole message).
    const REPORT: &[u8] = b"MSRP dkei38sd REPORT\r\n\
To-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\n\
From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
Message-ID: 12339sdqwer\r\n\
Byte-Range: 1-106/106\r\n\
Status: 000 200 OK\r\n\
-------dkei38sd$\r\n";

    #[test]
    fn reads_the_rfc_send() {
        let c = Chunk::parse(SEND).unwrap();
        assert_eq!(c.tid, "a786hjs2");
        assert_eq!(c.kind, Kind::Request(Method::Send));
        assert_eq!(
            c.to_path[0].as_str(),
            "msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp"
        );
        assert_eq!(c.from_path[0].session_id(), Some("jshA7weztas"));
        assert_eq!(c.message_id.as_deref(), Some("87652491"));
        assert_eq!(
            c.byte_range,
            Some(ByteRange {
                start: 1,
                end: Some(23),
                total: Some(23)
            })
        );
        assert_eq!(c.content_type.as_deref(), Some("text/plain"));
        assert_eq!(c.body, b"Hey Bob, are you there?");
        assert_eq!(c.continuation, Continuation::End);
        assert_eq!(c.to_bytes(), SEND, "written back byte for byte");
    }

    #[test]
    fn the_response_to_the_rfc_send_is_the_rfc_response() {
        let c = Chunk::parse(SEND).unwrap();
        let r = c.response(200, "OK");
        assert_eq!(r.to_bytes(), OK);
        assert_eq!(Chunk::parse(OK).unwrap(), r);
    }

    #[test]
    fn reads_and_writes_the_rfc_report() {
        let c = Chunk::parse(REPORT).unwrap();
        assert_eq!(c.kind, Kind::Request(Method::Report));
        assert_eq!(
            c.status,
            Some(Status {
                namespace: 0,
                code: 200,
                reason: Some("OK".into())
            })
        );
        assert_eq!(c.to_bytes(), REPORT);
        assert!(!c.wants_response(200), "REPORTs get no response");
    }

    #[test]
    fn unknown_methods_and_extension_headers_are_kept() {
        let raw = b"MSRP abcd1234 FOO\r\nTo-Path: msrp://a.example:1/x;tcp\r\n\
From-Path: msrp://b.example:2/y;tcp\r\nX-Thing: 1 2\r\n-------abcd1234$\r\n";
        let c = Chunk::parse(raw).unwrap();
        assert_eq!(c.kind, Kind::Request(Method::Other("FOO".into())));
        assert_eq!(c.headers, vec![("X-Thing".into(), "1 2".into())]);
        assert_eq!(c.to_bytes(), raw);
    }

    #[test]
    fn content_headers_body_with_crlf_and_interrupted_ranges() {
        let raw = b"MSRP abcd1234 SEND\r\nTo-Path: msrp://a.example:1/x;tcp\r\n\
From-Path: msrp://b.example:2/y;tcp\r\nMessage-ID: m123\r\nByte-Range: 1-*/*\r\n\
Content-Type: message/cpim\r\nContent-ID: <x@y>\r\n\r\nline\r\n\r\nmore\r\n-------abcd1234+\r\n";
        let c = Chunk::parse(raw).unwrap();
        assert_eq!(c.body, b"line\r\n\r\nmore");
        assert_eq!(
            c.content_headers,
            vec![("Content-ID".into(), "<x@y>".into())]
        );
        assert_eq!(c.byte_range.unwrap().end, None);
        assert_eq!(c.continuation, Continuation::More);
        assert_eq!(c.to_bytes(), raw);
    }

    #[test]
    fn failure_report_decides_which_responses_are_owed() {
        let mut c = Chunk::parse(SEND).unwrap();
        assert!(c.wants_response(200));
        c.failure_report = Some(FailureReport::Partial);
        assert!(!c.wants_response(200));
        assert!(c.wants_response(413));
        c.failure_report = Some(FailureReport::No);
        assert!(!c.wants_response(413));
    }

    #[test]
    fn rejects_what_the_grammar_does_not_allow() {
        let tp = "To-Path: msrp://a.example:1/x;tcp\r\n";
        let fp = "From-Path: msrp://b.example:2/y;tcp\r\n";
        let end = "-------abcd1234$\r\n";
        let cases: Vec<(String, &str)> = vec![
            (format!("MSRP abcd1234 SEND\r\n{fp}{tp}{end}"), "order"),
            (format!("MSRP abcd1234 SEND\r\n{tp}{end}"), "no From-Path"),
            (
                format!("MSRP abc SEND\r\n{tp}{fp}-------abc$\r\n"),
                "short tid",
            ),
            (
                format!("MSRP abcd1234 send\r\n{tp}{fp}{end}"),
                "lower-case method",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}-------abcd1235$\r\n"),
                "other tid",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}-------abcd1234!\r\n"),
                "flag",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}Byte-Range: 0-1/1\r\n{end}"),
                "range 0",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}Byte-Range: 1-5/3\r\n{end}"),
                "end > total",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}Message-ID: a\r\n{end}"),
                "short id",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}\r\nhi\r\n{end}"),
                "body, no type",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}Content-Type: text/plain\r\n{end}"),
                "type, no body",
            ),
            (
                format!(
                    "MSRP abcd1234 200 OK\r\n{tp}{fp}Content-Type: text/plain\r\n\r\nx\r\n{end}"
                ),
                "response body",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}Success-Report: maybe\r\n{end}"),
                "report value",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}Status: 0 200\r\n{end}"),
                "status",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{fp}Bad\r\n{end}"),
                "no colon",
            ),
            (
                format!("MSRP abcd1234 SEND\r\n{tp}{tp}{end}"),
                "From-Path second",
            ),
            (
                format!(
                    "MSRP abcd1234 SEND\r\n{tp}{fp}Content-Type: text/plain\r\nMessage-ID: abcd\r\n\r\nx\r\n{end}"
                ),
                "after content",
            ),
        ];
        for (raw, why) in cases {
            assert!(Chunk::parse(raw.as_bytes()).is_err(), "{why}: {raw:?}");
        }
    }

    #[test]
    fn a_body_holding_the_end_line_is_seen() {
        assert!(Chunk::body_collides(b"a\r\n-------abcd1234$", "abcd1234"));
        assert!(Chunk::body_collides(b"-------abcd1234", "abcd1234"));
        assert!(!Chunk::body_collides(b"-------abcd", "abcd1234"));
    }

    #[test]
    fn every_prefix_of_a_chunk_is_refused_not_panicked() {
        for n in 0..SEND.len() {
            assert!(Chunk::parse(&SEND[..n]).is_err(), "{n}");
        }
    }
}
