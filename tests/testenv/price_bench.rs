//! The price part of `scripts/bench`: over the price days in a folder
//! (files named `YYYY-MM-DD-<kind>.json`, any price shape), the saving of
//! the price planner, of the reference system's rule, and of doing nothing,
//! all played on the same battery model; and the planner's run time.
//! Beside them, the plan as written into a schedule beside an owner's
//! recurring entries (the reference's 0 W every hour; the README's example),
//! played minute by minute as the controller follows it.
//! Prints a table; exits 1 if a target is missed: the planner never below
//! the reference on a day, at least 25% more in total, under 50 ms a day,
//! and the written schedule within 1% of the planner's claim on every day.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono_tz::Europe::Amsterdam;
use price_days::{BATTERY, TARIFF};
use zcell_sched::zendure::core::prices::entries::{Owned, propose};
use zcell_sched::zendure::core::prices::plan::{self as price_plan, Slot};
use zcell_sched::zendure::core::prices::tariff::PriceSlot;
use zcell_sched::zendure::core::schedule::{Schedule, ScheduleValue};

#[path = "price_days.rs"]
mod price_days;

const THRESHOLD_EUR_PER_KWH: f64 = 0.02;
const START_SOC_PERCENT: f64 = 10.0;
const RUNS: usize = 21;

/// The reference system's rule: over the day's hours, pair the cheapest and
/// the dearest while their buy prices differ by at least 0.18 EUR/kWh,
/// +500 W in the one and -500 W in the other, whatever their order; the
/// rest has no value (0 W).
fn reference_rule(slots: &[Slot]) -> Vec<ScheduleValue> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|a, b| {
        slots[*a]
            .buy_eur_per_kwh
            .total_cmp(&slots[*b].buy_eur_per_kwh)
    });
    let mut values = vec![ScheduleValue::Watts(0); slots.len()];
    let (mut cheap, mut dear) = (0, slots.len().saturating_sub(1));
    while cheap < dear
        && slots[order[dear]].buy_eur_per_kwh - slots[order[cheap]].buy_eur_per_kwh >= 0.18
    {
        values[order[cheap]] = ScheduleValue::Watts(500);
        values[order[dear]] = ScheduleValue::Watts(-500);
        cheap += 1;
        dear -= 1;
    }
    values
}

struct Day {
    name: String,
    priced: Vec<PriceSlot>,
    slots: Vec<Slot>,
    spread: f64,
}

/// The owner schedules the plan is written beside: the reference's (a 0 W
/// entry every hour) and the README's example.
fn owners() -> [Schedule; 2] {
    let hourly: serde_json::Map<String, serde_json::Value> = (0..24)
        .map(|h| (format!("********{h:02}00"), serde_json::json!(0)))
        .collect();
    let readme = serde_json::json!({"********0000": "netzero", "********0700": 600,
        "********0900": "netzero+", "********1700": "netzero", "********2300": -300});
    [
        Schedule::parse(&serde_json::Value::Object(hourly)).expect("valid"),
        Schedule::parse(&readme).expect("valid"),
    ]
}

/// The planner's claimed saving and the written schedule's, beside `owner`.
fn as_written(day: &Day, owner: &Schedule) -> (f64, f64) {
    let p = propose(
        owner,
        &Owned::default(),
        day.priced.clone(),
        &BATTERY,
        START_SOC_PERCENT,
        THRESHOLD_EUR_PER_KWH,
        Amsterdam,
    );
    (
        p.expected.saving_eur,
        p.realised(&BATTERY, Amsterdam).saving_eur,
    )
}

fn load(path: &Path) -> Result<Day> {
    let (name, priced) = price_days::load(path)?;
    let slots: Vec<Slot> = priced
        .iter()
        .map(|p| Slot {
            hours: p.hours(),
            buy_eur_per_kwh: p.buy_eur_per_kwh,
            sell_eur_per_kwh: p.sell_eur_per_kwh,
            house_w: 0.0,
            fixed: None,
        })
        .collect();
    let buy = slots.iter().map(|s| s.buy_eur_per_kwh);
    let spread = buy.clone().fold(f64::MIN, f64::max) - buy.fold(f64::MAX, f64::min);
    Ok(Day {
        name,
        priced,
        slots,
        spread,
    })
}

