//! CPIM (RFC 3862, `message/cpim`): parse a received wrapper and build ours.
//! A body is message headers, a blank line, the encapsulated MIME object's own
//! headers, a blank line, and its content. Namespaced headers (`imdn.Message-ID`)
//! are looked up through the `NS:` declarations, so any prefix works.

use crate::bridge::api::NotifyOn;

/// The IMDN CPIM header namespace (RFC 5438 §9.1); not the XML one.
pub(crate) const IMDN_NS: &str = "urn:ietf:params:imdn";

/// A parsed CPIM message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cpim {
    /// Message headers in order, names as written.
    pub(crate) headers: Vec<(String, String)>,
    /// Headers of the encapsulated MIME object (Content-Type, ...).
    pub(crate) content_headers: Vec<(String, String)>,
    /// The encapsulated content.
    pub(crate) body: Vec<u8>,
}

/// Why a CPIM body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed message/cpim: {0}")]
pub(crate) struct CpimError(pub(crate) &'static str);

/// Parses a `message/cpim` body. Lines may end in CRLF or LF.
pub(crate) fn parse(bytes: &[u8]) -> Result<Cpim, CpimError> {
    let (head, rest) = split_block(bytes).ok_or(CpimError("no blank line after the headers"))?;
    let (content_head, body) =
        split_block(rest).ok_or(CpimError("no blank line after the content headers"))?;
    Ok(Cpim {
        headers: parse_block(head)?,
        content_headers: parse_block(content_head)?,
        body: body.to_vec(),
    })
}

/// Splits at the first empty line: (block before, bytes after it).
fn split_block(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(rest) = bytes
        .strip_prefix(b"\r\n")
        .or_else(|| bytes.strip_prefix(b"\n"))
    {
        return Some((&[], rest));
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let after = &bytes[i + 1..];
            if let Some(rest) = after
                .strip_prefix(b"\r\n")
                .or_else(|| after.strip_prefix(b"\n"))
            {
                return Some((&bytes[..i + 1], rest));
            }
        }
        i += 1;
    }
    None
}

fn parse_block(block: &[u8]) -> Result<Vec<(String, String)>, CpimError> {
    let text = std::str::from_utf8(block).map_err(|_| CpimError("headers are not UTF-8"))?;
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let last = out
                .last_mut()
                .ok_or(CpimError("continuation without a header"))?;
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(CpimError("a header line without ':'"))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(CpimError("a header name with spaces"));
        }
        out.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

impl Cpim {
    /// The first message header `name` (case-insensitive), no namespace.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The first content header `name` (case-insensitive).
    pub(crate) fn content_header(&self, name: &str) -> Option<&str> {
        find(&self.content_headers, name)
    }

