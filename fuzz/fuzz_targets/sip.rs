//! Any bytes as a SIP datagram or TCP stream, from a stranger or a trusted
//! peer: framer, screen, rsipstack's parse and the request handler never
//! panic, and every answer is a SIP response that parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (flags, data) = input;
    smsbridge::sip::fuzz::input(flags, data);
});
