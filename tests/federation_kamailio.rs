//! Federation with a real SIMPLE domain: Kamailio with its presence modules
//! serving `otherdomain.test` on 127.0.0.2 (the shipped
//! `examples/kamailio/otherdomain.cfg`) and baresip registered there as Jane,
//! publishing her presence.
//!
//! The first test checks that second domain on its own, with a raw UDP user
//! agent standing where smsbridge will be: the PIDF documents it sees are the
//! fixtures in `tests/fixtures/pidf/`. The second is the use case of issue 13
//! end to end: Harry, an IMPS user of smsbridge, and Jane watch and message
//! each other across the two domains.

mod common;
mod daemon_support;
mod federation_support;
mod imps_support;
mod kamailio_support;
mod sim_support;

use std::net::SocketAddr;
use std::time::Duration;

use daemon_support::{Daemon, SipMsg, Ua, add_user, free_port, write_config};
use federation_support::{Baresip, ImpsClient, JANE, OTHER_DOMAIN, OtherDomain, traced_pidf};
use imps_support::{send, user};
use sim_support::{SimProcess, TempDir, eventually};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pidf");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap_or_else(|e| panic!("{FIXTURES}/{name}: {e}"))
}

/// With `SMSBRIDGE_CAPTURE_PIDF=<dir>`, writes a captured document there
/// (how the fixtures were made).
fn capture(name: &str, body: &str) {
    if let Ok(dir) = std::env::var("SMSBRIDGE_CAPTURE_PIDF") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}"), body).unwrap();
    }
}

/// Kamailio notifies Jane's `basic` state either with the document baresip
/// published, unchanged, or with that document re-serialised by libxml2 (LF
/// line ends, the namespaces on one line), the fixture
/// `kamailio-notify-<basic>.xml`; both have been seen.
fn assert_notified_as(body: &str, basic: &str) {
    let published = fixture(&format!("baresip-publish-{basic}.xml"));
    if body != published {
        let name = format!("kamailio-notify-{basic}.xml");
        capture(&name, body);
        assert_eq!(body, fixture(&name));
    }
}

/// The next NOTIFY for the watcher `ua`, answered 200; other requests (the
/// ones baresip sends to the peer's address) are answered 200 and kept.
/// Both servers' logs, for a failure's message.
struct Logs<'a>(&'a OtherDomain, Option<&'a Baresip>);

impl Logs<'_> {
    fn text(&self) -> String {
        let jane = self.1.map(Baresip::log_text).unwrap_or_default();
        format!("{}\n--- baresip ---\n{jane}", self.0.log_text())
    }
}

fn next_notify(ua: &Ua, others: &mut Vec<SipMsg>, what: &str, logs: &Logs) -> SipMsg {
    loop {
        let m = ua
            .recv(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("no NOTIFY {what}:\n{}", logs.text()));
        if m.start.starts_with("SIP/2.0") {
            continue;
        }
        ua.answer(&m, 200, "OK");
        if m.is_request("NOTIFY") {
            return m;
        }
        others.push(m);
    }
}

