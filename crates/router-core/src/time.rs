//! Wall-clock instants as plain numbers, and the UTC calendar arithmetic the core needs.
//!
//! The core never reads a clock: a [`Timestamp`] always comes in from the caller (the
//! [`Clock`](crate::Clock) port). Calendar maths is done here by hand because it is a
//! dozen lines (Howard Hinnant's `days_from_civil`) and a date crate would be the only
//! reason to pull one into the pure core.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

const MS_PER_MINUTE: u64 = 60_000;
const MS_PER_DAY: u64 = 86_400_000;

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// The instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// `d` after this instant, saturating at the largest timestamp.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Index of the UTC day this instant falls in (days since the epoch).
    pub const fn utc_day(self) -> u64 {
        self.0 / MS_PER_DAY
    }

    /// Index of the minute this instant falls in (minutes since the epoch).
    pub const fn minute(self) -> u64 {
        self.0 / MS_PER_MINUTE
    }

    /// 00:00 UTC of the next day.
    pub const fn next_utc_midnight(self) -> Timestamp {
        Timestamp((self.utc_day() + 1) * MS_PER_DAY)
    }

    /// The start of the next minute.
    pub const fn next_minute(self) -> Timestamp {
        Timestamp((self.minute() + 1) * MS_PER_MINUTE)
    }

    /// The UTC calendar date of this instant, as `YYYY-MM-DD`.
    pub fn date_string(self) -> String {
        let (y, m, d) = civil_from_days(i64::try_from(self.utc_day()).unwrap_or(i64::MAX));
        format!("{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with second precision, e.g. `2026-08-19T12:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs_of_day = (self.0 % MS_PER_DAY) / 1000;
        write!(
            f,
            "{}T{:02}:{:02}:{:02}Z",
            self.date_string(),
            secs_of_day / 3600,
            (secs_of_day / 60) % 60,
            secs_of_day % 60
        )
    }
}

/// Parses the date part of `YYYY-MM-DD` (anything after the tenth character, such as a
/// time, is ignored) into 00:00 UTC of that day.
pub fn parse_date(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, d);
    let days = u64::try_from(days).ok()?;
    Some(Timestamp(days * MS_PER_DAY))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(date: &str, expected_ms: Option<u64>) {
        assert_eq!(parse_date(date).map(Timestamp::as_millis), expected_ms, "{date}");
        if let Some(ms) = expected_ms {
            assert_eq!(Timestamp::from_millis(ms).date_string(), &date[..10]);
        }
    }

    #[test]
    fn dates() {
        check("1970-01-01", Some(0));
        check("2026-08-24", Some(1_787_529_600_000));
        check("2024-02-29", Some(1_709_164_800_000));
        check("2026-03-02T10:00:00Z", Some(1_772_409_600_000));
        check("2026-13-01", None);
        check("26-01-01", None);
        check("", None);
    }

    #[test]
    fn display_and_windows() {
        let t = Timestamp::from_millis(1_787_529_600_000 + 3_723_000);
        assert_eq!(t.to_string(), "2026-08-24T01:02:03Z");
        assert_eq!(t.next_utc_midnight().to_string(), "2026-08-25T00:00:00Z");
        assert_eq!(t.next_minute().to_string(), "2026-08-24T01:03:00Z");
    }
}
