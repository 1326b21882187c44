//! The standalone TCP CIR channel on a loopback port, over the real bridge:
//! offered in ClientCapability-Response to clients that support it, `HELO` /
//! `OK`, `PING` / `OK`, a `WVCI` line when something is queued for the
//! session, and the channel closed when the session ends or is replaced.

mod imps_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imps_support::{BOB, Rig, rig_with};
use smsbridge::bridge::api::{DeliveryResult, ImFrontEnd, SmsToIm};
use smsbridge::imps::ImpsFrontEnd;
use smsbridge::imps::cir::{self, CirLimits};
use smsbridge::store::{BodyFormat, InboundId, UnixTime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

/// Long enough for any loopback answer; a missing line fails rather than hangs.
const WAIT: Duration = Duration::from_secs(10);

/// A rig whose server offers, and serves, a CIR channel on a loopback port.
async fn cir_rig(max_per_address: usize) -> (Rig, SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let r = rig_with(Some(addr));
    let stop = CancellationToken::new();
    tokio::spawn(cir::serve_tcp(
        listener,
        Arc::clone(&r.server),
        CirLimits {
            max_connections: 16,
            max_per_address,
            helo_timeout: WAIT,
        },
        stop.clone(),
    ));
    (r, addr, stop)
}

/// alice logged in with a SessionCookie; returns the SessionID.
async fn login_with_cookie(r: &Rig) -> String {
    let a = r
        .ask(
            None,
            "<Login-Request><UserID>wv:alice@sms.test</UserID><ClientID><URL>test</URL></ClientID>\
             <Password>secret</Password><TimeToLive>600</TimeToLive>\
             <SessionCookie>wv:c00k1e</SessionCookie></Login-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    a.text(&["SessionID"]).unwrap().to_owned()
}

struct Channel {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Channel {
    async fn open(addr: SocketAddr) -> Self {
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        Self {
            read: BufReader::new(read),
            write,
        }
    }

    async fn send(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
    }

    /// The next line, CRLF included; `None` when the server closed.
    async fn line(&mut self) -> Option<String> {
        let mut s = String::new();
        let n = tokio::time::timeout(WAIT, self.read.read_line(&mut s))
            .await
            .expect("a line or the end in time")
            .unwrap_or(0);
        (n > 0).then_some(s)
    }
}

fn sms(text: &str) -> SmsToIm {
    SmsToIm {
        inbound: InboundId(1),
        to_user: "wv:alice@sms.test".into(),
        from: BOB.into(),
        from_name: Some("Bob".into()),
        text: text.into(),
        received: UnixTime(1_700_000_000),
        incomplete: false,
        body_format: BodyFormat::Plain,
    }
}

#[tokio::test]
async fn stcp_is_offered_with_its_address_only_to_clients_that_support_it() {
    let (r, addr, _stop) = cir_rig(4).await;
    let s = login_with_cookie(&r).await;
    let ask = |methods: &'static str| {
        format!(
            "<ClientCapability-Request><ClientID><URL>test</URL></ClientID><CapabilityList>\
             <ClientType>MOBILE_PHONE</ClientType>{methods}</CapabilityList></ClientCapability-Request>"
        )
    };
    let a = r
        .ask(
            Some(&s),
            &ask("<SupportedCIRMethod>SHTTP</SupportedCIRMethod><SupportedCIRMethod>STCP</SupportedCIRMethod>"),
        )
        .await;
    let agreed = a.primitive.child("AgreedCapabilityList").unwrap();
    let methods: Vec<&str> = agreed
        .children_named("SupportedCIRMethod")
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(methods, ["STCP"]);
    assert_eq!(agreed.text_at(&["TCPAddress"]), Some("127.0.0.1"));
    assert_eq!(
        agreed.text_at(&["TCPPort"]),
        Some(addr.port().to_string().as_str())
    );

    // A client that offers only other methods polls: nothing is agreed.
    let a = r
        .ask(
            Some(&s),
            &ask("<SupportedCIRMethod>WAPSMS</SupportedCIRMethod>"),
        )
        .await;
    let agreed = a.primitive.child("AgreedCapabilityList").unwrap();
    assert!(agreed.child("SupportedCIRMethod").is_none(), "{}", a.raw);
    assert!(agreed.child("TCPAddress").is_none());
}

#[tokio::test]
async fn helo_ping_and_a_wvci_line_when_a_message_arrives_then_polling_finds_it() {
    let (r, addr, _stop) = cir_rig(4).await;
    let s = login_with_cookie(&r).await;
    let mut ch = Channel::open(addr).await;
    ch.send(&format!("HELO {s}\r\n")).await;
    assert_eq!(ch.line().await.as_deref(), Some("OK\r\n"));
    ch.send("PING \r\n").await;
    assert_eq!(ch.line().await.as_deref(), Some("OK\r\n"));

    let fe = ImpsFrontEnd(Arc::clone(&r.server));
    assert_eq!(
        fe.deliver(sms("are you there?")).await,
        DeliveryResult::Delivered
    );
    assert_eq!(ch.line().await.as_deref(), Some("WVCI 1.3 wv:c00k1e\r\n"));

    let polled = r.ask(Some(&s), "<Polling-Request/>").await;
    assert_eq!(polled.primitive.name, "NewMessage", "{}", polled.raw);
    assert_eq!(polled.text(&["ContentData"]), Some("are you there?"));

    // Logout ends the session, and with it the channel.
    let a = r.ask(Some(&s), "<Logout-Request/>").await;
    assert_eq!(a.code(), Some(200));
    assert_eq!(ch.line().await, None);
}

#[tokio::test]
async fn something_already_waiting_is_announced_right_after_ok() {
    let (r, addr, _stop) = cir_rig(4).await;
    let s = login_with_cookie(&r).await;
    let fe = ImpsFrontEnd(Arc::clone(&r.server));
    assert_eq!(fe.deliver(sms("early")).await, DeliveryResult::Delivered);
    let mut ch = Channel::open(addr).await;
    ch.send(&format!("HELO {s}\r\n")).await;
    assert_eq!(ch.line().await.as_deref(), Some("OK\r\n"));
    assert_eq!(ch.line().await.as_deref(), Some("WVCI 1.3 wv:c00k1e\r\n"));
}

#[tokio::test]
async fn a_second_helo_replaces_the_first_channel() {
    let (r, addr, _stop) = cir_rig(4).await;
    let s = login_with_cookie(&r).await;
    let mut first = Channel::open(addr).await;
    first.send(&format!("HELO {s}\r\n")).await;
    assert_eq!(first.line().await.as_deref(), Some("OK\r\n"));
    let mut second = Channel::open(addr).await;
    second.send(&format!("HELO {s}\r\n")).await;
    assert_eq!(second.line().await.as_deref(), Some("OK\r\n"));
    assert_eq!(first.line().await, None, "the replaced channel is closed");
    let fe = ImpsFrontEnd(Arc::clone(&r.server));
    assert_eq!(
        fe.deliver(sms("to the newer one")).await,
        DeliveryResult::Delivered
    );
    assert_eq!(
        second.line().await.as_deref(),
        Some("WVCI 1.3 wv:c00k1e\r\n")
    );
}

#[tokio::test]
async fn unknown_sessions_junk_and_long_lines_are_closed_without_ok() {
    let (r, addr, _stop) = cir_rig(4).await;
    let s = login_with_cookie(&r).await;
    for bad in [
        "HELO not-a-session\r\n".to_owned(),
        "HELO\r\n".to_owned(),
        "GET / HTTP/1.1\r\n".to_owned(),
        "PING\r\n".to_owned(),
        format!("HELO {}\r\n", "x".repeat(cir::MAX_LINE + 10)),
    ] {
        let mut ch = Channel::open(addr).await;
        ch.send(&bad).await;
        assert_eq!(ch.line().await, None, "{bad:?}");
    }
    // After OK, anything but PING closes the channel too.
    let mut ch = Channel::open(addr).await;
    ch.send(&format!("HELO {s}\r\n")).await;
    assert_eq!(ch.line().await.as_deref(), Some("OK\r\n"));
    ch.send("HELO again\r\n").await;
    assert_eq!(ch.line().await, None);
}

#[tokio::test]
async fn connections_beyond_the_cap_per_address_are_closed_at_once() {
    let (r, addr, _stop) = cir_rig(1).await;
    let s = login_with_cookie(&r).await;
    let mut held = Channel::open(addr).await;
    held.send(&format!("HELO {s}\r\n")).await;
    assert_eq!(held.line().await.as_deref(), Some("OK\r\n"));
    let mut refused = Channel::open(addr).await;
    assert_eq!(refused.line().await, None);
    // The held one still works.
    held.send("PING\r\n").await;
    assert_eq!(held.line().await.as_deref(), Some("OK\r\n"));
}
