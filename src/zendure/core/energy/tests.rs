use chrono::{NaiveDate, TimeZone};
use proptest::prelude::*;

use super::*;

const AMSTERDAM: Tz = chrono_tz::Europe::Amsterdam;
const GAP: std::time::Duration = std::time::Duration::from_secs(30);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn integrator(run: &str) -> Integrator {
    Integrator::new(run.into(), AMSTERDAM, GAP)
}

/// Meter and device readings every `step` seconds over `from..to`, power
/// from `grid(t)` and `battery(t)` (AC = battery here).
fn feed(
    i: &mut Integrator,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: i64,
    grid: impl Fn(DateTime<Utc>) -> i32,
    battery: impl Fn(DateTime<Utc>) -> i32,
) -> Vec<HourRecord> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        i.meter(t, grid(t));
        i.device(t, battery(t), i64::from(battery(t)));
        out.extend(i.finished(t));
        t += TimeDelta::seconds(step);
    }
    out
}

fn sum(records: &[HourRecord]) -> Sums {
    let mut s = Sums::default();
    for r in records {
        s.add(&r.sums);
    }
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// One hour, 10:00 to 11:00 UTC: (grid W, battery W) for its first half,
/// then for its second, read every 2 s.
fn halves(first: (i32, i32), second: (i32, i32)) -> Sums {
    let mut i = integrator("a");
    let (from, to) = (at("2026-12-05T10:00:00Z"), at("2026-12-05T11:00:00Z"));
    let half = at("2026-12-05T10:30:00Z");
    let pick = move |t| if t < half { first } else { second };
    let mut records = feed(&mut i, from, to, 2, move |t| pick(t).0, move |t| pick(t).1);
    records.extend(i.stop(to));
    sum(&records)
}

#[test]
fn a_constant_hour() {
    let mut i = integrator("a");
    let (from, to) = (at("2026-12-05T10:00:00Z"), at("2026-12-05T11:00:00Z"));
    let mut records = feed(&mut i, from, to, 2, |_| 1000, |_| 0);
    records.extend(i.stop(to));
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.hour, from.timestamp());
    assert_eq!(r.run, "a");
    assert!(close(r.sums.import_wh, 1000.0), "{r:?}");
    assert!(close(r.sums.grid_s, 3600.0));
    assert!(close(r.sums.export_wh, 0.0));
    assert!(r.check().is_ok());
}

#[test]
fn steps_split_import_export_and_the_battery() {
    // Half an hour importing 500 W while charging 800 W, then exporting
    // 300 W while discharging 400 W.
    let s = halves((500, 800), (-300, -400));
    assert!(close(s.import_wh, 250.0), "{s:?}");
    assert!(close(s.export_wh, 150.0));
    assert!(close(s.charged_wh, 400.0));
    assert!(close(s.discharged_wh, 200.0));
    // Without the battery: -300 W then +100 W.
    assert!(close(s.import_without_wh, 50.0));
    assert!(close(s.export_without_wh, 150.0));
    assert!(close(s.device_wh, 0.0));
}

#[test]
fn an_hour_is_sent_once_it_cannot_change_and_a_span_splits_at_the_hour() {
    let mut i = integrator("a");
    i.meter(at("2026-12-05T10:59:50Z"), 3600);
    assert!(i.finished(at("2026-12-05T10:59:50Z")).is_empty());
    i.meter(at("2026-12-05T11:00:10Z"), 3600);
    // Still within the gap limit of the hour's end: a reading could come.
    assert!(i.finished(at("2026-12-05T11:00:10Z")).is_empty());
    let done = i.finished(at("2026-12-05T11:00:30Z"));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].hour, at("2026-12-05T10:00:00Z").timestamp());
    assert!(close(done[0].sums.import_wh, 10.0));
    assert!(close(done[0].sums.grid_s, 10.0));
    // Sent once.
    assert!(i.finished(at("2026-12-05T11:30:00Z")).is_empty());
    let rest = i.stop(at("2026-12-05T11:00:20Z"));
    assert_eq!(rest.len(), 1);
    assert!(close(rest[0].sums.import_wh, 20.0), "{rest:?}");
}

