//! Any octets, as a PDU with and without the SMSC field and as a hex line: the
//! decoder returns a value or an error, never panics. What decodes must encode
//! again without panicking, and the encoding must decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsbridge::pdu::{self, Pdu, Tpdu};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = pdu::decode_hex(s, true);
    }
    for decoded in [
        Pdu::decode(data).ok(),
        Tpdu::decode(data).ok().map(|tpdu| Pdu { smsc: None, tpdu }),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(ud) = decoded.tpdu.user_data() {
            let _ = ud.body.text();
            let _ = pdu::join_text([&ud.body, &ud.body]);
        }
        let mut out = Vec::new();
        if decoded.encode(&mut out).is_ok() {
            // A re-encoding may differ (spare bits, reserved flags are not kept),
            // but it must itself be a valid PDU.
            Pdu::decode(&out).expect("our own encoding decodes");
        }
    }
});
