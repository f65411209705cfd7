//! The `zendure.prices` object of the config file: where the day-ahead
//! prices come from, the tariff on top of them, and the battery facts the
//! price planner needs beyond the controller's limits.

use std::path::PathBuf;

use std::ops::RangeInclusive;

use anyhow::{Result, ensure};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::config;
use crate::zendure::core::prices::tariff::{Export, Tariff};

/// A price document: a file, or a URL in which `{date}` (YYYY-MM-DD),
/// `{from}` and `{till}` (the day's bounds, RFC 3339 UTC) are filled in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
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

/// The `prices` object as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesText {
    source: PriceSource,
    vat_percent: Option<f64>,
    markup_eur_per_kwh: Option<f64>,
    export_fee_eur_per_kwh: Option<f64>,
    capacity_wh: f64,
    round_trip_efficiency: Option<f64>,
    threshold_eur_per_kwh: Option<f64>,
}

impl TryFrom<String> for PriceSource {
    type Error = String;

    fn try_from(text: String) -> Result<PriceSource, String> {
        if text.starts_with("http://") || text.starts_with("https://") {
            Ok(PriceSource::Url(text))
        } else if text.is_empty() || text.contains("://") {
            Err(format!(
                "`{text}` is neither an http(s) URL nor a file path"
            ))
        } else {
            Ok(PriceSource::File(PathBuf::from(text)))
        }
    }
}

/// `n` when it is in `range`; `key` names it otherwise.
fn within(key: &str, n: f64, range: RangeInclusive<f64>) -> Result<f64> {
    ensure!(
        range.contains(&n),
        "zendure.prices.{key}: must be a number from {} to {}, not {n}",
        range.start(),
        range.end()
    );
    Ok(n)
}

/// Checks `zendure.prices`; every error names its key.
pub fn parse(value: &Value) -> Result<PriceConfig> {
    ensure!(
        value.is_object(),
        "`zendure.prices` must be an object, not {value}"
    );
    let file: PricesText = config::section("zendure.prices", value)?;
    let export = match file.export_fee_eur_per_kwh {
        None => Export::NetMetering,
        Some(fee) => Export::Market {
            fee_eur_per_kwh: within("export_fee_eur_per_kwh", fee, -10.0..=10.0)?,
        },
    };
    let round_trip_efficiency = within(
        "round_trip_efficiency",
        file.round_trip_efficiency.unwrap_or(0.85),
        0.0..=1.0,
    )?;
    ensure!(
        round_trip_efficiency > 0.0,
        "zendure.prices.round_trip_efficiency: must be above 0"
    );
    let capacity_wh = within("capacity_wh", file.capacity_wh, 0.0..=1_000_000.0)?;
    ensure!(
        capacity_wh > 0.0,
        "zendure.prices.capacity_wh: must be above 0"
    );
    Ok(PriceConfig {
        source: file.source,
        tariff: Tariff {
            vat_percent: within("vat_percent", file.vat_percent.unwrap_or(0.0), 0.0..=100.0)?,
            markup_eur_per_kwh: within(
                "markup_eur_per_kwh",
                file.markup_eur_per_kwh.unwrap_or(0.0),
                -10.0..=10.0,
            )?,
            export,
        },
        capacity_wh,
        round_trip_efficiency,
        threshold_eur_per_kwh: within(
            "threshold_eur_per_kwh",
            file.threshold_eur_per_kwh.unwrap_or(0.02),
            0.0..=10.0,
        )?,
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
                "zendure.prices.vat_percent: must be a number",
            ),
            (
                json!({"source": "p", "capacity_wh": 1, "round_trip_efficiency": 1.5}),
                "zendure.prices.round_trip_efficiency: must be a number from 0 to 1",
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
