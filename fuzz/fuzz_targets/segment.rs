//! Any UTF-8 text: the parts decode back to the text, each fits in one SMS, and no
//! part ends inside an escape or a surrogate pair.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsbridge::pdu::{self, Address, Body, DataCoding, EncodeOptions, Submit, Tpdu, UserData};

fuzz_target!(|input: (bool, bool, u16, &str)| {
    let (force_ucs2, wide_reference, reference, text) = input;
    let opts = EncodeOptions {
        force_ucs2,
        wide_reference,
        ..EncodeOptions::default()
    };
    let template = Submit {
        reject_duplicates: false,
        status_report_request: false,
        reply_path: false,
        mr: 0,
        destination: Address::from_number("+15551234").expect("valid number"),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    };
    let Ok(parts) = pdu::segment(&template, text, reference, &opts) else {
        return; // more than 255 parts
    };
    let mut bodies = Vec::new();
    for part in parts {
        let mut out = Vec::new();
        Tpdu::Submit(part).encode(&mut out).expect("a part fits");
        match Tpdu::decode(&out).expect("our part decodes") {
            Tpdu::Submit(s) => bodies.push(s.user_data.body),
            other => panic!("decoded as {other:?}"),
        }
    }
    for b in &bodies {
        match b {
            Body::Gsm7 { septets, .. } => assert_ne!(septets.last(), Some(&0x1b)),
            Body::Ucs2(u) => {
                assert!(!u.last().is_some_and(|c| (0xd800..0xdc00).contains(c)));
                assert!(!u.first().is_some_and(|c| (0xdc00..0xe000).contains(c)));
            }
            Body::Data(_) => panic!("text came out as data"),
        }
    }
    assert_eq!(pdu::join_text(&bodies), text);
});
