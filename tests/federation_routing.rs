//! Requests for other domains leave the SIP front end on the route
//! `[federation]` gives, and presence subscriptions to other domains run
//! their course. The other domain is a scripted UDP server on 127.0.0.2
//! (loopback only); every request line and header it gets is checked, and
//! the news of a subscription reaches a recording bridge.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smsbridge::bridge::api::{
    Accepted, BoxFuture, BridgeApi, ForeignIm, ForeignPresence, ForeignWatchState, ImFrontEnd,
    ImToSms, NotifyOn, Recipient, Refusal, SipCredentials, SubscriberPresence,
};
use smsbridge::config::{Federation, PeerDomain, Sip};
use smsbridge::presence::Presence;
use smsbridge::sip::SipFrontEnd;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const JANE: &str = "sip:jane@otherdomain.test";
const HARRY: &str = "wv:harry@example.com";
/// Long enough for any answer here; a test that waits this long has failed.
const WAIT: Duration = Duration::from_secs(10);

/// A bridge that records foreign presence news, and hands news for SIP
/// watchers to the front end as the real bridge does.
struct Recording {
    news: mpsc::UnboundedSender<ForeignPresence>,
    sip: std::sync::OnceLock<SipFrontEnd>,
}

impl BridgeApi for Recording {
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownUser(req.sender.address)) })
    }
    fn sip_credentials(&self, _: String) -> BoxFuture<Option<SipCredentials>> {
        Box::pin(async { None })
    }
    fn presence(&self, _: String, t: Recipient) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownRecipient(format!("{t:?}"))) })
    }
    fn user_online(&self, _: String) {}
    fn foreign_presence(&self, update: ForeignPresence) {
        if let (true, Some(fe)) = (update.watcher.starts_with("sip:"), self.sip.get()) {
            fe.foreign_presence(update.clone());
        }
        let _ = self.news.send(update);
    }
}

struct Setup {
    fe: SipFrontEnd,
    news: mpsc::UnboundedReceiver<ForeignPresence>,
    server: Server,
    _stop: CancellationToken,
}

/// A front end for `sms.example` on 127.0.0.1 and the other domain's server
/// on 127.0.0.2; `federation` is given the server's address.
async fn setup(federation: impl FnOnce(&str) -> Federation) -> Setup {
    setup_with(federation, |_| {}).await
}

/// [`setup`] with the front end's configuration changed by `tweak`.
async fn setup_with(
    federation: impl FnOnce(&str) -> Federation,
    tweak: impl FnOnce(&mut Sip),
) -> Setup {
    let server = Server::bind("127.0.0.2:0").await;
    let (tx, news) = mpsc::unbounded_channel();
    let mut cfg = Sip {
        realm: "smsbridge".into(),
        domain: "sms.example".into(),
        udp: vec!["127.0.0.1:0".into()],
        tcp: Vec::new(),
        ..Sip::default()
    };
    tweak(&mut cfg);
    let stop = CancellationToken::new();
    let bridge = Arc::new(Recording {
        news: tx,
        sip: std::sync::OnceLock::new(),
    });
    let fe = SipFrontEnd::start(&cfg, bridge.clone(), stop.clone())
        .await
        .expect("SIP front end starts");
    let _ = bridge.sip.set(fe.clone());
    fe.set_federation(&federation(&format!("sip:{}", server.addr)));
    Setup {
        fe,
        news,
        server,
        _stop: stop,
    }
}

fn static_route(hop: &str) -> Federation {
    Federation {
        domain: vec![PeerDomain {
            name: "otherdomain.test".into(),
            proxy: Some(hop.to_owned()),
            addresses: Vec::new(),
            username: Some("bridge".into()),
            password: Some("s3cret".into()),
        }],
        ..Federation::default()
    }
}

/// The other domain's server: reads requests and responses, answers.
struct Server {
    sock: UdpSocket,
    addr: SocketAddr,
    /// (Via branch, CSeq) of requests seen, so a retransmission is skipped.
    seen: HashSet<(String, String)>,
}

impl Server {
    async fn bind(addr: &str) -> Self {
        let sock = UdpSocket::bind(addr).await.expect("loopback binds");
        Self {
            addr: sock.local_addr().unwrap(),
            sock,
            seen: HashSet::new(),
        }
    }

