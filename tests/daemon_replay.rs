//! A captured authenticated MESSAGE, replayed against `smsbridge run` as an
//! attacker on the network would: with a new Via branch, byte for byte after
//! its transaction ended, and with the old Authorization on a new Call-ID,
//! Request-URI and body. Each is refused and no second SMS leaves.

mod daemon_support;
mod sim_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use daemon_support::{DOMAIN, Daemon, SipMsg, add_user, wait_sent, write_config};
use md5::{Digest, Md5};
use sim_support::{SimProcess, TempDir};

const BOB: &str = "+4915112345678";

fn md5hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn param<'a>(h: &'a str, name: &str) -> Option<&'a str> {
    h.split([',', ' '])
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

fn message(
    local: SocketAddr,
    branch: &str,
    call_id: &str,
    uri: &str,
    body: &str,
    auth: Option<&str>,
) -> String {
    let mut m = format!(
        "MESSAGE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@{DOMAIN}>;tag=a1\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n"
    );
    if let Some(a) = auth {
        m.push_str(&format!("Authorization: {a}\r\n"));
    }
    m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    m
}

/// Sends `msg` and returns the final response.
fn ask(sock: &UdpSocket, server: SocketAddr, msg: &str) -> SipMsg {
    sock.send_to(msg.as_bytes(), server).expect("send");
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("a response within 10 s");
        let m = SipMsg::parse(&String::from_utf8_lossy(&buf[..n])).expect("SIP");
        if m.start.starts_with("SIP/2.0") && m.status() >= 200 {
            return m;
        }
    }
}

#[test]
fn a_captured_authorization_sends_no_second_sms() {
    let dir = TempDir::new("digest-replay");
    let sim = SimProcess::start(dir.path(), &[]);
    // A short T1 makes the server transaction end 64·T1 = 1.28 s after its
    // answer, so the byte-for-byte replay below meets no transaction.
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    let text =
        std::fs::read_to_string(&config)
            .unwrap()
            .replacen("[sip]\n", "[sip]\nt1_ms = 20\n", 1);
    std::fs::write(&config, text).unwrap();
    add_user(
        &config,
        &format!("sip:alice@{DOMAIN}"),
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let uri = format!("sip:bob@{DOMAIN}");

    // The genuine exchange: 401, then the authenticated MESSAGE, 202.
    let challenge = ask(
        &sock,
        sip,
        &message(local, "z9hG4bK-1", "c1@x", &uri, "pay day", None),
    );
    assert_eq!(challenge.status(), 401);
    let h = challenge
        .header("WWW-Authenticate")
        .expect("challenge")
        .to_owned();
    let (realm, nonce) = (param(&h, "realm").unwrap(), param(&h, "nonce").unwrap());
    let ha1 = md5hex(&format!("alice:{realm}:secret"));
    let ha2 = md5hex(&format!("MESSAGE:{uri}"));
    let response = md5hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    let auth = format!(
        "Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
    );
    let captured = message(local, "z9hG4bK-2", "c1@x", &uri, "pay day", Some(&auth));
    assert_eq!(ask(&sock, sip, &captured).status(), 202, "{}", daemon.log());
    assert!(wait_sent(&sim, 1, Duration::from_secs(20)));

    // 1. The same request with a new branch: a new transaction, refused.
    let rebranched = captured.replace("z9hG4bK-2", "z9hG4bK-3");
    let r = ask(&sock, sip, &rebranched);
    assert!(matches!(r.status(), 401 | 403), "{r:?}");

    // 2. Byte for byte: answered from the transaction (the same 202, no new
    // work) while it lasts, refused once it is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let r = ask(&sock, sip, &captured);
        if r.status() != 202 {
            break r;
        }
        assert!(Instant::now() < deadline, "the transaction never ended");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(matches!(after.status(), 401 | 403), "{after:?}");

    // 3. The old Authorization on a new Call-ID, another number and a new text.
    let other = format!("sip:+491715550077@{DOMAIN}");
    let forged = message(
        local,
        "z9hG4bK-4",
        "c2@x",
        &other,
        "send me money",
        Some(&auth),
    );
    let r = ask(&sock, sip, &forged);
    assert!(matches!(r.status(), 401 | 403), "{r:?}");

    // Nothing more left the modem.
    let sent = sim.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, BOB);
}