    /// A header in namespace `urn`: `<prefix>.<name>` for every prefix an `NS:`
    /// header binds to it. For IMDN, `imdn.` also counts without a declaration
    /// (clients that forget `NS:` are common).
    pub(crate) fn ns_header(&self, urn: &str, name: &str) -> Option<&str> {
        let mut prefixes: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("NS"))
            .filter_map(|(_, v)| {
                let (prefix, rest) = v.split_once('<')?;
                let bound = rest.split_once('>')?.0.trim();
                bound
                    .eq_ignore_ascii_case(urn)
                    .then(|| prefix.trim().to_owned())
            })
            .filter(|p| !p.is_empty())
            .collect();
        if urn == IMDN_NS && !prefixes.iter().any(|p| p == "imdn") {
            prefixes.push("imdn".into());
        }
        prefixes
            .iter()
            .find_map(|p| self.header(&format!("{p}.{name}")))
    }

    /// The IMDN message id and the notifications asked for (RFC 5438 §6).
    pub(crate) fn imdn_request(&self) -> (Option<String>, NotifyOn) {
        let id = self
            .ns_header(IMDN_NS, "Message-ID")
            .map(str::to_owned)
            .filter(|s| !s.is_empty());
        let mut notify = NotifyOn::default();
        if let Some(dn) = self.ns_header(IMDN_NS, "Disposition-Notification") {
            for token in dn.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("positive-delivery") {
                    notify.delivered = true;
                } else if token.eq_ignore_ascii_case("negative-delivery") {
                    notify.failed = true;
                } else if token.eq_ignore_ascii_case("display") {
                    // Between users only: an SMS never gives one (TS
                    // 23.204 §6.10), and the outbox does not keep it.
                    notify.displayed = true;
                }
                // `display` and `processing`: never given (TS 23.204 §6.10).
            }
        }
        (id, notify)
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Builds a CPIM body. Header values lose any control characters, so nothing a
/// contact name holds can break the framing.
pub(crate) fn build(
    headers: &[(&str, &str)],
    content_headers: &[(&str, &str)],
    content: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + content.len());
    for block in [headers, content_headers] {
        for (name, value) in block {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(clean(value).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(content);
    out
}

/// Replaces control characters (CR, LF, ...) by spaces.
pub(crate) fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC5438_EXAMPLE: &str = "From: Alice <im:alice@example.com>\r\n\
        To: Bob <im:bob@example.com>\r\n\
        NS: imdn <urn:ietf:params:imdn>\r\n\
        imdn.Message-ID: 34jk324j\r\n\
        DateTime: 2006-04-04T12:16:49-05:00\r\n\
        imdn.Disposition-Notification: positive-delivery, display\r\n\
        \r\n\
        Content-type: text/plain\r\n\
        Content-length: 12\r\n\
        \r\n\
        Hello World\n";

    #[test]
    fn parses_the_rfc5438_example() {
        let c = parse(RFC5438_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(c.header("from"), Some("Alice <im:alice@example.com>"));
        assert_eq!(c.header("DateTime"), Some("2006-04-04T12:16:49-05:00"));
        assert_eq!(c.content_header("Content-Type"), Some("text/plain"));
        assert_eq!(c.body, b"Hello World\n");
        let (id, notify) = c.imdn_request();
        assert_eq!(id.as_deref(), Some("34jk324j"));
        assert_eq!(
            notify,
            NotifyOn {
                displayed: true,
                delivered: true,
                failed: false
            }
        );
    }

    #[test]
    fn any_declared_prefix_works_and_lf_lines_too() {
        let body = "NS: n <urn:ietf:params:imdn>\nn.Message-ID: x1\n\
                    n.Disposition-Notification: negative-delivery\n\nContent-Type: text/plain\n\nhi";
        let c = parse(body.as_bytes()).unwrap();
        let (id, notify) = c.imdn_request();
        assert_eq!(id.as_deref(), Some("x1"));
        assert!(notify.failed && !notify.delivered);
        assert_eq!(c.body, b"hi");
    }

    #[test]
    fn round_trip() {
        let bytes = build(
            &[
                ("From", "<sip:+4917155@sms.example>"),
                ("To", "<sip:alice@example.com>"),
                ("DateTime", "2026-05-01T12:00:00Z"),
                ("NS", "imdn <urn:ietf:params:imdn>"),
                ("imdn.Message-ID", "m-1"),
            ],
            &[("Content-Type", "text/plain; charset=utf-8")],
            "Grüße\r\n\r\nzwei Absätze".as_bytes(),
        );
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "From: <sip:+4917155@sms.example>\r\nTo: <sip:alice@example.com>\r\n\
             DateTime: 2026-05-01T12:00:00Z\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
             imdn.Message-ID: m-1\r\n\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Grüße\r\n\r\nzwei Absätze"
        );
        let c = parse(&bytes).unwrap();
        assert_eq!(c.imdn_request().0.as_deref(), Some("m-1"));
        assert_eq!(c.body, "Grüße\r\n\r\nzwei Absätze".as_bytes());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse(b"From: a").is_err());
        assert!(parse(b"From: a\r\n\r\nContent-Type: text/plain").is_err());
        assert!(parse(b"no colon\r\n\r\nContent-Type: x\r\n\r\nbody").is_err());
        assert!(parse(b"From: \xff\r\n\r\nContent-Type: x\r\n\r\nbody").is_err());
        assert_eq!(clean("a\r\nb"), "a  b");
    }
}