    /// The next message (a retransmitted request is skipped) and its sender.
    async fn recv(&mut self) -> (String, SocketAddr) {
        loop {
            let mut buf = vec![0u8; 65536];
            let (n, from) = timeout(WAIT, self.sock.recv_from(&mut buf))
                .await
                .expect("a message in time")
                .unwrap();
            let text = String::from_utf8(buf[..n].to_vec()).unwrap();
            if !text.starts_with("SIP/2.0") {
                let id = (
                    header(&text, "Via").unwrap_or_default().to_owned(),
                    header(&text, "CSeq").unwrap_or_default().to_owned(),
                );
                if !self.seen.insert(id) {
                    continue;
                }
            }
            return (text, from);
        }
    }

    async fn send(&self, text: &str, to: SocketAddr) {
        self.sock.send_to(text.as_bytes(), to).await.unwrap();
    }

    /// Answers `req` with `code`, the dialog headers copied, `to_tag` added
    /// to To when it has none, and `extra` headers.
    async fn answer(&self, req: &str, to: SocketAddr, code: u16, to_tag: &str, extra: &[&str]) {
        self.send(&response(req, code, to_tag, extra), to).await;
    }

    /// Sends a NOTIFY in the dialog `req` (our SUBSCRIBE) set up, and
    /// returns the front end's answer.
    async fn notify(
        &mut self,
        sub: &str,
        to: SocketAddr,
        cseq: u32,
        state: &str,
        pidf: &str,
    ) -> String {
        let from = header(sub, "From").unwrap();
        let contact = header(sub, "Contact").unwrap();
        let target = contact.trim_start_matches('<').trim_end_matches('>');
        let ct = if pidf.is_empty() {
            String::new()
        } else {
            "Content-Type: application/pidf+xml\r\n".into()
        };
        let text = format!(
            "NOTIFY {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {addr};branch=z9hG4bKnotify{cseq}\r\n\
             Max-Forwards: 70\r\n\
             From: <{JANE}>;tag=jane1\r\n\
             To: {from}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} NOTIFY\r\n\
             Contact: <sip:jane@{addr}>\r\n\
             Event: presence\r\n\
             Subscription-State: {state}\r\n\
             {ct}Content-Length: {len}\r\n\r\n{pidf}",
            addr = self.addr,
            call_id = header(sub, "Call-ID").unwrap(),
            len = pidf.len(),
        );
        self.send(&text, to).await;
        let (resp, _) = self.recv().await;
        assert_eq!(
            header(&resp, "CSeq"),
            Some(format!("{cseq} NOTIFY").as_str())
        );
        resp
    }
}

