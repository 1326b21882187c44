//! One modem's AT conversation as a state machine: framing, the command queue,
//! unsolicited result codes, start-up and capability probing, sending in PDU mode,
//! receiving, health. No port, no clock: bytes and time in, bytes, events and
//! deadlines out (DESIGN.md rule 1).
//!
//! Call order, like quinn's `Connection`: feed [`Session::handle_input`] with what
//! the port produced and [`Session::handle_timeout`] when [`Session::poll_timeout`]
//! passes; then drain [`Session::poll_transmit`] to the port and
//! [`Session::poll_event`] to the caller; repeat.
//!
//! ```text
//!            start-up ops            ready                 health / work
//!  new ──▶ AT, ATE0, CMEE, identity ──▶ Ready ──▶ queue: acks > reads/deletes > sends > health
//!            PIN, CMGF=0, probes, CNMI        │
//!            (any timeout ──▶ Probe AT ──▶ timeout ──▶ Reopen)  RDY ──▶ start-up again
//! ```
//!
//! Routing survives what switches it off (issue 12): every start-up (open,
//! reopen, `RDY`) sets `AT+CSMS`/`AT+CNMI` again, refuses with `AT+CNMA=2` a
//! routed message an earlier session left unacknowledged, and sweeps every
//! memory (SM, ME, SR). Later, `AT+CNMI?` in each health round, a late
//! `AT+CNMA` answered `+CMS ERROR: 340`, and `AT+CPMS?` counts above what was
//! handed up each set routing again and/or sweep at once.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::error::{CmeError, CmsError, FinalError, SubmitError};
pub use super::event::{Event, JobId, Receipt};
use super::framer::{AtFramer, Frame};
pub use super::info::{ModemInfo, RegState};
use super::parse::{self, Item};
use super::quirks::{self, Quirks};
use crate::pdu;

/// How the session is configured.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// SIM PIN to enter when the SIM asks for one. Never retried if rejected.
    pub pin: Option<String>,
    /// Service centre to set with `AT+CSCA` (otherwise the SIM's is used).
    pub smsc: Option<String>,
    /// Ask for status reports to be routed or stored at all.
    pub status_reports: bool,
    /// Timeout of ordinary commands.
    pub command_timeout: Duration,
    /// How long to wait for the `> ` prompt after `AT+CMGS`.
    pub prompt_timeout: Duration,
    /// How long to wait for `+CMGS` after the PDU left (then: outcome unknown).
    pub submit_timeout: Duration,
    /// Signal and registration refresh.
    pub health_interval: Duration,
    /// Sweep of stored messages (`AT+CMGL=4`) that catches what no URC announced.
    pub sweep_interval: Duration,
    /// Re-assertion of `AT+CNMI` (a missed `AT+CNMA` silently resets it).
    pub cnmi_refresh_interval: Duration,
    /// A PIN was rejected before (by an earlier session on this modem): do not try
    /// it again, a PUK lock would brick the SIM.
    pub pin_rejected: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            pin: None,
            smsc: None,
            status_reports: true,
            command_timeout: Duration::from_secs(10),
            prompt_timeout: Duration::from_secs(5),
            submit_timeout: Duration::from_secs(60),
            health_interval: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(300),
            cnmi_refresh_interval: Duration::from_secs(600),
            pin_rejected: false,
        }
    }
}

