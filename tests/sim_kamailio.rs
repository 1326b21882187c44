//! Kamailio's `sms` module (Debian's kamailio package) drives `smsbridge modem
//! sim` over its PTY: a SIP MESSAGE sent to Kamailio on loopback leaves as an
//! SMS-SUBMIT, and the echoing phone's reply, polled by Kamailio with
//! `AT+CPMS?`/`AT+CMGR`, comes back to the sender as a SIP MESSAGE.
//!
//! The module checks the CTS line with `ioctl(TIOCMGET)` before every write and
//! has no option to skip it; a PTY has no modem-status lines (ENOTTY), so the
//! test preloads `tests/kamailio/cts_shim.c`, which answers TIOCMGET as a serial
//! port with CTS asserted would, only where the real ioctl says ENOTTY.

mod common;
mod sim_support;

use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sim_support::{SimProcess, TempDir, eventually, run, wait_for};

const SMS_MODULE: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/sms.so";
const TO: &str = "+15551234567";

fn peers_available() -> bool {
    common::peer_available(
        "kamailio (with its sms module)",
        "apt-get install kamailio",
        common::command_succeeds("kamailio", &["-v"]) && Path::new(SMS_MODULE).exists(),
    ) && common::peer_available(
        "a C compiler (cc) for the CTS shim",
        "apt-get install gcc",
        common::command_succeeds("cc", &["--version"]),
    )
}

/// Kamailio and its children, in their own process group.
struct Kamailio {
    child: Child,
    log: PathBuf,
}

impl Kamailio {
    fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        if wait_for(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The sms module's process may outlive the main one.
        let _ = killpg(group, Signal::SIGKILL);
    }
}

fn build_shim(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/cts_shim.c");
    let so = dir.join("cts_shim.so");
    let cc = run(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&so)
            .arg(&src)
            .arg("-ldl"),
        Duration::from_secs(60),
    );
    assert!(cc.ok(), "cannot build the CTS shim:\n{}", cc.all());
    so
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

fn start_kamailio(dir: &Path, device: &Path, sip_port: u16, shim: &Path) -> Kamailio {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/sms.cfg"),
    )
    .expect("tests/kamailio/sms.cfg");
    let cfg = dir.join("sms.cfg");
    std::fs::write(
        &cfg,
        template
            .replace("@SIP_PORT@", &sip_port.to_string())
            .replace("@DEVICE@", &device.display().to_string()),
    )
    .expect("write kamailio config");
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).expect("runtime dir");
    let log = dir.join("kamailio.log");
    let child = Command::new("kamailio")
        .args(["-DD", "-E", "-m", "32", "-M", "4", "-f"])
        .arg(&cfg)
        .arg("-Y")
        .arg(&run_dir)
        .env("LD_PRELOAD", shim)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("kamailio.out")).expect("out"))
        .stderr(std::fs::File::create(&log).expect("log"))
        .process_group(0)
        .spawn()
        .expect("start kamailio");
    Kamailio { child, log }
}

fn message(sip_port: u16, our_port: u16, body: &str) -> String {
    format!(
        "MESSAGE sip:{TO}@127.0.0.1:{sip_port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{our_port};branch=z9hG4bK-smsbridge-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1:{our_port}>;tag=smsbridge-test\r\n\
         To: <sip:{TO}@127.0.0.1:{sip_port}>\r\n\
         Call-ID: sim-kamailio-1@127.0.0.1\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A 200 OK for a request Kamailio sent us, so it stops retransmitting.
fn ok_for(request: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in request.split("\r\n") {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

#[test]
fn kamailio_sms_module_sends_and_receives_through_the_simulator() {
    if !peers_available() {
        return;
    }
    let dir = TempDir::new("kamailio");
    let shim = build_shim(dir.path());
    // SIM800: Kamailio polls storage from index 1, as 1-based modems number it.
    let sim = SimProcess::start(dir.path(), &["--model", "sim800"]);
    let sip_port = free_udp_port();
    let kamailio = start_kamailio(dir.path(), &sim.link, sip_port, &shim);

    // Kamailio's modem process is ready once it polls the storage.
    let ready = eventually(Duration::from_secs(30), || {
        sim.transcript().contains("-> AT+CPMS?").then_some(())
    });
    assert!(
        ready.is_some(),
        "kamailio never initialised the modem:\n{}\n--- transcript\n{}",
        kamailio.log(),
        sim.transcript()
    );

    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let our_port = socket.local_addr().expect("addr").port();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let body = "Hello over SIP";
    let request = message(sip_port, our_port, body);
    let mut buf = [0u8; 8192];
    let accepted = eventually(Duration::from_secs(20), || {
        socket
            .send_to(request.as_bytes(), ("127.0.0.1", sip_port))
            .ok()?;
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        reply.starts_with("SIP/2.0 202").then_some(reply)
    });
    assert!(
        accepted.is_some(),
        "no 202 from kamailio:\n{}",
        kamailio.log()
    );

    let sent = eventually(Duration::from_secs(30), || {
        let s = sim.sent();
        (!s.is_empty()).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "no SMS-SUBMIT reached the simulator:\n{}\n--- transcript\n{}",
            kamailio.log(),
            sim.transcript()
        )
    });
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, TO);
    let text = sent[0].text.clone().unwrap_or_default();
    assert!(text.contains(body), "{text:?}");
    assert!(text.contains("sip:alice@127.0.0.1"), "{text:?}");

    // The phone echoes; Kamailio reads the reply from storage, finds the
    // `sip:` address in it and sends the text to alice as a SIP MESSAGE.
    let back = eventually(Duration::from_secs(30), || {
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !msg.starts_with("MESSAGE ") {
            return None;
        }
        let _ = socket.send_to(ok_for(&msg).as_bytes(), ("127.0.0.1", sip_port));
        Some(msg)
    })
    .unwrap_or_else(|| {
        panic!(
            "the echo never came back as SIP:\n{}\n--- transcript\n{}",
            kamailio.log(),
            sim.transcript()
        )
    });
    assert!(back.contains(body), "{back}");
    assert!(back.contains(&format!("From: <sip:{TO}@")), "{back}");
    let transcript = sim.transcript();
    assert!(transcript.contains("-> AT+CMGR=1"), "{transcript}");
    assert!(transcript.contains("-> AT+CMGD=1"), "{transcript}");
    drop(kamailio);
}
