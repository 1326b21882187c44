//! RFC 4475, the SIP torture test messages, against `smsbridge run`: every
//! message of the RFC's own archive (tests/fixtures/rfc4475, byte for byte)
//! is sent to the daemon and its answer checked against what the RFC asks
//! of a user agent server. Valid requests take the normal path (OPTIONS 200,
//! a REGISTER or MESSAGE without credentials 401, INVITE 405 with Allow,
//! an unknown method 501); invalid ones get 400, 505 or 416; responses and
//! requests that cannot be answered are dropped. Every answer carries
//! exactly one To tag, the request's own when it had one.
//!
//! The messages name hosts like `chair-dnrc.example.com`: answers go to the
//! address the datagram came from, never to a name, and every request is
//! answered (or shown to be dropped) within a per-request bound. An answer
//! that must name something (Allow on 405/501, WWW-Authenticate on 401,
//! Unsupported on 420) does.

mod daemon_support;
mod sim_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use daemon_support::{Daemon, SipMsg, write_config};
use sim_support::{SimProcess, TempDir};

/// No answer may take longer than this (a hang bound, not a speed claim).
const BOUND: Duration = Duration::from_secs(5);

/// What the RFC asks of this daemon, a UAS that does not do calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This status code.
    Code(u16),
    /// No answer at all: a response that matches no transaction of ours, or
    /// a request without a Via to answer to.
    Discard,
}

use Expect::{Code, Discard};

/// (archive file, RFC section, expected outcome). Where the RFC lets an
/// element choose, the comment says so and which way this daemon goes.
const CASES: &[(&str, &str, Expect)] = &[
    // §3.1.1 valid messages: the normal path (OPTIONS 200, REGISTER and
    // MESSAGE without credentials 401, INVITE 405, unknown method 501).
    ("wsinv", "3.1.1.1", Code(405)),
    ("intmeth", "3.1.1.2", Code(501)),
    ("esc01", "3.1.1.3", Code(405)),
    ("escnull", "3.1.1.4", Code(401)),
    ("esc02", "3.1.1.5", Code(501)), // RE%47IST%45R is not REGISTER
    ("lwsdisp", "3.1.1.6", Code(200)),
    ("longreq", "3.1.1.7", Code(405)),
    ("dblreq", "3.1.1.8", Code(401)), // and nothing for the INVITE after it
    ("semiuri", "3.1.1.9", Code(200)),
    ("transports", "3.1.1.10", Code(200)),
    ("mpart01", "3.1.1.11", Code(401)),
    ("unreason", "3.1.1.12", Discard), // responses: no transaction of ours
    ("noreason", "3.1.1.13", Discard),
    // §3.1.2 invalid messages.
    ("badinv01", "3.1.2.1", Code(400)),
    ("clerr", "3.1.2.2", Code(400)),
    ("ncl", "3.1.2.3", Code(400)),
    ("scalar02", "3.1.2.4", Code(400)),
    ("scalarlg", "3.1.2.5", Discard),
    ("quotbal", "3.1.2.6", Code(400)),
    ("ltgtruri", "3.1.2.7", Code(400)),
    ("lwsruri", "3.1.2.8", Code(400)),
    ("lwsstart", "3.1.2.9", Code(400)), // 400, or liberal: strict here
    ("trws", "3.1.2.10", Code(400)),    // likewise
    ("escruri", "3.1.2.11", Code(400)), // likewise
    // 400, or ignore the bad Date: the Date is ignored, and an INVITE is 405.
    ("baddate", "3.1.2.12", Code(405)),
    ("regbadct", "3.1.2.13", Code(400)),
    ("badaspec", "3.1.2.14", Code(400)),
    // The archive's file also lacks the empty line after its headers.
    ("baddn", "3.1.2.15", Code(400)),
    ("badvers", "3.1.2.16", Code(505)),
    ("mismatch01", "3.1.2.17", Code(400)),
    ("mismatch02", "3.1.2.18", Code(501)), // 501 preferred, 400 allowed
    ("bigcode", "3.1.2.19", Discard),
    // §3.2 transaction layer: 400, or fall back to RFC 2543 matching; the
    // bare z9hG4bK is taken as the branch, so OPTIONS is answered 200.
    ("badbranch", "3.2.1", Code(200)),
    // §3.3 application layer.
    ("insuf", "3.3.1", Code(400)),
    ("unkscm", "3.3.2", Code(416)),
    ("novelsc", "3.3.3", Code(416)),
    ("unksm2", "3.3.4", Code(400)), // a registrar refuses a non-SIP To
    ("bext01", "3.3.5", Code(420)),
    // 415 from an element that takes INVITEs; RFC 3261 §8.2 looks at the
    // method (405) before the content.
    ("invut", "3.3.6", Code(405)),
    ("regaut01", "3.3.7", Code(401)),
    ("multi01", "3.3.8", Code(400)),
    ("mcl01", "3.3.9", Code(400)),
    ("bcast", "3.3.10", Discard),
    ("zeromf", "3.3.11", Code(200)), // 483 is for proxies
    ("cparam01", "3.3.12", Code(401)),
    ("cparam02", "3.3.13", Code(401)),
    ("regescrt", "3.3.14", Code(401)),
    ("sdp01", "3.3.15", Code(405)), // 406 from an element that takes INVITEs
    // §3.4 backward compatibility: no branch, no From tag, no Max-Forwards.
    ("inv2543", "3.4.1", Code(405)),
    // In the archive, in no section: no SIP version, no Via, no CSeq.
    ("test", "-", Discard),
];

