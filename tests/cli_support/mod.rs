//! The store commands run as an operator runs them: the binary as a process on
//! a temporary database. Use it as `mod cli_support;` from a file in `tests/`.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use smsbridge::store::Store;

pub struct Db {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Db {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smsbridge.db");
        Self { _dir: dir, path }
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Runs `smsbridge --db <db> args…` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smsbridge"));
        cmd.arg("--db").arg(&self.path).args(args);
        run(cmd, stdin)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        stdout(&self.run(args, ""))
    }

    pub fn store(&self) -> Store {
        Store::open(&self.path).unwrap()
    }
}

pub fn run(mut cmd: Command, stdin: &str) -> Output {
    cmd.env_remove("SMSBRIDGE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run smsbridge");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Exit status and stderr of a failed run.
pub fn failure(o: &Output) -> (i32, String) {
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stderr.clone()).unwrap(),
    )
}
