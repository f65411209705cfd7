//! Energy per hour, integrated from what the controller reads: grid import
//! and export from the meter, battery charged and discharged and the
//! device's own use from the device, and the grid as it would have been
//! without the battery. Pure: readings in, hour records out.
//!
//! Each reading's power holds until the next reading of the same kind
//! (left rectangles), but only when the next comes within the gap limit;
//! a longer span counts as uncovered, never as a guess. Import and export
//! are split per reading, so an hour that both imported and exported shows
//! both. Hours are UTC-hour instants; a run (one controller start) sends
//! each hour once it can no longer change, and the hour it is in when it
//! stops; the server adds the runs of an hour up.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::zendure::core::prices::tariff::PriceSlot;

const HOUR_S: i64 = 3600;

/// Energy in one span, Wh, and the seconds each source covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sums {
    pub import_wh: f64,
    pub export_wh: f64,
    pub charged_wh: f64,
    pub discharged_wh: f64,
    /// AC energy minus battery energy: the device's conversion losses and
    /// standby (negative when solar panels feed the device).
    pub device_wh: f64,
    /// The grid with the battery's AC power added back: what the home
    /// would have imported and exported without the battery. Where the
    /// device's reading is missing, the grid as metered (no saving claimed).
    pub import_without_wh: f64,
    pub export_without_wh: f64,
    /// Seconds the meter readings covered.
    pub grid_s: f64,
    /// Seconds the device readings covered.
    pub device_s: f64,
}

impl Sums {
    pub fn add(&mut self, other: &Sums) {
        self.import_wh += other.import_wh;
        self.export_wh += other.export_wh;
        self.charged_wh += other.charged_wh;
        self.discharged_wh += other.discharged_wh;
        self.device_wh += other.device_wh;
        self.import_without_wh += other.import_without_wh;
        self.export_without_wh += other.export_without_wh;
        self.grid_s += other.grid_s;
        self.device_s += other.device_s;
    }

    fn grid(&mut self, grid_w: f64, without_w: f64, seconds: f64) {
        let wh = seconds / 3600.0;
        self.import_wh += grid_w.max(0.0) * wh;
        self.export_wh += (-grid_w).max(0.0) * wh;
        self.import_without_wh += without_w.max(0.0) * wh;
        self.export_without_wh += (-without_w).max(0.0) * wh;
        self.grid_s += seconds;
    }

    fn device(&mut self, ac_w: f64, battery_w: f64, seconds: f64) {
        let wh = seconds / 3600.0;
        self.charged_wh += battery_w.max(0.0) * wh;
        self.discharged_wh += (-battery_w).max(0.0) * wh;
        self.device_wh += (ac_w - battery_w) * wh;
        self.device_s += seconds;
    }

    /// The four running totals in kWh, as the status document shows them.
    pub fn kwh(&self) -> EnergyKwh {
        let k = |wh: f64| (wh / 10.0).round() / 100.0;
        EnergyKwh {
            grid_import_kwh: k(self.import_wh),
            grid_export_kwh: k(self.export_wh),
            battery_charged_kwh: k(self.charged_wh),
            battery_discharged_kwh: k(self.discharged_wh),
        }
    }
}

/// Running totals in kWh (to 10 Wh).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyKwh {
    pub grid_import_kwh: f64,
    pub grid_export_kwh: f64,
    pub battery_charged_kwh: f64,
    pub battery_discharged_kwh: f64,
}

/// One run's account of one hour, as posted to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourRecord {
    /// The hour's start, Unix seconds (a whole UTC hour).
    pub hour: i64,
    /// The controller run that measured it.
    pub run: String,
    #[serde(flatten)]
    pub sums: Sums,
}

impl HourRecord {
    /// Whether the record is one the server can take: a whole hour, no
    /// more covered than an hour, finite energies.
    pub fn check(&self) -> Result<(), String> {
        let s = &self.sums;
        let energies = [
            s.import_wh,
            s.export_wh,
            s.charged_wh,
            s.discharged_wh,
            s.import_without_wh,
            s.export_without_wh,
        ];
        if self.hour % HOUR_S != 0 {
            return Err(format!("hour {} is not the start of a UTC hour", self.hour));
        }
        if self.run.is_empty() || self.run.len() > 64 {
            return Err("run: 1 to 64 characters".into());
        }
        if !s.device_wh.is_finite() || energies.iter().any(|e| !e.is_finite() || *e < 0.0) {
            return Err("energies must be finite, and all but device_wh not negative".into());
        }
        let covered = 0.0..=HOUR_S as f64 + 1.0;
        if !covered.contains(&s.grid_s) || !covered.contains(&s.device_s) {
            return Err("grid_s and device_s: 0 to 3600".into());
        }
        Ok(())
    }
}

