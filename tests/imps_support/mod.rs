//! An IMPS server over the real bridge on an in-memory store, driven without
//! HTTP: CSP requests built as text, answers read back with the crate's own
//! CSP parser. Use with `mod imps_support;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smsbridge::bridge::api::{ImApi, SmsToIm};
use smsbridge::bridge::{Bridge, Shared};
use smsbridge::config::Config;
use smsbridge::imps::csp::{self, Mode};
use smsbridge::imps::session::Limits;
use smsbridge::imps::wbxml::{self, Version};
use smsbridge::imps::{ImpsFrontEnd, Server, ServerConfig};
use smsbridge::store::{
    BodyFormat, FrontEnd, InboundId, NewContact, Store, UnixTime, UserSettings, normalise_msisdn,
};
use smsbridge::xml::Element;

pub const DOMAIN: &str = "sms.test";
pub const BOB: &str = "+4915112345678";
pub const CAROL: &str = "+4915187654321";

pub struct Rig {
    pub server: Arc<Server>,
    pub shared: Arc<Shared>,
    pub t0: Instant,
}

/// alice (IMPS, password "secret") with the contact Bob (nickname "Bob", alias
/// "bob"); dave (IMPS, "pw2"); erin (SIP only).
pub fn rig() -> Rig {
    rig_with(None)
}

/// `rig()` whose ClientCapability-Response offers a TCP CIR channel at `cir_tcp`.
pub fn rig_with(cir_tcp: Option<SocketAddr>) -> Rig {
    let mut store = Store::open_in_memory().unwrap();
    let now = UnixTime::now();
    let s = UserSettings::default();
    store
        .add_user(
            None,
            Some("wv:alice@sms.test"),
            &s,
            Some("secret"),
            "r",
            now,
        )
        .unwrap();
    // alice may also use the 4-way (nonce/digest) Login.
    store
        .set_imps_digest("wv:alice@sms.test", Some("secret"))
        .unwrap();
    store
        .add_user(None, Some("wv:dave@sms.test"), &s, Some("pw2"), "r", now)
        .unwrap();
    store
        .add_user(Some("sip:erin@sms.test"), None, &s, Some("pw3"), "r", now)
        .unwrap();
    store
        .add_contact(
            &NewContact {
                user: "wv:alice@sms.test".into(),
                msisdn: normalise_msisdn(BOB, None).unwrap(),
                nickname: Some("Bob".into()),
                alias: Some("bob".into()),
                list_name: None,
            },
            now,
        )
        .unwrap();
    let mut cfg = Config::default();
    // The users' domain is ours (addresses elsewhere are other domains').
    cfg.sip.domain = DOMAIN.into();
    let shared = Shared::new(store, &cfg, Arc::new(|| true));
    let bridge: Arc<dyn ImApi> = Bridge::new(Arc::clone(&shared));
    let counter = Arc::new(AtomicU64::new(0));
    let server = Server::new(
        ServerConfig {
            domain: DOMAIN.into(),
            limits: Limits::default(),
            poll_min: 5,
            cir_tcp,
        },
        bridge,
        Arc::new(move || format!("tok{}", counter.fetch_add(1, Ordering::SeqCst))),
    );
    shared.set_front_end(FrontEnd::Imps, Arc::new(ImpsFrontEnd(Arc::clone(&server))));
    Rig {
        server,
        shared,
        t0: Instant::now(),
    }
}

/// A CSP request with `primitive` (XML text) in session `session`.
pub fn request(session: Option<&str>, primitive: &str) -> Vec<u8> {
    let sd = match session {
        Some(id) => format!("<SessionType>Inband</SessionType><SessionID>{id}</SessionID>"),
        None => "<SessionType>Outband</SessionType>".into(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <WV-CSP-Message xmlns=\"{}\"><Session><SessionDescriptor>{sd}</SessionDescriptor>\
         <Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode>\
         <TransactionID>c1</TransactionID></TransactionDescriptor>\
         <TransactionContent xmlns=\"{}\">{primitive}</TransactionContent></Transaction>\
         </Session></WV-CSP-Message>",
        csp::CSP_NS,
        csp::TRC_NS
    )
    .into_bytes()
}

/// A CSP answer as read back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub http: u16,
    pub empty: bool,
    pub mode: Option<Mode>,
    pub poll: bool,
    pub session: Option<String>,
    pub transaction: Option<String>,
    pub primitive: Element,
    pub raw: String,
}

