//! Digest authentication as a server (RFC 3261 §22, RFC 2617, RFC 7616 with
//! MD5): challenges, `Authorization` parsing and verification against the
//! stored HA1 (the password is never known here). A nonce carries its issue
//! time and an MD5 over it and a per-process secret, so an old one is known as
//! ours (`stale=true`); and every nonce issued is remembered with the `nc`
//! values used with it, so a captured `Authorization` cannot be used again: each
//! `nc` counts once, a nonce without qop counts once, the digest `uri` must be
//! the Request-URI, and `qop=auth-int` covers the body. Time is an argument.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use md5::{Digest, Md5};

use super::wire::{split_list, unquote};

/// Lower-case hex MD5.
pub(crate) fn md5_hex(data: &str) -> String {
    Md5::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Nonces remembered at most; when full, the oldest is forgotten (its client
/// is challenged again with `stale=true`, nothing worse).
const MAX_NONCES: usize = 20_000;
/// `nc` values remembered per nonce; a client past that gets a new nonce.
const MAX_NC_PER_NONCE: usize = 1_000;

/// What has been done with one nonce.
#[derive(Debug, Default)]
struct Use {
    /// When it was issued.
    issued: u64,
    /// The `nc` values seen with it.
    counts: HashSet<u32>,
    /// Used once without qop (RFC 2069 style): never again.
    spent: bool,
}

/// Issues and checks nonces.
#[derive(Debug)]
pub(crate) struct Nonces {
    secret: String,
    ttl_secs: u64,
    /// Whether only `qop=auth-int` (body covered) is accepted.
    require_auth_int: bool,
    issued: Mutex<HashMap<String, Use>>,
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
        Self {
            secret,
            ttl_secs,
            require_auth_int: false,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// Accept only `qop=auth-int`, which covers the body too.
    pub(crate) fn requiring_auth_int(mut self, yes: bool) -> Self {
        self.require_auth_int = yes;
        self
    }

    fn uses(&self) -> std::sync::MutexGuard<'_, HashMap<String, Use>> {
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A nonce issued at `now` (Unix seconds), remembered until it expires.
    pub(crate) fn issue(&self, now: u64) -> String {
        // Two challenges in one second share a time; a random part keeps
        // their nonces (and what is recorded of each) apart.
        let mut salt = [0u8; 8];
        let _ = getrandom::fill(&mut salt);
        let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
        let nonce = format!("{now:x}-{salt}.{}", self.sign_with(now, &salt));
        let mut uses = self.uses();
        if uses.len() >= MAX_NONCES {
            let ttl = self.ttl_secs;
            uses.retain(|_, u| now.saturating_sub(u.issued) <= ttl);
        }
        if uses.len() >= MAX_NONCES
            && let Some(oldest) = uses
                .iter()
                .min_by_key(|(_, u)| u.issued)
                .map(|(k, _)| k.clone())
        {
            uses.remove(&oldest);
        }
        uses.insert(
            nonce.clone(),
            Use {
                issued: now,
                ..Use::default()
            },
        );
        nonce
    }

    /// How many nonces are remembered (tests).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.uses().len()
    }

    /// Records one use of `nonce` with `nc` (`None`: no qop). `false` when
    /// that use was already made, or the nonce is not remembered.
    fn spend(&self, nonce: &str, nc: Option<u32>) -> bool {
        let mut uses = self.uses();
        let Some(u) = uses.get_mut(nonce) else {
            return false;
        };
        match nc {
            None if u.spent => false,
            None => {
                u.spent = true;
                true
            }
            Some(n) if u.counts.contains(&n) || u.counts.len() >= MAX_NC_PER_NONCE => false,
            Some(n) => u.counts.insert(n),
        }
    }

    fn sign_with(&self, t: u64, salt: &str) -> String {
        md5_hex(&format!("{}:{t:x}:{salt}", self.secret))
    }

    fn check(&self, nonce: &str, now: u64) -> NonceState {
        let Some((stamp, sig)) = nonce.split_once('.') else {
            return NonceState::Forged;
        };
        let Some((t, salt)) = stamp.split_once('-') else {
            return NonceState::Forged;
        };
        let Ok(t) = u64::from_str_radix(t, 16) else {
            return NonceState::Forged;
        };
        if !constant_time_eq(sig, &self.sign_with(t, salt)) || t > now.saturating_add(5) {
            NonceState::Forged
        } else if now.saturating_sub(t) > self.ttl_secs {
            NonceState::Expired
        } else {
            NonceState::Fresh
        }
    }

    /// The `WWW-Authenticate` value for a 401.
    pub(crate) fn challenge(&self, realm: &str, now: u64, stale: bool) -> String {
        let qop = if self.require_auth_int {
            "auth-int"
        } else {
            "auth,auth-int"
        };
        let mut v = format!(
            "Digest realm=\"{}\", nonce=\"{}\", qop=\"{qop}\", algorithm=MD5",
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

/// The request-digest with `qop=auth-int`: HA2 covers MD5 of the body too
/// (RFC 2617 §3.2.2.3).
pub(crate) fn request_digest_int(
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    (nc, cnonce): (&str, &str),
    body: &[u8],
) -> String {
    let body_hash: String = Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let ha2 = md5_hex(&format!("{method}:{uri}:{body_hash}"));
    md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth-int:{ha2}"))
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

/// What a request is, for checking its credentials.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signed<'a> {
    /// The method.
    pub(crate) method: &'a str,
    /// Whether the credentials' `uri` names the Request-URI.
    pub(crate) uri_matches: bool,
    /// The body.
    pub(crate) body: &'a [u8],
}

/// Checks credentials for a request against HA1 at `now`, and spends the
/// nonce/nc they use: the same credentials never pass twice.
pub(crate) fn verify(
    nonces: &Nonces,
    c: &Credentials,
    ha1: &str,
    req: Signed<'_>,
    now: u64,
) -> Verdict {
    if let Some(a) = &c.algorithm
        && !a.eq_ignore_ascii_case("md5")
    {
        return Verdict::Wrong;
    }
    // The digest signs its `uri`; it must be this request's, or credentials
    // for one recipient would send to any other.
    if !req.uri_matches {
        return Verdict::Wrong;
    }
    let ha1 = ha1.to_ascii_lowercase();
    let (expected, nc) = match c.qop.as_deref() {
        None if nonces.require_auth_int => return Verdict::Wrong,
        None => (
            request_digest(&ha1, &c.nonce, req.method, &c.uri, None),
            None,
        ),
        Some(q) => {
            let (Some(nc), Some(cnonce)) = (c.nc.as_deref(), c.cnonce.as_deref()) else {
                return Verdict::Wrong;
            };
            let Ok(count) = u32::from_str_radix(nc, 16) else {
                return Verdict::Wrong;
            };
            let digest = if q.eq_ignore_ascii_case("auth-int") {
                request_digest_int(&ha1, &c.nonce, req.method, &c.uri, (nc, cnonce), req.body)
            } else if q.eq_ignore_ascii_case("auth") && !nonces.require_auth_int {
                request_digest(&ha1, &c.nonce, req.method, &c.uri, Some((nc, cnonce)))
            } else {
                return Verdict::Wrong;
            };
            (digest, Some(count))
        }
    };
    if !constant_time_eq(&expected, &c.response) {
        return Verdict::Wrong;
    }
    match nonces.check(&c.nonce, now) {
        // A right digest with a nonce or nc already used (a replay, or a
        // client that reuses what it should not) gets a new nonce.
        NonceState::Fresh if nonces.spend(&c.nonce, nc) => Verdict::Ok,
        NonceState::Fresh | NonceState::Expired => Verdict::Stale,
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

    const URI: &str = "sip:+4917@x";

    fn signed_nc(
        nonces: &Nonces,
        nonce: &str,
        qop: Option<&str>,
        nc: &str,
        body: &[u8],
    ) -> Credentials {
        let ha1 = md5_hex("alice:smsbridge:secret");
        let response = match qop {
            None => request_digest(&ha1, nonce, "MESSAGE", URI, None),
            Some("auth-int") => request_digest_int(&ha1, nonce, "MESSAGE", URI, (nc, "abc"), body),
            Some(_) => request_digest(&ha1, nonce, "MESSAGE", URI, Some((nc, "abc"))),
        };
        let _ = nonces;
        Credentials {
            username: "alice".into(),
            realm: "smsbridge".into(),
            response,
            nonce: nonce.into(),
            uri: URI.into(),
            qop: qop.map(Into::into),
            nc: qop.map(|_| nc.into()),
            cnonce: qop.map(|_| "abc".into()),
            algorithm: Some("MD5".into()),
        }
    }

    fn signed(nonces: &Nonces, issued: u64, qop: bool, _method: &str) -> Credentials {
        let nonce = nonces.issue(issued);
        signed_nc(nonces, &nonce, qop.then_some("auth"), "00000001", b"")
    }

    fn message(body: &[u8]) -> Signed<'_> {
        Signed {
            method: "MESSAGE",
            uri_matches: true,
            body,
        }
    }

    #[test]
    fn verification_with_and_without_qop_and_stale_nonces() {
        let nonces = Nonces::new("s3cret".into(), 300);
        let ha1 = md5_hex("alice:smsbridge:secret");
        for qop in [true, false] {
            let c = signed(&nonces, 1000, qop, "MESSAGE");
            let register = Signed {
                method: "REGISTER",
                ..message(b"")
            };
            assert_eq!(verify(&nonces, &c, &ha1, register, 1100), Verdict::Wrong);
            let wrong = md5_hex("alice:smsbridge:guess");
            assert_eq!(
                verify(&nonces, &c, &wrong, message(b""), 1100),
                Verdict::Wrong
            );
            assert_eq!(verify(&nonces, &c, &ha1, message(b""), 1100), Verdict::Ok);
            let c = signed(&nonces, 1000, qop, "MESSAGE");
            assert_eq!(
                verify(&nonces, &c, &ha1, message(b""), 1301),
                Verdict::Stale
            );
        }
        // A nonce signed by another process (secret) is not ours.
        let other = Nonces::new("other".into(), 300);
        let c = signed(&other, 1000, true, "MESSAGE");
        assert_eq!(
            verify(&nonces, &c, &ha1, message(b""), 1100),
            Verdict::Wrong
        );
        let mut c = signed(&nonces, 1000, true, "MESSAGE");
        c.algorithm = Some("SHA-256".into());
        assert_eq!(
            verify(&nonces, &c, &ha1, message(b""), 1100),
            Verdict::Wrong
        );
    }

    #[test]
    fn the_same_credentials_never_pass_twice() {
        let nonces = Nonces::new("s3cret".into(), 300);
        let ha1 = md5_hex("alice:smsbridge:secret");
        let nonce = nonces.issue(1000);
        let first = signed_nc(&nonces, &nonce, Some("auth"), "00000001", b"");
        assert_eq!(
            verify(&nonces, &first, &ha1, message(b""), 1001),
            Verdict::Ok
        );
        // Replayed (a new branch, or byte for byte after the transaction).
        assert_eq!(
            verify(&nonces, &first, &ha1, message(b""), 1005),
            Verdict::Stale
        );
        assert_eq!(
            verify(&nonces, &first, &ha1, message(b""), 1050),
            Verdict::Stale
        );
        // The client's next request on the same nonce counts up: fine, once.
        let second = signed_nc(&nonces, &nonce, Some("auth"), "00000002", b"");
        assert_eq!(
            verify(&nonces, &second, &ha1, message(b""), 1006),
            Verdict::Ok
        );
        assert_eq!(
            verify(&nonces, &second, &ha1, message(b""), 1007),
            Verdict::Stale
        );
        // Without qop a nonce is good for one request.
        let n2 = nonces.issue(1000);
        let plain = signed_nc(&nonces, &n2, None, "", b"");
        assert_eq!(
            verify(&nonces, &plain, &ha1, message(b""), 1001),
            Verdict::Ok
        );
        assert_eq!(
            verify(&nonces, &plain, &ha1, message(b""), 1002),
            Verdict::Stale
        );
        // A well-signed nonce we never issued (or forgot) is not accepted.
        let forgotten = Nonces::new("s3cret".into(), 300);
        let c = signed_nc(&forgotten, &nonce, Some("auth"), "00000009", b"");
        assert_eq!(
            verify(&forgotten, &c, &ha1, message(b""), 1001),
            Verdict::Stale
        );
    }

    #[test]
    fn credentials_for_one_request_uri_do_not_pass_for_another() {
        let nonces = Nonces::new("s3cret".into(), 300);
        let ha1 = md5_hex("alice:smsbridge:secret");
        let c = signed(&nonces, 1000, true, "MESSAGE");
        let elsewhere = Signed {
            uri_matches: false,
            ..message(b"")
        };
        assert_eq!(verify(&nonces, &c, &ha1, elsewhere, 1001), Verdict::Wrong);
        // Refused without spending: the right request still passes.
        assert_eq!(verify(&nonces, &c, &ha1, message(b""), 1001), Verdict::Ok);
    }

    #[test]
    fn auth_int_covers_the_body_and_can_be_required() {
        let nonces = Nonces::new("s3cret".into(), 300);
        let ha1 = md5_hex("alice:smsbridge:secret");
        let nonce = nonces.issue(1000);
        let c = signed_nc(&nonces, &nonce, Some("auth-int"), "00000001", b"send this");
        assert_eq!(
            verify(&nonces, &c, &ha1, message(b"send that"), 1001),
            Verdict::Wrong,
            "another body"
        );
        assert_eq!(
            verify(&nonces, &c, &ha1, message(b"send this"), 1001),
            Verdict::Ok
        );
        let strict = Nonces::new("s3cret".into(), 300).requiring_auth_int(true);
        let nonce = strict.issue(1000);
        let auth = signed_nc(&strict, &nonce, Some("auth"), "00000001", b"");
        assert_eq!(
            verify(&strict, &auth, &ha1, message(b""), 1001),
            Verdict::Wrong
        );
        let plain = signed_nc(&strict, &nonce, None, "", b"");
        assert_eq!(
            verify(&strict, &plain, &ha1, message(b""), 1001),
            Verdict::Wrong
        );
        let int = signed_nc(&strict, &nonce, Some("auth-int"), "00000001", b"x");
        assert_eq!(
            verify(&strict, &int, &ha1, message(b"x"), 1001),
            Verdict::Ok
        );
        assert!(
            strict
                .challenge("smsbridge", 1000, false)
                .contains("qop=\"auth-int\"")
        );
        assert!(
            nonces
                .challenge("smsbridge", 1000, false)
                .contains("qop=\"auth,auth-int\"")
        );
    }

    #[test]
    fn remembered_nonces_are_capped() {
        let nonces = Nonces::new("s3cret".into(), 300);
        for i in 0..(MAX_NONCES as u64 + 500) {
            nonces.issue(1000 + i / 100);
        }
        assert_eq!(nonces.remembered(), MAX_NONCES);
    }

    #[test]
    fn challenges_and_bad_headers() {
        let nonces = Nonces::new("k".into(), 60);
        let ch = nonces.challenge("smsbridge", 0x10, true);
        assert!(
            ch.starts_with("Digest realm=\"smsbridge\", nonce=\"10-"),
            "{ch}"
        );
        assert!(
            ch.ends_with("qop=\"auth,auth-int\", algorithm=MD5, stale=true"),
            "{ch}"
        );
        assert_eq!(parse_authorization("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(parse_authorization("Digest username=\"a\""), None);
        assert_eq!(parse_authorization("Digest"), None);
        assert_eq!(parse_authorization(""), None);
    }
}
