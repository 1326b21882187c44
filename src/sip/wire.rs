//! The SIP request and reply as the protocol logic sees them. A request is
//! rsipstack's message, parsed once by rsipstack; this module is the thin
//! adapter that reads it (header lookup, typed CSeq/To, name-addr, URI) so
//! the rest of `sip/` stays sans-IO and is tested with literal requests
//! ([`Request::parse`]).
//!
//! rsipstack 0.7.14 is used for what it gets right: the message grammar,
//! header-name canonicalisation (compact forms included), CSeq, the URI
//! structure (scheme, userinfo, host, IPv6, port, `?headers`) and URI and
//! header parameters. What is still done here, and why:
//! - **Quoted display names**: rsipstack takes everything before `<` and
//!   trims `"`, so `"a \"b\"" <sip:…>` keeps its backslashes and `"a<b" <…>`
//!   is cut at the wrong `<`.
//! - **Percent-decoding** of the user part: rsipstack keeps `%2B` as is (and
//!   re-encodes `%` when it prints the URI).
//! - **Host checks**: rsipstack accepts any text as a domain, so
//!   `sip:a@host:notaport` becomes the host `host:notaport`.
//! - **Comma lists, and `;params` of non-URI values** (`Content-Type`,
//!   `Event`): rsipstack's list splitter is private and ignores `\"` in quoted
//!   strings, and its parameter parser splits inside quotes, keeps the quotes
//!   and refuses `method=`/`transport=` values it does not know.

use std::net::SocketAddr;

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self as rs, Host, Param, Scheme};

/// The transport a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// A received request: rsipstack's parse, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    msg: rs::Request,
    /// Where it came from (the socket peer, not a header).
    pub(crate) source: SocketAddr,
    pub(crate) transport: Transport,
}

impl Request {
    pub(crate) fn new(msg: rs::Request, source: SocketAddr, transport: Transport) -> Self {
        Self {
            msg,
            source,
            transport,
        }
    }

    /// A request from its wire form, parsed by rsipstack (tests build
    /// requests from literal text this way).
    #[cfg(test)]
    pub(crate) fn parse(
        bytes: &[u8],
        source: SocketAddr,
        transport: Transport,
    ) -> Result<Self, String> {
        match rs::SipMessage::try_from(bytes) {
            Ok(rs::SipMessage::Request(msg)) => Ok(Self::new(msg, source, transport)),
            Ok(rs::SipMessage::Response(_)) => Err("a response, not a request".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(crate) fn method(&self) -> rs::Method {
        self.msg.method
    }

    /// The Request-URI as rsipstack printed it (for log lines and warnings).
    pub(crate) fn uri_text(&self) -> String {
        self.msg.uri.to_string()
    }

    /// Whether `text` (a digest `uri`, say) names this Request-URI: equal as
    /// written, or once rsipstack has read and printed it the same way it
    /// printed the Request-URI.
    pub(crate) fn names_request_uri(&self, text: &str) -> bool {
        let text = text.trim();
        let ours = self.uri_text();
        text.eq_ignore_ascii_case(&ours)
            || rs::Uri::try_from(text).is_ok_and(|u| u.to_string().eq_ignore_ascii_case(&ours))
    }

    /// The Request-URI, if it is `sip:`, `sips:` or `tel:` and well-formed.
    pub(crate) fn uri(&self) -> Option<Uri> {
        Uri::from_rs(&self.msg.uri)
    }

    pub(crate) fn body(&self) -> &[u8] {
        &self.msg.body
    }

    /// Adds a header as if it had been received (tests).
    #[cfg(test)]
    pub(crate) fn push_header(&mut self, name: &str, value: String) {
        self.msg.headers.push(rs::headers::make_header(name, value));
    }

    /// The first value of a header (full name, case-insensitive; rsipstack
    /// has already expanded compact forms).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.msg
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .map(rs::Header::value)
    }

    /// Every value of a header as received (for values with commas inside,
    /// like Authorization).
    pub(crate) fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.msg
            .headers
            .iter()
            .filter(move |h| h.name().eq_ignore_ascii_case(name))
            .map(rs::Header::value)
    }

    /// The sequence number of CSeq (rsipstack's typed CSeq).
    pub(crate) fn cseq(&self) -> Option<u32> {
        Some(self.msg.cseq_header().ok()?.typed().ok()?.seq)
    }

    /// Every value of a header, comma-separated lists split.
    pub(crate) fn header_list(&self, name: &str) -> Vec<&str> {
        self.msg
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .flat_map(|h| split_list(h.value()))
            .collect()
    }

    /// The tag parameter of To, if any (an in-dialog request has one).
    pub(crate) fn to_tag(&self) -> Option<String> {
        self.header("To")
            .and_then(parse_name_addr)
            .and_then(|na| na.param("tag").map(str::to_owned))
    }
}

/// A response to send: the glue adds Via, From, To (with `to_tag`), Call-ID,
/// CSeq and Content-Length from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// The To tag for a dialog-creating response (SUBSCRIBE); `None`: any.
    pub(crate) to_tag: Option<String>,
}

