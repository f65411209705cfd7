//! Text for the `zendure` commands: pure formatting of what they read.

use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveTime, TimeDelta};

use crate::zendure::core::law::Limits;
use crate::zendure::core::schedule::{self, Schedule, ScheduleValue};
use crate::zendure::core::status::StatusDoc;

/// A fixed W as it will be applied: clamped to the configured limits (the
/// device's own may lower it further).
pub fn clamp(value: ScheduleValue, limits: Limits) -> Option<i64> {
    match value {
        ScheduleValue::Watts(w) => Some(i64::from(w).clamp(
            -i64::from(limits.max_discharge_w),
            i64::from(limits.max_charge_w),
        )),
        _ => None,
    }
}

fn value_text(value: ScheduleValue, limits: Limits) -> String {
    match (value, clamp(value, limits)) {
        (ScheduleValue::Watts(w), Some(c)) if c != i64::from(w) => {
            format!("{value} (clamped to {c} W)")
        }
        _ => value.to_string(),
    }
}

/// One character per half hour: `C` charge, `D` discharge, `N` netzero,
/// `+` netzero+, `.` 0 W.
pub fn timeline(schedule: &Schedule, date: NaiveDate) -> String {
    const STEP_MINUTES: i64 = 30;
    let cells = TimeDelta::days(1).num_minutes() / STEP_MINUTES;
    let mut bar = String::new();
    let mut hours = String::new();
    for cell in 0..cells {
        let t = NaiveTime::MIN + TimeDelta::minutes(cell * STEP_MINUTES);
        bar.push(match schedule::value_at(schedule, date.and_time(t)).value {
            ScheduleValue::Watts(w) if w > 0 => 'C',
            ScheduleValue::Watts(w) if w < 0 => 'D',
            ScheduleValue::Watts(_) => '.',
            ScheduleValue::NetZero => 'N',
            ScheduleValue::NetZeroPlus => '+',
        });
        if cell % 6 == 0 {
            let _ = write!(hours, "{:<6}", t.format("%H"));
        }
    }
    format!(
        "timeline  {hours}\n          {bar}\n          C charge  D discharge  N netzero  + netzero+  . 0 W\n"
    )
}

/// `zendure schedule`: one line per change, then the timeline.
pub fn day(schedule: &Schedule, date: NaiveDate, limits: Limits) -> String {
    let mut out = format!("{date}\n");
    for r in schedule::day_changes(schedule, date) {
        let key = r
            .key
            .map_or("no entry: 0 W".to_string(), |k| format!("key {k}"));
        let _ = writeln!(
            out,
            "  {}  {:<28}  {key}",
            r.time.format("%H:%M"),
            value_text(r.value, limits)
        );
    }
    out.push_str(&timeline(schedule, date));
    out
}

