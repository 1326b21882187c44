//! Addresses (TS 23.040 §9.1.2.5): the SMSC field, whose length counts octets, and
//! TP-OA/TP-DA/TP-RA, whose length counts semi-octets, with digits as swapped
//! semi-octets (§9.1.2.3) or, for alphanumeric originators, packed GSM 7-bit.

use std::fmt;

use super::DecodeError;
use super::error::{DecodeErrorKind, EncodeError};
use super::gsm7;
use super::reader::Reader;

/// Type of address: international number, ISDN/telephone numbering plan.
pub const TOA_INTERNATIONAL: u8 = 0x91;
/// Type of address: unknown type of number, ISDN numbering plan.
pub const TOA_UNKNOWN: u8 = 0x81;
/// Type of address: national number, ISDN numbering plan.
pub const TOA_NATIONAL: u8 = 0xA1;
/// Type of address: alphanumeric (GSM 7-bit), as used by named senders.
pub const TOA_ALPHANUMERIC: u8 = 0xD0;

/// At most 20 digits fit in a TP address (10 value octets).
const MAX_DIGITS: usize = 20;

/// An address with its type-of-address octet. `value` holds the digits (with `*`,
/// `#`, `a`–`c` where the number has them) or, for an alphanumeric address, the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The type-of-address octet (TON in bits 6..4, NPI in bits 3..0, bit 7 set).
    pub toa: u8,
    /// Digits, or the decoded text of an alphanumeric address.
    pub value: String,
}

