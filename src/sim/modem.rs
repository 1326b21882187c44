//! The simulated modem's interpreter: bytes in, echo, command lines, responses,
//! the `> ` prompt, a busy period while a message is sent, reboots and hangs,
//! unsolicited result codes held back until the interpreter is idle, and one
//! timer table. Commands themselves are in `cmd_general.rs` and `cmd_sms.rs`,
//! message arrival in `delivery.rs`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::clock::{Clock, after};
use super::config::{Fault, PartOrder, SimConfig, SimQuirk};
use super::error::{AtError, SimError};
use super::line::{self, Command};
use super::log::{LogEntry, SimLog};
use super::network::{Network, number_text};
use super::profile::Profile;
use super::rng::Rng;
use super::storage::{Mem, REC_UNREAD, Slot, Storage};
use crate::pdu::{Address, Submit};

/// Longest command line kept; the rest of a longer line is dropped and the line
/// answered `ERROR`.
const MAX_LINE: usize = 1024;
/// Longest PDU or text accepted at the prompt.
const MAX_ENTRY: usize = 2048;

/// An SMS-SUBMIT the modem accepted and handed to the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// The decoded TPDU (its TP-MR as the client wrote it; the modem's is `mr`).
    pub submit: Submit,
    /// The SMSC field the client put in front, `None` for `00`.
    pub smsc: Option<Address>,
    /// The PDU hex exactly as the client wrote it (text mode: our encoding).
    pub pdu_hex: String,
    /// The message reference answered in `+CMGS: <mr>`.
    pub mr: u8,
    /// When `+CMGS` was answered.
    pub at: Instant,
}

impl SentSms {
    /// The destination as people write it (`+` for international numbers).
    pub fn to(&self) -> String {
        number_text(&self.submit.destination)
    }

    /// The text of this part (`None` for 8-bit data).
    pub fn text(&self) -> Option<String> {
        self.submit.user_data.body.text()
    }
}

pub(super) use super::state::{
    AckWait, Entry, EntryKind, Faults, Outcome, SendJob, Settings, SimState, State, Urc,
};

/// One simulated modem and its view of the simulated network. See the module
/// documentation for the call pattern.
#[derive(Debug)]
pub struct SimModem {
    pub(super) cfg: SimConfig,
    pub(super) profile: &'static Profile,
    pub(super) clock: Clock,
    pub(super) net: Network,
    pub(super) store: Storage,
    pub(super) set: Settings,
    pub(super) sim: SimState,
    pub(super) pin_tries: u8,
    pub(super) puk_tries: u8,
    pub(super) radio_on: bool,
    pub(super) smsc: String,
    pub(super) state: State,
    pub(super) input: VecDeque<u8>,
    pub(super) line: Vec<u8>,
    line_overflow: bool,
    last_line: Option<String>,
    /// The response being built for the current command line.
    pub(super) resp: String,
    pub(super) out: Vec<u8>,
    pub(super) urcs: VecDeque<Urc>,
    /// Indications buffered in the TA while `AT+CNMI` `<mode>` is 0.
    pub(super) tabuf: VecDeque<Urc>,
    pub(super) ack: Option<AckWait>,
    pub(super) log: VecDeque<SimLog>,
    pub(super) sent: Vec<SentSms>,
    pub(super) mr: u8,
    pub(super) faults: Faults,
    pub(super) vanish: Option<Duration>,
    pub(super) noise_next: Option<Instant>,
    pub(super) noise_count: u32,
    pub(super) rng: Rng,
    pub(super) last_now: Instant,
    /// Start-up banners still to come around the next answers
    /// ([`SimQuirk::BannersAroundAnswers`]).
    pub(super) banners: VecDeque<String>,
}

