//! The session against the simulated modem (`sim::SimModem`) in memory, quinn
//! `Pair` style: bytes moved both ways, the virtual clock jumped to the next
//! deadline when both are idle. For behaviour that spans two sessions on one
//! modem (a reopen), where a scripted transcript would only restate our guess.

use std::time::{Duration, Instant};

use super::{Event, Session, SessionConfig};
use crate::sim::{LogEntry, SimConfig, SimModem, SimQuirk};

struct Pair {
    sim: SimModem,
    now: Instant,
}

impl Pair {
    fn new(cfg: SimConfig) -> Self {
        let now = Instant::now();
        Self {
            sim: SimModem::new(cfg, now),
            now,
        }
    }

    /// Runs `s` against the modem until `done` holds for the events so far;
    /// `None` if it never does within `limit` of virtual time.
    fn run(
        &mut self,
        s: &mut Session,
        limit: Duration,
        done: impl Fn(&Session, &[Event]) -> bool,
    ) -> Option<Vec<Event>> {
        let end = self.now + limit;
        let mut events = Vec::new();
        for _ in 0..100_000 {
            let mut moved = false;
            let mut buf = Vec::new();
            while s.poll_transmit(&mut buf) {}
            if !buf.is_empty() {
                self.sim.handle_input(self.now, &buf);
                moved = true;
            }
            let mut out = Vec::new();
            while self.sim.poll_output(&mut out) {}
            if !out.is_empty() {
                s.handle_input(self.now, &out);
                moved = true;
            }
            while let Some(e) = s.poll_event() {
                events.push(e);
            }
            if done(s, &events) {
                return Some(events);
            }
            if moved {
                continue;
            }
            let next = [s.poll_timeout(), self.sim.poll_timeout()]
                .into_iter()
                .flatten()
                .min()?;
            if next > end {
                return None;
            }
            self.now = self.now.max(next);
            s.handle_timeout(self.now);
            self.sim.handle_timeout(self.now);
        }
        None
    }

    /// A session that started the modem and finished its start-up sweep: no
    /// command in flight, only the health timer (60 s) ahead.
    fn ready(&mut self, cfg: SessionConfig) -> Session {
        let mut s = Session::new(cfg, self.now);
        let quiet = |s: &Session, now: Instant| {
            s.can_send()
                && s.poll_timeout()
                    .is_some_and(|t| t > now + Duration::from_secs(30))
        };
        let ready_at = self
            .run(&mut s, Duration::from_secs(120), |s, ev| {
                s.can_send() && ev.iter().any(|e| matches!(e, Event::Ready(_)))
            })
            .map(|_| self.now)
            .expect("the session gets the modem ready");
        self.run(&mut s, Duration::from_secs(10), |s, _| quiet(s, ready_at))
            .expect("the start-up sweep ends");
        s
    }
}

fn sticky_prompt() -> SimConfig {
    SimConfig {
        quirks: vec![SimQuirk::PromptUntilEsc],
        ..SimConfig::default()
    }
}

/// Session 1 writes `AT+CMGS`; the port closes before the prompt is answered
/// (the daemon was killed).
fn leave_a_prompt_open(p: &mut Pair) {
    let mut s1 = p.ready(SessionConfig::default());
    s1.submit(p.now, 1, &[0x01, 0x00, 0x00], None);
    let mut buf = Vec::new();
    while s1.poll_transmit(&mut buf) {}
    assert_eq!(buf, b"AT+CMGS=3\r");
    p.sim.handle_input(p.now, &buf);
    let mut out = Vec::new();
    while p.sim.poll_output(&mut out) {}
    assert_eq!(out, b"\r\n> ");
    // The daemon stops here; the prompt's answer is never written.
    s1.abort("the port closed");
    p.sim.port_reset(p.now);
}

// Issue 12: a prompt left open by an earlier process is cancelled (ESC)
// before anything else is written, though the new session knows nothing of it;
// the modem is then started as usual and nothing was sent.
#[test]
fn the_next_session_cancels_a_prompt_the_last_one_left_open() {
    let mut p = Pair::new(sticky_prompt());
    leave_a_prompt_open(&mut p);
    let s2 = p.ready(SessionConfig::default());
    assert!(s2.is_ready());
    assert!(p.sim.sent().is_empty());
    let log: Vec<_> = std::iter::from_fn(|| p.sim.poll_log())
        .map(|l| l.entry)
        .collect();
    let esc = log
        .iter()
        .rposition(|e| matches!(e, LogEntry::Data(d) if d.ends_with("ESC")))
        .expect("the prompt was left with ESC");
    // Nothing was typed into the prompt before the ESC.
    assert_eq!(log[esc], LogEntry::Data(" ESC".into()), "{log:?}");
}

// What the ESC prevents: on this modem, a command written into the open
// prompt is taken as PDU text and gets no answer ("no answer to AT").
#[test]
fn without_the_escape_the_modem_does_not_answer() {
    let mut p = Pair::new(sticky_prompt());
    leave_a_prompt_open(&mut p);
    p.sim.handle_input(p.now, b"AT\r");
    p.now += Duration::from_secs(10);
    p.sim.handle_timeout(p.now);
    let mut out = Vec::new();
    while p.sim.poll_output(&mut out) {}
    assert!(!String::from_utf8_lossy(&out).contains("OK"), "{out:?}");
}
