//! Time fields (TS 23.040 §9.2.3.11, §9.2.3.12): the service centre time stamp and
//! absolute validity (seven swapped BCD octets, zone in quarter hours with a sign
//! bit), and relative validity (one octet on a piecewise scale).

use std::fmt;
use std::time::Duration;

use super::DecodeError;
use super::error::DecodeErrorKind;
use super::reader::Reader;

/// A TP-SCTS, TP-DT or absolute TP-VP: local time and its offset from UTC.
///
/// Real service centres send time stamps whose octets are not all valid
/// semi-octets (a zone octet of `0xFF`, say); gammu and python-gsmmodem still use
/// the rest of such a PDU, and so do we. [`Timestamp::decode_lenient`] returns an
/// *invalid* time stamp for them, made with [`Timestamp::invalid`]: `month` is 0
/// (no valid time stamp has it) and the seven octets are kept as they came, so
/// the PDU encodes back to the same bytes. Check [`Timestamp::is_valid`] before
/// using the fields as a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Full year; the PDU carries two digits, read as 2000–2099.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59.
    pub second: u8,
    /// Offset from UTC in quarter hours (−79..=79 on the wire).
    pub offset_quarters: i8,
}

impl Timestamp {
    /// A time stamp whose seven octets did not decode (see the type's doc).
    pub fn invalid(raw: [u8; 7]) -> Self {
        Self {
            year: u16::from_be_bytes([raw[0], raw[1]]),
            month: 0,
            day: raw[2],
            hour: raw[3],
            minute: raw[4],
            second: raw[5],
            offset_quarters: i8::from_ne_bytes([raw[6]]),
        }
    }

    /// Whether this is a time (`false`: the octets did not decode).
    pub fn is_valid(&self) -> bool {
        self.month != 0
    }

    /// The octets as they came, for a time stamp that did not decode.
    pub fn raw_if_invalid(&self) -> Option<[u8; 7]> {
        if self.is_valid() {
            return None;
        }
        let [y0, y1] = self.year.to_be_bytes();
        let [tz] = self.offset_quarters.to_ne_bytes();
        Some([y0, y1, self.day, self.hour, self.minute, self.second, tz])
    }

    /// Like [`Self::decode`], but seven octets that are not a valid time stamp
    /// give an [invalid](Self::invalid) one instead of an error: for TP-SCTS and
    /// TP-DT, where a sloppy service centre must not cost the whole PDU. Too few
    /// octets are still an error.
    pub(crate) fn decode_lenient(
        r: &mut Reader<'_>,
        field: &'static str,
    ) -> Result<Self, DecodeError> {
        let raw = r.take(field, 7)?;
        let mut octets = [0u8; 7];
        octets.copy_from_slice(raw);
        Ok(Self::decode(&mut Reader::new(&octets, 0), field)
            .unwrap_or_else(|_| Self::invalid(octets)))
    }

    pub(crate) fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let at = r.offset();
        let raw = r.take(field, 7)?;
        let bcd = |i: usize, min: u8, max: u8| -> Result<u8, DecodeError> {
            let (lo, hi) = (raw[i] & 0x0f, raw[i] >> 4);
            let bad = |kind| DecodeError::new(field, at + i, kind);
            if lo > 9 {
                return Err(bad(DecodeErrorKind::InvalidDigit(lo)));
            }
            if hi > 9 {
                return Err(bad(DecodeErrorKind::InvalidDigit(hi)));
            }
            let v = lo * 10 + hi;
            if v < min || v > max {
                return Err(bad(DecodeErrorKind::OutOfRange {
                    value: v.into(),
                    min: min.into(),
                    max: max.into(),
                }));
            }
            Ok(v)
        };
        let year = 2000 + u16::from(bcd(0, 0, 99)?);
        let (month, day) = (bcd(1, 1, 12)?, bcd(2, 1, 31)?);
        let (hour, minute, second) = (bcd(3, 0, 23)?, bcd(4, 0, 59)?, bcd(5, 0, 59)?);
        // The zone's tens digit carries the sign in its bit 3 (§9.2.3.11).
        let tz = raw[6];
        let negative = tz & 0x08 != 0;
        let (tens, units) = (tz & 0x07, tz >> 4);
        if units > 9 {
            return Err(DecodeError::new(
                field,
                at + 6,
                DecodeErrorKind::InvalidDigit(units),
            ));
        }
        let quarters = (tens * 10 + units) as i8;
        Ok(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            offset_quarters: if negative { -quarters } else { quarters },
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        if let Some(raw) = self.raw_if_invalid() {
            out.extend_from_slice(&raw);
            return;
        }
        let swap = |v: u8| ((v % 10) << 4) | ((v / 10) % 10);
        out.extend_from_slice(&[
            swap((self.year % 100) as u8),
            swap(self.month),
            swap(self.day),
            swap(self.hour),
            swap(self.minute),
            swap(self.second),
        ]);
        let q = self.offset_quarters.unsigned_abs().min(79);
        let sign = if self.offset_quarters < 0 { 0x08 } else { 0 };
        out.push(swap(q) | sign);
    }

