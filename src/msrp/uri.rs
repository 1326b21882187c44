//! MSRP URIs (RFC 4975 §6): `msrp://host[:port]/session-id;tcp`, compared
//! as §6.1 says (scheme, host and transport without case, port and
//! session-id exactly; userinfo and other parameters ignored).

use std::fmt;

/// One MSRP URI, kept as written and read into its parts.
#[derive(Debug, Clone)]
pub struct MsrpUri {
    text: String,
    secure: bool,
    host: String,
    port: Option<u16>,
    session_id: Option<String>,
    transport: String,
}

/// Why a URI is not an MSRP URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an MSRP URI: {0}")]
pub struct UriError(pub String);

impl MsrpUri {
    /// Reads `msrp://[userinfo@]host[:port][/session-id];transport[;param]*`.
    pub fn parse(text: &str) -> Result<MsrpUri, UriError> {
        let bad = |why: &str| UriError(format!("{why} in {text:?}"));
        let (secure, rest) = if let Some(r) = strip_prefix_ci(text, "msrp://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(text, "msrps://") {
            (true, r)
        } else {
            return Err(bad("no msrp:// or msrps:// scheme"));
        };
        let (before_params, params) = rest.split_once(';').ok_or_else(|| bad("no ;transport"))?;
        let transport = params.split(';').next().unwrap_or_default();
        if transport.is_empty() || !transport.bytes().all(is_token) {
            return Err(bad("bad transport"));
        }
        let (authority, session_id) = match before_params.split_once('/') {
            Some((a, s)) => {
                if s.is_empty() || !s.bytes().all(is_session_char) {
                    return Err(bad("bad session-id"));
                }
                (a, Some(s.to_owned()))
            }
            None => (before_params, None),
        };
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        Ok(MsrpUri {
            text: text.to_owned(),
            secure,
            host: host.to_ascii_lowercase(),
            port,
            session_id,
            transport: transport.to_ascii_lowercase(),
        })
    }

    /// `msrp://host:port/session-id;tcp`.
    pub fn tcp(host: &str, port: u16, session_id: &str) -> MsrpUri {
        let host_text = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        MsrpUri {
            text: format!("msrp://{host_text}:{port}/{session_id};tcp"),
            secure: false,
            host: host_text.to_ascii_lowercase(),
            port: Some(port),
            session_id: Some(session_id.to_owned()),
            transport: "tcp".into(),
        }
    }

    /// The host, lower-cased (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The session-id, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The transport, lower-cased (`tcp`).
    pub fn transport(&self) -> &str {
        &self.transport
    }

    /// `msrps:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The URI as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for MsrpUri {
    fn eq(&self, other: &MsrpUri) -> bool {
        self.secure == other.secure
            && self.host == other.host
            && self.port == other.port
            && self.session_id == other.session_id
            && self.transport == other.transport
    }
}

impl Eq for MsrpUri {}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &hostport[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// `unreserved / "+" / "=" / "/"` and percent escapes (§9).
fn is_session_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+=/%".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rfc_example_uri() {
        let u = MsrpUri::parse("msrp://atlanta.example.com:7654/jshA7weztas;tcp").unwrap();
        assert_eq!(u.host(), "atlanta.example.com");
        assert_eq!(u.port(), Some(7654));
        assert_eq!(u.session_id(), Some("jshA7weztas"));
        assert_eq!(u.transport(), "tcp");
        assert!(!u.is_secure());
    }

    #[test]
    fn compares_as_section_6_1_says() {
        let a = MsrpUri::parse("msrp://alice@Atlanta.Example.com:7654/jshA7weztas;TCP").unwrap();
        let b = MsrpUri::parse("MSRP://atlanta.example.com:7654/jshA7weztas;tcp;x=1").unwrap();
        let c = MsrpUri::parse("msrp://atlanta.example.com:7654/JSHA7weztas;tcp").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c, "the session-id is compared exactly");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let u = MsrpUri::parse("msrp://[::1]:2855/abc;tcp").unwrap();
        assert_eq!((u.host(), u.port()), ("[::1]", Some(2855)));
        assert_eq!(MsrpUri::tcp("::1", 2855, "abc"), u);
        assert_eq!(
            MsrpUri::tcp("::1", 2855, "abc").as_str(),
            "msrp://[::1]:2855/abc;tcp"
        );
    }

    #[test]
    fn refuses_what_is_not_an_msrp_uri() {
        for bad in [
            "sip:alice@example.com",
            "msrp://host:1/abc",
            "msrp://host:99999/abc;tcp",
            "msrp://ho st:1/abc;tcp",
            "msrp://host:1/;tcp",
            "msrp://:1/abc;tcp",
            "msrp://[::1/abc;tcp",
            "msrp://host:x/abc;tcp",
            "msrp://host:1/a b;tcp",
        ] {
            assert!(MsrpUri::parse(bad).is_err(), "{bad}");
        }
    }
}
