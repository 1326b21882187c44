//! What a session knows about its modem: identity, SIM, registration, signal,
//! storage and the receive routing chosen.

use super::parse;

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
