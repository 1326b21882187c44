//! The model profiles: what the simulator says and which quirks it shows for each
//! modem it imitates. A table of data; the interpreter reads flags from it and has
//! no per-model branches of its own.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A modem model the simulator can imitate (`--model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Model {
    /// A well-behaved TS 27.005 modem with no quirks.
    #[default]
    Generic,
    /// Huawei E3372 in stick mode: `^RSSI`/`^HCSQ`/`^MODE` noise until `AT^CURC=0`.
    HuaweiE3372,
    /// SIMCom SIM800: `AT+CNMA` opens a `> ` prompt; no `<ds>=2`; 1-based indexes.
    Sim800,
    /// Quectel EC25: status reports stored in "SR" but announced as `+CDSI: "SM",<i>`.
    Ec25,
    /// SIMCom SIM7600: `AT+CMGR` on "SR" answers `+CMS ERROR: 321`.
    Sim7600,
    /// Wavecom: `AT+CPIN?` answers `+CPIN: READY` without a final `OK`.
    Wavecom,
}

/// What one model says and does. See [`Model::profile`].
#[derive(Debug)]
pub struct Profile {
    /// The `--model` name.
    pub name: &'static str,
    /// `AT+CGMI`.
    pub manufacturer: &'static str,
    /// `AT+CGMM`.
    pub model: &'static str,
    /// `AT+CGMR`.
    pub revision: &'static str,
    /// `AT+GCAP`.
    pub gcap: &'static str,
    /// Allowed values of each `AT+CNMI` parameter.
    pub cnmi: [&'static [u8]; 5],
    /// `AT+CNMI=?`.
    pub cnmi_test: &'static str,
    /// The first storage index (`+CMTI: "SM",0` or `,1`).
    pub index_base: usize,
    /// `AT+CMEE` after power-up.
    pub cmee_default: u8,
    /// Access technology in `+COPS?` and `+CREG: 2,...` (0 GSM, 7 E-UTRAN).
    pub act: u8,
    /// Huawei `^RSSI`/`^HCSQ`/`^MODE` noise, also inside responses, until `AT^CURC=0`;
    /// `^BOOT` at start. Accepts `AT^CURC`, `AT^PORTSEL`, `AT^ICCID?`.
    pub huawei: bool,
    /// Quectel `+QIND: "csq",..` noise between commands; accepts `AT+QINDCFG`.
    pub quectel: bool,
    /// How often the noise comes when it is on.
    pub noise_interval: Duration,
    /// `AT+CNMA` opens a `> ` prompt that the client must close with ESC (SIM800).
    pub cnma_prompt: bool,
    /// Status reports go to "SR" but `+CDSI` names "SM" (EC25).
    pub cdsi_says_sm: bool,
    /// `AT+CMGR` with "SR" selected fails with `+CMS ERROR: 321` (SIM7600).
    pub sr_unreadable: bool,
    /// `AT+CPIN?` answers `+CPIN: READY` and no final result (Wavecom).
    pub cpin_ready_without_ok: bool,
    /// Lines after `RDY` when the modem (re)starts; `{cpin}` is the SIM state.
    pub boot_lines: &'static [&'static str],
    /// `ATI` lines.
    pub ati: &'static [&'static str],
}

const CNMI_FULL: [&[u8]; 5] = [&[0, 1, 2, 3], &[0, 1, 2, 3], &[0, 2], &[0, 1, 2], &[0, 1]];

static GENERIC: Profile = Profile {
    name: "generic",
    manufacturer: "smsbridge",
    model: "SIMULATED-MODEM",
    revision: "smsbridge-sim 1.0",
    gcap: "+GCAP: +CGSM",
    cnmi: CNMI_FULL,
    cnmi_test: "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)",
    index_base: 0,
    cmee_default: 0,
    act: 7,
    huawei: false,
    quectel: false,
    noise_interval: Duration::from_secs(5),
    cnma_prompt: false,
    cdsi_says_sm: false,
    sr_unreadable: false,
    cpin_ready_without_ok: false,
    boot_lines: &["+CPIN: {cpin}"],
    ati: &[
        "Manufacturer: smsbridge",
        "Model: SIMULATED-MODEM",
        "Revision: smsbridge-sim 1.0",
    ],
};

static HUAWEI_E3372: Profile = Profile {
    name: "huawei-e3372",
    manufacturer: "huawei",
    model: "E3372",
    revision: "21.200.07.00.00",
    gcap: "+GCAP: +CGSM,+DS,+ES",
    cnmi: CNMI_FULL,
    cnmi_test: "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)",
    index_base: 0,
    cmee_default: 0,
    act: 7,
    huawei: true,
    quectel: false,
    noise_interval: Duration::from_secs(3),
    cnma_prompt: false,
    cdsi_says_sm: false,
    sr_unreadable: false,
    cpin_ready_without_ok: false,
    boot_lines: &["^BOOT:35323129,0,0,0,26", "+CPIN: {cpin}"],
    ati: &[
        "Manufacturer: huawei",
        "Model: E3372",
        "Revision: 21.200.07.00.00",
        "IMEI: {imei}",
        "+GCAP: +CGSM,+DS,+ES",
    ],
};

