//! An in-tree SIP load generator for the overload test and benchmark: MESSAGE
//! requests over loopback UDP from a trusted peer (no digest), paced at a rate
//! or sent as one burst, retransmitted like a UDP client does (T1 = 500 ms,
//! doubling to 4 s) until a final answer or `ANSWER_WITHIN`, and every final
//! answer recorded per request. Also the daemon as a child process whose exit
//! status the caller sees.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a request may wait for its final answer before it counts as
/// unanswered.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// The SIP user the requests are from, and the subscriber they are for.
pub const SENDER: &str = "sip:alice@sms.test";
pub const SUBSCRIBER: &str = "+4915112345678";

/// What became of one request.
#[derive(Debug, Default)]
struct Outcome {
    /// The first final status (0: none yet).
    first: AtomicU16,
    /// Microseconds from the first send to that answer.
    latency_us: AtomicU32,
    /// Whether any final answer was a 202.
    ever_202: AtomicBool,
    /// Whether a 503 carried Retry-After.
    retry_after: AtomicBool,
}

/// How a load ended.
#[derive(Debug, Clone)]
pub struct Report {
    /// Requests sent (each once, retransmissions not counted).
    pub offered: usize,
    /// First final answer 202, within [`ANSWER_WITHIN`].
    pub accepted: usize,
    /// First final answer 503.
    pub busy: usize,
    /// Of those, with a Retry-After header.
    pub busy_with_retry_after: usize,
    /// Any other first final answer.
    pub other: usize,
    /// No final answer within [`ANSWER_WITHIN`].
    pub unanswered: usize,
    /// Requests that got a 202 at some point (a retransmission of one first
    /// refused busy may be taken later): the ones the database must hold.
    pub ever_accepted: Vec<usize>,
    /// Median and 99th percentile time to the first final answer.
    pub p50: Duration,
    pub p99: Duration,
    /// Datagrams sent again.
    pub retransmissions: usize,
}

