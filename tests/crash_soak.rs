//! Issue 12's promise under crashes and modem faults, small enough for CI: two
//! simulated modems (send and report delay 1 s) behind `smsbridge run`, SIP
//! MESSAGEs from a trusted peer, and SIGKILLs of the daemon (restarted each
//! time) or simulator faults at seeded random moments. Every accepted message
//! ends `delivered`, `failed` with a cause, or `delivery_unknown`; none is lost
//! and none reaches the network twice. The same code runs long as
//! `cargo run --release --example crash_soak` (README, "Crash soak").

mod soak_support;

use soak_support::{SoakConfig, Trouble};

fn soak(trouble: Trouble, seed: u64, events: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SoakConfig::new(
        env!("CARGO_BIN_EXE_smsbridge").into(),
        dir.path().to_owned(),
        trouble,
    );
    cfg.messages = 60;
    cfg.events = events;
    cfg.seed = seed;
    cfg.verbose = true;
    eprintln!("crash soak {trouble:?}, seed {seed}");
    let figures = soak_support::run(&cfg).unwrap_or_else(|e| panic!("the soak did not run: {e}"));
    eprintln!("{}", figures.table());
    let problems = figures.problems();
    if !problems.is_empty() {
        // Keep the logs and transcripts for whoever reads the failure.
        let kept = dir.keep();
        panic!("{problems:#?}\nlogs in {}", kept.display());
    }
    assert_eq!(figures.attempted, 60);
}

#[test]
fn every_accepted_message_ends_final_across_sigkills() {
    soak(Trouble::Kills, 12, 3);
}

#[test]
fn every_accepted_message_ends_final_across_modem_faults() {
    soak(Trouble::Faults, 12, 6);
}
