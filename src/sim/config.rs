//! How a simulated modem is set up: its SIM, its network, its phones, its delays
//! and the faults it should show.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::profile::Model;

/// What a simulated phone does with an SMS sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PhoneBehaviour {
    /// Replies with the text (through [`SimConfig::reply_template`]) once every
    /// part arrived, after [`SimConfig::reply_delay`]; reports "delivered".
    #[default]
    Echo,
    /// Takes the message and says nothing; reports "delivered".
    Silent,
    /// Never gets it; a requested status report says it failed (TP-ST 0x62).
    Unreachable,
    /// Takes the message and says nothing, and no status report ever comes,
    /// requested or not (a network that loses reports), so the bridge's report
    /// window can be seen ending.
    NoReport,
}

impl FromStr for PhoneBehaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "echo" => Ok(Self::Echo),
            "silent" => Ok(Self::Silent),
            "unreachable" => Ok(Self::Unreachable),
            "no-report" => Ok(Self::NoReport),
            other => Err(format!(
                "unknown phone behaviour {other:?} (echo, silent, unreachable or no-report)"
            )),
        }
    }
}

/// Registration as `AT+CREG?`, `AT+CGREG?` and `AT+CEREG?` report it once the SIM
/// is ready and the radio is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Registration {
    /// Registered, home network (stat 1 everywhere).
    #[default]
    Home,
    /// Registered, roaming (stat 5).
    Roaming,
    /// Not registered, searching (stat 2).
    Searching,
    /// Registration denied (stat 3).
    Denied,
    /// Not registered, not searching (stat 0).
    NotRegistered,
    /// An LTE-only network: `+CREG` and `+CGREG` say 0, `+CEREG` says 1.
    LteOnly,
}

impl Registration {
    /// The stat of CREG, CGREG and CEREG.
    pub(super) fn stats(self) -> [u8; 3] {
        match self {
            Self::Home => [1, 1, 1],
            Self::Roaming => [5, 5, 5],
            Self::Searching => [2, 2, 2],
            Self::Denied => [3, 3, 3],
            Self::NotRegistered => [0, 0, 0],
            Self::LteOnly => [0, 0, 1],
        }
    }
}

impl FromStr for Registration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "home" => Ok(Self::Home),
            "roaming" => Ok(Self::Roaming),
            "searching" => Ok(Self::Searching),
            "denied" => Ok(Self::Denied),
            "none" | "not-registered" => Ok(Self::NotRegistered),
            "lte-only" => Ok(Self::LteOnly),
            other => Err(format!(
                "unknown registration {other:?} (home, roaming, searching, denied, none, lte-only)"
            )),
        }
    }
}

/// The order in which the parts of an injected mobile-originated SMS arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PartOrder {
    /// Part 1 first.
    #[default]
    InOrder,
    /// Last part first.
    Reverse,
    /// A shuffle drawn from the seeded PRNG.
    Shuffled,
}

impl FromStr for PartOrder {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "in-order" | "inorder" => Ok(Self::InOrder),
            "reverse" => Ok(Self::Reverse),
            "shuffled" | "shuffle" => Ok(Self::Shuffled),
            other => Err(format!(
                "unknown order {other:?} (in-order, reverse or shuffled)"
            )),
        }
    }
}

/// A fault to show, from the configuration or at run time ([`super::SimModem::set_fault`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Each `AT+CMGS` fails with `+CMS ERROR: <code>` with this probability.
    CmsErrorRate {
        /// 0.0..=1.0.
        probability: f64,
        /// The CMS error code, e.g. 500 (unknown) or 38 (network out of order).
        code: u16,
    },
    /// Answer this many more command lines, then stop answering anything until
    /// the port is reset (the client closes and reopens it).
    HangAfter(u32),
    /// Reboot now: the port goes quiet, then `RDY`; volatile settings are lost.
    Reboot,
    /// Answer this many more command lines, then reboot spontaneously.
    RebootAfter(u32),
    /// Fill the free slots of the receive memory with read messages.
    StorageFull,
    /// After this many more command lines, ask the driver to make the port vanish
    /// for `duration` (the PTY driver removes and recreates it).
    VanishAfter {
        /// Command lines still answered before the port vanishes.
        commands: u32,
        /// How long the port stays away.
        duration: Duration,
    },
    /// Clear every pending fault (hang, reboot and vanish counters, error rate).
    Clear,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CmsErrorRate { probability, code } => {
                write!(f, "cms-error-rate {probability}:{code}")
            }
            Self::HangAfter(n) => write!(f, "hang-after {n}"),
            Self::Reboot => f.write_str("reboot"),
            Self::RebootAfter(n) => write!(f, "reboot-after {n}"),
            Self::StorageFull => f.write_str("storage-full"),
            Self::VanishAfter { commands, duration } => write!(
                f,
                "vanish-after {commands} {}",
                humantime::format_duration(*duration)
            ),
            Self::Clear => f.write_str("clear"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    /// The forms `Display` prints: `cms-error-rate 0.5[:500]`, `hang-after 3`,
    /// `reboot`, `reboot-after 2`, `storage-full`, `vanish-after 2 5s`, `clear`.
    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let count = |w: Option<&&str>| -> Result<u32, String> {
            w.ok_or("a count is missing")?
                .parse::<u32>()
                .map_err(|e| format!("bad count: {e}"))
        };
        match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
            Some("cms-error-rate") => {
                let arg = words.get(1).ok_or("a probability is missing")?;
                let (probability, code) = parse_rate(arg)?;
                Ok(Self::CmsErrorRate { probability, code })
            }
            Some("hang-after") => Ok(Self::HangAfter(count(words.get(1))?)),
            Some("reboot") => Ok(Self::Reboot),
            Some("reboot-after") => Ok(Self::RebootAfter(count(words.get(1))?)),
            Some("storage-full") => Ok(Self::StorageFull),
            Some("vanish-after") => {
                let commands = count(words.get(1))?;
                let d = words.get(2).ok_or("a duration is missing")?;
                let duration = humantime::parse_duration(d).map_err(|e| e.to_string())?;
                Ok(Self::VanishAfter { commands, duration })
            }
            Some("clear") => Ok(Self::Clear),
            _ => Err(format!(
                "unknown fault {s:?} (cms-error-rate P[:CODE], hang-after N, reboot, \
                 reboot-after N, storage-full, vanish-after N DURATION, clear)"
            )),
        }
    }
}

