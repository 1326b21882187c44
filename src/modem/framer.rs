//! Framing of what a modem writes: lines ended by CR and/or LF, and the `> ` prompt
//! of `AT+CMGS`, which has no line end. A `tokio_util` [`Decoder`] over a byte
//! buffer; it removes only what it used and never waits forever on garbage.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// Longest line kept. A PDU line is at most ~360 hex digits; anything far longer is
/// noise (a stuck port, a modem spewing binary) and is dropped up to its line end.
pub const MAX_LINE: usize = 2048;

/// One unit of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A non-empty line, trimmed of whitespace and control characters at its ends.
    Line(String),
    /// The `> ` prompt (only recognised while one is expected).
    Prompt,
    /// A line longer than [`MAX_LINE`] was dropped.
    Overlong,
}

impl Frame {
    /// A line frame, for tests and matching.
    pub fn line(s: &str) -> Self {
        Self::Line(s.to_owned())
    }
}

/// The framer. `expect_prompt` is set by the session while it waits for `> `: a lone
/// `>` cannot be told apart from garbage otherwise.
#[derive(Debug, Default)]
pub struct AtFramer {
    /// Whether a `>` at the start of a line is the prompt.
    pub expect_prompt: bool,
    discarding: bool,
}

fn is_eol(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

impl Decoder for AtFramer {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            if self.discarding {
                match src.iter().position(|&b| is_eol(b)) {
                    Some(i) => {
                        src.advance(i + 1);
                        self.discarding = false;
                    }
                    None => {
                        src.clear();
                        return Ok(None);
                    }
                }
            }
            let skip = src.iter().take_while(|&&b| is_eol(b)).count();
            src.advance(skip);
            if src.is_empty() {
                return Ok(None);
            }
            if self.expect_prompt && src[0] == b'>' {
                src.advance(1);
                if src.first() == Some(&b' ') {
                    src.advance(1);
                }
                return Ok(Some(Frame::Prompt));
            }
            match src.iter().position(|&b| is_eol(b)) {
                Some(i) => {
                    let raw = src.split_to(i + 1);
                    let text = String::from_utf8_lossy(&raw[..i]);
                    let line = text.trim_matches(|c: char| c.is_whitespace() || c.is_control());
                    if line.is_empty() {
                        continue;
                    }
                    if line.len() > MAX_LINE {
                        return Ok(Some(Frame::Overlong));
                    }
                    return Ok(Some(Frame::Line(line.to_owned())));
                }
                None if src.len() > MAX_LINE => {
                    src.clear();
                    self.discarding = true;
                    return Ok(Some(Frame::Overlong));
                }
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]], expect_prompt: bool) -> Vec<Frame> {
        let mut f = AtFramer {
            expect_prompt,
            ..AtFramer::default()
        };
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(frame) = f.decode(&mut buf).unwrap() {
                out.push(frame);
            }
        }
        out
    }

    /// Same frames whole, cut at every point, and one byte at a time.
    fn frames_any_split(input: &[u8], expect_prompt: bool) -> Vec<Frame> {
        let whole = frames(&[input], expect_prompt);
        for i in 0..=input.len() {
            assert_eq!(
                frames(&[&input[..i], &input[i..]], expect_prompt),
                whole,
                "cut at {i}"
            );
        }
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(frames(&bytewise, expect_prompt), whole, "bytewise");
        whole
    }

    #[test] // E3372 stick mode: ^RSSI between command and final result (wdoekes/asterisk-chan-dongle#143)
    fn huawei_noise_between_response_and_ok() {
        assert_eq!(
            frames_any_split(b"\r\n^RSSI:26\r\n\r\n+CSQ: 28,99\r\n\r\nOK\r\n", false),
            [
                Frame::line("^RSSI:26"),
                Frame::line("+CSQ: 28,99"),
                Frame::line("OK")
            ]
        );
    }

    #[test] // gammu#438: echo, then the prompt with no line end
    fn echo_then_prompt_without_line_end() {
        assert_eq!(
            frames_any_split(b"AT+CMGS=18\r\r\n> ", true),
            [Frame::line("AT+CMGS=18"), Frame::Prompt]
        );
        // warthog618/modem mocks answer "\n>" without the space.
        assert_eq!(frames(&[b"\n>"], true), [Frame::Prompt]);
        // Not expected: a '>' is just a line.
        assert_eq!(frames(&[b"\r\n> x\r\n"], false), [Frame::line("> x")]);
    }

    #[test]
    fn two_line_urc_and_echoed_pdu() {
        assert_eq!(
            frames_any_split(
                b"\r\n+CMT: ,23\r\n07918497483252F0\r\n0011AB\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n",
                false
            ),
            [
                Frame::line("+CMT: ,23"),
                Frame::line("07918497483252F0"),
                Frame::line("0011AB"),
                Frame::line("+CMGS: 7"),
                Frame::line("OK")
            ]
        );
    }

    #[test]
    fn overlong_garbage_is_dropped_up_to_its_line_end() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\r\nOK\r\n");
        let got = frames(&[&input], false);
        assert_eq!(got, [Frame::Overlong, Frame::line("OK")]);
        let got = frames(&[&input[..MAX_LINE + 1], &input[MAX_LINE + 1..]], false);
        assert_eq!(got, [Frame::Overlong, Frame::line("OK")]);
    }

    #[test]
    fn invalid_utf8_and_control_bytes_do_not_wedge() {
        assert_eq!(
            frames(&[b"\xff\xfe\x00\r\n\x1b\r\nOK\r\n"], false),
            [Frame::line("\u{fffd}\u{fffd}"), Frame::line("OK")]
        );
    }
}
