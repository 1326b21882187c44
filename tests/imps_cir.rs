//! The standalone TCP CIR channel on a loopback port, over the real bridge:
//! offered in ClientCapability-Response to clients that support it, `HELO` /
//! `OK`, `PING` / `OK`, a `WVCI` line when something is queued for the
//! session, and the channel closed when the session ends or is replaced.
//! Then end to end: `smsbridge run` as a process with the simulated modem and
//! a WBXML client that logs in (password and digest), keeps a contact list of
//! SMS-only subscribers, reads their presence, writes to one and is woken
//! over the CIR channel when the phone's reply arrives.

mod common;
mod daemon_support;
mod imps_support;
mod sim_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imps_support::{Rig, rig_with};
use smsbridge::bridge::api::{DeliveryResult, ImFrontEnd, SmsToIm};
use smsbridge::imps::ImpsFrontEnd;
use smsbridge::imps::cir::{self, CirLimits};
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

    /// Opens a channel and names session `sid` with HELO; asserts the OK.
    async fn helo(addr: SocketAddr, sid: &str) -> Self {
        let mut ch = Self::open(addr).await;
        ch.send(&format!("HELO {sid}\r\n")).await;
        assert_eq!(ch.line().await.as_deref(), Some("OK\r\n"));
        ch
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
    imps_support::sms_from_bob("wv:alice@sms.test", text)
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
    let mut ch = Channel::helo(addr, &s).await;
    ch.send("PING \r\n").await;
    assert_eq!(ch.line().await.as_deref(), Some("OK\r\n"));

    let fe = ImpsFrontEnd(Arc::clone(&r.server));
    assert_eq!(
        fe.deliver(sms("are you there?")).await,
        DeliveryResult::Offered
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
    assert_eq!(fe.deliver(sms("early")).await, DeliveryResult::Offered);
    let mut ch = Channel::helo(addr, &s).await;
    assert_eq!(ch.line().await.as_deref(), Some("WVCI 1.3 wv:c00k1e\r\n"));
}

#[tokio::test]
async fn a_second_helo_replaces_the_first_channel() {
    let (r, addr, _stop) = cir_rig(4).await;
    let s = login_with_cookie(&r).await;
    let mut first = Channel::helo(addr, &s).await;
    let mut second = Channel::helo(addr, &s).await;
    assert_eq!(first.line().await, None, "the replaced channel is closed");
    let fe = ImpsFrontEnd(Arc::clone(&r.server));
    assert_eq!(
        fe.deliver(sms("to the newer one")).await,
        DeliveryResult::Offered
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
    let mut ch = Channel::helo(addr, &s).await;
    ch.send("HELO again\r\n").await;
    assert_eq!(ch.line().await, None);
}

#[tokio::test]
async fn connections_beyond_the_cap_per_address_are_closed_at_once() {
    let (r, addr, _stop) = cir_rig(1).await;
    let s = login_with_cookie(&r).await;
    let mut held = Channel::helo(addr, &s).await;
    let mut refused = Channel::open(addr).await;
    assert_eq!(refused.line().await, None);
    // The held one still works.
    held.send("PING\r\n").await;
    assert_eq!(held.line().await.as_deref(), Some("OK\r\n"));
}

/// The standalone HTTP CIR: the URL agreed in ClientCapability-Response
/// answers 200 while something waits, 204 when nothing does, 404 once the
/// session is gone.
#[tokio::test]
async fn the_http_cir_url_answers_whether_something_waits() {
    let (addr, r) = imps_support::serve_rig().await;
    r.server.set_http_address(addr);
    let s = login_with_cookie(&r).await;
    let a = r
        .ask(
            Some(&s),
            "<ClientCapability-Request><ClientID><URL>test</URL></ClientID><CapabilityList>\
             <SupportedCIRMethod>STCP</SupportedCIRMethod><SupportedCIRMethod>SHTTP</SupportedCIRMethod>\
             </CapabilityList></ClientCapability-Request>",
        )
        .await;
    let agreed = a.primitive.child("AgreedCapabilityList").unwrap();
    // No TCP channel listens in this rig: only SHTTP is agreed.
    let methods: Vec<&str> = agreed
        .children_named("SupportedCIRMethod")
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(methods, ["SHTTP"]);
    let url = agreed.text_at(&["CIRHTTPAddress"]).unwrap().to_owned();
    let path = url
        .strip_prefix(&format!("http://{addr}"))
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned();
    assert!(path.starts_with("/cir/"), "{path}");
    assert!(!path.contains(&s), "the URL does not carry the SessionID");

    let get =
        |path: String| tokio::task::spawn_blocking(move || imps_support::http_get(addr, &path));
    assert_eq!(get(path.clone()).await.unwrap().0, 204);
    let fe = ImpsFrontEnd(Arc::clone(&r.server));
    assert_eq!(
        fe.deliver(sms("knock knock")).await,
        DeliveryResult::Offered
    );
    assert_eq!(get(path.clone()).await.unwrap().0, 200);
    let polled = r.ask(Some(&s), "<Polling-Request/>").await;
    assert_eq!(polled.primitive.name, "NewMessage");
    assert_eq!(get(path.clone()).await.unwrap().0, 204);
    assert_eq!(get("/cir/not-a-token".into()).await.unwrap().0, 404);
    assert_eq!(r.ask(Some(&s), "<Logout-Request/>").await.code(), Some(200));
    assert_eq!(get(path).await.unwrap().0, 404);
}

mod end_to_end {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use base64::Engine;
    use md5::{Digest, Md5};
    use smsbridge::imps::wbxml::{self, Version};

    use super::daemon_support::{self, Daemon, add_user, cli, free_port, write_config};
    use super::imps_support::{
        Answer, BOB, assert_sms_only_presence, http_post, read_wbxml, send, user, wbxml_request,
    };
    use super::sim_support::{SimProcess, TempDir};

    /// A WBXML request to the daemon, and its WBXML answer.
    fn ask(addr: SocketAddr, session: Option<&str>, primitive: &str) -> Answer {
        let (status, content_type, body) = http_post(
            addr,
            wbxml::CONTENT_TYPE,
            &wbxml_request(session, primitive, Version::V13),
        );
        if !body.is_empty() {
            assert_eq!(content_type, wbxml::CONTENT_TYPE, "answered in WBXML");
        }
        read_wbxml(status, &body)
    }

    /// A CIR line, CRLF included; panics if none comes within `limit`.
    fn cir_line(r: &mut BufReader<TcpStream>, limit: Duration) -> String {
        r.get_ref().set_read_timeout(Some(limit)).unwrap();
        let mut line = String::new();
        r.read_line(&mut line).expect("a CIR line in time");
        line
    }

    #[test]
    fn wbxml_client_logs_in_writes_to_a_subscriber_and_is_woken_by_the_reply() {
        let dir = TempDir::new("imps-cir-e2e");
        // The simulator's default phone echoes every SMS.
        let sim = SimProcess::start(
            dir.path(),
            &["--send-delay", "300ms", "--reply-delay", "700ms"],
        );
        let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let cir: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let (config, db, sip, status) = write_config(
            dir.path(),
            &[&sim.port],
            &format!("[imps]\nlisten = \"{imps}\"\ncir_tcp_listen = \"{cir}\"\n"),
        );
        add_user(&config, "wv:alice@sms.test", "secret", &[]);
        add_user(&config, "wv:dave@sms.test", "pw2", &[]);
        cli(
            &config,
            &[
                "users",
                "imps-digest",
                "wv:dave@sms.test",
                "--password-stdin",
            ],
            Some("pw2"),
        );
        let daemon = Daemon::start(dir.path(), config, db, sip, status);

        // dave: the 4-way Login (MD5 digest of nonce and password).
        let a = ask(
            imps,
            None,
            "<Login-Request><UserID>wv:dave@sms.test</UserID><ClientID><URL>e2e</URL></ClientID>\
             <DigestSchema>MD5</DigestSchema></Login-Request>",
        );
        assert_eq!(a.code(), Some(401), "{}\n{}", a.raw, daemon.log());
        let nonce = a.text(&["Nonce"]).expect("Nonce").to_owned();
        let digest = base64::engine::general_purpose::STANDARD
            .encode(Md5::digest(format!("{nonce}pw2").as_bytes()));
        let a = ask(
            imps,
            None,
            &format!(
                "<Login-Request><UserID>wv:dave@sms.test</UserID><ClientID><URL>e2e</URL></ClientID>\
                 <DigestBytes>{digest}</DigestBytes></Login-Request>"
            ),
        );
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        assert!(a.text(&["SessionID"]).is_some());

        // alice: a password Login with a SessionCookie, then STCP agreed.
        let a = ask(
            imps,
            None,
            "<Login-Request><UserID>wv:alice@sms.test</UserID><ClientID><URL>e2e</URL></ClientID>\
             <Password>secret</Password><TimeToLive>600</TimeToLive>\
             <SessionCookie>wv:e2e-cookie</SessionCookie></Login-Request>",
        );
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        let sid = a.text(&["SessionID"]).unwrap().to_owned();
        let s = Some(sid.as_str());
        let a = ask(
            imps,
            s,
            "<ClientCapability-Request><ClientID><URL>e2e</URL></ClientID><CapabilityList>\
             <ClientType>MOBILE_PHONE</ClientType><SupportedCIRMethod>STCP</SupportedCIRMethod>\
             </CapabilityList></ClientCapability-Request>",
        );
        let agreed = a.primitive.child("AgreedCapabilityList").expect("agreed");
        assert_eq!(agreed.text_at(&["SupportedCIRMethod"]), Some("STCP"));
        assert_eq!(agreed.text_at(&["TCPAddress"]), Some("127.0.0.1"));
        let port = cir.port().to_string();
        assert_eq!(agreed.text_at(&["TCPPort"]), Some(port.as_str()));

        // A contact list of SMS-only subscribers.
        let list = "wv:alice/~Friends@sms.test";
        let a = ask(
            imps,
            s,
            &format!("<CreateList-Request><ContactList>{list}</ContactList></CreateList-Request>"),
        );
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        let add = format!(
            "<ListManage-Request><ContactList>{list}</ContactList><AddNickList>\
             <NickName><Name>Bob</Name><UserID>wv:{BOB}@sms.test</UserID></NickName>\
             <NickName><Name>Carol</Name><UserID>wv:+4915187654321@sms.test</UserID></NickName>\
             </AddNickList><ReceiveList>T</ReceiveList></ListManage-Request>"
        );
        let a = ask(imps, s, &add);
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        let names: Vec<&str> = a
            .primitive
            .child("NickList")
            .expect("NickList")
            .children_named("NickName")
            .filter_map(|n| n.text_at(&["Name"]))
            .collect();
        assert_eq!(names, ["Bob", "Carol"]);

        // An SMS-only subscriber's presence: reachable through SMS.
        let a = ask(
            imps,
            s,
            &format!("<GetPresence-Request>{}</GetPresence-Request>", user("Bob")),
        );
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        assert_sms_only_presence(&a, BOB);

        // The CIR channel, open before the message goes out.
        let mut ch = BufReader::new(TcpStream::connect(cir).unwrap());
        ch.get_mut()
            .write_all(format!("HELO {sid}\r\n").as_bytes())
            .unwrap();
        assert_eq!(cir_line(&mut ch, Duration::from_secs(10)), "OK\r\n");
        // Nothing waits yet: a poll finds nothing.
        assert!(ask(imps, s, "<Polling-Request/>").empty);

        let a = ask(imps, s, &send("Bob", "Hi Bob, lunch?", false));
        assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());
        assert!(
            daemon_support::wait_sent(&sim, 1, Duration::from_secs(30)),
            "{}",
            daemon.log()
        );
        let sent = sim.sent();
        assert_eq!(sent[0].to, BOB);
        assert!(
            sent[0].text.as_deref().unwrap().ends_with("Hi Bob, lunch?"),
            "{sent:?}"
        );

        // The echo arrives: the channel says so, and only then does the client poll.
        assert_eq!(
            cir_line(&mut ch, Duration::from_secs(40)),
            "WVCI 1.3 wv:e2e-cookie\r\n",
            "{}",
            daemon.log()
        );
        let nm = ask(imps, s, "<Polling-Request/>");
        assert_eq!(nm.primitive.name, "NewMessage", "{}", nm.raw);
        assert!(
            nm.text(&["ContentData"])
                .unwrap()
                .ends_with("Hi Bob, lunch?"),
            "{}",
            nm.raw
        );
        assert_eq!(
            nm.text(&["MessageInfo", "Sender", "User", "UserID"]),
            Some(&*format!("wv:{BOB}@sms.test"))
        );
        let ack = format!(
            "<MessageDelivered><MessageID>{}</MessageID></MessageDelivered>",
            nm.text(&["MessageInfo", "MessageID"]).unwrap()
        );
        assert_eq!(ask(imps, s, &ack).code(), Some(200));

        // Logout ends the session and closes its channel.
        assert_eq!(ask(imps, s, "<Logout-Request/>").code(), Some(200));
        assert_eq!(cir_line(&mut ch, Duration::from_secs(10)), "");
    }
}
