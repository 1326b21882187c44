//! `smsbridge run` as a process: the presentity's policy decides SIP
//! subscriptions. A SIP watcher of an IMPS user waits (202, a body-less
//! pending NOTIFY) and is rejected when the IMPS user blocks them; a SIP
//! presentity watches its watchers with `presence.winfo` (RFC 3857), its
//! watcherinfo documents valid by RFC 3858's schema (xmllint); the
//! operator's rules allow, polite-block and block.

mod common;
mod daemon_support;
mod imps_support;
mod sim_support;

use std::net::SocketAddr;
use std::time::Duration;

use daemon_support::{Daemon, SipMsg, Ua, add_user, cli, free_port, write_config};
use imps_support::{Answer, http_post, read, request};
use sim_support::{SimProcess, TempDir};

const ALICE: &str = "sip:alice@sms.test";
const ERIN: &str = "sip:erin@sms.test";

fn post(addr: SocketAddr, body: &[u8]) -> Answer {
    let (status, _, body) = http_post(addr, "application/vnd.wv.csp+xml", body);
    read(status, &body)
}

/// An IMPS session of `user`: its SessionID.
fn imps_login(addr: SocketAddr, user: &str, password: &str) -> String {
    let a = post(
        addr,
        &request(
            None,
            &format!(
                "<Login-Request><UserID>{user}</UserID><ClientID><URL>auth</URL></ClientID>\
                 <Password>{password}</Password></Login-Request>"
            ),
        ),
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    a.text(&["SessionID"]).expect("SessionID").to_owned()
}

/// The next NOTIFY `ua` gets (within 10 s), answered 200.
fn notified(ua: &Ua, what: &str) -> SipMsg {
    let n = ua
        .expect_request("NOTIFY", Duration::from_secs(10))
        .expect(what);
    ua.answer(&n, 200, "OK");
    n
}

fn subscribe(ua: &mut Ua, uri: &str) -> SipMsg {
    ua.request(
        "SUBSCRIBE",
        uri,
        &[
            ("Event", "presence"),
            ("Accept", "application/pidf+xml"),
            ("Expires", "600"),
        ],
        "",
    )
}

/// Whether xmllint finds `doc` valid by the watcherinfo schema.
fn assert_valid_watcherinfo(dir: &TempDir, doc: &str) {
    let found = common::command_succeeds("xmllint", &["--version"]);
    if !common::peer_available("xmllint", "apt-get install libxml2-utils", found) {
        return;
    }
    common::assert_schema_valid("watcherinfo.xsd", doc, &dir.path().join("winfo.xml"));
}

#[test]
fn a_sip_watcher_of_an_imps_user_waits_then_is_rejected_by_a_block() {
    let dir = TempDir::new("sip-auth-imps");
    let sim = SimProcess::start(dir.path(), &[]);
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        &format!("[imps]\nlisten = \"{imps}\"\n"),
    );
    add_user(&config, "wv:harry@sms.test", "pw-h", &[]);
    add_user(&config, ALICE, "secret", &[]);
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let mut alice = Ua::new(ALICE, "secret", sip);

    // No rule of harry's decides alice: pending (the default "confirm").
    let r = subscribe(&mut alice, "sip:harry@sms.test");
    assert_eq!(r.status(), 202, "{r:?}\n{}", daemon.log());
    let n = notified(&alice, "pending NOTIFY");
    let state = n.header("Subscription-State").unwrap_or_default();
    assert!(state.starts_with("pending;expires="), "{n:?}");
    assert_eq!(n.body, "", "{n:?}");

    // Harry blocks her: the waiting subscription ends, rejected.
    let sid = imps_login(imps, "wv:harry@sms.test", "pw-h");
    let a = post(
        imps,
        &request(
            Some(&sid),
            "<BlockEntity-Request><BlockList><AddList><UserID>sip:alice@sms.test</UserID>\
             </AddList></BlockList></BlockEntity-Request>",
        ),
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let n = notified(&alice, "rejected NOTIFY");
    assert_eq!(
        n.header("Subscription-State"),
        Some("terminated;reason=rejected"),
        "{n:?}\n{}",
        daemon.log()
    );
    assert_eq!(n.body, "");
    // …and a new SUBSCRIBE is refused.
    assert_eq!(subscribe(&mut alice, "sip:harry@sms.test").status(), 403);
}

#[test]
fn a_sip_presentity_sees_its_watchers_and_its_rules_decide() {
    let dir = TempDir::new("sip-auth-winfo");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    add_user(&config, ERIN, "pw-e", &[]);
    add_user(&config, ALICE, "secret", &[]);
    let daemon = Daemon::start(dir.path(), config.clone(), db, sip, status);
    let mut erin = Ua::new(ERIN, "pw-e", sip);
    let mut alice = Ua::new(ALICE, "secret", sip);
    // Erin is online (registered), so "offline" is a lie told on purpose.
    let r = erin.request("REGISTER", "sip:sms.test", &[("Expires", "600")], "");
    assert_eq!(r.status(), 200, "{r:?}");

    let r = erin.request(
        "SUBSCRIBE",
        ERIN,
        &[
            ("Event", "presence.winfo"),
            ("Accept", "application/watcherinfo+xml"),
            ("Expires", "600"),
        ],
        "",
    );
    assert_eq!(r.status(), 200, "{r:?}\n{}", daemon.log());
    let n = notified(&erin, "full watcherinfo");
    assert_eq!(n.header("Event"), Some("presence.winfo"));
    assert_eq!(
        n.header("Content-Type"),
        Some("application/watcherinfo+xml")
    );
    assert!(
        n.body.contains("version=\"0\" state=\"full\""),
        "{}",
        n.body
    );
    assert_valid_watcherinfo(&dir, &n.body);

    // Alice asks: she waits, erin hears of her.
    let r = subscribe(&mut alice, ERIN);
    assert_eq!(r.status(), 202, "{r:?}\n{}", daemon.log());
    let n = notified(&alice, "pending NOTIFY");
    assert!(
        n.header("Subscription-State")
            .is_some_and(|s| s.starts_with("pending;")),
        "{n:?}"
    );
    assert_eq!(n.body, "");
    let w = notified(&erin, "partial watcherinfo");
    assert!(
        w.body.contains("version=\"1\" state=\"partial\""),
        "{}",
        w.body
    );
    assert!(
        w.body.contains("status=\"pending\" event=\"subscribe\"")
            && w.body.contains(">sip:alice@sms.test</watcher>"),
        "{}",
        w.body
    );
    assert_valid_watcherinfo(&dir, &w.body);

    // Erin's rules, as the operator writes them.
    let rule = |handling: &str| {
        cli(
            &config,
            &[
                "users",
                "presence-rules",
                ERIN,
                "--rule",
                &format!("a {handling} {ALICE}"),
            ],
            None,
        );
    };
    rule("polite-block");
    assert_eq!(subscribe(&mut alice, ERIN).status(), 200);
    let n = notified(&alice, "polite-blocked NOTIFY");
    assert!(n.body.contains("<basic>closed</basic>"), "{}", n.body);
    rule("allow");
    assert_eq!(subscribe(&mut alice, ERIN).status(), 200);
    let n = notified(&alice, "allowed NOTIFY");
    assert!(n.body.contains("<basic>open</basic>"), "{}", n.body);
    rule("block");
    assert_eq!(subscribe(&mut alice, ERIN).status(), 403);

    // Nobody reads another's watchers.
    let r = alice.request(
        "SUBSCRIBE",
        ERIN,
        &[("Event", "presence.winfo"), ("Expires", "600")],
        "",
    );
    assert_eq!(r.status(), 403);
}

/// What `session` is pushed next of primitive `name`, polling as a client
/// does (the CSP's polling mode) for at most 10 s.
fn imps_poll_for(addr: SocketAddr, session: &str, name: &str) -> Option<Answer> {
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        let a = post(addr, &request(Some(session), "<Polling-Request/>"));
        if a.empty {
            std::thread::sleep(Duration::from_millis(200));
        } else if a.primitive.name == name {
            return Some(a);
        }
    }
    None
}