/// The header an answer with this code must carry (RFC 3261 §8.2, §20).
fn required_header(code: u16) -> Option<&'static str> {
    match code {
        401 => Some("WWW-Authenticate"),
        405 | 501 => Some("Allow"),
        420 => Some("Unsupported"),
        _ => None,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The tag parameters of a From or To value (`;tag=`, any spacing or case).
/// In a value whose quoted string is never closed (RFC 4475 §3.1.2.6),
/// the parameters after the last `>`.
fn tags(value: &str) -> Vec<String> {
    let value = match value.matches('"').count() % 2 {
        0 => value,
        _ => value.rsplit_once('>').map_or(value, |(_, p)| p),
    };
    let mut quoted = false;
    let mut after_angle = !value.contains('<');
    let mut params = Vec::new();
    let mut current: Option<String> = None;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => after_angle = true,
            ';' if !quoted && after_angle => {
                params.extend(current.take());
                current = Some(String::new());
            }
            _ => {
                if let Some(p) = current.as_mut() {
                    p.push(c);
                }
            }
        }
    }
    params.extend(current);
    params
        .iter()
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("tag"))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// A header of a request (full or compact name), unfolded.
fn request_header(msg: &[u8], names: [&str; 2]) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        let n = n.trim();
        names
            .iter()
            .any(|m| n.eq_ignore_ascii_case(m))
            .then(|| v.trim().to_owned())
    })
}

/// What is wrong with the From and To of an answer, if anything: From has
/// the request's tags (none if it had none, RFC 2543 style), To exactly one
/// tag, the request's if it had one.
fn answer_problem(request: &[u8], answer: &SipMsg) -> Option<String> {
    let sent_from = request_header(request, ["from", "f"]).map(|f| tags(&f));
    let got_from = answer.header("From").map(tags);
    if sent_from != got_from {
        return Some(format!("From tags {got_from:?}, sent {sent_from:?}"));
    }
    let sent = request_header(request, ["to", "t"]);
    let Some(to) = answer.header("To") else {
        // Only an answer to a request without To (insuf) may lack one.
        return sent.map(|_| "answer without To".to_owned());
    };
    let got = tags(to);
    if got.len() != 1 {
        return Some(format!("To of the answer is {to:?}"));
    }
    match sent.map(|t| tags(&t)).as_deref() {
        Some([tag]) if *tag != got[0] => Some(format!("the request's To tag is lost: {to:?}")),
        _ => None,
    }
}

/// Reads one SIP message from `sock`, `None` when nothing came within [`BOUND`].
fn recv(sock: &UdpSocket) -> Option<SipMsg> {
    let mut buf = vec![0u8; 65_536];
    let (len, _) = sock.recv_from(&mut buf).ok()?;
    let raw = String::from_utf8_lossy(&buf[..len]).into_owned();
    Some(SipMsg::parse(&raw).unwrap_or_else(|| panic!("not SIP: {raw:?}")))
}

/// Everything that comes back on `sock` until the answer to a probe OPTIONS
/// sent now. A message the daemon drops is dropped in its receive path,
/// before the probe is read, so an answer to it would come first.
fn answers_before_probe(sock: &UdpSocket, server: SocketAddr, n: usize) -> Vec<SipMsg> {
    let local = sock.local_addr().expect("addr");
    let call_id = format!("probe-{n}@torture");
    let probe = format!(
        "OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p{n}\r\nTo: <sip:{server}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(probe.as_bytes(), server).expect("send probe");
    let mut got = Vec::new();
    loop {
        let m = recv(sock).unwrap_or_else(|| panic!("no answer to the probe within {BOUND:?}"));
        if m.header("Call-ID") == Some(call_id.as_str()) {
            return got;
        }
        got.push(m);
    }
}

/// Sends one message over UDP: the final status (`None` if dropped), and
/// what is wrong with the answer (its To header, a second final answer).
fn over_udp(
    server: SocketAddr,
    name: &str,
    n: usize,
    expect: Expect,
) -> (Option<u16>, Option<String>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(BOUND)).expect("timeout");
    let msg = fixture(name);
    sock.send_to(&msg, server).expect("send");
    let mut answer = None;
    if expect != Discard {
        // Provisional answers (100 Trying) may come first.
        while let Some(m) = recv(&sock) {
            if m.status() >= 200 {
                answer = Some(m);
                break;
            }
        }
    }
    let more: Vec<SipMsg> = answers_before_probe(&sock, server, n)
        .into_iter()
        .filter(|m| m.status() >= 200)
        .collect();
    match (answer.as_ref(), &more[..]) {
        (Some(a), []) | (None, [a]) => {
            let code = a.status();
            let missing = required_header(code)
                .filter(|h| a.header(h).is_none())
                .map(|h| format!("{code} without {h}"));
            (Some(code), missing.or_else(|| answer_problem(&msg, a)))
        }
        (None, []) => (None, None),
        (_, more) => (None, Some(format!("more final answers: {more:?}"))),
    }
}