impl Reply {
    pub(crate) fn new(code: u16) -> Self {
        Self {
            code,
            headers: Vec::new(),
            body: Vec::new(),
            to_tag: None,
        }
    }

    /// Adds a header.
    pub(crate) fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds `Warning: 399 smsbridge "<text>"` (RFC 3261 §20.43): the reason
    /// phrase rsipstack writes is always the standard one.
    pub(crate) fn warning(self, text: &str) -> Self {
        let clean: String = text
            .chars()
            .map(|c| if c == '"' || c.is_control() { '\'' } else { c })
            .take(200)
            .collect();
        self.with("Warning", format!("399 smsbridge \"{clean}\""))
    }

    #[cfg(test)]
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a header value at top-level commas (not inside quotes or `<>`).
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut out: Vec<&str> = split_top(value, ',').0.into_iter().map(str::trim).collect();
    out.retain(|s| !s.is_empty());
    out
}

/// Splits at `sep` outside quoted strings and `<…>`, keeping empty pieces;
/// the flag says whether every quoted string and `<` was closed.
pub(crate) fn split_top(value: &str, sep: char) -> (Vec<&str>, bool) {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            c if c == sep && !quoted && !angle => {
                out.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    (out, !quoted && !angle)
}

/// `;name=value` parameters, values unquoted; names lower-cased.
pub(crate) fn parse_params(s: &str) -> Vec<(String, Option<String>)> {
    split_outside_quotes(s, ';')
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(unquote(v.trim()))),
            None => (p.to_ascii_lowercase(), None),
        })
        .collect()
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

/// Removes surrounding quotes and backslash escapes.
pub(crate) fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A token value with parameters, e.g. `presence;id=7` or `text/plain;charset=x`.
pub(crate) fn value_and_params(s: &str) -> (String, Vec<(String, Option<String>)>) {
    match s.split_once(';') {
        Some((v, p)) => (v.trim().to_owned(), parse_params(p)),
        None => (s.trim().to_owned(), Vec::new()),
    }
}

/// `name-addr` or `addr-spec` with header parameters (From, To, Contact, PAI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameAddr {
    pub(crate) display: Option<String>,
    /// The URI text as received (a registrar echoes contacts unchanged).
    pub(crate) uri: String,
    /// The URI read by rsipstack, when it is `sip:`, `sips:` or `tel:`.
    pub(crate) addr: Option<Uri>,
    /// Header parameters, as rsipstack types them (`tag`, `expires`, …).
    params: Vec<Param>,
}

