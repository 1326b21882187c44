//! Any bytes as an MSRP TCP stream, delivered in two reads: the framer, the
//! chunk parser and reassembly never panic, and every chunk that parses is
//! written back to bytes that parse to the same chunk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    smsbridge::msrp::fuzz(data);
});
