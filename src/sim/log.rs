//! The transcript: every command line received, every response and unsolicited
//! result code sent, and what happened on the simulated network.

use std::fmt;
use std::time::Instant;

/// One transcript entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimLog {
    /// When it happened.
    pub at: Instant,
    /// What happened.
    pub entry: LogEntry,
}

/// What a transcript entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A command line as the client typed it (without the CR).
    Command(String),
    /// What the client typed at a `> ` prompt (PDU hex or text), with how it
    /// ended: `^Z` (sent) or `ESC` (aborted).
    Data(String),
    /// Bytes of a response sent to the client, exactly (prompt and final result
    /// included; echo excluded).
    Response(String),
    /// Bytes of an unsolicited result code sent to the client, exactly.
    Urc(String),
    /// Something on the simulated network: a submit accepted, a delivery, a
    /// report, a phone's reply, a message waiting for storage.
    Network(String),
    /// A fault taking effect, a reboot, a hang, a port reset.
    Event(String),
}

impl fmt::Display for LogEntry {
    /// One line: `-> AT+CMGF=0`, `<- \r\nOK\r\n`, `<~ \r\n+CMTI: "SM",0\r\n`,
    /// `.. network: ...`, `!! event`. CR and LF are shown escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(s) => write!(f, "-> {}", escape(s)),
            Self::Data(s) => write!(f, "-> [data] {}", escape(s)),
            Self::Response(s) => write!(f, "<- {}", escape(s)),
            Self::Urc(s) => write!(f, "<~ {}", escape(s)),
            Self::Network(s) => write!(f, ".. {s}"),
            Self::Event(s) => write!(f, "!! {s}"),
        }
    }
}

/// CR, LF, Ctrl-Z, ESC and other control characters as `\r`, `\n`, `\x1a`.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