/// Operations the session performs; most are one AT command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Probe,
    Raw(&'static str),
    Identity(IdentityField),
    PinQuery,
    PinEnter,
    PduMode,
    CsmsTest,
    CsmsSet,
    CpmsTest,
    CpmsSet,
    CnmiTest,
    CnmiSet,
    CscaQuery,
    CscaSet,
    Reg(RegDomain),
    Csq,
    Cops,
    CpmsQuery,
    SelectMem(String),
    Read {
        mem: String,
        index: u32,
    },
    Delete {
        mem: String,
        index: u32,
    },
    List {
        mem: String,
    },
    Ack,
    /// `AT+CNMA=2`: RP-ERROR for a routed message we could not store (the network
    /// keeps it and offers it again), or, at start-up, for one a previous session
    /// left unacknowledged. Unacknowledged, the TA would switch routing off.
    Nack,
    /// `AT+CNMI?`: is routing still what we set? A missed `AT+CNMA` makes the TA
    /// set `<mt>` and `<ds>` to 0 without a word (TS 27.005 §3.4.4).
    CnmiQuery,
    Submit {
        job: JobId,
        pdu: Vec<u8>,
        tpdu_len: usize,
    },
    // Markers: no command; reaching them in the queue does something.
    InitDone,
    HealthDone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdentityField {
    Manufacturer,
    Model,
    Revision,
    Imei,
    Imsi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegDomain {
    Cs,
    Ps,
    Eps,
}

impl RegDomain {
    fn prefix(self) -> &'static str {
        match self {
            Self::Cs => "+CREG:",
            Self::Ps => "+CGREG:",
            Self::Eps => "+CEREG:",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Final,
    Prompt,
    SubmitResult,
}

#[derive(Debug)]
struct InFlight {
    op: Op,
    command: String,
    lines: Vec<String>,
    awaiting: Awaiting,
    deadline: Instant,
    /// For `AT+CPIN?`: modems that never send OK after `+CPIN:` (Wavecom).
    grace: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TwoLine {
    Cmt,
    Cds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    Dead,
}

/// Capabilities learned from the test commands.
#[derive(Debug, Default)]
struct Caps {
    csms: Option<Vec<Item>>,
    cpms: Option<Vec<Vec<Item>>>,
    cnmi: Option<Vec<Vec<Item>>>,
    cnmi_candidates: Vec<String>,
    cnmi_tried: usize,
}

const ESC: u8 = 0x1b;
const CTRL_Z: u8 = 0x1a;
/// How often `AT+CPIN?` is asked again while the SIM initialises.
const SIM_WAIT: Duration = Duration::from_secs(2);
const SIM_WAIT_TRIES: u32 = 30;
/// Grace for a `+CPIN:` answer without final result.
const CPIN_GRACE: Duration = Duration::from_millis(500);
/// How long the line must be quiet after a timeout before the next command.
const RESYNC_QUIET: Duration = Duration::from_secs(1);
/// How long the line must be quiet after the opening ESC. A modem answers ESC
/// at once if at all, and any answer makes the wait a full [`RESYNC_QUIET`];
/// a modem with nothing open answers nothing, and start-up is not held up
/// for long.
const OPENING_QUIET: Duration = Duration::from_millis(200);

/// One modem's AT conversation.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    quirks: &'static Quirks,
    framer: AtFramer,
    rx: BytesMut,
    tx: Vec<u8>,
    events: VecDeque<Event>,
    phase: Phase,
    urgent: VecDeque<Op>,
    queue: VecDeque<Op>,
    jobs: VecDeque<Op>,
    in_flight: Option<InFlight>,
    not_before: Option<Instant>,
    two_line: Option<TwoLine>,
    info: ModemInfo,
    caps: Caps,
    read_mem: Option<String>,
    /// Receipts handed out and not yet deleted: never read or delete them twice.
    outstanding: HashSet<(String, u32)>,
    sim_waits: u32,
    health_at: Option<Instant>,
    sweep_at: Option<Instant>,
    cnmi_at: Option<Instant>,
    ever_ready: bool,
    /// Set after a timeout: lines until then are late answers, not ours.
    resync_until: Option<Instant>,
    /// Until then a late `> ` (after a prompt timeout) is recognised and cancelled.
    late_prompt_until: Option<Instant>,
}

impl Session {
    /// A session for a freshly opened port. Its first byte is ESC: a `> ` prompt
    /// may still be open on the modem, left by a process that was killed between
    /// `AT+CMGS` and the PDU (nothing on this side can know), and every command
    /// would be typed into it. ESC ends such a prompt (the modem answers `OK`,
    /// `ERROR` or `+CMS ERROR`) and is ignored otherwise; the line then settles
    /// and whatever it answered is dropped before the start-up's first `AT`.
    pub fn new(cfg: SessionConfig, now: Instant) -> Self {
        let mut s = Self {
            cfg,
            quirks: &quirks::GENERIC,
            framer: AtFramer::default(),
            rx: BytesMut::with_capacity(1024),
            tx: Vec::new(),
            events: VecDeque::new(),
            phase: Phase::Starting,
            urgent: VecDeque::new(),
            queue: VecDeque::new(),
            jobs: VecDeque::new(),
            in_flight: None,
            not_before: None,
            two_line: None,
            info: ModemInfo {
                quirks: quirks::GENERIC.name,
                ..ModemInfo::default()
            },
            caps: Caps::default(),
            read_mem: None,
            outstanding: HashSet::new(),
            sim_waits: 0,
            health_at: None,
            sweep_at: None,
            cnmi_at: None,
            ever_ready: false,
            resync_until: None,
            late_prompt_until: None,
        };
        s.start_up();
        tracing::debug!("-> modem ESC (a > prompt an earlier process left open ends here)");
        s.tx.push(ESC);
        s.resync_until = Some(now + OPENING_QUIET);
        s.not_before = s.resync_until;
        s.pump(now);
        s
    }

    // ---- getters ----

    /// What is known about the modem so far.
    pub fn info(&self) -> &ModemInfo {
        &self.info
    }

    /// Whether start-up ever finished in this session.
    pub fn was_ready(&self) -> bool {
        self.ever_ready
    }

    /// Start-up finished and the session is alive.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Ready, registered, and no send in progress or queued: a good time to submit.
    pub fn can_send(&self) -> bool {
        self.is_ready()
            && self.info.registered()
            && self.jobs.is_empty()
            && !matches!(
                self.in_flight,
                Some(InFlight {
                    op: Op::Submit { .. },
                    ..
                })
            )
    }

    /// An exchange is in progress or work is queued that must not be cut off.
    pub fn is_busy(&self) -> bool {
        self.phase != Phase::Dead
            && (self.in_flight.is_some() || !self.jobs.is_empty() || !self.urgent.is_empty())
    }

    /// Whether a rejected PIN was seen (carry it into the next session).
    pub fn pin_rejected(&self) -> bool {
        self.cfg.pin_rejected
    }

    // ---- commands from the caller ----

    /// Queues one SMS-SUBMIT TPDU (without SMSC field) for sending; `smsc` is put
    /// in front of it (`None`: `00`, the SIM's service centre).
    pub fn submit(&mut self, now: Instant, job: JobId, tpdu: &[u8], smsc: Option<&pdu::Address>) {
        if self.phase == Phase::Dead {
            self.events.push_back(Event::SubmitFailed {
                job,
                error: SubmitError::NotReady("modem unusable".into()),
            });
            return;
        }
        let mut pdu = Vec::with_capacity(tpdu.len() + 12);
        let smsc_ok = match smsc {
            Some(a) => a.encode_smsc(&mut pdu).is_ok(),
            None => {
                pdu.push(0);
                true
            }
        };
        if !smsc_ok || tpdu.is_empty() || tpdu.len() > 175 {
            self.events.push_back(Event::SubmitFailed {
                job,
                error: SubmitError::InvalidPdu(format!("{} octets", tpdu.len())),
            });
            return;
        }
        pdu.extend_from_slice(tpdu);
        self.jobs.push_back(Op::Submit {
            job,
            pdu,
            tpdu_len: tpdu.len(),
        });
        self.pump(now);
    }

    /// The port is gone: reports what was in flight or queued (an unfinished send
    /// is "outcome unknown" if its PDU left, else "not sent") and stops.
    pub fn abort(&mut self, why: &str) {
        if self.phase == Phase::Dead && self.in_flight.is_none() && self.jobs.is_empty() {
            return;
        }
        if let Some(f) = self.in_flight.take() {
            self.abandon(f.op, f.awaiting, why);
        }
        for op in std::mem::take(&mut self.jobs) {
            self.abandon(op, Awaiting::Prompt, why);
        }
        self.phase = Phase::Dead;
    }

    /// Switches the radio off and on (`AT+CFUN=0`, `AT+CFUN=1`), then refreshes
    /// registration: the first remedy for a modem that stays unregistered or whose
    /// SIM misbehaves, before a full reset. The USB port stays up.
    pub fn radio_cycle(&mut self, now: Instant) {
        if self.phase != Phase::Ready {
            return;
        }
        tracing::warn!("cycling the radio (AT+CFUN=0, AT+CFUN=1)");
        self.queue.push_back(Op::Raw("AT+CFUN=0"));
        self.queue.push_back(Op::Raw("AT+CFUN=1"));
        // Some firmware resets SMS routing with the radio: set it again (a no-op
        // where it did not), then see what arrived meanwhile.
        self.queue.push_back(Op::CnmiSet);
        self.queue_health();
        self.queue_sweep();
        self.pump(now);
    }

    /// The reset command for this model (`AT+CFUN=1,1` for most), if it has one.
    pub fn reset_command(&self) -> Option<&'static str> {
        self.quirks.reset
    }

    /// The PDU of `receipt` is stored durably: delete it from the modem or
    /// acknowledge it. Call exactly once per [`Event::Received`].
    pub fn confirm(&mut self, now: Instant, receipt: Receipt) {
        match receipt {
            Receipt::Stored { mem, index } => {
                let delete = Op::Delete { mem, index };
                if !self.queue.contains(&delete) {
                    self.queue.push_back(delete);
                }
            }
            Receipt::Routed => self.urgent.push_back(Op::Ack),
            Receipt::Unacknowledged => {}
        }
        self.pump(now);
    }

    /// The PDU of `receipt` could not be stored: leave it on the modem and let the
    /// next sweep hand it up again.
    /// A routed one is refused with `AT+CNMA=2` (RP-ERROR): the network keeps it
    /// and offers it again, and the TA keeps routing on; left unacknowledged, the
    /// TA would switch routing off (TS 27.005 §3.4.4).
    pub fn release(&mut self, now: Instant, receipt: &Receipt) {
        match receipt {
            Receipt::Stored { mem, index } => {
                self.outstanding.remove(&(mem.clone(), *index));
            }
            Receipt::Routed => {
                self.urgent.push_back(Op::Nack);
                self.pump(now);
            }
            Receipt::Unacknowledged => {}
        }
    }

    // ---- handlers ----

    /// Bytes read from the port.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.rx.extend_from_slice(bytes);
        loop {
            self.framer.expect_prompt = self.expects_prompt();
            match self.framer.decode(&mut self.rx) {
                Ok(Some(Frame::Line(line))) => self.handle_line(now, line),
                Ok(Some(Frame::Prompt)) => self.handle_prompt(now),
                Ok(Some(Frame::Overlong)) => {
                    tracing::warn!("dropped an overlong line from the modem")
                }
                Ok(None) | Err(_) => break,
            }
        }
        self.pump(now);
    }

    /// The clock passed [`Self::poll_timeout`]. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        let grace_due = self
            .in_flight
            .as_ref()
            .and_then(|f| f.grace)
            .is_some_and(|g| g <= now);
        if grace_due {
            self.finish(now, Ok(()));
        } else if self.in_flight.as_ref().is_some_and(|f| f.deadline <= now) {
            self.timed_out(now);
        }
        if self.phase == Phase::Ready {
            if self.health_at.is_some_and(|t| t <= now) {
                self.health_at = Some(now + self.cfg.health_interval);
                self.queue_health();
            }
            if self.sweep_at.is_some_and(|t| t <= now) {
                self.sweep_at = Some(now + self.cfg.sweep_interval);
                self.queue_sweep();
            }
            if self.cnmi_at.is_some_and(|t| t <= now) {
                self.cnmi_at = Some(now + self.cfg.cnmi_refresh_interval);
                if self.info.cnmi.is_some() {
                    self.queue.push_back(Op::CnmiSet);
                }
            }
            if self.late_prompt_until.is_some_and(|t| t <= now) {
                self.late_prompt_until = None;
            }
        }
        self.pump(now);
    }

    // ---- polls ----

    /// Bytes to write to the port; `false` when there are none.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.tx.is_empty() {
            return false;
        }
        buf.append(&mut self.tx);
        true
    }

    /// The next deadline; `None` when nothing is timed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Dead {
            return None;
        }
        let f = self.in_flight.as_ref();
        [
            f.map(|f| f.deadline),
            f.and_then(|f| f.grace),
            if f.is_none() { self.not_before } else { None },
            self.health_at,
            self.sweep_at,
            self.cnmi_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event for the caller.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- internals ----

    fn start_up(&mut self) {
        use IdentityField::*;
        self.phase = Phase::Starting;
        self.queue.clear();
        self.urgent.clear();
        self.caps = Caps::default();
        self.read_mem = None;
        self.outstanding.clear();
        self.sim_waits = 0;
        self.health_at = None;
        self.sweep_at = None;
        self.cnmi_at = None;
        self.info = ModemInfo {
            quirks: self.quirks.name,
            ..ModemInfo::default()
        };
        self.queue.extend([
            Op::Probe,
            Op::Raw("ATE0"),
            Op::Raw("AT+CMEE=1"),
            Op::Identity(Manufacturer),
            Op::Identity(Model),
            Op::Identity(Revision),
            Op::Identity(Imei),
            Op::PinQuery,
            Op::Identity(Imsi),
            Op::PduMode,
            Op::CsmsTest,
            Op::CpmsTest,
            Op::CnmiTest,
            Op::CsmsSet,
            Op::CpmsSet,
            Op::CnmiSet,
            Op::Nack,
            Op::CscaSet,
            Op::CscaQuery,
            Op::Reg(RegDomain::Cs),
            Op::Reg(RegDomain::Ps),
            Op::Reg(RegDomain::Eps),
            Op::Csq,
            Op::Cops,
            Op::CpmsQuery,
            Op::InitDone,
        ]);
    }

    fn queue_health(&mut self) {
        self.queue.extend([
            Op::Csq,
            Op::Reg(RegDomain::Cs),
            Op::Reg(RegDomain::Ps),
            Op::Reg(RegDomain::Eps),
            Op::Cops,
            Op::CnmiQuery,
            Op::CpmsQuery,
            Op::HealthDone,
        ]);
    }

    /// Lists every memory that can hold messages or reports, not only the one
    /// new messages go to: messages wait in the other one (SIM vs phone) after a
    /// change of `AT+CPMS` or on modems that store class 2 on the SIM, and a
    /// routed report the TA gave up on is stored in "SR" without a word. The
    /// receive memory comes last, so it is selected again afterwards. Memories
    /// the selection shows empty are not listed.
    pub(super) fn queue_sweep(&mut self) {
        let Some(receive) = self.receive_mem() else {
            return;
        };
        let queued = |q: &VecDeque<Op>, m: &str| {
            q.iter()
                .any(|op| matches!(op, Op::List { mem } if mem == m))
        };
        let mut others: Vec<String> = ["SM", "ME", "SR"]
            .into_iter()
            .filter(|m| *m != receive && self.mem_supported(0, m))
            .filter(|m| *m != "SR" || !self.quirks.stored_reports_unreadable)
            .map(str::to_owned)
            .collect();
        others.push(receive);
        for mem in others {
            if !queued(&self.queue, &mem) {
                self.queue.push_back(Op::List { mem });
            }
        }
    }

    /// A sweep is queued or running.
    fn sweeping(&self) -> bool {
        self.queue.iter().any(|op| matches!(op, Op::List { .. }))
            || self
                .in_flight
                .as_ref()
                .is_some_and(|f| matches!(f.op, Op::List { .. }))
    }

    fn receive_mem(&self) -> Option<String> {
        self.info
            .storage
            .get(2)
            .map(|(m, _, _)| m.clone())
            .or_else(|| self.chosen_mem())
    }

    /// Whether a `> ` without line end is to be taken as a prompt now: while
    /// `AT+CMGS` waits for one, after `AT+CNMA` (SIM800 prompts; a model we did
    /// not recognise may too), and for a while after a prompt timed out (a late
    /// one must be cancelled, not left open).
    fn expects_prompt(&self) -> bool {
        let late = self.late_prompt_until.is_some();
        match &self.in_flight {
            Some(f) => late || f.awaiting == Awaiting::Prompt || matches!(f.op, Op::Ack | Op::Nack),
            None => late,
        }
    }

    /// Starts the next operation if the line is free.
    fn pump(&mut self, now: Instant) {
        while self.in_flight.is_none() && self.phase != Phase::Dead {
            if self.not_before.is_some_and(|t| t > now) {
                return;
            }
            self.not_before = None;
            let op = if let Some(op) = self.urgent.pop_front() {
                op
            } else if let Some(op) = self.queue.pop_front() {
                op
            } else if self.phase == Phase::Ready {
                match self.jobs.pop_front() {
                    Some(op) => op,
                    None => return,
                }
            } else {
                return;
            };
            self.start(now, op);
        }
    }

    fn start(&mut self, now: Instant, op: Op) {
        let command = match self.command_for(&op) {
            Some(c) => c,
            None => {
                self.run_marker(now, op);
                return;
            }
        };
        // Reading or deleting needs the right memory selected first.
        if let Op::Read { mem, .. } | Op::Delete { mem, .. } | Op::List { mem } = &op
            && self.read_mem.as_deref() != Some(mem.as_str())
        {
            {
                let select = Op::SelectMem(mem.clone());
                self.queue.push_front(op);
                self.start(now, select);
                return;
            }
        }
        let (awaiting, timeout) = match op {
            Op::Submit { .. } => (Awaiting::Prompt, self.cfg.prompt_timeout),
            Op::List { .. } => (Awaiting::Final, self.cfg.command_timeout * 3),
            _ => (Awaiting::Final, self.cfg.command_timeout),
        };
        tracing::debug!(command = %command, "-> modem");
        self.tx.extend_from_slice(command.as_bytes());
        self.tx.push(b'\r');
        self.in_flight = Some(InFlight {
            op,
            command,
            lines: Vec::new(),
            awaiting,
            deadline: now + timeout,
            grace: None,
        });
    }

    /// The command text of an op, or `None` for markers and ops with nothing to do.
    fn command_for(&self, op: &Op) -> Option<String> {
        use IdentityField::*;
        Some(match op {
            Op::Probe => "AT".into(),
            Op::Raw(c) => (*c).into(),
            Op::Identity(Manufacturer) => "AT+CGMI".into(),
            Op::Identity(Model) => "AT+CGMM".into(),
            Op::Identity(Revision) => "AT+CGMR".into(),
            Op::Identity(Imei) => "AT+CGSN".into(),
            Op::Identity(Imsi) => "AT+CIMI".into(),
            Op::PinQuery => "AT+CPIN?".into(),
            Op::PinEnter => format!("AT+CPIN=\"{}\"", self.cfg.pin.as_deref()?),
            Op::PduMode => "AT+CMGF=0".into(),
            Op::CsmsTest => "AT+CSMS=?".into(),
            Op::CsmsSet => {
                // Phase 2+ only where it is offered and reports are routed.
                let offers = self.caps.csms.as_ref().is_some_and(|g| parse::allows(g, 1));
                if !offers || !self.cfg.status_reports {
                    return None;
                }
                "AT+CSMS=1".into()
            }
            Op::CpmsTest => "AT+CPMS=?".into(),
            Op::CpmsSet => {
                let m = self.chosen_mem()?;
                format!("AT+CPMS=\"{m}\",\"{m}\",\"{m}\"")
            }
            Op::CnmiTest => "AT+CNMI=?".into(),
            Op::CnmiSet => {
                let c = self
                    .info
                    .cnmi
                    .clone()
                    .or_else(|| self.caps.cnmi_candidates.get(self.caps.cnmi_tried).cloned())
                    .or_else(|| self.cnmi_candidates().first().cloned())?;
                format!("AT+CNMI={c}")
            }
            Op::CscaQuery => "AT+CSCA?".into(),
            Op::CscaSet => format!("AT+CSCA=\"{}\"", self.cfg.smsc.as_deref()?),
            Op::Reg(d) => format!("AT{}?", d.prefix().trim_end_matches(':')),
            Op::Csq => "AT+CSQ".into(),
            Op::Cops => "AT+COPS?".into(),
            Op::CpmsQuery => "AT+CPMS?".into(),
            Op::SelectMem(m) => format!("AT+CPMS=\"{m}\""),
            Op::Read { index, .. } => format!("AT+CMGR={index}"),
            Op::Delete { index, .. } => format!("AT+CMGD={index}"),
            Op::List { .. } => "AT+CMGL=4".into(),
            Op::Ack => "AT+CNMA".into(),
            Op::Nack => {
                if !self.info.phase2_plus {
                    return None;
                }
                "AT+CNMA=2".into()
            }
            Op::CnmiQuery => {
                self.info.cnmi.as_ref()?;
                "AT+CNMI?".into()
            }
            Op::Submit { tpdu_len, .. } => format!("AT+CMGS={tpdu_len}"),
            Op::InitDone | Op::HealthDone => return None,
        })
    }

    fn run_marker(&mut self, now: Instant, op: Op) {
        match op {
            Op::InitDone => {
                self.phase = Phase::Ready;
                self.ever_ready = true;
                self.health_at = Some(now + self.cfg.health_interval);
                self.cnmi_at = Some(now + self.cfg.cnmi_refresh_interval);
                // Polling when no CNMI was accepted: sweep often.
                let sweep = if self.info.cnmi.is_some() {
                    self.cfg.sweep_interval
                } else {
                    self.cfg.sweep_interval.min(Duration::from_secs(30))
                };
                self.sweep_at = Some(now + sweep);
                tracing::info!(
                    model = self.info.model.as_deref().unwrap_or("?"),
                    imsi = self.info.imsi.as_deref().unwrap_or("?"),
                    registered = self.info.registered(),
                    "modem ready: {}",
                    self.info.receive_mode()
                );
                self.events
                    .push_back(Event::Ready(Box::new(self.info.clone())));
                // Catch up on what arrived while nobody listened.
                self.queue_sweep();
            }
            Op::HealthDone => self
                .events
                .push_back(Event::Status(Box::new(self.info.clone()))),
            // Ops whose command is not needed (no PIN, no SMSC configured, …).
            _ => {}
        }
    }

    fn handle_prompt(&mut self, now: Instant) {
        if let Some(f) = self.in_flight.as_mut()
            && let (Op::Submit { pdu, .. }, Awaiting::Prompt) = (&f.op, f.awaiting)
        {
            let hex = pdu::to_hex(pdu);
            tracing::debug!(pdu = %hex, "-> modem (PDU)");
            self.tx.extend_from_slice(hex.as_bytes());
            self.tx.push(CTRL_Z);
            f.awaiting = Awaiting::SubmitResult;
            f.command = hex;
            f.deadline = now + self.cfg.submit_timeout;
            return;
        }
        // A prompt nobody answers: SIM800's after AT+CNMA (an optional PDU; none
        // is needed), or one that came after we gave up waiting. Left open, every
        // later command would be typed into it (chan_dongle BUGS: "only 0x1B can
        // help"); ESC closes it before anything else is written.
        tracing::debug!("cancelling a > prompt (ESC)");
        self.tx.push(ESC);
        self.late_prompt_until = None;
    }

    fn handle_line(&mut self, now: Instant, line: String) {
        tracing::trace!(line = %line, "<- modem");
        if let Some(kind) = self.two_line.take() {
            if parse::is_hex(&line) {
                self.routed_pdu(kind, &line);
                return;
            }
            tracing::warn!(line = %line, "expected the PDU line of a +CMT/+CDS");
        }
        // The echo of our own command (ATE0 may not have taken effect yet).
        if let Some(f) = &self.in_flight
            && f.lines.is_empty()
            && line.eq_ignore_ascii_case(&f.command)
        {
            return;
        }
        if let Some(result) = final_result(&line) {
            if self.in_flight.is_some() {
                self.finish(now, result);
            } else if self.resync_until.is_some_and(|until| now < until) {
                // A late final result (the answer to ESC, or to a command that
                // timed out): more of that answer may follow.
                tracing::debug!(line = %line, "late final result dropped while resynchronising");
                self.resync(now);
            }
            return;
        }
        let prefix = self.in_flight.as_ref().and_then(|f| response_prefix(&f.op));
        let is_response = prefix.is_some_and(|p| parse::after(&line, p).is_some());
        if !is_response && self.handle_urc(now, &line) {
            return;
        }
        if self.in_flight.is_none()
            && let Some(until) = self.resync_until
        {
            if now < until {
                tracing::debug!(line = %line, "late answer dropped while resynchronising");
                self.resync(now);
                return;
            }
            self.resync_until = None;
        }
        match self.in_flight.as_mut() {
            Some(f) => {
                if f.op == Op::PinQuery && parse::after(&line, "+CPIN:").is_some() {
                    f.grace = Some(now + CPIN_GRACE);
                }
                f.lines.push(line);
            }
            None => tracing::debug!(line = %line, "ignored line from the modem"),
        }
    }

    /// Handles an unsolicited result code; `false` if the line is not one.
    fn handle_urc(&mut self, now: Instant, line: &str) -> bool {
        if let Some((mem, index)) = parse::memory_index(line, "+CMTI:") {
            self.read_stored(mem, index);
        } else if let Some((mem, index)) = parse::memory_index(line, "+CDSI:") {
            if self.quirks.stored_reports_unreadable {
                tracing::warn!("{line}: this model cannot read stored reports; left for the sweep");
            } else {
                let mem = if self.quirks.reports_in_sr {
                    "SR".to_owned()
                } else {
                    mem
                };
                self.read_stored(mem, index);
            }
        } else if parse::after(line, "+CMT:").is_some() {
            self.two_line = Some(TwoLine::Cmt);
        } else if parse::after(line, "+CDS:").is_some() {
            self.two_line = Some(TwoLine::Cds);
        } else if line.eq_ignore_ascii_case("RDY") {
            self.rebooted(now);
        } else if let Some(stat) = parse::registration(line, "+CREG:", false) {
            self.info.creg = Some(stat);
        } else if let Some(stat) = parse::registration(line, "+CGREG:", false) {
            self.info.cgreg = Some(stat);
        } else if let Some(stat) = parse::registration(line, "+CEREG:", false) {
            self.info.cereg = Some(stat);
        } else if parse::after(line, "+CPIN:").is_some() {
            tracing::info!("{line}");
        } else if is_banner(line) {
            // Start-up banners come when the firmware is ready, whatever is being
            // answered at that moment (SIM800 "Call Ready" inside AT+CGMI's answer).
            tracing::info!("modem banner: {line}");
        } else if line.starts_with('^') || parse::after(line, "+QIND:").is_some() || line == "RING"
        {
            tracing::trace!("{line}");
        } else {
            return false;
        }
        true
    }

    fn read_stored(&mut self, mem: String, index: u32) {
        let key = (mem.clone(), index);
        let is_read =
            |op: &Op| matches!(op, Op::Read { mem: m, index: i } if *m == mem && *i == index);
        let queued = self.queue.iter().any(is_read)
            || self.in_flight.as_ref().is_some_and(|f| is_read(&f.op));
        if !queued && !self.outstanding.contains(&key) {
            self.queue.push_back(Op::Read { mem, index });
        }
    }

    fn routed_pdu(&mut self, kind: TwoLine, hex: &str) {
        let Ok(pdu) = pdu::from_hex(hex) else { return };
        let receipt = if self.info.phase2_plus {
            Receipt::Routed
        } else {
            Receipt::Unacknowledged
        };
        tracing::debug!(kind = ?kind, "routed PDU");
        self.events.push_back(Event::Received { receipt, pdu });
    }

    /// The modem restarted (`RDY`): what was in flight is lost; start again.
    fn rebooted(&mut self, now: Instant) {
        tracing::warn!("modem restarted (RDY); starting up again");
        if let Some(f) = self.in_flight.take() {
            self.abandon(f.op, f.awaiting, "modem restarted");
        }
        self.start_up();
        self.not_before = Some(now + Duration::from_secs(1));
    }

    /// Reports what becomes of an op that will never finish.
    fn abandon(&mut self, op: Op, awaiting: Awaiting, why: &str) {
        if let Op::Submit { job, .. } = op {
            let ev = if awaiting == Awaiting::SubmitResult {
                Event::OutcomeUnknown { job }
            } else {
                Event::SubmitFailed {
                    job,
                    error: SubmitError::NotReady(why.into()),
                }
            };
            self.events.push_back(ev);
        }
    }

    fn timed_out(&mut self, now: Instant) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        tracing::warn!(command = %f.command, "no answer from the modem");
        match (&f.op, f.awaiting) {
            (Op::Submit { job, .. }, Awaiting::Prompt) => {
                // Leave a stuck prompt (chan_dongle BUGS #13); the PDU never left.
                // A prompt that comes later still gets an ESC (handle_prompt).
                self.tx.push(ESC);
                self.late_prompt_until = Some(now + self.cfg.command_timeout);
                self.events.push_back(Event::SubmitFailed {
                    job: *job,
                    error: SubmitError::PromptTimeout(self.cfg.prompt_timeout),
                });
                self.urgent.push_front(Op::Probe);
            }
            (Op::Submit { job, .. }, _) => {
                self.events.push_back(Event::OutcomeUnknown { job: *job });
                self.urgent.push_front(Op::Probe);
            }
            (Op::Probe, _) => self.die(format!(
                "no answer to AT within {:?}",
                self.cfg.command_timeout
            )),
            (Op::PinQuery, _) if f.grace.is_some() => self.complete(now, f.op, f.lines, Ok(())),
            (Op::PinEnter, _) => {
                // A late "+CME ERROR: 16" would be lost: count it as rejected,
                // so no later session spends another attempt (PUK lock).
                self.cfg.pin_rejected = true;
                self.fatal("no answer to the SIM PIN; not trying it again (a PUK lock would brick the SIM)".into());
            }
            _ => self.urgent.push_front(Op::Probe),
        }
        if self.phase != Phase::Dead {
            self.resync(now);
        }
    }

    /// After a timeout a late answer may still come: it must not be taken for the
    /// answer to the next command (a late `+CMGR` would be stored under the next
    /// index, whose own message would then be deleted unread). Nothing is sent
    /// until the line has been quiet for a moment; what arrives meanwhile, other
    /// than unsolicited result codes, is dropped.
    fn resync(&mut self, now: Instant) {
        let until = now + RESYNC_QUIET;
        self.resync_until = Some(until);
        self.not_before = Some(self.not_before.map_or(until, |t| t.max(until)));
    }

    fn die(&mut self, why: String) {
        self.phase = Phase::Dead;
        for op in std::mem::take(&mut self.jobs) {
            self.abandon(op, Awaiting::Prompt, &why);
        }
        self.events.push_back(Event::Reopen(why));
    }

    fn fatal(&mut self, why: String) {
        tracing::error!("{why}");
        self.phase = Phase::Dead;
        for op in std::mem::take(&mut self.jobs) {
            self.abandon(op, Awaiting::Prompt, &why);
        }
        self.events.push_back(Event::Fatal(why));
    }

    fn finish(&mut self, now: Instant, result: Result<(), FinalError>) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        if let Err(e) = &result {
            tracing::debug!(command = %f.command, "modem answered {e}");
        }
        if let Op::Submit { job, .. } = f.op {
            let event = match (result, f.awaiting) {
                (Ok(()), Awaiting::SubmitResult) => {
                    match f.lines.iter().find_map(|l| parse::cmgs_mr(l)) {
                        Some(mr) => Event::Submitted { job, mr },
                        // OK without +CMGS: the network took it, MR unknown.
                        None => Event::OutcomeUnknown { job },
                    }
                }
                (Ok(()), _) => Event::SubmitFailed {
                    job,
                    error: SubmitError::Refused(FinalError::Error),
                },
                (Err(FinalError::Cms(e)), _) => Event::SubmitFailed {
                    job,
                    error: SubmitError::Cms(e),
                },
                (Err(e), _) => Event::SubmitFailed {
                    job,
                    error: SubmitError::Refused(e),
                },
            };
            self.events.push_back(event);
            return;
        }
        self.complete(now, f.op, f.lines, result);
    }
}

