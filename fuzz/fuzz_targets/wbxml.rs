//! Any octets as a WV-CSP WBXML body: the decoder returns a document or an
//! error, never panics, and stays within its limits; a document that decodes
//! is written back and must read back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    smsbridge::imps::fuzz::wbxml(data);
});
