//! A second SIP/SIMPLE domain for the federation tests: Kamailio with its
//! presence modules serving `otherdomain.test` on 127.0.0.2 with the shipped
//! `examples/kamailio/otherdomain.cfg`, and baresip registered there as Jane,
//! publishing her presence, driven at run time through its `ctrl_tcp` module.
//! Use with `mod common; mod daemon_support; mod imps_support;
//! mod kamailio_support; mod sim_support; mod federation_support;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::imps_support::{Answer, http_post, read, request};
use crate::kamailio_support::{Kamailio, stop_group};
use crate::sim_support::eventually;

/// The other domain.
pub const OTHER_DOMAIN: &str = "otherdomain.test";
/// The loopback address it lives on (Linux routes all of 127/8 to `lo`).
pub const OTHER_IP: &str = "127.0.0.2";
/// Jane, its user.
pub const JANE: &str = "sip:jane@otherdomain.test";

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/kamailio/otherdomain.cfg"
);
/// The SQLite schema files of Debian's `kamailio-sqlite-modules`.
const SCHEMA: [&str; 2] = [
    "/usr/share/kamailio/db_sqlite/standard-create.sql",
    "/usr/share/kamailio/db_sqlite/presence-create.sql",
];

/// Whether Kamailio with the presence and SQLite modules, and baresip with its
/// presence and ctrl_tcp modules, are installed; when not, the visible skip of
/// `tests/common` (a failure under `SMSBRIDGE_REQUIRE_PEERS=1`).
pub fn peers_available() -> bool {
    let kamailio = common_probe("command -v kamailio")
        && kamailio_module("presence.so")
        && kamailio_module("presence_xml.so");
    let sqlite = kamailio_module("db_sqlite.so") && SCHEMA.iter().all(|f| Path::new(f).exists());
    let baresip = common_probe("command -v baresip")
        && ["presence.so", "ctrl_tcp.so"]
            .iter()
            .all(|m| Path::new("/usr/lib/baresip/modules").join(m).exists());
    crate::common::peer_available(
        "kamailio-presence-modules",
        "apt-get install kamailio kamailio-presence-modules",
        kamailio,
    ) && crate::common::peer_available(
        "kamailio-sqlite-modules",
        "apt-get install kamailio-sqlite-modules",
        sqlite,
    ) && crate::common::peer_available("baresip", "apt-get install baresip-core", baresip)
}

fn common_probe(script: &str) -> bool {
    crate::common::command_succeeds("sh", &["-c", script])
}

fn kamailio_module(name: &str) -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    ]
    .iter()
    .any(|d| Path::new(d).join(name).exists())
}

/// A free UDP port on `ip`.
pub fn free_udp_port(ip: &str) -> u16 {
    let s = UdpSocket::bind((ip, 0)).expect("bind");
    s.local_addr().expect("addr").port()
}

/// Reads a log file that may not exist yet.
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Kamailio serving `otherdomain.test`, killed with its children on drop.
pub struct OtherDomain {
    kamailio: Kamailio,
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    pub db: PathBuf,
}

impl OtherDomain {
    /// A free address for it, to put in smsbridge's configuration first.
    pub fn free_addr() -> SocketAddr {
        format!("{OTHER_IP}:{}", free_udp_port(OTHER_IP))
            .parse()
            .unwrap()
    }