/// The response line prefix of an op, so its answer is not mistaken for a URC.
fn response_prefix(op: &Op) -> Option<&'static str> {
    Some(match op {
        Op::Reg(d) => d.prefix(),
        Op::PinQuery => "+CPIN:",
        Op::Read { .. } => "+CMGR:",
        Op::List { .. } => "+CMGL:",
        _ => return None,
    })
}

/// Lines modems print when their firmware, SIM or SMS service comes up, seen
/// around the answers of whatever command is running (SIM800, SIM7600, EC25,
/// Wavecom boot output; reference/sms.md §7).
fn is_banner(line: &str) -> bool {
    const PLAIN: [&str; 6] = [
        "Call Ready",
        "SMS Ready",
        "SMS DONE",
        "PB DONE",
        "+QIND: SMS DONE",
        "+QIND: PB DONE",
    ];
    const PREFIXES: [&str; 3] = ["+CFUN:", "+QUSIM:", "+WIND:"];
    PLAIN.iter().any(|b| line.eq_ignore_ascii_case(b))
        || PREFIXES.iter().any(|p| parse::after(line, p).is_some())
}

/// The final result code of a line, if it is one.
fn final_result(line: &str) -> Option<Result<(), FinalError>> {
    if line == "OK" {
        return Some(Ok(()));
    }
    if line == "ERROR"
        || line == "COMMAND NOT SUPPORT"
        || line == "TOO MANY PARAMETERS"
        || line == "NO CARRIER"
    {
        return Some(Err(FinalError::Error));
    }
    if let Some(rest) = parse::after(line, "+CMS ERROR:") {
        return Some(Err(FinalError::Cms(CmsError::parse(rest))));
    }
    parse::after(line, "+CME ERROR:").map(|rest| Err(FinalError::Cme(CmeError::parse(rest))))
}

mod answers;

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "session/tests/pair.rs"]
mod pair_tests;