impl Answer {
    pub fn code(&self) -> Option<u16> {
        self.primitive.text_at(&["Result", "Code"])?.parse().ok()
    }
    pub fn text(&self, path: &[&str]) -> Option<&str> {
        self.primitive.text_at(path)
    }
}

pub fn read(http: u16, body: &[u8]) -> Answer {
    let raw = String::from_utf8_lossy(body).into_owned();
    if body.is_empty() {
        return Answer {
            http,
            empty: true,
            mode: None,
            poll: false,
            session: None,
            transaction: None,
            primitive: Element::default(),
            raw,
        };
    }
    let m = csp::parse(body).unwrap_or_else(|e| panic!("answer is not CSP ({e}): {raw}"));
    Answer {
        http,
        empty: false,
        mode: Some(m.mode),
        poll: raw.contains("<Poll>T</Poll>"),
        session: m.session_id,
        transaction: m.transaction_id,
        primitive: m.primitive,
        raw,
    }
}

impl Rig {
    pub async fn ask(&self, session: Option<&str>, primitive: &str) -> Answer {
        self.ask_at(self.t0, session, primitive).await
    }

    pub async fn ask_at(&self, now: Instant, session: Option<&str>, primitive: &str) -> Answer {
        let r = self.server.handle(&request(session, primitive), now).await;
        read(r.http, &r.body)
    }

    pub async fn raw(&self, body: &[u8]) -> Answer {
        let r = self.server.handle(body, self.t0).await;
        read(r.http, &r.body)
    }

    /// Logs `user` in with a password; returns the SessionID.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let a = self
            .ask(
                None,
                &format!(
                    "<Login-Request><UserID>{user}</UserID><ClientID><URL>test</URL></ClientID>\
                     <Password>{password}</Password><TimeToLive>600</TimeToLive></Login-Request>"
                ),
            )
            .await;
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        a.text(&["SessionID"]).expect("SessionID").to_owned()
    }
}

/// `<User><UserID>…</UserID></User>`.
pub fn user(id: &str) -> String {
    format!("<User><UserID>{id}</UserID></User>")
}

/// A SendMessage-Request of `text` to `to`.
pub fn send(to: &str, text: &str, report: bool) -> String {
    format!(
        "<SendMessage-Request><DeliveryReport>{}</DeliveryReport><MessageInfo>\
         <ContentType>text/plain</ContentType><Recipient>{}</Recipient></MessageInfo>\
         <ContentData>{text}</ContentData></SendMessage-Request>",
        if report { "T" } else { "F" },
        user(to)
    )
}

