//! `zcell-sched zendure plan-prices`: reads the day's prices and the
//! schedule file, plans (see `price_schedule`), shows the plan, and writes
//! the schedule and the list of the plan's entries.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::atomic;
use crate::cli::{PlanDay, PlanPricesArgs};
use crate::exit::{Exit, ExitContext, Failure};
use crate::log;
use crate::zendure::config::{self, ScheduleSource, ZendureConfig};
use crate::zendure::http::Http;
use crate::zendure::price_config::{PriceConfig, PriceSource};
use crate::zendure::price_plan::Battery;
use crate::zendure::price_schedule::{self, Owned, Proposal};
use crate::zendure::prices;
use crate::zendure::schedule::Schedule;
use crate::zendure::status;

/// The list of the plan's entries, in the state folder.
pub fn owned_path(config: &ZendureConfig) -> PathBuf {
    config.state_dir.join("zendure-price-plan.json")
}

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
fn live_soc(config: &ZendureConfig, now: chrono::DateTime<Utc>) -> Option<f64> {
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

pub async fn plan_prices(args: &PlanPricesArgs) -> Result<(), Failure> {
    let config = config::load(args.config.as_deref()).or_exit(Exit::Usage)?;
    let price_config = config
        .prices
        .as_ref()
        .context("zendure.prices: missing (the price source and the battery's capacity)")
        .or_exit(Exit::Usage)?;
    let schedule_path = match &config.schedule {
        ScheduleSource::File(path) => path.clone(),
        ScheduleSource::Url(url) => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "zendure.schedule: {url} is a URL; plan-prices writes a schedule file \
                     (on the server, use its POST /api/schedule/plan)"
                ),
            ));
        }
    };
    let battery = battery(&config, price_config);
    let tz = config.time_zone;
    let now = Utc::now();
    let today = now.with_timezone(&tz).date_naive();
    let date = match args.date {
        PlanDay::Today => today,
        PlanDay::Tomorrow => today + Duration::days(1),
        PlanDay::Date(d) => d,
    };
    let soc = match args.soc {
        Some(soc) => soc,
        None if date == today => live_soc(&config, now).unwrap_or(battery.min_soc_percent),
        None => battery.min_soc_percent,
    }
    .clamp(0.0, 100.0);

    let (from, till) = prices::day_bounds(date, tz);
    let source = price_config.source.for_day(date, from, till);
    let http = Http::new(config.timings.http_timeout).or_exit(Exit::Fallback)?;
    let text = read_prices(&source, &http)
        .await
        .with_context(|| format!("prices from {source}"))
        .or_exit(Exit::Fallback)?;
    let slots = prices::parse(&text, tz)
        .and_then(|points| prices::day_slots(&points, date, tz, &price_config.tariff, now))
        .with_context(|| format!("prices from {source}"))
        .or_exit(Exit::Fallback)?;

    let current = match read_json(&schedule_path).or_exit(Exit::Fallback)? {
        Some(doc) => Schedule::parse(&doc)
            .with_context(|| format!("schedule {}", schedule_path.display()))
            .or_exit(Exit::Fallback)?,
        None => Schedule::default(),
    };
    let owned_file = owned_path(&config);
    let owned: Owned = match read_json(&owned_file).or_exit(Exit::Fallback)? {
        Some(doc) => serde_json::from_value(doc)
            .with_context(|| format!("{}: not a list of plan entries", owned_file.display()))
            .or_exit(Exit::Fallback)?,
        None => Owned::default(),
    };

    let proposal = price_schedule::propose(
        &current,
        &owned,
        slots,
        &battery,
        soc,
        price_config.threshold_eur_per_kwh,
        tz,
    );
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
    write(&schedule_path, &owned_file, &owned, &proposal).or_exit(Exit::Fallback)?;
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

/// Writes so that a crash at any point leaves every plan entry listed: the
/// list first grows to old and new, then the schedule, then the list shrinks.
fn write(schedule: &Path, owned_file: &Path, before: &Owned, proposal: &Proposal) -> Result<()> {
    if let Some(folder) = owned_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let mut both = before.clone();
    both.entries.extend(proposal.owned.entries.clone());
    let as_json = |o: &Owned| serde_json::to_value(o).expect("the list serialises");
    write_json(owned_file, &as_json(&both))?;
    write_json(schedule, &proposal.schedule.to_json())?;
    write_json(owned_file, &as_json(&proposal.owned))
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
        write(&schedule, &owned_file, &before, &proposal).unwrap();
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
