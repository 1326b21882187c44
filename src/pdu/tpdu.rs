//! The three TPDUs a modem in PDU mode hands over or takes (TS 23.040 §9.2.2):
//! SMS-DELIVER and SMS-STATUS-REPORT from the network, SMS-SUBMIT to it (and read
//! back from modem memory), with the SMSC field that precedes them on the AT line.

use std::fmt;

use super::DecodeError;
use super::address::Address;
use super::dcs::DataCoding;
use super::error::{DecodeErrorKind, EncodeError};
use super::reader::Reader;
use super::time::{Timestamp, Validity};
use super::user_data::UserData;

const MMS_OR_RD: u8 = 0x04; // TP-MMS (deliver, report) / TP-RD (submit)
const LP: u8 = 0x08;
const SRI_SRR_SRQ: u8 = 0x20;
const UDHI: u8 = 0x40;
const RP: u8 = 0x80;

/// SMS-DELIVER: a message from the network to this modem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deliver {
    /// TP-MMS inverted: the service centre has more messages waiting.
    pub more_messages: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-RP: a reply path is set.
    pub reply_path: bool,
    /// TP-OA.
    pub originator: Address,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS.
    pub dcs: DataCoding,
    /// TP-SCTS.
    pub scts: Timestamp,
    /// TP-UD (TP-UDHI follows from its header).
    pub user_data: UserData,
}

/// SMS-SUBMIT: a message from this modem to the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Submit {
    /// TP-RD: ask the service centre to reject a duplicate (same MR and DA).
    pub reject_duplicates: bool,
    /// TP-SRR: ask for a status report.
    pub status_report_request: bool,
    /// TP-RP.
    pub reply_path: bool,
    /// TP-MR. Most modems put their own and report it in `+CMGS: <mr>`.
    pub mr: u8,
    /// TP-DA.
    pub destination: Address,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS.
    pub dcs: DataCoding,
    /// TP-VP; its presence and format set TP-VPF.
    pub validity: Option<Validity>,
    /// TP-UD.
    pub user_data: UserData,
}

/// TP-ST (§9.2.3.15). Unknown values round-trip; `Debug` prints hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

/// What a TP-ST means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The message reached the recipient (or was replaced/forwarded).
    Delivered,
    /// A temporary error; the service centre is still trying.
    StillTrying,
    /// A permanent error, or a temporary one the service centre gave up on.
    Failed,
}

impl Status {
    /// Short message received by the SME.
    pub const RECEIVED: Self = Self(0x00);
    /// Congestion, still trying.
    pub const CONGESTION: Self = Self(0x20);
    /// SME busy, still trying.
    pub const SME_BUSY: Self = Self(0x21);
    /// Validity period expired.
    pub const VALIDITY_EXPIRED: Self = Self(0x46);
    /// No response from SME, service centre stopped trying.
    pub const NO_RESPONSE_STOPPED: Self = Self(0x62);

    /// The class of this status (§9.2.3.15): 0x00–0x1F done, 0x20–0x3F still
    /// trying, everything else failed. Reserved values count as failed.
    pub fn outcome(self) -> Outcome {
        match self.0 {
            0x00..=0x1f => Outcome::Delivered,
            0x20..=0x3f => Outcome::StillTrying,
            _ => Outcome::Failed,
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status({:#04x})", self.0)
    }
}

/// SMS-STATUS-REPORT: what became of a message submitted with TP-SRR.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusReport {
    /// TP-MMS inverted.
    pub more_messages: bool,
    /// TP-LP.
    pub loop_prevention: bool,
    /// TP-SRQ: this reports on an SMS-COMMAND rather than an SMS-SUBMIT.
    pub qualifier_command: bool,
    /// TP-MR of the submitted message.
    pub mr: u8,
    /// TP-RA: the submitted message's destination.
    pub recipient: Address,
    /// TP-SCTS: when the service centre received the submitted message.
    pub scts: Timestamp,
    /// TP-DT: when the status was reached.
    pub discharge_time: Timestamp,
    /// TP-ST.
    pub status: Status,
    /// TP-PID, when TP-PI says it is present.
    pub pid: Option<u8>,
    /// TP-DCS, when TP-PI says it is present.
    pub dcs: Option<DataCoding>,
    /// TP-UD, when TP-PI says it is present.
    pub user_data: Option<UserData>,
}

/// One of the TPDUs a modem hands over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tpdu {
    /// A received message.
    Deliver(Deliver),
    /// A message to send, or one read back from modem memory.
    Submit(Submit),
    /// A status report.
    StatusReport(StatusReport),
}

/// A PDU as `AT+CMGR`, `+CMT` and `+CDS` print it: the SMSC field and a TPDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pdu {
    /// The service centre, `None` when the field is empty (`00`) or absent.
    pub smsc: Option<Address>,
    /// The TPDU.
    pub tpdu: Tpdu,
}

