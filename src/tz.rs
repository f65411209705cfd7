//! Time zone names as the GX and the config file spell them, and the
//! instant a local wall-clock time takes effect.

use anyhow::{Result, anyhow};
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The GX's time zone setting: `Region/City`, or `/UTC` when the owner chose UTC.
pub fn parse_zone(name: &str) -> Result<Tz> {
    if name == "/UTC" {
        return Ok(Tz::UTC);
    }
    name.parse().map_err(|_| {
        anyhow!("unknown time zone `{name}` (use Region/City, e.g. Australia/Hobart, or /UTC)")
    })
}

/// The first instant at which the clock in `tz` reads `local` or later:
/// that instant, the earlier one when a DST change repeats it, and the end
/// of the gap (the instant the clock jumps) when a DST change skips it. The
/// GX compares its naive local clock with a slot's start, so this is when
/// something planned to start at `local` starts.
pub fn takes_effect(tz: Tz, local: NaiveDateTime) -> DateTime<Tz> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
        LocalResult::None => {
            // No offset is more than 14 h from UTC, so a day either side of
            // `local` read as UTC brackets the jump (even Apia's skipped
            // day); around a gap the clock only moves forward: bisect to the
            // second.
            let reads_past = |utc: i64| {
                DateTime::from_timestamp(utc, 0)
                    .is_some_and(|t| t.with_timezone(&tz).naive_local() >= local)
            };
            let mut before = (local - TimeDelta::days(1)).and_utc().timestamp();
            let mut past = (local + TimeDelta::days(1)).and_utc().timestamp();
            while past - before > 1 {
                let mid = before + (past - before) / 2;
                if reads_past(mid) {
                    past = mid;
                } else {
                    before = mid;
                }
            }
            Utc.timestamp_opt(past, 0)
                .single()
                .expect("a bisected unix time is in range")
                .with_timezone(&tz)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn zones() {
        assert_eq!(parse_zone("/UTC").unwrap(), Tz::UTC);
        assert_eq!(
            parse_zone("Australia/Hobart").unwrap(),
            chrono_tz::Australia::Hobart
        );
        assert!(parse_zone("Mars/Olympus").is_err());
        assert!(parse_zone("").is_err());
    }

    #[test]
    fn a_time_takes_effect_when_the_clock_first_reaches_it() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = |l| takes_effect(berlin, l).with_timezone(&Utc);
        // An ordinary time.
        assert_eq!(at(local(2026, 3, 28, 2, 30)), utc("2026-03-28T01:30:00Z"));
        // Sun 2026-03-29 02:00 CET -> 03:00 CEST: 02:00 to 03:00 never
        // shows; all of it takes effect at the jump.
        for minute in [0, 1, 30, 59] {
            assert_eq!(
                at(local(2026, 3, 29, 2, minute)),
                utc("2026-03-29T01:00:00Z")
            );
        }
        assert_eq!(at(local(2026, 3, 29, 3, 0)), utc("2026-03-29T01:00:00Z"));
        // Sun 2026-10-25 03:00 CEST -> 02:00 CET: the first 02:30.
        assert_eq!(at(local(2026, 10, 25, 2, 30)), utc("2026-10-25T00:30:00Z"));
        // Samoa skipped Fri 2011-12-30: all of it starts at Saturday 00:00.
        let apia = chrono_tz::Pacific::Apia;
        let got = takes_effect(apia, local(2011, 12, 30, 12, 0));
        assert_eq!(got.naive_local(), local(2011, 12, 31, 0, 0));
        assert_eq!(got.with_timezone(&Utc), utc("2011-12-30T10:00:00Z"));
    }
}
