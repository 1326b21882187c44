//! Kamailio as a process for the tests that run a shipped example
//! configuration: checked with `kamailio -c`, started in the foreground in
//! its own process group with its log in a file, and stopped with all its
//! children on drop. Use with `mod sim_support; mod kamailio_support;`.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running Kamailio.
pub struct Kamailio {
    child: Child,
    /// Its stderr: the log.
    pub log: PathBuf,
}

impl Kamailio {
    /// Checks `cfg` (panicking with Kamailio's complaint) and starts it with
    /// `shm_mb`/`pkg_mb` of memory, its runtime files in `<dir>/<name>-run`
    /// and its log in `<dir>/<name>.log`.
    pub fn start(dir: &Path, name: &str, cfg: &Path, shm_mb: u32, pkg_mb: u32) -> Self {
        let check = Command::new("kamailio")
            .args(["-c", "-f"])
            .arg(cfg)
            .output()
            .expect("kamailio -c");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let run_dir = dir.join(format!("{name}-run"));
        std::fs::create_dir_all(&run_dir).expect("runtime dir");
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("kamailio")
            .args([
                "-DD",
                "-E",
                "-m",
                &shm_mb.to_string(),
                "-M",
                &pkg_mb.to_string(),
            ])
            .arg("-f")
            .arg(cfg)
            .arg("-Y")
            .arg(&run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .process_group(0)
            .spawn()
            .expect("kamailio starts");
        Self { child, log }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // Kamailio forks; its children share the process group.
        stop_group(&mut self.child, Duration::from_secs(10));
    }
}

/// SIGTERM to the process group `child` leads, SIGKILL after `grace`.
pub fn stop_group(child: &mut Child, grace: Duration) {
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
    if crate::sim_support::wait_for(child, grace).is_none() {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    }
}
