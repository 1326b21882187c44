//! The daemon as a process on loopback, with the simulated modem on a PTY and a
//! SIP user agent on UDP: IM → SMS → echo reply → IM, delivery notifications,
//! presence, errors, store and forward, and a SIGKILL in the middle.

mod daemon_support;
mod sim_support;

use std::time::Duration;

use daemon_support::{DOMAIN, Daemon, SipMsg, Ua, add_user, cli, cpim, next_imdn, write_config};
use sim_support::{SimProcess, TempDir, eventually};

const BOB: &str = "+4915112345678";
const DEAD: &str = "+4915199999999";

struct Setup {
    _dir: TempDir,
    sim: SimProcess,
    daemon: Daemon,
}

fn setup(name: &str, extra_config: &str) -> Setup {
    let dir = TempDir::new(name);
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--send-delay",
            "300ms",
            "--report-delay",
            "500ms",
            "--reply-delay",
            "700ms",
            "--phone",
            &format!("{DEAD}=unreachable"),
        ],
    );
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], extra_config);
    add_user(
        &config,
        "sip:alice@sms.test",
        "secret",
        &[(BOB, "Bob", "bob"), (DEAD, "Nobody", "dead")],
    );
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    Setup {
        _dir: dir,
        sim,
        daemon,
    }
}

fn alice(s: &Setup) -> Ua {
    Ua::new("sip:alice@sms.test", "secret", s.daemon.sip)
}

#[test]
fn message_goes_out_as_sms_and_the_reply_comes_back() {
    let s = setup("daemon-roundtrip", "");
    let mut ua = alice(&s);
    assert_eq!(ua.register(600).status(), 200);
    let r = ua.message(
        &format!("sip:bob@{DOMAIN}"),
        "text/plain;charset=UTF-8",
        "Hi Bob 😁, lunch?",
    );
    assert_eq!(r.status(), 202, "{r:?}\n{}", s.daemon.log());
    assert!(daemon_support::wait_sent(
        &s.sim,
        1,
        Duration::from_secs(20)
    ));
    let sent = s.sim.sent();
    assert_eq!(sent[0].to, BOB);
    assert_eq!(sent[0].text.as_deref(), Some("alice: Hi Bob 😁, lunch?"));
    assert!(sent[0].report, "status report requested");
    // The phone echoes; the reply reaches alice's registered contact.
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("reply as MESSAGE");
    assert!(
        m.header("From")
            .unwrap()
            .contains(&format!("sip:{BOB}@{DOMAIN}")),
        "{m:?}"
    );
    assert!(m.header("From").unwrap().contains("Bob"), "{m:?}");
    assert_eq!(m.body, "alice: Hi Bob 😁, lunch?");
    ua.answer(&m, 200, "OK");
    // The outbox row ends delivered (every part's status report said so).
    let delivered = eventually(Duration::from_secs(20), || {
        let q = cli(&s.daemon.config, &["queue", "list", "--json"], None);
        q.contains("\"delivered\"").then_some(q)
    });
    assert!(
        delivered.is_some(),
        "{}",
        cli(&s.daemon.config, &["queue", "list"], None)
    );
}

