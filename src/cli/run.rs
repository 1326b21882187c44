//! `smsbridge run`, `smsbridge status` and `smsbridge config check`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::daemon::{self, Status};

fn load(path: Option<&PathBuf>) -> Result<Config, ExitCode> {
    match path {
        Some(p) => Config::load(p).map_err(super::invalid_input),
        None => Ok(Config::default()),
    }
}

/// Runs the daemon.
pub(super) fn run(config: Option<&PathBuf>, db: Option<PathBuf>) -> ExitCode {
    let mut cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(db) = db {
        cfg.database.path = db;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::failure(&format!("cannot start the async runtime: {e}")),
    };
    match rt.block_on(daemon::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smsbridge: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    /// Print the daemon's JSON as it is.
    #[arg(long)]
    json: bool,
    /// Show recipients' numbers and IMSIs in full (masked by default).
    #[arg(long)]
    unmask: bool,
}

/// `GET /status` from the running daemon, over plain HTTP/1.0, with the
/// configured token.
fn fetch_status(addr: &str, token: &str, unmask: bool) -> Result<String, String> {
    let not_running =
        |e: std::io::Error| format!("the daemon is not running (no answer on {addr}: {e})");
    let sock = addr
        .parse()
        .map_err(|_| format!("status.listen {addr:?} is not an address"))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(3)).map_err(not_running)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(not_running)?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let query = if unmask { "?unmask=1" } else { "" };
    s.write_all(format!("GET /status{query} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").as_bytes())
        .map_err(not_running)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(not_running)?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or("malformed answer from the daemon")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!(
            "the daemon answered {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_owned())
}

pub(super) fn status(config: Option<&PathBuf>, args: &StatusArgs) -> ExitCode {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cfg.status.listen.is_empty() {
        return super::failure("the status endpoint is disabled (status.listen = \"\")");
    }
    let body = match fetch_status(&cfg.status.listen, &cfg.status.token, args.unmask) {
        Ok(b) => b,
        Err(e) => return super::failure(&e),
    };
    if args.json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    let st: Status = match serde_json::from_str(&body) {
        Ok(s) => s,
        Err(e) => return super::failure(&format!("unreadable status from the daemon: {e}")),
    };
    println!(
        "up {}s, {} SIP contacts registered",
        st.uptime_secs, st.sip_registrations
    );
    println!("modems:");
    for m in &st.modems {
        let state = if !m.ready {
            "down"
        } else if m.registered {
            "ready"
        } else {
            "not registered"
        };
        // A modem that is down shows no signal: the last one it reported is
        // not what it has now.
        let signal = match m.signal_dbm {
            Some(d) if !m.stale => format!("{d} dBm"),
            _ => "-".into(),
        };
        println!(
            "  {:<10} {:<14} {:<32} {:>8} {:<16} {}",
            m.name,
            state,
            if m.stale { "-" } else { &m.registration },
            signal,
            m.operator.as_deref().unwrap_or("-"),
            m.port
        );
        if let Some(e) = &m.last_error {
            println!("             last error: {e}");
        }
    }
    let queue: Vec<String> = st
        .queue
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!(
        "outbox: {}",
        if queue.is_empty() {
            "empty".to_owned()
        } else {
            queue.join(", ")
        }
    );
    println!("inbound waiting for delivery: {}", st.inbound_pending);
    if !st.recent_failures.is_empty() {
        println!("recent failures:");
        for f in &st.recent_failures {
            println!("  {} {}: {}", f.at, f.recipient, f.error);
        }
    }
    ExitCode::SUCCESS
}

#[derive(Debug, Subcommand)]
pub(super) enum ConfigCommand {
    /// Read the configuration and report errors with line and column.
    Check,
}

pub(super) fn config_check(config: Option<&PathBuf>) -> ExitCode {
    let Some(path) = config else {
        println!(
            "no configuration file: every setting has its default (demo mode: simulated modem)"
        );
        return ExitCode::SUCCESS;
    };
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return super::invalid_input(e),
    };
    if let Err(e) = cfg.validate() {
        return super::invalid_input(format!("{}: {e}", path.display()));
    }
    println!(
        "{}: OK ({} modem(s){}, SIP udp {} tcp {}, database {})",
        path.display(),
        cfg.modem.len(),
        if cfg.modem.is_empty() {
            ", demo mode"
        } else {
            ""
        },
        cfg.sip.udp.join(" "),
        cfg.sip.tcp.join(" "),
        cfg.database.path.display()
    );
    ExitCode::SUCCESS
}
