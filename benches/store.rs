//! Durable store throughput on a file database in a temporary directory (WAL,
//! synchronous=FULL, so every operation waits for fsync), in operations per
//! second (criterion's "thrpt" line with `Throughput::Elements`):
//!
//! - `enqueue/1_part`, `enqueue/3_parts`: one committed `enqueue` each;
//! - `claim/claim_next_part`: one committed claim (queued → sending) each;
//! - `claim/claim_and_sent`: a claim and its `part_sent` (two commits), what a
//!   modem worker does per part.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsbridge::pdu::Alphabet;
use smsbridge::store::{
    FrontEnd, Msisdn, NewMessage, Store, UnixTime, UserId, UserSettings, normalise_msisdn,
};

const MODEM: &str = "262011234567890";
const NOW: UnixTime = UnixTime(1_777_638_896);

fn setup() -> (tempfile::TempDir, Store, UserId, Msisdn) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("bench.db")).unwrap();
    let user = s
        .add_user(
            Some("sip:bench@example.com"),
            None,
            &UserSettings::default(),
            None,
            "smsbridge",
            NOW,
        )
        .unwrap();
    (
        dir,
        s,
        user,
        normalise_msisdn("+491701234567", None).unwrap(),
    )
}

fn message(user: UserId, to: &Msisdn, parts: usize) -> NewMessage {
    NewMessage {
        user,
        msisdn: to.clone(),
        text: "x".repeat(153 * parts),
        alphabet: Alphabet::Gsm7,
        parts: (0..parts).map(|_| vec![0x55; 160]).collect(),
        im_message_id: Some("3a1f0c2e@example.com".into()),
        report_requested: true,
        imdn_positive: true,
        imdn_negative: true,
        front_end: FrontEnd::Sip,
    }
}

fn enqueue(c: &mut Criterion) {
    let (_dir, mut s, user, to) = setup();
    let mut g = c.benchmark_group("enqueue");
    g.throughput(Throughput::Elements(1));
    for parts in [1, 3] {
        let m = message(user, &to, parts);
        g.bench_function(
            format!("{parts}_part{}", if parts > 1 { "s" } else { "" }),
            |b| b.iter(|| black_box(s.enqueue(black_box(&m), NOW).unwrap())),
        );
    }
    g.finish();
}

/// Times `iters` claims (and `part_sent` when `sent`) on a queue filled beforehand.
fn claims(s: &mut Store, user: UserId, to: &Msisdn, iters: u64, sent: bool) -> Duration {
    let m = message(user, to, 1);
    for _ in 0..iters {
        s.enqueue(&m, NOW).unwrap();
    }
    let start = Instant::now();
    for _ in 0..iters {
        let p = s.claim_next_part(MODEM, NOW).unwrap().unwrap();
        if sent {
            s.part_sent(p.part, 1, NOW).unwrap();
        }
        black_box(p);
    }
    let elapsed = start.elapsed();
    // Leave no claimed part behind for the next sample to skip over.
    s.release_claims(MODEM, NOW).unwrap();
    elapsed
}

fn claim(c: &mut Criterion) {
    let (_dir, mut s, user, to) = setup();
    let mut g = c.benchmark_group("claim");
    g.throughput(Throughput::Elements(1));
    g.bench_function("claim_next_part", |b| {
        b.iter_custom(|iters| claims(&mut s, user, &to, iters, false))
    });
    g.bench_function("claim_and_sent", |b| {
        b.iter_custom(|iters| claims(&mut s, user, &to, iters, true))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = enqueue, claim
}
criterion_main!(benches);