/// SUBSCRIBEs `ua` to the presence of `uri` (accepted: 200) and returns the
/// first NOTIFY, answered 200.
fn subscribed(ua: &mut Ua, uri: &str) -> SipMsg {
    let r = ua.request(
        "SUBSCRIBE",
        uri,
        &[
            ("Event", "presence"),
            ("Accept", "application/pidf+xml"),
            ("Expires", "600"),
        ],
        "",
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let n = ua
        .expect_request("NOTIFY", Duration::from_secs(10))
        .expect("NOTIFY");
    ua.answer(&n, 200, "OK");
    n
}

fn inject(s: &Setup, from: &str, text: &str) {
    let r = s.sim.ask(&smsbridge::sim::ControlRequest::Inject {
        from: from.into(),
        text: text.into(),
        order: Some("reverse".into()),
    });
    assert!(r.ok, "{r:?}");
}

/// The text of each element of an XML document, by local name.
fn xml_elements(xml: &str) -> Vec<(String, String)> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(e.local_name().as_ref().to_owned()),
            Event::Empty(e) => out.push((e.local_name().as_ref().to_owned(), String::new())),
            Event::Text(t) => {
                let text = t.xml10_content().trim().to_owned();
                if let (Some(top), false) = (stack.last(), text.is_empty()) {
                    out.push((top.clone(), text));
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

#[test]
fn delivery_notifications_for_delivered_and_failed() {
    let s = setup("daemon-imdn", "");
    let mut ua = alice(&s);
    assert_eq!(ua.register(600).status(), 200);
    let to = format!("sip:{BOB}@{DOMAIN}");
    assert_eq!(
        ua.message(
            &to,
            "message/cpim",
            &cpim(&to, "imdn-ok-1", "did you get this?")
        )
        .status(),
        202
    );
    let imdn = next_imdn(&ua);
    assert_eq!(imdn.header("Content-Type"), Some("message/cpim"));
    let xml = &imdn.body[imdn
        .body
        .find("<?xml")
        .or_else(|| imdn.body.find("<imdn"))
        .expect("xml")..];
    let el = xml_elements(xml);
    assert!(
        el.contains(&("message-id".into(), "imdn-ok-1".into())),
        "{el:?}"
    );
    assert!(el.iter().any(|(n, _)| n == "delivered"), "{el:?}");
    assert!(!el.iter().any(|(n, _)| n == "failed"), "{el:?}");

    let dead = format!("sip:dead@{DOMAIN}");
    assert_eq!(
        ua.message(&dead, "message/cpim", &cpim(&dead, "imdn-ko-2", "anyone?"))
            .status(),
        202
    );
    let imdn = next_imdn(&ua);
    let xml = &imdn.body[imdn.body.find("<imdn").expect("xml")..];
    let el = xml_elements(xml);
    assert!(
        el.contains(&("message-id".into(), "imdn-ko-2".into())),
        "{el:?}"
    );
    assert!(el.iter().any(|(n, _)| n == "failed"), "{el:?}");
    assert!(
        el.contains(&("recipient-uri".into(), format!("tel:{DEAD}"))) || imdn.body.contains(DEAD),
        "{el:?}"
    );
}

#[test]
fn presence_of_a_contact_is_sms_only() {
    let s = setup("daemon-presence", "");
    let mut ua = alice(&s);
    let bob = format!("sip:bob@{DOMAIN}");
    let notify = subscribed(&mut ua, &bob);
    assert!(
        notify
            .header("Subscription-State")
            .unwrap()
            .starts_with("active"),
        "{notify:?}"
    );
    assert_eq!(notify.header("Content-Type"), Some("application/pidf+xml"));
    let el = xml_elements(&notify.body);
    assert!(el.contains(&("basic".into(), "open".into())), "{el:?}");
    assert!(el.contains(&("note".into(), "SMS-only".into())), "{el:?}");
    assert!(
        el.contains(&("contact".into(), format!("tel:{BOB}"))),
        "{el:?}"
    );
    // Not in alice's contacts: refused.
    let r = ua.request(
        "SUBSCRIBE",
        &format!("sip:+4930123456@{DOMAIN}"),
        &[("Event", "presence"), ("Expires", "600")],
        "",
    );
    assert_eq!(r.status(), 403);
}

#[test]
fn refusals_carry_the_right_status() {
    let s = setup("daemon-errors", "[bridge]\nmax_parts = 2\n");
    let mut ua = alice(&s);
    let bob = format!("sip:bob@{DOMAIN}");
    let mut stranger = Ua::new("sip:alice@sms.test", "wrong", s.daemon.sip);
    assert_eq!(stranger.message(&bob, "text/plain", "hi").status(), 401);
    let r = ua.message(&bob, "image/png", "PNG");
    assert_eq!(r.status(), 415);
    assert!(r.header("Accept").unwrap().contains("text/plain"), "{r:?}");
    assert_eq!(
        ua.message(&format!("sip:nobody@{DOMAIN}"), "text/plain", "hi")
            .status(),
        404
    );
    // With the "alice: " prefix: 7 + 300 septets need 3 SMS, 7 + 299 fit in 2.
    assert_eq!(
        ua.message(&bob, "text/plain", &"x".repeat(300)).status(),
        413
    );
    assert_eq!(
        ua.message(&bob, "text/plain", &"x".repeat(299)).status(),
        202
    );
    let anon = ua.request(
        "MESSAGE",
        &bob,
        &[("Content-Type", "text/plain"), ("Privacy", "id")],
        "from nobody",
    );
    assert_eq!(anon.status(), 202);
    assert!(daemon_support::wait_sent(
        &s.sim,
        3,
        Duration::from_secs(20)
    ));
    // Privacy: id leaves the name out.
    assert!(
        s.sim
            .sent()
            .iter()
            .any(|m| m.text.as_deref() == Some("from nobody"))
    );
    assert_eq!(
        ua.request("OPTIONS", &format!("sip:{DOMAIN}"), &[], "")
            .status(),
        200
    );
}

#[test]
fn no_registered_modem_means_503() {
    let dir = TempDir::new("daemon-nomodem");
    let (config, db, sip, status) = write_config(dir.path(), &["/nonexistent/ttyUSB7"], "");
    add_user(
        &config,
        "sip:alice@sms.test",
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    let d = Daemon::start_unready(dir.path(), config, db, sip, status);
    let mut ua = Ua::new("sip:alice@sms.test", "secret", d.sip);
    let r = ua.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "hi");
    assert_eq!(r.status(), 503, "{r:?}");
    assert!(r.header("Retry-After").is_some());
    let st = d.status_json().unwrap();
    assert!(
        st["modems"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot open /nonexistent/ttyUSB7"),
        "{st}"
    );
}

#[test]
fn replies_wait_for_an_unregistered_user_and_follow_when_they_register() {
    let s = setup("daemon-saf", "");
    // alice wrote to bob before (so replies route to her), then went offline.
    let mut ua = alice(&s);
    assert_eq!(
        ua.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "ping")
            .status(),
        202
    );
    assert!(daemon_support::wait_sent(
        &s.sim,
        1,
        Duration::from_secs(20)
    ));
    // The echo and one more SMS arrive while she is not registered: kept.
    inject(&s, BOB, "are you there? 🤔");
    let kept = eventually(Duration::from_secs(20), || {
        (s.daemon.status_json()?["inbound_pending"].as_u64()? >= 2).then_some(())
    });
    assert!(kept.is_some(), "{}", s.daemon.log());
    assert_eq!(ua.register(600).status(), 200);
    let mut got = Vec::new();
    while got.len() < 2 {
        let m = ua
            .expect_request("MESSAGE", Duration::from_secs(20))
            .expect("delivered on register");
        ua.answer(&m, 200, "OK");
        got.push(m.body);
    }
    got.sort();
    assert_eq!(got, ["alice: ping", "are you there? 🤔"]);
    // Nothing is delivered twice.
    assert!(
        ua.expect_request("MESSAGE", Duration::from_secs(3))
            .is_none()
    );
}

#[test]
fn long_emoji_text_round_trips_through_several_sms() {
    let s = setup("daemon-multipart", "");
    let mut ua = alice(&s);
    assert_eq!(ua.register(600).status(), 200);
    // 8 × 20 UTF-16 units + "alice: " = 167 units: three UCS-2 parts.
    let text = "Grüße aus Köln 🎉🍻 ".repeat(8);
    assert_eq!(
        ua.message(
            &format!("sip:bob@{DOMAIN}"),
            "text/plain;charset=utf-8",
            &text
        )
        .status(),
        202
    );
    assert!(daemon_support::wait_sent(
        &s.sim,
        3,
        Duration::from_secs(20)
    ));
    let sent = s.sim.sent();
    let joined: String = sent
        .iter()
        .map(|m| m.text.clone().unwrap_or_default())
        .collect();
    assert_eq!(joined, format!("alice: {text}"));
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("echo");
    ua.answer(&m, 200, "OK");
    assert_eq!(m.body, format!("alice: {text}"));
}

#[test]
fn sigkill_loses_no_accepted_message_and_sends_nothing_twice() {
    let mut s = setup("daemon-kill", "");
    let mut ua = alice(&s);
    // Under the default rate limit of 10 messages a minute.
    let n = 9;
    for i in 0..n {
        let r = ua.message(
            &format!("sip:bob@{DOMAIN}"),
            "text/plain",
            &format!("burst {i}"),
        );
        assert_eq!(r.status(), 202);
    }
    s.daemon.kill9();
    let sent_before = s.sim.sent().len();
    let d = &s.daemon;
    let restarted = Daemon::start(&d.dir, d.config.clone(), d.db.clone(), d.sip, d.status);
    // Every accepted message is sent once, or recorded as outcome unknown (the
    // one on the air at the kill, if any); none is lost, none is sent twice.
    let settled = eventually(Duration::from_secs(60), || {
        let q = cli(&restarted.config, &["queue", "list", "--json"], None);
        let v: serde_json::Value = serde_json::from_str(&q).ok()?;
        let rows = v.as_array()?;
        let open = rows
            .iter()
            .any(|m| matches!(m["state"].as_str(), Some("queued" | "sending")));
        (!open && rows.len() == n).then(|| rows.clone())
    })
    .expect("all messages settled");
    let texts: Vec<String> = s.sim.sent().iter().filter_map(|m| m.text.clone()).collect();
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), texts.len(), "sent twice: {texts:?}");
    for row in &settled {
        let text = row["text"].as_str().unwrap();
        let on_air = texts.iter().any(|t| t == text);
        let state = row["state"].as_str().unwrap();
        assert!(
            on_air || state == "failed" || state == "outcome_unknown",
            "{row}"
        );
    }
    assert!(texts.len() >= sent_before);
    drop(restarted);
}

#[test]
fn stop_opts_out_and_anonymity_can_be_forbidden() {
    let s = setup("daemon-stop", "[bridge]\nallow_anonymous = false\n");
    let mut ua = alice(&s);
    assert_eq!(ua.register(600).status(), 200);
    let bob = format!("sip:bob@{DOMAIN}");
    let anon = ua.request(
        "MESSAGE",
        &bob,
        &[("Content-Type", "text/plain"), ("Privacy", "id")],
        "who am I",
    );
    assert_eq!(anon.status(), 433, "{anon:?}");
    // Bob answers STOP: he is opted out, and alice sees his STOP.
    inject(&s, BOB, "STOP");
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("the STOP reaches alice");
    ua.answer(&m, 200, "OK");
    assert_eq!(m.body, "STOP");
    let r = ua.message(&bob, "text/plain", "sorry to hear");
    assert_eq!(r.status(), 403, "{r:?}");
    assert!(s.sim.sent().is_empty());
    // His presence follows: closed, and the note says why.
    let n = subscribed(&mut ua, &bob);
    assert!(n.body.contains("<basic>closed</basic>"), "{}", n.body);
    assert!(n.body.contains("opted out"), "{}", n.body);
}

#[test]
fn a_delivered_reply_is_not_delivered_again_after_sigkill() {
    let mut s = setup("daemon-kill-inbound", "");
    let mut ua = alice(&s);
    assert_eq!(ua.register(600).status(), 200);
    assert_eq!(
        ua.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "hello")
            .status(),
        202
    );
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("echo");
    ua.answer(&m, 200, "OK");
    inject(&s, BOB, "second reply");
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("second");
    ua.answer(&m, 200, "OK");
    assert_eq!(m.body, "second reply");
    let settled = eventually(Duration::from_secs(10), || {
        (s.daemon.status_json()?["inbound_pending"] == 0).then_some(())
    });
    assert!(settled.is_some());
    s.daemon.kill9();
    let d = &s.daemon;
    let restarted = Daemon::start(&d.dir, d.config.clone(), d.db.clone(), d.sip, d.status);
    let mut ua = alice(&s);
    assert_eq!(ua.register(600).status(), 200);
    // A new reply still comes; the old ones do not come again.
    inject(&s, BOB, "third reply");
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("third");
    ua.answer(&m, 200, "OK");
    assert_eq!(m.body, "third reply");
    assert!(
        ua.expect_request("MESSAGE", Duration::from_secs(3))
            .is_none()
    );
    drop(restarted);
}