#[test]
fn a_gap_is_left_uncovered() {
    let mut i = integrator("a");
    let (from, to) = (at("2026-12-05T10:00:00Z"), at("2026-12-05T11:00:00Z"));
    let (lost, back) = (at("2026-12-05T10:20:00Z"), at("2026-12-05T10:40:00Z"));
    let mut records = feed(&mut i, from, lost, 2, |_| 600, |_| 100);
    records.extend(feed(&mut i, back, to, 2, |_| 600, |_| 100));
    records.extend(i.stop(to));
    let s = sum(&records);
    assert!(close(s.grid_s, 2400.0), "{s:?}");
    assert!(close(s.device_s, 2400.0));
    assert!(close(s.import_wh, 400.0));
    assert!(close(s.charged_wh, 400.0 / 6.0));
    // A span just over the limit counts as nothing.
    let mut j = integrator("b");
    j.meter(from, 1000);
    j.meter(from + TimeDelta::seconds(31), 1000);
    assert!(j.stop(from + TimeDelta::seconds(31)).is_empty());
}

#[test]
fn a_restart_mid_hour_counts_each_run_once() {
    let (from, stop, start, to) = (
        at("2026-12-05T10:00:00Z"),
        at("2026-12-05T10:20:00Z"),
        at("2026-12-05T10:21:00Z"),
        at("2026-12-05T11:00:00Z"),
    );
    let mut first = integrator("run-1");
    let mut records = feed(&mut first, from, stop, 2, |_| 1200, |_| 0);
    records.extend(first.stop(stop));
    let mut second = integrator("run-2");
    records.extend(feed(&mut second, start, to + GAP, 2, |_| 1200, |_| 0));
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r.hour == from.timestamp()));
    assert_ne!(records[0].run, records[1].run);
    let s = sum(&records);
    // The minute between the runs is uncovered, nothing counted twice.
    assert!(close(s.grid_s, 3540.0), "{s:?}");
    assert!(close(s.import_wh, 1180.0));
}

#[test]
fn dst_days_have_23_and_25_hours_in_amsterdam() {
    for (date, hours) in [
        (NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(), 23),
        (NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(), 25),
        (NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(), 24),
    ] {
        let from = AMSTERDAM
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .unwrap()
            .to_utc();
        let next = date.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap();
        let to = AMSTERDAM.from_local_datetime(&next).unwrap().to_utc();
        let mut i = integrator("a");
        let mut records = feed(&mut i, from, to, 10, |_| 1000, |_| 0);
        let end_of_day = to - TimeDelta::seconds(1);
        let (today, _) = i.today(end_of_day);
        records.extend(i.stop(to));
        let stored: Vec<StoredHour> = records
            .iter()
            .map(|r| StoredHour {
                hour: r.hour,
                sums: r.sums,
                prices: None,
            })
            .collect();
        let grouped = days(&stored, AMSTERDAM, &BTreeMap::new());
        let day = grouped.iter().find(|d| d.date == date).unwrap();
        assert_eq!(day.hours.len(), hours, "{date}");
        assert_eq!(day.hours_in_day, hours as i64);
        assert!(
            close(day.kwh.import_kwh, f64::from(hours as u32)),
            "{date}: {day:?}"
        );
        assert!(close(day.covered_hours, f64::from(hours as u32)));
        assert_eq!(day.cost_eur, None);
        assert!(close(today.import_wh / 1000.0, f64::from(hours as u32)));
        // The next local day starts from zero.
        assert_eq!(i.today(to), (Sums::default(), None));
    }
}