    /// Starts the example configuration in `dir` on `addr` (UDP), sending
    /// requests for `bridge_domain` to `bridge` (smsbridge's SIP address) and
    /// accepting other domains' requests from `bridge`'s IP. Returns once it
    /// answers.
    pub fn start(dir: &Path, addr: SocketAddr, bridge_domain: &str, bridge: SocketAddr) -> Self {
        let db = dir.join("otherdomain.sqlite");
        let conn = rusqlite::Connection::open(&db).expect("kamailio database");
        for f in SCHEMA {
            let sql = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            conn.execute_batch(&sql)
                .unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        // Kamailio's processes share the file and db_sqlite 5.6 sets no busy
        // timeout: in WAL mode a reader never meets a writer's lock (the
        // mode is kept in the file).
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .expect("WAL mode");
        assert_eq!(mode, "wal");
        drop(conn);
        let example = std::fs::read_to_string(EXAMPLE).expect("the example");
        let cfg = [
            (
                "KAM_LISTEN!udp:127.0.0.2:5060",
                format!("KAM_LISTEN!udp:{addr}"),
            ),
            (
                "KAM_DB!sqlite:///var/lib/kamailio/otherdomain.sqlite",
                format!("KAM_DB!sqlite://{}", db.display()),
            ),
            (
                "BRIDGE_DOMAIN!sms.example.com",
                format!("BRIDGE_DOMAIN!{bridge_domain}"),
            ),
            (
                "SMSBRIDGE_URI!sip:127.0.0.1:5070",
                format!("SMSBRIDGE_URI!sip:{bridge}"),
            ),
            (
                "SMSBRIDGE_ADDR!127.0.0.1",
                format!("SMSBRIDGE_ADDR!{}", bridge.ip()),
            ),
        ]
        .iter()
        .fold(example.clone(), |cfg, (from, to)| {
            let from = format!("#!substdef \"!{from}!g\"");
            assert!(
                cfg.contains(&from),
                "the example's defines changed ({from}); update the harness"
            );
            cfg.replace(&from, &format!("#!substdef \"!{to}!g\""))
        });
        let path = dir.join("otherdomain.cfg");
        std::fs::write(&path, cfg).unwrap();
        let me = Self {
            kamailio: Kamailio::start(dir, "otherdomain", &path, 64, 8),
            addr,
            db,
        };
        // Ready when it answers: an OPTIONS gets 405 from this configuration.
        let probe = UdpSocket::bind((OTHER_IP, 0)).unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let answered = eventually(Duration::from_secs(20), || {
            let local = probe.local_addr().ok()?;
            let options = format!(
                "OPTIONS sip:{OTHER_DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{OTHER_DOMAIN}>;tag=p\r\nTo: <sip:{OTHER_DOMAIN}>\r\n\
                 Call-ID: probe-{}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                std::process::id(),
                local.port()
            );
            probe.send_to(options.as_bytes(), addr).ok()?;
            let mut buf = [0u8; 4096];
            let (n, _) = probe.recv_from(&mut buf).ok()?;
            buf[..n].starts_with(b"SIP/2.0 ").then_some(())
        });
        assert!(
            answered.is_some(),
            "kamailio did not answer:\n{}",
            me.log_text()
        );
        me
    }

    pub fn log_text(&self) -> String {
        self.kamailio.log_text()
    }
}

/// baresip registered at the other domain as one of its users, publishing
/// its presence (`pubint`), with its SIP trace (`-s`) in `log`, and driven
/// through `ctrl_tcp`. Killed on drop.
pub struct Baresip {
    child: Child,
    pub aor: String,
    pub log: PathBuf,
    ctrl: SocketAddr,
}

impl Baresip {
    /// Starts baresip as `aor` with the outbound proxy `proxy`, knowing the
    /// `contacts` lines (a line ending `;presence=p2p` makes it SUBSCRIBE to
    /// that contact's presence at start). Returns once it is registered.
    pub fn start(dir: &Path, aor: &str, proxy: SocketAddr, contacts: &[&str]) -> Self {
        let name = aor
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("ua");
        let home = dir.join(format!("baresip-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        let ctrl: SocketAddr = format!("127.0.0.1:{}", crate::daemon_support::free_port())
            .parse()
            .unwrap();
        let port = free_udp_port(OTHER_IP);
        std::fs::write(
            home.join("config"),
            format!(
                "sip_listen {OTHER_IP}:{port}\nmodule_path /usr/lib/baresip/modules\n\
                 module account.so\nmodule contact.so\nmodule menu.so\nmodule presence.so\n\
                 module ctrl_tcp.so\nctrl_tcp_listen {ctrl}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            home.join("accounts"),
            format!("<{aor}>;outbound=\"sip:{proxy}\";regint=600;pubint=600\n"),
        )
        .unwrap();
        let mut book = contacts.join("\n");
        book.push('\n');
        std::fs::write(home.join("contacts"), book).unwrap();
        let log = dir.join(format!("baresip-{name}.log"));
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&home)
            .arg("-s")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("baresip starts");
        let me = Self {
            child,
            aor: aor.to_owned(),
            log,
            ctrl,
        };
        // baresip prints `<aor>: {0/UDP/v4} 200 OK (<server>) [1 binding]`.
        let registered = format!("{}: {{0/UDP/v4}} 200 OK", aor.trim_start_matches("sip:"));
        assert!(
            me.wait_log(|l| l.contains(&registered), 20).is_some(),
            "baresip did not register:\n{}",
            me.log_text()
        );
        me
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log)
    }

    /// Waits up to `seconds` until `pred` holds for the whole log; gives the log.
    pub fn wait_log(&self, pred: impl Fn(&str) -> bool, seconds: u64) -> Option<String> {
        eventually(Duration::from_secs(seconds), || {
            let l = self.log_text();
            pred(&l).then_some(l)
        })
    }

    /// Runs a long command (`presence_offline`, `message hello`, ...) through
    /// ctrl_tcp and gives baresip's answer (its JSON, with `"ok":true` when
    /// the command ran).
    pub fn command(&self, command: &str) -> String {
        let (name, params) = command.split_once(' ').unwrap_or((command, ""));
        let json = serde_json::json!({"command": name, "params": params, "token": "t"}).to_string();
        let mut s = TcpStream::connect_timeout(&self.ctrl, Duration::from_secs(5))
            .expect("baresip's ctrl_tcp");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("{}:{json},", json.len()).as_bytes())
            .unwrap();
        // The answer is one netstring: `<len>:<json>,`.
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            let n = s.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((len, rest)) = text.split_once(':')
                && let Ok(len) = len.parse::<usize>()
                && rest.len() > len
            {
                return rest[..len].to_owned();
            }
        }
        panic!(
            "no answer to {command:?} from baresip: {}",
            String::from_utf8_lossy(&got)
        );
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // SIGTERM lets it withdraw its publication and registration.
        stop_group(&mut self.child, Duration::from_secs(5));
    }
}