    /// The offset from UTC in seconds.
    pub fn offset_seconds(&self) -> i32 {
        i32::from(self.offset_quarters) * 15 * 60
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 with the offset, e.g. `2013-03-08T15:02:16+02:00`.
    /// An invalid one shows its octets: `invalid (51117200000FF)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(raw) = self.raw_if_invalid() {
            return write!(f, "invalid ({})", super::to_hex(&raw));
        }
        let off = self.offset_seconds();
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.unsigned_abs();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            off / 3600,
            off % 3600 / 60
        )
    }
}

/// TP-VP in one of its three formats (TP-VPF, §9.2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// Relative format: one octet on the scale of §9.2.3.12.1.
    Relative(u8),
    /// Absolute format: the time the message expires.
    Absolute(Timestamp),
    /// Enhanced format (§9.2.3.12.3), kept as the seven octets.
    Enhanced([u8; 7]),
}

impl Validity {
    /// The relative TP-VP for at least `d` (rounded up to the next step the scale
    /// has), capped at 63 weeks. Shorter than 5 minutes gives 5 minutes.
    pub fn relative(d: Duration) -> Self {
        let minutes = d.as_secs().div_ceil(60);
        let vp = if minutes <= 12 * 60 {
            minutes.div_ceil(5).max(1) - 1
        } else if minutes <= 24 * 60 {
            143 + (minutes - 12 * 60).div_ceil(30)
        } else if minutes <= 30 * 24 * 60 {
            166 + minutes.div_ceil(24 * 60)
        } else {
            (192 + minutes.div_ceil(7 * 24 * 60)).min(255)
        };
        Self::Relative(vp as u8)
    }

    /// What a relative TP-VP octet means.
    pub fn relative_duration(vp: u8) -> Duration {
        let vp = u64::from(vp);
        let minutes = match vp {
            0..=143 => (vp + 1) * 5,
            144..=167 => 12 * 60 + (vp - 143) * 30,
            168..=196 => (vp - 166) * 24 * 60,
            _ => (vp - 192) * 7 * 24 * 60,
        };
        Duration::from_secs(minutes * 60)
    }

