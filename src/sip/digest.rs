//! Digest authentication as a server (RFC 3261 §22, RFC 2617, RFC 7616 with
//! MD5): challenges, `Authorization` parsing and verification against the
//! stored HA1 (the password is never known here). Nonces are stateless: the
//! issue time and an MD5 over it and a per-process secret, so an old nonce is
//! recognised as ours and answered with `stale=true`. Time is an argument.

use md5::{Digest, Md5};

use super::wire::{split_list, unquote};

/// Lower-case hex MD5.
pub(crate) fn md5_hex(data: &str) -> String {
    Md5::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Issues and checks nonces.
#[derive(Debug, Clone)]
pub(crate) struct Nonces {
    secret: String,
    ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonceState {
    Fresh,
    Expired,
    Forged,
}

impl Nonces {
    /// `secret` must be unguessable (random per process); nonces live `ttl_secs`.
    pub(crate) fn new(secret: String, ttl_secs: u64) -> Self {
        Self { secret, ttl_secs }
    }

    /// A nonce issued at `now` (Unix seconds).
    pub(crate) fn issue(&self, now: u64) -> String {
        format!("{now:x}.{}", self.sign(now))
    }

    fn sign(&self, t: u64) -> String {
        md5_hex(&format!("{}:{t:x}", self.secret))
    }

    fn check(&self, nonce: &str, now: u64) -> NonceState {
        let Some((t, sig)) = nonce.split_once('.') else {
            return NonceState::Forged;
        };
        let Ok(t) = u64::from_str_radix(t, 16) else {
            return NonceState::Forged;
        };
        if !constant_time_eq(sig, &self.sign(t)) || t > now.saturating_add(5) {
            NonceState::Forged
        } else if now.saturating_sub(t) > self.ttl_secs {
            NonceState::Expired
        } else {
            NonceState::Fresh
        }
    }

    /// The `WWW-Authenticate` value for a 401.
    pub(crate) fn challenge(&self, realm: &str, now: u64, stale: bool) -> String {
        let mut v = format!(
            "Digest realm=\"{}\", nonce=\"{}\", qop=\"auth\", algorithm=MD5",
            realm.replace(['"', '\\'], ""),
            self.issue(now)
        );
        if stale {
            v.push_str(", stale=true");
        }
        v
    }
}

/// An `Authorization: Digest ...` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) uri: String,
    pub(crate) response: String,
    pub(crate) algorithm: Option<String>,
    pub(crate) qop: Option<String>,
    pub(crate) nc: Option<String>,
    pub(crate) cnonce: Option<String>,
}

/// Parses a Digest `Authorization` value; `None` when it is not Digest or
/// lacks a required field.
pub(crate) fn parse_authorization(value: &str) -> Option<Credentials> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Credentials::default();
    let mut seen = 0u8;
    for item in split_list(rest) {
        let (k, v) = item.split_once('=')?;
        let v = unquote(v.trim());
        match k.trim().to_ascii_lowercase().as_str() {
            "username" => (c.username, seen) = (v, seen | 1),
            "realm" => (c.realm, seen) = (v, seen | 2),
            "nonce" => (c.nonce, seen) = (v, seen | 4),
            "uri" => (c.uri, seen) = (v, seen | 8),
            "response" => (c.response, seen) = (v.to_ascii_lowercase(), seen | 16),
            "algorithm" => c.algorithm = Some(v),
            "qop" => c.qop = Some(v),
            "nc" => c.nc = Some(v),
            "cnonce" => c.cnonce = Some(v),
            _ => {}
        }
    }
    (seen == 31).then_some(c)
}

/// The request-digest from HA1 (RFC 2617 §3.2.2.1), qop `auth` or none.
pub(crate) fn request_digest(
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The outcome of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Right digest, fresh nonce.
    Ok,
    /// Right digest, nonce too old: challenge again with `stale=true`.
    Stale,
    /// Anything else: challenge again.
    Wrong,
}

