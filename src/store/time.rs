//! Time as the store sees it: whole seconds since the Unix epoch, passed in by the
//! caller (the store has no clock), shown and parsed as RFC 3339.

use std::fmt;

use crate::pdu::Timestamp;

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub i64);

/// Whole seconds of a duration later (what `pdu::Reassembly` needs of a time).
impl std::ops::Add<std::time::Duration> for UnixTime {
    type Output = Self;

    fn add(self, d: std::time::Duration) -> Self {
        self.plus(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

impl UnixTime {
    /// The system clock, for drivers and the command line (the store never calls it).
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// This time plus `secs` seconds (saturating).
    pub fn plus(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// A PDU time stamp (local time with its UTC offset) as Unix time.
    pub fn from_pdu(ts: &Timestamp) -> Self {
        let days = days_from_civil(i64::from(ts.year), ts.month.into(), ts.day.into());
        let local = days * 86_400
            + i64::from(ts.hour) * 3600
            + i64::from(ts.minute) * 60
            + i64::from(ts.second);
        Self(local - i64::from(ts.offset_seconds()))
    }

    /// Parses RFC 3339 (`2026-05-01T12:00:00Z`, `2026-05-01T14:00:00+02:00`, an
    /// optional fraction is ignored) or a bare date (`2026-05-01`, midnight UTC).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid time {s:?}: expected RFC 3339 (2026-05-01T12:00:00Z) or a date (2026-05-01)"
            )
        };
        let s = s.trim();
        let num = |t: &str| -> Result<i64, String> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        let (date, rest) = s.split_at(s.find(['T', 't', ' ']).unwrap_or(s.len()));
        let mut d = date.split('-');
        let (Some(y), Some(m), Some(day), None) = (d.next(), d.next(), d.next(), d.next()) else {
            return Err(bad());
        };
        let (y, m, day) = (num(y)?, num(m)?, num(day)?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) || y.to_string().len() != 4 {
            return Err(bad());
        }
        let mut secs = days_from_civil(y, m, day) * 86_400;
        if rest.is_empty() {
            return Ok(Self(secs));
        }
        let rest = &rest[1..];
        let zone_at = rest.find(['Z', 'z', '+', '-']).ok_or_else(bad)?;
        let (clock, zone) = rest.split_at(zone_at);
        let clock = clock.split('.').next().unwrap_or_default();
        let mut c = clock.split(':');
        let (Some(h), Some(mi), Some(sec), None) = (c.next(), c.next(), c.next(), c.next()) else {
            return Err(bad());
        };
        let (h, mi, sec) = (num(h)?, num(mi)?, num(sec)?);
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + sec;
        let offset = match zone {
            "Z" | "z" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let (oh, om) = z[1..].split_once(':').ok_or_else(bad)?;
                let (oh, om) = (num(oh)?, num(om)?);
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                sign * (oh * 3600 + om * 60)
            }
        };
        Ok(Self(secs - offset))
    }
}

impl fmt::Display for UnixTime {
    /// RFC 3339 in UTC, e.g. `2026-05-01T12:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_rfc3339() {
        let t = UnixTime::parse("2026-05-01T12:34:56Z").unwrap();
        assert_eq!(t, UnixTime(1_777_638_896));
        assert_eq!(t.to_string(), "2026-05-01T12:34:56Z");
        assert_eq!(UnixTime::parse("2026-05-01T14:34:56.250+02:00"), Ok(t));
        assert_eq!(
            UnixTime::parse("2026-05-01").unwrap().to_string(),
            "2026-05-01T00:00:00Z"
        );
        assert_eq!(UnixTime(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-05-01T12:00Z",
            "2026-05-01T12:00:00",
        ] {
            assert!(UnixTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn converts_pdu_time_stamps_with_their_offset() {
        let ts = Timestamp {
            year: 2013,
            month: 3,
            day: 8,
            hour: 15,
            minute: 2,
            second: 16,
            offset_quarters: 8,
        };
        assert_eq!(UnixTime::from_pdu(&ts).to_string(), "2013-03-08T13:02:16Z");
    }
}
