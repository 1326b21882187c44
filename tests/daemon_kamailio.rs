//! Kamailio (Debian `kamailio`) as the upstream SIP server, with the example
//! configuration shipped in `examples/kamailio/kamailio.cfg`: a user registered
//! on Kamailio messages an SMS-only subscriber through smsbridge, and the SMS
//! reply comes back to that user through Kamailio.

mod common;
mod daemon_support;
mod kamailio_support;
mod sim_support;

use std::time::Duration;

use daemon_support::{Daemon, Ua, add_user, free_port, write_config};
use kamailio_support::Kamailio;
use sim_support::{SimProcess, TempDir, eventually};

const BOB: &str = "+4915112345678";

#[test]
fn user_on_kamailio_messages_a_subscriber_and_gets_the_reply() {
    if !common::peer_available(
        "kamailio",
        "apt-get install kamailio",
        common::command_succeeds("sh", &["-c", "command -v kamailio"]),
    ) {
        return;
    }
    let dir = TempDir::new("daemon-kamailio");
    let sim = SimProcess::start(
        dir.path(),
        &["--send-delay", "200ms", "--reply-delay", "500ms"],
    );
    let kam_port = free_port();
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        "[bridge]\nsender_prefix = \"\"\n\n",
    );
    // Trust Kamailio, and send replies through it.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[status]",
        &format!("trusted_peers = [\"127.0.0.1\"]\n\n[sip.upstream]\nproxy = \"sip:127.0.0.1:{kam_port}\"\n\n[status]"),
    );
    std::fs::write(&config, text).unwrap();
    add_user(
        &config,
        "sip:alice@sms.test",
        "unused-with-kamailio",
        &[(BOB, "Bob", "bob")],
    );
    let d = Daemon::start(dir.path(), config, db, sip, status);

    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/kamailio/kamailio.cfg"
    ))
    .unwrap();
    let cfg = example
        .replace(
            "!KAM_LISTEN!udp:127.0.0.1:5062!g",
            &format!("!KAM_LISTEN!udp:127.0.0.1:{kam_port}!g"),
        )
        .replace("!KAM_DOMAIN!sms.example.com!g", "!KAM_DOMAIN!sms.test!g")
        .replace(
            "!SMSBRIDGE_URI!sip:127.0.0.1:5070!g",
            &format!("!SMSBRIDGE_URI!sip:{sip}!g"),
        );
    assert_ne!(
        cfg, example,
        "the example's defines changed; update this test"
    );
    let cfg_path = dir.path().join("kamailio.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let kamailio = Kamailio::start(dir.path(), "kamailio", &cfg_path, 32, 4);
    let kam = format!("127.0.0.1:{kam_port}").parse().unwrap();
    let mut ua = Ua::new("sip:alice@sms.test", "", kam);
    // Kamailio takes a moment to listen: retry the REGISTER quickly until it answers.
    ua.timeout = Duration::from_millis(500);
    let registered = eventually(Duration::from_secs(15), || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ua.register(600).status()))
            .ok()
            .filter(|s| *s == 200)
    });
    assert!(registered.is_some(), "{}", kamailio.log_text());
    ua.timeout = Duration::from_secs(10);
    let r = ua.message(&format!("sip:{BOB}@sms.test"), "text/plain", "via kamailio");
    assert_eq!(r.status(), 202, "{r:?}\n{}", d.log());
    assert!(daemon_support::wait_sent(&sim, 1, Duration::from_secs(20)));
    assert_eq!(sim.sent()[0].text.as_deref(), Some("via kamailio"));
    // The echo comes back through Kamailio to alice's registered contact.
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no reply:\n{}\n{}", d.log(), kamailio.log_text()));
    ua.answer(&m, 200, "OK");
    assert_eq!(m.body, "via kamailio");
    assert!(
        m.header("From")
            .unwrap()
            .contains(&format!("sip:{BOB}@sms.test")),
        "{m:?}"
    );
    let delivered = eventually(Duration::from_secs(10), || {
        (d.status_json()?["inbound_pending"] == 0).then_some(())
    });
    assert!(delivered.is_some());
}
