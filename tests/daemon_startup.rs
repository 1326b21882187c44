//! Start-up failures of `smsbridge run`: every configured listener that cannot
//! bind is one line on stderr naming it and its address, and exit status 2,
//! before any modem or delivery task starts (so no task logs its own stop).

mod daemon_support;
mod sim_support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use daemon_support::{BIN, free_port, write_config};
use sim_support::{TempDir, run};

/// Which listener a test takes away from the daemon.
enum Taken {
    SipUdp,
    SipTcp,
    Imps,
    Status,
}

/// Holds the port the daemon wants, then runs it; returns (exit code, stderr,
/// the address that was taken).
fn start_with(taken: &Taken) -> (Option<i32>, String, SocketAddr) {
    let dir = TempDir::new("startup");
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // No modem: the built-in simulated one. It never starts when a listener
    // cannot bind.
    let (config, db, sip, status) =
        write_config(dir.path(), &[], &format!("[imps]\nlisten = \"{imps}\"\n"));
    let addr = match taken {
        Taken::SipUdp | Taken::SipTcp => sip,
        Taken::Imps => imps,
        Taken::Status => status,
    };
    let (_udp, _tcp) = match taken {
        Taken::SipUdp => (Some(UdpSocket::bind(addr).expect("take UDP")), None),
        _ => (None, Some(TcpListener::bind(addr).expect("take TCP"))),
    };
    let ran = run_daemon(dir.path(), &config);
    assert!(
        !db.exists(),
        "a start that cannot listen created {}",
        db.display()
    );
    (ran.0, ran.1, addr)
}

fn run_daemon(dir: &Path, config: &Path) -> (Option<i32>, String) {
    let ran = run(
        Command::new(BIN)
            .current_dir(dir)
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("RUST_LOG"),
        Duration::from_secs(30),
    );
    assert!(
        ran.status.is_some(),
        "still running after 30 s: {}",
        ran.all()
    );
    (ran.status.and_then(|s| s.code()), ran.stderr)
}

fn assert_one_line(taken: Taken, name: &str) {
    let (code, stderr, addr) = start_with(&taken);
    assert_eq!(
        stderr,
        format!(
            "smsbridge: cannot listen: {name} on {addr}: Address already in use (os error 98)\n"
        ),
    );
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn a_taken_sip_udp_port_is_one_line_and_exit_2() {
    assert_one_line(Taken::SipUdp, "SIP UDP");
}

#[test]
fn a_taken_sip_tcp_port_is_one_line_and_exit_2() {
    assert_one_line(Taken::SipTcp, "SIP TCP");
}

#[test]
fn a_taken_imps_port_is_one_line_and_exit_2() {
    assert_one_line(Taken::Imps, "IMPS");
}

#[test]
fn a_taken_status_port_is_one_line_and_exit_2() {
    assert_one_line(Taken::Status, "status");
}

#[test]
fn an_address_that_is_not_ours_names_the_listener() {
    let dir = TempDir::new("startup-foreign");
    // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails with
    // EADDRNOTAVAIL, with no packet sent anywhere.
    let (config, _db, _sip, _status) =
        write_config(dir.path(), &[], "[imps]\nlisten = \"192.0.2.1:8080\"\n");
    let (code, stderr) = run_daemon(dir.path(), &config);
    assert_eq!(
        stderr,
        "smsbridge: cannot listen: IMPS on 192.0.2.1:8080: Cannot assign requested address (os error 99)\n"
    );
    assert_eq!(code, Some(2));
}
