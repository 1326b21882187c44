//! TS 27.005 commands: message format, service centre, message service, storage
//! (`AT+CPMS`, `AT+CMGR`, `AT+CMGL`, `AT+CMGD`, `AT+CMGW`), indications
//! (`AT+CNMI`, `AT+CNMA`) and sending (`AT+CMGS`), with the checks a real modem
//! makes on a PDU before it lets it go.

use std::time::Instant;

use super::config::SimQuirk;
use super::error::*;
use super::line::{Command, Op, numbers, params};
use super::modem::{Entry, EntryKind, Outcome, SendJob, SimModem};
use super::storage::{Mem, REC_READ, REC_UNREAD, STO_UNSENT, Slot};
use super::text_mode;
use crate::pdu::{Address, Alphabet, DataCoding, Pdu, Tpdu, from_hex, to_hex};

fn ok() -> Outcome {
    Outcome::Info(Vec::new())
}

fn one(l: String) -> Outcome {
    Outcome::Info(vec![l])
}

fn cms(code: u16) -> Outcome {
    Outcome::Fail(AtError::Cms(code))
}

/// Longest TPDU `AT+CMGS`/`AT+CMGW` accept (an SMS-SUBMIT is at most 164 octets).
const MAX_TPDU: u32 = 176;

impl SimModem {
    /// The SMS commands; `None` when `cmd` is not one of them.
    pub(super) fn dispatch_sms(&mut self, now: Instant, cmd: &Command) -> Option<Outcome> {
        let needs_sim = matches!(
            cmd.name.as_str(),
            "+CSCA" | "+CPMS" | "+CMGR" | "+CMGL" | "+CMGD" | "+CMGS" | "+CMGW" | "+CNMA"
        );
        if needs_sim
            && cmd.op != Op::Test
            && let Err(e) = self.sim_cms()
        {
            return Some(Outcome::Fail(e));
        }
        let out = match cmd.name.as_str() {
            "+CMGF" => self.cmgf(cmd),
            "+CSCA" => self.csca(cmd),
            "+CSMS" => self.csms(cmd),
            "+CSMP" => self.csmp(cmd),
            "+CSDH" => simple(cmd, "+CSDH", "(0,1)"),
            "+CMMS" => simple(cmd, "+CMMS", "(0-2)"),
            "+CPMS" => self.cpms(now, cmd),
            "+CNMI" => self.cnmi(now, cmd),
            "+CNMA" => self.cnma(now, cmd),
            "+CMGR" => self.cmgr(cmd),
            "+CMGL" => self.cmgl(cmd),
            "+CMGD" => self.cmgd(now, cmd),
            "+CMGS" => self.cmgs(cmd),
            "+CMGW" => self.cmgw(cmd),
            _ => return None,
        };
        Some(out)
    }

