//! The hardware-in-the-loop suite: a real modem with a development SIM, driven
//! through the `smsbridge` command line and the daemon, with a report a lab can
//! file. `hw-tests/main.rs` runs it on hardware (configured by environment
//! variables, see hw-tests/README.md); `tests/hw_suite_sim.rs` runs the same
//! checks against the simulated modem in CI so they cannot rot.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How the reset checks reset the modem (with no program on the port, and while
/// the daemon runs).
#[derive(Debug, Clone)]
pub enum Reset {
    /// Write `AT+CFUN=1,1` to the port (while the daemon runs, as root: it holds
    /// the port with TIOCEXCL).
    At,
    /// Ask the person at the bench to unplug the modem and plug it back in.
    Unplug,
    /// Run a command, e.g. `uhubctl -a cycle -l 1-1 -p 2` or the simulator's
    /// `smsbridge modem sim-fault --link … reboot`.
    Command(Vec<String>),
}

/// What the suite needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The smsbridge binary.
    pub bin: PathBuf,
    /// `SMSBRIDGE_HW_PORT`.
    pub port: String,
    /// `SMSBRIDGE_HW_PIN`.
    pub pin: Option<String>,
    /// `SMSBRIDGE_HW_OWN_NUMBER`: the SIM's own number.
    pub own_number: String,
    /// `SMSBRIDGE_HW_OTHER_NUMBER`: a second phone, optional.
    pub other_number: Option<String>,
    /// `SMSBRIDGE_HW_RESET`: `at` (default), `unplug` or `cmd:<command line>`.
    pub reset: Reset,
    /// `SMSBRIDGE_HW_TIMEOUT`: the longest wait for one SMS or report (default 180s).
    pub timeout: Duration,
    /// Where the daemon's configuration, database and logs go.
    pub work_dir: PathBuf,
}

impl Config {
    /// From the environment; `None` when `SMSBRIDGE_HW_PORT` is not set.
    pub fn from_env(bin: PathBuf, work_dir: PathBuf) -> Result<Option<Self>, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let Some(port) = var("SMSBRIDGE_HW_PORT") else {
            return Ok(None);
        };
        let own_number = var("SMSBRIDGE_HW_OWN_NUMBER")
            .ok_or("SMSBRIDGE_HW_OWN_NUMBER (the SIM's own number, +E.164) must be set")?;
        let reset = match var("SMSBRIDGE_HW_RESET").as_deref() {
            None | Some("at") => Reset::At,
            Some("unplug") => Reset::Unplug,
            Some(c) if c.starts_with("cmd:") => {
                Reset::Command(c[4..].split_whitespace().map(String::from).collect())
            }
            Some(other) => {
                return Err(format!(
                    "SMSBRIDGE_HW_RESET={other}: use at, unplug or cmd:<command>"
                ));
            }
        };
        let timeout = match var("SMSBRIDGE_HW_TIMEOUT") {
            Some(t) => {
                humantime::parse_duration(&t).map_err(|e| format!("SMSBRIDGE_HW_TIMEOUT: {e}"))?
            }
            None => Duration::from_secs(180),
        };
        Ok(Some(Self {
            bin,
            port,
            pin: var("SMSBRIDGE_HW_PIN"),
            own_number,
            other_number: var("SMSBRIDGE_HW_OTHER_NUMBER"),
            reset,
            timeout,
            work_dir,
        }))
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub took: Duration,
    pub detail: String,
}

