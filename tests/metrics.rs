//! `/metrics` after a message round trip: the counters moved (SMS sent and
//! received by modem, the status report by outcome, the reply delivered to the
//! SIP user, a refusal by cause, the latency histograms), and promtool (Debian
//! `prometheus`) accepts the text.

mod common;
mod daemon_support;
mod sim_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon_support::{DOMAIN, Daemon, Ua, add_user, write_config};
use sim_support::{SimProcess, TempDir, eventually};

const BOB: &str = "+4915112345678";

fn scrape(daemon: &Daemon) -> String {
    let (head, body) = daemon.status_get("/metrics", None).expect("an answer");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    body
}

fn value(metrics: &str, sample: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn counters_move_after_a_round_trip_and_promtool_accepts_them() {
    let dir = TempDir::new("metrics");
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--send-delay",
            "200ms",
            "--report-delay",
            "300ms",
            "--reply-delay",
            "300ms",
        ],
    );
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    add_user(
        &config,
        &format!("sip:alice@{DOMAIN}"),
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let before = scrape(&daemon);
    assert_eq!(value(&before, "smsbridge_up"), Some(1.0), "{before}");
    assert!(
        value(&before, "smsbridge_start_time_seconds").is_some_and(|t| t > 1.7e9),
        "{before}"
    );

    let mut ua = Ua::new(&format!("sip:alice@{DOMAIN}"), "secret", sip);
    assert_eq!(ua.register(600).status(), 200);
    let r = ua.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "ping");
    assert_eq!(r.status(), 202, "{r:?}");
    // The phone echoes: the reply reaches alice.
    let reply = ua
        .expect_request("MESSAGE", Duration::from_secs(30))
        .expect("the reply");
    ua.answer(&reply, 200, "OK");
    // A refusal: a number that is not a contact of alice's.
    let r = ua.message(&format!("sip:nobody@{DOMAIN}"), "text/plain", "hi");
    assert!(r.status() >= 400, "{r:?}");

    let after = eventually(Duration::from_secs(30), || {
        let m = scrape(&daemon);
        (value(&m, "smsbridge_status_reports_total{outcome=\"delivered\"}") == Some(1.0)
            && value(&m, "smsbridge_im_delivered_total{front_end=\"sip\"}") == Some(1.0))
        .then_some(m)
    })
    .unwrap_or_else(|| scrape(&daemon));
    for (sample, want) in [
        ("smsbridge_status_reports_total{outcome=\"delivered\"}", 1.0),
        ("smsbridge_im_delivered_total{front_end=\"sip\"}", 1.0),
        ("smsbridge_submit_latency_seconds_count", 1.0),
        ("smsbridge_sms_sent_total{modem=\"sim0\"}", 1.0),
        ("smsbridge_sms_received_total{modem=\"sim0\"}", 1.0),
        ("smsbridge_im_delivery_latency_seconds_count", 1.0),
    ] {
        assert_eq!(value(&after, sample), Some(want), "{sample} in\n{after}");
    }
    assert!(
        after.lines().any(
            |l| l.starts_with("smsbridge_refusals_total{front_end=\"sip\",cause=")
                && l.ends_with(" 1")
        ),
        "{after}"
    );

    let found = common::command_succeeds("promtool", &["--version"]);
    if !common::peer_available("promtool", "apt-get install prometheus", found) {
        return;
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(after.as_bytes())
        .expect("write");
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{after}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