    /// TP-VPF bits (3..4 of the first octet) for this format.
    pub(crate) fn vpf(&self) -> u8 {
        match self {
            Self::Relative(_) => 0b10,
            Self::Enhanced(_) => 0b01,
            Self::Absolute(_) => 0b11,
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, vpf: u8) -> Result<Option<Self>, DecodeError> {
        const FIELD: &str = "TP-VP";
        Ok(match vpf {
            0b10 => Some(Self::Relative(r.u8(FIELD)?)),
            0b11 => Some(Self::Absolute(Timestamp::decode(r, FIELD)?)),
            0b01 => {
                let mut raw = [0; 7];
                raw.copy_from_slice(r.take(FIELD, 7)?);
                Some(Self::Enhanced(raw))
            }
            _ => None,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Relative(vp) => out.push(*vp),
            Self::Absolute(ts) => ts.encode(out),
            Self::Enhanced(raw) => out.extend_from_slice(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::reader::{from_hex, to_hex};

    fn ts(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, q: i8) -> Timestamp {
        Timestamp {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
            offset_quarters: q,
        }
    }

    // reference/sms.md §6.5, SCTS/absolute vectors (python-gsmmodem).
    #[test]
    fn timestamp_vectors_both_ways() {
        for (t, hex, rfc) in [
            (
                ts(2015, 11, 27, 0, 0, 0, 0),
                "51117200000000",
                "2015-11-27T00:00:00+00:00",
            ),
            (
                ts(2015, 11, 27, 0, 0, 0, 8),
                "51117200000080",
                "2015-11-27T00:00:00+02:00",
            ),
            (
                ts(2007, 4, 12, 23, 25, 42, 32),
                "70402132522423",
                "2007-04-12T23:25:42+08:00",
            ),
            (
                ts(2007, 4, 12, 23, 25, 42, -32),
                "7040213252242B",
                "2007-04-12T23:25:42-08:00",
            ),
            (
                ts(2015, 1, 9, 17, 38, 48, 22),
                "51109071838422",
                "2015-01-09T17:38:48+05:30",
            ),
        ] {
            let mut out = Vec::new();
            t.encode(&mut out);
            assert_eq!(to_hex(&out), hex);
            let b = from_hex(hex).unwrap();
            assert_eq!(
                Timestamp::decode(&mut Reader::new(&b, 0), "TP-SCTS").unwrap(),
                t
            );
            assert_eq!(t.to_string(), rfc);
        }
    }

    #[test]
    fn rejects_non_bcd_and_out_of_range() {
        let b = from_hex("51F17200000000").unwrap();
        let e = Timestamp::decode(&mut Reader::new(&b, 5), "TP-SCTS").unwrap_err();
        assert_eq!((e.offset, e.kind), (6, DecodeErrorKind::InvalidDigit(0xf)));
        let b = from_hex("51317200000000").unwrap(); // month 13
        assert!(Timestamp::decode(&mut Reader::new(&b, 0), "TP-SCTS").is_err());
    }

    #[test]
    fn lenient_decode_keeps_an_invalid_stamp_raw_and_round_trips() {
        // Zone octet 0xFF (units nibble 0xF): not BCD. Month 13: out of range.
        for hex in ["511172000000FF", "5131720000000A", "FFFFFFFFFFFFFF"] {
            let b = from_hex(hex).unwrap();
            let t = Timestamp::decode_lenient(&mut Reader::new(&b, 0), "TP-DT").unwrap();
            assert!(!t.is_valid(), "{hex}");
            assert_eq!(t.raw_if_invalid().map(|r| to_hex(&r)).as_deref(), Some(hex));
            assert_eq!(t.to_string(), format!("invalid ({hex})"));
            let mut out = Vec::new();
            t.encode(&mut out);
            assert_eq!(to_hex(&out), hex);
        }
        // A valid one is the strict decode's answer.
        let b = from_hex("51117200000080").unwrap();
        let t = Timestamp::decode_lenient(&mut Reader::new(&b, 0), "TP-DT").unwrap();
        assert_eq!(t, ts(2015, 11, 27, 0, 0, 0, 8));
        assert!(t.is_valid() && t.raw_if_invalid().is_none());
        // Too short is still an error.
        let b = from_hex("511172000000").unwrap();
        let e = Timestamp::decode_lenient(&mut Reader::new(&b, 3), "TP-DT").unwrap_err();
        assert_eq!(e.field, "TP-DT");
    }

    // reference/sms.md §6.5: 30 min -> 5; 16 h -> 151; 3 days -> 169; 5 weeks -> 197.
    #[test]
    fn relative_validity_both_ways() {
        for (d, vp) in [
            (Duration::from_secs(30 * 60), 5),
            (Duration::from_secs(16 * 3600), 151),
            (Duration::from_secs(3 * 86400), 169),
            (Duration::from_secs(35 * 86400), 197),
            (Duration::from_secs(24 * 3600), 167),
            (Duration::from_secs(5 * 60), 0),
            (Duration::from_secs(63 * 7 * 86400), 255),
        ] {
            assert_eq!(Validity::relative(d), Validity::Relative(vp), "{d:?}");
            assert_eq!(Validity::relative_duration(vp), d, "{vp}");
        }
        assert_eq!(
            Validity::relative(Duration::from_secs(1)),
            Validity::Relative(0)
        );
        assert_eq!(
            Validity::relative(Duration::from_secs(301)),
            Validity::Relative(1)
        );
        assert_eq!(
            Validity::relative(Duration::from_secs(u64::MAX / 2)),
            Validity::Relative(255)
        );
    }

    #[test]
    fn relative_scale_is_monotonic_and_round_trips() {
        for vp in 0..=255u8 {
            assert_eq!(
                Validity::relative(Validity::relative_duration(vp)),
                Validity::Relative(vp)
            );
        }
    }
}
