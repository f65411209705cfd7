//! The schedule as the server shows it: the reference API's day, the
//! value in force and the steps behind the plots. The file itself is
//! `zendure::schedule_file`'s.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::store::unix;
use crate::zendure::core::schedule::{Key, Resolver, Schedule};

/// The first key that appears twice in a JSON object's text, if any.
/// serde_json keeps the last of them silently, which would hide the first
/// from validation; `None` too when `bytes` is no JSON object at all.
pub fn repeated_key(bytes: &[u8]) -> Option<String> {
    struct Repeated(Option<String>);
    impl<'de> serde::Deserialize<'de> for Repeated {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Repeated, D::Error> {
            d.deserialize_map(Repeated(None))
        }
    }
    impl<'de> serde::de::Visitor<'de> for Repeated {
        type Value = Repeated;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            mut self,
            mut map: A,
        ) -> Result<Repeated, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if self.0.is_none() && seen.contains(&key) {
                    self.0 = Some(key);
                } else {
                    seen.insert(key);
                }
            }
            Ok(self)
        }
    }
    serde_json::from_slice::<Repeated>(bytes)
        .ok()
        .and_then(|r| r.0)
}

/// A reference client's value: a number, a numeric string (the PHP API
/// took "500"), or one of the two words.
pub fn loose_value(value: &Value) -> Value {
    match value.as_str().map(str::trim) {
        Some(s) if s.parse::<i64>().is_ok() => json!(s.parse::<i64>().unwrap_or_default()),
        _ => value.clone(),
    }
}

/// The reference API's GET answer for `date`, at local time `now`.
pub fn reference_day(
    schedule: &Schedule,
    resolver: &Resolver,
    date: NaiveDate,
    now: NaiveDateTime,
) -> Value {
    let entries: Vec<Value> = schedule
        .entries()
        .map(|(k, v)| json!({"key": k.as_str(), "value": v.to_json()}))
        .collect();
    let resolved: Vec<Value> = resolver
        .day(date)
        .iter()
        .map(|r| {
            // No match is null in the reference, not 0, so a client can
            // tell "nothing scheduled" from "0 W scheduled".
            let value = r.key.as_ref().map(|_| r.value.to_json());
            json!({
                "time": r.time.format("%H%M").to_string(),
                "value": value,
                "key": r.key.as_ref().map(Key::as_str),
            })
        })
        .collect();
    json!({
        "success": true,
        "entries": entries,
        "resolved": resolved,
        "date": date.format("%Y%m%d").to_string(),
        "currentHour": now.format("%H00").to_string(),
        "currentTime": now.format("%H%M").to_string(),
    })
}

/// The value in force at `now` and the instant it took over (looking back
/// at most a week; a value older than that is "since a week ago").
pub fn in_force(resolver: &Resolver, zone: Tz, now: DateTime<Utc>) -> (Value, f64) {
    let week = steps(resolver, zone, now - TimeDelta::days(7), now);
    week.last()
        .map(|(at, value)| (value.clone(), *at))
        .unwrap_or_else(|| {
            (
                resolver.value_at_instant(&zone, now).value.to_json(),
                unix(now),
            )
        })
}

/// The schedule over `[from, to]` as (instant, value) steps, for the plots'
/// background: the value at `from`, then each change.
pub fn steps(
    resolver: &Resolver,
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(f64, Value)> {
    let mut out = vec![(
        unix(from),
        resolver.value_at_instant(&zone, from).value.to_json(),
    )];
    let mut after = from;
    // A day has at most 24 + (explicit times) changes; this bounds a month.
    for _ in 0..10_000 {
        match resolver.next_change_instant(&zone, after) {
            Some(change) if change.at <= to => {
                out.push((unix(change.at), change.value.to_json()));
                after = change.at;
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendure::io::schedule_file::validate;

    #[test]
    fn a_key_twice_is_found_whatever_its_spelling() {
        let twice = |text: &str| repeated_key(text.as_bytes());
        assert_eq!(
            twice(r#"{"********0700": 100, "********0800": 1, "********0700": 200}"#),
            Some("********0700".into())
        );
        // The same key written with an escape is still the same key.
        assert_eq!(
            twice(r#"{"********0700": 1, "********070\u0030": 2}"#),
            Some("********0700".into())
        );
        assert_eq!(twice(r#"{"a": {"b": 1, "b": 2}, "c": 1}"#), None);
        assert_eq!(twice(r#"{"********0700": 1, "********0800": 1}"#), None);
        assert_eq!(twice("[1, 1]"), None);
        assert_eq!(twice("{not json"), None);
    }

    #[test]
    fn numeric_strings_are_numbers_as_the_reference_took_them() {
        assert_eq!(loose_value(&json!("500")), json!(500));
        assert_eq!(loose_value(&json!(" -20 ")), json!(-20));
        assert_eq!(loose_value(&json!("netzero")), json!("netzero"));
        assert_eq!(loose_value(&json!(1.5)), json!(1.5));
    }

    #[test]
    fn the_reference_day_has_its_fields() {
        let schedule = validate(&json!({"********0700": 500, "202611231730": "netzero"})).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let now = date.and_hms_opt(9, 41, 0).unwrap();
        let day = reference_day(&schedule, &Resolver::new(&schedule), date, now);
        assert_eq!(day["success"], true);
        assert_eq!(day["date"], "20261123");
        assert_eq!(day["currentHour"], "0900");
        assert_eq!(day["currentTime"], "0941");
        assert_eq!(
            day["entries"][0],
            json!({"key": "********0700", "value": 500})
        );
        let resolved = day["resolved"].as_array().unwrap();
        assert_eq!(resolved.len(), 25);
        assert_eq!(
            resolved[0],
            json!({"time": "0000", "value": null, "key": null})
        );
        assert_eq!(
            resolved[7],
            json!({"time": "0700", "value": 500, "key": "********0700"})
        );
        let evening = resolved.iter().find(|r| r["time"] == "1730").unwrap();
        assert_eq!(evening["value"], "netzero");
    }

    #[test]
    fn in_force_and_steps_follow_the_home_clock() {
        let schedule = validate(&json!({"********0700": 500, "********1800": "netzero"})).unwrap();
        let schedule = Resolver::new(&schedule);
        let zone = chrono_tz::Europe::Amsterdam;
        // 09:00 in Amsterdam (UTC+1 in November).
        let now: DateTime<Utc> = "2026-11-23T08:00:00Z".parse().unwrap();
        let (value, since) = in_force(&schedule, zone, now);
        assert_eq!(value, json!(500));
        let seven: DateTime<Utc> = "2026-11-23T06:00:00Z".parse().unwrap();
        assert_eq!(since, unix(seven));
        let steps = steps(&schedule, zone, now - TimeDelta::hours(24), now);
        let values: Vec<&Value> = steps.iter().map(|(_, v)| v).collect();
        // Before 07:00 no entry has begun yet: 0 W, as the reference resolves.
        assert_eq!(
            values,
            [&json!(500), &json!("netzero"), &json!(0), &json!(500)]
        );
        assert_eq!(steps[3].0, since);
        assert_eq!(steps[0].0, unix(now - TimeDelta::hours(24)));
    }
}