    fn cmgf(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => one(format!("+CMGF: {}", self.set.cmgf)),
            Op::Test => one("+CMGF: (0,1)".into()),
            Op::Set => match numbers(&cmd.args).as_deref() {
                Ok([Some(v @ 0..=1)]) => {
                    self.set.cmgf = *v as u8;
                    ok()
                }
                _ => cms(CMS_NOT_SUPPORTED),
            },
            Op::Exec => {
                self.set.cmgf = 0;
                ok()
            }
        }
    }

    fn csca(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => {
                let toa = if self.smsc.starts_with('+') { 145 } else { 129 };
                one(format!("+CSCA: \"{}\",{toa}", self.smsc))
            }
            Op::Set => {
                let ps = params(&cmd.args);
                match ps.first() {
                    Some(p) if Address::from_number(&p.text).is_ok() => {
                        self.smsc = p.text.clone();
                        ok()
                    }
                    _ => cms(CMS_NOT_ALLOWED),
                }
            }
            Op::Test => ok(),
            Op::Exec => Outcome::Fail(AtError::Plain),
        }
    }

    fn csms(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => one(format!("+CSMS: {},1,1,1", self.set.csms)),
            Op::Test => one("+CSMS: (0,1)".into()),
            Op::Set => match numbers(&cmd.args).as_deref() {
                Ok([Some(v @ 0..=1)]) => {
                    self.set.csms = *v as u8;
                    one("+CSMS: 1,1,1".into())
                }
                _ => cms(CMS_NOT_SUPPORTED),
            },
            Op::Exec => Outcome::Fail(AtError::Plain),
        }
    }

    fn csmp(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Read => {
                let [fo, vp, pid, dcs] = self.set.csmp;
                one(format!("+CSMP: {fo},{vp},{pid},{dcs}"))
            }
            Op::Set => match numbers(&cmd.args) {
                Ok(v) if v.len() <= 4 && v.iter().flatten().all(|x| *x <= 255) => {
                    for (i, x) in v.iter().enumerate() {
                        if let Some(x) = x {
                            self.set.csmp[i] = *x as u8;
                        }
                    }
                    ok()
                }
                _ => cms(CMS_INVALID_TEXT),
            },
            Op::Test => ok(),
            Op::Exec => Outcome::Fail(AtError::Plain),
        }
    }

    fn cpms_counts(&self, mems: &[Mem]) -> String {
        mems.iter()
            .map(|m| format!("{},{}", self.store.used(*m), self.store.total(*m)))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn cpms(&mut self, now: Instant, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Test if self.quirk(SimQuirk::ReceiveMeOnly) => {
                one("+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"ME\")".into())
            }
            Op::Test => one("+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")".into()),
            Op::Read => {
                let parts: Vec<String> = self
                    .set
                    .mems
                    .iter()
                    .map(|m| {
                        let c = self.cpms_counts(&[*m]);
                        format!("\"{}\",{c}", m.name())
                    })
                    .collect();
                one(format!("+CPMS: {}", parts.join(",")))
            }
            Op::Set => {
                let ps = params(&cmd.args);
                if ps.is_empty() || ps.len() > 3 {
                    return cms(CMS_NOT_ALLOWED);
                }
                let mut mems = self.set.mems;
                for (i, p) in ps.iter().enumerate() {
                    if p.is_empty() {
                        continue;
                    }
                    match Mem::parse(&p.text) {
                        Some(Mem::Sr) if i > 0 => return cms(CMS_NOT_ALLOWED),
                        Some(Mem::Sm) if i == 2 && self.quirk(SimQuirk::ReceiveMeOnly) => {
                            return cms(CMS_NOT_ALLOWED);
                        }
                        Some(m) => mems[i] = m,
                        None => return cms(CMS_NOT_ALLOWED),
                    }
                }
                self.set.mems = mems;
                self.retry_held(now);
                one(format!("+CPMS: {}", self.cpms_counts(&mems)))
            }
            Op::Exec => Outcome::Fail(AtError::Plain),
        }
    }

    fn cnmi(&mut self, now: Instant, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Test => one(self.profile.cnmi_test.into()),
            Op::Read => {
                let c = self.set.cnmi;
                one(format!(
                    "+CNMI: {},{},{},{},{}",
                    c[0], c[1], c[2], c[3], c[4]
                ))
            }
            Op::Set => {
                let Ok(v) = numbers(&cmd.args) else {
                    return cms(CMS_NOT_SUPPORTED);
                };
                if v.len() > 5 {
                    return cms(CMS_NOT_SUPPORTED);
                }
                let mut new = [0u8; 5];
                for (i, x) in v.iter().enumerate() {
                    let x = x.unwrap_or(0);
                    match u8::try_from(x) {
                        Ok(x) if self.profile.cnmi[i].contains(&x) => new[i] = x,
                        _ => return cms(CMS_NOT_SUPPORTED),
                    }
                }
                let was_buffering = self.set.cnmi[0] == 0;
                self.set.cnmi = new;
                if was_buffering && new[0] != 0 {
                    // <bfr> 0 flushes the TA buffer, 1 clears it (TS 27.005 §3.4.1).
                    if new[4] == 0 {
                        let buffered: Vec<_> = self.tabuf.drain(..).collect();
                        self.urcs.extend(buffered);
                    } else {
                        for u in self.tabuf.drain(..).collect::<Vec<_>>() {
                            if let Some(mt) = u.ack {
                                self.net.hold(mt);
                            }
                        }
                    }
                }
                self.retry_held(now);
                ok()
            }
            Op::Exec => Outcome::Fail(AtError::Plain),
        }
    }

    fn cnma(&mut self, now: Instant, cmd: &Command) -> Outcome {
        if cmd.op == Op::Test {
            return one("+CNMA: (0-2)".into());
        }
        if cmd.op == Op::Read || self.set.csms != 1 || self.ack.is_none() {
            return cms(CMS_NO_CNMA_EXPECTED);
        }
        let negative =
            cmd.op == Op::Set && matches!(numbers(&cmd.args).as_deref(), Ok([Some(2), ..]));
        if self.profile.cnma_prompt && !negative {
            return Outcome::Prompt(EntryKind::Cnma);
        }
        if negative {
            if let Some(w) = self.ack.take() {
                self.note(now, "routed message rejected with AT+CNMA=2".into());
                self.net.hold(w.mt);
            }
        } else {
            self.acknowledge(now);
        }
        ok()
    }

    /// The 0-based slot of an `<index>` in `mem`, or `+CMS ERROR: 321`.
    fn slot_index(&self, mem: Mem, index: u32) -> Result<usize, AtError> {
        let base = self.index_base();
        let i = (index as usize)
            .checked_sub(base)
            .filter(|i| *i < self.store.total(mem));
        i.ok_or(AtError::Cms(CMS_INVALID_INDEX))
    }

    fn cmgr(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Test => return ok(),
            Op::Set => {}
            _ => return Outcome::Fail(AtError::Plain),
        }
        let mem = self.set.mems[0];
        if mem == Mem::Sr && self.profile.sr_unreadable {
            return cms(CMS_INVALID_INDEX);
        }
        let index = match numbers(&cmd.args).as_deref() {
            Ok([Some(i)]) => *i,
            _ => return cms(CMS_INVALID_INDEX),
        };
        let i = match self.slot_index(mem, index) {
            Ok(i) => i,
            Err(e) => return Outcome::Fail(e),
        };
        let text_mode = self.set.cmgf == 1;
        let Some(Some(slot)) = self.store.get_mut(mem, i) else {
            return ok();
        };
        let shown = slot.clone();
        if slot.stat == REC_UNREAD {
            slot.stat = REC_READ;
        }
        if text_mode {
            return Outcome::Info(text_mode::cmgr(self, &shown));
        }
        Outcome::Info(vec![
            format!("+CMGR: {},,{}", shown.stat, shown.tpdu_len),
            to_hex(&shown.bytes),
        ])
    }

    fn cmgl(&mut self, cmd: &Command) -> Outcome {
        let text_mode = self.set.cmgf == 1;
        if cmd.op == Op::Test {
            return one(if text_mode {
                "+CMGL: (\"REC UNREAD\",\"REC READ\",\"STO UNSENT\",\"STO SENT\",\"ALL\")".into()
            } else {
                "+CMGL: (0-4)".into()
            });
        }
        let wanted: u8 = match (cmd.op, text_mode) {
            (Op::Exec, _) => 0,
            (Op::Set, false) => match numbers(&cmd.args).as_deref() {
                Ok([Some(s @ 0..=4)]) => *s as u8,
                _ => return cms(CMS_INVALID_PDU),
            },
            (Op::Set, true) => {
                let ps = params(&cmd.args);
                match ps.first().map(|p| text_mode::stat_from_text(&p.text)) {
                    Some(Some(s)) => s,
                    _ => return cms(CMS_INVALID_TEXT),
                }
            }
            _ => return Outcome::Fail(AtError::Plain),
        };
        let mem = self.set.mems[0];
        let base = self.index_base();
        let mut shown = Vec::new();
        for i in 0..self.store.total(mem) {
            if let Some(Some(slot)) = self.store.get_mut(mem, i)
                && (wanted == 4 || slot.stat == wanted)
            {
                shown.push((i + base, slot.clone()));
                if slot.stat == REC_UNREAD {
                    slot.stat = REC_READ;
                }
            }
        }
        let mut lines = Vec::new();
        for (index, slot) in shown {
            if text_mode {
                lines.extend(text_mode::cmgl(self, index, &slot));
            } else {
                lines.push(format!("+CMGL: {index},{},,{}", slot.stat, slot.tpdu_len));
                lines.push(to_hex(&slot.bytes));
            }
        }
        Outcome::Info(lines)
    }

    fn cmgd(&mut self, now: Instant, cmd: &Command) -> Outcome {
        let mem = self.set.mems[0];
        if cmd.op == Op::Test {
            let base = self.index_base();
            let last = (self.store.total(mem) + base).saturating_sub(1);
            return one(format!("+CMGD: ({base}-{last}),(0-4)"));
        }
        let v = match (cmd.op, numbers(&cmd.args)) {
            (Op::Set, Ok(v)) if !v.is_empty() && v.len() <= 2 => v,
            _ => return cms(CMS_INVALID_INDEX),
        };
        let flag = v.get(1).copied().flatten().unwrap_or(0);
        let deleted = match flag {
            0 => {
                let i = match self.slot_index(mem, v[0].unwrap_or(u32::MAX)) {
                    Ok(i) => i,
                    Err(e) => return Outcome::Fail(e),
                };
                if let Some(s) = self.store.get_mut(mem, i) {
                    *s = None;
                }
                1
            }
            1 => self.store.delete_where(mem, |s| s == REC_READ),
            2 => self.store.delete_where(mem, |s| s == REC_READ || s == 3),
            3 => self.store.delete_where(mem, |s| s != REC_UNREAD),
            4 => self.store.delete_where(mem, |_| true),
            _ => return cms(CMS_INVALID_INDEX),
        };
        if deleted > 0 {
            self.retry_held(now);
        }
        ok()
    }

    fn cmgs(&mut self, cmd: &Command) -> Outcome {
        match cmd.op {
            Op::Test => return ok(),
            Op::Set => {}
            _ => return Outcome::Fail(AtError::Plain),
        }
        if self.set.cmgf == 1 {
            let ps = params(&cmd.args);
            let da = ps
                .first()
                .and_then(|p| text_mode::from_te(self, &p.text))
                .and_then(|n| Address::from_number(&n).ok());
            return match da {
                Some(da) => Outcome::Prompt(EntryKind::SendText { da }),
                None => cms(CMS_INVALID_TEXT),
            };
        }
        match numbers(&cmd.args).as_deref() {
            Ok([Some(len @ 1..=MAX_TPDU)]) => {
                Outcome::Prompt(EntryKind::SendPdu { len: *len as usize })
            }
            _ => cms(CMS_INVALID_PDU),
        }
    }

    fn cmgw(&mut self, cmd: &Command) -> Outcome {
        if cmd.op == Op::Test {
            return ok();
        }
        if self.set.cmgf == 1 {
            let ps = params(&cmd.args);
            let da = match ps.first().filter(|p| !p.is_empty()) {
                None => None,
                Some(p) => match text_mode::from_te(self, &p.text)
                    .and_then(|n| Address::from_number(&n).ok())
                {
                    Some(a) => Some(a),
                    None => return cms(CMS_INVALID_TEXT),
                },
            };
            let stat = ps
                .get(2)
                .and_then(|p| text_mode::stat_from_text(&p.text))
                .unwrap_or(STO_UNSENT);
            return Outcome::Prompt(EntryKind::WriteText { da, stat });
        }
        match numbers(&cmd.args).as_deref() {
            Ok([Some(len @ 1..=MAX_TPDU), rest @ ..]) if rest.len() <= 1 => {
                let stat = rest
                    .first()
                    .copied()
                    .flatten()
                    .unwrap_or(u32::from(STO_UNSENT));
                match u8::try_from(stat) {
                    Ok(stat @ 0..=3) => Outcome::Prompt(EntryKind::WritePdu {
                        len: *len as usize,
                        stat,
                    }),
                    _ => cms(CMS_INVALID_PDU),
                }
            }
            _ => cms(CMS_INVALID_PDU),
        }
    }

    /// Ctrl-Z at a prompt: what was typed is checked and sent, stored or taken as
    /// an acknowledgement.
    pub(super) fn complete_entry(&mut self, now: Instant, entry: Entry) {
        match entry.kind {
            EntryKind::SendPdu { len } => match check_pdu(&entry.buf, len, true) {
                Ok(pdu) => {
                    let Tpdu::Submit(submit) = pdu.tpdu else {
                        return self.final_result(Some(AtError::Cms(CMS_INVALID_PDU)));
                    };
                    let hex: String = entry.buf.split_whitespace().collect();
                    let job = SendJob {
                        submit,
                        smsc: pdu.smsc,
                        hex,
                    };
                    self.start_send(now, job);
                }
                Err(code) => self.final_result(Some(AtError::Cms(code))),
            },
            EntryKind::SendText { da } => match text_mode::submit(self, da, &entry.buf) {
                Ok(submit) => {
                    let pdu = Pdu {
                        smsc: None,
                        tpdu: Tpdu::Submit(submit.clone()),
                    };
                    let mut bytes = Vec::new();
                    if pdu.encode(&mut bytes).is_err() {
                        return self.final_result(Some(AtError::Cms(CMS_INVALID_TEXT)));
                    }
                    let job = SendJob {
                        submit,
                        smsc: None,
                        hex: to_hex(&bytes),
                    };
                    self.start_send(now, job);
                }
                Err(code) => self.final_result(Some(AtError::Cms(code))),
            },
            EntryKind::WritePdu { len, stat } => match check_pdu(&entry.buf, len, false) {
                Ok(pdu) => self.write_slot(stat, pdu),
                Err(code) => self.final_result(Some(AtError::Cms(code))),
            },
            EntryKind::WriteText { da, stat } => {
                let da = da.unwrap_or(Address {
                    toa: crate::pdu::TOA_UNKNOWN,
                    value: String::new(),
                });
                match text_mode::submit(self, da, &entry.buf) {
                    Ok(submit) => self.write_slot(
                        stat,
                        Pdu {
                            smsc: None,
                            tpdu: Tpdu::Submit(submit),
                        },
                    ),
                    Err(code) => self.final_result(Some(AtError::Cms(code))),
                }
            }
            EntryKind::Cnma => {
                self.acknowledge(now);
                self.final_result(None);
            }
        }
    }

    fn write_slot(&mut self, stat: u8, pdu: Pdu) {
        let mem = self.set.mems[1];
        let stored = Slot::new(stat, pdu).and_then(|s| self.store.store(mem, s));
        match stored {
            Some(i) => {
                self.info(&[format!("+CMGW: {}", i + self.index_base())]);
                self.final_result(None);
            }
            None => self.final_result(Some(AtError::Cms(CMS_MEMORY_FULL))),
        }
    }
}

