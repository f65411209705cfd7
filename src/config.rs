//! Reading the JSON config file: the serde types every system's section
//! is made of, and the one place that turns serde's error into the key at
//! fault and what is wrong with it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

/// A number of seconds as written, fractions allowed, before its range is
/// checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawSeconds(pub f64);

impl<'de> Deserialize<'de> for RawSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawSeconds, D::Error> {
        struct Number;
        impl Visitor<'_> for Number {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("seconds (a number)")
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<f64, E> {
                Ok(n)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<f64, E> {
                Ok(n as f64)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<f64, E> {
                Ok(n as f64)
            }
        }
        d.deserialize_f64(Number).map(RawSeconds)
    }
}

/// Ten years: more is a typo, and `Duration` arithmetic stays far from
/// overflow.
const MAX_SECONDS: f64 = 86_400.0 * 3660.0;

/// `s` seconds, when `low_ok` says its low end is fine.
fn duration(s: f64, low_ok: bool) -> Option<Duration> {
    (low_ok && s.is_finite() && s <= MAX_SECONDS).then(|| Duration::from_secs_f64(s))
}

/// A duration as a config file gives it: seconds, fractions allowed,
/// positive and at most ten years.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "RawSeconds")]
pub struct Seconds(pub Duration);

impl TryFrom<RawSeconds> for Seconds {
    type Error = String;

    fn try_from(RawSeconds(s): RawSeconds) -> Result<Seconds, String> {
        duration(s, s > 0.0)
            .map(Seconds)
            .ok_or_else(|| format!("must be a positive number of seconds, not {s}"))
    }
}

/// Like `Seconds`, but 0 is allowed: a lag or a wait that may be none.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "RawSeconds")]
pub struct SecondsOrZero(pub Duration);

impl TryFrom<RawSeconds> for SecondsOrZero {
    type Error = String;

    fn try_from(RawSeconds(s): RawSeconds) -> Result<SecondsOrZero, String> {
        duration(s, s >= 0.0)
            .map(SecondsOrZero)
            .ok_or_else(|| format!("must be a number of seconds (0 or more), not {s}"))
    }
}

/// A whole number from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<const MIN: i64, const MAX: i64>(pub i64);

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Whole<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Range<const MIN: i64, const MAX: i64>;
        impl<const MIN: i64, const MAX: i64> Visitor<'_> for Range<MIN, MAX> {
            type Value = i64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number from {MIN} to {MAX}")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<i64, E> {
                if (MIN..=MAX).contains(&n) {
                    Ok(n)
                } else {
                    Err(E::invalid_value(de::Unexpected::Signed(n), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<i64, E> {
                match i64::try_from(n) {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Unsigned(n), &self)),
                }
            }
        }
        d.deserialize_i64(Range::<MIN, MAX>).map(Whole)
    }
}

/// What is wrong at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The key is not one of `known`.
    Unknown {
        known: String,
    },
    Missing,
    /// A sentence: "must be ..." or why the value was refused.
    Bad(String),
}

/// A config error: the keys down to the one at fault (list items as
/// `seasons[0]`; none for the object itself) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub path: Vec<String>,
    pub problem: Problem,
}

/// serde's names for what it expected, in the file's words.
fn plain(expected: &str) -> &str {
    match expected {
        "a sequence" => "a list",
        "a map" => "an object",
        "path string" => "a path (a string)",
        "f64" => "a number",
        e if e.starts_with("struct ") => "an object",
        e => e,
    }
}

