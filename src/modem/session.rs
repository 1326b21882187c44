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

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::error::{CmeError, CmsError, FinalError, SubmitError};
use super::framer::{AtFramer, Frame};
use super::parse::{self, Item};
use super::quirks::{self, Quirks};
use crate::pdu;

/// Identifies a send job; chosen by the caller (an outbox part id).
pub type JobId = u64;

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

/// Registration of one domain (TS 27.007 `<stat>`), `None` when not asked or unknown.
pub type RegState = Option<u8>;

/// What the session knows about the modem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemInfo {
    /// `AT+CGMI`.
    pub manufacturer: Option<String>,
    /// `AT+CGMM`.
    pub model: Option<String>,
    /// `AT+CGMR`.
    pub revision: Option<String>,
    /// `AT+CGSN`.
    pub imei: Option<String>,
    /// `AT+CIMI`.
    pub imsi: Option<String>,
    /// `AT+CPIN?` answer, e.g. `READY`.
    pub sim: Option<String>,
    /// `AT+CREG?` (circuit switched).
    pub creg: RegState,
    /// `AT+CGREG?` (packet switched).
    pub cgreg: RegState,
    /// `AT+CEREG?` (EPS/LTE).
    pub cereg: RegState,
    /// `AT+COPS?` operator name.
    pub operator: Option<String>,
    /// `AT+CSQ` in dBm.
    pub signal_dbm: Option<i32>,
    /// `AT+CSCA?`.
    pub smsc: Option<String>,
    /// `AT+CPMS?`: (memory, used, total) for read, write and receive memory.
    pub storage: Vec<(String, u32, u32)>,
    /// The `AT+CNMI` in force, e.g. `2,1,0,1,0`, or `None` when polling.
    pub cnmi: Option<String>,
    /// Whether `AT+CSMS=1` (phase 2+, acknowledgements with `AT+CNMA`) is on.
    pub phase2_plus: bool,
    /// The quirk profile chosen.
    pub quirks: &'static str,
}

impl ModemInfo {
    /// Registered (home, roaming, SMS-only or CSFB) in any of CS, PS or EPS.
    pub fn registered(&self) -> bool {
        [self.creg, self.cgreg, self.cereg]
            .into_iter()
            .flatten()
            .any(parse::is_registered)
    }

    /// How incoming messages and reports reach us, for humans.
    pub fn receive_mode(&self) -> String {
        let Some(cnmi) = &self.cnmi else {
            return "polling (AT+CMGL), no AT+CNMI accepted".into();
        };
        let f: Vec<&str> = cnmi.split(',').collect();
        let mt = match f.get(1).copied() {
            Some("1") => "stored, announced by +CMTI",
            Some("2") | Some("3") => "routed as +CMT",
            _ => "stored silently (swept)",
        };
        let ds = match f.get(3).copied() {
            Some("1") => "reports routed as +CDS",
            Some("2") => "reports stored, announced by +CDSI",
            _ => "no status reports",
        };
        format!("AT+CNMI={cnmi}: messages {mt}, {ds}")
    }
}

/// Where a received PDU came from, and what confirming it does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Receipt {
    /// Read from memory: confirming deletes it (`AT+CMGD`).
    Stored {
        /// The memory (`SM`, `ME`, `SR`, …).
        mem: String,
        /// The index in it.
        index: u32,
    },
    /// Routed (`+CMT`/`+CDS`) in phase 2+: confirming acknowledges it (`AT+CNMA`).
    Routed,
    /// Routed without acknowledgement: nothing to confirm.
    Unacknowledged,
}