#[test]
fn records_out_of_range_are_refused() {
    let good = HourRecord {
        hour: 3600 * 10,
        run: "r".into(),
        sums: Sums {
            import_wh: 1.0,
            grid_s: 3600.0,
            ..Sums::default()
        },
    };
    assert!(good.check().is_ok());
    for bad in [
        HourRecord {
            hour: 3600 * 10 + 1,
            ..good.clone()
        },
        HourRecord {
            run: String::new(),
            ..good.clone()
        },
        HourRecord {
            sums: Sums {
                export_wh: -1.0,
                ..good.sums
            },
            ..good.clone()
        },
        HourRecord {
            sums: Sums {
                grid_s: 7200.0,
                ..good.sums
            },
            ..good.clone()
        },
        HourRecord {
            sums: Sums {
                import_wh: f64::NAN,
                ..good.sums
            },
            ..good.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}

fn slot(start: &str, minutes: i64, buy: f64, sell: f64) -> PriceSlot {
    let start = at(start);
    PriceSlot {
        start,
        end: start + TimeDelta::minutes(minutes),
        market_eur_per_kwh: 0.0,
        buy_eur_per_kwh: buy,
        sell_eur_per_kwh: sell,
    }
}

#[test]
fn hour_prices_weigh_quarters_and_need_the_whole_hour() {
    let quarters = [
        slot("2026-12-05T10:00:00Z", 15, 0.20, 0.10),
        slot("2026-12-05T10:15:00Z", 15, 0.24, 0.12),
        slot("2026-12-05T10:30:00Z", 15, 0.28, 0.14),
        slot("2026-12-05T10:45:00Z", 15, 0.32, 0.16),
    ];
    let hour = at("2026-12-05T10:00:00Z").timestamp();
    let (buy, sell) = hour_prices(&quarters, hour).unwrap();
    assert!(close(buy, 0.26) && close(sell, 0.13), "{buy} {sell}");
    assert_eq!(hour_prices(&quarters[1..], hour), None);
    assert_eq!(hour_prices(&quarters, hour + 3600), None);
}

/// A day worked out by hand: three priced hours.
/// - 00:00 (0.10 buy, 0.05 sell): import 2 kWh, 1 of it charging the
///   battery: with 2 × 0.10 = 0.20, without 1 × 0.10 = 0.10, saving -0.10.
/// - 12:00 (0.30, 0.20): solar exports 1.5 kWh while the battery takes
///   0.5 kWh more: with -1.5 × 0.20 = -0.30, without -2 × 0.20 = -0.40,
///   saving -0.10.
/// - 18:00 (0.40, 0.30): the battery covers 1.2 of 1.5 kWh: with
///   0.3 × 0.40 = 0.12, without 1.5 × 0.40 = 0.60, saving 0.48.
///
/// Day: cost 0.02, without 0.30, saving 0.28 EUR.
#[test]
fn money_of_a_hand_computed_day() {
    let hours = [
        (
            Sums {
                import_wh: 2000.0,
                import_without_wh: 1000.0,
                ..Sums::default()
            },
            0.10,
            0.05,
        ),
        (
            Sums {
                export_wh: 1500.0,
                export_without_wh: 2000.0,
                ..Sums::default()
            },
            0.30,
            0.20,
        ),
        (
            Sums {
                import_wh: 300.0,
                import_without_wh: 1500.0,
                ..Sums::default()
            },
            0.40,
            0.30,
        ),
    ];
    let money: Vec<Money> = hours.iter().map(|(s, b, v)| Money::of(s, *b, *v)).collect();
    // The same day as the server groups it, one hour unpriced, the
    // planner's expectation beside it.
    let date = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
    let midnight = at("2026-12-04T23:00:00Z").timestamp();
    let mut stored: Vec<StoredHour> = [0, 12, 18]
        .iter()
        .zip(&hours)
        .map(|(h, (sums, buy, sell))| StoredHour {
            hour: midnight + h * 3600,
            sums: *sums,
            prices: Some((*buy, *sell)),
        })
        .collect();
    stored.push(StoredHour {
        hour: midnight + 20 * 3600,
        sums: Sums {
            import_wh: 500.0,
            grid_s: 1800.0,
            ..Sums::default()
        },
        prices: None,
    });
    let grouped = days(&stored, AMSTERDAM, &[(date, 0.35)].into());
    assert_eq!(grouped.len(), 1);
    let day = &grouped[0];
    assert_eq!(
        (day.date, day.hours_in_day, day.priced_hours),
        (date, 24, 3)
    );
    assert_eq!(day.hours[0].local, "00:00");
    assert_eq!(day.hours[3].local, "20:00");
    assert!(close(day.cost_eur.unwrap(), 0.02) && close(day.saving_eur.unwrap(), 0.28));
    assert_eq!(day.expected_saving_eur, Some(0.35));
    assert!(close(day.kwh.import_kwh, 2.8) && close(day.covered_hours, 0.5));
    assert_eq!(day.hours[3].cost_eur, None);
    let expect = [(0.20, 0.10), (-0.30, -0.40), (0.12, 0.60)];
    for (m, (cost, without)) in money.iter().zip(expect) {
        assert!(
            close(m.cost_eur, cost) && close(m.without_battery_eur, without),
            "{m:?}"
        );
    }
    let cost: f64 = money.iter().map(|m| m.cost_eur).sum();
    let saving: f64 = money.iter().map(Money::saving_eur).sum();
    assert!(close(cost, 0.02) && close(saving, 0.28), "{cost} {saving}");
}

#[test]
fn today_is_priced_per_reading_at_its_slot() {
    // 11:00-11:30 at 0.30 buy / 0.10 sell, 11:30-12:00 at 0.20 / 0.20;
    // no price before 11:00.
    let mut i = integrator("a");
    i.set_prices(vec![
        slot("2026-12-05T11:00:00Z", 30, 0.30, 0.10),
        slot("2026-12-05T11:30:00Z", 30, 0.20, 0.20),
    ]);
    // 10:30-12:00: import 1 kW, export 1 kW from 11:15, the battery
    // discharging 500 W throughout (without it: 500 W more import).
    let (from, to) = (at("2026-12-05T10:30:00Z"), at("2026-12-05T12:00:00Z"));
    let turn = at("2026-12-05T11:15:00Z");
    feed(
        &mut i,
        from,
        to,
        2,
        |t| if t < turn { 1000 } else { -1000 },
        |_| -500,
    );
    let (sums, money) = i.today(to);
    assert!(close(sums.import_wh, 750.0), "{sums:?}");
    let m = money.unwrap();
    // With: 0.25 kWh × 0.30 - 0.25 × 0.10 - 0.5 × 0.20 = -0.05.
    // Without (+500 W): 0.375 × 0.30 - 0.125 × 0.10 - 0.25 × 0.20 = 0.05.
    assert!(
        close(m.cost_eur, -0.05) && close(m.saving_eur(), 0.10),
        "{m:?}"
    );
}

#[test]
fn an_hour_crossing_zero_is_priced_per_reading() {
    // Half an hour importing 1 kW, half exporting 1 kW: the net is zero,
    // but at 0.30 buy and 0.10 sell the hour costs 0.10 EUR.
    let m = Money::of(&halves((1000, 0), (-1000, 0)), 0.30, 0.10);
    assert!(close(m.cost_eur, 0.10), "{m:?}");
    assert!(close(m.saving_eur(), 0.0));
}

proptest! {
    /// Whatever the readings' spacing, the records add up to the run's
    /// total, each is a valid hour, covered time never exceeds the span,
    /// and import minus export is the integral of the power over the
    /// covered spans.
    #[test]
    fn records_add_up_to_the_total(
        steps in proptest::collection::vec((1i64..90, -3000i32..3000, -2000i32..2000), 1..400),
        start in 0i64..7200,
    ) {
        let mut i = integrator("p");
        let mut t = at("2026-10-25T00:00:00Z") + TimeDelta::seconds(start);
        let first = t;
        let mut records = Vec::new();
        let (mut net_wh, mut covered) = (0.0, 0.0);
        let mut last: Option<i32> = None;
        for (dt, grid, battery) in steps {
            if let Some(g) = last
                && dt <= 30
            {
                net_wh += f64::from(g) * dt as f64 / 3600.0;
                covered += dt as f64;
            }
            if last.is_some() {
                t += TimeDelta::seconds(dt);
            }
            i.meter(t, grid);
            i.device(t, battery, i64::from(battery));
            records.extend(i.finished(t));
            last = Some(grid);
        }
        records.extend(i.stop(t));
        let s = sum(&records);
        let total = i.total();
        prop_assert!(close(s.import_wh, total.import_wh) && close(s.grid_s, total.grid_s));
        prop_assert!(close(s.import_wh - s.export_wh, net_wh), "{s:?} {net_wh}");
        prop_assert!(close(s.grid_s, covered));
        prop_assert!(s.grid_s <= (t - first).as_seconds_f64() + 1e-6);
        let mut hours: Vec<i64> = records.iter().map(|r| r.hour).collect();
        hours.dedup();
        prop_assert_eq!(hours.len(), records.len(), "an hour sent twice");
        for r in &records {
            prop_assert!(r.check().is_ok(), "{:?}", r);
        }
    }
}

/// Readings `(seconds after the one before, grid W)` from `start`, into
/// `i`; the records it sent on the way, and the last reading's time.
fn run_trace(
    i: &mut Integrator,
    start: DateTime<Utc>,
    steps: &[(i64, i32)],
) -> (Vec<HourRecord>, DateTime<Utc>) {
    let mut t = start;
    let mut out = Vec::new();
    for (dt, grid) in steps {
        t += TimeDelta::seconds(*dt);
        i.meter(t, *grid);
        out.extend(i.finished(t));
    }
    (out, t)
}

proptest! {
    /// A restart between two readings loses exactly the span between
    /// them and nothing else: the two runs' records add up to one run's
    /// over the same readings, less that span when it would have counted.
    #[test]
    fn a_restart_loses_only_the_span_it_falls_in(
        steps in proptest::collection::vec((1i64..60, -3000i32..3000), 2..300),
        split in 0usize..1000,
    ) {
        let split = 1 + split % (steps.len() - 1);
        let start = at("2026-03-29T00:30:00Z");
        let mut one = integrator("one");
        let (mut whole, end) = run_trace(&mut one, start, &steps);
        whole.extend(one.stop(end));

        let mut first = integrator("first");
        let (mut parts, stopped) = run_trace(&mut first, start, &steps[..split]);
        parts.extend(first.stop(stopped));
        let mut second = integrator("second");
        let (rest, end2) = run_trace(&mut second, stopped, &steps[split..]);
        parts.extend(rest);
        parts.extend(second.stop(end2));

        let (w, p) = (sum(&whole), sum(&parts));
        let lost = steps[split].0;
        let lost_s = if lost <= 30 { lost as f64 } else { 0.0 };
        prop_assert!(close(w.grid_s - p.grid_s, lost_s), "{} {} {lost}", w.grid_s, p.grid_s);
        let lost_wh = lost_s * f64::from(steps[split - 1].1) / 3600.0;
        prop_assert!(close((w.import_wh - w.export_wh) - (p.import_wh - p.export_wh), lost_wh));
        for run in ["first", "second"] {
            let mut hours: Vec<i64> = parts.iter().filter(|r| r.run == run).map(|r| r.hour).collect();
            let n = hours.len();
            hours.dedup();
            prop_assert_eq!(hours.len(), n, "{} sent an hour twice", run);
        }
    }
}
