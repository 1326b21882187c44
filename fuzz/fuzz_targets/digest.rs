//! Any text as a SIP digest Authorization value: parsing and verification
//! never panic, and credentials never pass twice.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (flags, data) = input;
    smsbridge::sip::fuzz::digest(flags, data);
});