/// The next request of `method` baresip sent to the peer's address (kept
/// in `others` or still to come), answered 200.
fn request_from_jane(ua: &Ua, others: &mut Vec<SipMsg>, method: &str, jane: &Baresip) -> SipMsg {
    if let Some(i) = others.iter().position(|m| m.is_request(method)) {
        return others.remove(i);
    }
    let m = ua
        .expect_request(method, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no {method} from jane\n{}", jane.log_text()));
    ua.answer(&m, 200, "OK");
    m
}

/// The NOTIFYs until one whose body has `<basic>{basic}</basic>`.
fn notify_with(ua: &Ua, others: &mut Vec<SipMsg>, basic: &str, logs: &Logs) -> SipMsg {
    loop {
        let n = next_notify(ua, others, basic, logs);
        if n.body.contains(&format!("<basic>{basic}</basic>")) {
            return n;
        }
    }
}

/// The second domain alone: a watcher at the peer's address subscribes to
/// Jane through her Kamailio and is notified `open` once baresip publishes,
/// `closed` when it goes offline and `open` again; the peer's MESSAGE reaches
/// baresip, and baresip's MESSAGE and SUBSCRIBE for the peer's domain come to
/// the peer's address; the withdrawn publication is notified `closed`, the
/// ended subscription `terminated`; a non-peer gets 403, an unknown domain 404.
#[test]
fn otherdomain_serves_janes_presence_and_messages() {
    if !federation_support::peers_available() {
        return;
    }
    let dir = TempDir::new("federation-kamailio");
    // Harry's user agent stands where smsbridge will be (127.0.0.1).
    let mut harry = Ua::new("sip:harry@sms.test", "", "127.0.0.1:9".parse().unwrap());
    let domain = OtherDomain::start(
        dir.path(),
        OtherDomain::free_addr(),
        "sms.test",
        harry.local(),
    );
    harry.server = domain.addr;

    // Before Jane has published anything.
    let subscribe = |ua: &mut Ua| {
        ua.request(
            "SUBSCRIBE",
            JANE,
            &[
                ("Event", "presence"),
                ("Accept", "application/pidf+xml"),
                ("Expires", "600"),
            ],
            "",
        )
    };
    let subscribed = subscribe(&mut harry);
    assert_eq!(
        subscribed.status(),
        200,
        "{subscribed:?}\n{}",
        domain.log_text()
    );
    let mut others = Vec::new();
    let n = next_notify(&harry, &mut others, "at first", &Logs(&domain, None));
    assert_eq!(n.header("Event"), Some("presence"), "{n:?}");
    assert!(
        n.header("Subscription-State")
            .is_some_and(|s| s.starts_with("active")),
        "force_active lets the watcher in: {n:?}"
    );
    // Nothing published yet: Kamailio's NOTIFY has no body.
    assert_eq!(n.header("Content-Length"), Some("0"), "{n:?}");
    assert_eq!(n.body, "");

    let jane = Baresip::start(
        dir.path(),
        JANE,
        domain.addr,
        &["\"Harry\" <sip:harry@sms.test>;presence=p2p"],
    );
    let open = notify_with(&harry, &mut others, "open", &Logs(&domain, Some(&jane)));
    assert_eq!(
        open.header("Content-Type"),
        Some("application/pidf+xml"),
        "{open:?}"
    );
    assert!(
        open.body.contains("entity=\"sip:jane@otherdomain.test\""),
        "{}",
        open.body
    );
    assert_notified_as(&open.body, "open");

    assert!(jane.command("presence_offline").contains("\"ok\":true"));
    let closed = notify_with(&harry, &mut others, "closed", &Logs(&domain, Some(&jane)));
    assert_notified_as(&closed.body, "closed");
    assert!(jane.command("presence_online").contains("\"ok\":true"));
    notify_with(&harry, &mut others, "open", &Logs(&domain, Some(&jane)));

    // What baresip PUBLISHed: `unknown` when it published before its
    // registration was answered, then `open`, `closed`, `open`.
    let published: Vec<(String, String)> = traced_pidf(&jane.log_text())
        .into_iter()
        .filter(|(line, _)| line.starts_with("PUBLISH "))
        .collect();
    let basic = |body: &str| -> String {
        body.split("<basic>")
            .nth(1)
            .and_then(|b| b.split('<').next())
            .unwrap_or_default()
            .to_owned()
    };
    // (Its timers may publish the same state twice.)
    let mut states: Vec<String> = published.iter().map(|(_, b)| basic(b)).collect();
    states.dedup();
    let known: Vec<&String> = states.iter().skip_while(|s| *s == "unknown").collect();
    assert_eq!(known, ["open", "closed", "open"], "{}", jane.log_text());
    for (_, body) in &published {
        let name = format!("baresip-publish-{}.xml", basic(body));
        capture(&name, body);
        assert_eq!(body, &fixture(&name));
    }

    // A MESSAGE from the peer reaches Jane's softphone.
    let r = harry.message(JANE, "text/plain", "hello from the peer");
    assert_eq!(r.status(), 200, "{r:?}\n{}", domain.log_text());
    assert!(
        jane.wait_log(|l| l.contains("\r\n\r\nhello from the peer"), 10)
            .is_some(),
        "{}",
        jane.log_text()
    );

    // Jane's requests for the peer's domain come to the peer's address: her
    // SUBSCRIBE to Harry (sent at start) and a MESSAGE.
    assert!(jane.command("contact_next").contains("\"ok\":true"));
    assert!(
        jane.command("message hello from jane")
            .contains("\"ok\":true")
    );
    let m = request_from_jane(&harry, &mut others, "MESSAGE", &jane);
    assert_eq!(m.body, "hello from jane");
    assert!(m.start.starts_with("MESSAGE sip:harry@sms.test "), "{m:?}");
    assert!(
        m.header("From")
            .is_some_and(|f| f.contains("<sip:jane@otherdomain.test>")),
        "{m:?}"
    );
    let s = request_from_jane(&harry, &mut others, "SUBSCRIBE", &jane);
    assert!(
        s.start.starts_with("SUBSCRIBE sip:harry@sms.test "),
        "{s:?}"
    );
    assert_eq!(s.header("Event"), Some("presence"), "{s:?}");

    // baresip quitting withdraws its publication (PUBLISH with Expires: 0).
    drop(jane);
    let gone = next_notify(
        &harry,
        &mut others,
        "after the withdrawal",
        &Logs(&domain, None),
    );
    // Kamailio tells the watchers `closed` in a body of its own making.
    assert_eq!(gone.header("Content-Type"), Some("application/pidf+xml"));
    capture("kamailio-notify-withdrawn.xml", &gone.body);
    assert_eq!(gone.body, fixture("kamailio-notify-withdrawn.xml"));

    // Harry ends his subscription (in the dialog, Expires: 0): the last
    // NOTIFY says `terminated`.
    let local = harry.local();
    let target = subscribed
        .header("Contact")
        .and_then(|c| c.split(['<', '>']).nth(1))
        .unwrap_or(JANE);
    let unsubscribe = format!(
        "SUBSCRIBE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKunsub;rport\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 100 SUBSCRIBE\r\n\
         Contact: <sip:harry@{local}>\r\nEvent: presence\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
        subscribed.header("From").unwrap(),
        subscribed.header("To").unwrap(),
        subscribed.header("Call-ID").unwrap()
    );
    harry
        .sock
        .send_to(unsubscribe.as_bytes(), domain.addr)
        .unwrap();
    // (Kamailio may notify the withdrawal more than once before.)
    let terminated = |n: &SipMsg| {
        n.header("Subscription-State")
            .is_some_and(|s| s.starts_with("terminated"))
    };
    while !terminated(&next_notify(
        &harry,
        &mut others,
        "ending the subscription",
        &Logs(&domain, None),
    )) {}
    // Kamailio logs it as the end-to-end test expects of smsbridge's.
    assert!(
        domain.log_text().contains(&format!(
            "SUBSCRIBE from sip:harry@sms.test to {JANE}, Expires: 0"
        )),
        "{}",
        domain.log_text()
    );

    // Other domains' requests are taken only from the peer's address, and
    // requests for domains this server does not know are not relayed.
    let mut mallory = Ua::new("sip:mallory@sms.test", "", domain.addr);
    mallory.sock = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    let r = mallory.message(JANE, "text/plain", "not from a peer");
    assert_eq!(r.status(), 403, "{r:?}");
    let r = harry.message("sip:someone@elsewhere.test", "text/plain", "no route");
    assert_eq!(r.status(), 404, "{r:?}");
}

/// Issue 13's use case end to end. Harry is an IMPS user of smsbridge
/// (domain sms.test); Jane is a SIMPLE user of otherdomain.test, her
/// presence served by that domain's Kamailio. Harry adds and watches Jane,
/// sees her come online and go offline, and messages her; Jane watches Harry
/// through her own server, sees his IMPS presence as PIDF with availability
/// and status text, and messages him. No SMS leaves for any of it.
#[test]
fn imps_user_and_simple_user_of_another_domain_watch_and_message_each_other() {
    if !federation_support::peers_available() {
        return;
    }
    let dir = TempDir::new("federation-e2e");
    let sim = SimProcess::start(dir.path(), &[]);
    let kamailio = OtherDomain::free_addr();
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) =
        write_config(dir.path(), &[&sim.port], &federation_config(imps, kamailio));
    add_user(&config, HARRY, "pw-harry", &[]);
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let domain = OtherDomain::start(dir.path(), kamailio, daemon_support::DOMAIN, sip);
    let logs = |jane: Option<&Baresip>| {
        format!(
            "--- smsbridge\n{}\n--- kamailio\n{}\n--- baresip\n{}",
            daemon.log(),
            domain.log_text(),
            jane.map(Baresip::log_text).unwrap_or_default()
        )
    };

    // Harry adds Jane to a list and subscribes to her presence.
    let mut harry = ImpsClient::login(imps, HARRY, "pw-harry");
    let a = harry.ask(
        "<CreateList-Request><ContactList>wv:harry/~Friends@sms.test</ContactList></CreateList-Request>",
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = harry.ask(&format!(
        "<ListManage-Request><ContactList>wv:harry/~Friends@sms.test</ContactList><AddNickList>\
         <NickName><Name>Jane</Name><UserID>{JANE_WV}</UserID></NickName></AddNickList>\
         <ReceiveList>T</ReceiveList></ListManage-Request>"
    ));
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, logs(None));
    assert_eq!(
        a.text(&["NickList", "NickName", "UserID"]),
        Some(JANE_WV),
        "{}",
        a.raw
    );
    let a = harry.ask(&format!(
        "<SubscribePresence-Request>{}</SubscribePresence-Request>",
        user(JANE_WV)
    ));
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, logs(None));

    // Jane's softphone starts: it registers, publishes `open`, and
    // subscribes to Harry's presence through her Kamailio. (Harry has her in
    // his list: that is what lets her watch him.)
    let jane = Baresip::start(
        dir.path(),
        JANE,
        domain.addr,
        &["\"Harry\" <sip:harry@sms.test>;presence=p2p"],
    );
    let online = harry
        .poll_until(Duration::from_secs(20), |a| is_jane_online(a, "T"))
        .unwrap_or_else(|| panic!("Harry never saw Jane online\n{}", logs(Some(&jane))));
    assert_eq!(
        online.text(&[
            "Presence",
            "PresenceSubList",
            "UserAvailability",
            "PresenceValue"
        ]),
        Some("AVAILABLE"),
        "{}",
        online.raw
    );

    // Jane sees Harry (logged in) as PIDF, then his UpdatePresence.
    let harry_notify = |what: &dyn Fn(&str) -> bool| {
        jane.wait_log(
            |l| {
                traced_pidf(l)
                    .iter()
                    .any(|(line, body)| line.starts_with("NOTIFY ") && what(body))
            },
            20,
        )
    };
    assert!(
        harry_notify(&|b| b.contains("harry@sms.test") && b.contains("<basic>open</basic>"))
            .is_some(),
        "no NOTIFY of Harry open for Jane\n{}",
        logs(Some(&jane))
    );
    let a = harry.ask(
        "<UpdatePresence-Request><PresenceSubList><UserAvailability><Qualifier>T</Qualifier>\
         <PresenceValue>DISCREET</PresenceValue></UserAvailability><StatusText><Qualifier>T</Qualifier>\
         <PresenceValue>in a meeting</PresenceValue></StatusText></PresenceSubList></UpdatePresence-Request>",
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert!(
        harry_notify(&|b| b.contains(">in a meeting</") && b.contains("busy/>")).is_some(),
        "Jane was not told Harry's availability (DISCREET: RPID busy) and status text\n{}",
        logs(Some(&jane))
    );

    // Harry writes to Jane: a SIP MESSAGE through her Kamailio to baresip.
    let a = harry.ask(&send(JANE_WV, "Hi Jane, lunch?", false));
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, logs(Some(&jane)));
    let got = jane
        .wait_log(|l| l.contains("\r\n\r\nHi Jane, lunch?"), 20)
        .unwrap_or_else(|| panic!("baresip got no MESSAGE\n{}", logs(Some(&jane))));
    let at = got.find("\r\n\r\nHi Jane, lunch?").unwrap();
    let message = &got[got[..at].rfind("MESSAGE sip:jane").expect("a MESSAGE")..at];
    assert!(
        message
            .lines()
            .any(|l| l.starts_with("From:") && l.contains("harry@sms.test")),
        "{message}"
    );

    // Jane writes to Harry: he polls it, from her foreign address.
    assert!(jane.command("contact_next").contains("\"ok\":true"));
    assert!(jane.command("message Yes, at noon").contains("\"ok\":true"));
    let nm = harry
        .poll_until(Duration::from_secs(20), |a| {
            a.primitive.name == "NewMessage"
        })
        .unwrap_or_else(|| panic!("no NewMessage from Jane\n{}", logs(Some(&jane))));
    assert_eq!(
        nm.text(&["ContentData"]),
        Some("Yes, at noon"),
        "{}",
        nm.raw
    );
    assert_eq!(
        nm.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some(JANE_WV),
        "{}",
        nm.raw
    );

    // Jane goes offline: Harry is told.
    assert!(jane.command("presence_offline").contains("\"ok\":true"));
    assert!(
        harry
            .poll_until(Duration::from_secs(20), |a| is_jane_online(a, "F"))
            .is_some(),
        "Harry never saw Jane offline\n{}",
        logs(Some(&jane))
    );

    // Logging out ends Harry's subscription at Jane's server.
    assert_eq!(harry.ask("<Logout-Request/>").code(), Some(200));
    let ended = format!("SUBSCRIBE from sip:harry@sms.test to {JANE}, Expires: 0");
    assert!(
        eventually(Duration::from_secs(10), || domain
            .log_text()
            .contains(&ended)
            .then_some(()))
        .is_some(),
        "no unsubscribe at Kamailio\n{}",
        logs(Some(&jane))
    );
    // And Jane, watching him, sees him go offline.
    assert!(
        harry_notify(&|b| b.contains("harry@sms.test") && b.contains("<basic>closed</basic>"))
            .is_some(),
        "no NOTIFY of Harry closed for Jane after his logout\n{}",
        logs(Some(&jane))
    );
    assert!(sim.sent().is_empty(), "{:?}", sim.sent());
}

