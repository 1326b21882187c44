//! Modem errors as data: `+CMS ERROR` (TS 27.005 §3.2.5, with the RP/TP causes of
//! TS 24.011 and TS 23.040 below 256) and `+CME ERROR` (TS 27.007 §9.2), numeric or
//! verbose, and how a sender should react to each.

use std::fmt;

/// How a failed `AT+CMGS` should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsClass {
    /// Network or modem busy: retry the same part later, with backoff.
    Transient,
    /// The network or the modem refuses this message for good: fail it with the cause.
    Permanent,
    /// The modem is not in a state to send (SIM, registration, configuration):
    /// recover the modem, and retry the part afterwards (or on another modem).
    ModemState,
}

/// A `+CMS ERROR`. `code` is `None` for a verbose text we could not map.
#[derive(Clone, PartialEq, Eq)]
pub struct CmsError {
    /// The numeric code.
    pub code: Option<u16>,
    /// The text the modem printed with `AT+CMEE=2`, if any.
    pub text: Option<String>,
}

/// Codes with their TS 27.005/24.011/23.040 meaning and class. Sorted by code.
const CMS: &[(u16, &str, CmsClass)] = {
    use CmsClass::*;
    &[
        (1, "unassigned (unallocated) number", Permanent),
        (8, "operator determined barring", Permanent),
        (10, "call barred", Permanent),
        (17, "network failure", Transient),
        (21, "short message transfer rejected", Permanent),
        (22, "memory capacity exceeded", Transient),
        (27, "destination out of service", Transient),
        (28, "unidentified subscriber", Permanent),
        (29, "facility rejected", Permanent),
        (30, "unknown subscriber", Permanent),
        (38, "network out of order", Transient),
        (41, "temporary failure", Transient),
        (42, "congestion", Transient),
        (47, "resources unavailable, unspecified", Transient),
        (50, "requested facility not subscribed", Permanent),
        (69, "requested facility not implemented", Permanent),
        (
            81,
            "invalid short message transfer reference value",
            Transient,
        ),
        (95, "invalid message, unspecified", Permanent),
        (96, "invalid mandatory information", Permanent),
        (
            97,
            "message type non-existent or not implemented",
            Permanent,
        ),
        (
            98,
            "message not compatible with short message protocol state",
            Transient,
        ),
        (
            99,
            "information element non-existent or not implemented",
            Permanent,
        ),
        (111, "protocol error, unspecified", Transient),
        (127, "interworking, unspecified", Transient),
        (128, "telematic interworking not supported", Permanent),
        (129, "short message type 0 not supported", Permanent),
        (130, "cannot replace short message", Permanent),
        (143, "unspecified TP-PID error", Permanent),
        (
            144,
            "data coding scheme (alphabet) not supported",
            Permanent,
        ),
        (145, "message class not supported", Permanent),
        (159, "unspecified TP-DCS error", Permanent),
        (160, "command cannot be actioned", Permanent),
        (161, "command unsupported", Permanent),
        (175, "unspecified TP-Command error", Permanent),
        (176, "TPDU not supported", Permanent),
        (192, "SC busy", Transient),
        (193, "no SC subscription", Permanent),
        (194, "SC system failure", Transient),
        (195, "invalid SME address", Permanent),
        (196, "destination SME barred", Permanent),
        (197, "SM rejected-duplicate SM", Permanent),
        (198, "TP-VPF not supported", Permanent),
        (199, "TP-VP not supported", Permanent),
        (208, "SIM SMS storage full", ModemState),
        (209, "no SMS storage capability in SIM", ModemState),
        (210, "error in MS", ModemState),
        (211, "memory capacity exceeded", ModemState),
        (212, "SIM application toolkit busy", Transient),
        (213, "SIM data download error", Transient),
        (255, "unspecified error cause", Transient),
        (300, "ME failure", ModemState),
        (301, "SMS service of ME reserved", Transient),
        (302, "operation not allowed", ModemState),
        (303, "operation not supported", ModemState),
        (304, "invalid PDU mode parameter", Permanent),
        (305, "invalid text mode parameter", Permanent),
        (310, "SIM not inserted", ModemState),
        (311, "SIM PIN required", ModemState),
        (312, "PH-SIM PIN required", ModemState),
        (313, "SIM failure", ModemState),
        (314, "SIM busy", Transient),
        (315, "SIM wrong", ModemState),
        (316, "SIM PUK required", ModemState),
        (317, "SIM PIN2 required", ModemState),
        (318, "SIM PUK2 required", ModemState),
        (320, "memory failure", ModemState),
        (321, "invalid memory index", ModemState),
        (322, "memory full", ModemState),
        (330, "SMSC address unknown", ModemState),
        (331, "no network service", ModemState),
        (332, "network timeout", Transient),
        (340, "no +CNMA acknowledgement expected", ModemState),
        (500, "unknown error", Transient),
    ]
};

