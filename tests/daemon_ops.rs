//! Operating the daemon: systemd readiness and watchdog over NOTIFY_SOCKET,
//! graceful shutdown on SIGTERM within 10 s with 503 for new requests,
//! `smsbridge status` and `/metrics`, `smsbridge config check`, and the demo.

mod daemon_support;
mod sim_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon_support::{BIN, DOMAIN, Daemon, Ua, add_user, cli, free_port, write_config};
use sim_support::{SimProcess, TempDir, eventually, run};

const BOB: &str = "+4915112345678";

#[test]
fn readiness_watchdog_status_metrics_and_graceful_stop() {
    let dir = TempDir::new("daemon-ops");
    let sim = SimProcess::start(dir.path(), &["--send-delay", "200ms"]);
    let (config, _db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    add_user(
        &config,
        "sip:alice@sms.test",
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut guard = KillOnDrop(
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "2000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let mut buf = [0u8; 512];
    let mut got = String::new();
    while !got.contains("READY=1") {
        let n = sock.recv(&mut buf).expect("a notification");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // Ready means listening: SIP answers at once.
    let mut ua = Ua::new("sip:alice@sms.test", "secret", sip);
    assert_eq!(
        ua.request("OPTIONS", &format!("sip:{DOMAIN}"), &[], "")
            .status(),
        200
    );
    // Watchdog pings every WATCHDOG_USEC/2 while the modem loop is alive.
    let t = Instant::now();
    let mut pings = 0;
    while pings < 2 {
        let n = sock.recv(&mut buf).expect("a watchdog ping");
        if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
            pings += 1;
        }
    }
    assert!(t.elapsed() < Duration::from_secs(5));

    let st = run(
        Command::new(BIN).arg("--config").arg(&config).arg("status"),
        Duration::from_secs(20),
    );
    assert!(st.ok(), "{}", st.all());
    assert!(st.stdout.contains("sim0"), "{}", st.stdout);
    assert!(st.stdout.contains("ready"), "{}", st.stdout);
    assert!(st.stdout.contains("outbox: empty"), "{}", st.stdout);
    let mut m = std::net::TcpStream::connect(status).unwrap();
    m.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut metrics = String::new();
    m.read_to_string(&mut metrics).unwrap();
    assert!(
        metrics.contains("smsbridge_modem_registered{modem=\"sim0\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("smsbridge_outbox_messages{state=\"queued\"} 0"),
        "{metrics}"
    );

    // SIGTERM: STOPPING=1, and the process is gone well within 10 s.
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut stopping = false;
    while !stopping {
        let n = sock.recv(&mut buf).expect("STOPPING");
        stopping = String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
    }
    let status = sim_support::wait_for(child, Duration::from_secs(10)).expect("exited within 10 s");
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let down = run(
        Command::new(BIN).arg("--config").arg(&config).arg("status"),
        Duration::from_secs(20),
    );
    assert_eq!(down.status.and_then(|s| s.code()), Some(1));
    assert!(
        down.stderr
            .starts_with("smsbridge: the daemon is not running"),
        "{}",
        down.stderr
    );
}

#[test]
fn draining_daemon_answers_503() {
    let dir = TempDir::new("daemon-drain");
    // A slow modem keeps the daemon busy with an exchange while it stops.
    let sim = SimProcess::start(dir.path(), &["--send-delay", "3s"]);
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    add_user(
        &config,
        "sip:alice@sms.test",
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    let mut d = Daemon::start(dir.path(), config, db, sip, status);
    let mut ua = Ua::new("sip:alice@sms.test", "secret", sip);
    assert_eq!(
        ua.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "slow one")
            .status(),
        202
    );
    // Stop in the middle of the 3 s send, once the PDU is at the modem; the
    // send finishes, nothing is lost.
    let at_modem = eventually(Duration::from_secs(20), || {
        sim.transcript()
            .lines()
            .any(|l| l.contains("-> [data] ") && l.ends_with(" ^Z"))
            .then_some(())
    });
    assert!(
        at_modem.is_some(),
        "the PDU never reached the modem:\n{}\n{}",
        sim.transcript(),
        d.log()
    );
    let log = d.log.clone();
    let stopped = std::thread::spawn(move || d.stop());
    // The daemon has taken the signal once a request without side effects
    // gets 503.
    let draining = eventually(Duration::from_secs(5), || {
        (ua.request("OPTIONS", &format!("sip:{DOMAIN}"), &[], "")
            .status()
            == 503)
            .then_some(())
    });
    assert!(
        draining.is_some(),
        "no 503 after SIGTERM:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let r = ua.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "too late");
    assert_eq!(r.status(), 503, "{r:?}");
    let took = stopped.join().unwrap();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(sim.sent().len(), 1);
    assert_eq!(sim.sent()[0].text.as_deref(), Some("alice: slow one"));
}

#[test]
fn config_check_reports_line_and_column() {
    let dir = TempDir::new("config-check");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[sip]\nrealm = \"x\"\nudpp = [\"127.0.0.1:5060\"]\n").unwrap();
    let r = run(
        Command::new(BIN)
            .arg("--config")
            .arg(&bad)
            .args(["config", "check"]),
        Duration::from_secs(10),
    );
    assert_eq!(r.status.and_then(|s| s.code()), Some(2));
    assert!(
        r.stderr.starts_with(&format!(
            "smsbridge: {}:3:1: unknown field `udpp`",
            bad.display()
        )),
        "{}",
        r.stderr
    );
    std::fs::write(&bad, "[[modem]]\nport = \"tcp://nohost\"\n").unwrap();
    let r = run(
        Command::new(BIN)
            .arg("--config")
            .arg(&bad)
            .args(["config", "check"]),
        Duration::from_secs(10),
    );
    assert_eq!(r.status.and_then(|s| s.code()), Some(2));
    assert!(
        r.stderr.contains("expected tcp://<host>:<port>"),
        "{}",
        r.stderr
    );
    let (good, ..) = write_config(dir.path(), &["/dev/smsbridge/huawei-e3372-1"], "");
    let out = cli(&good, &["config", "check"], None);
    assert!(
        out.contains(": OK (1 modem(s), SIP udp 127.0.0.1:"),
        "{out}"
    );
}

#[test]
fn demo_starts_with_no_configuration_and_echoes() {
    let dir = TempDir::new("demo");
    // The demo's defaults, only moved off the well-known ports for the test.
    let sip = format!("127.0.0.1:{}", free_port());
    let status = format!("127.0.0.1:{}", free_port());
    let imps = format!("127.0.0.1:{}", free_port());
    let cfg = dir.path().join("ports.toml");
    std::fs::write(
        &cfg,
        format!("[sip]\nudp = [\"{sip}\"]\ntcp = [\"{sip}\"]\n[status]\nlisten = \"{status}\"\n[imps]\nlisten = \"{imps}\"\n"),
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .arg("run")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let mut out = child.stdout.take().unwrap();
    let mut banner = String::new();
    let mut buf = [0u8; 4096];
    while !banner.contains("Stop with Ctrl-C") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "{banner}");
        banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        banner.contains("created user sip:demo@localhost (password \"demo\")"),
        "{banner}"
    );
    assert!(dir.path().join("smsbridge.db").exists());
    let mut ua = Ua::new("sip:demo@localhost", "demo", sip.parse().unwrap());
    assert_eq!(ua.register(600).status(), 200);
    assert_eq!(
        ua.message("sip:echo@localhost", "text/plain", "hello echo")
            .status(),
        202
    );
    let reply = ua
        .expect_request("MESSAGE", Duration::from_secs(30))
        .expect("echo reply");
    ua.answer(&reply, 200, "OK");
    assert_eq!(reply.body, "Demo: hello echo");
    assert!(
        reply
            .header("From")
            .unwrap()
            .contains("sip:+15550100@localhost")
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert!(sim_support::wait_for(child, Duration::from_secs(10)).is_some());
    let _ = eventually(Duration::from_secs(1), || Some(()));
}

/// A daemon that must not outlive a failed assertion (it holds ports).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
