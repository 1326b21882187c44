//! A cursor over PDU octets that turns running out of input into a [`DecodeError`]
//! naming the field and its offset.

use super::error::{DecodeError, DecodeErrorKind};

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Added to every reported offset, so errors count from the start of the
    /// caller's buffer even when this reader covers only a slice of it.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Offset of the next octet, counted from the start of the caller's buffer.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn error(&self, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(field, self.offset(), kind)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(field, 1)?[0])
    }

    pub(crate) fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error(
                field,
                DecodeErrorKind::Truncated {
                    needed: n,
                    available: self.remaining(),
                },
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }
}

/// Parses a modem's hex line (either case) into octets.
pub fn from_hex(hex: &str) -> Result<Vec<u8>, DecodeError> {
    let hex = hex.trim();
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(DecodeError::new(
            "hex",
            bytes.len(),
            DecodeErrorKind::NotHex,
        ));
    }
    bytes
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(DecodeError::new("hex", i, DecodeErrorKind::NotHex)),
        })
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes octets as upper-case hex, the form modems expect after `AT+CMGS`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(from_hex("00aF").unwrap(), [0x00, 0xaf]);
        assert_eq!(to_hex(&[0x00, 0xaf]), "00AF");
        assert_eq!(from_hex("abc").unwrap_err().kind, DecodeErrorKind::NotHex);
        let e = from_hex("00zz").unwrap_err();
        assert_eq!((e.field, e.offset), ("hex", 1));
    }

    #[test]
    fn reader_reports_offset_of_short_field() {
        let mut r = Reader::new(&[1, 2, 3], 10);
        assert_eq!(r.u8("a").unwrap(), 1);
        let e = r.take("b", 5).unwrap_err();
        assert_eq!(e.offset, 11);
        assert_eq!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 5,
                available: 2
            }
        );
    }
}