impl NameAddr {
    /// A header parameter's value (`""` for a flag); names case-insensitive.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// Parses `"Alice" <sip:a@b>;tag=1`, `Alice <sip:a@b>`, `<sip:a@b>` or
/// `sip:a@b;tag=1`. A quoted display name is read here (see the module
/// doc); the rest goes to rsipstack's name-addr parser.
pub(crate) fn parse_name_addr(s: &str) -> Option<NameAddr> {
    let s = s.trim();
    let (quoted, rest) = match s.strip_prefix('"') {
        Some(after) => {
            let end = closing_quote(after)?;
            (Some(unquote(&s[..end + 2])), s[end + 2..].trim_start())
        }
        None => (None, s),
    };
    // The URI text as sent: inside `<>` (which must follow a quoted display
    // name), else an addr-spec up to its first `;`.
    let uri_text = match rest.strip_prefix('<') {
        Some(inner) => inner[..inner.find('>')?].trim(),
        None if quoted.is_some() => return None,
        None => match rest.find('<') {
            Some(lt) => rest[lt + 1..].split('>').next()?.trim(),
            None => rest.split(';').next()?.trim(),
        },
    };
    if uri_text.is_empty() || uri_text.contains(char::is_whitespace) {
        return None;
    }
    let typed = rs::typed::From::parse(rest).ok()?;
    Some(NameAddr {
        display: quoted.or(typed.display_name),
        uri: uri_text.to_owned(),
        addr: Uri::from_rs(&typed.uri),
        params: typed.params,
    })
}

/// The index of the `"` that closes a quoted string starting after `"`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    s.char_indices().find_map(|(i, c)| match c {
        _ if escaped => {
            escaped = false;
            None
        }
        '\\' => {
            escaped = true;
            None
        }
        '"' => Some(i),
        _ => None,
    })
}

/// The value of a parameter rsipstack parsed (typed or not), by name.
fn param<'a>(params: &'a [Param], name: &str) -> Option<&'a str> {
    params.iter().find_map(|p| {
        let (n, v): (&str, Option<&str>) = match p {
            Param::Tag(t) => ("tag", Some(t.value())),
            Param::Expires(e) => ("expires", Some(e.value())),
            Param::User(u) => ("user", Some(u.value())),
            Param::Branch(b) => ("branch", Some(b.value())),
            Param::Received(r) => ("received", Some(r.value())),
            Param::Q(q) => ("q", Some(q.value())),
            Param::Maddr(m) => ("maddr", Some(m.value())),
            Param::Ttl(t) => ("ttl", Some(t.value())),
            Param::Lr => ("lr", None),
            Param::Ob => ("ob", None),
            Param::Other(n, v) => (n.value(), v.as_ref().map(|v| v.value())),
            Param::Transport(_) | Param::Method(_) | Param::Rport(_) => return None,
        };
        n.eq_ignore_ascii_case(name).then(|| v.unwrap_or(""))
    })
}

/// A `sip:`, `sips:` or `tel:` URI as rsipstack read it, checked and
/// normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uri {
    /// Lower-cased scheme.
    pub(crate) scheme: String,
    /// Percent-decoded user part (`tel:` number).
    pub(crate) user: Option<String>,
    /// Host, lower-cased, IPv6 in brackets; empty for `tel:`.
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    params: Vec<Param>,
}

impl Uri {
    /// A URI parameter's value (`""` for a flag).
    #[cfg(test)]
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    /// Whether the host is an IP literal.
    pub(crate) fn host_is_ip(&self) -> bool {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.parse::<std::net::IpAddr>().is_ok()
    }

