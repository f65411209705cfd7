//! A price plan for a day: reads the day's prices, plans around the
//! owner's entries (see `core::prices::entries`); `core::prices::view` shows it. The
//! command and the server write it through `schedule_file`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::log;
use crate::zendure::config::ZendureConfig;
use crate::zendure::core::prices::config::{PriceConfig, PriceSource};
use crate::zendure::core::prices::entries::{self, Owned, Proposal};
use crate::zendure::core::prices::plan::Battery;
use crate::zendure::core::prices::tariff::{self, PlanDay, PricePoint, PriceSlot};
use crate::zendure::core::schedule::Schedule;
use crate::zendure::io::http::Http;
use crate::zendure::io::status;

/// The battery as the price planner sees it: the controller's limits and
/// the price section's capacity and efficiency.
pub fn battery(config: &ZendureConfig, prices: &PriceConfig) -> Battery {
    Battery {
        capacity_wh: prices.capacity_wh,
        min_soc_percent: f64::from(config.limits.min_soc_pct),
        max_soc_percent: f64::from(config.limits.max_soc_pct),
        max_charge_w: f64::from(config.limits.max_charge_w),
        max_discharge_w: f64::from(config.limits.max_discharge_w),
        round_trip_efficiency: prices.round_trip_efficiency,
    }
}

/// The SoC the running controller last read, if it runs.
fn live_soc(config: &ZendureConfig, now: DateTime<Utc>) -> Option<f64> {
    match status::read(&config.status_file) {
        Ok(Some(doc)) if status::alive(&doc, now) => doc.device.soc_pct.map(f64::from),
        Ok(_) => None,
        Err(e) => {
            log(&format!("{e:#}; planning from zendure.min_soc"));
            None
        }
    }
}

async fn read_prices(source: &PriceSource, http: &Http) -> Result<String> {
    let bytes = match source {
        PriceSource::File(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        PriceSource::Url(url) => http.get(url).await.with_context(|| url.clone())?,
    };
    String::from_utf8(bytes).with_context(|| format!("{source}: not UTF-8 text"))
}

/// Day-ahead prices from a URL by date, fetched once and kept an hour: a
/// plan proposed again (the page, a script) asks the source nothing, and a
/// few days at most are held. A price file is read each time (an edit
/// shows at once).
#[derive(Default)]
pub struct PriceCache {
    /// One fetch at a time, so two requests for the same day never fetch
    /// it twice.
    days: tokio::sync::Mutex<Vec<CachedDay>>,
}

/// A date, when its prices were fetched, and the price points.
type CachedDay = (NaiveDate, Instant, Arc<Vec<PricePoint>>);

const CACHED_DAYS: usize = 4;
const CACHED_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

impl PriceCache {
    async fn points(
        &self,
        date: NaiveDate,
        source: &PriceSource,
        http: &Http,
        tz: Tz,
    ) -> Result<Arc<Vec<PricePoint>>> {
        if let PriceSource::File(_) = source {
            return Ok(Arc::new(tariff::parse(
                &read_prices(source, http).await?,
                tz,
            )?));
        }
        let mut days = self.days.lock().await;
        days.retain(|(_, at, _)| at.elapsed() < CACHED_FOR);
        if let Some((_, _, points)) = days.iter().find(|(d, _, _)| *d == date) {
            return Ok(points.clone());
        }
        let text = read_prices(source, http).await?;
        let points = Arc::new(tariff::parse(&text, tz)?);
        if days.len() >= CACHED_DAYS {
            days.remove(0);
        }
        days.push((date, Instant::now(), points.clone()));
        Ok(points)
    }
}

/// Reads the day's prices and plans it around the owner's entries of
/// `current`. `soc`: the SoC to start from (default: for today, the running
/// controller's reading, else `min_soc`). The prices come from `cache`
/// when it holds the day.
pub async fn propose(
    config: &ZendureConfig,
    day: PlanDay,
    soc: Option<f64>,
    current: &Schedule,
    owned: &Owned,
    now: DateTime<Utc>,
    cache: &PriceCache,
) -> Result<Proposal> {
    let price_config = config
        .prices
        .as_ref()
        .context("zendure.prices: missing (the price source and the battery's capacity)")?;
    let battery = battery(config, price_config);
    let tz = config.time_zone;
    let today = now.with_timezone(&tz).date_naive();
    let date = match day {
        PlanDay::Today => today,
        PlanDay::Tomorrow => today + Duration::days(1),
        PlanDay::Date(d) => d,
    };
    let soc = match soc {
        Some(soc) => soc,
        None if date == today => live_soc(config, now).unwrap_or(battery.min_soc_percent),
        None => battery.min_soc_percent,
    }
    .clamp(0.0, 100.0);
    let slots = day_slots(config, price_config, date, now, cache).await?;
    Ok(entries::propose(
        current,
        owned,
        slots,
        &battery,
        soc,
        price_config.threshold_eur_per_kwh,
        tz,
    ))
}

/// The local day's priced intervals that have not ended at `now` (a past
/// day's all: `now` before it), from `cache` when it holds the day.
async fn day_slots(
    config: &ZendureConfig,
    price_config: &PriceConfig,
    date: NaiveDate,
    now: DateTime<Utc>,
    cache: &PriceCache,
) -> Result<Vec<PriceSlot>> {
    let tz = config.time_zone;
    let (from, till) = tariff::day_bounds(date, tz);
    let source = price_config.source.for_day(date, from, till);
    let http = Http::new(config.timings.http_timeout)?;
    cache
        .points(date, &source, &http, tz)
        .await
        .and_then(|points| tariff::day_slots(&points, date, tz, &price_config.tariff, now))
        .with_context(|| format!("prices from {source}"))
}

/// All of the local day's priced intervals, its hours past included: what
/// the energy account costs readings and hours with.
pub async fn whole_day_slots(
    config: &ZendureConfig,
    price_config: &PriceConfig,
    date: NaiveDate,
    cache: &PriceCache,
) -> Result<Vec<PriceSlot>> {
    let (start, _) = tariff::day_bounds(date, config.time_zone);
    let before = start - chrono::TimeDelta::seconds(1);
    day_slots(config, price_config, date, before, cache).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendure::core::prices::view::tests::sample;

    #[test]
    fn write_order_leaves_no_plan_entry_unlisted() {
        use crate::zendure::io::schedule_file::ScheduleFile;
        use serde_json::Value;
        let dir = std::env::temp_dir().join(format!("zcell-plan-prices-{}", std::process::id()));
        let file = ScheduleFile::new(&dir.join("s.json"));
        let before = Owned {
            entries: [("202611240000".to_string(), Value::from(100))].into(),
        };
        let proposal_owned = Owned {
            entries: [("202611240100".to_string(), Value::from(-100))].into(),
        };
        let schedule_value = serde_json::json!({"202611240100": -100});
        let proposal = Proposal {
            schedule: Schedule::parse(&schedule_value).unwrap(),
            owned: proposal_owned.clone(),
            ..sample()
        };
        let etag = file.write_plan(&before, &proposal).unwrap();
        assert_eq!(file.read().unwrap().etag, etag);
        let read = |p: &std::path::Path| -> Value {
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
        };
        assert_eq!(read(file.path()), schedule_value);
        assert_eq!(
            read(&file.plan_entries_path()),
            serde_json::to_value(&proposal_owned).unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