/// Integrates one run's readings into hours.
#[derive(Debug, Clone)]
pub struct Integrator {
    run: String,
    zone: Tz,
    /// Readings further apart than this leave the span between uncovered.
    gap: TimeDelta,
    grid: Option<(DateTime<Utc>, i32)>,
    /// Time, AC W (positive drawn) and battery W (positive charging).
    device: Option<(DateTime<Utc>, i32, i64)>,
    /// Hours not yet sent, by start.
    open: BTreeMap<i64, Sums>,
    total: Sums,
    /// Today's sums, and its money over the readings a price covered.
    today: Option<(NaiveDate, Sums, Option<Money>)>,
    /// Price slots, when prices are configured: each reading's span is
    /// priced at the slot it starts in.
    prices: Vec<PriceSlot>,
}

impl Integrator {
    pub fn new(run: String, zone: Tz, gap: std::time::Duration) -> Integrator {
        Integrator {
            run,
            zone,
            gap: TimeDelta::from_std(gap).unwrap_or(TimeDelta::MAX),
            grid: None,
            device: None,
            open: BTreeMap::new(),
            total: Sums::default(),
            today: None,
            prices: Vec::new(),
        }
    }

    /// The prices to cost today's readings with (the day's slots).
    pub fn set_prices(&mut self, slots: Vec<PriceSlot>) {
        self.prices = slots;
    }

    /// Since the run started.
    pub fn total(&self) -> Sums {
        self.total
    }

    /// Today (local) so far, as this run measured it, and its money when
    /// prices covered any of it.
    pub fn today(&self, now: DateTime<Utc>) -> (Sums, Option<Money>) {
        let date = now.with_timezone(&self.zone).date_naive();
        match self.today {
            Some((day, sums, money)) if day == date => (sums, money),
            _ => (Sums::default(), None),
        }
    }

