//! The crash soak of issue 12, shared by `tests/crash_soak.rs` (small, for CI)
//! and `examples/crash_soak.rs` (long runs): two simulated modems on PTYs,
//! `smsbridge run` in front of them, SIP MESSAGEs from a trusted peer, and
//! either SIGKILLs of the daemon (restarted each time) or simulator faults at
//! seeded random moments. At the end every accepted message (SIP 2xx) must be
//! a row of the outbox in a final state (`delivered`, `failed` with a cause,
//! `delivery_unknown`), and no text may have reached the simulated network
//! twice.
//!
//! It takes the path of the `smsbridge` binary, so the example (which has no
//! `CARGO_BIN_EXE_*`) and the test share it through `#[path]`; it uses no other
//! test helper for the same reason.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use smsbridge::sim::{ControlRequest, SentSummary, control_path, send_control};

/// The recipient: a phone of the simulated network that takes every SMS.
pub const PHONE: &str = "+4915112345678";
const DOMAIN: &str = "sms.test";
const MODEMS: usize = 2;

/// What a soak does to the daemon while messages flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// SIGKILL the daemon and start it again.
    Kills,
    /// Faults of the simulated modems (hang, reboot, vanish, CMS errors,
    /// storage full); the daemon keeps running.
    Faults,
}

/// How a soak runs.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The `smsbridge` binary.
    pub bin: PathBuf,
    /// Where the configuration, database, transcripts and logs go.
    pub dir: PathBuf,
    /// Messages to send.
    pub messages: usize,
    /// Kills or faults, and how many.
    pub trouble: Trouble,
    pub events: usize,
    /// Seed of every random choice (kill moments, faults, simulator PRNGs).
    pub seed: u64,
    /// MESSAGEs per second the SIP client sends.
    pub rate: f64,
    /// Simulator delays between Ctrl-Z and `+CMGS`, and before a report.
    pub send_delay: Duration,
    pub report_delay: Duration,
    /// `[bridge] report_window`; left out of the configuration when the daemon
    /// does not know the key (before the delivery-unknown work is merged).
    pub report_window: Duration,
    /// Progress lines on stderr.
    pub verbose: bool,
}

impl SoakConfig {
    /// The defaults of issue 12's lab run: 1 s send and report delays, a 20 s
    /// report window.
    pub fn new(bin: PathBuf, dir: PathBuf, trouble: Trouble) -> Self {
        Self {
            bin,
            dir,
            messages: 60,
            trouble,
            events: 3,
            seed: 1,
            rate: 4.0,
            send_delay: Duration::from_secs(1),
            report_delay: Duration::from_secs(1),
            report_window: Duration::from_secs(20),
            verbose: false,
        }
    }
}

/// What a soak found.
#[derive(Debug, Default)]
pub struct Figures {
    pub seed: u64,
    pub trouble: Option<Trouble>,
    /// MESSAGEs sent, and answered 2xx.
    pub attempted: usize,
    pub accepted: usize,
    /// Answered with another final status (e.g. 503 while starting).
    pub refused: BTreeMap<u16, usize>,
    /// No answer (the daemon was down or killed mid-request).
    pub unanswered: usize,
    /// Rows for MESSAGEs that got no 2xx (committed, then killed before the
    /// answer left): allowed, and counted.
    pub committed_unanswered: usize,
    /// Message numbers refused (a final non-2xx) that were stored anyway.
    pub refused_but_stored: Vec<usize>,
    pub delivered: usize,
    pub failed_by_cause: BTreeMap<String, usize>,
    pub delivery_unknown: usize,
    /// Accepted messages in a state that is not final, by state.
    pub not_final: BTreeMap<String, usize>,
    /// `failed` without a cause.
    pub failed_without_cause: usize,
    /// Accepted message numbers without a row.
    pub lost: Vec<usize>,
    /// Message numbers whose text (a part of it) reached the network twice.
    pub sent_twice: Vec<usize>,
    /// Message numbers `delivered` that the network never got.
    pub delivered_unsent: Vec<usize>,
    /// `failed` messages whose text did reach the network (a kill or a hang
    /// between the PDU and `+CMGS`: outcome unknown, never resent).
    pub failed_but_sent: usize,
    /// Kills done, or faults injected ("modem: fault").
    pub kills: usize,
    pub faults: Vec<String>,
    /// Whether the daemon knew `[bridge] report_window`.
    pub report_window: Option<Duration>,
    pub wall: Duration,
}

