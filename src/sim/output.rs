//! Output: responses built per command line and written whole, final result
//! codes as `ATV`, `ATQ` and `AT+CMEE` say, unsolicited result codes held until
//! the interpreter is idle, and the transcript.

use std::time::Instant;

use super::clock::after;
use super::error::{AtError, cme_text, cms_text};
use super::log::{LogEntry, SimLog};
use super::modem::{AckWait, SimModem, State, Urc};
use super::network::Mt;

impl SimModem {
    /// Information lines of one command.
    pub(super) fn info(&mut self, lines: &[String]) {
        if self.set.verbose {
            self.resp.push_str("\r\n");
            self.resp.push_str(&lines.join("\r\n"));
            self.resp.push_str("\r\n");
        } else {
            for l in lines {
                self.resp.push_str(l);
                self.resp.push_str("\r\n");
            }
        }
    }

    /// The final result code: `OK` for `None`.
    pub(super) fn final_result(&mut self, err: Option<AtError>) {
        if self.set.quiet {
            return;
        }
        let (text, numeric) = match err {
            None => ("OK".to_string(), Some('0')),
            Some(AtError::Plain) => ("ERROR".to_string(), Some('4')),
            Some(AtError::Cme(n)) => match self.set.cmee {
                0 => ("ERROR".to_string(), Some('4')),
                1 => (format!("+CME ERROR: {n}"), None),
                _ => (format!("+CME ERROR: {}", cme_text(n)), None),
            },
            Some(AtError::Cms(n)) => match self.set.cmee {
                0 => ("ERROR".to_string(), Some('4')),
                1 => (format!("+CMS ERROR: {n}"), None),
                _ => (format!("+CMS ERROR: {}", cms_text(n)), None),
            },
        };
        match (self.set.verbose, numeric) {
            (true, _) => self.resp.push_str(&format!("\r\n{text}\r\n")),
            (false, Some(code)) => {
                self.resp.push(code);
                self.resp.push('\r');
            }
            (false, None) => self.resp.push_str(&format!("{text}\r\n")),
        }
    }

    pub(super) fn flush_resp(&mut self, now: Instant) {
        if self.resp.is_empty() {
            return;
        }
        let resp = std::mem::take(&mut self.resp);
        self.out.extend_from_slice(&latin1(&resp));
        self.push_log(now, LogEntry::Response(resp));
    }

    /// Queues an unsolicited result code (`text` may hold two lines, CR LF apart).
    pub(super) fn queue_urc(&mut self, text: String, ack: Option<Mt>) {
        self.urcs.push_back(Urc { text, ack });
    }

    pub(super) fn flush_urcs(&mut self, now: Instant) {
        if !matches!(self.state, State::Idle) || !self.line.is_empty() || !self.input.is_empty() {
            return;
        }
        while let Some(u) = self.urcs.pop_front() {
            let bytes = format!("\r\n{}\r\n", u.text);
            self.out.extend_from_slice(&latin1(&bytes));
            self.push_log(now, LogEntry::Urc(bytes));
            if let Some(mt) = u.ack {
                self.ack = Some(AckWait {
                    deadline: after(now, self.cfg.ack_timeout),
                    mt,
                });
            }
        }
    }

    pub(super) fn push_log(&mut self, at: Instant, entry: LogEntry) {
        self.log.push_back(SimLog { at, entry });
    }

    pub(super) fn event(&mut self, at: Instant, text: String) {
        self.push_log(at, LogEntry::Event(text));
    }
}

/// Our responses are ASCII but for text-mode message bodies; those go out as
/// Latin-1 like a modem's IRA/8859-1 character set would.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}
