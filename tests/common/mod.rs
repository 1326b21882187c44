//! Helpers shared by the integration tests that talk to a third-party peer
//! (python-gammu, gammu, kamailio, sipp, baresip, ...).
//!
//! Use it as `mod common;` from a file in `tests/`. A test that needs a peer
//! starts with
//!
//! ```ignore
//! if !common::peer_available("python3-gammu", "apt-get install python3-gammu", found) {
//!     return;
//! }
//! ```
//!
//! On a developer machine without the peer the test writes one `skipping:`
//! line straight to stderr (so plain `cargo test`, which captures what tests
//! print, still shows it) and passes. CI sets `SMSBRIDGE_REQUIRE_PEERS=1`, and
//! then a missing peer fails the test instead, so a broken CI install step
//! cannot turn the peer tests into silent no-ops. `SMSBRIDGE_SKIP_PEERS=baresip,sipp`
//! treats the named peers as missing (to see what the run does without them).

use std::io::Write;
use std::process::{Command, Stdio};

/// The environment variable that turns a missing peer from a skip into a failure.
#[allow(dead_code)]
pub const REQUIRE_PEERS_ENV: &str = "SMSBRIDGE_REQUIRE_PEERS";

/// Whether missing peers must fail the test run: `SMSBRIDGE_REQUIRE_PEERS=1`.
/// Any other value, or none, means a missing peer is skipped.
#[allow(dead_code)]
pub fn peers_required() -> bool {
    std::env::var(REQUIRE_PEERS_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Decides whether a peer-based test runs.
///
/// - `name`: the peer as a person would look for it, e.g. `"python3-gammu"`.
/// - `install`: how to get it, e.g. `"apt-get install python3-gammu"`.
/// - `available`: the caller's probe result (see [`command_succeeds`]).
///
/// Returns `true` when the peer is there. When it is not, prints
/// `skipping: <name> not installed (<install>)` and returns `false`, unless
/// `SMSBRIDGE_REQUIRE_PEERS=1`, in which case it panics with the same hint.
#[allow(dead_code)]
pub fn peer_available(name: &str, install: &str, available: bool) -> bool {
    let hidden =
        std::env::var("SMSBRIDGE_SKIP_PEERS").is_ok_and(|v| v.split(',').any(|p| p.trim() == name));
    if available && !hidden {
        return true;
    }
    if peers_required() {
        panic!("peer {name} is not installed but {REQUIRE_PEERS_ENV}=1 requires it: {install}");
    }
    let why = if hidden {
        "listed in SMSBRIDGE_SKIP_PEERS"
    } else {
        "not installed"
    };
    skip(&format!("{name} {why} ({install})"));
    false
}

/// Says on stderr that the calling test is skipped, and why, in a way plain
/// `cargo test` shows: not with `println!`, which the test harness captures and
/// shows only for failing tests, but with a write to the stderr handle, which
/// goes around the capture. The line names the test binary and the test.
#[allow(dead_code)]
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .map(str::to_owned)
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "skipping {}::{test}: {why}",
        env!("CARGO_CRATE_NAME")
    );
}

/// Runs `program args...` with no stdin and discarded output, and says
/// whether it could be started and exited with status 0. Handy as the probe
/// for [`peer_available`], e.g. `command_succeeds("/usr/bin/python3", &["-c", "import gammu"])`.
#[allow(dead_code)]
pub fn command_succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Request-URI of the request in a sipp scenario that carries
/// `[authentication]`, for sipp's `-auth_uri` (which puts `sip:` in front
/// itself): sipp signs `sip:<remote host:port>` by default, and smsbridge
/// checks that the digest `uri` is the Request-URI, as RFC 2617 §3.2.2.5 asks
/// of a server.
#[allow(dead_code)]
pub fn sipp_auth_uri(scenario: &str) -> Option<String> {
    let at = scenario.find("[authentication")?;
    scenario[..at]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(" SIP/2.0") && !l.starts_with("SIP/2.0"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|u| u.strip_prefix("sip:").unwrap_or(u).to_owned())
}

/// Checks `doc` against the RFC schema `tests/fixtures/xsd/<xsd>` with
/// xmllint (Debian `libxml2-utils`), writing it to `scratch` first; panics
/// with xmllint's complaint when it is not valid. xmllint itself is checked
/// by the caller with [`peer_available`].
#[allow(dead_code)]
pub fn assert_schema_valid(xsd: &str, doc: &str, scratch: &std::path::Path) {
    std::fs::write(scratch, doc).unwrap();
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xsd")
        .join(xsd);
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg(scratch)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(scratch);
    assert!(
        out.status.success(),
        "{xsd}: {}\n{doc}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One TCP segment for [`pcap_tcp`]: ports, sequence and acknowledgement
/// numbers, and the payload.
#[allow(dead_code)]
pub struct Segment<'a> {
    pub src: u16,
    pub dst: u16,
    pub seq: u32,
    pub ack: u32,
    pub payload: &'a [u8],
}

/// A pcap (raw IPv4, 127.0.0.1 both ways) with one TCP segment per frame,
/// for tshark as an independent decoder of what a test sent and received.
#[allow(dead_code)]
pub fn pcap_tcp(segments: &[Segment<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xA1B2_C3D4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65_535u32.to_le_bytes());
    out.extend(228u32.to_le_bytes()); // LINKTYPE_IPV4
    for (i, s) in segments.iter().enumerate() {
        let total = 40 + s.payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ];
        ip.extend([127, 0, 0, 1, 127, 0, 0, 1]);
        let sum = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xFFFF) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut tcp = Vec::new();
        tcp.extend(s.src.to_be_bytes());
        tcp.extend(s.dst.to_be_bytes());
        tcp.extend(s.seq.to_be_bytes());
        tcp.extend(s.ack.to_be_bytes());
        tcp.extend([0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]);
        let frame: Vec<u8> = ip
            .into_iter()
            .chain(tcp)
            .chain(s.payload.iter().copied())
            .collect();
        out.extend((i as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend(frame);
    }
    out
}
