//! IMPS entry points for `cargo fuzz`. `login` (`fuzz_targets/imps_login.rs`):
//! Login requests built from any bytes, from a handful of addresses, through
//! the CSP core with a bridge that knows nobody; never a panic, never a
//! session, and the nonce and throttle tables stay within their caps.
//! `wbxml` (`fuzz_targets/wbxml.rs`): any bytes through the WBXML decoder,
//! and what it reads written and read back to the same tree. Not an API.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::server::{Server, ServerConfig};
use super::session::Limits;
use crate::bridge::api::{
    Accepted, BoxFuture, BridgeApi, ImApi, ImToSms, Recipient, Refusal, SipCredentials,
    SubscriberPresence,
};

/// Knows nobody: every Login is refused as the default `ImApi` does.
pub(crate) struct Nobody;

impl BridgeApi for Nobody {
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownUser(req.sender.address)) })
    }
    fn sip_credentials(&self, _address: String) -> BoxFuture<Option<SipCredentials>> {
        Box::pin(async { None })
    }
    fn presence(
        &self,
        watcher: String,
        _target: Recipient,
    ) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownUser(watcher)) })
    }
    fn user_online(&self, _address: String) {}
}

impl ImApi for Nobody {}

/// Small caps, so the fuzzer reaches them.
const NONCES: usize = 32;

/// The server the inputs go to, with its runtime; `None` if no runtime could
/// be built (then there is nothing to fuzz).
fn server() -> Option<&'static (Arc<Server>, tokio::runtime::Runtime, Instant)> {
    static S: OnceLock<Option<(Arc<Server>, tokio::runtime::Runtime, Instant)>> = OnceLock::new();
    S.get_or_init(|| {
        let cfg = ServerConfig {
            domain: "sms.test".into(),
            limits: Limits {
                max_nonces: NONCES,
                max_nonces_per_address: 4,
                ..Limits::default()
            },
            poll_min: 5,
            cir_tcp: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let server = Server::new(cfg, Arc::new(Nobody), Arc::new(|| "n0nce".into()));
        Some((server, rt, Instant::now()))
    })
    .as_ref()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One Login request: `data` split at 0xff into UserID, then the proof.
#[doc(hidden)]
pub fn login(flags: u8, data: &[u8]) {
    let Some((server, rt, t0)) = server() else {
        return;
    };
    let mut parts = data.splitn(2, |b| *b == 0xff);
    let user = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let proof = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let proof = match flags & 3 {
        0 => format!("<Password>{}</Password>", escape(&proof)),
        1 => format!("<DigestBytes>{}</DigestBytes>", escape(&proof)),
        2 => format!("<DigestSchema>{}</DigestSchema>", escape(&proof)),
        _ => String::new(),
    };
    let body = format!(
        "<WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/WV-CSP1.3\"><Session>\
         <SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor><Transaction>\
         <TransactionDescriptor><TransactionMode>Request</TransactionMode><TransactionID>1\
         </TransactionID></TransactionDescriptor><TransactionContent \
         xmlns=\"http://www.openmobilealliance.org/DTD/WV-TRC1.3\"><Login-Request><UserID>{}\
         </UserID>{proof}</Login-Request></TransactionContent></Transaction></Session>\
         </WV-CSP-Message>",
        escape(&user)
    );
    let client = IpAddr::V4(Ipv4Addr::new(127, 0, 0, (flags >> 2) & 7));
    let now = *t0 + Duration::from_secs(u64::from(flags >> 5) * 60);
    let reply = rt.block_on(server.handle_from(body.as_bytes(), now, client));
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        !text.contains("<SessionID>"),
        "a session for nobody: {text}"
    );
    assert!(server.pending_nonces() <= NONCES);
}

/// Any bytes as a WBXML body: decoded or refused, never a panic; a document
/// that decodes is encoded in its version and decodes again to the same tree
/// (text that is only whitespace beside child elements aside, which neither
/// encoding keeps), unless inlining its string table made it too large.
#[doc(hidden)]
pub fn wbxml(data: &[u8]) {
    use super::wbxml::{self, ErrorKind};
    let Ok(doc) = wbxml::decode(data) else {
        return;
    };
    let bytes = match wbxml::encode(&doc.root, doc.version) {
        Ok(b) => b,
        Err(e) => panic!("a decoded tree must encode: {e}"),
    };
    match wbxml::decode(&bytes) {
        Ok(again) => {
            assert_eq!(again.version, doc.version);
            assert_eq!(significant(again.root), significant(doc.root));
        }
        Err(e) => assert_eq!(e.kind, ErrorKind::TooBig, "{e}"),
    }
}

fn significant(mut el: crate::xml::Element) -> crate::xml::Element {
    if !el.children.is_empty() && el.text.trim().is_empty() {
        el.text.clear();
    }
    el.children = el.children.into_iter().map(significant).collect();
    el
}

#[cfg(test)]
mod tests {
    #[test]
    fn logins_from_any_bytes_open_nothing() {
        for flags in [0u8, 1, 2, 3, 0x1c, 0xff] {
            for data in [
                &b""[..],
                b"wv:alice@sms.test\xffsecret",
                b"\xff\xff<&>",
                b"x\xffMD5",
            ] {
                super::login(flags, data);
            }
        }
        // Many nonce requests from one address stay within the caps.
        for i in 0..200u32 {
            super::login(2, format!("wv:u{i}@x\u{ff}MD5").as_bytes());
        }
    }

    #[test]
    fn wbxml_from_any_bytes_round_trips_or_is_refused() {
        let login: &[u8] = &[
            0x03, 0x12, 0x6A, 0x04, b'a', 0x00, b' ', 0x00, 0xC9, 0x0B, 0x03, b'1', 0x00, 0x01,
            0x6D, 0x83, 0x02, 0x6F, 0x83, 0x00, 0x01, 0x4B, 0xC3, 0x02, 0x00, 0x05, 0x01, 0x01,
            0x01,
        ];
        super::wbxml(login);
        for n in 0..login.len() {
            super::wbxml(&login[..n]);
        }
        super::wbxml(b"\x03\x12\x6a\x00\x49\x6d\x6d\x6d");
    }
}
