//! A provider's quota day in its own time zone: the zone's rules come from the IANA
//! database compiled into `jiff`, never from hand-written offsets or the host's files.

use router_core::Timestamp;
use router_core::quota::ResetClock;

const MS_PER_DAY: i64 = 86_400_000;

/// Days that end at midnight in one IANA time zone (or UTC).
#[derive(Clone, Debug)]
pub struct ZoneDays {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl ZoneDays {
    /// The zone named `name` (`UTC`, `America/Los_Angeles`, ...), or why not.
    pub fn new(name: &str) -> Result<ZoneDays, String> {
        let tz = jiff::tz::TimeZone::get(name)
            .map_err(|e| format!("`reset_time_zone` `{name}` is not an IANA time zone: {e}"))?;
        Ok(ZoneDays { name: name.to_owned(), tz })
    }

    fn civil(&self, now: Timestamp) -> Option<(u64, Timestamp)> {
        let ts = jiff::Timestamp::from_millisecond(i64::try_from(now.as_millis()).ok()?).ok()?;
        let date = ts.to_zoned(self.tz.clone()).date();
        // The day's index: the civil date's days since 1970-01-01.
        let utc_midnight = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_millisecond();
        let index = u64::try_from(utc_midnight.div_euclid(MS_PER_DAY)).ok()?;
        // The next day's first instant in the zone (23 or 25 hours away on a DST change).
        let next = date.tomorrow().ok()?.to_zoned(self.tz.clone()).ok()?.timestamp().as_millisecond();
        Some((index, Timestamp::from_millis(u64::try_from(next).ok()?)))
    }
}

impl ResetClock for ZoneDays {
    fn day(&self, now: Timestamp) -> (u64, Timestamp) {
        self.civil(now).unwrap_or((now.utc_day(), now.next_utc_midnight()))
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        let ts: jiff::Timestamp = rfc3339.parse().expect("fixture instant");
        Timestamp::from_millis(u64::try_from(ts.as_millisecond()).expect("after 1970"))
    }

    #[test]
    fn pacific_days_end_at_pacific_midnight_across_dst() {
        let la = ZoneDays::new("America/Los_Angeles").expect("zone");
        // 2026-03-07 12:00 PST: the day ends at 2026-03-08 00:00 PST = 08:00 UTC.
        let (d1, end1) = la.day(at("2026-03-07T20:00:00Z"));
        assert_eq!(end1, at("2026-03-08T08:00:00Z"));
        // 2026-03-08 is 23 hours long (DST starts): it ends at 2026-03-09 00:00 PDT = 07:00 UTC.
        let (d2, end2) = la.day(at("2026-03-08T08:00:00Z"));
        assert_eq!((d2, end2), (d1 + 1, at("2026-03-09T07:00:00Z")));
        // 07:59 UTC on the 8th is still the 7th in Los Angeles.
        assert_eq!(la.day(at("2026-03-08T07:59:59Z")).0, d1);
        let utc = ZoneDays::new("UTC").expect("zone");
        let now = at("2026-03-08T07:59:59Z");
        assert_eq!(utc.day(now), (now.utc_day(), now.next_utc_midnight()));
        assert!(ZoneDays::new("Mars/Olympus").is_err());
    }
}