    /// `None` unless `sip:`, `sips:` or `tel:` with a sane host.
    fn from_rs(u: &rs::Uri) -> Option<Self> {
        let scheme = match u.scheme.as_ref()? {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Other(s) if s.eq_ignore_ascii_case("tel") => "tel",
            Scheme::Other(_) => return None,
        };
        let port = u.host_with_port.port.as_ref().map(|p| p.value());
        if scheme == "tel" {
            // rsipstack reads `tel:+4917…` as a host; the number is the user.
            let number = match (&u.auth, port, u.host()) {
                (None, None, Host::Domain(d)) => d.0.as_str(),
                _ => return None,
            };
            return Some(Self {
                scheme: scheme.into(),
                user: Some(percent_decode(number)?),
                host: String::new(),
                port: None,
                params: u.params.clone(),
            });
        }
        let host = match u.host() {
            Host::IpAddr(_) => u.host().to_string(),
            Host::Domain(d) => {
                let bad = |c: char| c.is_whitespace() || "<>\"@:[]".contains(c);
                if d.0.is_empty() || d.0.contains(bad) {
                    return None;
                }
                d.0.to_ascii_lowercase()
            }
        };
        let user = match &u.auth {
            Some(a) if a.user.is_empty() => return None,
            Some(a) => Some(percent_decode(&a.user)?),
            None => None,
        };
        Some(Self {
            scheme: scheme.into(),
            user,
            host,
            port,
            params: u.params.clone(),
        })
    }
}

/// Parses a URI with rsipstack; `None` when it is not `sip:`, `sips:` or
/// `tel:` or malformed.
#[cfg(test)]
pub(crate) fn parse_uri(s: &str) -> Option<Uri> {
    Uri::from_rs(&rs::parse_uri(s.trim()).ok()?)
}

