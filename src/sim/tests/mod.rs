//! Transcript tests of the simulated modem: exact bytes in, exact bytes out, on a
//! virtual clock.

mod basic;
mod profiles;
mod quirks;
mod receive;
mod send;

use std::time::{Duration, Instant};

use super::{LogEntry, SimConfig, SimModem};
use crate::pdu::{Pdu, Submit, Tpdu, from_hex};

/// A modem, a virtual clock and the client's view of the port.
pub(super) struct Bench {
    pub(super) m: SimModem,
    pub(super) now: Instant,
}

impl Bench {
    pub(super) fn new(cfg: SimConfig) -> Self {
        let now = Instant::now();
        Self {
            m: SimModem::new(cfg, now),
            now,
        }
    }

    pub(super) fn generic() -> Self {
        Self::new(SimConfig::default())
    }

    /// Writes `input` and returns everything the modem wrote back.
    pub(super) fn send(&mut self, input: &str) -> String {
        self.m.handle_input(self.now, input.as_bytes());
        self.out()
    }

    pub(super) fn out(&mut self) -> String {
        let mut buf = Vec::new();
        while self.m.poll_output(&mut buf) {}
        buf.iter().map(|&b| char::from(b)).collect()
    }

    /// Moves the clock on by `d`, running every timer due on the way.
    pub(super) fn wait(&mut self, d: Duration) -> String {
        let end = self.now + d;
        for _ in 0..10_000 {
            match self.m.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.m.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.m.handle_timeout(end);
        self.out()
    }

    /// `ATE0` and the rest of a usual set-up, output discarded.
    pub(super) fn quiet(&mut self, setup: &str) {
        self.send("ATE0\r");
        for l in setup.split('\n').filter(|l| !l.is_empty()) {
            self.send(&format!("{l}\r"));
        }
    }

    pub(super) fn log(&mut self) -> Vec<LogEntry> {
        std::iter::from_fn(|| self.m.poll_log())
            .map(|l| l.entry)
            .collect()
    }
}

/// An SMS-SUBMIT for `text` to `to` as hex with an empty SMSC field, and the
/// `AT+CMGS` length.
pub(super) fn submit_hex(to: &str, text: &str, report: bool) -> Vec<(usize, String)> {
    use crate::pdu::{Address, Body, DataCoding, EncodeOptions, UserData, segment, to_hex};
    let template = Submit {
        reject_duplicates: false,
        status_report_request: report,
        reply_path: false,
        mr: 0,
        destination: Address::from_number(to).expect("test number"),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    };
    segment(&template, text, 7, &EncodeOptions::default())
        .expect("test text")
        .into_iter()
        .map(|s| {
            let mut bytes = Vec::new();
            let len = Pdu {
                smsc: None,
                tpdu: Tpdu::Submit(s),
            }
            .encode(&mut bytes)
            .expect("encodes");
            (len, to_hex(&bytes))
        })
        .collect()
}

/// The PDUs of every `+CMT: ,<len>` / `+CDS: <len>` in `out`, decoded.
pub(super) fn routed_pdus(out: &str, prefix: &str) -> Vec<Pdu> {
    let lines: Vec<&str> = out.split("\r\n").collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with(prefix))
        .map(|w| Pdu::decode(&from_hex(w[1]).expect("hex")).expect("pdu"))
        .collect()
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
