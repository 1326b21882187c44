//! V.250 basic commands and the TS 27.007 commands a modem client uses besides
//! SMS: identity, SIM PIN, functionality, registration, signal, operator, clock,
//! and the vendor probes gammu and smstools send (answered as the profile's
//! model would). SMS commands are in `cmd_sms.rs`.

use std::time::Instant;

use super::clock::text_time;
use super::error::*;
use super::line::{Command, Op, numbers, params};
use super::modem::{Outcome, SimModem, SimState};

/// Extended commands accepted and ignored, as most modems do.
const ACCEPTED: &[&str] = &[
    "+CLIP", "+CRC", "+CVHU", "+CLIR", "+COLP", "+CGEREP", "+CTZR", "+CTZU", "+CSCB", "+CSAS",
    "+CRES", "+CMUT", "+CSSN", "+CUSD", "+CPBS", "+CGDCONT", "+IFC", "+IPR", "+ICF",
];

fn ok() -> Outcome {
    Outcome::Info(Vec::new())
}

fn lines(l: impl IntoIterator<Item = String>) -> Outcome {
    Outcome::Info(l.into_iter().collect())
}

fn one(l: String) -> Outcome {
    Outcome::Info(vec![l])
}

fn fail(e: AtError) -> Outcome {
    Outcome::Fail(e)
}

impl SimModem {
    pub(super) fn sim_cme(&self) -> Result<(), AtError> {
        match self.sim {
            SimState::Ready => Ok(()),
            SimState::NeedPin => Err(AtError::Cme(CME_SIM_PIN)),
            SimState::NeedPuk => Err(AtError::Cme(CME_SIM_PUK)),
            SimState::Blocked => Err(AtError::Cme(CME_SIM_FAILURE)),
        }
    }

    pub(super) fn sim_cms(&self) -> Result<(), AtError> {
        match self.sim {
            SimState::Ready => Ok(()),
            SimState::NeedPin => Err(AtError::Cms(CMS_SIM_PIN)),
            SimState::NeedPuk => Err(AtError::Cms(CMS_SIM_PUK)),
            SimState::Blocked => Err(AtError::Cms(CMS_SIM_FAILURE)),
        }
    }

    /// Runs one command of a command line.
    pub(super) fn dispatch(&mut self, now: Instant, cmd: &Command) -> Outcome {
        if let Some(o) = self.dispatch_sms(now, cmd) {
            return o;
        }
        if !cmd.name.starts_with(['+', '^', '$', '%', '*', '#', '!']) {
            return self.basic(cmd);
        }
        let p = self.profile;
        let name = cmd.name.as_str();
        match (name, cmd.op) {
            (_, Op::Test) if is_identity(name) => ok(),
            ("+CGMI" | "+GMI", Op::Exec) => one(p.manufacturer.into()),
            ("+CGMM" | "+GMM", Op::Exec) => one(p.model.into()),
            ("+CGMR" | "+GMR", Op::Exec) => one(p.revision.into()),
            ("+CGSN" | "+GSN", Op::Exec) => one(self.cfg.imei.clone()),
            ("+GCAP", Op::Exec) => one(p.gcap.into()),
            ("+CIMI", Op::Exec) => match self.sim_cme() {
                Ok(()) => one(self.cfg.imsi.clone()),
                Err(e) => fail(e),
            },
            ("+CCID" | "+ICCID" | "+QCCID", Op::Exec | Op::Read) => {
                one(format!("{name}: {}", self.cfg.iccid))
            }
            ("^ICCID", Op::Read) if p.huawei => one(format!("^ICCID: {}", self.cfg.iccid)),
            ("+CNUM", Op::Exec) => match self.sim_cme() {
                Ok(()) => one(format!("+CNUM: \"\",\"{}\",145", self.cfg.own_number)),
                Err(e) => fail(e),
            },
            ("+CMEE", _) => self.cmee(cmd),
            ("+CSCS", _) => self.cscs(cmd),
            ("+CPIN", _) => self.cpin(now, cmd),
            ("+CFUN", _) => self.cfun(now, cmd),
            ("+CREG", _) => self.reg(cmd, 0),
            ("+CGREG", _) => self.reg(cmd, 1),
            ("+CEREG", _) => self.reg(cmd, 2),
            ("+CSQ", Op::Exec) => one(format!("+CSQ: {},99", self.rssi())),
            ("+CSQ", Op::Test) => one("+CSQ: (0-31,99),(0-7,99)".into()),
            ("+COPS", Op::Read) => {
                if self.registered() {
                    let act = if self.reg_stats()[0] == 0 { 7 } else { p.act };
                    one(format!("+COPS: 0,0,\"{}\",{act}", self.cfg.operator))
                } else {
                    one("+COPS: 0".into())
                }
            }
            ("+COPS", Op::Test) => one(format!(
                "+COPS: (2,\"{0}\",\"{0}\",\"00101\",{1}),,(0-4),(0-2)",
                self.cfg.operator, p.act
            )),
            ("+COPS", Op::Set) => ok(),
            ("+CCLK", Op::Read) => one(format!(
                "+CCLK: \"{}\"",
                text_time(&self.clock.timestamp(now))
            )),
            ("+CPAS", Op::Exec) => one("+CPAS: 0".into()),
            ("+CHUP", Op::Exec | Op::Test) => ok(),
            ("+CGATT", Op::Read) => one(format!("+CGATT: {}", u8::from(self.registered()))),
            ("+CGATT", Op::Set | Op::Test) => ok(),
            ("^CURC", Op::Set) if p.huawei => match numbers(&cmd.args).as_deref() {
                Ok([Some(v @ 0..=1)]) => {
                    self.set.noise = *v == 1;
                    ok()
                }
                _ => fail(AtError::Cme(CME_BAD_PARAM)),
            },
            ("^CURC", Op::Read) if p.huawei => one(format!("^CURC: {}", u8::from(self.set.noise))),
            ("^PORTSEL", Op::Set | Op::Read | Op::Test) if p.huawei => ok(),
            ("^HCSQ", Op::Read) if p.huawei => one("^HCSQ:\"LTE\",60,52,106,24".into()),
            ("+QINDCFG", Op::Set) if p.quectel => {
                let ps = params(&cmd.args);
                let csq = ps
                    .first()
                    .is_some_and(|x| x.text.eq_ignore_ascii_case("csq"));
                if csq && let Some(v) = ps.get(1).and_then(|x| x.number().ok().flatten()) {
                    self.set.noise = v == 1;
                }
                ok()
            }
            (n, _) if ACCEPTED.contains(&n) => match cmd.op {
                Op::Read => one(format!("{n}: 0")),
                Op::Test => one(format!("{n}: (0,1)")),
                _ => ok(),
            },
            // Unknown here, as on most modems: +MODE, +SYNCML, $TSSPCSW, ^ on
            // non-Huawei models, and anything else.
            _ => fail(AtError::Plain),
        }
    }