static SIM800: Profile = Profile {
    name: "sim800",
    manufacturer: "SIMCOM_Ltd",
    model: "SIMCOM_SIM800L",
    revision: "Revision:1418B04SIM800L24",
    gcap: "+GCAP: +CGSM",
    cnmi: [&[0, 1, 2, 3], &[0, 1, 2, 3], &[0, 2], &[0, 1], &[0, 1]],
    cnmi_test: "+CNMI: (0-3),(0-3),(0,2),(0,1),(0,1)",
    index_base: 1,
    cmee_default: 0,
    act: 0,
    huawei: false,
    quectel: false,
    noise_interval: Duration::from_secs(10),
    cnma_prompt: true,
    cdsi_says_sm: false,
    sr_unreadable: false,
    cpin_ready_without_ok: false,
    boot_lines: &["+CFUN: 1", "+CPIN: {cpin}", "Call Ready", "SMS Ready"],
    ati: &["SIM800 R14.18"],
};

static EC25: Profile = Profile {
    name: "ec25",
    manufacturer: "Quectel",
    model: "EC25",
    revision: "EC25EFAR06A10M4G",
    gcap: "+GCAP: +CGSM",
    cnmi: CNMI_FULL,
    cnmi_test: "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)",
    index_base: 0,
    cmee_default: 1,
    act: 7,
    huawei: false,
    quectel: true,
    noise_interval: Duration::from_secs(10),
    cnma_prompt: false,
    cdsi_says_sm: true,
    sr_unreadable: false,
    cpin_ready_without_ok: false,
    boot_lines: &["+CPIN: {cpin}", "+QUSIM: 1", "+QIND: SMS DONE"],
    ati: &["Quectel", "EC25", "Revision: EC25EFAR06A10M4G"],
};

static SIM7600: Profile = Profile {
    name: "sim7600",
    manufacturer: "SIMCOM INCORPORATED",
    model: "SIMCOM_SIM7600E-H",
    revision: "+CGMR: LE20B04SIM7600M22",
    gcap: "+GCAP: +CGSM,+FCLASS,+DS",
    cnmi: CNMI_FULL,
    cnmi_test: "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)",
    index_base: 0,
    cmee_default: 0,
    act: 7,
    huawei: false,
    quectel: false,
    noise_interval: Duration::from_secs(10),
    cnma_prompt: false,
    cdsi_says_sm: false,
    sr_unreadable: true,
    cpin_ready_without_ok: false,
    boot_lines: &["+CPIN: {cpin}", "SMS DONE", "PB DONE"],
    ati: &[
        "Manufacturer: SIMCOM INCORPORATED",
        "Model: SIMCOM_SIM7600E-H",
        "Revision: LE20B04SIM7600M22",
        "IMEI: {imei}",
        "+GCAP: +CGSM,+FCLASS,+DS",
    ],
};

static WAVECOM: Profile = Profile {
    name: "wavecom",
    manufacturer: "WAVECOM MODEM",
    model: "MULTIBAND  900E  1800",
    revision: "641b09gg.Q2403A 1320676 061804 17:45",
    gcap: "+GCAP: +CGSM,+FCLASS",
    cnmi: [&[0, 1, 2, 3], &[0, 1, 2, 3], &[0, 2], &[0, 1, 2], &[0, 1]],
    cnmi_test: "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)",
    index_base: 1,
    cmee_default: 0,
    act: 0,
    huawei: false,
    quectel: false,
    noise_interval: Duration::from_secs(10),
    cnma_prompt: false,
    cdsi_says_sm: false,
    sr_unreadable: false,
    cpin_ready_without_ok: true,
    boot_lines: &["+WIND: 4"],
    ati: &["WAVECOM MODEM"],
};

impl Model {
    /// Every model, in `--model` listing order.
    pub const ALL: [Model; 6] = [
        Model::Generic,
        Model::HuaweiE3372,
        Model::Sim800,
        Model::Ec25,
        Model::Sim7600,
        Model::Wavecom,
    ];

    /// The profile table row of this model.
    pub fn profile(self) -> &'static Profile {
        match self {
            Model::Generic => &GENERIC,
            Model::HuaweiE3372 => &HUAWEI_E3372,
            Model::Sim800 => &SIM800,
            Model::Ec25 => &EC25,
            Model::Sim7600 => &SIM7600,
            Model::Wavecom => &WAVECOM,
        }
    }

    /// The `--model` name.
    pub fn name(self) -> &'static str {
        self.profile().name
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model {s:?} (one of: {})", names.join(", "))
            })
    }
}
