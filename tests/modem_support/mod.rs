//! Helpers for the in-process driver tests (`modem_driver`, `modem_recovery`):
//! the phone the simulated network answers from, and SMS-SUBMIT PDUs to send.

#![allow(dead_code)]

use smsbridge::pdu::{self, Address, Body, DataCoding, EncodeOptions, Submit, Tpdu, UserData};

/// The simulated phone.
pub const PHONE: &str = "+4915112345678";

/// The SMS-SUBMIT PDUs of `text` to `to` (concatenation reference 42).
pub fn tpdus(to: &str, text: &str, report: bool) -> Vec<Vec<u8>> {
    let template = Submit {
        reject_duplicates: false,
        status_report_request: report,
        reply_path: false,
        mr: 0,
        destination: Address::from_number(to).unwrap(),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    };
    pdu::segment(&template, text, 42, &EncodeOptions::default())
        .unwrap()
        .into_iter()
        .map(|p| {
            let mut b = Vec::new();
            Tpdu::Submit(p).encode(&mut b).unwrap();
            b
        })
        .collect()
}
