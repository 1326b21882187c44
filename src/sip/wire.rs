//! The SIP request and reply as the protocol logic sees them: plain strings, no
//! transport, no rsipstack types. The glue in `endpoint.rs` converts to and from
//! rsipstack; everything else in `sip/` works on these, so it can be tested
//! with literal strings.

use std::borrow::Cow;
use std::net::SocketAddr;

/// The transport a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// A received request. Header names are canonical (compact forms expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Where it came from (the socket peer, not a header).
    pub(crate) source: SocketAddr,
    pub(crate) transport: Transport,
}

impl Request {
    /// The first value of a header (canonical name, case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header as received (for values with commas inside,
    /// like Authorization).
    pub(crate) fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The sequence number of CSeq.
    pub(crate) fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.split_whitespace().next()?.parse().ok()
    }

    /// Every value of a header, comma-separated lists split.
    pub(crate) fn header_list(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_list(v))
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

/// The full name of a compact header form (RFC 3261 §7.3.3 and later RFCs).
pub(crate) fn canonical_name(name: &str) -> Cow<'_, str> {
    let full = match name.to_ascii_lowercase().as_str() {
        "i" => "Call-ID",
        "m" => "Contact",
        "e" => "Content-Encoding",
        "l" => "Content-Length",
        "c" => "Content-Type",
        "f" => "From",
        "s" => "Subject",
        "k" => "Supported",
        "t" => "To",
        "v" => "Via",
        "o" => "Event",
        "u" => "Allow-Events",
        "r" => "Refer-To",
        "b" => "Referred-By",
        "x" => "Session-Expires",
        "a" => "Accept-Contact",
        "j" => "Reject-Contact",
        "d" => "Request-Disposition",
        "y" => "Identity",
        _ => return Cow::Borrowed(name),
    };
    Cow::Borrowed(full)
}

/// Splits a header value at top-level commas (not inside quotes or `<>`).
pub(crate) fn split_list(value: &str) -> Vec<&str> {
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
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
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
    pub(crate) uri: String,
    pub(crate) params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }
}

/// Parses `"Alice" <sip:a@b>;tag=1`, `Alice <sip:a@b>`, `<sip:a@b>` or `sip:a@b;tag=1`.
pub(crate) fn parse_name_addr(s: &str) -> Option<NameAddr> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (display, rest) = if let Some(after) = s.strip_prefix('"') {
        let mut escaped = false;
        let end = after.char_indices().find_map(|(i, c)| {
            if escaped {
                escaped = false;
                None
            } else if c == '\\' {
                escaped = true;
                None
            } else if c == '"' {
                Some(i)
            } else {
                None
            }
        })?;
        let quoted = &s[..end + 2];
        (Some(unquote(quoted)), s[end + 2..].trim_start())
    } else if let Some(lt) = s.find('<') {
        let d = s[..lt].trim();
        ((!d.is_empty()).then(|| d.to_owned()), &s[lt..])
    } else {
        (None, s)
    };
    if let Some(inner) = rest.strip_prefix('<') {
        let gt = inner.find('>')?;
        let uri = inner[..gt].trim();
        if uri.is_empty() {
            return None;
        }
        return Some(NameAddr {
            display,
            uri: uri.to_owned(),
            params: parse_params(&inner[gt + 1..]),
        });
    }
    if display.is_some() {
        return None;
    }
    let (uri, params) = match rest.split_once(';') {
        Some((u, p)) => (u.trim(), parse_params(p)),
        None => (rest, Vec::new()),
    };
    (!uri.is_empty() && !uri.contains(char::is_whitespace)).then(|| NameAddr {
        display: None,
        uri: uri.to_owned(),
        params,
    })
}

/// A parsed `sip:`, `sips:` or `tel:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uri {
    /// Lower-cased scheme.
    pub(crate) scheme: String,
    /// Percent-decoded user part (`tel:` number).
    pub(crate) user: Option<String>,
    /// Host, lower-cased, IPv6 in brackets; empty for `tel:`.
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) params: Vec<(String, Option<String>)>,
}

impl Uri {
    #[cfg(test)]
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Whether the host is an IP literal.
    pub(crate) fn host_is_ip(&self) -> bool {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.parse::<std::net::IpAddr>().is_ok()
    }
}

/// Parses a URI; `None` when it is not `sip:`, `sips:` or `tel:` or malformed.
pub(crate) fn parse_uri(s: &str) -> Option<Uri> {
    let s = s.trim();
    let (scheme, rest) = s.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "tel" {
        let (number, params) = match rest.split_once(';') {
            Some((n, p)) => (n, parse_params(p)),
            None => (rest, Vec::new()),
        };
        if number.is_empty() {
            return None;
        }
        return Some(Uri {
            scheme,
            user: Some(percent_decode(number)?),
            host: String::new(),
            port: None,
            params,
        });
    }
    if scheme != "sip" && scheme != "sips" {
        return None;
    }
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (hostport, params) = match hostpart.split_once(';') {
        Some((h, p)) => (h, parse_params(p)),
        None => (hostpart, Vec::new()),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (format!("[{addr}]"), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.parse().ok()?)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "<>\"".contains(c)) {
        return None;
    }
    let user = match userinfo {
        Some(u) => {
            let user = u.split_once(':').map_or(u, |(user, _)| user);
            if user.is_empty() {
                return None;
            }
            Some(percent_decode(user)?)
        }
        None => None,
    };
    Some(Uri {
        scheme,
        user,
        host: host.to_ascii_lowercase(),
        port,
        params,
    })
}

fn percent_decode(s: &str) -> Option<String> {
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
        let na = parse_name_addr("sip:carol@y;tag=9").unwrap();
        assert_eq!(na.uri, "sip:carol@y");
        assert_eq!(na.param("tag"), Some("9"));
        assert_eq!(parse_name_addr(""), None);
        assert_eq!(parse_name_addr("\"unterminated <sip:a@b>"), None);
        assert_eq!(parse_name_addr("<>"), None);
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("<sip:a@b;x=1,2>, \"c, d\" <sip:c@d>,sip:e@f"),
            vec!["<sip:a@b;x=1,2>", "\"c, d\" <sip:c@d>", "sip:e@f"]
        );
    }

    #[test]
    fn uris() {
        let u = parse_uri("sip:%2B4917@Example.COM:5070;user=phone").unwrap();
        assert_eq!(u.user.as_deref(), Some("+4917"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("user"), Some("phone"));
        let u = parse_uri("tel:+49-171-555;phone-context=x").unwrap();
        assert_eq!(u.user.as_deref(), Some("+49-171-555"));
        let u = parse_uri("sip:[::1]:5060").unwrap();
        assert_eq!(u.host, "[::1]");
        assert!(u.host_is_ip());
        assert_eq!(parse_uri("mailto:a@b"), None);
        assert_eq!(parse_uri("sip:a@host:notaport"), None);
        assert_eq!(parse_uri("sip:a@"), None);
        assert_eq!(parse_uri("sip:%zz@b"), None);
    }

    #[test]
    fn compact_names() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
    }
}