/// What a lab files.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub date: String,
    pub port: String,
    pub modem: String,
    pub sim: String,
    pub own_number: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Pass)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
    }

    /// Markdown: a header with the modem's identity, one table row per check.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# smsbridge hardware test report\n\n");
        s.push_str(&format!("- date: {}\n", self.date));
        s.push_str(&format!("- smsbridge: {}\n", env!("CARGO_PKG_VERSION")));
        s.push_str(&format!("- port: `{}`\n", self.port));
        s.push_str(&format!("- modem: {}\n", self.modem));
        s.push_str(&format!("- SIM: {}\n", self.sim));
        s.push_str(&format!("- own number: {}\n\n", self.own_number));
        s.push_str("| # | check | result | time | detail |\n| --- | --- | --- | --- | --- |\n");
        for (i, c) in self.checks.iter().enumerate() {
            let verdict = match c.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "SKIP",
            };
            s.push_str(&format!(
                "| {} | {} | {verdict} | {:.1} s | {} |\n",
                i + 1,
                c.name,
                c.took.as_secs_f64(),
                c.detail.replace('|', "\\|").replace('\n', " ")
            ));
        }
        s.push_str(&format!(
            "\n{} passed, {} failed\n",
            self.passed(),
            self.failed()
        ));
        s
    }
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Runs every check in order and returns the report.
pub fn run(cfg: &Config) -> Report {
    let mut s = Suite {
        cfg,
        nonce: format!("{:06}", std::process::id() % 1_000_000),
        report: Report {
            date: now_rfc3339(),
            port: cfg.port.clone(),
            own_number: cfg.own_number.clone(),
            modem: "unknown (probe failed)".into(),
            sim: "unknown".into(),
            checks: Vec::new(),
        },
    };
    std::fs::create_dir_all(&cfg.work_dir).ok();
    s.check("probe", Suite::probe);
    s.check("own number, GSM 7-bit", |s| {
        let text = format!("smsbridge hw {} gsm7 @£$ {{}}[]~ ok", s.nonce);
        s.round_trip(&text)
    });
    s.check("own number, multipart (3 parts)", |s| {
        let mut text = format!("smsbridge hw {} multipart:", s.nonce);
        let mut i = 0;
        while text.chars().count() < 400 {
            text.push_str(&format!(" word{i}"));
            i += 1;
        }
        s.round_trip(&text)
    });
    s.check("own number, UCS-2 with emoji", |s| {
        let text = format!("smsbridge hw {} Grüße 😀 ✓ Привет", s.nonce);
        s.round_trip(&text)
    });
    s.check("status report", Suite::status_report);
    s.check(
        "stored message picked up by the start-up sweep",
        Suite::startup_sweep,
    );
    match cfg.other_number.clone() {
        Some(other) => s.check("second phone, with status report", move |s| {
            s.send_with_report(
                &other,
                &format!("smsbridge hw {} to a second phone", s.nonce),
            )
        }),
        None => s.report.checks.push(Check {
            name: "second phone, with status report",
            verdict: Verdict::Skip,
            took: Duration::ZERO,
            detail: "SMSBRIDGE_HW_OTHER_NUMBER not set".into(),
        }),
    }
    s.check(
        "status report after a modem reset",
        Suite::report_after_reset,
    );
    s.daemon_checks();
    s.report
}

struct Suite<'a> {
    cfg: &'a Config,
    nonce: String,
    report: Report,
}

type Outcome = Result<String, String>;

