//! Slow and greedy clients against the daemon's HTTP listeners (IMPS and the
//! status port): connection caps per address hold, a head that never ends is
//! cut off, an oversized declared body is refused before it is read, a body
//! that never arrives times out, legitimate clients still get through, and the
//! daemon's descriptors return to where they were.

mod daemon_support;
mod sim_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, add_user, free_port, write_config};
use sim_support::{SimProcess, TempDir, eventually};

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{from}:0").parse().expect("address"))
            .expect("bind");
        socket.connect(to).await.expect("connect")
    });
    let s = stream.into_std().expect("std stream");
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// `n` clients from 127.0.0.1, each having sent `head` and then nothing.
fn slow_clients(n: usize, to: SocketAddr, head: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = connect_from("127.0.0.1", to);
            s.write_all(head).unwrap();
            s
        })
        .collect()
}

/// Reads until the server closes; what it sent. Fails after 15 s.
fn until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&out).into_owned();
            }
            Err(e) => panic!("no close within the read timeout: {e}; got {out:?}"),
        }
    }
}

fn fds(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid().expect("running")))
        .map(|r| r.count())
        .unwrap_or(0)
}

const LOGIN: &str = "<?xml version=\"1.0\"?><WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/WV-CSP1.3\"><Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor><Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode><TransactionID>1</TransactionID></TransactionDescriptor><TransactionContent xmlns=\"http://www.openmobilealliance.org/DTD/WV-TRC1.3\"><Login-Request><UserID>wv:alice@sms.test</UserID><ClientID><URL>t</URL></ClientID><Password>secret</Password></Login-Request></TransactionContent></Transaction></Session></WV-CSP-Message>";

fn post(body: &str) -> String {
    format!(
        "POST /imps HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.wv.csp+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn imps_listener_limits_hold_and_legitimate_clients_get_through() {
    let dir = TempDir::new("http-slow");
    let sim = SimProcess::start(dir.path(), &[]);
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        &format!(
            "[imps]\nlisten = \"{imps}\"\nmax_connections = 8\nmax_connections_per_address = 4\n\
             header_timeout = \"2s\"\nbody_timeout = \"2s\"\n"
        ),
    );
    add_user(&config, "wv:alice@sms.test", "secret", &[]);
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let baseline = fds(&daemon);

    // Four slow clients from one address, each with half a head.
    let mut slow = slow_clients(4, imps, b"POST /imps HTTP/1.1\r\nHost: x\r\n");
    // A fifth from the same address is closed at once, with nothing said.
    let mut fifth = connect_from("127.0.0.1", imps);
    let _ = fifth.write_all(post(LOGIN).as_bytes());
    assert_eq!(until_closed(&mut fifth), "", "the fifth got an answer");
    // Someone else still gets in.
    let mut other = connect_from("127.0.0.2", imps);
    other.write_all(post(LOGIN).as_bytes()).unwrap();
    let answer = until_closed(&mut other);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<SessionID>"), "{answer}");
    // The slow ones are cut off once their head is overdue.
    let started = Instant::now();
    for s in &mut slow {
        until_closed(s);
    }
    println!("slow heads cut after {:?}", started.elapsed());

    // An oversized declared body is refused before any of it is sent.
    let mut big = connect_from("127.0.0.2", imps);
    big.write_all(
        b"POST /imps HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.wv.csp+xml\r\nContent-Length: 70000\r\n\r\n",
    )
    .unwrap();
    let answer = until_closed(&mut big);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A body that never comes ends with 408.
    let mut stalled = connect_from("127.0.0.2", imps);
    stalled
        .write_all(b"POST /imps HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.wv.csp+xml\r\nContent-Length: 100\r\n\r\n<WV-CSP")
        .unwrap();
    let answer = until_closed(&mut stalled);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    drop(slow);
    let back = eventually(Duration::from_secs(10), || {
        (fds(&daemon) <= baseline).then_some(())
    });
    assert!(back.is_some(), "descriptors {} > {baseline}", fds(&daemon));
}

#[test]
fn the_status_port_caps_connections_per_address() {
    let dir = TempDir::new("http-status-slow");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let baseline = fds(&daemon);
    let mut slow = slow_clients(8, status, b"GET /status HTTP/1.1\r\n");
    let mut ninth = connect_from("127.0.0.1", status);
    let _ = ninth.write_all(b"GET /status HTTP/1.0\r\n\r\n");
    assert_eq!(until_closed(&mut ninth), "");
    let mut other = connect_from("127.0.0.2", status);
    other.write_all(b"GET /status HTTP/1.0\r\n\r\n").unwrap();
    let answer = until_closed(&mut other);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    for s in &mut slow {
        until_closed(s);
    }
    drop(slow);
    let back = eventually(Duration::from_secs(10), || {
        (fds(&daemon) <= baseline).then_some(())
    });
    assert!(back.is_some(), "descriptors {} > {baseline}", fds(&daemon));
}

#[test]
fn sip_over_tcp_caps_connections_and_cuts_off_slow_messages() {
    let dir = TempDir::new("sip-tcp-slow");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[sip]\n",
        "[sip]\nmax_tcp_connections_per_address = 4\ntcp_message_timeout = \"2s\"\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let baseline = fds(&daemon);

    // Four clients from one address, each sending half a MESSAGE.
    let mut slow = slow_clients(4, sip, b"MESSAGE sip:+4917@sms.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKslow\r\n");
    let mut fifth = connect_from("127.0.0.1", sip);
    let _ = fifth.write_all(b"OPTIONS sip:sms.test SIP/2.0\r\n");
    assert_eq!(until_closed(&mut fifth), "", "the fifth got an answer");
    // Another address is answered.
    let mut other = connect_from("127.0.0.2", sip);
    let local = other.local_addr().unwrap();
    other
        .write_all(
            format!(
                "OPTIONS sip:sms.test SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKok\r\n\
                 From: <sip:x@sms.test>;tag=1\r\nTo: <sip:sms.test>\r\nCall-ID: ok@x\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = other.read(&mut b).expect("an answer");
        assert!(n > 0, "closed without an answer");
        got.extend_from_slice(&b[..n]);
    }
    assert!(
        String::from_utf8_lossy(&got).starts_with("SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    drop(other);
    // The half messages are cut off once overdue.
    for s in &mut slow {
        until_closed(s);
    }
    drop(slow);
    let back = eventually(Duration::from_secs(10), || {
        (fds(&daemon) <= baseline).then_some(())
    });
    assert!(back.is_some(), "descriptors {} > {baseline}", fds(&daemon));
}
