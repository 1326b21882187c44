//! Wall-clock time for the simulated network's time stamps (TP-SCTS, TP-DT,
//! `AT+CCLK?`), derived from the caller's `Instant`s and a Unix time given once.

use std::time::{Duration, Instant};

use crate::pdu::Timestamp;

/// Longest delay honoured; longer ones (a typo of `--send-delay 3y`) are cut
/// here instead of overflowing an `Instant`.
const MAX_DELAY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `now + d`, with `d` capped at ten years.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(MAX_DELAY)).unwrap_or(now)
}

/// Maps `Instant`s to calendar time: `unix` seconds at `origin`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    origin: Instant,
    unix: i64,
    offset_quarters: i8,
}

impl Clock {
    pub(super) fn new(origin: Instant, unix: i64, offset_quarters: i8) -> Self {
        Self {
            origin,
            unix,
            offset_quarters: offset_quarters.clamp(-79, 79),
        }
    }

    /// Local time at `now` (an `Instant` before the origin counts as the origin).
    pub(super) fn timestamp(&self, now: Instant) -> Timestamp {
        let elapsed = now.saturating_duration_since(self.origin).as_secs();
        let local = self.unix + elapsed as i64 + i64::from(self.offset_quarters) * 15 * 60;
        from_unix(local, self.offset_quarters)
    }
}

/// The civil date of a Unix time already shifted to local time (Howard
/// Hinnant's `civil_from_days`), clamped to the years a TP-SCTS can hold.
fn from_unix(local: i64, offset_quarters: i8) -> Timestamp {
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Timestamp {
        year: year.clamp(2000, 2099) as u16,
        month: month as u8,
        day: day as u8,
        hour: (secs / 3600) as u8,
        minute: (secs % 3600 / 60) as u8,
        second: (secs % 60) as u8,
        offset_quarters,
    }
}

/// `yy/MM/dd,hh:mm:ss±zz` as text mode and `AT+CCLK?` print a time.
pub(super) fn text_time(t: &Timestamp) -> String {
    let sign = if t.offset_quarters < 0 { '-' } else { '+' };
    format!(
        "{:02}/{:02}/{:02},{:02}:{:02}:{:02}{sign}{:02}",
        t.year % 100,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.offset_quarters.unsigned_abs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_become_calendar_dates() {
        let t0 = Instant::now();
        // 2026-01-01T00:00:00Z
        let c = Clock::new(t0, 1_767_225_600, 0);
        assert_eq!(c.timestamp(t0).to_string(), "2026-01-01T00:00:00+00:00");
        let later = c.timestamp(t0 + Duration::from_secs(59 * 86_400 + 3_723));
        assert_eq!(later.to_string(), "2026-03-01T01:02:03+00:00");
        let zoned = Clock::new(t0, 1_767_225_600, 8).timestamp(t0);
        assert_eq!(text_time(&zoned), "26/01/01,02:00:00+08");
    }
}