/// `+CSDH`-like commands with nothing behind them.
fn simple(cmd: &Command, name: &str, range: &str) -> Outcome {
    match cmd.op {
        Op::Read => one(format!("{name}: 0")),
        Op::Test => one(format!("{name}: {range}")),
        _ => ok(),
    }
}

/// The checks a modem makes on a PDU typed after `AT+CMGS=<len>`: hex, the SMSC
/// field, `<len>` equal to the TPDU octets (304), a TPDU our decoder takes (304),
/// and for an SMS-SUBMIT exactly as many user-data octets as TP-UDL announces:
/// our decoder ignores trailing octets, a modem's lower layer does not (513).
fn check_pdu(typed: &str, len: usize, submit_only: bool) -> Result<Pdu, u16> {
    let hex: String = typed.split_whitespace().collect();
    let bytes = from_hex(&hex).map_err(|_| CMS_INVALID_PDU)?;
    let sca = usize::from(*bytes.first().ok_or(CMS_INVALID_PDU)?);
    let tpdu = bytes.get(1 + sca..).ok_or(CMS_INVALID_PDU)?;
    if tpdu.len() != len {
        return Err(CMS_INVALID_PDU);
    }
    let pdu = Pdu::decode(&bytes).map_err(|_| CMS_INVALID_PDU)?;
    match &pdu.tpdu {
        Tpdu::Submit(_) => {
            if submit_end(tpdu).is_some_and(|end| tpdu.len() > end) {
                return Err(CMS_UD_OVERRUN);
            }
        }
        Tpdu::Deliver(_) if !submit_only => {}
        _ => return Err(CMS_INVALID_PDU),
    }
    Ok(pdu)
}