/// The server of `rig()` behind the IMPS router on a loopback port.
pub async fn serve_rig() -> (SocketAddr, Rig) {
    let r = rig();
    let app = smsbridge::imps::router(Arc::clone(&r.server), Arc::new(AtomicBool::new(false)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, r)
}

/// `request(session, primitive)` in WBXML, with the token tables and
/// namespaces of `version`: the client side of the WBXML binding.
pub fn wbxml_request(session: Option<&str>, primitive: &str, version: Version) -> Vec<u8> {
    fn no_ns(el: &mut Element) {
        el.ns = None;
        el.children.iter_mut().for_each(no_ns);
    }
    let mut m = csp::parse(&request(session, primitive)).expect("a CSP request");
    no_ns(&mut m.primitive);
    let mut root = csp::envelope(&csp::Outgoing {
        session_id: m.session_id,
        transaction_id: m.transaction_id,
        mode: Mode::Request,
        poll: false,
        primitive: m.primitive,
    });
    let (csp_ns, trc_ns) = match version {
        Version::V11 => (
            "http://www.wireless-village.org/CSP1.1",
            "http://www.wireless-village.org/TRC1.1",
        ),
        Version::V12 => (
            "http://www.openmobilealliance.org/DTD/WV-CSP1.2",
            "http://www.openmobilealliance.org/DTD/WV-TRC1.2",
        ),
        _ => (csp::CSP_NS, csp::TRC_NS),
    };
    root.attrs = vec![("xmlns".into(), csp_ns.into())];
    let content = root
        .children
        .iter_mut()
        .find(|c| c.name == "Session")
        .and_then(|s| s.children.iter_mut().find(|c| c.name == "Transaction"))
        .and_then(|t| {
            t.children
                .iter_mut()
                .find(|c| c.name == "TransactionContent")
        })
        .expect("TransactionContent");
    content.attrs = vec![("xmlns".into(), trc_ns.into())];
    wbxml::encode(&root, version).expect("a request in WBXML")
}

/// A WBXML answer as read back (`raw` is the decoded tree, for messages).
pub fn read_wbxml(http: u16, body: &[u8]) -> Answer {
    if body.is_empty() {
        return read(http, body);
    }
    let doc =
        wbxml::decode(body).unwrap_or_else(|e| panic!("answer is not WBXML ({e}): {body:02x?}"));
    let poll = doc
        .root
        .text_at(&["Session", "Transaction", "TransactionDescriptor", "Poll"])
        == Some("T");
    let raw = format!("{:?}", doc.root);
    let m = csp::from_root(doc.root).unwrap_or_else(|e| panic!("answer is not CSP ({e}): {raw}"));
    Answer {
        http,
        empty: false,
        mode: Some(m.mode),
        poll,
        session: m.session_id,
        transaction: m.transaction_id,
        primitive: m.primitive,
        raw,
    }
}

/// One HTTP/1.1 GET of `path` on a fresh connection: status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = http_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        b"",
    );
    (status, body)
}

/// One HTTP/1.1 POST on a fresh connection: status, Content-Type, body.
pub fn http_post(addr: SocketAddr, content_type: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let head = format!(
        "POST /imps HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    http_exchange(addr, head.as_bytes(), body)
}

/// Sends `head` and `body` on a fresh connection and reads the answer to its
/// end: status, Content-Type, body.
fn http_exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect IMPS");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let i = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&out[..i]).into_owned();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, out[i + 4..].to_vec())
}

/// Asserts the presence of an SMS-only subscriber with `msisdn` in a
/// GetPresence-Response, as the 1.3 implementation guidelines list it.
pub fn assert_sms_only_presence(a: &Answer, msisdn: &str) {
    let at = |rest: &[&str]| {
        a.text(&[&["Presence", "PresenceSubList"][..], rest].concat())
            .map(str::to_owned)
    };
    assert_eq!(
        at(&["OnlineStatus", "PresenceValue"]).as_deref(),
        Some("T"),
        "{}",
        a.raw
    );
    assert_eq!(
        at(&["OnlineStatus", "ClientID", "MSISDN"]).as_deref(),
        Some(msisdn)
    );
    assert_eq!(at(&["ClientInfo", "ClientType"]).as_deref(), Some("CLI"));
    assert_eq!(
        at(&["UserAvailability", "PresenceValue"]).as_deref(),
        Some("AVAILABLE")
    );
    assert_eq!(
        at(&["StatusText", "PresenceValue"]).as_deref(),
        Some("SMS-only")
    );
}

/// An SMS from Bob (named "Bob") to `to`, as the bridge hands it to IMPS.
pub fn sms_from_bob(to: &str, text: &str) -> SmsToIm {
    SmsToIm {
        inbound: InboundId(1),
        to_user: to.into(),
        from: BOB.into(),
        from_name: Some("Bob".into()),
        text: text.into(),
        received: UnixTime(1_700_000_000),
        incomplete: false,
        body_format: BodyFormat::Plain,
        envelope: None,
    }
}

/// Polls in a client's session (`ask` sends one primitive in it) until a
/// server-initiated primitive named `name` comes; others are kept in
/// `seen`, and one already there is taken first.
pub fn poll_for(
    ask: impl Fn(&str) -> Answer,
    name: &str,
    seen: &mut Vec<Answer>,
    limit: Duration,
) -> Option<Answer> {
    if let Some(i) = seen.iter().position(|a| a.primitive.name == name) {
        return Some(seen.remove(i));
    }
    let t = Instant::now();
    while t.elapsed() < limit {
        let a = ask("<Polling-Request/>");
        if a.empty {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        if a.primitive.name == name {
            return Some(a);
        }
        seen.push(a);
    }
    None
}
