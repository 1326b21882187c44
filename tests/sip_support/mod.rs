//! A fake bridge and small SIP helpers for the SIP front-end tests.
//!
//! The fake bridge knows one user, `sip:alice@sms.example` with password
//! `secret` in realm `smsbridge`, and answers by recipient:
//! `+491715550001` and alias `bob` are accepted, alias `nobody` is unknown
//! (404), `+499999` is too long (413), `+498888` finds no modem (503).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsbridge::bridge::api::{
    Accepted, BoxFuture, BridgeApi, ImToSms, MessageId, Recipient, Refusal, SipCredentials,
    SubscriberPresence,
};
use smsbridge::bridge::api::{InboundId, SmsToIm, UnixTime};
use smsbridge::config::Sip;
use smsbridge::sip::SipFrontEnd;
use smsbridge::store::BodyFormat;
use tokio::net::UdpSocket;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct FakeBridge {
    pub submitted: Mutex<Vec<ImToSms>>,
    pub online: Mutex<Vec<String>>,
    /// (watcher, target) of every presence question.
    pub presence_asked: Mutex<Vec<(String, Recipient)>>,
}

pub fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl BridgeApi for FakeBridge {
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        let answer = match &req.recipient {
            Recipient::Alias(a) if a == "nobody" => Err(Refusal::UnknownRecipient(a.clone())),
            Recipient::Number(n) if n == "+499999" => Err(Refusal::TooLong { parts: 12, max: 6 }),
            Recipient::Number(n) if n == "+498888" => Err(Refusal::NoModem {
                retry_after: Duration::from_secs(30),
            }),
            _ => Ok(Accepted {
                delivered: false,
                message: MessageId(1),
                parts: 1,
            }),
        };
        self.submitted.lock().unwrap().push(req);
        Box::pin(async move { answer })
    }

    fn sip_credentials(&self, address: String) -> BoxFuture<Option<SipCredentials>> {
        Box::pin(async move {
            (address == "sip:alice@sms.example").then(|| SipCredentials {
                realm: "smsbridge".into(),
                ha1: md5_hex("alice:smsbridge:secret"),
            })
        })
    }

    fn presence(
        &self,
        watcher: String,
        target: Recipient,
    ) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        self.presence_asked
            .lock()
            .unwrap()
            .push((watcher, target.clone()));
        Box::pin(async move {
            match target {
                Recipient::Number(n) if n == "+491715550001" => Ok(SubscriberPresence {
                    msisdn: n,
                    name: Some("Bob".into()),
                    im_user: None,
                    decision: smsbridge::bridge::api::WatchDecision::Allow,
                    unavailable: None,
                }),
                Recipient::Alias(a) if a == "bob" => Ok(SubscriberPresence {
                    msisdn: "+491715550001".into(),
                    name: Some("Bob".into()),
                    im_user: None,
                    decision: smsbridge::bridge::api::WatchDecision::Allow,
                    unavailable: None,
                }),
                other => Err(Refusal::NotInContacts(format!("{other:?}"))),
            }
        })
    }

    fn user_online(&self, address: String) {
        self.online.lock().unwrap().push(address);
    }
}

/// Starts a front end on 127.0.0.1 port 0 (UDP and TCP) with a short T1.
pub async fn start(trusted: &[&str]) -> (SipFrontEnd, Arc<FakeBridge>, CancellationToken) {
    start_with(trusted, |_| {}).await
}

/// Like [`start`], with the configuration changed by `tweak` first.
pub async fn start_with(
    trusted: &[&str],
    tweak: impl FnOnce(&mut Sip),
) -> (SipFrontEnd, Arc<FakeBridge>, CancellationToken) {
    let bridge = Arc::new(FakeBridge::default());
    let mut cfg = Sip {
        realm: "smsbridge".into(),
        domain: "sms.example".into(),
        udp: vec!["127.0.0.1:0".into()],
        tcp: vec!["127.0.0.1:0".into()],
        trusted_peers: trusted.iter().map(|s| s.to_string()).collect(),
        upstream: None,
        require_auth_int: false,
        t1_ms: 20,
        ..Sip::default()
    };
    tweak(&mut cfg);
    let stop = CancellationToken::new();
    let fe = SipFrontEnd::start(&cfg, bridge.clone(), stop.clone())
        .await
        .expect("SIP front end starts");
    (fe, bridge, stop)
}