/// `P[:CODE]`, e.g. `0.2` or `0.2:38`. The code defaults to 500 (unknown error).
pub(crate) fn parse_rate(arg: &str) -> Result<(f64, u16), String> {
    let (p, code) = match arg.split_once(':') {
        Some((p, c)) => (p, c.parse::<u16>().map_err(|e| format!("bad code: {e}"))?),
        None => (arg, 500),
    };
    let probability: f64 = p.parse().map_err(|e| format!("bad probability: {e}"))?;
    if !(0.0..=1.0).contains(&probability) {
        return Err(format!("probability {probability} is not in 0..=1"));
    }
    Ok((probability, code))
}

/// A behaviour of real modems the model profiles do not show, turned on for any
/// model (`--quirk`, [`SimConfig::quirks`]). Each is one of the ways a real modem
/// differs from the well-behaved profiles (issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimQuirk {
    /// Start-up banners (`+CPIN: READY`, `Call Ready`, `SMS Ready`) come when the
    /// firmware is ready, around the answers of the next commands after power-up
    /// or a reboot, not as lines of their own.
    BannersAroundAnswers,
    /// An open `> ` prompt survives the port being closed and reopened; only ESC
    /// (or Ctrl-Z) ends it, and everything else typed goes into it.
    PromptUntilEsc,
    /// `<mem3>` (where new messages go) can only be "ME" (Cinterion MC75i,
    /// gammu#1207); the SIM is still readable.
    ReceiveMeOnly,
    /// Storage indexes start at 1, whatever the model.
    SlotsFromOne,
    /// Status reports carry a time-zone octet that is not BCD (0xFF) in TP-SCTS
    /// and TP-DT, as some service centres send them.
    BrokenReportZone,
    /// A routed message left unacknowledged is acknowledged by the modem itself
    /// and routing stays on (BenQ M32 style), instead of TS 27.005 §3.4.4's
    /// RP-ERROR and `<mt>`/`<ds>` set to 0.
    KeepRoutingOnMissedAck,
}

impl SimQuirk {
    /// Every quirk, with its `--quirk` name.
    pub const ALL: [(SimQuirk, &'static str); 6] = [
        (SimQuirk::BannersAroundAnswers, "banners-around-answers"),
        (SimQuirk::PromptUntilEsc, "prompt-until-esc"),
        (SimQuirk::ReceiveMeOnly, "receive-me-only"),
        (SimQuirk::SlotsFromOne, "slots-from-one"),
        (SimQuirk::BrokenReportZone, "broken-report-zone"),
        (
            SimQuirk::KeepRoutingOnMissedAck,
            "keep-routing-on-missed-ack",
        ),
    ];

    /// The `--quirk` name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(q, _)| *q == self)
            .map_or("?", |(_, n)| n)
    }
}

impl fmt::Display for SimQuirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SimQuirk {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(q, _)| *q)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|(_, n)| *n).collect();
                format!("unknown quirk {s:?} (one of: {})", names.join(", "))
            })
    }
}

/// Capacities of the three message memories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageSizes {
    /// "SM", the SIM.
    pub sm: usize,
    /// "ME", the modem's own memory.
    pub me: usize,
    /// "SR", status reports.
    pub sr: usize,
}

impl Default for StorageSizes {
    fn default() -> Self {
        Self {
            sm: 20,
            me: 25,
            sr: 10,
        }
    }
}

