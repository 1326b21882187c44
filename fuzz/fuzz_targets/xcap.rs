//! A request path with an XCAP node selector on the first line and a body
//! after it: the URI, selector and document parsers and the tree edits of
//! PUT and DELETE never panic, and documents written back read again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    smsbridge::xcap::fuzz(data);
});