impl Address {
    /// A number as a user writes it: `+` and digits is international, bare digits
    /// are of unknown type (national numbers and short codes). Spaces, dashes, dots
    /// and parentheses are ignored.
    pub fn from_number(number: &str) -> Result<Self, EncodeError> {
        let invalid = |why| EncodeError::InvalidAddress(number.to_owned(), why);
        let trimmed = number.trim();
        let (toa, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (TOA_INTERNATIONAL, rest),
            None => (TOA_UNKNOWN, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' | '*' | '#' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(invalid("only digits, * and # may follow an optional +")),
            }
        }
        if digits.is_empty() {
            return Err(invalid("no digits"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(invalid("more than 20 digits"));
        }
        Ok(Self { toa, value: digits })
    }

    /// An alphanumeric address (TOA 0xD0), e.g. a named sender.
    pub fn alphanumeric(text: &str) -> Result<Self, EncodeError> {
        let septets = gsm7::septet_count(text).ok_or_else(|| {
            EncodeError::InvalidAddress(text.to_owned(), "not in the GSM 7-bit alphabet")
        })?;
        if septets == 0 || septets * 7 > MAX_DIGITS * 4 {
            return Err(EncodeError::InvalidAddress(
                text.to_owned(),
                "alphanumeric addresses hold 1 to 11 septets",
            ));
        }
        Ok(Self {
            toa: TOA_ALPHANUMERIC,
            value: text.to_owned(),
        })
    }

    /// Whether the type of number is alphanumeric (TON 101).
    pub fn is_alphanumeric(&self) -> bool {
        self.toa & 0x70 == 0x50
    }

    /// Whether the type of number is international (TON 001).
    pub fn is_international(&self) -> bool {
        self.toa & 0x70 == 0x10
    }

    /// Reads a TP-OA/TP-DA/TP-RA (length in semi-octets).
    pub(crate) fn decode_tp(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let at = r.offset();
        let len = usize::from(r.u8(field)?);
        if len > MAX_DIGITS {
            return Err(DecodeError::new(
                field,
                at,
                DecodeErrorKind::OutOfRange {
                    value: len as u32,
                    min: 0,
                    max: MAX_DIGITS as u32,
                },
            ));
        }
        let toa = r.u8(field)?;
        let value_at = r.offset();
        let raw = r.take(field, len.div_ceil(2))?;
        let value = if toa & 0x70 == 0x50 {
            gsm7::decode(&gsm7::unpack(raw, 0, len * 4 / 7), gsm7::Shift::default())
        } else {
            decode_digits(raw, len, field, value_at)?
        };
        Ok(Self { toa, value })
    }

    /// Reads the SMSC field that precedes the TPDU in `+CMGR`/`+CMT` (length in
    /// octets, 0 = none). Returns `None` for an empty field.
    pub(crate) fn decode_smsc(r: &mut Reader<'_>) -> Result<Option<Self>, DecodeError> {
        const FIELD: &str = "SMSC";
        let at = r.offset();
        let len = usize::from(r.u8(FIELD)?);
        if len == 0 {
            return Ok(None);
        }
        if len > 1 + MAX_DIGITS / 2 + 1 {
            return Err(DecodeError::new(
                FIELD,
                at,
                DecodeErrorKind::OutOfRange {
                    value: len as u32,
                    min: 0,
                    max: (2 + MAX_DIGITS / 2) as u32,
                },
            ));
        }
        let toa = r.u8(FIELD)?;
        let value_at = r.offset();
        let raw = r.take(FIELD, len - 1)?;
        let digits = if raw.last().is_some_and(|b| b >> 4 == 0xf) {
            raw.len() * 2 - 1
        } else {
            raw.len() * 2
        };
        let value = decode_digits(raw, digits, FIELD, value_at)?;
        Ok(Some(Self { toa, value }))
    }

    /// Writes this address as a TP address (length in semi-octets).
    pub(crate) fn encode_tp(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.is_alphanumeric() {
            let mut septets = Vec::new();
            gsm7::encode_str(&self.value, &mut septets)
                .map_err(|_| self.invalid("not in the GSM 7-bit alphabet"))?;
            let mut packed = Vec::new();
            gsm7::pack(&septets, 0, &mut packed);
            if packed.len() > MAX_DIGITS / 2 {
                return Err(self.invalid("alphanumeric addresses hold at most 11 septets"));
            }
            out.push((septets.len() * 7).div_ceil(4) as u8);
            out.push(self.toa);
            out.extend_from_slice(&packed);
            return Ok(());
        }
        let digits = self.checked_digits()?;
        out.push(digits.len() as u8);
        out.push(self.toa);
        encode_digits(&digits, out);
        Ok(())
    }

    /// Writes this address as the SMSC field (length in octets, TOA included).
    pub(crate) fn encode_smsc(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.is_alphanumeric() {
            return Err(self.invalid("an SMSC address must be a number"));
        }
        let digits = self.checked_digits()?;
        out.push(1 + digits.len().div_ceil(2) as u8);
        out.push(self.toa);
        encode_digits(&digits, out);
        Ok(())
    }

    fn checked_digits(&self) -> Result<Vec<u8>, EncodeError> {
        // Empty is allowed: it is what some networks put in TP-OA (D21, D22).
        if self.value.len() > MAX_DIGITS {
            return Err(self.invalid("a number has at most 20 digits"));
        }
        self.value
            .chars()
            .map(|c| match c {
                '0'..='9' => Ok(c as u8 - b'0'),
                '*' => Ok(0xa),
                '#' => Ok(0xb),
                'a'..='c' => Ok(c as u8 - b'a' + 0xc),
                _ => Err(self.invalid("only digits, *, #, a, b and c can be encoded")),
            })
            .collect()
    }

    fn invalid(&self, why: &'static str) -> EncodeError {
        EncodeError::InvalidAddress(self.value.clone(), why)
    }
}

impl fmt::Display for Address {
    /// International numbers get their `+`; everything else is shown as it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_international() {
            write!(f, "+{}", self.value)
        } else {
            f.write_str(&self.value)
        }
    }
}

/// Decodes `count` swapped semi-octet digits. A trailing 0xF filler is dropped.
fn decode_digits(
    raw: &[u8],
    count: usize,
    field: &'static str,
    at: usize,
) -> Result<String, DecodeError> {
    let mut s = String::with_capacity(count);
    for i in 0..count {
        let octet = raw[i / 2];
        let nibble = if i % 2 == 0 { octet & 0x0f } else { octet >> 4 };
        let c = match nibble {
            0..=9 => char::from(b'0' + nibble),
            0xa => '*',
            0xb => '#',
            0xc..=0xe => char::from(b'a' + nibble - 0xc),
            _ if i == count - 1 => break,
            _ => {
                return Err(DecodeError::new(
                    field,
                    at + i / 2,
                    DecodeErrorKind::InvalidDigit(nibble),
                ));
            }
        };
        s.push(c);
    }
    Ok(s)
}