impl SimModem {
    /// A modem powered up at `now`: echo on, SIM waiting for its PIN if one is
    /// configured, nothing stored.
    pub fn new(config: SimConfig, now: Instant) -> Self {
        let profile = config.model.profile();
        let clock = Clock::new(now, config.unix_time, config.utc_offset_quarters);
        let s = config.storage;
        let mut m = Self {
            net: Network::new(&config, clock),
            store: Storage::new(s.sm, s.me, s.sr),
            set: Settings::new(profile),
            sim: SimState::Ready,
            pin_tries: 3,
            puk_tries: 10,
            radio_on: true,
            smsc: config.smsc.clone(),
            state: State::Idle,
            input: VecDeque::new(),
            line: Vec::new(),
            line_overflow: false,
            last_line: None,
            resp: String::new(),
            out: Vec::new(),
            urcs: VecDeque::new(),
            tabuf: VecDeque::new(),
            ack: None,
            log: VecDeque::new(),
            sent: Vec::new(),
            mr: 0,
            faults: Faults::default(),
            vanish: None,
            noise_next: None,
            noise_count: 0,
            rng: Rng::new(config.seed),
            last_now: now,
            banners: VecDeque::new(),
            clock,
            profile,
            cfg: config,
        };
        m.sim = m.sim_at_power_up();
        m.set = m.fresh_settings();
        m.store_unread_on_sim(now);
        m.queue_banners();
        for f in m.cfg.faults.clone() {
            m.set_fault(f);
        }
        m.start_noise(now);
        if profile.huawei {
            m.queue_urc("^BOOT:35323129,0,0,0,26".into(), None);
        }
        m.advance(now);
        m
    }

