//! sipp (Debian `sip-tester`) against the real front end on 127.0.0.1 port 0,
//! with a fake bridge. Each scenario under `tests/sipp/` runs one call; sipp's
//! exit status says whether every expected message came.

mod common;
mod sip_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sip_support::{start, udp_addr};

fn sipp_installed() -> bool {
    common::peer_available(
        "sipp",
        "apt-get install sip-tester",
        common::command_succeeds("sh", &["-c", "command -v sipp"]),
    )
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(5099)
}

/// Runs one call of `name` against `target`; panics with sipp's output and
/// error log when it fails.
async fn sipp(name: &str, target: SocketAddr, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let sf = scenario(name);
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.current_dir(dir.path())
        .arg(target.to_string())
        .args(["-sf", sf.to_str().unwrap()])
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &port, "-t", "u1"])
        .args([
            "-nostdin",
            "-timeout",
            "20",
            "-timeout_error",
            "-recv_timeout",
            "8000",
        ])
        .args(["-trace_err", "-trace_msg"])
        .args(extra);
    if extra.contains(&"-au") {
        let xml = std::fs::read_to_string(&sf).expect("scenario");
        if let Some(uri) = common::sipp_auth_uri(&xml) {
            cmd.args(["-auth_uri", &uri]);
        }
    }
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("sipp finishes")
        .expect("sipp runs");
    if !out.status.success() {
        let mut logs = String::new();
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            logs.push_str(&format!("--- {}\n", e.path().display()));
            logs.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
        panic!(
            "sipp {name} failed ({}):\n{}\n{}\n{logs}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const AUTH: &[&str] = &["-au", "alice", "-ap", "secret"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_with_digest_is_accepted() {
    if !sipp_installed() {
        return;
    }
    let (fe, bridge, stop) = start(&[]).await;
    sipp("message_auth_202.xml", udp_addr(&fe), AUTH).await;
    let got = bridge.submitted.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text.trim(), "Hello from sipp");
    assert_eq!(got[0].sender.address, "sip:alice@sms.example");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_errors_map_to_their_status_codes() {
    if !sipp_installed() {
        return;
    }
    let (fe, bridge, stop) = start(&[]).await;
    let target = udp_addr(&fe);
    sipp("message_401.xml", target, &[]).await;
    assert!(bridge.submitted.lock().unwrap().is_empty());
    for s in [
        "message_415.xml",
        "message_413.xml",
        "message_404.xml",
        "message_503.xml",
    ] {
        sipp(s, target, AUTH).await;
    }
    // 415 is decided before the bridge; the other three were refused by it.
    assert_eq!(bridge.submitted.lock().unwrap().len(), 3);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_and_unknown_methods() {
    if !sipp_installed() {
        return;
    }
    let (fe, _bridge, stop) = start(&[]).await;
    sipp("options_200.xml", udp_addr(&fe), &[]).await;
    sipp("unknown_501.xml", udp_addr(&fe), &[]).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_digest() {
    if !sipp_installed() {
        return;
    }
    let (fe, bridge, stop) = start(&[]).await;
    sipp("register_200.xml", udp_addr(&fe), AUTH).await;
    let regs = fe.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].0, "sip:alice@sms.example");
    assert!(regs[0].1[0].starts_with("sip:alice@127.0.0.1:"), "{regs:?}");
    assert_eq!(
        *bridge.online.lock().unwrap(),
        vec!["sip:alice@sms.example".to_owned()]
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_gets_200_and_a_pidf_notify() {
    if !sipp_installed() {
        return;
    }
    let (fe, _bridge, stop) = start(&[]).await;
    sipp("subscribe_notify.xml", udp_addr(&fe), AUTH).await;
    stop.cancel();
}