impl Figures {
    /// What breaks the promise, one line each; empty when the soak passed.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.lost.is_empty() {
            p.push(format!(
                "{} accepted messages lost: {:?}",
                self.lost.len(),
                self.lost
            ));
        }
        if !self.sent_twice.is_empty() {
            p.push(format!(
                "{} messages sent twice: {:?}",
                self.sent_twice.len(),
                self.sent_twice
            ));
        }
        if !self.not_final.is_empty() {
            p.push(format!(
                "accepted messages not in a final state: {:?}",
                self.not_final
            ));
        }
        if self.failed_without_cause > 0 {
            p.push(format!(
                "{} failed without a cause",
                self.failed_without_cause
            ));
        }
        if !self.delivered_unsent.is_empty() {
            p.push(format!(
                "delivered but never sent: {:?}",
                self.delivered_unsent
            ));
        }
        if !self.refused_but_stored.is_empty() {
            p.push(format!("refused but stored: {:?}", self.refused_but_stored));
        }
        if self.accepted == 0 {
            p.push("no message was accepted".into());
        }
        p
    }

    /// The figures as a table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "{k:<34} {v}");
        };
        row(&mut t, "seed", self.seed.to_string());
        match self.trouble {
            Some(Trouble::Kills) => row(&mut t, "SIGKILLs of the daemon", self.kills.to_string()),
            _ => row(&mut t, "simulator faults", self.faults.len().to_string()),
        }
        row(
            &mut t,
            "report window",
            self.report_window
                .map_or("not supported by this daemon".into(), |w| {
                    humantime::format_duration(w).to_string()
                }),
        );
        row(&mut t, "MESSAGEs sent", self.attempted.to_string());
        row(&mut t, "accepted (2xx)", self.accepted.to_string());
        row(&mut t, "refused", format!("{:?}", self.refused));
        row(&mut t, "unanswered", self.unanswered.to_string());
        row(
            &mut t,
            "stored though unanswered",
            self.committed_unanswered.to_string(),
        );
        row(&mut t, "delivered", self.delivered.to_string());
        let failed: usize = self.failed_by_cause.values().sum();
        row(&mut t, "failed", failed.to_string());
        for (cause, n) in &self.failed_by_cause {
            row(&mut t, &format!("  {cause}"), n.to_string());
        }
        row(
            &mut t,
            "  of them on the network all the same",
            self.failed_but_sent.to_string(),
        );
        row(
            &mut t,
            "delivery_unknown",
            self.delivery_unknown.to_string(),
        );
        row(&mut t, "not final", format!("{:?}", self.not_final));
        row(&mut t, "lost", self.lost.len().to_string());
        row(&mut t, "sent twice", self.sent_twice.len().to_string());
        row(&mut t, "wall time", format!("{:.1?}", self.wall));
        for f in &self.faults {
            row(&mut t, "  fault", f.clone());
        }
        t
    }
}

/// splitmix64: a small seeded generator, enough for moments and choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..1`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The text of message `n`: unique, its number at the start and (for the long
/// ones, sent as two SMS) at the end, so every part can be told apart.
pub fn text_of(seed: u64, n: usize) -> String {
    if n % 8 == 7 {
        format!(
            "[soak {seed}/{n}] {} [/{seed}/{n}]",
            "the long one, sent in two parts. ".repeat(6)
        )
    } else {
        format!("[soak {seed}/{n}] crash soak message")
    }
}

/// The message numbers whose tags `text` carries.
fn tags_in(seed: u64, text: &str) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for (open, end) in [
        (format!("[soak {seed}/"), false),
        (format!("[/{seed}/"), true),
    ] {
        let mut rest = text;
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            if let Some(j) = rest.find(']')
                && let Ok(n) = rest[..j].parse::<usize>()
            {
                out.push((n, end));
            }
        }
    }
    out
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn sigterm_and_wait(child: &mut Child, limit: Duration) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// One `smsbridge modem sim` on a PTY.
struct Sim {
    child: Child,
    port: String,
    control: PathBuf,
}