    /// Bytes the client wrote to the port.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.last_now = now;
        match self.state {
            State::Hung | State::Rebooting { .. } => {
                self.event(now, format!("{} byte(s) ignored", bytes.len()));
            }
            _ => self.input.extend(bytes),
        }
        self.advance(now);
    }

    /// Runs whatever is due at `now`. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.advance(now);
    }

    /// Moves the bytes to write to the client into `out`; `false` when none.
    #[must_use]
    pub fn poll_output(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        true
    }

    /// The next time [`Self::handle_timeout`] has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Busy { until, .. } | State::Rebooting { until } => Some(*until),
            _ => None,
        };
        [
            state,
            self.ack.as_ref().map(|a| a.deadline),
            self.noise_next,
            self.net.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next transcript entry.
    #[must_use]
    pub fn poll_log(&mut self) -> Option<SimLog> {
        self.log.pop_front()
    }

    /// The client closed the port (a USB re-plug): a hang ends, a half-typed line
    /// or an open prompt is dropped. Settings stay.
    pub fn port_reset(&mut self, now: Instant) {
        self.last_now = now;
        self.event(now, "port reset".into());
        match self.state {
            State::Hung => self.state = State::Idle,
            State::Entry(_) if self.quirk(SimQuirk::PromptUntilEsc) => {
                self.event(now, "the > prompt stays open until ESC".into());
            }
            State::Entry(_) => self.state = State::Idle,
            _ => {}
        }
        self.input.clear();
        self.line.clear();
        self.line_overflow = false;
        self.advance(now);
    }

    /// A mobile-originated SMS from `from` (a number, or an alphanumeric name)
    /// arriving now, cut into parts as a phone would; returns how many.
    pub fn inject_mo(
        &mut self,
        now: Instant,
        from: &str,
        text: &str,
        order: PartOrder,
    ) -> Result<usize, SimError> {
        self.last_now = now;
        let n = self.net.inject(now, from, text, order)?;
        self.advance(now);
        Ok(n)
    }

    /// Turns a fault on (or, with [`Fault::Clear`], every fault off). A reboot
    /// starts at the last time the modem was given.
    pub fn set_fault(&mut self, fault: Fault) {
        let now = self.last_now;
        self.event(now, format!("fault: {fault}"));
        match fault {
            Fault::CmsErrorRate { probability, code } => {
                self.faults.cms_rate = (probability > 0.0).then_some((probability, code));
            }
            Fault::HangAfter(n) => {
                self.faults.hang_after = Some(n);
                self.take_hang_due(now);
            }
            Fault::Reboot => self.reboot(now, "fault"),
            Fault::RebootAfter(0) => self.reboot(now, "fault"),
            Fault::RebootAfter(n) => self.faults.reboot_after = Some(n),
            Fault::StorageFull => self.fill_storage(),
            Fault::VanishAfter { commands, duration } => {
                self.faults.vanish_after = Some((commands, duration));
                if commands == 0 {
                    self.take_vanish_due();
                }
            }
            Fault::Clear => self.faults = Faults::default(),
        }
        self.advance(now);
    }

    /// Every SMS-SUBMIT accepted so far.
    pub fn sent(&self) -> &[SentSms] {
        &self.sent
    }

    /// For the PTY driver: `Some(duration)` once a [`Fault::VanishAfter`] fell
    /// due; the port should disappear for that long.
    #[must_use]
    pub fn poll_vanish(&mut self) -> Option<Duration> {
        self.vanish.take()
    }

    // ---- the interpreter loop -------------------------------------------------

    fn advance(&mut self, now: Instant) {
        if let State::Busy { until, .. } = &self.state
            && *until <= now
            && let State::Busy { job, .. } = std::mem::replace(&mut self.state, State::Idle)
        {
            self.finish_send(now, *job);
        }
        if let State::Rebooting { until } = self.state
            && until <= now
        {
            self.boot_done(now);
        }
        if self.ack.as_ref().is_some_and(|a| a.deadline <= now) {
            self.ack_expired(now);
        }
        if self.noise_next.is_some_and(|t| t <= now) {
            self.noise_tick(now);
        }
        self.network_due(now);
        self.pump(now);
        // A send finished while pumping may have made a phone answer at once.
        self.network_due(now);
        self.flush_urcs(now);
        self.take_net_notes(now);
    }

    /// The network's notes, into the transcript in the order things happened.
    fn take_net_notes(&mut self, now: Instant) {
        for note in self.net.take_notes() {
            self.push_log(now, LogEntry::Network(note));
        }
    }

    /// Messages held at the network first (a slot may have freed, an
    /// acknowledgement come), then whatever fell due.
    fn network_due(&mut self, now: Instant) {
        self.retry_held(now);
        while let Some(mt) = self.net.next_due(now) {
            self.take_net_notes(now);
            self.deliver(now, mt);
        }
    }

    fn pump(&mut self, now: Instant) {
        loop {
            let entry = match &self.state {
                State::Idle => false,
                State::Entry(_) => true,
                _ => return,
            };
            let Some(b) = self.input.pop_front() else {
                return;
            };
            if entry {
                self.entry_byte(now, b);
            } else {
                self.idle_byte(now, b);
            }
        }
    }

    fn idle_byte(&mut self, now: Instant, b: u8) {
        // ESC and Ctrl-Z outside a prompt are ignored (gammu sends ESC CR at start).
        if b == 0x1b || b == 0x1a {
            return;
        }
        if self.set.echo {
            self.out.push(b);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                let overflow = std::mem::replace(&mut self.line_overflow, false);
                self.line_done(now, String::from_utf8_lossy(&line).into_owned(), overflow);
            }
            b'\n' if self.line.is_empty() => {}
            0x08 | 0x7f => {
                self.line.pop();
            }
            b'/' if self.line.eq_ignore_ascii_case(b"A") => {
                self.line.clear();
                if let Some(last) = self.last_line.clone() {
                    self.line_done(now, last, false);
                }
            }
            _ if self.line.len() >= MAX_LINE => self.line_overflow = true,
            _ => self.line.push(b),
        }
    }

    fn line_done(&mut self, now: Instant, text: String, overflow: bool) {
        if text.trim_matches([' ', '\0', '\n']).is_empty() {
            return;
        }
        self.push_log(now, LogEntry::Command(text.clone()));
        let Some(body) = line::strip_prefix(&text) else {
            self.event(now, "line without AT ignored".into());
            return;
        };
        let body = body.to_string();
        self.last_line = Some(text);
        if overflow {
            self.final_result(Some(AtError::Plain));
        } else {
            self.execute(now, &body);
        }
        self.flush_resp(now);
        if let Some(n) = self.faults.hang_after {
            self.faults.hang_after = Some(n.saturating_sub(1));
            self.take_hang_due(now);
        }
        if let Some(n) = self.faults.reboot_after {
            if n <= 1 {
                self.faults.reboot_after = None;
                self.reboot(now, "fault: reboot-after");
            } else {
                self.faults.reboot_after = Some(n - 1);
            }
        }
        if let Some((n, d)) = self.faults.vanish_after {
            self.faults.vanish_after = Some((n.saturating_sub(1), d));
            self.take_vanish_due();
        }
    }

    /// A hang takes effect right after the last answered line, so not even the
    /// echo of the next one is sent.
    fn take_hang_due(&mut self, now: Instant) {
        if self.faults.hang_after == Some(0) {
            self.faults.hang_after = None;
            self.state = State::Hung;
            self.input.clear();
            self.line.clear();
            self.event(now, "hung: no more answers until the port is reset".into());
        }
    }

    fn take_vanish_due(&mut self) {
        if let Some((0, d)) = self.faults.vanish_after {
            self.faults.vanish_after = None;
            self.vanish = Some(d);
            let now = self.last_now;
            self.event(
                now,
                format!("port vanishes for {}", humantime::format_duration(d)),
            );
        }
    }

    fn execute(&mut self, now: Instant, body: &str) {
        let cmds: Vec<Command> = match line::parse(body) {
            Ok(c) => c,
            Err(()) => return self.final_result(Some(AtError::Plain)),
        };
        let mut any_info = false;
        for cmd in cmds {
            match self.dispatch(now, &cmd) {
                Outcome::Info(lines) => {
                    if !lines.is_empty() {
                        self.banner();
                        self.info(&lines);
                        self.banner();
                        any_info = true;
                    }
                }
                Outcome::Prompt(kind) => {
                    self.resp.push_str("\r\n> ");
                    self.state = State::Entry(Entry {
                        kind,
                        buf: String::new(),
                    });
                    return;
                }
                Outcome::Fail(e) => return self.final_result(Some(e)),
                Outcome::NoFinal(lines) => return self.info(&lines),
                Outcome::Reboot => {
                    self.final_result(None);
                    self.flush_resp(now);
                    return self.reboot(now, "AT+CFUN=1,1");
                }
            }
        }
        if any_info {
            self.noise_inside_response();
        }
        self.final_result(None);
    }

    fn entry_byte(&mut self, now: Instant, b: u8) {
        let State::Entry(entry) = &mut self.state else {
            return;
        };
        match b {
            0x1a | 0x1b => {
                let entry = entry.clone();
                self.state = State::Idle;
                let end = if b == 0x1a { "^Z" } else { "ESC" };
                self.push_log(now, LogEntry::Data(format!("{} {end}", entry.buf)));
                if b == 0x1a {
                    self.complete_entry(now, entry);
                } else {
                    if entry.kind == EntryKind::Cnma {
                        self.acknowledge(now);
                    }
                    self.final_result(None);
                }
                self.flush_resp(now);
            }
            b'\r' | b'\n' => {
                let text = matches!(
                    entry.kind,
                    EntryKind::SendText { .. } | EntryKind::WriteText { .. }
                );
                if text && b == b'\r' && entry.buf.len() < MAX_ENTRY {
                    // A new line of text: the modem prompts again.
                    entry.buf.push('\n');
                    if self.set.echo {
                        self.out.push(b'\r');
                    }
                    self.out.extend_from_slice(b"\r\n> ");
                } else if self.set.echo {
                    self.out.push(b);
                }
            }
            _ => {
                if entry.buf.len() < MAX_ENTRY {
                    entry.buf.push(char::from(b));
                }
                if self.set.echo {
                    self.out.push(b);
                }
            }
        }
    }

    /// After the send delay: the network's answer to a submit.
    fn finish_send(&mut self, now: Instant, job: SendJob) {
        if let Some((p, code)) = self.faults.cms_rate
            && self.rng.chance(p)
        {
            self.event(now, format!("fault: send fails with +CMS ERROR: {code}"));
            self.final_result(Some(AtError::Cms(code)));
            return self.flush_resp(now);
        }
        if !self.registered() {
            self.final_result(Some(AtError::Cms(super::error::CMS_NO_NETWORK)));
            return self.flush_resp(now);
        }
        self.mr = self.mr.wrapping_add(1);
        let mr = self.mr;
        self.net.submit(now, &job.submit, mr);
        self.take_net_notes(now);
        self.sent.push(SentSms {
            submit: job.submit,
            smsc: job.smsc,
            pdu_hex: job.hex,
            mr,
            at: now,
        });
        self.info(&[format!("+CMGS: {mr}")]);
        self.final_result(None);
        self.flush_resp(now);
    }

    /// Whether a [`SimQuirk`] is on.
    pub(super) fn quirk(&self, q: SimQuirk) -> bool {
        self.cfg.quirks.contains(&q)
    }

    /// The storage index of slot 0 (`+CMTI: "SM",0` or `,1`).
    pub(super) fn index_base(&self) -> usize {
        if self.quirk(SimQuirk::SlotsFromOne) {
            1
        } else {
            self.profile.index_base
        }
    }

    /// Settings at power-up, after a reboot or `ATZ`.
    pub(super) fn fresh_settings(&self) -> Settings {
        let mut s = Settings::new(self.profile);
        if self.quirk(SimQuirk::ReceiveMeOnly) {
            s.mems[2] = Mem::Me;
        }
        s
    }

    /// The start-up banners that come around the next answers.
    pub(super) fn queue_banners(&mut self) {
        if self.quirk(SimQuirk::BannersAroundAnswers) {
            let cpin = format!("+CPIN: {}", self.cpin_text());
            self.banners = ["Call Ready".to_string(), cpin, "SMS Ready".to_string()].into();
        }
    }

    /// One pending banner as a line of the response being built.
    fn banner(&mut self) {
        if let Some(b) = self.banners.pop_front() {
            self.info(&[b]);
        }
    }

    fn store_unread_on_sim(&mut self, now: Instant) {
        let scts = self.clock.timestamp(now);
        for (from, text) in self.cfg.unread_on_sim.clone() {
            let parts = match self.net.mo_parts(&from, &text, scts) {
                Ok(p) => p,
                Err(e) => {
                    self.event(now, format!("unread message not stored: {e}"));
                    continue;
                }
            };
            for d in parts {
                let pdu = crate::pdu::Pdu {
                    smsc: self.smsc_address(),
                    tpdu: crate::pdu::Tpdu::Deliver(d),
                };
                let stored =
                    Slot::new(REC_UNREAD, pdu).and_then(|slot| self.store.store(Mem::Sm, slot));
                match stored {
                    Some(i) => self.note(
                        now,
                        format!(
                            "unread SMS from {from} waiting in SM at {}",
                            i + self.index_base()
                        ),
                    ),
                    None => self.event(now, "SM full: unread message not stored".into()),
                }
            }
        }
    }

    /// Starts a send: busy until the send delay is over.
    pub(super) fn start_send(&mut self, now: Instant, job: SendJob) {
        let until = after(now, self.cfg.send_delay);
        if until <= now {
            self.finish_send(now, job);
        } else {
            self.state = State::Busy {
                until,
                job: Box::new(job),
            };
        }
    }
}
