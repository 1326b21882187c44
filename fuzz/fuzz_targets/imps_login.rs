//! Any bytes as IMPS Login requests from a few addresses: never a panic, never
//! a session for an unknown user, pending nonces within their cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (flags, data) = input;
    smsbridge::imps::fuzz::login(flags, data);
});