/// Everything a [`super::SimModem`] is made from. `Default` is a generic modem,
/// no PIN, zero send, report and reply delays, and phones that echo.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The model profile.
    pub model: Model,
    /// The SIM PIN; `None` means the SIM needs none.
    pub pin: Option<String>,
    /// The PUK that unblocks the SIM after three wrong PINs.
    pub puk: String,
    /// `AT+CIMI`.
    pub imsi: String,
    /// `AT+CGSN`.
    pub imei: String,
    /// `AT+CCID`.
    pub iccid: String,
    /// `AT+CNUM`, and the number phones reply to.
    pub own_number: String,
    /// The service centre (`AT+CSCA?`, the SMSC field of delivered PDUs).
    pub smsc: String,
    /// The operator name in `AT+COPS?`.
    pub operator: String,
    /// Registration once the SIM is ready.
    pub registration: Registration,
    /// `AT+CSQ` rssi (0..=31).
    pub rssi: u8,
    /// Message memory capacities.
    pub storage: StorageSizes,
    /// Time between Ctrl-Z and `+CMGS: <mr>`; the modem is busy meanwhile.
    pub send_delay: Duration,
    /// Time between a submit and its status report.
    pub report_delay: Duration,
    /// Time between the last part reaching an echoing phone and its reply.
    pub reply_delay: Duration,
    /// Time the port stays quiet during a reboot before `RDY`.
    pub reboot_delay: Duration,
    /// How long a routed `+CMT`/`+CDS` waits for `AT+CNMA` (with `AT+CSMS=1`)
    /// before the modem gives up and sets `<mt>` and `<ds>` of `AT+CNMI` to 0.
    pub ack_timeout: Duration,
    /// Timed noise (Huawei `^RSSI`, Quectel `+QIND`): `None` uses the profile's
    /// interval, `Some(Duration::ZERO)` turns timed noise off.
    pub noise_interval: Option<Duration>,
    /// Behaviour of specific phone numbers (as written: `+15551234567`).
    pub phones: BTreeMap<String, PhoneBehaviour>,
    /// Behaviour of every other number.
    pub default_phone: PhoneBehaviour,
    /// The echo reply; `{text}` stands for the received text.
    pub reply_template: String,
    /// Faults from the start.
    pub faults: Vec<Fault>,
    /// Behaviours of real modems on top of the model's profile.
    pub quirks: Vec<SimQuirk>,
    /// Unread messages on the SIM ("SM") at power-up: (sender, text).
    pub unread_on_sim: Vec<(String, String)>,
    /// Seed of the PRNG behind error rates and shuffles.
    pub seed: u64,
    /// Unix time at the `now` given to [`super::SimModem::new`], for time stamps.
    pub unix_time: i64,
    /// Local time zone of the network in quarter hours east of UTC.
    pub utc_offset_quarters: i8,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            model: Model::Generic,
            pin: None,
            puk: "12345678".into(),
            imsi: "001010123456789".into(),
            imei: "490154203237518".into(),
            iccid: "8900101234567890123".into(),
            own_number: "+15550001111".into(),
            smsc: "+15550000000".into(),
            operator: "SIMNET".into(),
            registration: Registration::Home,
            rssi: 20,
            storage: StorageSizes::default(),
            send_delay: Duration::ZERO,
            report_delay: Duration::ZERO,
            reply_delay: Duration::ZERO,
            reboot_delay: Duration::from_secs(2),
            ack_timeout: Duration::from_secs(30),
            noise_interval: None,
            phones: BTreeMap::new(),
            default_phone: PhoneBehaviour::Echo,
            reply_template: "{text}".into(),
            faults: Vec::new(),
            quirks: Vec::new(),
            unread_on_sim: Vec::new(),
            seed: 1,
            // 2026-01-01T00:00:00Z: a fixed default keeps transcripts repeatable.
            unix_time: 1_767_225_600,
            utc_offset_quarters: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_text() {
        for f in [
            Fault::CmsErrorRate {
                probability: 0.25,
                code: 38,
            },
            Fault::HangAfter(3),
            Fault::Reboot,
            Fault::RebootAfter(2),
            Fault::StorageFull,
            Fault::VanishAfter {
                commands: 2,
                duration: Duration::from_secs(5),
            },
            Fault::Clear,
        ] {
            assert_eq!(f.to_string().parse::<Fault>(), Ok(f.clone()), "{f}");
        }
        assert_eq!(parse_rate("0.5"), Ok((0.5, 500)));
        assert!(parse_rate("2").is_err());
        assert!("explode".parse::<Fault>().is_err());
        for (q, name) in SimQuirk::ALL {
            assert_eq!(name.parse::<SimQuirk>(), Ok(q));
            assert_eq!(q.to_string(), name);
        }
        assert!("sloppy".parse::<SimQuirk>().is_err());
        assert_eq!("no-report".parse(), Ok(PhoneBehaviour::NoReport));
        assert_eq!("Silent".parse(), Ok(PhoneBehaviour::Silent));
        assert_eq!(
            "lost".parse::<PhoneBehaviour>(),
            Err("unknown phone behaviour \"lost\" (echo, silent, unreachable or no-report)".into())
        );
    }
}