    fn basic(&mut self, cmd: &Command) -> Outcome {
        let n = || -> Result<u32, ()> {
            if cmd.args.is_empty() {
                Ok(0)
            } else {
                cmd.args.parse().map_err(|_| ())
            }
        };
        match (cmd.name.as_str(), n()) {
            ("E", Ok(v @ 0..=1)) => self.set.echo = v == 1,
            ("V", Ok(v @ 0..=1)) => self.set.verbose = v == 1,
            ("Q", Ok(v @ 0..=1)) => self.set.quiet = v == 1,
            ("I", Ok(_)) => {
                let imei = self.cfg.imei.clone();
                return lines(self.profile.ati.iter().map(|l| l.replace("{imei}", &imei)));
            }
            ("Z" | "&F", Ok(0)) => self.set = self.fresh_settings(),
            ("&C" | "&D" | "&K" | "&S" | "&W" | "&V" | "L" | "M" | "X" | "H", Ok(_)) => {}
            (s, _) if s.starts_with('S') && s.len() > 1 => {
                let Ok(reg) = s[1..].parse::<usize>() else {
                    return fail(AtError::Plain);
                };
                match cmd.op {
                    Op::Read => {
                        let v = self.set.s_regs.get(reg).copied().unwrap_or(0);
                        return one(format!("{v:03}"));
                    }
                    _ => match cmd.args.parse::<u8>() {
                        Ok(v) => {
                            if let Some(r) = self.set.s_regs.get_mut(reg) {
                                *r = v;
                            }
                        }
                        Err(_) => return fail(AtError::Plain),
                    },
                }
            }
            // D (dial), A (answer), O (online) and anything else: no voice or data
            // here.
            _ => return fail(AtError::Plain),
        }
        ok()
    }