/// `%XX` escapes decoded (RFC 3261 §19.1.2); `None` for a broken escape or
/// a result that is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let na = parse_name_addr("\"Alice \\\"A\\\"\" <sip:alice@example.com>;tag=abc").unwrap();
        assert_eq!(na.display.as_deref(), Some("Alice \"A\""));
        assert_eq!(na.uri, "sip:alice@example.com");
        assert_eq!(na.param("tag"), Some("abc"));
        let na = parse_name_addr("Bob <sip:bob@x;transport=tcp>;expires=60").unwrap();
        assert_eq!(na.display.as_deref(), Some("Bob"));
        assert_eq!(na.uri, "sip:bob@x;transport=tcp");
        assert_eq!(na.param("expires"), Some("60"));
        assert_eq!(na.addr.as_ref().map(|u| u.host.as_str()), Some("x"));
        let na = parse_name_addr("sip:carol@y;tag=9").unwrap();
        assert_eq!(na.uri, "sip:carol@y");
        assert_eq!(na.param("tag"), Some("9"));
        assert_eq!(na.param("TAG"), Some("9"));
        let na = parse_name_addr("<sip:d@z>;+sip.instance=\"<urn:uuid:1>\";ob").unwrap();
        assert_eq!(na.param("ob"), Some(""));
        assert_eq!(na.param("+sip.instance"), Some("\"<urn:uuid:1>\""));
        assert_eq!(parse_name_addr(""), None);
        assert_eq!(parse_name_addr("\"unterminated <sip:a@b>"), None);
        assert_eq!(parse_name_addr("\"quoted\" sip:a@b"), None);
        assert_eq!(parse_name_addr("<>"), None);
        assert_eq!(parse_name_addr("<sip:a@b"), None);
    }

    /// The URI text is kept as sent: rsipstack's own printing would drop
    /// `;transport=udp` from a Contact and upper-case the transport.
    #[test]
    fn name_addr_keeps_the_uri_as_sent() {
        let na = parse_name_addr("<sip:a@1.2.3.4:5070;transport=udp>;expires=60").unwrap();
        assert_eq!(na.uri, "sip:a@1.2.3.4:5070;transport=udp");
        let typed = rs::typed::Contact::parse("<sip:a@1.2.3.4:5070;transport=udp>").unwrap();
        assert_eq!(typed.uri.to_string(), "sip:a@1.2.3.4:5070");
    }

    /// rsipstack's display-name reading, which the quoted-string scan
    /// replaces.
    #[test]
    fn rsipstack_misreads_quoted_display_names() {
        let s = "\"a<b \\\"c\\\"\" <sip:x@y>;tag=1";
        assert!(
            rs::typed::From::parse(s)
                .map_or(true, |f| f.display_name.as_deref() != Some("a<b \"c\"")),
        );
        let na = parse_name_addr(s).unwrap();
        assert_eq!(na.display.as_deref(), Some("a<b \"c\""));
        assert_eq!(na.uri, "sip:x@y");
        assert_eq!(na.param("tag"), Some("1"));
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("<sip:a@b;x=1,2>, \"c, d\" <sip:c@d>,sip:e@f"),
            vec!["<sip:a@b;x=1,2>", "\"c, d\" <sip:c@d>", "sip:e@f"]
        );
        assert_eq!(
            split_list("\"a\\\", b\" <sip:x@y>"),
            vec!["\"a\\\", b\" <sip:x@y>"]
        );
    }

    #[test]
    fn uris() {
        let u = parse_uri("sip:%2B4917@Example.COM:5070;user=phone").unwrap();
        assert_eq!(u.scheme, "sip");
        assert_eq!(u.user.as_deref(), Some("+4917"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("user"), Some("phone"));
        let u = parse_uri("tel:+49-171-555;phone-context=x").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str()), ("tel", ""));
        assert_eq!(u.user.as_deref(), Some("+49-171-555"));
        assert_eq!(u.param("phone-context"), Some("x"));
        let u = parse_uri("sip:[::1]:5060").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", Some(5060)));
        assert!(u.host_is_ip());
        let u = parse_uri("SIPS:bob@10.0.0.1").unwrap();
        assert_eq!((u.scheme.as_str(), u.host_is_ip()), ("sips", true));
        assert_eq!(parse_uri("mailto:a@b"), None);
        assert_eq!(parse_uri("a@b"), None);
        assert_eq!(parse_uri("sip:a@host:notaport"), None);
        assert_eq!(parse_uri("sip:a@host:99999"), None);
        assert_eq!(parse_uri("sip:a@"), None);
        assert_eq!(parse_uri("sip:@b"), None);
        assert_eq!(parse_uri("sip:%zz@b"), None);
        assert_eq!(parse_uri("sip:%ff@b"), None);
        assert_eq!(parse_uri("tel:+4917:5060"), None);
    }

    /// What rsipstack leaves undone on the same URIs.
    #[test]
    fn rsipstack_keeps_escapes_and_takes_any_host() {
        let u = rs::parse_uri("sip:%2B4917@x").unwrap();
        assert_eq!(u.user(), Some("%2B4917"));
        assert_eq!(u.to_string(), "sip:%252B4917@x");
        let u = rs::parse_uri("sip:a@host:notaport").unwrap();
        assert_eq!(u.host().to_string(), "host:notaport");
    }

    #[test]
    fn requests_read_rsipstack_headers() {
        let text = "SUBSCRIBE sip:%2B4917@x SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n\
            f: <sip:a@x>;tag=1\r\nt: \"B\" <sip:b@x>;tag=2\r\ni: c\r\nCSeq: 7 SUBSCRIBE\r\n\
            m: <sip:a@h>, <sip:a@i>\r\nContact: <sip:a@j>\r\no: presence\r\nl: 2\r\n\r\nhi";
        let from = "127.0.0.1:5070".parse().unwrap();
        let r = Request::parse(text.as_bytes(), from, Transport::Tcp).unwrap();
        assert_eq!(r.method(), rs::Method::Subscribe);
        assert_eq!(r.uri().and_then(|u| u.user), Some("+4917".into()));
        assert_eq!(r.header("call-id"), Some("c"));
        assert_eq!(r.header("Event"), Some("presence"));
        assert_eq!(r.cseq(), Some(7));
        assert_eq!(r.to_tag().as_deref(), Some("2"));
        assert_eq!(
            r.header_list("Contact"),
            ["<sip:a@h>", "<sip:a@i>", "<sip:a@j>"]
        );
        assert_eq!(r.body(), b"hi");
        assert_eq!((r.source, r.transport), (from, Transport::Tcp));
        assert!(Request::parse(b"SIP/2.0 200 OK\r\n\r\n", from, Transport::Udp).is_err());
    }
}