/// Both flows of the reactive authorisation across front ends, against the
/// daemon: a SIP watcher of an IMPS presentity waits until the presentity
/// accepts with the CSP's answer, then gets the full PIDF; an IMPS watcher
/// of a SIP presentity waits until the presentity allows them in its
/// pres-rules over XCAP (curl), then gets a PresenceNotification.
#[test]
fn pending_watchers_become_active_when_the_presentity_on_the_other_front_end_allows() {
    let peers = common::peer_available(
        "curl",
        "apt-get install curl",
        common::command_succeeds("curl", &["--version"]),
    );
    if !peers {
        return;
    }
    let dir = TempDir::new("sip-auth-both-flows");
    let sim = SimProcess::start(dir.path(), &[]);
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        &format!("[imps]\nlisten = \"{imps}\"\n"),
    );
    add_user(&config, "wv:harry@sms.test", "pw-h", &[]);
    add_user(&config, ALICE, "secret", &[]);
    add_user(&config, ERIN, "pw-e", &[]);
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let sid = imps_login(imps, "wv:harry@sms.test", "pw-h");

    // SIP alice → IMPS harry: pending, harry is asked, accepts, alice sees him.
    let mut alice = Ua::new(ALICE, "secret", sip);
    let r = subscribe(&mut alice, "sip:harry@sms.test");
    assert_eq!(r.status(), 202, "{r:?}\n{}", daemon.log());
    let n = notified(&alice, "pending NOTIFY");
    assert!(
        n.header("Subscription-State")
            .is_some_and(|s| s.starts_with("pending;")),
        "{n:?}"
    );
    assert_eq!(n.body, "");
    let asked = imps_poll_for(imps, &sid, "Notification-Request")
        .or_else(|| imps_poll_for(imps, &sid, "PresenceAuth-Request"))
        .expect("harry is asked about alice");
    assert!(asked.raw.contains("alice@sms.test"), "{}", asked.raw);
    let a = post(
        imps,
        &request(
            Some(&sid),
            &format!(
                "<PresenceAuth-User><UserID>{ALICE}</UserID><Acceptance>T</Acceptance>\
                 </PresenceAuth-User>"
            ),
        ),
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let n = notified(&alice, "active NOTIFY");
    assert!(
        n.header("Subscription-State")
            .is_some_and(|s| s.starts_with("active")),
        "{n:?}\n{}",
        daemon.log()
    );
    assert!(n.body.contains("<basic>open</basic>"), "{}", n.body);
    assert!(
        n.body.contains("entity=\"sip:harry@sms.test\""),
        "{}",
        n.body
    );

    // IMPS harry → SIP erin (registered): pending, nothing shown; erin
    // allows him in her pres-rules over XCAP; harry is notified.
    let mut erin = Ua::new(ERIN, "pw-e", sip);
    let r = erin.request("REGISTER", "sip:sms.test", &[("Expires", "600")], "");
    assert_eq!(r.status(), 200, "{r:?}");
    let a = post(
        imps,
        &request(
            Some(&sid),
            &format!(
                "<SubscribePresence-Request>{}</SubscribePresence-Request>",
                imps_support::user(ERIN)
            ),
        ),
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = post(
        imps,
        &request(
            Some(&sid),
            &format!(
                "<GetPresence-Request>{}</GetPresence-Request>",
                imps_support::user(ERIN)
            ),
        ),
    );
    assert!(
        !a.raw.contains("<Presence>"),
        "pending shows nothing: {}",
        a.raw
    );
    let rules = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <cp:ruleset xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
        xmlns=\"urn:ietf:params:xml:ns:pres-rules\">\
        <cp:rule id=\"harry\"><cp:conditions><cp:identity><cp:one id=\"wv:harry@sms.test\"/>\
        </cp:identity></cp:conditions><cp:actions><sub-handling>allow</sub-handling>\
        </cp:actions></cp:rule></cp:ruleset>";
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-g",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["--digest", "-u", "erin:pw-e", "-X", "PUT"])
        .args(["-H", "Content-Type: application/auth-policy+xml"])
        .args(["--data-binary", rules])
        .arg(format!(
            "http://{imps}/xcap-root/pres-rules/users/{ERIN}/index"
        ))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        code == "201" || code == "200",
        "XCAP PUT: {code}\n{}",
        daemon.log()
    );
    let n = imps_poll_for(imps, &sid, "PresenceNotification-Request")
        .expect("harry is told erin's presence");
    assert!(
        n.raw.contains(ERIN) || n.raw.contains("erin@sms.test"),
        "{}",
        n.raw
    );
    assert_eq!(
        n.text(&[
            "Presence",
            "PresenceSubList",
            "OnlineStatus",
            "PresenceValue"
        ]),
        Some("T"),
        "{}",
        n.raw
    );
}