/// `zendure status`: the controller's view, as of `age_s` seconds ago.
pub fn status(doc: &StatusDoc, alive: bool, age_s: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "controller    {} (status {:.0} s old, pid {})",
        match (alive, doc.stopped) {
            (true, _) => "running",
            (false, true) => "stopped",
            (false, false) => "NOT running",
        },
        age_s,
        doc.pid
    );
    let d = &doc.device;
    match &d.error {
        Some(e) => {
            let _ = writeln!(out, "device        {}: {e}", d.device);
        }
        None => {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "?".into());
            let _ = writeln!(
                out,
                "device        {} sn {}: SoC {} %, AC {} W, battery {} W{}",
                d.device,
                opt(d.sn.clone()),
                opt(d.soc_pct.map(|v| v.to_string())),
                opt(d.ac_w.map(|v| v.to_string())),
                opt(d.battery_w.map(|v| v.to_string())),
                d.cut_off
                    .as_ref()
                    .map_or(String::new(), |c| format!(" ({c})"))
            );
            let _ = writeln!(
                out,
                "              acMode {}, inputLimit {} W, outputLimit {} W, chargeMaxLimit {} W, inverseMaxPower {} W",
                opt(d.ac_mode.map(|v| v.to_string())),
                opt(d.input_limit_w.map(|v| v.to_string())),
                opt(d.output_limit_w.map(|v| v.to_string())),
                opt(d.charge_max_w.map(|v| v.to_string())),
                opt(d.discharge_max_w.map(|v| v.to_string())),
            );
            for p in &d.packs {
                let f =
                    |v: Option<f64>, unit: &str| v.map_or("?".into(), |v| format!("{v:.2}{unit}"));
                let _ = writeln!(
                    out,
                    "  pack {}  SoC {} %, {} W, {}, max {}, cells {}-{}",
                    p.sn,
                    p.soc_pct.map_or("?".into(), |v| v.to_string()),
                    p.power_w.map_or("?".into(), |v| v.to_string()),
                    f(p.current_a, " A"),
                    f(p.max_temp_c, " °C"),
                    f(p.min_cell_v, " V"),
                    f(p.max_cell_v, " V"),
                );
            }
        }
    }
    let m = &doc.meter;
    let reading = match (m.grid_w, m.age_s) {
        (Some(w), Some(age)) => format!("{w} W ({age:.1} s old)"),
        _ => "no reading".into(),
    };
    let lag = m
        .lag_s
        .map_or(m.lag.clone(), |s| format!("{} {s:.1} s", m.lag));
    let _ = writeln!(
        out,
        "meter         {}: {reading}, lag {lag}{}",
        m.meter,
        m.error
            .as_ref()
            .map_or(String::new(), |e| format!("; last error: {e}"))
    );
    let s = &doc.schedule;
    let _ = writeln!(
        out,
        "schedule      {} ({}){}",
        s.source,
        s.state.replace('_', " "),
        s.error.as_ref().map_or(String::new(), |e| format!("; {e}"))
    );
    let _ = writeln!(
        out,
        "in force      {} since {}{}",
        s.value,
        s.since
            .map_or("?".into(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
        s.key
            .as_ref()
            .map_or(String::new(), |k| format!(" (key {k})"))
    );
    let _ = writeln!(
        out,
        "next change   {}",
        s.next_change
            .as_ref()
            .map_or("none within a week".into(), |c| format!(
                "{} at {}",
                c.value,
                c.at.format("%Y-%m-%d %H:%M")
            ))
    );
    if let Some(manual) = &doc.manual {
        let _ = writeln!(
            out,
            "override      {manual} (the schedule's value set aside)"
        );
    }
    let _ = writeln!(out, "target        {} ({})", doc.target.text, doc.reason);
    let _ = writeln!(
        out,
        "last command  {}",
        doc.last_command
            .as_ref()
            .map_or("none yet".into(), |c| format!(
                "{} at {}",
                c.command.text,
                c.written.format("%Y-%m-%d %H:%M:%S UTC")
            ))
    );
    let _ = writeln!(
        out,
        "since start   {} writes, {} direction changes",
        doc.writes, doc.direction_changes
    );
    if let Some(e) = &doc.energy {
        let t = &e.today.kwh;
        let _ = writeln!(
            out,
            "today         {}: grid import {:.2} kWh, export {:.2} kWh; battery charged {:.2} kWh, \
             discharged {:.2} kWh (measured since {}){}",
            e.today.date,
            t.grid_import_kwh,
            t.grid_export_kwh,
            t.battery_charged_kwh,
            t.battery_discharged_kwh,
            e.since.format("%Y-%m-%d %H:%M UTC"),
            match (e.today.cost_eur, e.today.saving_eur) {
                (Some(cost), Some(saving)) => {
                    format!("\n              grid cost {cost:.2} EUR, saved {saving:.2} EUR")
                }
                _ => String::new(),
            }
        );
    }
    if let Some(r) = &doc.reports {
        let _ = writeln!(
            out,
            "reports       {} delivered, {} queued, {} dropped (queue full), {} rejected{}",
            r.delivered,
            r.queued,
            r.dropped,
            r.rejected,
            r.last_error
                .as_ref()
                .map_or(String::new(), |e| format!("; last error: {e}"))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            max_charge_w: 800,
            max_discharge_w: 600,
            min_soc_pct: 10,
            max_soc_pct: 100,
        }
    }

    #[test]
    fn day_lines_show_changes_clamps_and_the_timeline() {
        let s = Schedule::parse(&json!({"********0700": 2000, "********0930": "netzero", "********1200": "netzero+", "********1800": -300}))
            .unwrap();
        let text = day(&s, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), limits());
        assert!(text.contains("00:00  0 W"), "{text}");
        assert!(text.contains("07:00  2000 W (clamped to 800 W)"), "{text}");
        assert!(text.contains("09:30  netzero"), "{text}");
        assert!(text.contains("18:00  -300 W"), "{text}");
        let bar = text.lines().nth(7).unwrap().trim();
        assert_eq!(bar.len(), 48);
        assert_eq!(&bar[..14], "..............");
        assert_eq!(&bar[14..19], "CCCCC");
        assert_eq!(&bar[19..24], "NNNNN");
        assert_eq!(&bar[24..36], "++++++++++++");
        assert_eq!(&bar[36..], "DDDDDDDDDDDD");
    }

    #[test]
    fn status_shows_todays_energy() {
        use crate::zendure::core::controller::{Core, Event, tests::settings};
        use crate::zendure::core::law::Moment;
        use crate::zendure::core::prices::tariff::PriceSlot;
        use chrono::{DateTime, Utc};
        let mut core = Core::new(settings());
        let start: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        core.step(Event::Started { wall: start });
        let unpriced = status(&core.status(Moment::default(), start), true, 0.0);
        assert!(!unpriced.contains("grid cost"), "{unpriced}");
        core.step(Event::Prices(vec![PriceSlot {
            start,
            end: start + TimeDelta::hours(1),
            market_eur_per_kwh: 0.1,
            buy_eur_per_kwh: 0.3,
            sell_eur_per_kwh: 0.1,
        }]));
        for s in 0..=6 {
            let at = Moment(std::time::Duration::from_secs(s));
            let wall = start + TimeDelta::seconds(s as i64);
            core.step(Event::Meter {
                at,
                wall,
                result: Ok(-600_000),
            });
        }
        let doc = core.status(
            Moment(std::time::Duration::from_secs(6)),
            start + TimeDelta::seconds(6),
        );
        let text = status(&doc, true, 0.0);
        assert!(
            text.contains("today         2026-12-05: grid import 0.00 kWh, export 1.00 kWh; battery charged 0.00 kWh, discharged 0.00 kWh (measured since 2026-12-05 10:00 UTC)\n              grid cost -0.10 EUR, saved 0.00 EUR\n"),
            "{text}"
        );
    }

    #[test]
    fn clamps_only_fixed_values() {
        assert_eq!(clamp(ScheduleValue::Watts(-5000), limits()), Some(-600));
        assert_eq!(clamp(ScheduleValue::Watts(100), limits()), Some(100));
        assert_eq!(clamp(ScheduleValue::NetZero, limits()), None);
    }
}