    /// The span from `from` to `to`, if it is short enough to count.
    fn span(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<()> {
        (to > from && to - from <= self.gap).then_some(())
    }

    /// Adds `f` over `from..to`, split at hour boundaries.
    fn spread(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, f: impl Fn(&mut Sums, f64)) {
        let mut at = from;
        while at < to {
            let hour = at.timestamp().div_euclid(HOUR_S) * HOUR_S;
            let hour_end = DateTime::from_timestamp(hour + HOUR_S, 0).unwrap_or(to);
            let till = hour_end.min(to);
            let seconds = (till - at).as_seconds_f64();
            let mut piece = Sums::default();
            f(&mut piece, seconds);
            self.open.entry(hour).or_default().add(&piece);
            self.total.add(&piece);
            let priced = self
                .prices
                .iter()
                .find(|slot| slot.start <= at && at < slot.end)
                .map(|slot| Money::of(&piece, slot.buy_eur_per_kwh, slot.sell_eur_per_kwh));
            let date = at.with_timezone(&self.zone).date_naive();
            match &mut self.today {
                Some((day, sums, money)) if *day == date => {
                    sums.add(&piece);
                    if let Some(p) = priced {
                        let m = money.get_or_insert(Money::default());
                        m.cost_eur += p.cost_eur;
                        m.without_battery_eur += p.without_battery_eur;
                    }
                }
                _ => self.today = Some((date, piece, priced)),
            }
            at = till;
        }
    }

    /// The meter's power since its last reading, up to `to`.
    fn close_grid(&mut self, to: DateTime<Utc>) {
        let Some((from, grid_w)) = self.grid else {
            return;
        };
        if self.span(from, to).is_none() {
            return;
        }
        // The battery's AC power at the meter reading, if the device was
        // read recently enough to know it.
        let ac_w = self
            .device
            .filter(|(read, _, _)| (from - *read).abs() <= self.gap)
            .map_or(0.0, |(_, ac_w, _)| f64::from(ac_w));
        let grid_w = f64::from(grid_w);
        self.spread(from, to, |s, seconds| {
            s.grid(grid_w, grid_w - ac_w, seconds)
        });
    }

    fn close_device(&mut self, to: DateTime<Utc>) {
        let Some((from, ac_w, battery_w)) = self.device else {
            return;
        };
        if self.span(from, to).is_none() {
            return;
        }
        let (ac_w, battery_w) = (f64::from(ac_w), battery_w as f64);
        self.spread(from, to, |s, seconds| s.device(ac_w, battery_w, seconds));
    }

    /// A meter reading: net grid W, import positive. Readings out of order
    /// (or repeated) are ignored.
    pub fn meter(&mut self, at: DateTime<Utc>, grid_w: i32) {
        if self.grid.is_some_and(|(last, _)| at <= last) {
            return;
        }
        self.close_grid(at);
        self.grid = Some((at, grid_w));
    }

    /// A device reading: AC W (positive drawn) and battery W (positive
    /// charging).
    pub fn device(&mut self, at: DateTime<Utc>, ac_w: i32, battery_w: i64) {
        if self.device.is_some_and(|(last, _, _)| at <= last) {
            return;
        }
        self.close_device(at);
        self.device = Some((at, ac_w, battery_w));
    }

    /// The hours no later reading can change any more (a reading after
    /// `now` would be more than the gap limit after the hour's end), to be
    /// sent; they leave the integrator.
    pub fn finished(&mut self, now: DateTime<Utc>) -> Vec<HourRecord> {
        let open_from = (now - self.gap).timestamp().div_euclid(HOUR_S) * HOUR_S;
        let rest = self.open.split_off(&open_from);
        let done = std::mem::replace(&mut self.open, rest);
        self.records(done)
    }

    /// At a clean stop: the readings hold until `now`, and every hour not
    /// sent yet goes, the current one partial.
    pub fn stop(&mut self, now: DateTime<Utc>) -> Vec<HourRecord> {
        self.close_grid(now);
        self.close_device(now);
        self.grid = None;
        self.device = None;
        let done = std::mem::take(&mut self.open);
        self.records(done)
    }

    fn records(&self, hours: BTreeMap<i64, Sums>) -> Vec<HourRecord> {
        hours
            .into_iter()
            .map(|(hour, sums)| HourRecord {
                hour,
                run: self.run.clone(),
                sums,
            })
            .collect()
    }
}

/// The home's local day an hour (Unix seconds of its start) belongs to.
pub fn local_day(hour: i64, zone: Tz) -> NaiveDate {
    DateTime::from_timestamp(hour, 0)
        .unwrap_or_default()
        .with_timezone(&zone)
        .date_naive()
}

/// What an hour cost at the given prices (EUR/kWh), and what it would
/// have cost without the battery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Money {
    pub cost_eur: f64,
    pub without_battery_eur: f64,
}

impl Money {
    pub fn of(sums: &Sums, buy_eur_per_kwh: f64, sell_eur_per_kwh: f64) -> Money {
        let cost = |import_wh: f64, export_wh: f64| {
            (import_wh * buy_eur_per_kwh - export_wh * sell_eur_per_kwh) / 1000.0
        };
        Money {
            cost_eur: cost(sums.import_wh, sums.export_wh),
            without_battery_eur: cost(sums.import_without_wh, sums.export_without_wh),
        }
    }

    pub fn saving_eur(&self) -> f64 {
        self.without_battery_eur - self.cost_eur
    }
}

/// The buy and sell prices over the hour starting at `hour` (Unix
/// seconds), weighted by time (quarter-hour prices average into the hour);
/// None unless the slots cover the whole hour.
pub fn hour_prices(slots: &[PriceSlot], hour: i64) -> Option<(f64, f64)> {
    let (start, end) = (hour, hour + HOUR_S);
    let (mut seconds, mut buy, mut sell) = (0i64, 0.0, 0.0);
    for slot in slots {
        let from = slot.start.timestamp().max(start);
        let till = slot.end.timestamp().min(end);
        if till > from {
            let s = till - from;
            seconds += s;
            buy += slot.buy_eur_per_kwh * s as f64;
            sell += slot.sell_eur_per_kwh * s as f64;
        }
    }
    (seconds == HOUR_S).then(|| (buy / HOUR_S as f64, sell / HOUR_S as f64))
}

