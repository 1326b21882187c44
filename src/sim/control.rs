//! The control socket of a running simulator: a Unix socket next to the port's
//! link (`<link>.ctl`), one JSON object per line each way. `sim-inject`,
//! `sim-fault` and `sim-sent` are its clients; tests may talk to it directly.

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A request to the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum ControlRequest {
    /// A mobile-originated SMS: `{"cmd":"inject","from":"+1555…","text":"hi","order":"reverse"}`.
    Inject {
        /// Sender number (or alphanumeric name).
        from: String,
        /// The text; long texts arrive in several parts.
        text: String,
        /// `in-order` (default), `reverse` or `shuffled`.
        #[serde(default)]
        order: Option<String>,
    },
    /// A fault in the form `Fault`'s `FromStr` takes: `{"cmd":"fault","fault":"hang-after 3"}`.
    Fault {
        /// e.g. `reboot`, `storage-full`, `cms-error-rate 0.5:38`.
        fault: String,
    },
    /// Every SMS-SUBMIT accepted so far: `{"cmd":"sent"}`.
    Sent,
}

/// One accepted SMS-SUBMIT, as `sent` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentSummary {
    /// The `+CMGS` message reference.
    pub mr: u8,
    /// The destination (`+` for international numbers).
    pub to: String,
    /// The text of this part, if it is text.
    pub text: Option<String>,
    /// The PDU hex as the client wrote it.
    pub pdu: String,
    /// Whether a status report was requested.
    pub report: bool,
}

/// The simulator's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ControlResponse {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Parts injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
    /// Accepted submits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Vec<SentSummary>>,
}

impl ControlResponse {
    /// A refusal with its reason.
    pub fn failed(error: impl ToString) -> Self {
        Self {
            ok: false,
            error: Some(error.to_string()),
            ..Self::default()
        }
    }
}

/// The control socket of the simulator whose port link is `link`: `<link>.ctl`.
pub fn control_path(link: &Path) -> PathBuf {
    let mut s = link.as_os_str().to_owned();
    s.push(".ctl");
    PathBuf::from(s)
}

/// Sends one request to the control socket at `path` and waits for the answer.
pub fn send_control(path: &Path, req: &ControlRequest) -> io::Result<ControlResponse> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    let mut line = serde_json::to_string(req).map_err(io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad answer {answer:?}: {e}"),
        )
    })
}
