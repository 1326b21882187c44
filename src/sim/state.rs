//! The interpreter's state: settings that a reboot resets, the SIM, what is
//! typed at a prompt, the busy period, and pending indications and faults.

use std::time::{Duration, Instant};

use super::error::AtError;
use super::network::Mt;
use super::profile::Profile;
use super::storage::Mem;
use crate::pdu::{Address, Submit};

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
