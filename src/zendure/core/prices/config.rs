//! The `zendure.prices` object of the config file: where the day-ahead
//! prices come from, the tariff on top of them, and the battery facts the
//! price planner needs beyond the controller's limits.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;

use crate::config::{number, object, string};
use crate::zendure::core::prices::tariff::{Export, Tariff};

/// A price document: a file, or a URL in which `{date}` (YYYY-MM-DD),
/// `{from}` and `{till}` (the day's bounds, RFC 3339 UTC) are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceSource {
    File(PathBuf),
    Url(String),
}

impl PriceSource {
    /// The URL for one day, or the file.
    pub fn for_day(&self, date: NaiveDate, from: DateTime<Utc>, till: DateTime<Utc>) -> Self {
        match self {
            PriceSource::File(p) => PriceSource::File(p.clone()),
            PriceSource::Url(u) => PriceSource::Url(
                u.replace("{date}", &date.format("%Y-%m-%d").to_string())
                    .replace("{from}", &from.to_rfc3339_opts(SecondsFormat::Millis, true))
                    .replace("{till}", &till.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ),
        }
    }
}

impl std::fmt::Display for PriceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriceSource::File(p) => write!(f, "{}", p.display()),
            PriceSource::Url(u) => f.write_str(u),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceConfig {
    pub source: PriceSource,
    pub tariff: Tariff,
    pub capacity_wh: f64,
    pub round_trip_efficiency: f64,
    pub threshold_eur_per_kwh: f64,
}

const KEYS: &str = "source, vat_percent, markup_eur_per_kwh, export_fee_eur_per_kwh, \
                    capacity_wh, round_trip_efficiency, threshold_eur_per_kwh";

/// Checks `zendure.prices`; every error names its key.
pub fn parse(value: &Value) -> Result<PriceConfig> {
    let fields = object("zendure.prices", value)?;
    if let Some(key) = fields
        .keys()
        .find(|k| !KEYS.split(", ").any(|known| known == k.as_str()))
    {
        bail!("zendure.prices.{key}: unknown key (known: {KEYS})");
    }
    let get = |key: &str| fields.get(key).filter(|v| !v.is_null());
    let named = |key: &str| format!("zendure.prices.{key}");
    let num = |key: &str, default: Option<f64>, range: std::ops::RangeInclusive<f64>| match get(key)
    {
        Some(v) => number(&named(key), v, range),
        None => default.with_context(|| format!("{}: missing", named(key))),
    };
    let source_text = string(
        &named("source"),
        get("source").context("zendure.prices.source: missing")?,
    )?;
    let source = if source_text.starts_with("http://") || source_text.starts_with("https://") {
        PriceSource::Url(source_text.to_string())
    } else {
        ensure!(
            !source_text.is_empty() && !source_text.contains("://"),
            "zendure.prices.source: `{source_text}` is neither an http(s) URL nor a file path"
        );
        PriceSource::File(PathBuf::from(source_text))
    };
    let export = match get("export_fee_eur_per_kwh") {
        None => Export::NetMetering,
        Some(v) => Export::Market {
            fee_eur_per_kwh: number(&named("export_fee_eur_per_kwh"), v, -10.0..=10.0)?,
        },
    };
    let round_trip_efficiency = num("round_trip_efficiency", Some(0.85), 0.0..=1.0)?;
    ensure!(
        round_trip_efficiency > 0.0,
        "zendure.prices.round_trip_efficiency: must be above 0"
    );
    let capacity_wh = num("capacity_wh", None, 0.0..=1_000_000.0)?;
    ensure!(
        capacity_wh > 0.0,
        "zendure.prices.capacity_wh: must be above 0"
    );
    Ok(PriceConfig {
        source,
        tariff: Tariff {
            vat_percent: num("vat_percent", Some(0.0), 0.0..=100.0)?,
            markup_eur_per_kwh: num("markup_eur_per_kwh", Some(0.0), -10.0..=10.0)?,
            export,
        },
        capacity_wh,
        round_trip_efficiency,
        threshold_eur_per_kwh: num("threshold_eur_per_kwh", Some(0.02), 0.0..=10.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_a_full_object() {
        let c = parse(&json!({"source": "/var/lib/prices.json", "capacity_wh": 1920})).unwrap();
        assert_eq!(c.source, PriceSource::File("/var/lib/prices.json".into()));
        assert_eq!(c.tariff.vat_percent, 0.0);
        assert_eq!(c.tariff.export, Export::NetMetering);
        assert_eq!(c.round_trip_efficiency, 0.85);
        assert_eq!(c.threshold_eur_per_kwh, 0.02);
        let c = parse(&json!({
            "source": "https://example.org/p?d={date}", "capacity_wh": 2880,
            "vat_percent": 21, "markup_eur_per_kwh": 0.13, "export_fee_eur_per_kwh": 0.01,
            "round_trip_efficiency": 0.9, "threshold_eur_per_kwh": 0.05
        }))
        .unwrap();
        assert_eq!(
            c.tariff,
            Tariff {
                vat_percent: 21.0,
                markup_eur_per_kwh: 0.13,
                export: Export::Market {
                    fee_eur_per_kwh: 0.01
                }
            }
        );
        let date = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let t = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(
            c.source.for_day(date, t, t).to_string(),
            "https://example.org/p?d=2026-11-24"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (json!([]), "zendure.prices` must be an object"),
            (json!({"capacity_wh": 1}), "zendure.prices.source: missing"),
            (
                json!({"source": "p"}),
                "zendure.prices.capacity_wh: missing",
            ),
            (
                json!({"source": "ftp://x", "capacity_wh": 1}),
                "zendure.prices.source: `ftp://x`",
            ),
            (
                json!({"source": "p", "capacity_wh": 0}),
                "zendure.prices.capacity_wh: must be above 0",
            ),
            (
                json!({"source": "p", "capacity_wh": 1, "vat_percent": "21"}),
                "zendure.prices.vat_percent` must be a number",
            ),
            (
                json!({"source": "p", "capacity_wh": 1, "round_trip_efficiency": 1.5}),
                "zendure.prices.round_trip_efficiency` must be a number from 0 to 1",
            ),
            (
                json!({"source": "p", "capacity_wh": 1, "colour": 1}),
                "zendure.prices.colour: unknown key",
            ),
        ];
        for (value, want) in cases {
            let err = format!("{:#}", parse(&value).unwrap_err());
            assert!(err.contains(want), "{value}: {err}");
        }
    }
}
