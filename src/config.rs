//! Reading the JSON config file: the typed accessors every system's section
//! uses, each naming the key it reads so an error says where to look.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A duration as a config file gives it: seconds, fractions allowed,
/// positive and at most ten years.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Seconds(pub Duration);

impl TryFrom<f64> for Seconds {
    type Error = String;

    fn try_from(s: f64) -> Result<Seconds, String> {
        if s.is_finite() && s > 0.0 && s <= 86_400.0 * 3660.0 {
            Ok(Seconds(Duration::from_secs_f64(s)))
        } else {
            Err(format!("must be a positive number of seconds, not {s}"))
        }
    }
}

/// Deserialises `value`, the object at `prefix`, naming the key at fault
/// in an error (`serve.retention: must be ...`); `known` lists the keys
/// for an unknown one.
pub fn section<T: DeserializeOwned>(prefix: &str, value: &Value, known: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let (key, said) = match message.strip_prefix("unknown field `") {
            Some(rest) => (
                rest.split('`').next().unwrap_or_default().to_string(),
                format!("unknown key (known: {known})"),
            ),
            None => (path, message),
        };
        match key.as_str() {
            "." | "" => anyhow!("{prefix}: {said}"),
            _ => anyhow!("{prefix}.{key}: {said}"),
        }
    })
}

pub fn string<'a>(key: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str()
        .with_context(|| format!("`{key}` must be a string, not {v}"))
}

pub fn strings(key: &str, v: &Value) -> Result<Vec<String>> {
    let list = v
        .as_array()
        .with_context(|| format!("`{key}` must be a list of strings, not {v}"))?;
    list.iter()
        .map(|item| string(key, item).map(str::to_string))
        .collect()
}

pub fn list<T>(key: &str, v: &Value, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    strings(key, v)?
        .iter()
        .map(|s| parse(s).with_context(|| format!("`{key}`")))
        .collect()
}

pub fn integer(key: &str, v: &Value, range: std::ops::RangeInclusive<i64>) -> Result<i64> {
    let n = v.as_i64().filter(|n| range.contains(n)).with_context(|| {
        format!(
            "`{key}` must be a whole number from {} to {}, not {v}",
            range.start(),
            range.end()
        )
    })?;
    Ok(n)
}

pub fn object<'a>(key: &str, v: &'a Value) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .with_context(|| format!("`{key}` must be an object, not {v}"))
}

/// A number (fractions allowed) within `range`.
pub fn number(key: &str, v: &Value, range: std::ops::RangeInclusive<f64>) -> Result<f64> {
    v.as_f64().filter(|n| range.contains(n)).with_context(|| {
        format!(
            "`{key}` must be a number from {} to {}, not {v}",
            range.start(),
            range.end()
        )
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
        format!(
            "{:#}",
            section::<Section>("demo", &value, "every, name").unwrap_err()
        )
    }

    #[test]
    fn seconds_are_positive_and_may_be_fractions() {
        let s: Section = section("demo", &json!({"every": 0.25}), "").unwrap();
        assert_eq!(s.every, Some(Seconds(Duration::from_millis(250))));
        assert_eq!(s.name, None);
        assert_eq!(
            error(json!({"every": -1})),
            "demo.every: must be a positive number of seconds, not -1"
        );
        assert!(error(json!({"every": 0})).starts_with("demo.every: "));
        assert!(error(json!({"every": "fast"})).starts_with("demo.every: "));
    }

    #[test]
    fn the_key_at_fault_is_named() {
        assert_eq!(
            error(json!({"colour": 1})),
            "demo.colour: unknown key (known: every, name)"
        );
        assert!(error(json!({"name": 3})).starts_with("demo.name: invalid type"));
        assert!(error(json!([1])).starts_with("demo: "));
    }
}