/// An hour as the server keeps it: the runs' sums added up, and the
/// hour's buy and sell prices when they were known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredHour {
    pub hour: i64,
    pub sums: Sums,
    pub prices: Option<(f64, f64)>,
}

/// Energies in kWh, for the API and the page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DayKwh {
    pub import_kwh: f64,
    pub export_kwh: f64,
    pub charged_kwh: f64,
    pub discharged_kwh: f64,
    pub device_kwh: f64,
}

impl From<&Sums> for DayKwh {
    fn from(s: &Sums) -> DayKwh {
        DayKwh {
            import_kwh: s.import_wh / 1000.0,
            export_kwh: s.export_wh / 1000.0,
            charged_kwh: s.charged_wh / 1000.0,
            discharged_kwh: s.discharged_wh / 1000.0,
            device_kwh: s.device_wh / 1000.0,
        }
    }
}

/// An hour of a day, in kWh and EUR, for the API and the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayHour {
    pub hour: i64,
    /// Local start, `HH:MM` (a DST day shows an hour twice or skips one).
    pub local: String,
    #[serde(flatten)]
    pub kwh: DayKwh,
    /// The share of the hour the meter readings covered, 0 to 1.
    pub covered: f64,
    pub cost_eur: Option<f64>,
    pub without_battery_eur: Option<f64>,
}

/// A local day: its hours, totals and money.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    /// The local day's start, Unix seconds.
    pub start: i64,
    /// 23, 24 or 25.
    pub hours_in_day: i64,
    pub hours: Vec<DayHour>,
    #[serde(flatten)]
    pub kwh: DayKwh,
    /// Hours the meter covered.
    pub covered_hours: f64,
    /// Over the priced hours; None when none was priced.
    pub cost_eur: Option<f64>,
    pub saving_eur: Option<f64>,
    pub priced_hours: usize,
    /// What the price planner expected to save, for a day it planned.
    pub expected_saving_eur: Option<f64>,
}

/// Groups hours (in order) by the local day of `zone`, with the planner's
/// expected savings beside them; a planned day without hours shows too.
pub fn days(hours: &[StoredHour], zone: Tz, expected: &BTreeMap<NaiveDate, f64>) -> Vec<Day> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&StoredHour>> = BTreeMap::new();
    for h in hours {
        by_day.entry(local_day(h.hour, zone)).or_default().push(h);
    }
    for date in expected.keys() {
        by_day.entry(*date).or_default();
    }
    by_day
        .into_iter()
        .map(|(date, hours)| {
            let (start, end) = crate::zendure::core::prices::tariff::day_bounds(date, zone);
            let mut total = Sums::default();
            let (mut cost, mut saving, mut priced) = (0.0, 0.0, 0);
            let hours: Vec<DayHour> = hours
                .into_iter()
                .map(|h| {
                    total.add(&h.sums);
                    let money = h.prices.map(|(buy, sell)| Money::of(&h.sums, buy, sell));
                    if let Some(m) = money {
                        cost += m.cost_eur;
                        saving += m.saving_eur();
                        priced += 1;
                    }
                    let s = &h.sums;
                    DayHour {
                        hour: h.hour,
                        local: DateTime::from_timestamp(h.hour, 0)
                            .unwrap_or_default()
                            .with_timezone(&zone)
                            .format("%H:%M")
                            .to_string(),
                        kwh: DayKwh::from(s),
                        covered: (s.grid_s / HOUR_S as f64).min(1.0),
                        cost_eur: money.map(|m| m.cost_eur),
                        without_battery_eur: money.map(|m| m.without_battery_eur),
                    }
                })
                .collect();
            Day {
                date,
                start: start.timestamp(),
                hours_in_day: (end - start).num_hours(),
                hours,
                kwh: DayKwh::from(&total),
                covered_hours: total.grid_s / HOUR_S as f64,
                cost_eur: (priced > 0).then_some(cost),
                saving_eur: (priced > 0).then_some(saving),
                priced_hours: priced,
                expected_saving_eur: expected.get(&date).copied(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
