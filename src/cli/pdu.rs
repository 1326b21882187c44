//! `smsbridge pdu decode|encode`: the codec from a shell, for checking what a modem
//! printed or preparing what to send it by hand.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::pdu::{
    self, Address, Alphabet, Body, DataCoding, EncodeOptions, Pdu, Submit, Tpdu, UserData,
    UserDataHeader, Validity,
};

#[derive(Debug, Subcommand)]
pub(super) enum PduCommand {
    /// Decode a PDU as `AT+CMGR`/`+CMT`/`+CDS` print it.
    Decode(DecodeArgs),
    /// Encode a text as SMS-SUBMIT parts; prints `<AT+CMGS length> <HEX>` per part.
    Encode(EncodeArgs),
}

#[derive(Debug, Args)]
pub(super) struct DecodeArgs {
    /// The PDU in hex.
    hex: String,
    /// The hex has no SMSC field in front of the TPDU.
    #[arg(long)]
    no_smsc: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct EncodeArgs {
    /// Recipient: `+` and digits (international) or digits (national, short code).
    #[arg(long)]
    to: String,
    /// Service centre number to put in the PDU (default: the modem's, field `00`).
    #[arg(long)]
    smsc: Option<String>,
    /// Request a status report.
    #[arg(long)]
    report: bool,
    /// Send as a flash message (class 0).
    #[arg(long)]
    flash: bool,
    /// Relative validity period, e.g. `30m`, `24h`, `3days`, `5weeks`.
    #[arg(long, value_parser = humantime::parse_duration)]
    validity: Option<Duration>,
    /// Encode in UCS-2 even if the text fits the GSM 7-bit alphabet.
    #[arg(long)]
    ucs2: bool,
    /// Concatenation reference for multipart texts (default: derived from the clock).
    #[arg(long, value_parser = clap::value_parser!(u8))]
    concat_ref: Option<u8>,
    /// TP-MR of the first part; later parts count up (modems usually set their own).
    #[arg(long, default_value_t = 0)]
    mr: u8,
    /// The text to send.
    text: String,
}

impl PduCommand {
    pub(super) fn run(self) -> ExitCode {
        match self {
            Self::Decode(args) => decode(&args),
            Self::Encode(args) => encode(&args),
        }
    }
}

fn decode(args: &DecodeArgs) -> ExitCode {
    let pdu = match pdu::decode_hex(&args.hex, !args.no_smsc) {
        Ok(p) => p,
        Err(e) => return super::invalid_input(format_args!("invalid PDU: {e}")),
    };
    let fields = describe(&pdu);
    if args.json {
        println!("{}", Value::Object(fields));
    } else {
        for (k, v) in &fields {
            match v {
                Value::Null => {}
                Value::Array(a) if a.is_empty() => {}
                Value::String(s) => println!("{k}: {s}"),
                other => println!("{k}: {other}"),
            }
        }
    }
    ExitCode::SUCCESS
}

/// The decoded fields under the names `--json` documents, in reading order.
fn describe(pdu: &Pdu) -> Map<String, Value> {
    let mut m = Map::new();
    let address = |a: &Address| json!(a.to_string());
    let kind = match &pdu.tpdu {
        Tpdu::Deliver(_) => "deliver",
        Tpdu::Submit(_) => "submit",
        Tpdu::StatusReport(_) => "status-report",
    };
    m.insert("type".into(), json!(kind));
    m.insert(
        "smsc".into(),
        pdu.smsc.as_ref().map_or(Value::Null, address),
    );
    let coding = match &pdu.tpdu {
        Tpdu::Deliver(d) => {
            m.insert("from".into(), address(&d.originator));
            m.insert("timestamp".into(), json!(d.scts.to_string()));
            Some((d.dcs, d.pid, &d.user_data))
        }
        Tpdu::Submit(s) => {
            m.insert("to".into(), address(&s.destination));
            m.insert("mr".into(), json!(s.mr));
            m.insert(
                "status_report_request".into(),
                json!(s.status_report_request),
            );
            let validity = match s.validity {
                Some(Validity::Relative(vp)) => {
                    json!(humantime::format_duration(Validity::relative_duration(vp)).to_string())
                }
                Some(Validity::Absolute(ts)) => json!(ts.to_string()),
                Some(Validity::Enhanced(raw)) => json!(pdu::to_hex(&raw)),
                None => Value::Null,
            };
            m.insert("validity".into(), validity);
            Some((s.dcs, s.pid, &s.user_data))
        }
        Tpdu::StatusReport(r) => {
            m.insert("mr".into(), json!(r.mr));
            m.insert("recipient".into(), address(&r.recipient));
            m.insert("timestamp".into(), json!(r.scts.to_string()));
            m.insert("discharge_time".into(), json!(r.discharge_time.to_string()));
            m.insert("status".into(), json!(r.status.0));
            let outcome = match r.status.outcome() {
                pdu::Outcome::Delivered => "delivered",
                pdu::Outcome::StillTrying => "still-trying",
                pdu::Outcome::Failed => "failed",
            };
            m.insert("outcome".into(), json!(outcome));
            r.user_data
                .as_ref()
                .map(|ud| (r.dcs.unwrap_or(DataCoding::GSM7), r.pid.unwrap_or(0), ud))
        }
    };
    if let Some((dcs, pid, ud)) = coding {
        m.insert("pid".into(), json!(pid));
        m.insert("dcs".into(), json!(dcs.0));
        m.insert("class".into(), json!(dcs.class()));
        describe_user_data(&mut m, ud);
    }
    m
}

fn describe_user_data(m: &mut Map<String, Value>, ud: &UserData) {
    m.insert("encoding".into(), json!(ud.body.alphabet().name()));
    m.insert("text".into(), json!(ud.body.text()));
    if let Body::Data(d) = &ud.body {
        m.insert("data".into(), json!(pdu::to_hex(d)));
    }
    let concat = ud
        .concat()
        .map(|c| json!({"ref": c.reference, "total": c.total, "seq": c.seq}));
    m.insert("concat".into(), concat.unwrap_or(Value::Null));
    let udh: Vec<Value> = ud
        .header
        .iter()
        .flat_map(|h: &UserDataHeader| &h.elements)
        .map(|e| json!({"iei": e.iei, "data": pdu::to_hex(&e.data)}))
        .collect();
    m.insert("udh".into(), json!(udh));
}

fn encode(args: &EncodeArgs) -> ExitCode {
    match encode_lines(args) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::invalid_input(e),
    }
}