/// The response to `req` with `code`: the dialog headers copied, `to_tag`
/// added to To when it has none, and `extra` headers.
fn response(req: &str, code: u16, to_tag: &str, extra: &[&str]) -> String {
    let mut out = format!("SIP/2.0 {code} {}\r\n", reason(code));
    for line in req.split("\r\n\r\n").next().unwrap().lines().skip(1) {
        let name = line.split(':').next().unwrap_or("").trim();
        if ["via", "from", "call-id", "cseq"].contains(&name.to_ascii_lowercase().as_str()) {
            out.push_str(&format!("{line}\r\n"));
        } else if name.eq_ignore_ascii_case("to") {
            if line.contains(";tag=") {
                out.push_str(&format!("{line}\r\n"));
            } else {
                out.push_str(&format!("{line};tag={to_tag}\r\n"));
            }
        }
    }
    for e in extra {
        out.push_str(&format!("{e}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        480 => "Temporarily Unavailable",
        _ => "Whatever",
    }
}

/// The first value of a header (full name, case-insensitive).
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let head = msg.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or_default()
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn tag(value: &str) -> &str {
    value.split(";tag=").nth(1).unwrap_or_default()
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The parameters of a Digest credentials header.
fn digest_params(value: &str) -> Vec<(String, String)> {
    let rest = value.trim().strip_prefix("Digest").unwrap().trim();
    rest.split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

/// Checks a digest answer to `nonce` in `realm` for `user`/`password`.
fn check_digest(
    value: &str,
    (method, uri): (&str, &str),
    user: &str,
    password: &str,
    realm: &str,
    nonce: &str,
) {
    let p = digest_params(value);
    let get = |k: &str| {
        p.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {k} in {value}"))
    };
    assert_eq!(
        (get("username"), get("realm"), get("nonce")),
        (user, realm, nonce)
    );
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{}", get("uri")));
    let expected = md5_hex(&format!(
        "{ha1}:{nonce}:{}:{}:{}:{ha2}",
        get("nc"),
        get("cnonce"),
        get("qop")
    ));
    assert_eq!(get("response"), expected, "{value}");
    assert_eq!(get("uri"), uri);
}

fn im(to: &str, notify: NotifyOn) -> ForeignIm {
    ForeignIm {
        from: HARRY.into(),
        display_name: None,
        to: to.into(),
        text: "Hi Jane".into(),
        im_message_id: Some("m-1".into()),
        notify,
    }
}

#[tokio::test]
async fn message_through_a_static_route_answers_its_challenge() {
    let mut s = setup(static_route).await;
    let fe = s.fe.clone();
    let sent = tokio::spawn(async move { fe.send_foreign(im(JANE, NotifyOn::default())).await });
    let (req, from) = s.server.recv().await;
    assert_eq!(
        first_line(&req),
        "MESSAGE sip:jane@otherdomain.test SIP/2.0"
    );
    assert_eq!(from, s.fe.local_addrs()[0]);
    let from_hdr = header(&req, "From").unwrap();
    assert_eq!(
        from_hdr,
        format!("<sip:harry@sms.example>;tag={}", tag(from_hdr))
    );
    assert_eq!(header(&req, "To"), Some("<sip:jane@otherdomain.test>"));
    assert_eq!(header(&req, "CSeq"), Some("1 MESSAGE"));
    assert_eq!(
        header(&req, "Content-Type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(body(&req), "Hi Jane");
    assert_eq!(header(&req, "Authorization"), None);
    let challenge = "WWW-Authenticate: Digest realm=\"otherdomain.test\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5";
    s.server.answer(&req, from, 401, "srv1", &[challenge]).await;
    let (again, from) = s.server.recv().await;
    assert_eq!(
        first_line(&again),
        "MESSAGE sip:jane@otherdomain.test SIP/2.0"
    );
    assert_eq!(header(&again, "CSeq"), Some("2 MESSAGE"));
    assert_eq!(header(&again, "Call-ID"), header(&req, "Call-ID"));
    check_digest(
        header(&again, "Authorization").unwrap(),
        ("MESSAGE", JANE),
        "bridge",
        "s3cret",
        "otherdomain.test",
        "n0nce",
    );
    s.server.answer(&again, from, 202, "srv1", &[]).await;
    assert_eq!(timeout(WAIT, sent).await.unwrap().unwrap(), Ok(()));
}

#[tokio::test]
async fn message_through_the_outbound_proxy_when_no_route_is_set() {
    let mut s = setup(|hop| Federation {
        outbound_proxy: Some(hop.to_owned()),
        outbound_username: Some("edge".into()),
        outbound_password: Some("edgepw".into()),
        ..Federation::default()
    })
    .await;
    // Delivery reports asked: CPIM with IMDN; a proxy challenge, then 404.
    let fe = s.fe.clone();
    let asked = NotifyOn {
        displayed: false,
        delivered: true,
        failed: false,
    };
    let sent = tokio::spawn(async move { fe.send_foreign(im(JANE, asked)).await });
    let (req, from) = s.server.recv().await;
    assert_eq!(
        first_line(&req),
        "MESSAGE sip:jane@otherdomain.test SIP/2.0"
    );
    assert_eq!(header(&req, "Content-Type"), Some("message/cpim"));
    let cpim = body(&req);
    assert!(cpim.starts_with("From: <sip:harry@sms.example>\r\nTo: <sip:jane@otherdomain.test>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: m-1\r\n"), "{cpim}");
    assert!(cpim.contains("\r\nimdn.Disposition-Notification: positive-delivery\r\n\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Jane"), "{cpim}");
    let challenge = "Proxy-Authenticate: Digest realm=\"edge.test\", nonce=\"p1\", qop=\"auth\"";
    s.server.answer(&req, from, 407, "px", &[challenge]).await;
    let (again, from) = s.server.recv().await;
    check_digest(
        header(&again, "Proxy-Authorization").unwrap(),
        ("MESSAGE", JANE),
        "edge",
        "edgepw",
        "edge.test",
        "p1",
    );
    s.server.answer(&again, from, 404, "px", &[]).await;
    assert_eq!(
        timeout(WAIT, sent).await.unwrap().unwrap(),
        Err(Refusal::UnknownRecipient(JANE.into()))
    );
    // Not now: 480 with Retry-After is a refusal to retry.
    let fe = s.fe.clone();
    let sent = tokio::spawn(async move {
        fe.send_foreign(im("sip:sam@elsewhere.test", NotifyOn::default()))
            .await
    });
    let (req, from) = s.server.recv().await;
    assert_eq!(first_line(&req), "MESSAGE sip:sam@elsewhere.test SIP/2.0");
    s.server
        .answer(&req, from, 480, "px", &["Retry-After: 90"])
        .await;
    assert_eq!(
        timeout(WAIT, sent).await.unwrap().unwrap(),
        Err(Refusal::Busy {
            retry_after: Duration::from_secs(90)
        })
    );
}

#[tokio::test]
async fn no_route_without_federation() {
    let s = setup(|_| Federation::default()).await;
    assert_eq!(
        s.fe.send_foreign(im(JANE, NotifyOn::default())).await,
        Err(Refusal::NoRoute(JANE.into()))
    );
    assert_eq!(
        s.fe.watch_foreign(HARRY.into(), JANE.into()).await,
        Err(Refusal::NoRoute(JANE.into()))
    );
}

const PIDF_OPEN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:jane@otherdomain.test\">\
<tuple id=\"a1\"><status><basic>open</basic></status><note>Online</note></tuple></presence>";

/// Starts a watch and accepts its first SUBSCRIBE with `expires`; returns
/// the SUBSCRIBE.
async fn subscribed(s: &mut Setup, watcher: &str, expires: u32) -> String {
    let fe = s.fe.clone();
    let w = watcher.to_owned();
    let started = tokio::spawn(async move { fe.watch_foreign(w, JANE.into()).await });
    let (sub, from) = s.server.recv().await;
    let contact = format!("Contact: <sip:jane@{}>", s.server.addr);
    let exp = format!("Expires: {expires}");
    s.server
        .answer(&sub, from, 200, "jane1", &[&contact, &exp])
        .await;
    assert_eq!(timeout(WAIT, started).await.unwrap().unwrap(), Ok(()));
    sub
}

async fn news(s: &mut Setup) -> ForeignPresence {
    timeout(WAIT, s.news.recv())
        .await
        .expect("news in time")
        .unwrap()
}

#[tokio::test]
async fn a_subscription_runs_pending_active_refreshed_terminated() {
    let mut s = setup(static_route).await;
    let us = s.fe.local_addrs()[0];
    let sub = subscribed(&mut s, HARRY, 600).await;
    assert_eq!(
        first_line(&sub),
        "SUBSCRIBE sip:jane@otherdomain.test SIP/2.0"
    );
    let from_hdr = header(&sub, "From").unwrap();
    assert_eq!(
        from_hdr,
        format!("<sip:harry@sms.example>;tag={}", tag(from_hdr))
    );
    assert_eq!(header(&sub, "To"), Some("<sip:jane@otherdomain.test>"));
    assert_eq!(header(&sub, "CSeq"), Some("1 SUBSCRIBE"));
    assert_eq!(header(&sub, "Event"), Some("presence"));
    assert_eq!(header(&sub, "Accept"), Some("application/pidf+xml"));
    assert_eq!(header(&sub, "Expires"), Some("3600"));
    assert_eq!(
        header(&sub, "Contact"),
        Some(format!("<sip:smsbridge@{us}>").as_str())
    );

    let resp = s
        .server
        .notify(&sub, us, 1, "pending;expires=600", "")
        .await;
    assert_eq!(first_line(&resp), "SIP/2.0 200 OK");
    let expect = |state| ForeignPresence {
        watcher: HARRY.into(),
        presentity: JANE.into(),
        state,
    };
    assert_eq!(news(&mut s).await, expect(ForeignWatchState::Pending));

    // Active, and the notifier shortens the subscription to 2 s: the
    // refresh comes before it runs out.
    let resp = s
        .server
        .notify(&sub, us, 2, "active;expires=2", PIDF_OPEN)
        .await;
    assert_eq!(first_line(&resp), "SIP/2.0 200 OK");
    let online = Presence {
        open: true,
        note: Some("Online".into()),
        ..Presence::default()
    };
    assert_eq!(
        news(&mut s).await,
        expect(ForeignWatchState::Active(online))
    );
    let (refresh, from) = s.server.recv().await;
    assert_eq!(
        first_line(&refresh),
        format!("SUBSCRIBE sip:jane@{} SIP/2.0", s.server.addr)
    );
    assert_eq!(header(&refresh, "Call-ID"), header(&sub, "Call-ID"));
    assert_eq!(header(&refresh, "From"), Some(from_hdr));
    assert_eq!(
        header(&refresh, "To"),
        Some("<sip:jane@otherdomain.test>;tag=jane1")
    );
    assert_eq!(header(&refresh, "CSeq"), Some("2 SUBSCRIBE"));
    assert_eq!(header(&refresh, "Expires"), Some("3600"));
    s.server
        .answer(&refresh, from, 200, "jane1", &["Expires: 600"])
        .await;

    let resp = s
        .server
        .notify(&sub, us, 3, "terminated;reason=noresource", "")
        .await;
    assert_eq!(first_line(&resp), "SIP/2.0 200 OK");
    assert_eq!(
        news(&mut s).await,
        expect(ForeignWatchState::Terminated("noresource".into()))
    );
    // The dialog is gone.
    let resp = s.server.notify(&sub, us, 4, "active", PIDF_OPEN).await;
    assert_eq!(
        first_line(&resp),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
}

#[tokio::test]
async fn unwatch_and_shutdown_unsubscribe_with_expires_zero() {
    let mut s = setup(static_route).await;
    let us = s.fe.local_addrs()[0];
    let sub = subscribed(&mut s, HARRY, 600).await;
    s.fe.unwatch_foreign(HARRY, JANE);
    let (end, from) = s.server.recv().await;
    assert_eq!(
        first_line(&end),
        format!("SUBSCRIBE sip:jane@{} SIP/2.0", s.server.addr)
    );
    assert_eq!(header(&end, "Expires"), Some("0"));
    assert_eq!(header(&end, "CSeq"), Some("2 SUBSCRIBE"));
    assert_eq!(header(&end, "Call-ID"), header(&sub, "Call-ID"));
    assert_eq!(
        header(&end, "To"),
        Some("<sip:jane@otherdomain.test>;tag=jane1")
    );
    // Challenged: answered with the domain's login.
    let challenge =
        "WWW-Authenticate: Digest realm=\"otherdomain.test\", nonce=\"u1\", qop=\"auth\"";
    s.server
        .answer(&end, from, 401, "jane1", &[challenge])
        .await;
    let (end, from) = s.server.recv().await;
    assert_eq!(header(&end, "CSeq"), Some("3 SUBSCRIBE"));
    assert_eq!(header(&end, "Expires"), Some("0"));
    let target = format!("sip:jane@{}", s.server.addr);
    check_digest(
        header(&end, "Authorization").unwrap(),
        ("SUBSCRIBE", &target),
        "bridge",
        "s3cret",
        "otherdomain.test",
        "u1",
    );
    s.server
        .answer(&end, from, 200, "jane1", &["Expires: 0"])
        .await;
    // The final NOTIFY is answered and brings no news.
    let resp = s
        .server
        .notify(&sub, us, 1, "terminated;reason=timeout", "")
        .await;
    assert_eq!(first_line(&resp), "SIP/2.0 200 OK");

    // Draining for shutdown ends the watches left.
    let sam = subscribed(&mut s, "sip:alice@sms.example", 600).await;
    let from_hdr = header(&sam, "From").unwrap();
    assert!(
        from_hdr.starts_with("<sip:alice@sms.example>;tag="),
        "{from_hdr}"
    );
    s.fe.set_draining(true);
    let (end, _) = s.server.recv().await;
    assert!(first_line(&end).starts_with("SUBSCRIBE "), "{end}");
    assert_eq!(header(&end, "Expires"), Some("0"));
    assert_eq!(header(&end, "Call-ID"), header(&sam, "Call-ID"));
    assert!(s.news.try_recv().is_err(), "no news after an unwatch");
}

/// sipp (Debian `sip-tester`) as the other domain's server on 127.0.0.2,
/// running one call of `scenario`; resolves to its output when it passed.
struct SippServer {
    addr: SocketAddr,
    run: tokio::task::JoinHandle<Result<(), String>>,
}

async fn sipp_server(scenario: &str) -> Option<SippServer> {
    let found = common::command_succeeds("sh", &["-c", "command -v sipp"]);
    if !common::peer_available("sipp", "apt-get install sip-tester", found) {
        return None;
    }
    let port = std::net::UdpSocket::bind("127.0.0.2:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.2");
    let addr: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let sf = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.current_dir(dir.path())
        .args(["-sf", sf.to_str().unwrap()])
        .args([
            "-m",
            "1",
            "-i",
            "127.0.0.2",
            "-p",
            &port.to_string(),
            "-t",
            "u1",
        ])
        .args(["-nostdin", "-timeout", "20", "-timeout_error"])
        .args(["-trace_err", "-trace_msg"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("sipp starts");
    let run = tokio::spawn(async move {
        let out = timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .map_err(|_| "sipp did not finish".to_owned())?
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            return Ok(());
        }
        let mut logs = String::new();
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            logs.push_str(&format!("--- {}\n", e.path().display()));
            logs.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
        Err(format!(
            "sipp {} failed ({}):\n{}\n{}\n{logs}",
            sf.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    });
    // sipp is listening once its port is taken (at most 5 s).
    for _ in 0..100 {
        if std::net::UdpSocket::bind(addr).is_err() {
            return Some(SippServer { addr, run });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sipp did not bind {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_as_the_other_domain_takes_a_message_with_digest() {
    let Some(sipp) = sipp_server("foreign_message_uas.xml").await else {
        return;
    };
    let hop = format!("sip:{}", sipp.addr);
    let s = setup(|_| static_route(&hop)).await;
    let sent = s.fe.send_foreign(im(JANE, NotifyOn::default())).await;
    assert_eq!(sent, Ok(()));
    sipp.run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_as_the_other_domain_serves_presence() {
    let Some(sipp) = sipp_server("foreign_presence_uas.xml").await else {
        return;
    };
    let hop = format!("sip:{}", sipp.addr);
    let mut s = setup(|_| static_route(&hop)).await;
    assert_eq!(s.fe.watch_foreign(HARRY.into(), JANE.into()).await, Ok(()));
    let online = Presence {
        open: true,
        note: Some("Online".into()),
        ..Presence::default()
    };
    let n = news(&mut s).await;
    assert_eq!(
        (n.watcher.as_str(), n.presentity.as_str(), n.state),
        (HARRY, JANE, ForeignWatchState::Active(online))
    );
    s.fe.unwatch_foreign(HARRY, JANE);
    sipp.run.await.unwrap().unwrap();
    assert!(s.news.try_recv().is_err(), "no news after the unwatch");
}

#[tokio::test]
async fn a_local_sip_watcher_of_a_foreign_user_is_relayed() {
    let mut s = setup_with(static_route, |c| c.trusted_peers = vec!["127.0.0.1".into()]).await;
    let us = s.fe.local_addrs()[0];
    let mut phone = Server::bind("127.0.0.1:0").await;
    let subscribe = |cseq: u32, to_tag: &str, expires: u32, phone: SocketAddr| {
        format!(
            "SUBSCRIBE sip:jane@otherdomain.test SIP/2.0\r\n\
             Via: SIP/2.0/UDP {phone};branch=z9hG4bK-alice{cseq}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@sms.example>;tag=w1\r\n\
             To: <sip:jane@otherdomain.test>{to_tag}\r\n\
             Call-ID: relay1@127.0.0.1\r\n\
             CSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:alice@{phone}>\r\n\
             Event: presence\r\n\
             Accept: application/pidf+xml\r\n\
             Expires: {expires}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    phone.send(&subscribe(1, "", 600, phone.addr), us).await;
    let (ok, _) = phone.recv().await;
    assert_eq!(first_line(&ok), "SIP/2.0 200 OK");
    assert_eq!(header(&ok, "Expires"), Some("600"));
    let our_tag = tag(header(&ok, "To").unwrap()).to_owned();
    let (pending, from) = phone.recv().await;
    assert_eq!(
        first_line(&pending),
        format!("NOTIFY sip:alice@{} SIP/2.0", phone.addr)
    );
    assert_eq!(
        header(&pending, "From"),
        Some(format!("<{JANE}>;tag={our_tag}").as_str())
    );
    assert_eq!(
        header(&pending, "To"),
        Some("<sip:alice@sms.example>;tag=w1")
    );
    assert_eq!(
        header(&pending, "Subscription-State"),
        Some("pending;expires=600")
    );
    phone.answer(&pending, from, 200, "", &[]).await;

    // The other domain is asked on Alice's behalf.
    let (sub, from) = s.server.recv().await;
    assert_eq!(
        first_line(&sub),
        "SUBSCRIBE sip:jane@otherdomain.test SIP/2.0"
    );
    let from_hdr = header(&sub, "From").unwrap();
    assert_eq!(
        from_hdr,
        format!("<sip:alice@sms.example>;tag={}", tag(from_hdr))
    );
    let contact = format!("Contact: <sip:jane@{}>", s.server.addr);
    s.server
        .answer(&sub, from, 200, "jane1", &[&contact, "Expires: 600"])
        .await;
    let resp = s
        .server
        .notify(&sub, us, 1, "active;expires=600", PIDF_OPEN)
        .await;
    assert_eq!(first_line(&resp), "SIP/2.0 200 OK");

    // Her news reaches Alice's phone as PIDF.
    let (active, from) = phone.recv().await;
    assert_eq!(header(&active, "CSeq"), Some("2 NOTIFY"));
    assert!(
        header(&active, "Subscription-State").is_some_and(|v| v.starts_with("active;expires=")),
        "{active}"
    );
    assert_eq!(
        header(&active, "Content-Type"),
        Some("application/pidf+xml")
    );
    assert!(
        body(&active).contains("entity=\"sip:jane@otherdomain.test\""),
        "{active}"
    );
    assert!(body(&active).contains("<basic>open</basic>"), "{active}");
    phone.answer(&active, from, 200, "", &[]).await;

    // Alice unsubscribes: her dialog ends here, and the watch there.
    let to_tag = format!(";tag={our_tag}");
    phone.send(&subscribe(2, &to_tag, 0, phone.addr), us).await;
    let (ok, _) = phone.recv().await;
    assert_eq!(
        (first_line(&ok), header(&ok, "Expires")),
        ("SIP/2.0 200 OK", Some("0"))
    );
    let (last, from) = phone.recv().await;
    assert_eq!(
        header(&last, "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    phone.answer(&last, from, 200, "", &[]).await;
    let (end, _) = s.server.recv().await;
    assert_eq!(
        first_line(&end),
        format!("SUBSCRIBE sip:jane@{} SIP/2.0", s.server.addr)
    );
    assert_eq!(header(&end, "Expires"), Some("0"));
    assert_eq!(header(&end, "Call-ID"), header(&sub, "Call-ID"));
}

/// Reads one SIP message from a stream: the head, then Content-Length bytes.
async fn read_stream_message(conn: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> String {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = header(&head, "Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                return String::from_utf8(msg).unwrap();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = timeout(WAIT, conn.read(&mut chunk))
            .await
            .expect("data in time")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_route_over_tcp_carries_the_message_and_the_subscription() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let hop = format!("sip:{};transport=tcp", listener.local_addr().unwrap());
    let s = setup_with(
        |_| static_route(&hop),
        |c| c.tcp = vec!["127.0.0.1:0".into()],
    )
    .await;
    let our_tcp = s.fe.local_addrs()[1];
    let fe = s.fe.clone();
    let sent = tokio::spawn(async move { fe.send_foreign(im(JANE, NotifyOn::default())).await });
    let (mut conn, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut buf = Vec::new();
    let req = read_stream_message(&mut conn, &mut buf).await;
    assert_eq!(
        first_line(&req),
        "MESSAGE sip:jane@otherdomain.test SIP/2.0"
    );
    assert!(
        header(&req, "Via").unwrap().starts_with("SIP/2.0/TCP "),
        "{req}"
    );
    assert_eq!(body(&req), "Hi Jane");
    conn.write_all(response(&req, 202, "tcp1", &[]).as_bytes())
        .await
        .unwrap();
    assert_eq!(timeout(WAIT, sent).await.unwrap().unwrap(), Ok(()));

    // The subscription's Contact is our TCP listener, so NOTIFYs come there.
    let fe = s.fe.clone();
    let started = tokio::spawn(async move { fe.watch_foreign(HARRY.into(), JANE.into()).await });
    let sub = read_stream_message(&mut conn, &mut buf).await;
    assert_eq!(
        first_line(&sub),
        "SUBSCRIBE sip:jane@otherdomain.test SIP/2.0"
    );
    assert_eq!(
        header(&sub, "Contact"),
        Some(format!("<sip:smsbridge@{our_tcp};transport=tcp>").as_str())
    );
    conn.write_all(response(&sub, 200, "tcp1", &["Expires: 600"]).as_bytes())
        .await
        .unwrap();
    assert_eq!(timeout(WAIT, started).await.unwrap().unwrap(), Ok(()));
}
