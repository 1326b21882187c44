//! Any octets as a CSP message body: the XML reader and the envelope parser
//! return a message or an error, never panic. A message that parses is written
//! back with the CSP writer, and that output must parse again to the same
//! primitive (escaping round-trips).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsbridge::imps::csp::{self, Mode, Outgoing};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = csp::parse(data) else { return };
    let out = csp::encode(&Outgoing {
        session_id: m.session_id.clone(),
        transaction_id: m.transaction_id.clone(),
        mode: Mode::Response,
        poll: false,
        primitive: m.primitive.clone(),
    });
    // Deeper than the limit once wrapped: the re-read may refuse; never panic.
    if let Ok(again) = csp::parse(&out) {
        assert_eq!(again.primitive.name, m.primitive.name);
    }
});