fn encode_lines(args: &EncodeArgs) -> Result<Vec<String>, pdu::EncodeError> {
    let destination = Address::from_number(&args.to)?;
    let smsc = args.smsc.as_deref().map(Address::from_number).transpose()?;
    let template = Submit {
        reject_duplicates: false,
        status_report_request: args.report,
        reply_path: false,
        mr: args.mr,
        destination,
        pid: 0,
        dcs: DataCoding::new(Alphabet::Gsm7, args.flash.then_some(0)),
        validity: args.validity.map(Validity::relative),
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    };
    let opts = EncodeOptions {
        force_ucs2: args.ucs2,
        ..EncodeOptions::default()
    };
    let reference = args.concat_ref.map_or_else(clock_reference, u16::from);
    let parts = pdu::segment(&template, &args.text, reference, &opts)?;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, mut part)| {
            part.mr = args.mr.wrapping_add(i as u8);
            let pdu = Pdu {
                smsc: smsc.clone(),
                tpdu: Tpdu::Submit(part),
            };
            let mut out = Vec::new();
            let len = pdu.encode(&mut out)?;
            Ok(format!("{len} {}", pdu::to_hex(&out)))
        })
        .collect()
}

/// A concatenation reference that differs between runs, for one-off CLI sends.
fn clock_reference() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos >> 10) as u16 & 0xff
}