impl Suite<'_> {
    fn check(&mut self, name: &'static str, f: impl FnOnce(&mut Self) -> Outcome) {
        let start = Instant::now();
        let out = f(self);
        let took = start.elapsed();
        let (verdict, detail) = match out {
            Ok(d) => (Verdict::Pass, d),
            Err(d) => (Verdict::Fail, d),
        };
        eprintln!(
            "hw-tests: {name}: {} ({:.1} s) {detail}",
            if verdict == Verdict::Pass {
                "PASS"
            } else {
                "FAIL"
            },
            took.as_secs_f64()
        );
        self.report.checks.push(Check {
            name,
            verdict,
            took,
            detail,
        });
    }

    fn port_args(&self) -> Vec<String> {
        let mut a = vec!["--port".to_string(), self.cfg.port.clone()];
        if let Some(p) = &self.cfg.pin {
            a.extend(["--pin".into(), p.clone()]);
        }
        a
    }

    fn smsbridge(&self, args: &[String], limit: Duration) -> Result<String, String> {
        let mut child = Command::new(&self.cfg.bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.cfg.bin.display()))?;
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let status = wait(&mut child, limit);
        let (out, err) = (
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        );
        match status {
            Some(s) if s.success() => Ok(out),
            Some(s) => Err(format!(
                "smsbridge {} exited with {s}: {}{}",
                args[0..2].join(" "),
                out.trim(),
                err.trim()
            )),
            None => Err(format!(
                "smsbridge {} did not finish within {limit:?}",
                args[0..2].join(" ")
            )),
        }
    }

    fn probe(&mut self) -> Outcome {
        let mut args: Vec<String> = ["modem", "probe", "--json", "--timeout", "90s"]
            .map(String::from)
            .into();
        args.extend(self.port_args());
        let out = self.smsbridge(&args, Duration::from_secs(120))?;
        let v: Value =
            serde_json::from_str(out.trim()).map_err(|e| format!("probe JSON: {e}: {out}"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        self.report.modem = format!(
            "{} {} (revision {}, IMEI {})",
            s("manufacturer"),
            s("model"),
            s("revision"),
            s("imei")
        );
        self.report.sim = format!(
            "IMSI {}, operator {}, signal {} dBm, SMSC {}, receive mode {}",
            s("imsi"),
            s("operator"),
            v.get("signal_dbm").map_or("?".into(), Value::to_string),
            s("smsc"),
            s("receive_mode")
        );
        if v.get("registered") != Some(&Value::Bool(true)) {
            return Err(format!("not registered: {}", v["registration"]));
        }
        Ok(format!("{} {}, registered", s("manufacturer"), s("model")))
    }

    fn send(&self, to: &str, text: &str, report: bool) -> Result<String, String> {
        let mut args: Vec<String> = vec!["sms".into(), "send".into()];
        args.extend(self.port_args());
        args.extend(["--to".into(), to.into()]);
        if report {
            args.extend(["--report".into(), "--report-wait".into()]);
            args.push(format!("{}s", self.cfg.timeout.as_secs()));
        }
        args.push(text.into());
        self.smsbridge(&args, self.cfg.timeout + Duration::from_secs(120))
    }

    /// `sms listen --json` until an SMS whose text is `text`; returns the
    /// message and the time from the listener's start.
    fn receive(&self, text: &str) -> Result<(Value, Duration), String> {
        let mut args: Vec<String> = vec!["sms".into(), "listen".into(), "--json".into()];
        args.extend(self.port_args());
        let start = Instant::now();
        let mut child = Command::new(&self.cfg.bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sms listen: {e}"))?;
        let lines = line_channel(child.stdout.take());
        let deadline = start + self.cfg.timeout;
        let mut seen = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if v["type"] == "sms" && v["text"] == text {
                        break Some(v);
                    }
                    seen.push(
                        v["text"]
                            .as_str()
                            .unwrap_or("")
                            .chars()
                            .take(40)
                            .collect::<String>(),
                    );
                }
                Err(_) => break None,
            }
        };
        let took = start.elapsed();
        stop(&mut child);
        match found {
            Some(v) => Ok((v, took)),
            None => Err(format!(
                "not received within {:?} (other SMS seen: {seen:?})",
                self.cfg.timeout
            )),
        }
    }

    fn round_trip(&mut self, text: &str) -> Outcome {
        let start = Instant::now();
        let sent = self.send(&self.cfg.own_number, text, false)?;
        let parts = sent.lines().filter(|l| l.contains("submitted")).count();
        let (v, _) = self.receive(text)?;
        if v["from"] != self.cfg.own_number.as_str() {
            return Err(format!(
                "came back from {} instead of the own number",
                v["from"]
            ));
        }
        if v["incomplete"] == true {
            return Err("arrived incomplete".into());
        }
        Ok(format!(
            "{parts} part(s) sent, {} received and reassembled, {:.1} s end to end",
            v["parts"],
            start.elapsed().as_secs_f64()
        ))
    }

    fn send_with_report(&mut self, to: &str, text: &str) -> Outcome {
        let out = self.send(to, text, true)?;
        let delivered = out.lines().filter(|l| l.contains(": delivered")).count();
        let submitted = out.lines().filter(|l| l.contains("submitted")).count();
        if submitted > 0 && delivered == submitted {
            Ok(format!("{submitted} part(s), status report: delivered"))
        } else {
            Err(format!(
                "no delivered report: {}",
                out.trim().replace('\n', "; ")
            ))
        }
    }

    fn status_report(&mut self) -> Outcome {
        let to = self.cfg.own_number.clone();
        // The SMS itself also comes back and stays on the modem (`sms send` takes
        // only status reports off it): the next check reads it.
        self.send_with_report(&to, &self.sweep_text())
    }

    fn sweep_text(&self) -> String {
        format!(
            "smsbridge hw {} stored until the start-up sweep",
            self.nonce
        )
    }

    fn startup_sweep(&mut self) -> Outcome {
        // It was delivered while no program had the port open; a listener
        // finds it by listing the modem's storage when it starts.
        let text = self.sweep_text();
        let (_, took) = self.receive(&text)?;
        if took > Duration::from_secs(60) {
            return Err(format!(
                "found only after {took:?}: not by the start-up sweep"
            ));
        }
        Ok(format!(
            "found {:.1} s after the listener started",
            took.as_secs_f64()
        ))
    }

    /// Issue 12: after a reset the modem has forgotten `AT+CSMS`/`AT+CNMI`, and a
    /// routed report it could not hand over switches routing off. Send to the
    /// own number with a report, reset the modem, send again: the second report
    /// must arrive too.
    fn report_after_reset(&mut self) -> Outcome {
        let to = self.cfg.own_number.clone();
        let before = self.send_with_report(
            &to,
            &format!("smsbridge hw {} report before a reset", self.nonce),
        )?;
        let t = Instant::now();
        self.reset(None)?;
        // Back when it answers a probe again (it may re-enumerate meanwhile).
        let end = t + self.cfg.timeout + Duration::from_secs(120);
        let mut args: Vec<String> = ["modem", "probe", "--json", "--timeout", "30s"]
            .map(String::from)
            .into();
        args.extend(self.port_args());
        loop {
            let why = match self.smsbridge(&args, Duration::from_secs(60)) {
                Ok(out) => {
                    let v: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
                    if v.get("registered") == Some(&Value::Bool(true)) {
                        break;
                    }
                    format!("not registered yet: {}", out.trim())
                }
                Err(e) => e,
            };
            if Instant::now() > end {
                return Err(format!(
                    "the modem did not come back within {:?}: {why}",
                    end - t
                ));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        let back = t.elapsed();
        let after = self.send_with_report(
            &to,
            &format!("smsbridge hw {} report after a reset", self.nonce),
        )?;
        Ok(format!(
            "before: {before}; modem back {:.1} s after the reset; after: {after}",
            back.as_secs_f64()
        ))
    }

    fn daemon_checks(&mut self) {
        let mut daemon = match Daemon::start(self) {
            Ok(d) => d,
            Err(e) => {
                for name in [
                    "daemon end to end with a SIP client",
                    "recovery after a modem reset",
                    "daemon stops on SIGTERM",
                ] {
                    self.report.checks.push(Check {
                        name,
                        verdict: Verdict::Fail,
                        took: Duration::ZERO,
                        detail: format!("the daemon did not start: {e}"),
                    });
                }
                return;
            }
        };
        self.check("daemon end to end with a SIP client", |s| {
            let text = format!("smsbridge hw {} through the daemon", s.nonce);
            daemon.sip_round_trip(s.cfg, &text)
        });
        self.check("recovery after a modem reset", |s| {
            let t = Instant::now();
            let before = daemon.ready_count();
            s.reset(Some(&daemon))?;
            // The daemon logs "modem ready" each time it has (re)started the modem.
            let end = t + s.cfg.timeout + Duration::from_secs(120);
            while daemon.ready_count() <= before {
                if Instant::now() > end {
                    return Err(format!(
                        "the daemon did not start the modem again within {:?}; log: {}",
                        end - t,
                        daemon.log_tail()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            daemon.wait_modem(true, s.cfg.timeout)?;
            let back = t.elapsed();
            let text = format!("smsbridge hw {} after the reset", s.nonce);
            let rt = daemon.sip_round_trip(s.cfg, &text)?;
            Ok(format!(
                "the daemon had the modem ready again {:.1} s after the reset; then {rt}",
                back.as_secs_f64()
            ))
        });
        self.check("daemon stops on SIGTERM", |_| daemon.stop());
    }

    /// Resets the modem; `daemon` is the daemon that has the port, if any.
    fn reset(&self, daemon: Option<&Daemon>) -> Result<(), String> {
        match &self.cfg.reset {
            Reset::At => {
                use std::os::unix::fs::OpenOptionsExt;
                let mut port = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
                    .open(&self.cfg.port)
                    .map_err(|e| format!("cannot open {} to send AT+CFUN=1,1 (run as root, or set SMSBRIDGE_HW_RESET): {e}", self.cfg.port))?;
                port.write_all(b"AT+CFUN=1,1\r")
                    .map_err(|e| format!("writing AT+CFUN=1,1: {e}"))?;
                Ok(())
            }
            Reset::Unplug => {
                eprintln!("hw-tests: UNPLUG the modem now, then plug it back in");
                match daemon {
                    Some(daemon) => daemon.wait_modem(false, Duration::from_secs(300))?,
                    None => wait_port_gone(&self.cfg.port, Duration::from_secs(300))?,
                }
                eprintln!("hw-tests: modem gone; plug it back in");
                Ok(())
            }
            Reset::Command(argv) => {
                let (prog, args) = argv
                    .split_first()
                    .ok_or("SMSBRIDGE_HW_RESET=cmd: is empty")?;
                let st = Command::new(prog)
                    .args(args)
                    .stdin(Stdio::null())
                    .status()
                    .map_err(|e| format!("cannot run {prog}: {e}"))?;
                if st.success() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {st}", argv.join(" ")))
                }
            }
        }
    }
}

/// `smsbridge run` as a child process, with its own configuration and database.
struct Daemon {
    child: Child,
    config: PathBuf,
    bin: PathBuf,
    sip: std::net::SocketAddr,
    ua: UdpSocket,
    cseq: u32,
    log: PathBuf,
}

/// Until the port's device node disappears (a modem unplugged); a `tcp://` port
/// has none to watch, so the caller's retries cover it.
fn wait_port_gone(port: &str, limit: Duration) -> Result<(), String> {
    if port.starts_with("tcp://") {
        return Ok(());
    }
    let end = Instant::now() + limit;
    while Path::new(port).exists() {
        if Instant::now() > end {
            return Err(format!("{port} was not unplugged within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_or(0, |a| a.port())
}

impl Daemon {
    fn start(s: &Suite<'_>) -> Result<Self, String> {
        let dir = &s.cfg.work_dir;
        let (sip_port, status_port) = (free_port(), free_port());
        let tcp_port = free_port();
        let db = dir.join("hw.db");
        let _ = std::fs::remove_file(&db);
        let pin = s
            .cfg
            .pin
            .as_ref()
            .map_or(String::new(), |p| format!("pin = \"{p}\"\n"));
        let config = dir.join("smsbridge.toml");
        let text = format!(
            "[database]\npath = \"{}\"\n[sip]\ndomain = \"localhost\"\nudp = [\"127.0.0.1:{sip_port}\"]\n\
             tcp = [\"127.0.0.1:{tcp_port}\"]\ntrusted_peers = [\"127.0.0.1\"]\n\
             [[modem]]\nname = \"hw\"\nport = \"{}\"\n{pin}[status]\nlisten = \"127.0.0.1:{status_port}\"\n",
            db.display(),
            s.cfg.port
        );
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        let mut add = Command::new(&s.cfg.bin)
            .arg("--config")
            .arg(&config)
            .args([
                "users",
                "add",
                "sip:lab@localhost",
                "--password-stdin",
                "--display",
                "Lab",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("users add: {e}"))?;
        if let Some(mut i) = add.stdin.take() {
            let _ = i.write_all(b"lab-password\n");
        }
        if !add.wait().is_ok_and(|st| st.success()) {
            return Err("smsbridge users add failed".into());
        }
        let log = dir.join("daemon.log");
        let child = Command::new(&s.cfg.bin)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("RUST_LOG", "info,rsipstack=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("smsbridge run: {e}"))?;
        let ua = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let mut d = Self {
            child,
            config,
            bin: s.cfg.bin.clone(),
            sip: format!("127.0.0.1:{sip_port}")
                .parse()
                .map_err(|_| "sip address")?,
            ua,
            cseq: 1,
            log,
        };
        d.wait_modem(true, s.cfg.timeout + Duration::from_secs(60))
            .map_err(|e| format!("{e}; log: {}", d.log_tail()))?;
        d.register()?;
        Ok(d)
    }

    /// How often the daemon has logged that the modem is ready.
    fn ready_count(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("modem ready")
            .count()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" / ")
    }

    /// Polls `smsbridge status --json` until the modem is (or is not) ready.
    fn wait_modem(&self, ready: bool, limit: Duration) -> Result<(), String> {
        let end = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < end {
            let out = Command::new(&self.bin)
                .arg("--config")
                .arg(&self.config)
                .args(["status", "--json"])
                .stdin(Stdio::null())
                .output();
            if let Ok(o) = out {
                last = String::from_utf8_lossy(&o.stdout).trim().to_string();
                if let Ok(v) = serde_json::from_str::<Value>(&last) {
                    let m = &v["modems"][0];
                    let up = m["ready"] == true && m["registered"] == true;
                    if up == ready {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(format!(
            "the modem was not {} within {limit:?} (status: {last})",
            if ready { "ready" } else { "down" }
        ))
    }

    fn local(&self) -> String {
        self.ua
            .local_addr()
            .map_or_else(|_| "127.0.0.1:0".into(), |a| a.to_string())
    }

    fn request(&mut self, method: &str, uri: &str, to: &str, extra: &str, body: &str) -> String {
        self.cseq += 1;
        let local = self.local();
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKhw{n}\r\nMax-Forwards: 70\r\n\
             From: \"Lab\" <sip:lab@localhost>;tag=hw{n}\r\nTo: <{to}>\r\nCall-ID: hw{n}@{local}\r\n\
             CSeq: {n} {method}\r\nContact: <sip:lab@{local}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            n = self.cseq,
            len = body.len()
        )
    }

    /// Sends `req` and returns the first final response.
    fn exchange(&self, req: &str) -> Result<String, String> {
        self.ua
            .send_to(req.as_bytes(), self.sip)
            .map_err(|e| e.to_string())?;
        self.ua
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, _) = self
                .ua
                .recv_from(&mut buf)
                .map_err(|e| format!("no SIP answer: {e}"))?;
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with("SIP/2.0 ") && sip_status(&msg) >= 200 {
                return Ok(msg);
            }
        }
    }

    fn register(&mut self) -> Result<(), String> {
        let req = self.request(
            "REGISTER",
            "sip:localhost",
            "sip:lab@localhost",
            "Expires: 600\r\n",
            "",
        );
        let r = self.exchange(&req)?;
        if sip_status(&r) != 200 {
            return Err(format!(
                "REGISTER answered {}",
                r.lines().next().unwrap_or("")
            ));
        }
        Ok(())
    }

    /// A MESSAGE to the SIM's own number; the SMS comes back and the daemon
    /// delivers it to us as a MESSAGE.
    fn sip_round_trip(&mut self, cfg: &Config, text: &str) -> Outcome {
        let start = Instant::now();
        self.register()?;
        let to = format!("sip:{}@localhost", cfg.own_number);
        let req = self.request(
            "MESSAGE",
            &to,
            &to,
            "Content-Type: text/plain;charset=UTF-8\r\n",
            text,
        );
        let r = self.exchange(&req)?;
        let code = sip_status(&r);
        if code != 202 && code != 200 {
            return Err(format!(
                "MESSAGE answered {}",
                r.lines().next().unwrap_or("")
            ));
        }
        let accepted = start.elapsed();
        let end = start + cfg.timeout;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < end {
            let left = end
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10));
            self.ua
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let Ok((n, from)) = self.ua.recv_from(&mut buf) else {
                break;
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !msg.starts_with("MESSAGE ") {
                continue;
            }
            let ok = sip_response(&msg, 200, "OK");
            let _ = self.ua.send_to(ok.as_bytes(), from);
            let body = msg.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            if body.contains(text) {
                return Ok(format!(
                    "MESSAGE {code} after {:.1} s, the SMS came back as a MESSAGE after {:.1} s",
                    accepted.as_secs_f64(),
                    start.elapsed().as_secs_f64()
                ));
            }
        }
        Err(format!(
            "no MESSAGE with the text came back within {:?}; daemon log: {}",
            cfg.timeout,
            self.log_tail()
        ))
    }

    fn stop(&mut self) -> Outcome {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        match wait(&mut self.child, Duration::from_secs(30)) {
            Some(st) if st.success() => Ok("exit status 0".into()),
            Some(st) => Err(format!("exited with {st}: {}", self.log_tail())),
            None => Err("still running 30 s after SIGTERM".into()),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            stop(&mut self.child);
        }
    }
}

fn sip_status(msg: &str) -> u16 {
    msg.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn sip_response(req: &str, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    let head = req.split("\r\n\r\n").next().unwrap_or("");
    for line in head.lines().skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq"
        ) {
            out.push_str(line);
            out.push_str("\r\n");
        } else if name == "to" || name == "t" {
            out.push_str(line);
            if !line.contains("tag=") {
                out.push_str(";tag=hwua");
            }
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn reader<R: std::io::Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

fn line_channel<R: std::io::Read + Send + 'static>(r: Option<R>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some(r) = r {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= end {
            stop(child);
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM (the port is closed cleanly), then SIGKILL after 10 s.
fn stop(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A fresh directory for one run.
pub fn work_dir(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("smsbridge-{name}-{}-{nanos}", std::process::id()))
}

/// Writes the report next to the work directory's files and, if asked, to `path`.
pub fn save(report: &Report, path: Option<&Path>) -> std::io::Result<()> {
    if let Some(p) = path {
        std::fs::write(p, report.markdown())?;
    }
    Ok(())
}
