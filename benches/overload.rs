//! Overload (issue 16): `smsbridge run` as a process on the simulated modem,
//! flooded over loopback UDP by the in-tree load generator as a trusted peer
//! (no digest), stepping the offered rate 1,000 → 2,000 → 5,000 → 10,000
//! MESSAGE/s for 10 s each, a fresh daemon and database per step, with the
//! daemon's default `[sip] max_in_flight` and group commit. Prints per step:
//! 202 within 5 s, 503, no answer, p50/p99 time to the final answer, the
//! daemon's peak RSS, and the rows in the database against the 202s sent.
//!
//! The sending user's rate limit and daily cap are lifted with `users limits
//! --rate 0 --daily 0`, and `[bridge] queue_limit` is raised.
//!
//! `cargo bench --bench overload` (release). `OVERLOAD_STEPS=1000,5000` and
//! `OVERLOAD_SECS=3` pick other steps.

#[path = "../tests/daemon_support/mod.rs"]
mod daemon_support;
#[path = "../tests/overload_support/mod.rs"]
mod overload_support;
#[path = "../tests/sim_support/mod.rs"]
mod sim_support;

use std::time::Duration;

use overload_support::{Pace, offer, start_flood, texts_in_db};
use sim_support::TempDir;

fn main() {
    let steps: Vec<u32> = std::env::var("OVERLOAD_STEPS")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 2_000, 5_000, 10_000]);
    let secs: u32 = std::env::var("OVERLOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!("overload: {secs} s per step, fresh daemon per step, trusted peer over UDP");
    println!(
        "| offered/s | sent | 202 ≤ 5 s | 202/s | 503 (with Retry-After) | no answer | p50 | p99 | retransmissions | peak RSS | rows in db | 202s sent | stop |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for rate in steps {
        step(rate, secs);
    }
}

fn step(rate: u32, secs: u32) {
    let dir = TempDir::new(&format!("overload-bench-{rate}"));
    // `OVERLOAD_MAX_IN_FLIGHT` tries another `[sip] max_in_flight`.
    let sip_extra = std::env::var("OVERLOAD_MAX_IN_FLIGHT")
        .map(|n| format!("max_in_flight = {n}\n"))
        .unwrap_or_default();
    let mut flood = start_flood(dir.path(), &sip_extra, "", 100_000_000);
    let (sip, db, daemon) = (flood.sip, flood.db.clone(), &mut flood.daemon);
    let count = rate as usize * secs as usize;
    let r = offer(sip, count, Pace::PerSecond(rate), &format!("s{rate}"));
    let peak = daemon.peak_rss_kb();
    let (exit, took) = daemon.terminate(Duration::from_secs(20));
    let rows: usize = texts_in_db(&db).values().sum();
    let stop = match exit {
        Some(s) if s.success() => format!("exit 0 in {:.1} s", took.as_secs_f64()),
        Some(s) => format!("{s} in {:.1} s", took.as_secs_f64()),
        None => "no exit in 20 s".into(),
    };
    println!(
        "| {rate} | {} | {} ({:.1}%) | {:.0} | {} ({}) | {} | {:.1} ms | {:.1} ms | {} | {:.1} MB | {rows} | {} (first answer {}) | {stop} |",
        r.offered,
        r.accepted,
        100.0 * r.accepted as f64 / r.offered.max(1) as f64,
        r.accepted as f64 / f64::from(secs),
        r.busy,
        r.busy_with_retry_after,
        r.unanswered,
        r.p50.as_secs_f64() * 1000.0,
        r.p99.as_secs_f64() * 1000.0,
        r.retransmissions,
        peak as f64 / 1024.0,
        r.ever_accepted.len(),
        r.accepted,
    );
    drop(flood);
}