/// Writes digit values as swapped semi-octets, with an 0xF filler when odd.
fn encode_digits(digits: &[u8], out: &mut Vec<u8>) {
    for pair in digits.chunks(2) {
        let hi = pair.get(1).copied().unwrap_or(0xf);
        out.push(hi << 4 | pair[0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::reader::{from_hex, to_hex};

    fn tp(a: &Address) -> String {
        let mut out = Vec::new();
        a.encode_tp(&mut out).unwrap();
        to_hex(&out)
    }

    fn smsc(a: &Address) -> String {
        let mut out = Vec::new();
        a.encode_smsc(&mut out).unwrap();
        to_hex(&out)
    }

    fn read_tp(hex: &str) -> Address {
        let b = from_hex(hex).unwrap();
        let mut r = Reader::new(&b, 0);
        let a = Address::decode_tp(&mut r, "TP-DA").unwrap();
        assert_eq!(r.remaining(), 0);
        a
    }

    // reference/sms.md §6.5 (python-gsmmodem TestSemiOctets and address fields,
    // ModemManager SMSC/DA vectors).
    #[test]
    fn address_field_vectors() {
        let n = |s| Address::from_number(s).unwrap();
        for (addr, hex) in [
            (n("+9876543210"), "0A918967452301"),
            (n("+987654321"), "099189674523F1"),
            (n("+27829135934"), "0B917228195339F4"),
            (n("+19037029920"), "0B919130079229F0"),
            (n("9037029920"), "0A810973209902"),
            (n("15125551234"), "0B815121551532F4"),
            (n("123"), "038121F3"),
            (n("1234"), "04812143"),
            (
                Address {
                    toa: TOA_NATIONAL,
                    value: "0129998765".into(),
                },
                "0AA11092997856",
            ),
            (Address::alphanumeric("abc").unwrap(), "06D061F118"),
            (
                Address::alphanumeric("FRANCOIS").unwrap(),
                "0ED04669D0397C26A7",
            ),
            (
                Address::alphanumeric("a[]{}€").unwrap(),
                "14D0E10D6FE3DBA036A94D19",
            ),
        ] {
            assert_eq!(tp(&addr), hex, "{addr}");
            assert_eq!(read_tp(hex), addr, "{hex}");
        }
    }

    #[test]
    fn smsc_field_vectors() {
        for (number, hex) in [
            ("+9876543210", "06918967452301"),
            ("+19037029920", "07919130079229F0"),
            ("9037029920", "06810973209902"),
        ] {
            let a = Address::from_number(number).unwrap();
            assert_eq!(smsc(&a), hex);
            let b = from_hex(hex).unwrap();
            assert_eq!(
                Address::decode_smsc(&mut Reader::new(&b, 0)).unwrap(),
                Some(a)
            );
        }
        assert_eq!(
            Address::decode_smsc(&mut Reader::new(&[0], 0)).unwrap(),
            None
        );
    }

    #[test]
    fn displays_plus_only_for_international() {
        assert_eq!(Address::from_number("+4912").unwrap().to_string(), "+4912");
        assert_eq!(
            Address::from_number("0049 (12) 3-4").unwrap().to_string(),
            "004912 34".replace(' ', "")
        );
    }

    #[test]
    fn rejects_bad_numbers() {
        for bad in ["", "+", "12a", "+123456789012345678901", "++1"] {
            assert!(Address::from_number(bad).is_err(), "{bad:?}");
        }
        assert!(Address::alphanumeric("€€€€€€").is_err());
        assert!(Address::alphanumeric("日本").is_err());
    }

    #[test]
    fn rejects_oversized_and_bad_digit_fields() {
        let e = Address::decode_tp(&mut Reader::new(&[0xBF, 0x00], 1), "TP-OA").unwrap_err();
        assert_eq!((e.field, e.offset), ("TP-OA", 1));
        let e =
            Address::decode_tp(&mut Reader::new(&[4, 0x91, 0xF1, 0x21], 0), "TP-OA").unwrap_err();
        assert_eq!((e.offset, e.kind), (2, DecodeErrorKind::InvalidDigit(0xf)));
    }
}