/// Where an SMS-SUBMIT's user data should end, from its own length fields.
fn submit_end(t: &[u8]) -> Option<usize> {
    let fo = *t.first()?;
    let digits = usize::from(*t.get(2)?);
    let mut at = 2 + 2 + digits.div_ceil(2); // FO, MR, DA length, TOA, digits
    let dcs = DataCoding(*t.get(at + 1)?);
    at += 2; // PID, DCS
    at += match (fo >> 3) & 0x03 {
        0b00 => 0,
        0b10 => 1,
        _ => 7,
    };
    let udl = usize::from(*t.get(at)?);
    let octets = match dcs.alphabet() {
        Alphabet::Gsm7 => (udl * 7).div_ceil(8),
        _ => udl,
    };
    Some(at + 1 + octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdu_checks() {
        // gammu's PDU from toolchain.md §4.
        let good = "079144872000302311000B915155214365F70000FF05E8329BFD06";
        assert!(check_pdu(good, 19, true).is_ok());
        assert_eq!(check_pdu(good, 18, true).err(), Some(CMS_INVALID_PDU));
        assert_eq!(
            check_pdu(&format!("{good}00"), 20, true).err(),
            Some(CMS_UD_OVERRUN)
        );
        assert_eq!(check_pdu("0011", 1, true).err(), Some(CMS_INVALID_PDU));
        assert_eq!(check_pdu("zz", 0, true).err(), Some(CMS_INVALID_PDU));
        assert_eq!(check_pdu("", 0, true).err(), Some(CMS_INVALID_PDU));
        // An SMS-DELIVER is not something to send.
        let deliver =
            "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
        assert_eq!(check_pdu(deliver, 30, true).err(), Some(CMS_INVALID_PDU));
    }
}
