//! Errors of the PDU codec: what was wrong and where (field and octet offset), so a
//! log line can say exactly which part of a modem's hex line was bad.

use std::fmt;

/// A PDU that could not be decoded. `offset` counts octets from the start of the
/// buffer handed to the decoder (the SMSC field included when there is one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} at octet {offset}: {kind}")]
pub struct DecodeError {
    /// The TPDU field being read, e.g. `"TP-OA"` or `"TP-UD"`.
    pub field: &'static str,
    /// Octet offset of that field in the input.
    pub offset: usize,
    /// What was wrong with it.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn new(field: &'static str, offset: usize, kind: DecodeErrorKind) -> Self {
        Self {
            field,
            offset,
            kind,
        }
    }
}

/// The ways a PDU can be malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input is not an even-length string of hexadecimal digits.
    NotHex,
    /// The input ended before the field did.
    Truncated {
        /// Octets the field needs.
        needed: usize,
        /// Octets that were left.
        available: usize,
    },
    /// TP-MTI 3 is reserved (TS 23.040 §9.2.3.1).
    ReservedMessageType,
    /// A semi-octet that is not a decimal digit where one is required.
    InvalidDigit(u8),
    /// A value outside the range the field allows.
    OutOfRange {
        /// The offending value.
        value: u32,
        /// The smallest allowed value.
        min: u32,
        /// The largest allowed value.
        max: u32,
    },
    /// The user data header's own lengths do not add up.
    BrokenHeader,
    /// UCS-2 user data with an odd number of octets.
    OddUcs2Length,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHex => f.write_str("not an even-length hexadecimal string"),
            Self::Truncated { needed, available } => {
                write!(f, "needs {needed} octets, only {available} left")
            }
            Self::ReservedMessageType => f.write_str("reserved message type (TP-MTI 3)"),
            Self::InvalidDigit(d) => write!(f, "semi-octet {d:#x} is not a decimal digit"),
            Self::OutOfRange { value, min, max } => {
                write!(f, "value {value} is outside {min}..={max}")
            }
            Self::BrokenHeader => {
                f.write_str("user data header elements overrun the header length")
            }
            Self::OddUcs2Length => f.write_str("UCS-2 user data has an odd number of octets"),
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The text needs more parts than a concatenated SMS can have (255), or than the
    /// caller allowed.
    #[error("text needs {needed} parts, at most {max} allowed")]
    TooManyParts {
        /// Parts the text would need.
        needed: usize,
        /// The limit.
        max: usize,
    },
    /// The address cannot be written as a TP address.
    #[error("invalid address {0:?}: {1}")]
    InvalidAddress(String, &'static str),
    /// The text has a character the forced alphabet cannot carry.
    #[error("character {0:?} has no GSM 7-bit encoding")]
    Unencodable(char),
    /// A user data header plus body that does not fit in 140 octets.
    #[error("user data of {0} octets exceeds the 140-octet maximum")]
    UserDataTooLong(usize),
}
