//! Per-model differences as data (reference/sms.md §3, §7): what to send after the
//! identity is known, and which misbehaviours to work around. The session reads
//! these flags; no model names appear anywhere else.

/// What one family of modems needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Quirks {
    /// Shown in `modem probe` and logs.
    pub name: &'static str,
    /// Commands sent once the model is known (e.g. Huawei `AT^CURC=0` silences the
    /// `^RSSI`/`^HCSQ` noise that broke chan_dongle, wdoekes#143).
    pub init: &'static [&'static str],
    /// `AT+CNMA` is answered with a `> ` prompt (SIM800C; RoEdAl/chan_quectel sends
    /// ESC to get out).
    pub cnma_prompt: bool,
    /// `+CDSI` names the wrong memory: reports are in "SR" whatever it says
    /// (Quectel EC25/EG25, chan_quectel PR #75).
    pub reports_in_sr: bool,
    /// Reading stored reports fails (`+CMS ERROR: 321` on "SR", SIM7600,
    /// python-gsmmodem#106): only routed reports (`+CDS`) work.
    pub stored_reports_unreadable: bool,
    /// How to reset the modem when a radio cycle did not help; `None` when the
    /// model has no safe reset (the port is then only reopened).
    pub reset: Option<&'static str>,
}

/// Anything not matched below: standard TS 27.005 behaviour.
pub(crate) static GENERIC: Quirks = Quirks {
    name: "generic",
    init: &[],
    cnma_prompt: false,
    reports_in_sr: false,
    stored_reports_unreadable: false,
    reset: Some("AT+CFUN=1,1"),
};

static HUAWEI: Quirks = Quirks {
    name: "huawei",
    init: &["AT^CURC=0"],
    ..GENERIC
};

static SIM800: Quirks = Quirks {
    name: "simcom-sim800",
    cnma_prompt: true,
    ..GENERIC
};

static SIM7600: Quirks = Quirks {
    name: "simcom-sim7600",
    stored_reports_unreadable: true,
    ..GENERIC
};

static QUECTEL: Quirks = Quirks {
    name: "quectel",
    reports_in_sr: true,
    ..GENERIC
};

static WAVECOM: Quirks = Quirks {
    name: "wavecom",
    reset: None,
    ..GENERIC
};

/// (manufacturer substring, model substring, quirks); first match wins, matched
/// case-insensitively against `AT+CGMI` and `AT+CGMM`.
static TABLE: &[(&str, &str, &Quirks)] = &[
    ("huawei", "", &HUAWEI),
    ("simcom", "sim800", &SIM800),
    ("sim800", "", &SIM800),
    ("", "sim800", &SIM800),
    ("simcom", "sim7600", &SIM7600),
    ("", "sim7600", &SIM7600),
    ("quectel", "", &QUECTEL),
    ("wavecom", "", &WAVECOM),
];

/// The quirks for a modem by its `AT+CGMI` and `AT+CGMM` answers.
pub fn for_model(manufacturer: &str, model: &str) -> &'static Quirks {
    let (m, d) = (
        manufacturer.to_ascii_lowercase(),
        model.to_ascii_lowercase(),
    );
    TABLE
        .iter()
        .find(|(a, b, _)| m.contains(a) && d.contains(b))
        .map_or(&GENERIC, |(_, _, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_quirks_by_identity() {
        assert_eq!(for_model("huawei", "E3372").name, "huawei");
        assert_eq!(
            for_model("SIMCOM_Ltd", "SIMCOM_SIM800C").name,
            "simcom-sim800"
        );
        assert_eq!(
            for_model("SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H").name,
            "simcom-sim7600"
        );
        assert_eq!(for_model("Quectel", "EC25").name, "quectel");
        assert_eq!(for_model("u-blox", "SARA-R410M").name, "generic");
        assert!(for_model("Quectel", "EC25").reports_in_sr);
    }
}
