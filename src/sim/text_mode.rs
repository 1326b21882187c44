//! Text mode (`AT+CMGF=1`, TS 27.005 §4): how messages look in `+CMGR`,
//! `+CMGL`, `+CMT` and `+CDS` without `AT+CSDH=1`, and how a text typed after
//! `AT+CMGS="<da>"` becomes an SMS-SUBMIT from the `AT+CSMP` parameters, in the
//! `AT+CSCS` character set.

use super::clock::text_time;
use super::error::CMS_INVALID_TEXT;
use super::modem::SimModem;
use super::network::number_text;
use super::storage::{Slot, stat_text};
use crate::pdu::{
    Address, Alphabet, Body, DataCoding, Deliver, StatusReport, Submit, Tpdu, UserData, Validity,
    gsm7, to_hex,
};

/// `<stat>` from its text-mode name.
pub(super) fn stat_from_text(s: &str) -> Option<u8> {
    match s.to_ascii_uppercase().as_str() {
        "REC UNREAD" => Some(0),
        "REC READ" => Some(1),
        "STO UNSENT" => Some(2),
        "STO SENT" => Some(3),
        "ALL" => Some(4),
        _ => None,
    }
}

/// A string in the TE character set (`AT+CSCS`): UCS-2 as hex, else as it is.
fn te(m: &SimModem, text: &str) -> String {
    if m.set.cscs == "UCS2" {
        let units: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        to_hex(&units)
    } else {
        text.to_string()
    }
}

/// A string the TE wrote in its character set; `None` for bad UCS-2 hex.
pub(super) fn from_te(m: &SimModem, typed: &str) -> Option<String> {
    if m.set.cscs != "UCS2" {
        return Some(typed.to_string());
    }
    let hex: String = typed.split_whitespace().collect();
    let bytes = crate::pdu::from_hex(&hex).ok()?;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// A message body in the TE character set; 8-bit data as hex.
fn out_text(m: &SimModem, body: &Body) -> String {
    match body.text() {
        Some(t) => te(m, &t),
        None => to_hex(&body.octets()),
    }
}

fn number(m: &SimModem, a: &Address) -> String {
    te(m, &number_text(a))
}

pub(super) fn cmt(m: &SimModem, d: &Deliver) -> String {
    format!(
        "+CMT: \"{}\",,\"{}\"\r\n{}",
        number(m, &d.originator),
        text_time(&d.scts),
        out_text(m, &d.user_data.body)
    )
}

fn report_fields(m: &SimModem, r: &StatusReport) -> String {
    format!(
        "6,{},\"{}\",{},\"{}\",\"{}\",{}",
        r.mr,
        number(m, &r.recipient),
        r.recipient.toa,
        text_time(&r.scts),
        text_time(&r.discharge_time),
        r.status.0
    )
}

pub(super) fn cds(m: &SimModem, r: &StatusReport) -> String {
    format!("+CDS: {}", report_fields(m, r))
}

pub(super) fn cmgr(m: &SimModem, slot: &Slot) -> Vec<String> {
    let stat = stat_text(slot.stat);
    match &slot.pdu.tpdu {
        Tpdu::Deliver(d) => vec![
            format!(
                "+CMGR: \"{stat}\",\"{}\",,\"{}\"",
                number(m, &d.originator),
                text_time(&d.scts)
            ),
            out_text(m, &d.user_data.body),
        ],
        Tpdu::Submit(s) => vec![
            format!("+CMGR: \"{stat}\",\"{}\",", number(m, &s.destination)),
            out_text(m, &s.user_data.body),
        ],
        Tpdu::StatusReport(r) => vec![format!("+CMGR: \"{stat}\",{}", report_fields(m, r))],
    }
}

pub(super) fn cmgl(m: &SimModem, index: usize, slot: &Slot) -> Vec<String> {
    let stat = stat_text(slot.stat);
    match &slot.pdu.tpdu {
        Tpdu::Deliver(d) => vec![
            format!(
                "+CMGL: {index},\"{stat}\",\"{}\",,\"{}\"",
                number(m, &d.originator),
                text_time(&d.scts)
            ),
            out_text(m, &d.user_data.body),
        ],
        Tpdu::Submit(s) => vec![
            format!(
                "+CMGL: {index},\"{stat}\",\"{}\",,",
                number(m, &s.destination)
            ),
            out_text(m, &s.user_data.body),
        ],
        Tpdu::StatusReport(r) => vec![format!("+CMGL: {index},\"{stat}\",{}", report_fields(m, r))],
    }
}

/// The SMS-SUBMIT for a text typed at the prompt: one SMS (a longer text is
/// refused with 305, as modems do in text mode), `AT+CSMP` first octet, validity,
/// PID and DCS; characters outside the GSM alphabet become `?` in 7-bit coding.
pub(super) fn submit(m: &SimModem, da: Address, typed: &str) -> Result<Submit, u16> {
    let text = from_te(m, typed).ok_or(CMS_INVALID_TEXT)?;
    let [fo, vp, pid, dcs] = m.set.csmp;
    let dcs = DataCoding(dcs);
    let body = match dcs.alphabet() {
        Alphabet::Ucs2 => {
            let units: Vec<u16> = text.encode_utf16().collect();
            if units.len() > 70 {
                return Err(CMS_INVALID_TEXT);
            }
            Body::Ucs2(units)
        }
        Alphabet::Eight => {
            let data = text.into_bytes();
            if data.len() > 140 {
                return Err(CMS_INVALID_TEXT);
            }
            Body::Data(data)
        }
        Alphabet::Gsm7 => {
            let mut septets = Vec::new();
            for c in text.chars() {
                if gsm7::encode_str(&c.to_string(), &mut septets).is_err() {
                    septets.push(0x3f); // '?'
                }
            }
            if septets.len() > 160 {
                return Err(CMS_INVALID_TEXT);
            }
            Body::Gsm7 {
                septets,
                shift: gsm7::Shift::default(),
            }
        }
    };
    let validity = match (fo >> 3) & 0x03 {
        0b10 => Some(Validity::Relative(vp)),
        _ => None,
    };
    Ok(Submit {
        reject_duplicates: fo & 0x04 != 0,
        status_report_request: fo & 0x20 != 0,
        reply_path: fo & 0x80 != 0,
        mr: 0,
        destination: da,
        pid,
        dcs,
        validity,
        user_data: UserData { header: None, body },
    })
}
