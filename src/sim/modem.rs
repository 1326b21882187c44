//! The simulated modem's interpreter: bytes in, echo, command lines, responses,
//! the `> ` prompt, a busy period while a message is sent, reboots and hangs,
//! unsolicited result codes held back until the interpreter is idle, and one
//! timer table. Commands themselves are in `cmd_general.rs` and `cmd_sms.rs`,
//! message arrival in `delivery.rs`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::clock::Clock;
use super::config::{Fault, PartOrder, SimConfig};
use super::error::{AtError, SimError, cme_text, cms_text};
use super::line::{self, Command};
use super::log::{LogEntry, SimLog};
use super::network::{Mt, Network, number_text};
use super::profile::Profile;
use super::rng::Rng;
use super::storage::{Mem, Storage};
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

/// Settings a reboot or `ATZ` puts back to the profile's defaults.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) echo: bool,
    pub(super) verbose: bool,
    pub(super) quiet: bool,
    pub(super) cmee: u8,
    pub(super) cmgf: u8,
    pub(super) cscs: &'static str,
    pub(super) cnmi: [u8; 5],
    pub(super) csms: u8,
    /// `<n>` of CREG, CGREG, CEREG.
    pub(super) reg_n: [u8; 3],
    /// `<mem1>`, `<mem2>`, `<mem3>` of `AT+CPMS`.
    pub(super) mems: [Mem; 3],
    /// `<fo>`, `<vp>`, `<pid>`, `<dcs>` of `AT+CSMP`.
    pub(super) csmp: [u8; 4],
    /// Profile noise on (Huawei `^CURC`, Quectel `+QINDCFG="csq"`).
    pub(super) noise: bool,
    pub(super) s_regs: [u8; 13],
}

impl Settings {
    pub(super) fn new(p: &Profile) -> Self {
        Self {
            echo: true,
            verbose: true,
            quiet: false,
            cmee: p.cmee_default,
            cmgf: 0,
            cscs: "IRA",
            cnmi: [0; 5],
            csms: 0,
            reg_n: [0; 3],
            mems: [Mem::Sm; 3],
            csmp: [17, 167, 0, 0],
            noise: p.huawei || p.quectel,
            s_regs: [0, 0, 0, 13, 10, 8, 2, 50, 2, 6, 14, 95, 50],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SimState {
    Ready,
    NeedPin,
    NeedPuk,
    Blocked,
}

/// What is being typed at a `> ` prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EntryKind {
    SendPdu {
        len: usize,
    },
    SendText {
        da: Address,
    },
    WritePdu {
        len: usize,
        stat: u8,
    },
    WriteText {
        da: Option<Address>,
        stat: u8,
    },
    /// SIM800's `AT+CNMA` prompt.
    Cnma,
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) kind: EntryKind,
    pub(super) buf: String,
}

/// A submit waiting for the end of the send delay.
#[derive(Debug, Clone)]
pub(super) struct SendJob {
    pub(super) submit: Submit,
    pub(super) smsc: Option<Address>,
    pub(super) hex: String,
}

#[derive(Debug, Clone)]
pub(super) enum State {
    Idle,
    Entry(Entry),
    Busy { until: Instant, job: Box<SendJob> },
    Rebooting { until: Instant },
    Hung,
}

/// What one command of a line did.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Information lines (maybe none); go on with the next command.
    Info(Vec<String>),
    /// Open a `> ` prompt; the rest of the line is dropped.
    Prompt(EntryKind),
    /// A final error; the rest of the line is dropped.
    Fail(AtError),
    /// Information lines and no final result code (Wavecom `+CPIN?`).
    NoFinal(Vec<String>),
    /// `OK`, then reboot.
    Reboot,
}

/// An unsolicited result code waiting for the interpreter to be idle.
#[derive(Debug, Clone)]
pub(super) struct Urc {
    pub(super) text: String,
    /// A routed message that needs `AT+CNMA` once this is written.
    pub(super) ack: Option<Mt>,
}