impl Pdu {
    /// Decodes a PDU that starts with the SMSC field.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, 0);
        let smsc = Address::decode_smsc(&mut r)?;
        let at = r.offset();
        let tpdu = Tpdu::decode_at(r.rest(), at)?;
        Ok(Self { smsc, tpdu })
    }

    /// Writes the SMSC field (`00` for the modem's default) and the TPDU. Returns the
    /// `AT+CMGS`/`AT+CMGW` length: the TPDU octets, without the SMSC field.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        match &self.smsc {
            Some(a) => a.encode_smsc(out)?,
            None => out.push(0),
        }
        let start = out.len();
        self.tpdu.encode(out)?;
        Ok(out.len() - start)
    }
}

impl Tpdu {
    /// Decodes a TPDU without the SMSC field (as `AT+CMGS` takes it when the SMSC
    /// field is left out, or with `AT+CSDH` modes that omit it).
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_at(b, 0)
    }

    fn decode_at(b: &[u8], base: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, base);
        let fo_at = r.offset();
        let fo = r.u8("TP-MTI")?;
        let flag = |bit: u8| fo & bit != 0;
        let udhi = flag(UDHI);
        match fo & 0x03 {
            0b00 => {
                let originator = Address::decode_tp(&mut r, "TP-OA")?;
                let pid = r.u8("TP-PID")?;
                let dcs = DataCoding(r.u8("TP-DCS")?);
                let scts = Timestamp::decode_lenient(&mut r, "TP-SCTS")?;
                let user_data = UserData::decode(&mut r, udhi, dcs.alphabet())?;
                Ok(Self::Deliver(Deliver {
                    more_messages: !flag(MMS_OR_RD),
                    loop_prevention: flag(LP),
                    status_report_indication: flag(SRI_SRR_SRQ),
                    reply_path: flag(RP),
                    originator,
                    pid,
                    dcs,
                    scts,
                    user_data,
                }))
            }
            0b01 => {
                let mr = r.u8("TP-MR")?;
                let destination = Address::decode_tp(&mut r, "TP-DA")?;
                let pid = r.u8("TP-PID")?;
                let dcs = DataCoding(r.u8("TP-DCS")?);
                let validity = Validity::decode(&mut r, (fo >> 3) & 0x03)?;
                let user_data = UserData::decode(&mut r, udhi, dcs.alphabet())?;
                Ok(Self::Submit(Submit {
                    reject_duplicates: flag(MMS_OR_RD),
                    status_report_request: flag(SRI_SRR_SRQ),
                    reply_path: flag(RP),
                    mr,
                    destination,
                    pid,
                    dcs,
                    validity,
                    user_data,
                }))
            }
            0b10 => {
                let mr = r.u8("TP-MR")?;
                let recipient = Address::decode_tp(&mut r, "TP-RA")?;
                let scts = Timestamp::decode_lenient(&mut r, "TP-SCTS")?;
                let discharge_time = Timestamp::decode_lenient(&mut r, "TP-DT")?;
                let status = Status(r.u8("TP-ST")?);
                let mut report = StatusReport {
                    more_messages: !flag(MMS_OR_RD),
                    loop_prevention: flag(LP),
                    qualifier_command: flag(SRI_SRR_SRQ),
                    mr,
                    recipient,
                    scts,
                    discharge_time,
                    status,
                    pid: None,
                    dcs: None,
                    user_data: None,
                };
                // TP-PI and what it announces are optional (§9.2.2.3). Extension
                // octets (bit 7) are skipped; reserved bits are ignored.
                let mut pi = if r.remaining() > 0 { r.u8("TP-PI")? } else { 0 };
                let first_pi = pi;
                while pi & 0x80 != 0 && r.remaining() > 0 {
                    pi = r.u8("TP-PI")?;
                }
                if first_pi & 0x01 != 0 {
                    report.pid = Some(r.u8("TP-PID")?);
                }
                if first_pi & 0x02 != 0 {
                    report.dcs = Some(DataCoding(r.u8("TP-DCS")?));
                }
                if first_pi & 0x04 != 0 {
                    let alphabet = report.dcs.unwrap_or(DataCoding::GSM7).alphabet();
                    report.user_data = Some(UserData::decode(&mut r, udhi, alphabet)?);
                }
                Ok(Self::StatusReport(report))
            }
            _ => Err(DecodeError::new(
                "TP-MTI",
                fo_at,
                DecodeErrorKind::ReservedMessageType,
            )),
        }
    }

    /// Writes the TPDU (no SMSC field).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        match self {
            Self::Deliver(d) => {
                let udhi = d.user_data.header.is_some();
                out.push(
                    bit(!d.more_messages, MMS_OR_RD)
                        | bit(d.loop_prevention, LP)
                        | bit(d.status_report_indication, SRI_SRR_SRQ)
                        | bit(udhi, UDHI)
                        | bit(d.reply_path, RP),
                );
                d.originator.encode_tp(out)?;
                out.push(d.pid);
                out.push(d.dcs.0);
                d.scts.encode(out);
                d.user_data.encode(out)
            }
            Self::Submit(s) => {
                let udhi = s.user_data.header.is_some();
                let vpf = s.validity.as_ref().map_or(0, Validity::vpf);
                out.push(
                    0b01 | bit(s.reject_duplicates, MMS_OR_RD)
                        | vpf << 3
                        | bit(s.status_report_request, SRI_SRR_SRQ)
                        | bit(udhi, UDHI)
                        | bit(s.reply_path, RP),
                );
                out.push(s.mr);
                s.destination.encode_tp(out)?;
                out.push(s.pid);
                out.push(s.dcs.0);
                if let Some(v) = &s.validity {
                    v.encode(out);
                }
                s.user_data.encode(out)
            }
            Self::StatusReport(s) => {
                let udhi = s.user_data.as_ref().is_some_and(|u| u.header.is_some());
                out.push(
                    0b10 | bit(!s.more_messages, MMS_OR_RD)
                        | bit(s.loop_prevention, LP)
                        | bit(s.qualifier_command, SRI_SRR_SRQ)
                        | bit(udhi, UDHI),
                );
                out.push(s.mr);
                s.recipient.encode_tp(out)?;
                s.scts.encode(out);
                s.discharge_time.encode(out);
                out.push(s.status.0);
                let pi = bit(s.pid.is_some(), 0x01)
                    | bit(s.dcs.is_some(), 0x02)
                    | bit(s.user_data.is_some(), 0x04);
                if pi != 0 {
                    out.push(pi);
                    out.extend(s.pid);
                    out.extend(s.dcs.map(|d| d.0));
                    if let Some(ud) = &s.user_data {
                        ud.encode(out)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// The user data, if this TPDU has any.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Self::Deliver(d) => Some(&d.user_data),
            Self::Submit(s) => Some(&s.user_data),
            Self::StatusReport(s) => s.user_data.as_ref(),
        }
    }
}
