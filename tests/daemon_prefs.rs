//! The recipient's interworking preference end to end (3GPP TS 23.204, the
//! IP-SM-GW flow: an IM for an unregistered subscriber is delivered as SMS):
//! the daemon as a process with the simulated modem on a PTY and SIP user
//! agents on UDP. bob has a phone of his own and wants IMs as SMS while he
//! is offline; alice writes to him.

mod daemon_support;
mod sim_support;

use std::time::Duration;

use daemon_support::{DOMAIN, Daemon, Ua, add_user, cli, wait_sent, write_config};
use sim_support::{SimProcess, TempDir, eventually};
use smsbridge::pdu::{self, Pdu, TOA_INTERNATIONAL, Tpdu};

/// bob's own phone; it stays silent, the test sends its replies.
const BOB_PHONE: &str = "+491701234567";

struct Setup {
    _dir: TempDir,
    sim: SimProcess,
    daemon: Daemon,
}

/// alice and bob, SIP users with no contacts; bob's phone and his
/// preference set with the CLI as an operator would.
fn setup(name: &str) -> Setup {
    let dir = TempDir::new(name);
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--send-delay",
            "200ms",
            "--report-delay",
            "300ms",
            "--phone",
            &format!("{BOB_PHONE}=silent"),
        ],
    );
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    add_user(&config, &format!("sip:alice@{DOMAIN}"), "secret", &[]);
    add_user(&config, &format!("sip:bob@{DOMAIN}"), "secret", &[]);
    // A national number, as an operator might type it (country code 49).
    let shown = cli(
        &config,
        &[
            "users",
            "limits",
            &format!("sip:bob@{DOMAIN}"),
            "--phone",
            "0170 1234567",
            "--offline",
            "sms",
        ],
        None,
    );
    assert!(
        shown.ends_with(&format!("phone:       {BOB_PHONE}\noffline IMs: sms\n")),
        "{shown}"
    );
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    Setup {
        _dir: dir,
        sim,
        daemon,
    }
}

/// `(id, user_id, for_user_id)` of every outbox message, and bob's user id.
fn message_rows(s: &Setup) -> (Vec<(i64, i64, Option<i64>)>, i64) {
    let conn = rusqlite::Connection::open(&s.daemon.db).expect("open db");
    let bob: i64 = conn
        .query_row(
            "SELECT id FROM users WHERE sip_aor = ?1",
            [format!("sip:bob@{DOMAIN}")],
            |r| r.get(0),
        )
        .expect("bob");
    let mut stmt = conn
        .prepare("SELECT id, user_id, for_user_id FROM messages ORDER BY id")
        .expect("query");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    (rows, bob)
}

/// The SMS-SUBMIT the simulator got, decoded by our own decoder: its
/// destination and its text.
fn decoded(pdu_hex: &str) -> (u8, String, Option<String>, bool) {
    let raw = pdu::from_hex(pdu_hex).expect("hex");
    let Pdu {
        tpdu: Tpdu::Submit(submit),
        ..
    } = Pdu::decode(&raw).expect("a PDU")
    else {
        panic!("not an SMS-SUBMIT: {pdu_hex}");
    };
    (
        submit.destination.toa,
        submit.destination.value.trim_start_matches('+').to_owned(),
        submit.user_data.body.text(),
        submit.status_report_request,
    )
}

fn inject(s: &Setup, from: &str, text: &str) {
    let r = s.sim.ask(&smsbridge::sim::ControlRequest::Inject {
        from: from.into(),
        text: text.into(),
        order: None,
    });
    assert!(r.ok, "{r:?}");
}