/// Checks credentials for `method` against HA1 at `now`.
pub(crate) fn verify(
    nonces: &Nonces,
    c: &Credentials,
    ha1: &str,
    method: &str,
    now: u64,
) -> Verdict {
    if let Some(a) = &c.algorithm
        && !a.eq_ignore_ascii_case("md5")
    {
        return Verdict::Wrong;
    }
    let qop = match c.qop.as_deref() {
        None => None,
        Some(q) if q.eq_ignore_ascii_case("auth") => match (c.nc.as_deref(), c.cnonce.as_deref()) {
            (Some(nc), Some(cnonce)) => Some((nc, cnonce)),
            _ => return Verdict::Wrong,
        },
        Some(_) => return Verdict::Wrong,
    };
    let expected = request_digest(&ha1.to_ascii_lowercase(), &c.nonce, method, &c.uri, qop);
    if !constant_time_eq(&expected, &c.response) {
        return Verdict::Wrong;
    }
    match nonces.check(&c.nonce, now) {
        NonceState::Fresh => Verdict::Ok,
        NonceState::Expired => Verdict::Stale,
        NonceState::Forged => Verdict::Wrong,
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5: Mufasa / "Circle Of Life" / testrealm@host.com.
    #[test]
    fn rfc2617_example() {
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(
            request_digest(
                &ha1,
                "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                "GET",
                "/dir/index.html",
                Some(("00000001", "0a4f113b"))
            ),
            "6629fae49393a05397450978507c4ef1"
        );
        let c = parse_authorization(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
             response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.qop.as_deref(), Some("auth"));
    }

    fn signed(nonces: &Nonces, issued: u64, qop: bool, method: &str) -> Credentials {
        let ha1 = md5_hex("alice:smsbridge:secret");
        let nonce = nonces.issue(issued);
        let q = qop.then_some(("00000001", "abc"));
        Credentials {
            username: "alice".into(),
            realm: "smsbridge".into(),
            response: request_digest(&ha1, &nonce, method, "sip:+4917@x", q),
            nonce,
            uri: "sip:+4917@x".into(),
            qop: qop.then(|| "auth".into()),
            nc: qop.then(|| "00000001".into()),
            cnonce: qop.then(|| "abc".into()),
            algorithm: Some("MD5".into()),
        }
    }

    #[test]
    fn verification_with_and_without_qop_and_stale_nonces() {
        let nonces = Nonces::new("s3cret".into(), 300);
        let ha1 = md5_hex("alice:smsbridge:secret");
        for qop in [true, false] {
            let c = signed(&nonces, 1000, qop, "MESSAGE");
            assert_eq!(verify(&nonces, &c, &ha1, "MESSAGE", 1100), Verdict::Ok);
            assert_eq!(verify(&nonces, &c, &ha1, "MESSAGE", 1301), Verdict::Stale);
            assert_eq!(verify(&nonces, &c, &ha1, "REGISTER", 1100), Verdict::Wrong);
            let wrong = md5_hex("alice:smsbridge:guess");
            assert_eq!(verify(&nonces, &c, &wrong, "MESSAGE", 1100), Verdict::Wrong);
        }
        // A nonce signed by another process (secret) is not ours.
        let other = Nonces::new("other".into(), 300);
        let c = signed(&other, 1000, true, "MESSAGE");
        assert_eq!(verify(&nonces, &c, &ha1, "MESSAGE", 1100), Verdict::Wrong);
        let mut c = signed(&nonces, 1000, true, "MESSAGE");
        c.algorithm = Some("SHA-256".into());
        assert_eq!(verify(&nonces, &c, &ha1, "MESSAGE", 1100), Verdict::Wrong);
    }

    #[test]
    fn challenges_and_bad_headers() {
        let nonces = Nonces::new("k".into(), 60);
        let ch = nonces.challenge("smsbridge", 0x10, true);
        assert!(
            ch.starts_with("Digest realm=\"smsbridge\", nonce=\"10."),
            "{ch}"
        );
        assert!(
            ch.ends_with("qop=\"auth\", algorithm=MD5, stale=true"),
            "{ch}"
        );
        assert_eq!(parse_authorization("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(parse_authorization("Digest username=\"a\""), None);
        assert_eq!(parse_authorization("Digest"), None);
        assert_eq!(parse_authorization(""), None);
    }
}
