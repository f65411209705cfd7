//! `zcell-sched zendure plan-prices`: reads the day's prices and the
//! schedule file, plans (see `price_schedule`), shows the plan, and writes
//! the schedule and the list of the plan's entries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::atomic;
use crate::cli::PlanPricesArgs;
use crate::exit::{Exit, ExitContext, Failure};
use crate::log;
use crate::zendure::config::{self, ScheduleSource, ZendureConfig};
use crate::zendure::http::Http;
use crate::zendure::price_config::{PriceConfig, PriceSource};
use crate::zendure::price_plan::Battery;
use crate::zendure::price_schedule::{self, Owned, Proposal};
use crate::zendure::prices::{self, PlanDay, PricePoint};
use crate::zendure::schedule::Schedule;
use crate::zendure::status;

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
        Ok(Some(doc)) if doc.alive(now) => doc.device.soc_pct.map(f64::from),
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
            return Ok(Arc::new(prices::parse(
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
        let points = Arc::new(prices::parse(&text, tz)?);
        if days.len() >= CACHED_DAYS {
            days.remove(0);
        }
        days.push((date, Instant::now(), points.clone()));
        Ok(points)
    }
}

/// A JSON file, or `None` when it does not exist.
fn read_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{}: not valid JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    text.push('\n');
    atomic::write(path, text.as_bytes())
}

/// The list of the plan's entries: beside the schedule file it describes
/// (`schedule.json` -> `schedule.price-plan.json`), so the command and the
/// server share it when they share the schedule.
pub fn owned_path(schedule: &Path) -> PathBuf {
    schedule.with_extension("price-plan.json")
}

pub fn read_owned(path: &Path) -> Result<Owned> {
    match read_json(path)? {
        Some(doc) => serde_json::from_value(doc)
            .with_context(|| format!("{}: not a list of plan entries", path.display())),
        None => Ok(Owned::default()),
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
    let (from, till) = prices::day_bounds(date, tz);
    let source = price_config.source.for_day(date, from, till);
    let http = Http::new(config.timings.http_timeout)?;
    let slots = cache
        .points(date, &source, &http, tz)
        .await
        .and_then(|points| prices::day_slots(&points, date, tz, &price_config.tariff, now))
        .with_context(|| format!("prices from {source}"))?;
    Ok(price_schedule::propose(
        current,
        owned,
        slots,
        &battery,
        soc,
        price_config.threshold_eur_per_kwh,
        tz,
    ))
}

pub async fn plan_prices(args: &PlanPricesArgs) -> Result<(), Failure> {
    let config = config::load(args.config.config.as_deref()).or_exit(Exit::Usage)?;
    if config.prices.is_none() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("zendure.prices: missing (the price source and the battery's capacity)"),
        ));
    }
    let schedule_path = match &config.schedule {
        ScheduleSource::File(path) => path.clone(),
        ScheduleSource::Url(url) => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow!(
                    "zendure.schedule: {url} is a URL; plan-prices writes a schedule file \
                     (on the server, use its POST /api/schedule/plan)"
                ),
            ));
        }
    };
    let current = match read_json(&schedule_path).or_exit(Exit::Fallback)? {
        Some(doc) => Schedule::parse(&doc)
            .with_context(|| format!("schedule {}", schedule_path.display()))
            .or_exit(Exit::Fallback)?,
        None => Schedule::default(),
    };
    let owned_file = owned_path(&schedule_path);
    let owned = read_owned(&owned_file).or_exit(Exit::Fallback)?;
    let cache = PriceCache::default();
    let proposal = propose(
        &config,
        args.date,
        args.soc,
        &current,
        &owned,
        Utc::now(),
        &cache,
    )
    .await
    .or_exit(Exit::Fallback)?;
    let tz = config.time_zone;
    if args.json {
        let mut doc = proposal.to_json(tz);
        doc["written"] = Value::Bool(!args.dry_run);
        println!("{doc:#}");
    } else {
        print!("{}", show(&proposal, tz));
    }
    if args.dry_run {
        return Ok(());
    }
    write(&owned_file, &owned, &proposal, |schedule| {
        write_json(&schedule_path, &schedule.to_json())
    })
    .or_exit(Exit::Fallback)?;
    if !args.json {
        println!(
            "written: {} ({} plan entries replaced by {}; owner entries kept)",
            schedule_path.display(),
            proposal.replaced,
            proposal.entries.len()
        );
    }
    Ok(())
}

