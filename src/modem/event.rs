//! What a session reports to its caller, and the receipts that tie a received PDU
//! to its deletion or acknowledgement.

use super::error::SubmitError;
use super::info::ModemInfo;

/// Identifies a send job; chosen by the caller (an outbox part id).
pub type JobId = u64;

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
