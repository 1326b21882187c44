//! Helpers for the tests that run `smsbridge run` as a process with the
//! simulator on a PTY: a configuration in a temp dir, users and contacts made
//! with the CLI, the daemon's status endpoint, and a minimal SIP user agent on
//! UDP for requests whose exact answers the tests assert. Use with
//! `mod sim_support; mod daemon_support;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use crate::sim_support::{SimProcess, eventually};

pub const BIN: &str = env!("CARGO_BIN_EXE_smsbridge");
pub const DOMAIN: &str = "sms.test";
pub const REALM: &str = "smsbridge-test";

/// A free TCP port on loopback (also free for UDP in practice).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let p = l.local_addr().expect("addr").port();
    drop(l);
    p
}

/// A daemon under test.
pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub db: PathBuf,
    pub sip: SocketAddr,
    pub status: SocketAddr,
    pub log: PathBuf,
    /// `[status] token` of the configuration, sent with status requests.
    pub status_token: String,
}

/// Writes the configuration for a daemon on `modem_port` (a PTY link).
pub fn write_config(
    dir: &Path,
    modem_ports: &[&str],
    extra: &str,
) -> (PathBuf, PathBuf, SocketAddr, SocketAddr) {
    let sip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let status: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let db = dir.join("smsbridge.db");
    let mut cfg = format!(
        "[database]\npath = \"{}\"\n\n[numbers]\ndefault_country_code = \"49\"\n\n[sip]\nrealm = \"{REALM}\"\ndomain = \"{DOMAIN}\"\nudp = [\"{sip}\"]\ntcp = [\"{sip}\"]\n\n[status]\nlisten = \"{status}\"\n\n",
        db.display()
    );
    for (i, p) in modem_ports.iter().enumerate() {
        cfg.push_str(&format!("[[modem]]\nname = \"sim{i}\"\nport = \"{p}\"\n\n"));
    }
    cfg.push_str(extra);
    // Tests run side by side: IMPS stays off unless a test asks for it.
    if !extra.contains("[imps]") {
        cfg.push_str("\n[imps]\nlisten = \"\"\n");
    }
    let path = dir.join("smsbridge.toml");
    std::fs::write(&path, cfg).expect("write config");
    (path, db, sip, status)
}

