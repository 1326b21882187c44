//! A test skipped for a missing peer says so in the output of plain
//! `cargo test`, not only with `--nocapture`: this binary runs itself on one
//! test whose peer is missing and reads what it printed.

mod common;

use std::process::Command;

/// Skips: its peer does not exist. Run by the test below, in a child process
/// (its `SMSBRIDGE_REQUIRE_PEERS` removed, so the skip is not a failure).
#[test]
fn needs_a_peer_that_is_not_installed() {
    if std::env::var_os("SMSBRIDGE_PEER_SKIPS_CHILD").is_none() {
        return;
    }
    let found = common::command_succeeds("smsbridge-no-such-peer", &["--version"]);
    assert!(!common::peer_available(
        "no-such-peer",
        "apt-get install nothing",
        found
    ));
}

/// Skips: the peer exists but `SMSBRIDGE_SKIP_PEERS` lists it.
#[test]
fn needs_a_peer_that_is_listed_to_skip() {
    if std::env::var_os("SMSBRIDGE_PEER_SKIPS_CHILD").is_none() {
        return;
    }
    assert!(!common::peer_available(
        "sh",
        "apt-get install dash",
        common::command_succeeds("sh", &["-c", "true"])
    ));
}

#[test]
fn plain_cargo_test_output_shows_what_was_skipped_and_why() {
    let exe = std::env::current_exe().expect("this test binary");
    // As `cargo test` runs it: output captured, no --nocapture.
    let out = Command::new(exe)
        .args(["needs_a_peer", "--test-threads=1"])
        .env("SMSBRIDGE_PEER_SKIPS_CHILD", "1")
        .env("SMSBRIDGE_SKIP_PEERS", "sh")
        .env_remove(common::REQUIRE_PEERS_ENV)
        .output()
        .expect("run the test binary");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "skipping peer_skips::needs_a_peer_that_is_listed_to_skip: sh listed in SMSBRIDGE_SKIP_PEERS (apt-get install dash)",
            "skipping peer_skips::needs_a_peer_that_is_not_installed: no-such-peer not installed (apt-get install nothing)",
        ]
    );
}