/// What the session tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start-up finished; the modem can send and receive.
    Ready(Box<ModemInfo>),
    /// A health round finished (registration, signal, storage).
    Status(Box<ModemInfo>),
    /// `+CMGS: <mr>`: the network took the part.
    Submitted {
        /// The job.
        job: JobId,
        /// TP-MR the modem used (status reports carry it).
        mr: u8,
    },
    /// The part was not sent (or refused); [`SubmitError::class`] says what to do.
    SubmitFailed {
        /// The job.
        job: JobId,
        /// Why.
        error: SubmitError,
    },
    /// The PDU left but no final result came (DESIGN rule 4: never resend blindly).
    OutcomeUnknown {
        /// The job.
        job: JobId,
    },
    /// A PDU (SMSC field first) to store durably, then [`Session::confirm`].
    Received {
        /// What confirming does.
        receipt: Receipt,
        /// The PDU octets.
        pdu: Vec<u8>,
    },
    /// The modem cannot be used until someone acts (SIM PIN, PUK, no SIM).
    Fatal(String),
    /// The modem stopped answering: close and reopen the port.
    Reopen(String),
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
}

impl Session {
    /// A session for a freshly opened port; start-up begins at once.
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
        };
        s.start_up();
        s.pump(now);
        s
    }

    // ---- getters ----

    /// What is known about the modem so far.
    pub fn info(&self) -> &ModemInfo {
        &self.info
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

    /// The PDU of `receipt` is stored durably: delete it from the modem or
    /// acknowledge it. Call exactly once per [`Event::Received`].
    pub fn confirm(&mut self, now: Instant, receipt: Receipt) {
        match receipt {
            Receipt::Stored { mem, index } => self.queue.push_back(Op::Delete { mem, index }),
            Receipt::Routed => self.urgent.push_back(Op::Ack),
            Receipt::Unacknowledged => {}
        }
        self.pump(now);
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
            Op::CpmsQuery,
            Op::HealthDone,
        ]);
    }

    fn queue_sweep(&mut self) {
        let Some(mem) = self.receive_mem() else {
            return;
        };
        self.queue.push_back(Op::List { mem });
        let reports_stored = self
            .info
            .cnmi
            .as_deref()
            .is_some_and(|c| c.split(',').nth(3) == Some("2"));
        if reports_stored && !self.quirks.stored_reports_unreadable && self.mem_supported(0, "SR") {
            self.queue.push_back(Op::List { mem: "SR".into() });
        }
    }

    fn receive_mem(&self) -> Option<String> {
        self.info
            .storage
            .get(2)
            .map(|(m, _, _)| m.clone())
            .or_else(|| self.chosen_mem())
    }

    fn expects_prompt(&self) -> bool {
        match &self.in_flight {
            Some(f) => {
                f.awaiting == Awaiting::Prompt || (f.op == Op::Ack && self.quirks.cnma_prompt)
            }
            None => false,
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
        if let Op::Read { mem, .. } | Op::Delete { mem, .. } | Op::List { mem } = &op {
            if self.read_mem.as_deref() != Some(mem.as_str()) {
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
            Op::Submit { tpdu_len, .. } => format!("AT+CMGS={tpdu_len}"),
            Op::InitDone | Op::HealthDone => return None,
        })
    }

    fn run_marker(&mut self, now: Instant, op: Op) {
        match op {
            Op::InitDone => {
                self.phase = Phase::Ready;
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
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        match (&f.op, f.awaiting) {
            (Op::Submit { pdu, .. }, Awaiting::Prompt) => {
                let hex = pdu::to_hex(pdu);
                tracing::debug!(pdu = %hex, "-> modem (PDU)");
                self.tx.extend_from_slice(hex.as_bytes());
                self.tx.push(CTRL_Z);
                f.awaiting = Awaiting::SubmitResult;
                f.command = hex;
                f.deadline = now + self.cfg.submit_timeout;
            }
            (Op::Ack, _) => {
                // SIM800: AT+CNMA prompts for an optional PDU; none is needed.
                self.tx.push(ESC);
            }
            _ => {}
        }
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
        if let Some(f) = &self.in_flight {
            if f.lines.is_empty() && line.eq_ignore_ascii_case(&f.command) {
                return;
            }
        }
        if let Some(result) = final_result(&line) {
            if self.in_flight.is_some() {
                self.finish(now, result);
            }
            return;
        }
        let prefix = self.in_flight.as_ref().and_then(|f| response_prefix(&f.op));
        let is_response = prefix.is_some_and(|p| parse::after(&line, p).is_some());
        if !is_response && self.handle_urc(now, &line) {
            return;
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
        let queued = self
            .queue
            .iter()
            .any(|op| matches!(op, Op::Read { mem: m, index: i } if *m == mem && *i == index));
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
                self.tx.push(ESC);
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
            _ => self.urgent.push_front(Op::Probe),
        }
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

    /// Applies the answer of a finished op.
    fn complete(
        &mut self,
        now: Instant,
        op: Op,
        lines: Vec<String>,
        result: Result<(), FinalError>,
    ) {
        use IdentityField::*;
        let first = lines.first().map(String::as_str);
        match op {
            Op::Identity(field) => {
                let value = first.filter(|_| result.is_ok()).map(identity_value);
                match field {
                    Manufacturer => self.info.manufacturer = value,
                    Model => {
                        self.info.model = value;
                        self.quirks = quirks::for_model(
                            self.info.manufacturer.as_deref().unwrap_or(""),
                            self.info.model.as_deref().unwrap_or(""),
                        );
                        self.info.quirks = self.quirks.name;
                        for cmd in self.quirks.init.iter().rev() {
                            self.queue.push_front(Op::Raw(cmd));
                        }
                    }
                    Revision => self.info.revision = value,
                    Imei => self.info.imei = value,
                    Imsi => self.info.imsi = value,
                }
            }
            Op::PinQuery => self.pin_state(now, first, result),
            Op::PinEnter => match result {
                Ok(()) => {
                    tracing::info!("SIM PIN accepted");
                    self.queue.push_front(Op::PinQuery);
                    self.not_before = Some(now + SIM_WAIT);
                }
                Err(e) => {
                    self.cfg.pin_rejected = true;
                    self.fatal(format!(
                        "SIM PIN rejected ({e}); not retrying: another wrong PIN could lock the SIM (PUK)"
                    ));
                }
            },
            Op::PduMode => {
                if let Err(e) = result {
                    self.fatal(format!("the modem refuses PDU mode (AT+CMGF=0: {e})"));
                }
            }
            Op::CsmsTest => {
                self.caps.csms = lines
                    .iter()
                    .find_map(|l| parse::groups(l, "+CSMS:"))
                    .and_then(|g| g.into_iter().next());
            }
            Op::CsmsSet => self.info.phase2_plus = result.is_ok(),
            Op::CpmsTest => self.caps.cpms = lines.iter().find_map(|l| parse::groups(l, "+CPMS:")),
            Op::CnmiTest => {
                self.caps.cnmi = lines.iter().find_map(|l| parse::groups(l, "+CNMI:"));
                self.caps.cnmi_candidates = self.cnmi_candidates();
            }
            Op::CnmiSet => self.cnmi_result(result),
            Op::CpmsSet => {
                if result.is_ok() {
                    self.read_mem = self.chosen_mem();
                }
            }
            Op::SelectMem(m) => {
                if result.is_ok() {
                    self.read_mem = Some(m);
                } else {
                    // Without the memory, the read/delete that needed it cannot run.
                    tracing::warn!("memory {m} cannot be selected; skipping what needed it");
                    if matches!(
                        self.queue.front(),
                        Some(Op::Read { .. } | Op::Delete { .. } | Op::List { .. })
                    ) {
                        self.queue.pop_front();
                    }
                }
            }
            Op::CscaQuery => self.info.smsc = lines.iter().find_map(|l| parse::csca(l)),
            Op::Reg(d) => {
                let stat = lines
                    .iter()
                    .find_map(|l| parse::registration(l, d.prefix(), true));
                match d {
                    RegDomain::Cs => self.info.creg = stat,
                    RegDomain::Ps => self.info.cgreg = stat,
                    RegDomain::Eps => self.info.cereg = stat,
                }
            }
            Op::Csq => {
                if let Some(dbm) = lines.iter().find_map(|l| parse::csq_dbm(l)) {
                    self.info.signal_dbm = dbm;
                }
            }
            Op::Cops => self.info.operator = lines.iter().find_map(|l| parse::cops_operator(l)),
            Op::CpmsQuery => {
                if let Some(s) = lines.iter().find_map(|l| parse::cpms_query(l)) {
                    self.info.storage = s;
                }
            }
            Op::Read { mem, index } => self.read_result(mem, index, &lines, result),
            Op::List { mem } => self.list_result(&mem, &lines),
            Op::Delete { mem, index } => {
                self.outstanding.remove(&(mem, index));
                if let Err(e) = result {
                    tracing::warn!("AT+CMGD={index} failed: {e}");
                }
            }
            Op::Probe | Op::Raw(_) | Op::Ack | Op::CscaSet => {}
            Op::Submit { .. } | Op::InitDone | Op::HealthDone => {}
        }
    }

    fn pin_state(&mut self, now: Instant, first: Option<&str>, result: Result<(), FinalError>) {
        let state = first
            .and_then(|l| parse::after(l, "+CPIN:"))
            .map(str::to_owned);
        match (state.as_deref(), result) {
            (Some("READY"), _) => self.info.sim = Some("READY".into()),
            (Some("SIM PIN"), _) => {
                self.info.sim = Some("SIM PIN".into());
                match (&self.cfg.pin, self.cfg.pin_rejected) {
                    (Some(_), false) => self.queue.push_front(Op::PinEnter),
                    (Some(_), true) => self.fatal("SIM PIN required; the configured PIN was rejected before and is not tried again".into()),
                    (None, _) => self.fatal("SIM PIN required (set the modem's pin in the configuration)".into()),
                }
            }
            (Some(other), _) => {
                self.info.sim = Some(other.to_owned());
                self.fatal(format!("SIM not usable: {other}"));
            }
            (None, Err(FinalError::Cme(e))) if e.code == Some(10) => {
                self.fatal("SIM not inserted".into())
            }
            // SIM busy (CME 14) and the like: the SIM is still starting.
            (None, Err(e)) => {
                tracing::info!("SIM not ready yet ({e}); asking again");
                self.wait_for_sim(now);
            }
            (None, Ok(())) => self.wait_for_sim(now),
        }
    }

    fn wait_for_sim(&mut self, now: Instant) {
        self.sim_waits += 1;
        if self.sim_waits > SIM_WAIT_TRIES {
            self.fatal("SIM not ready after waiting".into());
            return;
        }
        self.queue.push_front(Op::PinQuery);
        self.not_before = Some(now + SIM_WAIT);
    }

    fn read_result(
        &mut self,
        mem: String,
        index: u32,
        lines: &[String],
        result: Result<(), FinalError>,
    ) {
        if let Err(e) = result {
            tracing::warn!("AT+CMGR={index} on {mem}: {e}");
            return;
        }
        let pdu = lines
            .iter()
            .position(|l| parse::cmgr_length(l).is_some())
            .and_then(|i| lines.get(i + 1))
            .and_then(|l| pdu::from_hex(l).ok());
        match pdu {
            Some(pdu) => self.emit_stored(mem, index, pdu),
            None => tracing::info!("{mem} index {index} is empty"),
        }
    }

    fn list_result(&mut self, mem: &str, lines: &[String]) {
        for (i, l) in lines.iter().enumerate() {
            let Some(index) = parse::cmgl_index(l) else {
                continue;
            };
            if self.outstanding.contains(&(mem.to_owned(), index)) {
                continue;
            }
            if let Some(pdu) = lines.get(i + 1).and_then(|h| pdu::from_hex(h).ok()) {
                self.emit_stored(mem.to_owned(), index, pdu);
            }
        }
    }

    fn emit_stored(&mut self, mem: String, index: u32, pdu: Vec<u8>) {
        self.outstanding.insert((mem.clone(), index));
        self.events.push_back(Event::Received {
            receipt: Receipt::Stored { mem, index },
            pdu,
        });
    }

    fn mem_supported(&self, which: usize, mem: &str) -> bool {
        self.caps
            .cpms
            .as_ref()
            .and_then(|g| g.get(which))
            .is_some_and(|g| parse::has_word(g, mem))
    }

    /// The memory used for reading and receiving: SM where offered, else ME, else MT.
    fn chosen_mem(&self) -> Option<String> {
        let cpms = self.caps.cpms.as_ref()?;
        ["SM", "ME", "MT"]
            .into_iter()
            .find(|m| cpms.iter().take(3).all(|g| parse::has_word(g, m)))
            .map(str::to_owned)
    }

    /// `AT+CNMI` settings to try, best first: store and announce messages (+CMTI,
    /// survives our crashes), route reports (+CDS) else store them (+CDSI), else
    /// none. Without an answer to `AT+CNMI=?`, ModemManager's fallback order.
    fn cnmi_candidates(&self) -> Vec<String> {
        let Some(g) = self.caps.cnmi.as_ref().filter(|g| g.len() >= 4) else {
            return ["2,1,0,1,0", "2,1,0,2,0", "2,1,0,0,0", "1,1,0,0,0"]
                .into_iter()
                .filter(|c| self.cfg.status_reports || c.ends_with(",0,0"))
                .map(str::to_owned)
                .collect();
        };
        let pick =
            |i: usize, prefs: &[u32]| prefs.iter().copied().find(|&v| parse::allows(&g[i], v));
        let (Some(mode), Some(mt)) = (pick(0, &[2, 1, 3]), pick(1, &[1, 2, 3])) else {
            return Vec::new();
        };
        let bfr = g
            .get(4)
            .and_then(|b| [0, 1].into_iter().find(|&v| parse::allows(b, v)))
            .unwrap_or(0);
        let bm = if parse::allows(&g[2], 0) {
            0
        } else {
            pick(2, &[0, 1, 2, 3]).unwrap_or(0)
        };
        let mut ds_order = Vec::new();
        if self.cfg.status_reports {
            ds_order.push(1);
            if !self.quirks.stored_reports_unreadable {
                ds_order.push(2);
            }
        }
        ds_order.push(0);
        ds_order
            .into_iter()
            .filter(|&ds| parse::allows(&g[3], ds))
            .map(|ds| format!("{mode},{mt},{bm},{ds},{bfr}"))
            .collect()
    }

    fn cnmi_result(&mut self, result: Result<(), FinalError>) {
        let tried = self
            .caps
            .cnmi_candidates
            .get(self.caps.cnmi_tried)
            .cloned()
            .or_else(|| self.cnmi_candidates().first().cloned());
        match result {
            Ok(()) => {
                if self.info.cnmi.is_none() {
                    self.info.cnmi = tried;
                }
            }
            Err(e) if self.info.cnmi.is_some() => {
                tracing::warn!("re-asserting AT+CNMI failed: {e}");
            }
            Err(e) => {
                self.caps.cnmi_tried += 1;
                if self.caps.cnmi_tried < self.caps.cnmi_candidates.len() {
                    tracing::info!(
                        "AT+CNMI={} refused ({e}); trying the next setting",
                        tried.unwrap_or_default()
                    );
                    self.queue.push_front(Op::CnmiSet);
                } else {
                    tracing::warn!(
                        "no AT+CNMI setting accepted; falling back to polling with AT+CMGL"
                    );
                }
            }
        }
    }
}

/// The value of an identity answer, without a `+CGMI: ` style prefix some modems add.
fn identity_value(line: &str) -> String {
    for p in [
        "+CGMI:",
        "+CGMM:",
        "+CGMR:",
        "+CGSN:",
        "+CIMI:",
        "Manufacturer:",
        "Model:",
        "Revision:",
        "IMEI:",
    ] {
        if let Some(v) = parse::after(line, p) {
            return v.trim_matches('"').to_owned();
        }
    }
    line.trim_matches('"').to_owned()
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

#[cfg(test)]
mod tests;
