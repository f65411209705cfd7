//! The schedule file the server owns: read fresh on every request (a hand
//! edit shows at once), validated against the project's JSON Schema and the
//! parser with every bad entry named, and replaced atomically. Its ETag is
//! a hash of the file's bytes, so any change, by any writer, makes an older
//! `If-Match` stale.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::atomic;
use crate::zendure::schedule::{
    Key, Schedule, ScheduleValue, next_change_instant, resolve_day, value_at_instant,
};

/// The project's schema for the schedule format, shipped with the source.
const SCHEMA: &str = include_str!("../zendure/schedule.schema.json");

/// One bad entry (or the document as a whole when `key` is None).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryError {
    pub key: Option<String>,
    pub error: String,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(f, "entry \"{key}\": {}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// A validator for one of the shipped schema's definitions (`key`,
/// `value`), so each entry is checked, and named, on its own.
fn definition(name: &str) -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(SCHEMA).expect("the shipped schema is JSON");
    let root = schema
        .as_object_mut()
        .expect("the shipped schema is an object");
    root.remove("oneOf");
    root.insert("$ref".into(), json!(format!("#/$defs/{name}")));
    jsonschema::validator_for(&schema).expect("the shipped schema compiles")
}

fn validators() -> &'static (jsonschema::Validator, jsonschema::Validator) {
    static VALIDATORS: OnceLock<(jsonschema::Validator, jsonschema::Validator)> = OnceLock::new();
    VALIDATORS.get_or_init(|| (definition("key"), definition("value")))
}

/// Checks a whole schedule document (the plain-object form, which the file
/// holds) against the schema and the parser; every bad entry is named once.
pub fn validate(doc: &Value) -> Result<Schedule, Vec<EntryError>> {
    let Some(object) = doc.as_object() else {
        return Err(vec![EntryError {
            key: None,
            error: "the schedule must be a JSON object of \"YYYYMMDDHHmm\": value".into(),
        }]);
    };
    let (key_schema, value_schema) = validators();
    let mut errors = Vec::new();
    let mut entries = Vec::with_capacity(object.len());
    for (key, value) in object {
        // The parser's words are the clearer ones; the schema speaks for
        // what the parser let through (the tests hold the two to agreement).
        let parsed = Key::parse(key)
            .map_err(|e| e.reason)
            .and_then(|k| ScheduleValue::from_json(value).map(|v| (k, v)));
        let schema = key_schema
            .validate(&json!(key))
            .map_err(|e| format!("{e} (JSON Schema)"))
            .and_then(|()| {
                value_schema
                    .validate(value)
                    .map_err(|e| format!("{e} (JSON Schema)"))
            });
        match (parsed, schema) {
            (Ok(entry), Ok(())) => entries.push(entry),
            (Err(error), _) | (Ok(_), Err(error)) => errors.push(EntryError {
                key: Some(key.clone()),
                error,
            }),
        }
    }
    if errors.is_empty() {
        Ok(Schedule::from_entries(entries))
    } else {
        Err(errors)
    }
}

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

