//! `smsbridge modem sim` as a process, driven over its PTY and TCP ports and its
//! control socket: the driver's part of the faults (a hang cleared by closing the
//! port, a port that vanishes and comes back) and the `sim-*` commands.

mod sim_support;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use sim_support::{SimProcess, TempDir, eventually, run};

fn open_port(link: &Path) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK).bits())
        .open(link)
        .unwrap_or_else(|e| panic!("open {}: {e}", link.display()))
}

/// Writes `input`, then reads until the output contains `until` or `limit` passes.
fn exchange(port: &mut (impl Read + Write), input: &str, until: &str, limit: Duration) -> String {
    port.write_all(input.as_bytes()).expect("write to the port");
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < end {
        match port.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
        if !until.is_empty() && String::from_utf8_lossy(&got).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn smsbridge(args: &[&str]) -> sim_support::Ran {
    run(
        Command::new(env!("CARGO_BIN_EXE_smsbridge")).args(args),
        Duration::from_secs(20),
    )
}

#[test]
fn pty_hang_is_cleared_by_reopening_the_port() {
    let dir = TempDir::new("sim-hang");
    let sim = SimProcess::start(dir.path(), &["--hang-after", "1"]);
    let mut port = open_port(&sim.link);
    let ok = exchange(&mut port, "AT\r", "OK\r\n", Duration::from_secs(5));
    assert_eq!(ok, "AT\r\r\nOK\r\n");
    let silent = exchange(&mut port, "AT\r", "", Duration::from_millis(500));
    assert_eq!(silent, "");
    let resets = || sim.transcript().matches("!! port reset").count();
    let before = resets();
    drop(port);
    // The simulator notices the close (EIO on the master) and resets the port.
    let reset = eventually(Duration::from_secs(5), || (resets() > before).then_some(()));
    assert!(reset.is_some(), "no port reset:\n{}", sim.transcript());
    let mut port = open_port(&sim.link);
    let ok = exchange(&mut port, "AT\r", "OK\r\n", Duration::from_secs(5));
    assert_eq!(ok, "AT\r\r\nOK\r\n", "{}", sim.transcript());
}

#[test]
fn pty_vanishes_and_comes_back_behind_the_same_link() {
    let dir = TempDir::new("sim-vanish");
    let sim = SimProcess::start(dir.path(), &["--vanish-after", "1", "--vanish-for", "1s"]);
    let mut port = open_port(&sim.link);
    let ok = exchange(&mut port, "AT\r", "OK\r\n", Duration::from_secs(5));
    assert_eq!(ok, "AT\r\r\nOK\r\n");
    let gone = eventually(Duration::from_secs(5), || {
        std::fs::symlink_metadata(&sim.link).is_err().then_some(())
    });
    assert!(gone.is_some(), "the link never went away");
    // The old port is dead: reads give EIO or end of file.
    let mut buf = [0u8; 16];
    assert!(!matches!(port.read(&mut buf), Ok(n) if n > 0));
    drop(port);
    let back = eventually(Duration::from_secs(5), || {
        std::fs::symlink_metadata(&sim.link).is_ok().then_some(())
    });
    assert!(back.is_some(), "the link never came back");
    let mut port = open_port(&sim.link);
    let ok = exchange(&mut port, "AT\r", "OK\r\n", Duration::from_secs(5));
    assert_eq!(ok, "AT\r\r\nOK\r\n", "{}", sim.stderr());
    assert!(sim.transcript().contains("port vanishes for 1s"));
}

#[test]
fn tcp_port_control_socket_and_cli_commands() {
    let dir = TempDir::new("sim-tcp");
    let sim = SimProcess::start_tcp(dir.path(), &["--default-phone", "silent"]);
    let addr = sim
        .port
        .strip_prefix("tcp://")
        .expect("tcp port")
        .to_string();
    let ctl = sim.control.to_str().expect("utf-8").to_string();
    let mut conn = TcpStream::connect(&addr).expect("connect");
    conn.set_nonblocking(true).expect("nonblocking");
    let out = exchange(&mut conn, "ATE0\r", "OK\r\n", Duration::from_secs(5));
    assert_eq!(out, "ATE0\r\r\nOK\r\n");
    let out = exchange(
        &mut conn,
        "AT+CNMI=2,1,0,0,0\r",
        "OK\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(out, "\r\nOK\r\n");

    // sim-inject: a three-part message, last part first.
    let long = "x".repeat(400);
    let inject = smsbridge(&[
        "modem",
        "sim-inject",
        "--control",
        &ctl,
        "--from",
        "+15551230000",
        "--order",
        "reverse",
        &long,
    ]);
    assert!(inject.ok(), "{}", inject.all());
    assert_eq!(inject.stdout.trim(), "injected 3 part(s)");
    let urcs = exchange(&mut conn, "", "\"SM\",2", Duration::from_secs(5));
    assert_eq!(
        urcs,
        "\r\n+CMTI: \"SM\",0\r\n\r\n+CMTI: \"SM\",1\r\n\r\n+CMTI: \"SM\",2\r\n"
    );
    let bad = smsbridge(&[
        "modem",
        "sim-inject",
        "--control",
        &ctl,
        "--from",
        "not a number!",
        "x",
    ]);
    assert_eq!(bad.status.and_then(|s| s.code()), Some(2), "{}", bad.all());
    assert!(bad.stderr.contains("invalid sender"), "{}", bad.stderr);

    // A send, then sim-sent lists it as JSON.
    let pdu = "0011000B915155214365F70000FF05E8329BFD06";
    let out = exchange(
        &mut conn,
        &format!("AT+CMGS=19\r{pdu}\x1a"),
        "OK\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(out, "\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n");
    let sent = smsbridge(&["modem", "sim-sent", "--control", &ctl]);
    assert!(sent.ok(), "{}", sent.all());
    let line: serde_json::Value = serde_json::from_str(sent.stdout.trim()).expect("json");
    assert_eq!(line["to"], "+15551234567");
    assert_eq!(line["text"], "hello");
    assert_eq!(line["mr"], 1);

    // sim-fault: hang on the next line; a new connection is a port reset.
    let fault = smsbridge(&["modem", "sim-fault", "--control", &ctl, "hang-after", "0"]);
    assert!(fault.ok(), "{}", fault.all());
    assert_eq!(
        exchange(&mut conn, "AT\r", "", Duration::from_millis(500)),
        ""
    );
    let mut conn = TcpStream::connect(&addr).expect("reconnect");
    conn.set_nonblocking(true).expect("nonblocking");
    let out = exchange(&mut conn, "AT\r", "OK\r\n", Duration::from_secs(5));
    assert_eq!(out, "\r\nOK\r\n");
    let bad = smsbridge(&["modem", "sim-fault", "--control", &ctl, "explode"]);
    assert_eq!(bad.status.and_then(|s| s.code()), Some(2));
    assert!(sim.stop().success());
}
