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
mod sim_support;

use std::time::Duration;

use daemon_support::{SipMsg, Ua};
use federation_support::{Baresip, JANE, OtherDomain, traced_pidf};
use sim_support::TempDir;

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

/// The next NOTIFY for the watcher `ua`, answered 200; other requests (the
/// ones baresip sends to the peer's address) are answered 200 and kept.
fn next_notify(ua: &Ua, others: &mut Vec<SipMsg>, what: &str, domain: &OtherDomain) -> SipMsg {
    loop {
        let m = ua
            .recv(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("no NOTIFY {what}:\n{}", domain.log_text()));
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
fn notify_with(ua: &Ua, others: &mut Vec<SipMsg>, basic: &str, domain: &OtherDomain) -> SipMsg {
    loop {
        let n = next_notify(ua, others, basic, domain);
        if n.body.contains(&format!("<basic>{basic}</basic>")) {
            return n;
        }
    }
}

/// The second domain alone: a watcher at the peer's address subscribes to
/// Jane through her Kamailio and is notified `open` once baresip publishes,
/// `closed` when it goes offline and `open` again; the peer's MESSAGE reaches
/// baresip, and baresip's MESSAGE and SUBSCRIBE for the peer's domain come to
/// the peer's address.
#[test]
fn otherdomain_serves_janes_presence_and_messages() {
    if !federation_support::peers_available() {
        return;
    }
    let dir = TempDir::new("federation-kamailio");
    // Harry's user agent stands where smsbridge will be (127.0.0.1).
    let mut harry = Ua::new("sip:harry@sms.test", "", "127.0.0.1:9".parse().unwrap());
    let domain = OtherDomain::start(dir.path(), "sms.test", harry.local());
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
    let r = subscribe(&mut harry);
    assert_eq!(r.status(), 200, "{r:?}\n{}", domain.log_text());
    let mut others = Vec::new();
    let n = next_notify(&harry, &mut others, "at first", &domain);
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
    let open = notify_with(&harry, &mut others, "open", &domain);
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
    capture("kamailio-notify-open.xml", &open.body);
    assert_eq!(open.body, fixture("kamailio-notify-open.xml"));

    assert!(jane.command("presence_offline").contains("\"ok\":true"));
    let closed = notify_with(&harry, &mut others, "closed", &domain);
    capture("kamailio-notify-closed.xml", &closed.body);
    assert_eq!(closed.body, fixture("kamailio-notify-closed.xml"));
    assert!(jane.command("presence_online").contains("\"ok\":true"));
    notify_with(&harry, &mut others, "open", &domain);

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
    let gone = next_notify(&harry, &mut others, "after the withdrawal", &domain);
    // Kamailio tells the watchers `closed` in a body of its own making.
    assert_eq!(gone.header("Content-Type"), Some("application/pidf+xml"));
    capture("kamailio-notify-withdrawn.xml", &gone.body);
    assert_eq!(gone.body, fixture("kamailio-notify-withdrawn.xml"));
}
