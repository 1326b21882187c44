//! The status port as someone on the network would meet it: a configured
//! bearer token is required for `/status` and `/metrics`, recipients' numbers
//! and IMSIs are masked unless asked for, and a status port reachable from
//! other hosts without a token is refused at start.

mod daemon_support;
mod sim_support;

use std::process::Command;
use std::time::Duration;

use daemon_support::{BIN, DOMAIN, Daemon, Ua, add_user, cli, write_config};
use sim_support::{SimProcess, TempDir, eventually};

const DEAD: &str = "+4915199999999";

#[test]
fn the_token_is_required_and_numbers_are_masked_unless_asked() {
    let dir = TempDir::new("status-token");
    let sim = SimProcess::start(dir.path(), &["--phone", &format!("{DEAD}=unreachable")]);
    let (config, db, sip, status) =
        write_config(dir.path(), &[&sim.port], "[status]\ntoken = \"t0k-3n\"\n");
    // write_config wrote its own [status] listen first; the token joins it.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replacen("[status]\ntoken = \"t0k-3n\"\n", "", 1)
        .replacen(
            &format!("[status]\nlisten = \"{status}\"\n"),
            &format!("[status]\nlisten = \"{status}\"\ntoken = \"t0k-3n\"\n"),
            1,
        );
    std::fs::write(&config, text).unwrap();
    add_user(
        &config,
        &format!("sip:alice@{DOMAIN}"),
        "secret",
        &[(DEAD, "Nobody", "dead")],
    );
    let daemon = Daemon::start(dir.path(), config.clone(), db, sip, status);

    for path in ["/status", "/metrics"] {
        let (head, _) = daemon.status_get(path, None).expect("answer");
        assert!(head.starts_with("HTTP/1.0 401"), "{path}: {head}");
        assert!(head.contains("www-authenticate: Bearer"), "{path}: {head}");
        let (head, _) = daemon.status_get(path, Some("wrong")).expect("answer");
        assert!(head.starts_with("HTTP/1.0 401"), "{path}: {head}");
        let (head, _) = daemon.status_get(path, Some("t0k-3n")).expect("answer");
        assert!(head.starts_with("HTTP/1.0 200"), "{path}: {head}");
    }

    // A message to an unreachable phone fails and shows in recent failures.
    let mut ua = Ua::new(&format!("sip:alice@{DOMAIN}"), "secret", sip);
    assert_eq!(
        ua.message(&format!("sip:dead@{DOMAIN}"), "text/plain", "hello?")
            .status(),
        202
    );
    // Objects, not pairs: every outbox state by name; modem values not stale.
    let s = daemon.status_json().expect("status");
    assert!(s["queue"]["queued"].is_u64(), "{s}");
    assert!(s["queue"]["delivered"].is_u64(), "{s}");
    assert_eq!(s["modems"][0]["stale"], false, "{s}");

    let failures = eventually(Duration::from_secs(30), || {
        let s = daemon.status_json()?;
        let f = s["recent_failures"].as_array()?.clone();
        (!f.is_empty()).then_some(f)
    })
    .expect("a recent failure");
    assert_eq!(failures[0]["recipient"], "+49151****9999", "{failures:?}");
    assert!(failures[0]["at"].is_string() && failures[0]["error"].is_string());
    let imsi = daemon.status_json().unwrap()["modems"][0]["imsi"].clone();
    assert!(imsi.as_str().is_some_and(|i| i.contains("****")), "{imsi}");
    let (_, full) = daemon
        .status_get("/status?unmask=1", Some("t0k-3n"))
        .expect("answer");
    assert!(full.contains(DEAD), "{full}");

    // The command line sends the configured token.
    let out = cli(&config, &["status", "--json"], None);
    assert!(out.contains("+49151****9999"), "{out}");
    let out = cli(&config, &["status", "--json", "--unmask"], None);
    assert!(out.contains(DEAD), "{out}");
}

#[test]
fn a_status_port_open_to_other_hosts_needs_a_token() {
    let dir = TempDir::new("status-open");
    let config = dir.path().join("smsbridge.toml");
    std::fs::write(&config, "[status]\nlisten = \"0.0.0.0:8426\"\n").unwrap();
    let check = || {
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["config", "check"])
            .output()
            .expect("run")
    };
    let out = check();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "status.listen \"0.0.0.0:8426\" is reachable from other hosts: set status.token"
        ),
        "{err}"
    );
    std::fs::write(
        &config,
        "[status]\nlisten = \"0.0.0.0:8426\"\ntoken = \"long-random-token\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
