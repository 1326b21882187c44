//! The SIP path for `cargo fuzz` (`fuzz/fuzz_targets/sip.rs`): raw bytes as
//! a datagram or a TCP stream → framer → screen → rsipstack's parse → the
//! request handler, with a bridge that accepts everything. Not an API.
//!
//! Seeds: the RFC 4475 torture messages, each behind a flags byte (the
//! input is `(flags, bytes)`), go into the corpus directory, which git
//! ignores:
//! `for f in tests/fixtures/rfc4475/*.dat; do for b in 0 1 2; do (printf "\\x0$b"; cat $f) > fuzz/corpus/sip/rfc4475-$(basename $f .dat)-$b; done; done`

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use super::digest::md5_hex;
use super::screen::{self, Frame, Framer, Screened};
use super::uas::{Uas, UasConfig};
use super::wire::{Request, Transport};
use crate::bridge::api::{
    Accepted, BoxFuture, BridgeApi, ImToSms, MessageId, Recipient, Refusal, SipCredentials,
    SubscriberPresence,
};

/// Knows `sip:alice@sms.example` (password `secret`), takes every MESSAGE and
/// shows every subscriber.
struct Bridge;

impl BridgeApi for Bridge {
    fn submit(&self, _req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        Box::pin(async {
            Ok(Accepted {
                delivered: false,
                message: MessageId(1),
                parts: 1,
            })
        })
    }
    fn sip_credentials(&self, address: String) -> BoxFuture<Option<SipCredentials>> {
        Box::pin(async move {
            (address == "sip:alice@sms.example").then(|| SipCredentials {
                realm: "smsbridge".into(),
                ha1: md5_hex("alice:smsbridge:secret"),
            })
        })
    }
    fn presence(&self, _w: String, t: Recipient) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        Box::pin(async move {
            let msisdn = match t {
                Recipient::Number(n) => n,
                Recipient::Alias(_) | Recipient::Foreign(_) => "+491715550001".into(),
            };
            Ok(SubscriberPresence {
                msisdn,
                name: None,
                im_user: None,
                decision: crate::bridge::api::WatchDecision::Allow,
                unavailable: None,
            })
        })
    }
    fn user_online(&self, _address: String) {}
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("no tokio runtime for fuzzing: {e}"))
    })
}

/// Feeds `data` to the SIP path. `flags` bit 0: a TCP stream (cut into
/// pieces at the bytes `0xfe`, which are dropped) rather than one datagram;
/// bit 1: from a trusted peer (no digest needed). Returns the status codes
/// answered, in order. Panics when an invariant breaks: an answer rsipstack
/// cannot read back, or a status code outside 100..=699.
#[doc(hidden)]
pub fn input(flags: u8, data: &[u8]) -> Vec<u16> {
    let mut answered = Vec::new();
    let tcp = flags & 1 != 0;
    let transport = if tcp { Transport::Tcp } else { Transport::Udp };
    let source = match flags & 2 {
        0 => SocketAddr::from(([127, 0, 0, 1], 5070)),
        _ => SocketAddr::from(([10, 9, 9, 9], 5060)),
    };
    let mut messages = Vec::new();
    if !tcp {
        messages.push(data.to_vec());
    } else {
        let mut framer = Framer::default();
        'stream: for chunk in data.split(|b| *b == 0xfe) {
            framer.push(chunk);
            loop {
                match framer.next_frame() {
                    Ok(None) => break,
                    Ok(Some(Frame::Ping)) => {}
                    Ok(Some(Frame::Message(m))) => messages.push(m),
                    Err(e) => {
                        if let Some(reply) =
                            e.head.and_then(|h| screen::reply_to(&h, e.code, e.why))
                        {
                            answered.push(check_reply(&reply, &[400, 413]));
                        }
                        break 'stream;
                    }
                }
            }
        }
    }
    for m in messages {
        let msg = match screen::screen(&m) {
            Screened::Pass(msg, _) => msg,
            Screened::Reply(reply) => {
                answered.push(check_reply(&reply, &[400, 413, 416, 501, 505]));
                continue;
            }
            Screened::Drop(_) => continue,
        };
        let rsipstack::sip::SipMessage::Request(req) = *msg else {
            continue;
        };
        let req = Request::new(req, source, transport);
        let uas = Uas::new(
            UasConfig {
                realm: "smsbridge".into(),
                domain: "sms.example".into(),
                domains: Arc::new(
                    crate::domains::Domains::new(
                        ["sms.example"],
                        [std::net::IpAddr::from([127, 0, 0, 1])],
                    )
                    .with_trusted([std::net::IpAddr::from([10, 9, 9, 9])]),
                ),
                trusted: vec![std::net::IpAddr::from([10, 9, 9, 9])],
                contact_udp: "sip:smsbridge@127.0.0.1:5060".into(),
                contact_tcp: "sip:smsbridge@127.0.0.1:5060;transport=tcp".into(),
                require_auth_int: false,
            },
            Arc::new(Bridge),
            "k".into(),
            || "tag1".into(),
        );
        let handled = runtime().block_on(uas.handle(&req, 1_000_000));
        let code = handled.reply.code;
        assert!((100..=699).contains(&code), "status {code}");
        answered.push(code);
    }
    answered
}

