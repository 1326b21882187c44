//! Errors: the `+CME ERROR`/`+CMS ERROR` codes the simulated modem answers with
//! (TS 27.007 §9.2, TS 27.005 §3.2.5), and [`SimError`] for callers of its API.

use crate::pdu::EncodeError;

/// A final error result of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AtError {
    /// Plain `ERROR` whatever `AT+CMEE` says (unknown command, bad syntax).
    Plain,
    /// `+CME ERROR: <n>`.
    Cme(u16),
    /// `+CMS ERROR: <n>`.
    Cms(u16),
}

pub(super) const CME_NOT_ALLOWED: u16 = 3;
pub(super) const CME_NOT_SUPPORTED: u16 = 4;
pub(super) const CME_SIM_PIN: u16 = 11;
pub(super) const CME_SIM_PUK: u16 = 12;
pub(super) const CME_SIM_FAILURE: u16 = 13;
pub(super) const CME_WRONG_PASSWORD: u16 = 16;
pub(super) const CME_BAD_PARAM: u16 = 50;

pub(super) const CMS_NOT_ALLOWED: u16 = 302;
pub(super) const CMS_NOT_SUPPORTED: u16 = 303;
pub(super) const CMS_INVALID_PDU: u16 = 304;
pub(super) const CMS_INVALID_TEXT: u16 = 305;
pub(super) const CMS_SIM_PIN: u16 = 311;
pub(super) const CMS_SIM_PUK: u16 = 316;
pub(super) const CMS_SIM_FAILURE: u16 = 313;
pub(super) const CMS_INVALID_INDEX: u16 = 321;
pub(super) const CMS_MEMORY_FULL: u16 = 322;
pub(super) const CMS_NO_NETWORK: u16 = 331;
pub(super) const CMS_NO_CNMA_EXPECTED: u16 = 340;
pub(super) const CMS_UD_OVERRUN: u16 = 513;

/// Verbose text for `AT+CMEE=2`.
pub(super) fn cme_text(code: u16) -> &'static str {
    match code {
        0 => "phone failure",
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        16 => "incorrect password",
        21 => "invalid index",
        30 => "no network service",
        50 => "incorrect parameters",
        _ => "unknown",
    }
}

/// Verbose text for `AT+CMEE=2`.
pub(super) fn cms_text(code: u16) -> &'static str {
    match code {
        1 => "unassigned number",
        8 => "operator determined barring",
        10 => "call barred",
        21 => "short message transfer rejected",
        27 => "destination out of service",
        28 => "unidentified subscriber",
        38 => "network out of order",
        41 => "temporary failure",
        42 => "congestion",
        47 => "resources unavailable",
        50 => "requested facility not subscribed",
        300 => "ME failure",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        313 => "SIM failure",
        316 => "SIM PUK required",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        500 => "unknown error",
        513 => "SMS lower layer failure",
        _ => "unknown error",
    }
}

/// Why a call on the simulator's API was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The sender is neither a number nor a valid alphanumeric address.
    #[error("invalid sender {0:?}: {1}")]
    InvalidSender(String, String),
    /// The text could not be encoded as SMS.
    #[error("cannot encode the text: {0}")]
    Encode(#[from] EncodeError),
}
