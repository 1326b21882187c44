//! Helpers for the tests that run `smsbridge modem sim` as a process and point a
//! client (gammu, kamailio, a raw port) at it. Use as `mod sim_support;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use smsbridge::sim::{ControlRequest, ControlResponse, SentSummary, send_control};

/// A fresh directory under the system temp dir, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("smsbridge-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `smsbridge modem sim`.
pub struct SimProcess {
    child: Child,
    /// The port: the PTY link, or `tcp://...` for `--listen`.
    pub port: String,
    pub link: PathBuf,
    pub control: PathBuf,
    pub transcript: PathBuf,
    stderr: PathBuf,
}

impl SimProcess {
    /// Starts the simulator on a PTY at `<dir>/modem` with `args` added, and
    /// waits for its ready line.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let link = dir.join("modem");
        Self::spawn(
            dir,
            &[&["--link", link.to_str().expect("utf-8 path")], args].concat(),
            link.clone(),
            smsbridge::sim::control_path(&link),
        )
    }

    /// Starts the simulator on TCP (`--listen tcp://127.0.0.1:0`).
    pub fn start_tcp(dir: &Path, args: &[&str]) -> Self {
        let control = dir.join("sim.ctl");
        let ctl = control.to_str().expect("utf-8 path").to_string();
        let base = ["--listen", "tcp://127.0.0.1:0", "--control", ctl.as_str()];
        Self::spawn(dir, &[&base[..], args].concat(), PathBuf::new(), control)
    }

    fn spawn(dir: &Path, args: &[&str], link: PathBuf, control: PathBuf) -> Self {
        let transcript = dir.join("transcript.log");
        let stderr = dir.join("sim.stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
            .args(["modem", "sim", "--transcript"])
            .arg(&transcript)
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start smsbridge modem sim");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the simulator prints its ready line");
        let port = line
            .strip_prefix("simulated modem on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        Self {
            child,
            port,
            link,
            control,
            transcript,
            stderr,
        }
    }

    pub fn ask(&self, req: &ControlRequest) -> ControlResponse {
        send_control(&self.control, req).expect("control socket answers")
    }

    pub fn sent(&self) -> Vec<SentSummary> {
        self.ask(&ControlRequest::Sent).sent.unwrap_or_default()
    }

    pub fn transcript(&self) -> String {
        std::fs::read_to_string(&self.transcript).unwrap_or_default()
    }

    /// What the simulator logged, for failure messages.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        wait_for(&mut self.child, Duration::from_secs(10)).expect("the simulator stops on SIGTERM")
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            if wait_for(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Waits up to `limit` for `child` to exit.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// What a command printed and how it ended; `status` is `None` after a timeout
/// (the command was killed).
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with no stdin, killing it after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Ran {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let status = wait_for(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