#[test]
fn an_im_for_offline_bob_goes_to_his_phone_and_his_reply_comes_back_from_him() {
    let s = setup("prefs-offline");
    let mut alice = Ua::new(&format!("sip:alice@{DOMAIN}"), "secret", s.daemon.sip);
    assert_eq!(alice.register(600).status(), 200);
    // bob is not registered: his IM leaves as SMS to his phone, with
    // alice's name in front as for any IM → SMS.
    let r = alice.message(
        &format!("sip:bob@{DOMAIN}"),
        "text/plain;charset=UTF-8",
        "Free tonight?",
    );
    assert_eq!(r.status(), 202, "{r:?}\n{}", s.daemon.log());
    assert!(
        wait_sent(&s.sim, 1, Duration::from_secs(20)),
        "{}",
        s.daemon.log()
    );
    let sent = s.sim.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, BOB_PHONE);
    assert_eq!(sent[0].text.as_deref(), Some("alice: Free tonight?"));
    let (toa, digits, text, report) = decoded(&sent[0].pdu);
    assert_eq!(toa, TOA_INTERNATIONAL);
    assert_eq!(digits, "491701234567");
    assert_eq!(text.as_deref(), Some("alice: Free tonight?"));
    assert!(report, "status report requested");
    // The outbox row is alice's, for bob.
    let (rows, bob) = message_rows(&s);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].2, Some(bob), "{rows:?}");
    assert_ne!(rows[0].1, bob, "sent by alice");
    // bob answers from his phone: alice gets it as an IM from bob, not from
    // his number.
    inject(&s, BOB_PHONE, "Yes, 8pm 🍕");
    let m = alice
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("bob's reply as MESSAGE");
    alice.answer(&m, 200, "OK");
    let from = m.header("From").unwrap_or_default();
    assert!(from.contains(&format!("<sip:bob@{DOMAIN}>")), "{m:?}");
    assert!(!from.contains("491701234567"), "{m:?}");
    assert_eq!(m.body, "Yes, 8pm 🍕");
    // alice asks for privacy: her name stays out of the SMS.
    let r = alice.request(
        "MESSAGE",
        &format!("sip:bob@{DOMAIN}"),
        &[("Content-Type", "text/plain"), ("Privacy", "id")],
        "guess who",
    );
    assert_eq!(r.status(), 202, "{r:?}");
    assert!(wait_sent(&s.sim, 2, Duration::from_secs(20)));
    let sent = s.sim.sent();
    assert_eq!(sent[1].to, BOB_PHONE);
    assert_eq!(sent[1].text.as_deref(), Some("guess who"));
    let (rows, bob) = message_rows(&s);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].2, Some(bob), "{rows:?}");
    // Nothing was kept for bob as an IM.
    let st = s.daemon.status_json().expect("status");
    assert_eq!(st["inbound_pending"].as_u64(), Some(0), "{st}");
}

#[test]
fn registered_bob_gets_ims_as_ims_and_no_sms_leaves() {
    let s = setup("prefs-online");
    let mut bob = Ua::new(&format!("sip:bob@{DOMAIN}"), "secret", s.daemon.sip);
    assert_eq!(bob.register(600).status(), 200);
    let mut alice = Ua::new(&format!("sip:alice@{DOMAIN}"), "secret", s.daemon.sip);
    let r = alice.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "hi bob");
    assert!(matches!(r.status(), 200 | 202), "{r:?}\n{}", s.daemon.log());
    let m = bob
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("the IM as MESSAGE");
    bob.answer(&m, 200, "OK");
    assert!(
        m.header("From")
            .unwrap_or_default()
            .contains(&format!("sip:alice@{DOMAIN}")),
        "{m:?}"
    );
    assert_eq!(m.body, "hi bob");
    // Decided before the answer above: no outbox row, nothing to the phone.
    let (rows, _) = message_rows(&s);
    assert!(rows.is_empty(), "{rows:?}");
    let delivered = eventually(Duration::from_secs(10), || {
        let st = s.daemon.status_json()?;
        (st["inbound_pending"].as_u64()? == 0).then_some(())
    });
    assert!(delivered.is_some(), "{}", s.daemon.log());
    assert!(s.sim.sent().is_empty(), "{:?}", s.sim.sent());
}