/// A baresip home in `dir` (a free UDP port; the account, contact, menu and
/// presence modules) whose account is alice with `params` (`regint=60`, …)
/// behind the front end `fe`.
pub fn baresip_home(dir: &std::path::Path, fe: &SipFrontEnd, params: &str) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("config"),
        format!(
            "sip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\n\
             module account.so\nmodule contact.so\nmodule menu.so\nmodule presence.so\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:alice@sms.example>;auth_pass=secret;outbound=\"sip:{}\";{params}\n",
            udp_addr(fe)
        ),
    )
    .unwrap();
}

/// baresip on the home `dir` for `seconds`, with its SIP trace (`-s`) and
/// these menu commands (`-e`).
pub fn spawn_baresip(
    dir: &std::path::Path,
    seconds: u32,
    commands: &[&str],
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new("baresip");
    cmd.args([
        "-f",
        dir.to_str().unwrap(),
        "-t",
        &seconds.to_string(),
        "-s",
    ]);
    for c in commands {
        cmd.args(["-e", c]);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baresip starts")
}

/// What baresip wrote, once it quit (within 20 s).
pub async fn baresip_log(child: tokio::process::Child) -> String {
    let out = timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("baresip quits")
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn udp_addr(fe: &SipFrontEnd) -> SocketAddr {
    fe.local_addrs()[0]
}

pub fn tcp_addr(fe: &SipFrontEnd) -> SocketAddr {
    fe.local_addrs()[1]
}

/// The status code of a response.
pub fn status(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The first value of a header in a message (full name, case-insensitive).
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let head = msg.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The body of a message.
pub fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A response to `req` with `code`, copying Via, From, To (tagged), Call-ID, CSeq.
pub fn respond(req: &str, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    let head = req.split("\r\n\r\n").next().unwrap_or("");
    for line in head.lines().skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "to" | "t" => {
                out.push_str(line);
                if !line.contains("tag=") {
                    out.push_str(";tag=phone");
                }
                out.push_str("\r\n");
            }
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

pub const WAIT: Duration = Duration::from_secs(5);

/// A UDP socket on 127.0.0.1.
pub async fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// The next datagram as text, `None` after [`WAIT`].
pub async fn recv(sock: &UdpSocket) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Sends `req` and returns the first final response.
pub async fn exchange(sock: &UdpSocket, to: std::net::SocketAddr, req: &str) -> String {
    sock.send_to(req.as_bytes(), to).await.unwrap();
    loop {
        let r = recv(sock).await.expect("a response");
        if status(&r) >= 200 {
            return r;
        }
    }
}

pub async fn register_phone(fe: &SipFrontEnd, phone: &UdpSocket) {
    let local = phone.local_addr().unwrap();
    let reg = format!(
        "REGISTER sip:sms.example SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreg\r\n\
         From: <sip:alice@sms.example>;tag=r1\r\nTo: <sip:alice@sms.example>\r\nCall-ID: reg@test\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@{local}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    let r = exchange(phone, udp_addr(fe), &reg).await;
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        header(&r, "Contact"),
        Some(format!("<sip:alice@{local}>;expires=600").as_str())
    );
}

/// An SMS from +491715550001 (Bob) for alice.
pub fn sms(text: &str, format: BodyFormat) -> SmsToIm {
    SmsToIm {
        inbound: InboundId(1),
        to_user: "sip:alice@sms.example".into(),
        from: "+491715550001".into(),
        from_name: Some("Bob".into()),
        text: text.into(),
        received: UnixTime(1_777_636_800),
        incomplete: false,
        body_format: format,
        envelope: None,
    }
}
