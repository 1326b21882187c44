//! SIP MESSAGE latency while the IMPS port is flooded with wrong passwords
//! (issue: before login throttling, a flood of 200 wrong logins took MESSAGE
//! latency from 1.7 ms to 324 ms). Runs `smsbridge run` as a process on the
//! simulated modem, like a deployment would, and prints figures:
//!
//! 1. MESSAGE → 202 round trips (digest challenge included, as a softphone
//!    does it) one at a time with the IMPS port idle: p50, p99, max;
//! 2. the same while 20 threads post 500 wrong IMPS logins (half at a real
//!    account, half at made-up ones), with the login answers counted by kind
//!    and the daemon's peak resident memory.
//!
//! `cargo bench --bench login_flood`.

#[path = "../tests/daemon_support/mod.rs"]
mod daemon_support;
#[path = "../tests/imps_support/mod.rs"]
mod imps_support;
#[path = "../tests/sim_support/mod.rs"]
mod sim_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use daemon_support::{DOMAIN, Daemon, Ua, add_user, free_port, write_config};
use sim_support::{SimProcess, TempDir};

const FLOOD_THREADS: usize = 20;
const LOGINS_PER_THREAD: usize = 25;
const BASELINE_MESSAGES: usize = 200;

/// Posts a CSP Login with a wrong password; returns the CSP Result code and
/// description.
fn wrong_login(imps: SocketAddr, user: &str) -> (Option<u16>, Option<String>) {
    let body = imps_support::request(
        None,
        &format!(
            "<Login-Request><UserID>{user}</UserID><ClientID><URL>flood</URL></ClientID><Password>wrong</Password></Login-Request>"
        ),
    );
    let (status, _, body) = imps_support::http_post(imps, "application/vnd.wv.csp+xml", &body);
    let a = imps_support::read(status, &body);
    (
        a.code(),
        a.text(&["Result", "Description"]).map(str::to_owned),
    )
}

/// One MESSAGE → 202 exchange (challenge and authenticated request).
fn message_round_trip(ua: &mut Ua, i: usize) -> Duration {
    let start = Instant::now();
    let r = ua.message(
        &format!("sip:bob@{DOMAIN}"),
        "text/plain",
        &format!("latency probe {i}"),
    );
    let took = start.elapsed();
    assert_eq!(r.status(), 202, "{}", r.start);
    took
}

fn summary(label: &str, mut t: Vec<Duration>) {
    t.sort();
    let at = |p: f64| t[((t.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "  {label:<22} {:>4} messages  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        t.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
}

fn main() {
    let dir = TempDir::new("bench-login-flood");
    let sim = SimProcess::start(dir.path(), &[]);
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        &format!("[imps]\nlisten = \"{imps}\"\n\n[bridge]\nqueue_limit = 100000\n"),
    );
    add_user(
        &config,
        &format!("sip:alice@{DOMAIN}"),
        "alicepw",
        &[("+4915112345678", "Bob", "bob")],
    );
    add_user(&config, &format!("wv:carol@{DOMAIN}"), "secret", &[]);
    // The per-user limits (10 a minute by default) would refuse the probes;
    // no CLI sets them yet, so the bench lifts them in the file.
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute("UPDATE users SET rate_per_minute = 0, daily_cap = 0", []))
        .expect("lift the limits");
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let mut ua = Ua::new(&format!("sip:alice@{DOMAIN}"), "alicepw", sip);

    println!("SIP MESSAGE -> 202 round trips (digest included), one at a time:");
    let idle: Vec<Duration> = (0..BASELINE_MESSAGES)
        .map(|i| message_round_trip(&mut ua, i))
        .collect();
    summary("IMPS idle", idle);
    let rss_before = daemon.memory_kb("VmRSS").unwrap_or(0);

    let flooding = Arc::new(AtomicBool::new(true));
    let gate = Arc::new(Barrier::new(FLOOD_THREADS + 1));
    let started = Instant::now();
    let workers: Vec<_> = (0..FLOOD_THREADS)
        .map(|t| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                gate.wait();
                (0..LOGINS_PER_THREAD)
                    .map(|i| {
                        let user = if i % 2 == 0 {
                            format!("wv:carol@{DOMAIN}")
                        } else {
                            format!("wv:guess{t}x{i}@{DOMAIN}")
                        };
                        wrong_login(imps, &user)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let probe = {
        let flooding = Arc::clone(&flooding);
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            gate.wait();
            let mut t = Vec::new();
            while flooding.load(Ordering::Relaxed) {
                t.push(message_round_trip(&mut ua, BASELINE_MESSAGES + t.len()));
            }
            t
        })
    };
    let answers: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("flood thread"))
        .collect();
    let flood_time = started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let during = probe.join().expect("probe thread");
    summary("500 wrong IMPS logins", during);

    let kind = |code: u16, prefix: &str| {
        answers
            .iter()
            .filter(|(c, d)| {
                *c == Some(code) && d.as_deref().is_some_and(|d| d.starts_with(prefix))
            })
            .count()
    };
    println!(
        "  flood: {} logins in {:.1} s: {} checked (409), {} busy (503), {} throttled (503), {} other",
        answers.len(),
        flood_time.as_secs_f64(),
        kind(409, ""),
        kind(503, "busy"),
        kind(503, "too many failed logins"),
        answers.len() - kind(409, "") - kind(503, "busy") - kind(503, "too many failed logins"),
    );
    println!(
        "  daemon RSS: {rss_before} kB before the flood, peak {} kB",
        daemon.memory_kb("VmHWM").unwrap_or(0)
    );
    drop(daemon);
}