impl CmsError {
    /// A numeric `+CMS ERROR: <n>`.
    pub fn code(code: u16) -> Self {
        Self {
            code: Some(code),
            text: None,
        }
    }

    /// Parses what follows `+CMS ERROR:`: a number, or a verbose text (`AT+CMEE=2`)
    /// mapped back to its code where the text is a standard one.
    pub fn parse(rest: &str) -> Self {
        let rest = rest.trim();
        if let Ok(n) = rest.parse::<u16>() {
            return Self::code(n);
        }
        let code = CMS
            .iter()
            .find(|(_, t, _)| t.eq_ignore_ascii_case(rest))
            .map(|(c, _, _)| *c);
        Self {
            code,
            text: Some(rest.to_owned()),
        }
    }

    /// What the code means, from the standards (or the modem's own text).
    pub fn description(&self) -> &str {
        if let Some(t) = &self.text {
            return t;
        }
        match self.code {
            Some(c) => match CMS.binary_search_by_key(&c, |(k, _, _)| *k) {
                Ok(i) => CMS[i].1,
                Err(_) if c >= 512 => "manufacturer specific",
                Err(_) => "reserved",
            },
            None => "unknown",
        }
    }

    /// How to react. Unknown and manufacturer-specific codes are transient (a
    /// retry with backoff, bounded by the caller's attempt limit): smstools3 FAQ #11
    /// reports 512 when a send collides with a receive.
    pub fn class(&self) -> CmsClass {
        match self.code {
            Some(c) => match CMS.binary_search_by_key(&c, |(k, _, _)| *k) {
                Ok(i) => CMS[i].2,
                Err(_) => CmsClass::Transient,
            },
            None => CmsClass::Transient,
        }
    }
}

impl fmt::Display for CmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "+CMS ERROR {c}: {}", self.description()),
            None => write!(f, "+CMS ERROR: {}", self.description()),
        }
    }
}

impl fmt::Debug for CmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A `+CME ERROR` (TS 27.007 §9.2.1).
#[derive(Clone, PartialEq, Eq)]
pub struct CmeError {
    /// The numeric code.
    pub code: Option<u16>,
    /// The verbose text, if the modem printed one.
    pub text: Option<String>,
}

const CME: &[(u16, &str)] = &[
    (0, "phone failure"),
    (3, "operation not allowed"),
    (4, "operation not supported"),
    (10, "SIM not inserted"),
    (11, "SIM PIN required"),
    (12, "SIM PUK required"),
    (13, "SIM failure"),
    (14, "SIM busy"),
    (15, "SIM wrong"),
    (16, "incorrect password"),
    (17, "SIM PIN2 required"),
    (18, "SIM PUK2 required"),
    (20, "memory full"),
    (21, "invalid index"),
    (22, "not found"),
    (23, "memory failure"),
    (30, "no network service"),
    (31, "network timeout"),
    (32, "network not allowed - emergency calls only"),
    (100, "unknown"),
];

impl CmeError {
    /// SIM busy: the SIM is still initialising; try again in a moment.
    pub const SIM_BUSY: u16 = 14;
    /// Incorrect password: a wrong PIN.
    pub const INCORRECT_PASSWORD: u16 = 16;