/// Runs a CLI command against the test's configuration; panics if it fails.
pub fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args(args);
    let out = match stdin {
        Some(input) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write");
            child.wait_with_output().expect("wait")
        }
        None => cmd.output().expect("run"),
    };
    assert!(
        out.status.success(),
        "smsbridge {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds a SIP user with a password and a contact for `msisdn` with `alias`.
pub fn add_user(config: &Path, user: &str, password: &str, contacts: &[(&str, &str, &str)]) {
    cli(
        config,
        &["users", "add", user, "--password-stdin"],
        Some(password),
    );
    for (msisdn, name, alias) in contacts {
        cli(
            config,
            &[
                "contacts", "add", "--user", user, "--msisdn", msisdn, "--name", name, "--alias",
                alias,
            ],
            None,
        );
    }
}

impl Daemon {
    /// Starts `smsbridge run --config` and waits until a modem is registered.
    pub fn start(
        dir: &Path,
        config: PathBuf,
        db: PathBuf,
        sip: SocketAddr,
        status: SocketAddr,
    ) -> Self {
        Self::start_with_env(dir, config, db, sip, status, &[])
    }

    /// [`Daemon::start`] with extra environment variables (failpoints).
    pub fn start_with_env(
        dir: &Path,
        config: PathBuf,
        db: PathBuf,
        sip: SocketAddr,
        status: SocketAddr,
        env: &[(&str, &str)],
    ) -> Self {
        let d = Self::spawn(dir, config, db, sip, status, env);
        let ready = eventually(Duration::from_secs(60), || {
            let s = d.status_json()?;
            s["modems"]
                .as_array()?
                .iter()
                .any(|m| m["registered"] == true)
                .then_some(())
        });
        assert!(ready.is_some(), "daemon not ready; log:\n{}", d.log());
        d
    }

    fn spawn(
        dir: &Path,
        config: PathBuf,
        db: PathBuf,
        sip: SocketAddr,
        status: SocketAddr,
        env: &[(&str, &str)],
    ) -> Self {
        let log = dir.join(format!(
            "daemon-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let logfile = std::fs::File::create(&log).expect("log");
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("RUST_LOG", "smsbridge=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("log"))
            .stderr(logfile)
            .spawn()
            .expect("spawn daemon");
        let status_token = std::fs::read_to_string(&config)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("status")?.get("token")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            child: Some(child),
            dir: dir.to_owned(),
            config,
            db,
            sip,
            status,
            log,
            status_token,
        }
    }

    /// Starts the daemon without waiting for a modem (its modem may be absent).
    pub fn start_unready(
        dir: &Path,
        config: PathBuf,
        db: PathBuf,
        sip: SocketAddr,
        status: SocketAddr,
    ) -> Self {
        let mut d = Self::spawn(dir, config, db, sip, status, &[]);
        let up = eventually(Duration::from_secs(30), || d.status_json().map(|_| ()));
        if up.is_none() {
            d.stop();
            panic!("daemon did not start; log:\n{}", d.log());
        }
        d
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A line of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
    pub fn memory_kb(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /status` as JSON, `None` if not answering.
    pub fn status_json(&self) -> Option<serde_json::Value> {
        let (head, body) = self.status_get("/status", Some(&self.status_token))?;
        head.lines().next()?.contains(" 200 ").then_some(())?;
        serde_json::from_str(&body).ok()
    }

    /// `GET path` on the status port with `token` as bearer, if any: the
    /// response head and body, `None` if not answering.
    pub fn status_get(&self, path: &str, token: Option<&str>) -> Option<(String, String)> {
        let mut s = TcpStream::connect_timeout(&self.status, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let auth = match token {
            Some(t) if !t.is_empty() => format!("Authorization: Bearer {t}\r\n"),
            _ => String::new(),
        };
        s.write_all(format!("GET {path} HTTP/1.0\r\n{auth}\r\n").as_bytes())
            .ok()?;
        let mut r = String::new();
        s.read_to_string(&mut r).ok()?;
        let (head, body) = r.split_once("\r\n\r\n")?;
        Some((head.to_owned(), body.to_owned()))
    }

    /// SIGTERM and wait; returns how long the exit took.
    pub fn stop(&mut self) -> Duration {
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let t = Instant::now();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let status = crate::sim_support::wait_for(&mut child, Duration::from_secs(20));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        t.elapsed()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A SIP response or request as received.
#[derive(Debug, Clone)]
pub struct SipMsg {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SipMsg {
    pub fn parse(raw: &str) -> Option<Self> {
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Some(Self {
            start,
            headers,
            body: body.to_owned(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn status(&self) -> u16 {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn is_request(&self, method: &str) -> bool {
        self.start.starts_with(&format!("{method} "))
    }
}

/// A minimal SIP UA over UDP: sends requests (answering digest challenges) and
/// receives requests.
pub struct Ua {
    pub sock: UdpSocket,
    pub user: String,
    pub password: String,
    pub server: SocketAddr,
    cseq: u32,
    call: u32,
    /// How long to wait for a final response.
    pub timeout: Duration,
}

fn md5hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn param<'a>(h: &'a str, name: &str) -> Option<&'a str> {
    h.split([',', ' '])
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

impl Ua {
    pub fn new(user: &str, password: &str, server: SocketAddr) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Self {
            sock,
            user: user.into(),
            password: password.into(),
            server,
            cseq: 1,
            call: 0,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    pub fn recv(&self, limit: Duration) -> Option<SipMsg> {
        let end = Instant::now() + limit;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            if let Some(m) = SipMsg::parse(&String::from_utf8_lossy(&buf[..n])) {
                return Some(m);
            }
        }
    }

    /// Sends a request and returns the final response, answering one 401/407.
    pub fn request(
        &mut self,
        method: &str,
        uri: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> SipMsg {
        self.call += 1;
        let call_id = format!(
            "{}-{}-{}@test",
            self.call,
            std::process::id(),
            self.local().port()
        );
        let mut auth: Option<(String, String)> = None;
        loop {
            self.cseq += 1;
            let branch = format!("z9hG4bK{}{}", self.cseq, self.call);
            let mut msg = format!(
                "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <{}>;tag=t{}\r\nTo: <{}>\r\nCall-ID: {call_id}\r\nCSeq: {} {method}\r\n",
                self.local(),
                self.user,
                self.call,
                if method == "REGISTER" {
                    self.user.clone()
                } else {
                    uri.to_owned()
                },
                self.cseq,
            );
            // A Contact of the caller's (feature tags) replaces ours.
            if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("Contact")) {
                msg.push_str(&format!("Contact: <{}>\r\n", self.contact()));
            }
            for (k, v) in extra {
                msg.push_str(&format!("{k}: {v}\r\n"));
            }
            if let Some((hname, hval)) = &auth {
                msg.push_str(&format!("{hname}: {hval}\r\n"));
            }
            msg.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            self.sock
                .send_to(msg.as_bytes(), self.server)
                .expect("send");
            let resp = loop {
                let r = self.recv(self.timeout).expect("no response");
                if r.start.starts_with("SIP/2.0") && r.status() >= 200 {
                    break r;
                }
            };
            let challenge = match resp.status() {
                401 => resp
                    .header("WWW-Authenticate")
                    .map(|h| ("Authorization", h.to_owned())),
                407 => resp
                    .header("Proxy-Authenticate")
                    .map(|h| ("Proxy-Authorization", h.to_owned())),
                _ => None,
            };
            match (challenge, &auth) {
                (Some((name, h)), None) if !self.password.is_empty() => {
                    let realm = param(&h, "realm").unwrap_or_default().to_owned();
                    let nonce = param(&h, "nonce").unwrap_or_default().to_owned();
                    let username = self
                        .user
                        .split(':')
                        .nth(1)
                        .and_then(|u| u.split('@').next())
                        .unwrap_or_default()
                        .to_owned();
                    let ha1 = md5hex(&format!("{username}:{realm}:{}", self.password));
                    let ha2 = md5hex(&format!("{method}:{uri}"));
                    let (nc, cnonce) = ("00000001", "abcdef01");
                    let qop = h.contains("auth");
                    let response = if qop {
                        md5hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
                    } else {
                        md5hex(&format!("{ha1}:{nonce}:{ha2}"))
                    };
                    let mut v = format!(
                        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5"
                    );
                    if qop {
                        v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
                    }
                    auth = Some((name.to_owned(), v));
                }
                _ => return resp,
            }
        }
    }

    /// Our Contact URI: `sip:<user part>@<our address>`.
    pub fn contact(&self) -> String {
        let user = self
            .user
            .split(':')
            .nth(1)
            .and_then(|u| u.split('@').next())
            .unwrap_or("u");
        format!("sip:{user}@{}", self.local())
    }

    pub fn register(&mut self, expires: u32) -> SipMsg {
        let uri = format!("sip:{DOMAIN}");
        let exp = expires.to_string();
        self.request("REGISTER", &uri, &[("Expires", &exp)], "")
    }

    pub fn message(&mut self, to: &str, content_type: &str, body: &str) -> SipMsg {
        self.request("MESSAGE", to, &[("Content-Type", content_type)], body)
    }

    /// Sends raw bytes to the daemon.
    pub fn send_raw(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).expect("send");
    }

    /// Answers a received request with `code`.
    pub fn answer(&self, req: &SipMsg, code: u16, reason: &str) {
        let mut msg = format!("SIP/2.0 {code} {reason}\r\n");
        for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for (k, v) in &req.headers {
                if k.eq_ignore_ascii_case(h) {
                    let v = if h == "To" && !v.contains("tag=") {
                        format!("{v};tag=ua")
                    } else {
                        v.clone()
                    };
                    msg.push_str(&format!("{h}: {v}\r\n"));
                }
            }
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        self.sock
            .send_to(msg.as_bytes(), self.server)
            .expect("send");
    }

    /// Waits for a request of `method`, answering others with 200.
    pub fn expect_request(&self, method: &str, limit: Duration) -> Option<SipMsg> {
        let end = Instant::now() + limit;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let m = self.recv(left)?;
            if m.is_request(method) {
                return Some(m);
            }
            if !m.start.starts_with("SIP/2.0") {
                self.answer(&m, 200, "OK");
            }
        }
    }
}

/// A CPIM body from alice asking for every IMDN.
pub fn cpim(to: &str, id: &str, text: &str) -> String {
    format!(
        "From: <sip:alice@{DOMAIN}>\r\nTo: <{to}>\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
         imdn.Message-ID: {id}\r\nDateTime: 2026-11-21T08:00:00Z\r\n\
         imdn.Disposition-Notification: positive-delivery, negative-delivery, display\r\n\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}"
    )
}

/// The IMDN among the next MESSAGEs (echo replies are answered and skipped).
pub fn next_imdn(ua: &Ua) -> SipMsg {
    loop {
        let m = ua
            .expect_request("MESSAGE", Duration::from_secs(30))
            .expect("a MESSAGE");
        ua.answer(&m, 200, "OK");
        if m.body.contains("message/imdn+xml") {
            return m;
        }
    }
}

/// What the simulator has seen: the texts of SMS-SUBMITs by recipient.
pub fn sent_texts(sim: &SimProcess) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in sim.sent() {
        out.entry(s.to.clone())
            .or_default()
            .push(s.text.clone().unwrap_or_default());
    }
    out
}

/// Waits for the simulator to have sent `n` SMS.
pub fn wait_sent(sim: &SimProcess, n: usize, limit: Duration) -> bool {
    eventually(limit, || (sim.sent().len() >= n).then_some(())).is_some()
}

/// baresip (Debian `baresip-core`) registered to the daemon at `sip` as
/// `<sip:account>` with `password`, knowing one contact line, running the menu
/// `commands` at start and quitting after `seconds`, its SIP trace (`-s`) in
/// the returned log file.
pub fn start_baresip(
    dir: &Path,
    sip: SocketAddr,
    account: &str,
    password: &str,
    contact: &str,
    commands: &[&str],
    seconds: u32,
) -> (Child, PathBuf) {
    let home = dir.join("baresip");
    std::fs::create_dir_all(&home).unwrap();
    let port = free_port();
    std::fs::write(
        home.join("config"),
        format!(
            "sip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\n\
             module account.so\nmodule contact.so\nmodule menu.so\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("accounts"),
        format!("<{account}>;auth_pass={password};outbound=\"sip:{sip}\";regint=60\n"),
    )
    .unwrap();
    std::fs::write(home.join("contacts"), format!("{contact}\n")).unwrap();
    let log = dir.join("baresip.log");
    let mut cmd = Command::new("baresip");
    cmd.arg("-f")
        .arg(&home)
        .args(["-t", &seconds.to_string(), "-s"]);
    for c in commands {
        cmd.args(["-e", c]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("baresip starts");
    (child, log)
}
