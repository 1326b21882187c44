//! baresip (Debian `baresip-core`), a real softphone, registered to the daemon:
//! it messages a simulated phone and receives the phone's echo reply. Its SIP
//! trace (`-s`) shows what it received.

mod common;
mod daemon_support;
mod sim_support;

use std::time::Duration;

use daemon_support::{Daemon, add_user, start_baresip, write_config};
use sim_support::{SimProcess, TempDir, eventually, wait_for};

const BOB: &str = "+4915112345678";

#[test]
fn baresip_messages_a_phone_and_gets_the_reply() {
    if !common::peer_available(
        "baresip",
        "apt-get install baresip-core",
        common::command_succeeds("sh", &["-c", "command -v baresip"]),
    ) {
        return;
    }
    let dir = TempDir::new("daemon-baresip");
    let sim = SimProcess::start(
        dir.path(),
        &["--send-delay", "200ms", "--reply-delay", "500ms"],
    );
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    add_user(
        &config,
        "sip:alice@sms.test",
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    let d = Daemon::start(dir.path(), config, db, sip, status);

    let (mut child, log) = start_baresip(
        dir.path(),
        sip,
        "sip:alice@sms.test",
        "secret",
        &format!("\"Bob\" <sip:{BOB}@sms.test>"),
        &["/contact_next", "/message hello from baresip"],
        10,
    );
    // The SMS leaves with alice's name in front; the phone echoes it back.
    let sent = eventually(Duration::from_secs(20), || {
        sim.sent().iter().find_map(|m| m.text.clone())
    });
    assert_eq!(
        sent.as_deref(),
        Some("alice: hello from baresip"),
        "{}",
        d.log()
    );
    let _ = wait_for(&mut child, Duration::from_secs(20));
    let trace = std::fs::read_to_string(&log).unwrap_or_default();
    // The reply is sent to baresip's registered Contact.
    assert!(
        trace.contains("MESSAGE sip:alice-"),
        "baresip got no MESSAGE:\n{trace}"
    );
    assert!(
        trace.contains(&format!("From: \"Bob\" <sip:{BOB}@sms.test>")),
        "{trace}"
    );
    assert!(
        trace.contains("Content-Length: 25\r\n\r\nalice: hello from baresip"),
        "{trace}"
    );
    assert!(trace.contains(&format!("sip:{BOB}@sms.test")), "{trace}");
    // Delivered: nothing waits in the inbox.
    let st = d.status_json().unwrap();
    assert_eq!(st["inbound_pending"], 0, "{st}");
}