fn median_run(day: &Day) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(price_plan::plan(
                &BATTERY,
                START_SOC_PERCENT,
                std::hint::black_box(&day.slots),
                THRESHOLD_EUR_PER_KWH,
            ));
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("zcell-test-price-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: zcell-test-price-bench DIR")?;
    let paths = price_days::paths(&dir)?;
    println!(
        "battery {} Wh, {}-{}% SoC, {}/{} W, round trip {}, from {}% SoC; \
         VAT {}%, markup {} EUR/kWh, threshold {} EUR/kWh",
        BATTERY.capacity_wh,
        BATTERY.min_soc_percent,
        BATTERY.max_soc_percent,
        BATTERY.max_charge_w,
        BATTERY.max_discharge_w,
        BATTERY.round_trip_efficiency,
        START_SOC_PERCENT,
        TARIFF.vat_percent,
        TARIFF.markup_eur_per_kwh,
        THRESHOLD_EUR_PER_KWH
    );
    println!(
        "{:<34} {:>5} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "day",
        "slots",
        "spread",
        "nothing",
        "reference",
        "planner",
        "cycles",
        "plan ms",
        "0W claim",
        "0W file",
        "ex claim",
        "ex file"
    );
    let (mut total_ref, mut total_plan, mut worst_ms) = (0.0, 0.0, 0.0f64);
    let mut below_reference = Vec::new();
    let mut not_as_planned = Vec::new();
    let owners = owners();
    for path in &paths {
        let day = load(path)?;
        let nothing = vec![ScheduleValue::Watts(0); day.slots.len()];
        let score = |values: &[ScheduleValue]| {
            price_plan::simulate(&BATTERY, START_SOC_PERCENT, &day.slots, values)
        };
        let idle = score(&nothing).saving_eur;
        let reference = score(&reference_rule(&day.slots)).saving_eur;
        let plan = price_plan::plan(
            &BATTERY,
            START_SOC_PERCENT,
            &day.slots,
            THRESHOLD_EUR_PER_KWH,
        );
        let planned = plan.expected.saving_eur;
        let ms = median_run(&day).as_secs_f64() * 1000.0;
        let usable_kwh =
            BATTERY.capacity_wh * (BATTERY.max_soc_percent - BATTERY.min_soc_percent) / 100_000.0;
        let written = owners.each_ref().map(|owner| as_written(&day, owner));
        if written
            .iter()
            .any(|(claim, file)| (file - claim).abs() > 0.01 * claim.abs() + 1e-9)
        {
            not_as_planned.push(day.name.clone());
        }
        println!(
            "{:<34} {:>5} {:>7.3} {:>9.3} {:>9.3} {:>9.3} {:>8.2} {:>8.2} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            day.name,
            day.slots.len(),
            day.spread,
            idle,
            reference,
            planned,
            plan.expected.discharged_kwh / usable_kwh,
            ms,
            written[0].0,
            written[0].1,
            written[1].0,
            written[1].1
        );
        total_ref += reference;
        total_plan += planned;
        worst_ms = worst_ms.max(ms);
        // A cent's rounding is not a loss to the reference.
        if planned < reference - 1e-6 {
            below_reference.push(day.name);
        }
    }
    println!(
        "{:<34} {:>5} {:>7} {:>9.3} {:>9.3} {:>9.3}",
        "total (EUR saved)", "", "", 0.0, total_ref, total_plan
    );
    let gain = if total_ref > 0.0 {
        (total_plan / total_ref - 1.0) * 100.0
    } else {
        f64::INFINITY
    };
    let mut met = true;
    let mut verdict = |what: String, ok: bool| {
        println!("{what:<70} {}", if ok { "ok" } else { "MISSED" });
        met &= ok;
    };
    verdict(
        format!(
            "planner never below the reference on a day (below on: {})",
            if below_reference.is_empty() {
                "none".to_string()
            } else {
                below_reference.join(", ")
            }
        ),
        below_reference.is_empty(),
    );
    verdict(
        format!(
            "written schedule within 1% of the plan's claim on every day (not on: {})",
            if not_as_planned.is_empty() {
                "none".to_string()
            } else {
                not_as_planned.join(", ")
            }
        ),
        not_as_planned.is_empty(),
    );
    verdict(
        format!("planner total {gain:+.0}% over the reference (target >= +25%)"),
        gain >= 25.0,
    );
    verdict(
        format!("planner run time, slowest day median {worst_ms:.2} ms (target < 50 ms)"),
        worst_ms < 50.0,
    );
    Ok(met)
}