const HARRY: &str = "wv:harry@sms.test";
const JANE_WV: &str = "wv:jane@otherdomain.test";

/// The configuration the use case needs besides the defaults: IMPS on
/// `imps`, and otherdomain.test as a peer domain whose server is `kamailio`.
fn federation_config(imps: SocketAddr, kamailio: SocketAddr) -> String {
    format!(
        "[imps]\nlisten = \"{imps}\"\n\n[federation]\n\n[[federation.domain]]\n\
         name = \"{OTHER_DOMAIN}\"\nproxy = \"sip:{kamailio};transport=udp\"\n\
         addresses = [\"{}\"]\n",
        kamailio.ip()
    )
}

/// Whether `a` is a PresenceNotification about Jane with OnlineStatus `tf`.
fn is_jane_online(a: &imps_support::Answer, tf: &str) -> bool {
    a.primitive.name == "PresenceNotification-Request"
        && a.text(&["Presence", "UserID"]) == Some(JANE_WV)
        && a.text(&[
            "Presence",
            "PresenceSubList",
            "OnlineStatus",
            "PresenceValue",
        ]) == Some(tf)
}

/// The `[[federation.domain]]` docs/kamailio.md shows for the second domain
/// is configuration smsbridge takes, and says what the example needs.
#[test]
fn the_documented_peer_domain_parses() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/kamailio.md")).unwrap();
    let start = doc
        .find("```toml\n[[federation.domain]]")
        .expect("the second domain's configuration in docs/kamailio.md")
        + "```toml\n".len();
    let toml = &doc[start..start + doc[start..].find("```").unwrap()];
    let cfg = smsbridge::config::Config::parse(toml, std::path::Path::new("docs/kamailio.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    let peer = &cfg.federation.domain[0];
    assert_eq!(peer.name, OTHER_DOMAIN);
    assert_eq!(
        peer.proxy.as_deref(),
        Some("sip:192.0.2.20:5060;transport=udp")
    );
    assert_eq!(peer.addresses, ["192.0.2.20"]);
}