/// The request `n`: the same bytes every time it is sent (a retransmission).
/// Its text is `<tag>-<n>`, which is how the database rows are matched.
fn request(n: usize, from: SocketAddr, tag: &str) -> Vec<u8> {
    let body = format!("{tag}-{n}");
    format!(
        "MESSAGE sip:{SUBSCRIBER}@sms.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK{tag}{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <{SENDER}>;tag=f{n}\r\n\
         To: <sip:{SUBSCRIBER}@sms.test>\r\n\
         Call-ID: {tag}{n}@loadgen\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The status code, the request number (from the Call-ID `<tag><n>@loadgen`)
/// and whether Retry-After is present, of a response.
fn parse_response(d: &[u8], tag: &str) -> Option<(u16, usize, bool)> {
    let text = std::str::from_utf8(d).ok()?;
    let code = text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
    let mut n = None;
    let mut retry_after = false;
    for line in text.split("\r\n") {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("call-id") || name == "i" {
            n = value
                .trim()
                .strip_prefix(tag)
                .and_then(|r| r.split('@').next())
                .and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = true;
        }
    }
    Some((code, n?, retry_after))
}

/// How the requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// This many per second.
    PerSecond(u32),
    /// All at once, each sent twice in a row (the copy is a retransmission
    /// the daemon must absorb).
    BurstTwice,
}

/// Sends `count` requests to `daemon` and waits for their answers (or
/// [`ANSWER_WITHIN`]); `tag` keeps the requests of different loads apart.
pub fn offer(daemon: SocketAddr, count: usize, pace: Pace, tag: &str) -> Report {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind loadgen");
    sock.connect(daemon).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let from = sock.local_addr().expect("addr");
    let outcomes: Arc<Vec<Outcome>> = Arc::new((0..count).map(|_| Outcome::default()).collect());
    let sent_at: Arc<Vec<AtomicU32>> = Arc::new((0..count).map(|_| AtomicU32::new(0)).collect());
    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (sock, outcomes, sent_at, done) = (
            sock.try_clone().expect("clone"),
            Arc::clone(&outcomes),
            Arc::clone(&sent_at),
            Arc::clone(&done),
        );
        let tag = tag.to_owned();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !done.load(Ordering::SeqCst) {
                let Ok(len) = sock.recv(&mut buf) else {
                    continue;
                };
                let Some((code, n, retry_after)) = parse_response(&buf[..len], &tag) else {
                    continue;
                };
                let (Some(o), Some(t)) = (outcomes.get(n), sent_at.get(n)) else {
                    continue;
                };
                if code < 200 {
                    continue;
                }
                if code == 202 {
                    o.ever_202.store(true, Ordering::SeqCst);
                }
                if o.first
                    .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    let now = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                    o.latency_us.store(
                        now.saturating_sub(t.load(Ordering::SeqCst)),
                        Ordering::SeqCst,
                    );
                    o.retry_after.store(retry_after, Ordering::SeqCst);
                }
            }
        })
    };
    // Retransmissions due: (when, request, interval).
    let mut due: BinaryHeap<Reverse<(Instant, usize, Duration)>> = BinaryHeap::new();
    let mut retransmissions = 0;
    let mut next = 0;
    let answered = |n: usize| outcomes[n].first.load(Ordering::SeqCst) != 0;
    loop {
        let now = Instant::now();
        let want = match pace {
            Pace::PerSecond(rate) => {
                let elapsed = now.duration_since(start).as_secs_f64();
                ((elapsed * f64::from(rate)) as usize + 1).min(count)
            }
            Pace::BurstTwice => count,
        };
        while next < want {
            let bytes = request(next, from, tag);
            let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
            sent_at[next].store(us, Ordering::SeqCst);
            let _ = sock.send(&bytes);
            if matches!(pace, Pace::BurstTwice) {
                let _ = sock.send(&bytes);
            }
            due.push(Reverse((Instant::now() + T1, next, T1)));
            next += 1;
        }
        while let Some(Reverse((at, n, interval))) = due.peek().copied() {
            if at > now {
                break;
            }
            due.pop();
            let first = start + Duration::from_micros(u64::from(sent_at[n].load(Ordering::SeqCst)));
            if answered(n) || now.duration_since(first) >= ANSWER_WITHIN {
                continue;
            }
            let _ = sock.send(&request(n, from, tag));
            retransmissions += 1;
            let interval = (interval * 2).min(T2);
            due.push(Reverse((now + interval, n, interval)));
        }
        if next == count {
            let last =
                start + Duration::from_micros(u64::from(sent_at[count - 1].load(Ordering::SeqCst)));
            let all = (0..count).all(answered);
            if all || now.duration_since(last) >= ANSWER_WITHIN + Duration::from_millis(100) {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    done.store(true, Ordering::SeqCst);
    receiver.join().expect("receiver");
    summarise(&outcomes, retransmissions)
}

fn summarise(outcomes: &[Outcome], retransmissions: usize) -> Report {
    let mut r = Report {
        offered: outcomes.len(),
        accepted: 0,
        busy: 0,
        busy_with_retry_after: 0,
        other: 0,
        unanswered: 0,
        ever_accepted: Vec::new(),
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        retransmissions,
    };
    let mut latencies = Vec::new();
    for (n, o) in outcomes.iter().enumerate() {
        let latency = Duration::from_micros(u64::from(o.latency_us.load(Ordering::SeqCst)));
        if o.ever_202.load(Ordering::SeqCst) {
            r.ever_accepted.push(n);
        }
        match o.first.load(Ordering::SeqCst) {
            0 => r.unanswered += 1,
            _ if latency > ANSWER_WITHIN => r.unanswered += 1,
            202 => r.accepted += 1,
            503 => {
                r.busy += 1;
                if o.retry_after.load(Ordering::SeqCst) {
                    r.busy_with_retry_after += 1;
                }
            }
            _ => r.other += 1,
        }
        if o.first.load(Ordering::SeqCst) != 0 {
            latencies.push(latency);
        }
    }
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    r.p50 = at(0.50);
    r.p99 = at(0.99);
    r
}

/// The configuration for a flood: `sip` (UDP only, loopback trusted), the
/// status port, the database (`database_extra`: more of its keys, as
/// `sip_extra` for SIP's), and `extra` TOML (other tables).
pub fn write_config(
    dir: &Path,
    modem_port: &str,
    sip: SocketAddr,
    status: SocketAddr,
    sip_extra: &str,
    database_extra: &str,
    extra: &str,
) -> std::path::PathBuf {
    let db = dir.join("smsbridge.db");
    let cfg = format!(
        "[database]\npath = \"{}\"\n{database_extra}\n\n\
         [numbers]\ndefault_country_code = \"49\"\n\n\
         [sip]\ndomain = \"sms.test\"\nudp = [\"{sip}\"]\ntcp = []\n\
         trusted_peers = [\"127.0.0.1\"]\n{sip_extra}\n\n\
         [status]\nlisten = \"{status}\"\n\n\
         [imps]\nlisten = \"\"\n\n\
         [[modem]]\nname = \"sim0\"\nport = \"{modem_port}\"\n\n{extra}\n",
        db.display()
    );
    let path = dir.join("smsbridge.toml");
    std::fs::write(&path, cfg).expect("write config");
    path
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// The user the requests are from, with no rate limit and no daily cap
/// (`users limits --rate 0 --daily 0`); the command's readback says so.
pub fn add_unlimited_user(config: &Path, db: &Path) {
    crate::daemon_support::cli(
        config,
        &["users", "add", SENDER, "--password-stdin"],
        Some("secret"),
    );
    let shown = crate::daemon_support::cli(
        config,
        &["users", "limits", SENDER, "--rate", "0", "--daily", "0"],
        None,
    );
    assert!(shown.contains("per minute:  no limit"), "{shown}");
    let conn = rusqlite::Connection::open(db).expect("open db");
    let limits: (i64, i64) = conn
        .query_row("SELECT rate_per_minute, daily_cap FROM users", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("the user's limits");
    assert_eq!(limits, (0, 0), "0 is stored as unlimited");
}

/// A daemon ready for a flood, with its simulated modem (1 s per SMS).
pub struct Flood {
    pub sim: crate::sim_support::SimProcess,
    pub daemon: RunningDaemon,
    pub sip: SocketAddr,
    pub db: std::path::PathBuf,
}

/// Starts the simulated modem and a daemon in `dir` (`sip_extra`,
/// `database_extra`: more keys of those tables) with the flood's user and
/// `[bridge] queue_limit`, and waits until its modem is registered.
pub fn start_flood(dir: &Path, sip_extra: &str, database_extra: &str, queue_limit: u64) -> Flood {
    let sim = crate::sim_support::SimProcess::start(dir, &["--send-delay", "1s"]);
    let sip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let status: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(
        dir,
        &sim.port,
        sip,
        status,
        sip_extra,
        database_extra,
        &format!("[bridge]\nqueue_limit = {queue_limit}\n"),
    );
    let db = dir.join("smsbridge.db");
    add_unlimited_user(&config, &db);
    let daemon = RunningDaemon::start(&config, status, &dir.join("daemon.log"));
    Flood {
        sim,
        daemon,
        sip,
        db,
    }
}

/// The texts of the messages in the database, with how often each is there.
pub fn texts_in_db(db: &Path) -> HashMap<String, usize> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn.prepare("SELECT text FROM messages").expect("prepare");
    let mut out = HashMap::new();
    for t in stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
    {
        *out.entry(t.expect("row")).or_insert(0) += 1;
    }
    out
}

/// `smsbridge run` as a child whose exit status the caller reads.
pub struct RunningDaemon {
    pub child: Child,
    pub status: SocketAddr,
    pub log: std::path::PathBuf,
}

impl RunningDaemon {
    /// Starts the daemon and waits (at most 60 s) for a registered modem.
    pub fn start(config: &Path, status: SocketAddr, log: &Path) -> Self {
        let logfile = std::fs::File::create(log).expect("log");
        let child = Command::new(crate::daemon_support::BIN)
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "smsbridge=warn")
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("log"))
            .stderr(logfile)
            .spawn()
            .expect("spawn daemon");
        let mut d = Self {
            child,
            status,
            log: log.to_owned(),
        };
        let end = Instant::now() + Duration::from_secs(60);
        while !d.modem_registered() {
            if Instant::now() > end || matches!(d.child.try_wait(), Ok(Some(_))) {
                let _ = d.child.kill();
                let _ = d.child.wait();
                panic!("daemon not ready; log:\n{}", d.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn modem_registered(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.status, Duration::from_millis(500)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /status HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        let Some((_, body)) = r.split_once("\r\n\r\n") else {
            return false;
        };
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v["modems"]
                    .as_array()
                    .map(|m| m.iter().any(|m| m["registered"] == true))
            })
            .unwrap_or(false)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory so far (`VmHWM`), in kB.
    pub fn peak_rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }

    /// SIGTERM, then waits up to `limit`: the exit status and how long it
    /// took, or `None` (then the daemon is killed).
    pub fn terminate(&mut self, limit: Duration) -> (Option<ExitStatus>, Duration) {
        let t = Instant::now();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        while t.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (Some(status), t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (None, t.elapsed())
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