/// Sends bytes on a new TCP connection: every answer until the daemon
/// closes the connection or stops answering.
fn over_tcp(server: SocketAddr, bytes: &[u8]) -> (Vec<SipMsg>, bool) {
    let mut s = TcpStream::connect(server).expect("connect");
    s.set_read_timeout(Some(BOUND)).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&raw).into_owned();
    let answers = text
        .split_inclusive("Content-Length: 0\r\n\r\n")
        .filter_map(SipMsg::parse)
        .collect();
    (answers, closed)
}

fn start() -> (TempDir, SimProcess, Daemon) {
    let dir = TempDir::new("rfc4475");
    let sim = SimProcess::start(dir.path(), &[]);
    // The senders of the valid requests are users of example.com: ours here,
    // so they take the normal path (a challenge), not the 403 a user of
    // another domain gets from a server that is not theirs.
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        "[federation]\ndomain_aliases = [\"example.com\"]\n",
    );
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    (dir, sim, daemon)
}

#[test]
fn every_rfc4475_message_gets_the_answer_the_rfc_expects() {
    let (_dir, _sim, daemon) = start();
    let mut wrong = Vec::new();
    let mut table = String::new();
    // [dropped, answered]
    let mut counts = [0usize; 2];
    for (n, &(name, section, expect)) in CASES.iter().enumerate() {
        let (got, problem) = over_udp(daemon.sip, name, n, expect);
        let ok = problem.is_none()
            && match (expect, got) {
                (Code(c), Some(g)) => c == g,
                (Discard, None) => true,
                _ => false,
            };
        let mut shown = got.map_or_else(|| "no answer".to_owned(), |c| c.to_string());
        if let Some(why) = problem {
            shown.push_str(&format!(" ({why})"));
        }
        table.push_str(&format!("{section:9} {name:11} {expect:?} → {shown}\n"));
        counts[usize::from(got.is_some())] += 1;
        if !ok {
            wrong.push(name);
        }
    }
    println!(
        "{table}{} messages: {} answered, {} dropped, {} not as expected",
        CASES.len(),
        counts[1],
        counts[0],
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "not as RFC 4475 expects: {wrong:?}\n{table}\nlog:\n{}",
        daemon.log()
    );
    assert_eq!(
        CASES.len(),
        std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/rfc4475"
        ))
        .expect("fixtures")
        .filter(|e| e
            .as_ref()
            .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "dat")))
        .count(),
        "one case per archive file"
    );
}

/// §3.3.9 on a stream: two Content-Lengths leave no way to find where the
/// next message starts, so the answer is 400 and the connection is closed.
#[test]
fn two_content_lengths_on_tcp_get_400_and_the_connection_closes() {
    let (_dir, _sim, daemon) = start();
    let msg = fixture("mcl01");
    let (answers, closed) = over_tcp(daemon.sip, &msg);
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0].status(), 400);
    assert_eq!(answer_problem(&msg, &answers[0]), None);
    assert!(closed, "the connection is closed after the 400");
}

/// §3.1.1.8 on a stream: what follows the REGISTER's empty body is the next
/// message, framed by Content-Length, and answered on its own.
#[test]
fn the_second_request_of_dblreq_is_its_own_message_on_tcp() {
    let (_dir, _sim, daemon) = start();
    let msg = fixture("dblreq");
    let mut s = TcpStream::connect(daemon.sip).expect("connect");
    s.set_read_timeout(Some(BOUND)).expect("timeout");
    s.write_all(&msg).expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // Two answers: read until both final responses have come.
    while String::from_utf8_lossy(&raw).matches("SIP/2.0 4").count() < 2 {
        let n = s.read(&mut buf).expect("two answers within the bound");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    // Each is its own transaction: answered in either order.
    let mut codes: Vec<u16> = text
        .split("SIP/2.0 ")
        .skip(1)
        .filter_map(|r| r.get(..3)?.parse().ok())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, [401, 405], "{text}");
}