/// Writes the schedule with `write_schedule` so that a crash at any point
/// leaves every plan entry listed: the list first grows to old and new,
/// then the schedule is replaced, then the list shrinks to the new.
pub fn write<T>(
    owned_file: &Path,
    before: &Owned,
    proposal: &Proposal,
    write_schedule: impl FnOnce(&Schedule) -> Result<T>,
) -> Result<T> {
    if let Some(folder) = owned_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let mut both = before.clone();
    both.entries.extend(proposal.owned.entries.clone());
    let as_json = |o: &Owned| serde_json::to_value(o).expect("the list serialises");
    write_json(owned_file, &as_json(&both))?;
    let written = write_schedule(&proposal.schedule)?;
    write_json(owned_file, &as_json(&proposal.owned))?;
    Ok(written)
}

/// The plan as text: one line per slot, then the entries and the saving.
pub fn show(p: &Proposal, tz: Tz) -> String {
    let mut out = format!(
        "price plan for {} ({}), from {}% SoC\n  time   market    buy  value        SoC\n",
        p.date,
        tz.name(),
        p.soc_percent
    );
    for (i, slot) in p.slots.iter().enumerate() {
        let value = p.plan.values[i].to_string();
        let mark = if p.owner[i].is_some() {
            "  (owner)"
        } else {
            ""
        };
        out += &format!(
            "  {}  {:6.3} {:6.3}  {:<10} {:4.0}%{mark}\n",
            slot.start.with_timezone(&tz).format("%H:%M"),
            slot.market_eur_per_kwh,
            slot.buy_eur_per_kwh,
            value,
            p.plan.expected.soc_percent[i],
        );
    }
    let entries: Vec<String> = p
        .entries
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_json()))
        .collect();
    out += &format!("entries: {}\n", entries.join(", "));
    out += &format!(
        "expected saving: {:.2} EUR against an idle battery (charge {:.2} kWh, discharge {:.2} kWh)\n",
        p.plan.expected.saving_eur, p.plan.expected.charged_kwh, p.plan.expected.discharged_kwh
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_order_leaves_no_plan_entry_unlisted() {
        let dir = std::env::temp_dir().join(format!("zcell-plan-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (schedule, owned_file) = (dir.join("s.json"), dir.join("state/o.json"));
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
        write(&owned_file, &before, &proposal, |s| {
            write_json(&schedule, &s.to_json())
        })
        .unwrap();
        let read = |p: &Path| read_json(p).unwrap().unwrap();
        assert_eq!(read(&schedule), schedule_value);
        assert_eq!(
            read(&owned_file),
            serde_json::to_value(&proposal_owned).unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn sample() -> Proposal {
        use crate::zendure::prices::{Export, PriceSlot, Tariff};
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-24T00:00:00+01:00")
            .unwrap()
            .with_timezone(&Utc);
        let tariff = Tariff {
            vat_percent: 0.0,
            markup_eur_per_kwh: 0.0,
            export: Export::NetMetering,
        };
        let slots = vec![PriceSlot {
            start,
            end: start + Duration::hours(1),
            market_eur_per_kwh: 0.1,
            buy_eur_per_kwh: tariff.buy(0.1),
            sell_eur_per_kwh: tariff.sell(0.1),
        }];
        let battery = Battery {
            capacity_wh: 1000.0,
            min_soc_percent: 10.0,
            max_soc_percent: 100.0,
            max_charge_w: 500.0,
            max_discharge_w: 500.0,
            round_trip_efficiency: 0.9,
        };
        price_schedule::propose(
            &Schedule::default(),
            &Owned::default(),
            slots,
            &battery,
            10.0,
            0.02,
            chrono_tz::Europe::Amsterdam,
        )
    }

    #[test]
    fn text_shows_each_slot_and_the_saving() {
        let text = show(&sample(), chrono_tz::Europe::Amsterdam);
        assert!(
            text.contains("price plan for 2026-11-24 (Europe/Amsterdam)"),
            "{text}"
        );
        assert!(text.contains("  00:00   0.100  0.100  netzero"), "{text}");
        assert!(
            text.contains("entries: 202611240000: \"netzero\""),
            "{text}"
        );
        assert!(text.contains("expected saving: 0.00 EUR"), "{text}");
    }
}