    /// Parses what follows `+CME ERROR:`.
    pub fn parse(rest: &str) -> Self {
        let rest = rest.trim();
        if let Ok(n) = rest.parse::<u16>() {
            return Self {
                code: Some(n),
                text: None,
            };
        }
        let code = CME
            .iter()
            .find(|(_, t)| t.eq_ignore_ascii_case(rest))
            .map(|(c, _)| *c);
        Self {
            code,
            text: Some(rest.to_owned()),
        }
    }

    /// What the code means.
    pub fn description(&self) -> &str {
        if let Some(t) = &self.text {
            return t;
        }
        match self.code {
            Some(c) => CME
                .iter()
                .find(|(k, _)| *k == c)
                .map_or("unknown error", |(_, t)| t),
            None => "unknown error",
        }
    }
}

impl fmt::Display for CmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "+CME ERROR {c}: {}", self.description()),
            None => write!(f, "+CME ERROR: {}", self.description()),
        }
    }
}

impl fmt::Debug for CmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A final result code other than `OK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalError {
    /// Plain `ERROR` (or a vendor's "COMMAND NOT SUPPORT").
    Error,
    /// `+CME ERROR`.
    Cme(CmeError),
    /// `+CMS ERROR`.
    Cms(CmsError),
}

impl fmt::Display for FinalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error => f.write_str("ERROR"),
            Self::Cme(e) => e.fmt(f),
            Self::Cms(e) => e.fmt(f),
        }
    }
}

/// Why a part was not submitted (the PDU never left, or the network said no).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The network or the SIM refused it.
    #[error("{0}")]
    Cms(CmsError),
    /// The modem answered `ERROR` or a `+CME ERROR`.
    #[error("modem refused the command: {0}")]
    Refused(FinalError),
    /// No `> ` prompt came; the PDU was not written (ESC was sent).
    #[error("no prompt within {0:?}; the PDU was not sent")]
    PromptTimeout(std::time::Duration),
    /// The modem is not ready to send (starting, recovering, or unusable).
    #[error("modem not ready: {0}")]
    NotReady(String),
    /// The PDU itself is unusable (caller's bug).
    #[error("invalid PDU: {0}")]
    InvalidPdu(String),
}

impl SubmitError {
    /// How the sender should react: retry later, fail the message, or recover the modem.
    pub fn class(&self) -> CmsClass {
        match self {
            Self::Cms(e) => e.class(),
            Self::Refused(_) | Self::NotReady(_) => CmsClass::ModemState,
            Self::PromptTimeout(_) => CmsClass::ModemState,
            Self::InvalidPdu(_) => CmsClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(CMS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn classifies_numeric_and_verbose_cms_errors() {
        assert_eq!(CmsError::parse(" 500").class(), CmsClass::Transient);
        assert_eq!(CmsError::parse("42").class(), CmsClass::Transient);
        assert_eq!(CmsError::parse("1").class(), CmsClass::Permanent);
        assert_eq!(CmsError::parse("304").class(), CmsClass::Permanent);
        assert_eq!(CmsError::parse("311").class(), CmsClass::ModemState);
        assert_eq!(CmsError::parse("331").class(), CmsClass::ModemState);
        assert_eq!(CmsError::parse("512").class(), CmsClass::Transient);
        let verbose = CmsError::parse("unknown error");
        assert_eq!(verbose.code, Some(500));
        assert_eq!(verbose.to_string(), "+CMS ERROR 500: unknown error");
        assert_eq!(
            CmsError::code(500).to_string(),
            "+CMS ERROR 500: unknown error"
        );
        assert_eq!(
            CmsError::code(513).to_string(),
            "+CMS ERROR 513: manufacturer specific"
        );
        let odd = CmsError::parse("Something odd");
        assert_eq!((odd.code, odd.class()), (None, CmsClass::Transient));
    }

    #[test]
    fn cme_errors_say_what_happened() {
        assert_eq!(
            CmeError::parse("11").to_string(),
            "+CME ERROR 11: SIM PIN required"
        );
        assert_eq!(CmeError::parse("SIM busy").code, Some(CmeError::SIM_BUSY));
        assert_eq!(
            CmeError::parse("16").code,
            Some(CmeError::INCORRECT_PASSWORD)
        );
    }
}