impl Fault {
    fn new(e: serde_path_to_error::Error<serde_json::Error>) -> Fault {
        let mut path: Vec<String> = match e.path().to_string().as_str() {
            "." => vec![],
            p => p.split('.').map(str::to_string).collect(),
        };
        let message = e.inner().to_string();
        let quoted = |rest: &str| rest.split('`').next().unwrap_or_default().to_string();
        // The path ends at an unknown key already, but not at a missing one.
        let mut at_key = |rest: &str| {
            let key = quoted(rest);
            if path.last() != Some(&key) {
                path.push(key);
            }
        };
        let problem = if let Some(rest) = message.strip_prefix("unknown field `") {
            at_key(rest);
            let known = rest
                .split_once(", expected ")
                .map(|(_, list)| {
                    list.trim_start_matches("one of ")
                        .replace("` or `", ", ")
                        .replace('`', "")
                })
                .unwrap_or_default();
            Problem::Unknown { known }
        } else if let Some(rest) = message.strip_prefix("missing field `") {
            at_key(rest);
            Problem::Missing
        } else if let Some((found, expected)) = message
            .strip_prefix("invalid type: ")
            .or_else(|| message.strip_prefix("invalid value: "))
            .and_then(|rest| rest.split_once(", expected "))
        {
            Problem::Bad(format!("must be {}, not {found}", plain(expected)))
        } else {
            Problem::Bad(message)
        };
        Fault { path, problem }
    }
}

/// The config file at `path`, read and parsed as JSON; each system's
/// loader takes its section from it.
pub fn document(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("config file {}: not valid JSON", path.display()))
}

/// Deserialises `value`, saying where it went wrong.
pub fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, Fault> {
    serde_path_to_error::deserialize(value).map_err(Fault::new)
}

/// Deserialises `value`, the object at `prefix`, naming the key at fault
/// in an error (`serve.retention: must be ...`, `zendure.meter.x: unknown
/// key (known: ...)`).
pub fn section<T: DeserializeOwned>(prefix: &str, value: &Value) -> Result<T> {
    // serde fills a struct from an array too, by position.
    ensure!(
        value.is_object(),
        "{prefix}: must be an object, not {value}"
    );
    deserialize(value).map_err(|fault| {
        let at = std::iter::once(prefix)
            .chain(fault.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".");
        match fault.problem {
            Problem::Unknown { known } => anyhow!("{at}: unknown key (known: {known})"),
            Problem::Missing => anyhow!("{at}: missing"),
            Problem::Bad(said) => anyhow!("{at}: {said}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        every: Option<Seconds>,
        name: Option<String>,
    }

    fn error(value: Value) -> String {
        format!("{:#}", section::<Section>("demo", &value).unwrap_err())
    }

    #[test]
    fn seconds_are_positive_and_may_be_fractions() {
        let s: Section = section("demo", &json!({"every": 0.25})).unwrap();
        assert_eq!(s.every, Some(Seconds(Duration::from_millis(250))));
        assert_eq!(s.name, None);
        assert_eq!(
            error(json!({"every": -1})),
            "demo.every: must be a positive number of seconds, not -1"
        );
        assert!(error(json!({"every": 0})).starts_with("demo.every: "));
        assert!(error(json!({"every": "fast"})).starts_with("demo.every: "));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Counts {
        n: Whole<1, 5>,
        wait: Option<SecondsOrZero>,
    }

    #[test]
    fn whole_numbers_and_waits_keep_their_range() {
        let c: Counts = section("demo", &json!({"n": 5, "wait": 0})).unwrap();
        assert_eq!(
            (c.n, c.wait),
            (Whole(5), Some(SecondsOrZero(Duration::ZERO)))
        );
        let said = |v: Value| format!("{:#}", section::<Counts>("demo", &v).unwrap_err());
        assert_eq!(
            said(json!({"n": 6})),
            "demo.n: must be a whole number from 1 to 5, not integer `6`"
        );
        assert_eq!(
            said(json!({"n": 2.5})),
            "demo.n: must be a whole number from 1 to 5, not floating point `2.5`"
        );
        assert_eq!(
            said(json!({"n": 1, "wait": -0.5})),
            "demo.wait: must be a number of seconds (0 or more), not -0.5"
        );
        assert_eq!(said(json!({})), "demo.n: missing");
    }

    #[test]
    fn the_key_at_fault_is_named() {
        assert_eq!(
            error(json!({"colour": 1})),
            "demo.colour: unknown key (known: every, name)"
        );
        assert!(error(json!({"name": 3})).starts_with("demo.name: must be a string, not"));
        assert!(error(json!([1])).starts_with("demo: "));
    }
}