impl Sim {
    fn start(cfg: &SoakConfig, i: usize) -> Result<Self, String> {
        let link = cfg.dir.join(format!("modem{i}"));
        let log = cfg.dir.join(format!("sim{i}.log"));
        let d = |d: Duration| humantime::format_duration(d).to_string();
        let child = Command::new(&cfg.bin)
            .args(["modem", "sim", "--link"])
            .arg(&link)
            .args(["--imsi", &format!("00101000000000{i}")])
            .args(["--imei", &format!("49015420323750{i}")])
            .args(["--send-delay", &d(cfg.send_delay)])
            .args(["--report-delay", &d(cfg.report_delay)])
            .args(["--default-phone", "silent", "--noise-interval", "0s"])
            .args(["--seed", &(cfg.seed ^ (i as u64 + 1)).to_string()])
            .arg("--transcript")
            .arg(cfg.dir.join(format!("sim{i}.transcript")))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file(&log)?)
            .stderr(file(&log)?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cfg.bin.display()))?;
        // Ready when its control socket answers; the port is the link.
        let sim = Self {
            child,
            port: link.to_string_lossy().into_owned(),
            control: control_path(&link),
        };
        let end = Instant::now() + Duration::from_secs(20);
        while sim.sent().is_err() {
            if Instant::now() > end {
                return Err(format!(
                    "simulator {i} did not start; see {}",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(sim)
    }

    fn sent(&self) -> Result<Vec<SentSummary>, String> {
        send_control(&self.control, &ControlRequest::Sent)
            .map_err(|e| format!("simulator control: {e}"))?
            .sent
            .ok_or_else(|| "the simulator listed nothing".into())
    }

    fn fault(&self, fault: &str) -> Result<(), String> {
        let r = send_control(
            &self.control,
            &ControlRequest::Fault {
                fault: fault.into(),
            },
        )
        .map_err(|e| format!("simulator control: {e}"))?;
        if r.ok {
            Ok(())
        } else {
            Err(format!("fault {fault:?} refused: {:?}", r.error))
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        sigterm_and_wait(&mut self.child, Duration::from_secs(5));
    }
}

fn file(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `smsbridge run`, restartable.
struct Daemon {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    status: SocketAddr,
    child: Option<Child>,
}

impl Daemon {
    fn start(&mut self) -> Result<(), String> {
        let log = file(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("RUST_LOG", "smsbridge=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the daemon: {e}"))?;
        self.child = Some(child);
        // Ready: every modem registered.
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            if self.registered() >= MODEMS {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!(
                    "the daemon exited ({status}); see {}",
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the modems did not register within 60 s; see {}",
            self.log.display()
        ))
    }

    /// How many modems `/status` shows registered.
    fn registered(&self) -> usize {
        let Ok(mut s) = TcpStream::connect_timeout(&self.status, Duration::from_millis(500)) else {
            return 0;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /status HTTP/1.0\r\n\r\n").is_err() {
            return 0;
        }
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        r.split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
            .and_then(|v| {
                v["modems"]
                    .as_array()
                    .map(|m| m.iter().filter(|m| m["registered"] == true).count())
            })
            .unwrap_or(0)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm_and_wait(&mut c, Duration::from_secs(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a MESSAGE was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Refused(u16),
    None,
}

/// Sends MESSAGE `n` from alice (the trusted peer asserts her) and waits for
/// its final answer. Never retransmitted: after a kill, a retransmission would
/// be a new request to the new process, and a second SMS of the same text that
/// the bridge could not know about.
fn send_message(sock: &UdpSocket, server: SocketAddr, seed: u64, n: usize) -> Answer {
    let Ok(local) = sock.local_addr() else {
        return Answer::None;
    };
    let body = text_of(seed, n);
    let call_id = format!("soak-{seed}-{n}@{local}");
    let uri = format!("sip:{PHONE}@{DOMAIN}");
    let msg = format!(
        "MESSAGE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-soak-{seed}-{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=s{n}\r\nTo: <{uri}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if sock.send_to(msg.as_bytes(), server).is_err() {
        return Answer::None;
    }
    let end = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 65536];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let _ = sock.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            // Nothing, or ICMP "port unreachable" while the daemon is down.
            if Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        let raw = String::from_utf8_lossy(&buf[..len]);
        let ours = raw.lines().any(|l| {
            l.strip_prefix("Call-ID:")
                .is_some_and(|v| v.trim() == call_id)
        });
        let code = raw
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse::<u16>().ok());
        match code {
            Some(c) if ours && c >= 200 => {
                return if c < 300 {
                    Answer::Accepted
                } else {
                    Answer::Refused(c)
                };
            }
            _ => {}
        }
    }
    Answer::None
}

/// The outbox rows of the soak's messages: number → (state, cause).
fn rows(db: &Path, seed: u64) -> Result<HashMap<usize, (String, Option<String>)>, String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
    let _ = conn.busy_timeout(Duration::from_secs(5));
    // The delivery-unknown work names the cause `fail_cause`; before it,
    // `last_error` holds it.
    let has_fail_cause = conn
        .prepare("SELECT 1 FROM pragma_table_info('messages') WHERE name = 'fail_cause'")
        .and_then(|mut s| s.exists([]))
        .map_err(|e| e.to_string())?;
    let cause = if has_fail_cause {
        "coalesce(fail_cause, last_error)"
    } else {
        "last_error"
    };
    let mut stmt = conn
        .prepare(&format!("SELECT text, state, {cause} FROM messages"))
        .map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    let it = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    for row in it {
        let (text, state, cause) = row.map_err(|e| e.to_string())?;
        if let Some((n, _)) = tags_in(seed, &text).first() {
            out.insert(*n, (state, cause));
        }
    }
    Ok(out)
}

fn is_final(state: &str) -> bool {
    matches!(state, "delivered" | "failed" | "delivery_unknown")
}

fn write_config(
    cfg: &SoakConfig,
    ports: &[String],
    window: bool,
) -> Result<(PathBuf, SocketAddr, SocketAddr), String> {
    let sip: SocketAddr = format!("127.0.0.1:{}", free_port()?)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let status: SocketAddr = format!("127.0.0.1:{}", free_port()?)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let mut c = format!(
        "[database]\npath = \"{}\"\n\n[numbers]\ndefault_country_code = \"49\"\n\n\
         [sip]\nrealm = \"soak\"\ndomain = \"{DOMAIN}\"\nudp = [\"{sip}\"]\ntcp = [\"{sip}\"]\n\
         trusted_peers = [\"127.0.0.1\"]\n\n[status]\nlisten = \"{status}\"\n\n[imps]\nlisten = \"\"\n\n\
         [bridge]\nqueue_limit = {}\n",
        cfg.dir.join("smsbridge.db").display(),
        cfg.messages + 100,
    );
    if window {
        let _ = writeln!(
            c,
            "report_window = \"{}\"",
            humantime::format_duration(cfg.report_window)
        );
    }
    for (i, p) in ports.iter().enumerate() {
        let _ = write!(c, "\n[[modem]]\nname = \"sim{i}\"\nport = \"{p}\"\n");
    }
    let path = cfg.dir.join("smsbridge.toml");
    std::fs::write(&path, c).map_err(|e| e.to_string())?;
    Ok((path, sip, status))
}

fn cli(cfg: &SoakConfig, config: &Path, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = Command::new(&cfg.bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("smsbridge {args:?}: {text}"))
    }
}

/// The moments (from the start) of the kills or faults: seeded, spread over
/// the time the modems need for the messages.
fn schedule(cfg: &SoakConfig, rng: &mut Rng) -> Vec<Duration> {
    let per_modem = cfg.messages as f64 * 9.0 / 8.0 / MODEMS as f64;
    let sending = (cfg.messages as f64 / cfg.rate)
        .max(per_modem * (cfg.send_delay.as_secs_f64() + 0.2))
        .max(5.0);
    let mut t: Vec<f64> = (0..cfg.events)
        .map(|_| 1.0 + rng.unit() * sending)
        .collect();
    t.sort_by(f64::total_cmp);
    t.into_iter().map(Duration::from_secs_f64).collect()
}

/// A fault for the simulated modems, drawn in turn: hang, reboot, vanish, CMS
/// errors (temporary and permanent, switched off again after a while),
/// storage full.
fn fault_for(i: usize, rng: &mut Rng) -> (String, Option<String>) {
    match i % 6 {
        0 => (format!("hang-after {}", 1 + rng.below(4)), None),
        1 => ("reboot".into(), None),
        2 => (format!("vanish-after {} 3s", rng.below(3)), None),
        3 => (
            "cms-error-rate 0.3:38".into(),
            Some("cms-error-rate 0".into()),
        ),
        4 => (
            "cms-error-rate 0.2:500".into(),
            Some("cms-error-rate 0".into()),
        ),
        _ => ("storage-full".into(), None),
    }
}

fn say(cfg: &SoakConfig, start: Instant, what: &str) {
    if cfg.verbose {
        eprintln!("[{:7.1}s] {what}", start.elapsed().as_secs_f64());
    }
}

/// Runs one soak and returns its figures; `Err` when it could not run (a
/// process did not start), not when the checks fail (see [`Figures::problems`]).
pub fn run(cfg: &SoakConfig) -> Result<Figures, String> {
    let start = Instant::now();
    let mut rng = Rng::new(cfg.seed);
    std::fs::create_dir_all(&cfg.dir).map_err(|e| e.to_string())?;
    let sims = (0..MODEMS)
        .map(|i| Sim::start(cfg, i))
        .collect::<Result<Vec<_>, _>>()?;
    let ports: Vec<String> = sims.iter().map(|s| s.port.clone()).collect();
    // With the report window if the daemon knows the key.
    let (mut config, mut sip, mut status) = write_config(cfg, &ports, true)?;
    let mut window = Some(cfg.report_window);
    if let Err(e) = cli(cfg, &config, &["config", "check"], "") {
        if !e.contains("report_window") {
            return Err(e);
        }
        say(
            cfg,
            start,
            "this daemon has no [bridge] report_window; running without",
        );
        window = None;
        (config, sip, status) = write_config(cfg, &ports, false)?;
    }
    cli(
        cfg,
        &config,
        &[
            "users",
            "add",
            &format!("sip:alice@{DOMAIN}"),
            "--password-stdin",
        ],
        "soak-password",
    )?;
    // The soak measures the radio side, not alice's limits (10 a minute, 200
    // a day by default): 0 takes them off.
    {
        let address = format!("sip:alice@{DOMAIN}");
        let mut store = smsbridge::store::Store::open(cfg.dir.join("smsbridge.db"))
            .map_err(|e| e.to_string())?;
        let mut settings = store
            .user_by_address(&address)
            .map_err(|e| e.to_string())?
            .ok_or("alice was not added")?
            .settings;
        settings.rate_per_minute = 0;
        settings.daily_cap = 0;
        store
            .update_user_settings(&address, &settings)
            .map_err(|e| e.to_string())?;
    }
    let mut daemon = Daemon {
        bin: cfg.bin.clone(),
        config,
        log: cfg.dir.join("daemon.log"),
        status,
        child: None,
    };
    daemon.start()?;
    say(cfg, start, "daemon ready");

    // The client: its own thread, paced, never retransmitting.
    let (messages, seed, rate) = (cfg.messages, cfg.seed, cfg.rate);
    let sender = std::thread::spawn(move || -> Result<Vec<Answer>, String> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let mut answers = Vec::with_capacity(messages);
        for n in 0..messages {
            let due = t0 + Duration::from_secs_f64(n as f64 / rate);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            answers.push(send_message(&sock, sip, seed, n));
        }
        Ok(answers)
    });

    let mut figures = Figures {
        seed: cfg.seed,
        trouble: Some(cfg.trouble),
        report_window: window,
        ..Figures::default()
    };
    let mut later: Vec<(Duration, usize, String)> = Vec::new();
    for (i, at) in schedule(cfg, &mut rng).into_iter().enumerate() {
        while let Some((_, m, f)) = later.first().filter(|(t, _, _)| *t <= at).cloned() {
            wait_until(start, later[0].0);
            later.remove(0);
            sims[m].fault(&f)?;
            say(cfg, start, &format!("sim{m}: {f}"));
        }
        wait_until(start, at);
        match cfg.trouble {
            Trouble::Kills => {
                daemon.kill9();
                figures.kills += 1;
                say(cfg, start, &format!("SIGKILL {}", i + 1));
                daemon.start()?;
                say(cfg, start, "daemon ready again");
            }
            Trouble::Faults => {
                let m = rng.below(MODEMS);
                let (f, undo) = fault_for(i, &mut rng);
                sims[m].fault(&f)?;
                say(cfg, start, &format!("sim{m}: {f}"));
                figures.faults.push(format!("sim{m}: {f}"));
                if let Some(u) = undo {
                    later.push((start.elapsed() + Duration::from_secs(8), m, u));
                    later.sort_by_key(|l| l.0);
                }
            }
        }
    }
    for (at, m, f) in later {
        wait_until(start, at);
        sims[m].fault(&f)?;
    }
    let answers = sender
        .join()
        .map_err(|_| "the SIP client panicked".to_string())??;
    say(cfg, start, "all MESSAGEs sent");
    figures.attempted = answers.len();
    for a in &answers {
        match a {
            Answer::Accepted => figures.accepted += 1,
            Answer::Refused(c) => *figures.refused.entry(*c).or_default() += 1,
            Answer::None => figures.unanswered += 1,
        }
    }
    let accepted: Vec<usize> = (0..answers.len())
        .filter(|n| answers[*n] == Answer::Accepted)
        .collect();

    // Wait until every accepted message is final, or nothing moves for long:
    // a report window (or a minute) and half a minute for the modems.
    let db = cfg.dir.join("smsbridge.db");
    let stall = window.unwrap_or(Duration::from_secs(60)) + Duration::from_secs(30);
    let mut last = (usize::MAX, Instant::now());
    loop {
        let r = rows(&db, cfg.seed)?;
        let open = accepted
            .iter()
            .filter(|n| !r.get(n).is_some_and(|(s, _)| is_final(s)))
            .count();
        if open == 0 {
            break;
        }
        if open != last.0 {
            say(
                cfg,
                start,
                &format!("{open} accepted messages not final yet"),
            );
            last = (open, Instant::now());
        } else if last.1.elapsed() > stall {
            say(
                cfg,
                start,
                &format!("{open} stayed not final for {stall:?}; giving up"),
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    daemon.stop();

    let r = rows(&db, cfg.seed)?;
    let mut sent_count: HashMap<(usize, bool), usize> = HashMap::new();
    for s in &sims {
        for part in s.sent()? {
            for tag in tags_in(cfg.seed, part.text.as_deref().unwrap_or_default()) {
                *sent_count.entry(tag).or_default() += 1;
            }
        }
    }
    figures.committed_unanswered = r
        .keys()
        .filter(|n| answers.get(**n) == Some(&Answer::None))
        .count();
    figures.refused_but_stored = r
        .keys()
        .filter(|n| matches!(answers.get(**n), Some(Answer::Refused(_))))
        .copied()
        .collect();
    figures.refused_but_stored.sort_unstable();
    for n in 0..answers.len() {
        let twice = [false, true]
            .iter()
            .any(|end| sent_count.get(&(n, *end)).copied().unwrap_or(0) > 1);
        if twice {
            figures.sent_twice.push(n);
        }
    }
    for &n in &accepted {
        let Some((state, cause)) = r.get(&n) else {
            figures.lost.push(n);
            continue;
        };
        match state.as_str() {
            "delivered" => {
                figures.delivered += 1;
                if !sent_count.contains_key(&(n, false)) {
                    figures.delivered_unsent.push(n);
                }
            }
            "delivery_unknown" => figures.delivery_unknown += 1,
            "failed" => {
                if sent_count.contains_key(&(n, false)) {
                    figures.failed_but_sent += 1;
                }
                match cause.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
                    Some(c) => *figures.failed_by_cause.entry(cause_class(c)).or_default() += 1,
                    None => figures.failed_without_cause += 1,
                }
            }
            other => *figures.not_final.entry(other.to_owned()).or_default() += 1,
        }
    }
    figures.wall = start.elapsed();
    Ok(figures)
}

/// A cause without the numbers that differ per message, so the table groups.
fn cause_class(cause: &str) -> String {
    let c: String = cause
        .chars()
        .map(|ch| if ch.is_ascii_digit() { '#' } else { ch })
        .collect();
    // Keep CMS codes: they are the cause.
    if let Some(i) = cause.find("CMS ERROR") {
        return cause[i..].chars().take(24).collect();
    }
    c.chars().take(60).collect()
}

fn wait_until(start: Instant, at: Duration) {
    if let Some(d) = (start + at).checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}