/// The screen's own answers must be SIP responses rsipstack reads back.
fn check_reply(reply: &[u8], codes: &[u16]) -> u16 {
    match rsipstack::sip::SipMessage::try_from(reply) {
        Ok(rsipstack::sip::SipMessage::Response(r)) => {
            let code = r.status_code.code();
            assert!(codes.contains(&code), "answered {code}");
            code
        }
        other => panic!(
            "the screen answered {:?}, which reads back as {other:?}",
            String::from_utf8_lossy(reply)
        ),
    }
}

/// Any text as an `Authorization` value, checked twice against a nonce we
/// issued: parsing and verifying never panic, and credentials that pass once
/// never pass a second time (no replay), whatever their qop, nc or uri.
#[doc(hidden)]
pub fn digest(flags: u8, data: &[u8]) {
    use super::digest::{Nonces, Signed, Verdict, parse_authorization, verify};
    let nonces = Nonces::new("fuzz".into(), 300).requiring_auth_int(flags & 4 != 0);
    let issued = nonces.issue(1_000);
    let text = String::from_utf8_lossy(data);
    // Let the fuzzer reach the nonce we issued: `@N@` stands for it.
    let text = text.replace("@N@", &issued);
    let Some(c) = parse_authorization(&text) else {
        return;
    };
    let ha1 = md5_hex("alice:smsbridge:secret");
    let req = Signed {
        method: if flags & 1 == 0 {
            "MESSAGE"
        } else {
            "REGISTER"
        },
        uri_matches: flags & 2 == 0,
        body: data,
    };
    let first = verify(&nonces, &c, &ha1, req, 1_000 + u64::from(flags >> 4));
    let second = verify(&nonces, &c, &ha1, req, 1_001 + u64::from(flags >> 4));
    assert!(
        !(first == Verdict::Ok && second == Verdict::Ok),
        "the same credentials passed twice: {text:?}"
    );
}

#[cfg(test)]
mod digest_tests {
    #[test]
    fn any_authorization_text_is_checked_without_panic() {
        for flags in [0u8, 1, 2, 4, 0xff] {
            for text in [
                &b""[..],
                b"Digest username=\"alice\", realm=\"smsbridge\", nonce=\"@N@\", uri=\"sip:x\", response=\"00\"",
                b"Digest username=\"alice\", realm=\"smsbridge\", nonce=\"@N@\", uri=\"sip:x\", response=\"00\", qop=auth-int, nc=zz, cnonce=\"c\"",
                b"Digest nonce=\"1-2.3\", qop=auth, nc=ffffffff",
            ] {
                super::digest(flags, text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::input;

    const MESSAGE: &str = "MESSAGE sip:+491715550001@sms.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
        From: <sip:alice@sms.example>;tag=a1\r\nTo: <sip:+491715550001@sms.example>\r\n\
        Call-ID: c1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
        Content-Length: 5\r\n\r\nhello";

    /// The fuzz entry point runs the real path: this is what the fuzzer's
    /// inputs go through.
    #[test]
    fn the_fuzzed_path_answers_as_the_front_end_does() {
        let m = MESSAGE.as_bytes();
        // A stranger is challenged; a trusted peer's MESSAGE is accepted.
        assert_eq!(input(0, m), [401]);
        assert_eq!(input(2, m), [202]);
        let foo = MESSAGE
            .replace("MESSAGE sip:", "FOO sip:")
            .replace("1 MESSAGE", "1 FOO");
        assert_eq!(input(2, foo.as_bytes()), [501]);
        assert_eq!(input(2, &m[..m.len() - 1]), [400]);
        // A stream cut at 0xfe, with two messages and a keep-alive.
        let mut stream = m[..40].to_vec();
        stream.push(0xfe);
        stream.extend_from_slice(&m[40..]);
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(m);
        assert_eq!(input(3, &stream), [202, 202]);
        let huge = MESSAGE.replace("Content-Length: 5", "Content-Length: 999999");
        assert_eq!(input(3, huge.as_bytes()), [413]);
    }

    /// The RFC 4475 torture messages (tests/fixtures/rfc4475, also the seeds
    /// of the `sip` fuzz corpus) through the fuzzed path, as datagrams and as
    /// a stream, from a stranger and from a trusted peer: no invariant
    /// breaks, and each datagram gets at most one answer.
    #[test]
    fn every_rfc4475_message_goes_through_the_fuzzed_path() -> std::io::Result<()> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rfc4475");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|x| x != "dat") {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            for flags in 0..4 {
                let answers = input(flags, &bytes);
                if flags & 1 == 0 {
                    assert!(answers.len() <= 1, "{path:?}: {answers:?}");
                }
            }
            seen += 1;
        }
        assert_eq!(seen, 50);
        Ok(())
    }
}
