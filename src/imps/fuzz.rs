//! IMPS Login for `cargo fuzz` (`fuzz/fuzz_targets/imps_login.rs`): Login
//! requests built from any bytes, from a handful of addresses, through the CSP
//! core with a bridge that knows nobody. Never a panic, never a session, and
//! the nonce and throttle tables stay within their caps. Not an API.

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

fn server() -> &'static (Arc<Server>, tokio::runtime::Runtime, Instant) {
    static S: OnceLock<(Arc<Server>, tokio::runtime::Runtime, Instant)> = OnceLock::new();
    S.get_or_init(|| {
        let cfg = ServerConfig {
            domain: "sms.test".into(),
            limits: Limits {
                max_nonces: NONCES,
                max_nonces_per_address: 4,
                ..Limits::default()
            },
            poll_min: 5,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let server = Server::new(cfg, Arc::new(Nobody), Arc::new(|| "n0nce".into()));
        (server, rt, Instant::now())
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One Login request: `data` split at 0xff into UserID, then the proof.
#[doc(hidden)]
pub fn login(flags: u8, data: &[u8]) {
    let (server, rt, t0) = server();
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
}
