//! The price days of `tests/testenv/data/prices` (files named
//! `YYYY-MM-DD-<kind>.json`, any price shape) and the battery and tariff
//! they are played on: shared by the price bench and the tests that hold
//! the planner to them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Amsterdam;
use zcell_sched::zendure::core::prices::plan::Battery;
use zcell_sched::zendure::core::prices::tariff::{self, Export, PriceSlot, Tariff};

/// A SolarFlow 800 Pro on a Dutch dynamic contract (2026 energy tax plus a
/// supplier's margin, 21% VAT, net metering).
pub const BATTERY: Battery = Battery {
    capacity_wh: 1920.0,
    min_soc_percent: 10.0,
    max_soc_percent: 100.0,
    max_charge_w: 800.0,
    max_discharge_w: 800.0,
    round_trip_efficiency: 0.85,
};
pub const TARIFF: Tariff = Tariff {
    vat_percent: 21.0,
    markup_eur_per_kwh: 0.13,
    export: Export::NetMetering,
};

/// The price files in `dir`, in date order.
pub fn paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    Ok(paths)
}

/// A day's name (the file's stem) and its priced slots, all of the day.
pub fn load(path: &Path) -> Result<(String, Vec<PriceSlot>)> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .context("file name")?
        .to_string();
    let date = NaiveDate::parse_from_str(name.get(..10).unwrap_or(""), "%Y-%m-%d")
        .with_context(|| format!("{}: name does not start with YYYY-MM-DD", path.display()))?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let points = tariff::parse(&text, Amsterdam).with_context(|| path.display().to_string())?;
    let slots = tariff::day_slots(&points, date, Amsterdam, &TARIFF, DateTime::<Utc>::MIN_UTC)?;
    Ok((name, slots))
}