#[derive(Debug, Clone)]
pub(super) struct AckWait {
    pub(super) deadline: Instant,
    pub(super) mt: Mt,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Faults {
    pub(super) cms_rate: Option<(f64, u16)>,
    pub(super) hang_after: Option<u32>,
    pub(super) reboot_after: Option<u32>,
    pub(super) vanish_after: Option<(u32, Duration)>,
}

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
    input: VecDeque<u8>,
    line: Vec<u8>,
    line_overflow: bool,
    last_line: Option<String>,
    /// The response being built for the current command line.
    pub(super) resp: String,
    out: Vec<u8>,
    pub(super) urcs: VecDeque<Urc>,
    /// Indications buffered in the TA while `AT+CNMI` `<mode>` is 0.
    pub(super) tabuf: VecDeque<Urc>,
    pub(super) ack: Option<AckWait>,
    log: VecDeque<SimLog>,
    pub(super) sent: Vec<SentSms>,
    pub(super) mr: u8,
    pub(super) faults: Faults,
    vanish: Option<Duration>,
    pub(super) noise_next: Option<Instant>,
    pub(super) noise_count: u32,
    pub(super) rng: Rng,
    pub(super) last_now: Instant,
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
            clock,
            profile,
            cfg: config,
        };
        m.sim = m.sim_at_power_up();
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
            State::Hung | State::Entry(_) => self.state = State::Idle,
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
            Fault::HangAfter(n) => self.faults.hang_after = Some(n),
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
        if let State::Busy { until, .. } = &self.state {
            if *until <= now {
                if let State::Busy { job, .. } = std::mem::replace(&mut self.state, State::Idle) {
                    self.finish_send(now, *job);
                }
            }
        }
        if let State::Rebooting { until } = self.state {
            if until <= now {
                self.boot_done(now);
            }
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
        for note in self.net.take_notes() {
            self.push_log(now, LogEntry::Network(note));
        }
    }

    /// Messages held at the network first (a slot may have freed, an
    /// acknowledgement come), then whatever fell due.
    fn network_due(&mut self, now: Instant) {
        self.retry_held(now);
        while let Some(mt) = self.net.next_due(now) {
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
        if let Some(n) = self.faults.hang_after {
            if n == 0 {
                self.faults.hang_after = None;
                self.state = State::Hung;
                self.input.clear();
                self.event(now, "hung: no more answers until the port is reset".into());
                return;
            }
            self.faults.hang_after = Some(n - 1);
        }
        let body = body.to_string();
        self.last_line = Some(text);
        if overflow {
            self.final_result(Some(AtError::Plain));
        } else {
            self.execute(now, &body);
        }
        self.flush_resp(now);
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
                        self.info(&lines);
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
        if let Some((p, code)) = self.faults.cms_rate {
            if self.rng.chance(p) {
                self.event(now, format!("fault: send fails with +CMS ERROR: {code}"));
                self.final_result(Some(AtError::Cms(code)));
                return self.flush_resp(now);
            }
        }
        if !self.registered() {
            self.final_result(Some(AtError::Cms(super::error::CMS_NO_NETWORK)));
            return self.flush_resp(now);
        }
        self.mr = self.mr.wrapping_add(1);
        let mr = self.mr;
        self.net.submit(now, &job.submit, mr);
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

    /// Starts a send: busy until the send delay is over.
    pub(super) fn start_send(&mut self, now: Instant, job: SendJob) {
        let until = now + self.cfg.send_delay;
        if until <= now {
            self.finish_send(now, job);
        } else {
            self.state = State::Busy {
                until,
                job: Box::new(job),
            };
        }
    }

    // ---- reboot and noise -----------------------------------------------------

    fn sim_at_power_up(&self) -> SimState {
        match self.sim {
            SimState::NeedPuk | SimState::Blocked => self.sim,
            _ if self.cfg.pin.is_some() => SimState::NeedPin,
            _ => SimState::Ready,
        }
    }

    pub(super) fn reboot(&mut self, now: Instant, why: &str) {
        self.event(now, format!("reboot ({why})"));
        if let Some(w) = self.ack.take() {
            self.net.hold(w.mt);
        }
        for u in self.urcs.drain(..).chain(self.tabuf.drain(..)) {
            if let Some(mt) = u.ack {
                self.net.hold(mt);
            }
        }
        self.state = State::Rebooting {
            until: now + self.cfg.reboot_delay,
        };
        self.input.clear();
        self.line.clear();
        self.resp.clear();
        self.set = Settings::new(self.profile);
        self.sim = self.sim_at_power_up();
        self.radio_on = true;
        self.noise_next = None;
    }

    fn boot_done(&mut self, now: Instant) {
        self.state = State::Idle;
        self.event(now, "boot complete".into());
        self.queue_urc("RDY".into(), None);
        let cpin = self.cpin_text();
        for l in self.profile.boot_lines {
            self.queue_urc(l.replace("{cpin}", cpin), None);
        }
        self.start_noise(now);
    }

    fn start_noise(&mut self, now: Instant) {
        if !(self.profile.huawei || self.profile.quectel) {
            return;
        }
        let every = self
            .cfg
            .noise_interval
            .unwrap_or(self.profile.noise_interval);
        self.noise_next = (!every.is_zero()).then(|| now + every);
    }

    fn noise_tick(&mut self, now: Instant) {
        self.noise_next = None;
        self.start_noise(now);
        if !self.set.noise || matches!(self.state, State::Hung | State::Rebooting { .. }) {
            return;
        }
        self.noise_count += 1;
        let rssi = self.rssi();
        let text = if self.profile.quectel {
            format!("+QIND: \"csq\",{rssi},99")
        } else {
            match self.noise_count % 3 {
                1 => format!("^RSSI:{rssi}"),
                2 => "^HCSQ:\"LTE\",60,52,106,24".to_string(),
                _ => "^MODE:7,17".to_string(),
            }
        };
        self.queue_urc(text, None);
    }

    /// Huawei: `^RSSI` between the information lines and the final result of
    /// every other response that has information lines.
    fn noise_inside_response(&mut self) {
        if self.profile.huawei && self.set.noise {
            self.noise_count += 1;
            if self.noise_count % 2 == 0 {
                let rssi = self.rssi();
                self.resp.push_str(&format!("\r\n^RSSI:{rssi}\r\n"));
            }
        }
    }

    // ---- output ---------------------------------------------------------------

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

    fn flush_urcs(&mut self, now: Instant) {
        if !matches!(self.state, State::Idle) || !self.line.is_empty() || !self.input.is_empty() {
            return;
        }
        while let Some(u) = self.urcs.pop_front() {
            let bytes = format!("\r\n{}\r\n", u.text);
            self.out.extend_from_slice(&latin1(&bytes));
            self.push_log(now, LogEntry::Urc(bytes));
            if let Some(mt) = u.ack {
                self.ack = Some(AckWait {
                    deadline: now + self.cfg.ack_timeout,
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

    // ---- state queries used by the commands -----------------------------------

    pub(super) fn cpin_text(&self) -> &'static str {
        match self.sim {
            SimState::Ready => "READY",
            SimState::NeedPin => "SIM PIN",
            SimState::NeedPuk => "SIM PUK",
            SimState::Blocked => "SIM PUK2",
        }
    }

    /// CREG, CGREG and CEREG stats now.
    pub(super) fn reg_stats(&self) -> [u8; 3] {
        if self.sim != SimState::Ready
            || !self.radio_on
            || matches!(self.state, State::Rebooting { .. })
        {
            return [0, 0, 0];
        }
        self.cfg.registration.stats()
    }

    pub(super) fn registered(&self) -> bool {
        self.reg_stats().iter().any(|s| *s == 1 || *s == 5)
    }

    pub(super) fn rssi(&self) -> u8 {
        if self.radio_on {
            self.cfg.rssi.min(31)
        } else {
            99
        }
    }
}

/// Our responses are ASCII but for text-mode message bodies; those go out as
/// Latin-1 like a modem's IRA/8859-1 character set would.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}
