//! A flood against a daemon with a small in-flight bound (`[sip]
//! max_in_flight`): the excess is answered 503 with Retry-After at once,
//! retransmissions of a request being handled do not queue it twice, every
//! request that got a 202 has its row and no row lacks one, and the daemon
//! stops cleanly afterwards. Counts, not speed (that is `benches/overload.rs`).

mod daemon_support;
mod overload_support;
mod sim_support;

use std::time::Duration;

use overload_support::{Pace, offer, start_flood, texts_in_db};
use sim_support::TempDir;

const REQUESTS: usize = 400;

#[test]
fn a_flood_beyond_the_bound_gets_503_loses_nothing_and_stops_cleanly() {
    let dir = TempDir::new("overload-flood");
    // A batch waits 50 ms for company: the first requests stay in flight
    // while the burst arrives, so the bound of 4 is met whatever the speed.
    let mut flood = start_flood(
        dir.path(),
        "max_in_flight = 4",
        "group_commit_max = 8\ngroup_commit_wait = \"50ms\"",
        100_000,
    );
    let (db, daemon) = (&flood.db, &mut flood.daemon);
    let r = offer(flood.sip, REQUESTS, Pace::BurstTwice, "flood");
    let log = daemon.log_text();
    assert_eq!(r.unanswered, 0, "{r:?}\n{log}");
    assert_eq!(r.other, 0, "{r:?}\n{log}");
    assert!(r.accepted > 0, "{r:?}\n{log}");
    assert!(r.busy > 0, "nothing refused busy: {r:?}");
    assert_eq!(r.busy, r.busy_with_retry_after, "503 without Retry-After");
    assert_eq!(r.accepted + r.busy, REQUESTS);

    // Every request that got a 202 has exactly one row, and every row is one
    // that got a 202: the copies sent with each were absorbed. (The SMS text
    // names the sender: `alice: <text>`.)
    let rows = texts_in_db(db);
    let doubled: Vec<_> = rows.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "queued twice: {doubled:?}");
    let mut in_db: Vec<String> = rows.into_keys().collect();
    in_db.sort();
    let mut accepted: Vec<String> = r
        .ever_accepted
        .iter()
        .map(|n| format!("alice: flood-{n}"))
        .collect();
    accepted.sort();
    assert_eq!(in_db, accepted);

    // Stops within its time (modems 8 s, deliveries 1 s) with exit status 0.
    let (exit, _took) = daemon.terminate(Duration::from_secs(12));
    let exit = exit.unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", daemon.log_text()));
    assert!(exit.success(), "{exit:?}\n{}", daemon.log_text());
}

/// The allocator's options are part of the binary (the daemon's memory under
/// a flood depends on them: docs/performance.md), and the environment can
/// still add to them.
#[test]
fn the_allocator_options_are_built_in() {
    let out = std::process::Command::new(daemon_support::BIN)
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "confirm_conf:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "global variable malloc_conf): \"narenas:2,dirty_decay_ms:500,muzzy_decay_ms:0\""
        ),
        "{err}"
    );
    for set in [
        "narenas:2",
        "dirty_decay_ms:500",
        "muzzy_decay_ms:0",
        "confirm_conf:true",
    ] {
        assert!(
            err.contains(&format!("Set conf value: {set}\n")),
            "{set}: {err}"
        );
    }
}
