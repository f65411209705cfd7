//! Reading the JSON config file: the typed accessors every system's section
//! uses, each naming the key it reads so an error says where to look.

use anyhow::{Context, Result};
use serde_json::{Map, Value};

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