    fn cmee(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => one(format!("+CMEE: {}", self.set.cmee)),
            Op::Test => one("+CMEE: (0-2)".into()),
            Op::Set => match numbers(&cmd.args).as_deref() {
                Ok([Some(v @ 0..=2)]) => {
                    self.set.cmee = *v as u8;
                    ok()
                }
                _ => fail(AtError::Cme(CME_BAD_PARAM)),
            },
            Op::Exec => {
                self.set.cmee = 0;
                ok()
            }
        }
    }

    fn cscs(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => one(format!("+CSCS: \"{}\"", self.set.cscs)),
            Op::Test => one("+CSCS: (\"IRA\",\"GSM\",\"UCS2\")".into()),
            Op::Set => {
                let ps = params(&cmd.args);
                let cs = match ps.first().map(|p| p.text.to_ascii_uppercase()).as_deref() {
                    Some("IRA") => "IRA",
                    Some("GSM") => "GSM",
                    Some("UCS2") => "UCS2",
                    _ => return fail(AtError::Cme(CME_NOT_SUPPORTED)),
                };
                self.set.cscs = cs;
                ok()
            }
            Op::Exec => fail(AtError::Plain),
        }
    }

    fn cpin(&mut self, now: Instant, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => {
                let l = format!("+CPIN: {}", self.cpin_text());
                if self.sim == SimState::Ready && self.profile.cpin_ready_without_ok {
                    Outcome::NoFinal(vec![l])
                } else {
                    one(l)
                }
            }
            Op::Test => ok(),
            Op::Exec => fail(AtError::Plain),
            Op::Set => {
                let before = self.reg_stats();
                let ps = params(&cmd.args);
                let first = ps.first().map(|p| p.text.clone()).unwrap_or_default();
                let out = match self.sim {
                    SimState::Ready => fail(AtError::Cme(CME_NOT_ALLOWED)),
                    SimState::Blocked => fail(AtError::Cme(CME_SIM_FAILURE)),
                    SimState::NeedPin => {
                        if self.cfg.pin.as_deref() == Some(first.as_str()) {
                            self.sim = SimState::Ready;
                            self.pin_tries = 3;
                            self.event(now, "PIN accepted".into());
                            ok()
                        } else {
                            self.pin_tries = self.pin_tries.saturating_sub(1);
                            if self.pin_tries == 0 {
                                self.sim = SimState::NeedPuk;
                                self.event(now, "third wrong PIN: SIM needs the PUK".into());
                            }
                            fail(AtError::Cme(CME_WRONG_PASSWORD))
                        }
                    }
                    SimState::NeedPuk => match ps.get(1) {
                        None => fail(AtError::Cme(CME_SIM_PUK)),
                        Some(new_pin) if first == self.cfg.puk => {
                            self.cfg.pin = Some(new_pin.text.clone());
                            self.sim = SimState::Ready;
                            self.pin_tries = 3;
                            self.puk_tries = 10;
                            self.event(now, "PUK accepted, new PIN set".into());
                            ok()
                        }
                        Some(_) => {
                            self.puk_tries = self.puk_tries.saturating_sub(1);
                            if self.puk_tries == 0 {
                                self.sim = SimState::Blocked;
                            }
                            fail(AtError::Cme(CME_WRONG_PASSWORD))
                        }
                    },
                };
                self.registration_changed(before);
                out
            }
        }
    }

    fn cfun(&mut self, now: Instant, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => one(format!("+CFUN: {}", u8::from(self.radio_on))),
            Op::Test => one("+CFUN: (0,1,4),(0,1)".into()),
            Op::Exec => fail(AtError::Plain),
            Op::Set => {
                let v = match numbers(&cmd.args) {
                    Ok(v) => v,
                    Err(()) => return fail(AtError::Cme(CME_BAD_PARAM)),
                };
                let (fun, rst) = (v.first().copied().flatten(), v.get(1).copied().flatten());
                if !matches!(fun, Some(0 | 1 | 4)) || !matches!(rst, None | Some(0 | 1)) {
                    return fail(AtError::Cme(CME_BAD_PARAM));
                }
                if rst == Some(1) {
                    return Outcome::Reboot;
                }
                let before = self.reg_stats();
                self.radio_on = fun == Some(1);
                self.event(
                    now,
                    format!("radio {}", if self.radio_on { "on" } else { "off" }),
                );
                self.registration_changed(before);
                ok()
            }
        }
    }

    /// `AT+CREG`, `AT+CGREG`, `AT+CEREG` (`which` 0, 1, 2).
    fn reg(&mut self, cmd: &Command, which: usize) -> Outcome {
        let name = ["+CREG", "+CGREG", "+CEREG"][which];
        match cmd.op {
            Op::Read => {
                let n = self.set.reg_n[which];
                let stat = self.reg_stats()[which];
                one(format!("{name}: {n},{}", self.reg_detail(which, stat, n)))
            }
            Op::Test => one(format!("{name}: (0-2)")),
            Op::Set => match numbers(&cmd.args).as_deref() {
                Ok([Some(v @ 0..=2)]) => {
                    self.set.reg_n[which] = *v as u8;
                    ok()
                }
                _ => fail(AtError::Cme(CME_BAD_PARAM)),
            },
            Op::Exec => fail(AtError::Plain),
        }
    }

    /// `<stat>` and, for `<n>`=2 while registered, location and access technology.
    fn reg_detail(&self, which: usize, stat: u8, n: u8) -> String {
        if n == 2 && (stat == 1 || stat == 5) {
            let act = if which == 2 { 7 } else { self.profile.act };
            format!("{stat},\"1A2B\",\"01C3D4E5\",{act}")
        } else {
            stat.to_string()
        }
    }

    /// Registration URCs for the domains whose stat changed since `before`.
    pub(super) fn registration_changed(&mut self, before: [u8; 3]) {
        let after = self.reg_stats();
        for which in 0..3 {
            let n = self.set.reg_n[which];
            if before[which] != after[which] && n >= 1 {
                let name = ["+CREG", "+CGREG", "+CEREG"][which];
                let detail = self.reg_detail(which, after[which], n);
                self.queue_urc(format!("{name}: {detail}"), None);
            }
        }
    }
}

fn is_identity(name: &str) -> bool {
    matches!(
        name,
        "+CGMI"
            | "+GMI"
            | "+CGMM"
            | "+GMM"
            | "+CGMR"
            | "+GMR"
            | "+CGSN"
            | "+GSN"
            | "+CIMI"
            | "+GCAP"
            | "+CCID"
            | "+ICCID"
            | "+CNUM"
    )
}
