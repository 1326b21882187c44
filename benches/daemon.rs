//! The daemon's IM → SMS path, measured in process with real sockets and the
//! simulated modem (run with `cargo bench --bench daemon`; prints figures):
//!
//! 1. MESSAGE → 202 rate, durable (SQLite synchronous=FULL), one request at a
//!    time and 8 in flight, with a modem answering at once;
//! 2. latency from a MESSAGE received to its `AT+CMGS` on the modem's line,
//!    p50 and p99, at a steady 20 messages per second, zero send delay;
//! 3. with 4 modems taking 3 s per SMS, the share of modem time kept busy.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smsbridge::bridge::{Bridge, Shared, StoreWork};
use smsbridge::config::Config;
use smsbridge::modem::{ModemConfig, Pool, PortSpec};
use smsbridge::sim::{LogEntry, SimConfig, SimPort};
use smsbridge::sip::SipFrontEnd;
use smsbridge::store::{FrontEnd, NewContact, Store, UnixTime, UserSettings, normalise_msisdn};
use tokio_util::sync::CancellationToken;

const BOB: &str = "+4915112345678";

struct Rig {
    sip: SocketAddr,
    sims: Vec<SimPort>,
    pool: Pool,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn rig(modems: usize, send_delay: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.database.path = dir.path().join("bench.db");
    cfg.sip.domain = "sms.test".into();
    cfg.sip.udp = vec!["127.0.0.1:0".into()];
    cfg.sip.tcp = vec![];
    cfg.sip.trusted_peers = vec!["127.0.0.1".into()];
    cfg.bridge.sender_prefix = String::new();
    cfg.bridge.queue_limit = 1_000_000;
    let mut store = Store::open(&cfg.database.path).unwrap();
    let now = UnixTime::now();
    let unlimited = UserSettings {
        rate_per_minute: 0,
        daily_cap: 0,
        ..UserSettings::default()
    };
    store
        .add_user(
            Some("sip:alice@sms.test"),
            None,
            &unlimited,
            None,
            "smsbridge",
            now,
        )
        .unwrap();
    store
        .add_contact(
            &NewContact {
                user: "sip:alice@sms.test".into(),
                msisdn: normalise_msisdn(BOB, None).unwrap(),
                nickname: None,
                alias: Some("bob".into()),
                list_name: None,
            },
            now,
        )
        .unwrap();
    let sims: Vec<SimPort> = (0..modems)
        .map(|i| {
            let c = SimConfig {
                imsi: format!("2620100000000{i:02}"),
                send_delay,
                noise_interval: Some(Duration::ZERO),
                // Keep the phones quiet: no echo traffic in the measurements.
                default_phone: smsbridge::sim::PhoneBehaviour::Silent,
                ..SimConfig::default()
            };
            SimPort::new(format!("m{i}"), c, true)
        })
        .collect();
    let modem_cfgs = sims
        .iter()
        .enumerate()
        .map(|(i, s)| ModemConfig::new(format!("m{i}"), PortSpec::Sim(s.clone())))
        .collect();
    let ready = Arc::new(std::sync::OnceLock::<
        Vec<tokio::sync::watch::Receiver<smsbridge::modem::ModemState>>,
    >::new());
    let r = Arc::clone(&ready);
    let shared = Shared::new(
        store,
        &cfg,
        Arc::new(move || r.get().is_some_and(|v| v.iter().any(|s| s.borrow().ready))),
    );
    let pool = Pool::start(modem_cfgs, StoreWork::new(Arc::clone(&shared)));
    let _ = ready.set((0..pool.len()).filter_map(|i| pool.watch(i)).collect());
    for i in 0..pool.len() {
        let mut w = pool.watch(i).unwrap();
        while !w.borrow().ready {
            w.changed().await.unwrap();
        }
    }
    let stop = CancellationToken::new();
    let sip = SipFrontEnd::start(&cfg.sip, Bridge::new(Arc::clone(&shared)), stop.clone())
        .await
        .unwrap();
    shared.set_front_end(FrontEnd::Sip, Arc::new(sip.clone()));
    Rig {
        sip: sip.local_addrs()[0],
        sims,
        pool,
        stop,
        _dir: dir,
    }
}

fn message(i: usize, local: SocketAddr) -> String {
    let body = format!("benchmark {i}");
    format!(
        "MESSAGE sip:bob@sms.test SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKb{i};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@sms.test>;tag=b{i}\r\nTo: <sip:bob@sms.test>\r\n\
         Call-ID: bench-{i}@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `n` MESSAGEs (numbered from `first`: every request is a new transaction)
/// with at most `window` in flight; returns when all were 202'd.
fn blast(target: SocketAddr, first: usize, n: usize, window: usize) -> Duration {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let start = Instant::now();
    let (mut sent, mut done) = (0, 0);
    let mut buf = [0u8; 4096];
    while done < n {
        while sent < n && sent - done < window {
            sock.send_to(message(first + sent, local).as_bytes(), target)
                .unwrap();
            sent += 1;
        }
        let (len, _) = sock.recv_from(&mut buf).expect("a response");
        let head = String::from_utf8_lossy(&buf[..len]);
        assert!(head.starts_with("SIP/2.0 202"), "{head}");
        done += 1;
    }
    start.elapsed()
}

fn cmgs_times(sim: &SimPort) -> Vec<Instant> {
    sim.log()
        .into_iter()
        .filter(|l| matches!(&l.entry, LogEntry::Command(c) if c.starts_with("AT+CMGS=")))
        .map(|l| l.at)
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();

    // 1. Accept rate.
    let r = rt.block_on(rig(1, Duration::ZERO));
    let n = 400;
    let seq = blast(r.sip, 0, n, 1);
    let par = blast(r.sip, n, n, 8);
    println!("MESSAGE -> 202 (durable), {n} messages:");
    println!(
        "  1 in flight: {:>7.1}/s ({:.2} ms each)",
        n as f64 / seq.as_secs_f64(),
        seq.as_secs_f64() * 1000.0 / n as f64
    );
    println!("  8 in flight: {:>7.1}/s", n as f64 / par.as_secs_f64());
    r.stop.cancel();
    rt.block_on(r.pool.shutdown(Duration::from_secs(5)));

    // 2. MESSAGE received → AT+CMGS on the line, paced at 20/s.
    let r = rt.block_on(rig(1, Duration::ZERO));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let base = cmgs_times(&r.sims[0]).len();
    let count = 200;
    let mut sent_at = Vec::with_capacity(count);
    let mut buf = [0u8; 4096];
    for i in 0..count {
        sent_at.push(Instant::now());
        sock.send_to(message(100_000 + i, local).as_bytes(), r.sip)
            .unwrap();
        let _ = sock.recv_from(&mut buf).expect("202");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let cmgs = &cmgs_times(&r.sims[0])[base..];
    assert_eq!(cmgs.len(), count, "every message reached the modem");
    let mut lat: Vec<Duration> = cmgs
        .iter()
        .zip(&sent_at)
        .map(|(c, s)| c.saturating_duration_since(*s))
        .collect();
    lat.sort();
    println!("MESSAGE received -> AT+CMGS on the line, {count} messages at 20/s:");
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1000.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0,
        lat[lat.len() - 1].as_secs_f64() * 1000.0
    );
    r.stop.cancel();
    rt.block_on(r.pool.shutdown(Duration::from_secs(5)));

    // 3. Four modems at 3 s per SMS: busy share.
    let delay = Duration::from_secs(3);
    let r = rt.block_on(rig(4, delay));
    let msgs = 32;
    let t0 = Instant::now();
    blast(r.sip, 0, msgs, 8);
    let all_sent = || r.sims.iter().map(|s| s.sent().len()).sum::<usize>();
    while all_sent() < msgs {
        std::thread::sleep(Duration::from_millis(20));
    }
    let span = t0.elapsed();
    let busy = delay.as_secs_f64() * msgs as f64;
    println!(
        "4 modems, 3 s per SMS, {msgs} messages: done in {:.2} s",
        span.as_secs_f64()
    );
    println!(
        "  modem time busy: {:.1}% (ideal makespan {:.0} s); per modem: {:?}",
        100.0 * busy / (4.0 * span.as_secs_f64()),
        busy / 4.0,
        r.sims.iter().map(|s| s.sent().len()).collect::<Vec<_>>()
    );
    r.stop.cancel();
    rt.block_on(r.pool.shutdown(Duration::from_secs(5)));
}