/// The ETag of a file's content.
pub fn etag(bytes: &[u8]) -> String {
    // FNV-1a: stable across builds and machines, which a cached page needs.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// The file as stored: its bytes (empty when it does not exist yet).
pub struct Current {
    pub bytes: Vec<u8>,
    pub etag: String,
}

impl Current {
    /// The document; an absent file is the empty schedule.
    pub fn document(&self) -> Result<Map<String, Value>> {
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        let doc: Value =
            serde_json::from_slice(&self.bytes).context("the schedule file is not JSON")?;
        match doc {
            Value::Object(map) => Ok(map),
            _ => anyhow::bail!("the schedule file is not a JSON object"),
        }
    }
}

pub struct ScheduleFile {
    path: PathBuf,
}

impl ScheduleFile {
    pub fn new(path: &Path) -> ScheduleFile {
        ScheduleFile {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self) -> Result<Current> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        Ok(Current {
            etag: etag(&bytes),
            bytes,
        })
    }

    /// Replaces the file with `schedule` (keys in order, one per line) and
    /// returns the new ETag.
    pub fn write(&self, schedule: &Schedule) -> Result<String> {
        let mut text = serde_json::to_string_pretty(&schedule.to_json())?;
        text.push('\n');
        atomic::write(&self.path, text.as_bytes())?;
        Ok(etag(text.as_bytes()))
    }
}

/// The reference API's GET answer for `date`, at local time `now`.
pub fn reference_day(schedule: &Schedule, date: NaiveDate, now: NaiveDateTime) -> Value {
    let entries: Vec<Value> = schedule
        .entries()
        .map(|(k, v)| json!({"key": k.as_str(), "value": v.to_json()}))
        .collect();
    let resolved: Vec<Value> = resolve_day(schedule, date)
        .into_iter()
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

fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// The value in force at `now` and the instant it took over (looking back
/// at most a week; a value older than that is "since a week ago").
pub fn in_force(schedule: &Schedule, zone: Tz, now: DateTime<Utc>) -> (Value, f64) {
    let week = steps(schedule, zone, now - TimeDelta::days(7), now);
    week.last()
        .map(|(at, value)| (value.clone(), *at))
        .unwrap_or_else(|| {
            (
                value_at_instant(schedule, &zone, now).value.to_json(),
                unix(now),
            )
        })
}

/// The schedule over `[from, to]` as (instant, value) steps, for the plots'
/// background: the value at `from`, then each change.
pub fn steps(
    schedule: &Schedule,
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(f64, Value)> {
    let mut out = vec![(
        unix(from),
        value_at_instant(schedule, &zone, from).value.to_json(),
    )];
    let mut after = from;
    // A day has at most 24 + (explicit times) changes; this bounds a month.
    for _ in 0..10_000 {
        match next_change_instant(schedule, &zone, after) {
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

    fn keys(errors: &[EntryError]) -> Vec<Option<&str>> {
        errors.iter().map(|e| e.key.as_deref()).collect()
    }

    #[test]
    fn a_valid_schedule_passes_schema_and_parser() {
        let doc = json!({"********0700": 500, "202611231730": "netzero", "2026****1800": "netzero+", "********2300": -300});
        let schedule = validate(&doc).unwrap();
        assert_eq!(schedule.entries().count(), 4);
        assert!(validate(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn every_bad_entry_is_named_once() {
        let doc = json!({
            "2026112317": 500,
            "20261123173x": 500,
            "202611231730": "fast",
            "202611231800": 1.5,
            "202613011200": 100,
            "********0700": 500,
        });
        let errors = validate(&doc).unwrap_err();
        assert_eq!(
            keys(&errors),
            vec![
                Some("2026112317"),
                Some("202611231730"),
                Some("20261123173x"),
                Some("202611231800"),
                Some("202613011200"),
            ],
            "{errors:?}"
        );
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(text[0].contains("12 characters"), "{text:?}");
        assert!(text[1].contains("unknown value \"fast\""), "{text:?}");
        assert!(text[2].contains("'x' is not a digit"), "{text:?}");
        assert!(text[3].contains("not a whole number"), "{text:?}");
        assert!(text[4].contains("month 13"), "{text:?}");
    }

    #[test]
    fn only_an_object_is_a_schedule() {
        let errors = validate(&json!([1, 2])).unwrap_err();
        assert_eq!(keys(&errors), vec![None]);
    }

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
    fn the_etag_follows_the_bytes() {
        assert_eq!(etag(b"{}"), etag(b"{}"));
        assert_ne!(etag(b"{}"), etag(b"{ }"));
        assert!(etag(b"").starts_with('"') && etag(b"").ends_with('"'));
    }

    #[test]
    fn the_reference_day_has_its_fields() {
        let schedule = validate(&json!({"********0700": 500, "202611231730": "netzero"})).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let now = date.and_hms_opt(9, 41, 0).unwrap();
        let day = reference_day(&schedule, date, now);
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

    #[test]
    fn the_file_is_replaced_whole_and_its_etag_changes() {
        let dir = std::env::temp_dir().join(format!("zcell-schedfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = ScheduleFile::new(&dir.join("schedule.json"));
        let empty = file.read().unwrap();
        assert!(empty.document().unwrap().is_empty());
        let schedule = validate(&json!({"********0700": 500})).unwrap();
        let tag = file.write(&schedule).unwrap();
        let now = file.read().unwrap();
        assert_eq!(now.etag, tag);
        assert_ne!(now.etag, empty.etag);
        assert_eq!(now.document().unwrap()["********0700"], 500);
        std::fs::write(file.path(), "[]").unwrap();
        assert!(file.read().unwrap().document().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