/// The PIDF documents in a SIP trace (baresip's `-s` log), in order, each
/// from `<?xml` to the end of `</presence>` with its line ends as sent, and
/// the request or response line of the message that carried it.
pub fn traced_pidf(trace: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = trace;
    while let Some(at) = rest.find("<?xml") {
        let Some(len) = rest[at..].find("</presence>") else {
            break;
        };
        let end = at + len + "</presence>".len();
        let end = if rest[end..].starts_with("\r\n") {
            end + 2
        } else {
            end
        };
        let head = &rest[..at];
        let start = head.rfind("#\nUDP ").map(|i| i + 2).unwrap_or(0);
        // The first line after the `UDP a -> b` line.
        let line = head[start..]
            .lines()
            .nth(1)
            .unwrap_or_default()
            .trim_end()
            .to_owned();
        out.push((line, rest[at..end].to_owned()));
        rest = &rest[end..];
    }
    out
}

/// An IMPS client of smsbridge over HTTP (XML), with one session.
pub struct ImpsClient {
    addr: SocketAddr,
    sid: String,
    /// Server-initiated primitives polled but not yet asked for.
    pending: Vec<Answer>,
}

impl ImpsClient {
    /// Logs `user` in with `password`; panics with the answer if refused.
    pub fn login(addr: SocketAddr, user: &str, password: &str) -> Self {
        let a = Self::post(
            addr,
            &request(
                None,
                &format!(
                    "<Login-Request><UserID>{user}</UserID><ClientID><URL>federation</URL></ClientID>\
                     <Password>{password}</Password></Login-Request>"
                ),
            ),
        );
        assert_eq!(a.code(), Some(200), "login of {user}: {}", a.raw);
        Self {
            addr,
            sid: a.text(&["SessionID"]).expect("SessionID").to_owned(),
            pending: Vec::new(),
        }
    }

    fn post(addr: SocketAddr, body: &[u8]) -> Answer {
        let (status, _, body) = http_post(addr, "application/vnd.wv.csp+xml", body);
        read(status, &body)
    }

    /// One request in the session.
    pub fn ask(&self, primitive: &str) -> Answer {
        Self::post(self.addr, &request(Some(&self.sid), primitive))
    }

    /// Polls until a server-initiated primitive for which `want` holds comes,
    /// for at most `limit`; the others are kept for later calls.
    pub fn poll_until(
        &mut self,
        limit: Duration,
        want: impl Fn(&Answer) -> bool,
    ) -> Option<Answer> {
        if let Some(i) = self.pending.iter().position(&want) {
            return Some(self.pending.remove(i));
        }
        eventually(limit, || {
            let a = self.ask("<Polling-Request/>");
            if a.empty {
                return None;
            }
            if want(&a) {
                return Some(a);
            }
            self.pending.push(a);
            None
        })
    }
}
