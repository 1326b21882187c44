//! MSRP (RFC 4975) for session-mode IM, over TCP only (no relays, RFC 4976).
//!
//! Sans-IO, like the rest of the protocol code:
//! - [`codec`]: one chunk (request or response) as the §9 grammar has it,
//!   parsed from its exact bytes and written back to exact bytes;
//! - [`framer`]: chunks cut out of a TCP byte stream, with hard limits on
//!   head and body sizes, so a peer can never make us buffer more than that;
//! - [`chunking`]: an outgoing message split into chunks, and incoming
//!   chunks put back together by Message-ID and Byte-Range (out of order,
//!   duplicated, or aborted with `#`), within per-session limits;
//! - [`uri`]: MSRP URIs and their comparison (§6.1).
//!
//! The TCP listener and the SIP INVITE that sets a session up live in
//! `sip::invite` and `sip::msrp_conn`.

pub mod chunking;
pub mod codec;
pub mod framer;
pub mod uri;

pub use chunking::{Limits, Outgoing, Progress, Reassembled, Reassembly, ReassemblyError};
pub use codec::{ByteRange, Chunk, Continuation, FailureReport, Kind, Method, ParseError, Status};
pub use framer::{FrameError, Framer};
pub use uri::MsrpUri;

/// The MSRP parsers for `cargo fuzz` (`fuzz/fuzz_targets/msrp.rs`): the
/// bytes as a TCP stream, cut at an offset taken from the first byte, go
/// through the framer, the chunk parser and reassembly; every chunk that
/// parses is written back and must parse to the same value. Not an API.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_header_bytes: 2048,
        max_chunk_body: 4096,
        max_message: 16384,
        max_chunks: 64,
        max_messages: 4,
    };
    let mut framer = Framer::new(limits.max_header_bytes, limits.max_chunk_body);
    let mut reassembly = Reassembly::new(limits);
    let cut = usize::from(cut).min(stream.len());
    for piece in [&stream[..cut], &stream[cut..]] {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    if let Ok(chunk) = Chunk::parse(&frame) {
                        let again = chunk.to_bytes();
                        assert_eq!(Chunk::parse(&again).as_ref(), Ok(&chunk));
                        let _ = reassembly.push(&chunk);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_entry_takes_chunks_and_junk() {
        let send = b"\x20MSRP a786hjs2 SEND\r\nTo-Path: msrp://b.example.com:1/s;tcp\r\n\
From-Path: msrp://a.example.com:2/t;tcp\r\nMessage-ID: 87652491\r\n\
Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------a786hjs2$\r\n";
        for input in [&send[..], b"", b"\x00", b"\x05MSRP x\r\n\r\n", b"\xffMSRP"] {
            super::fuzz(input);
        }
    }
}
