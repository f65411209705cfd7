//! What the owner wants: which slots are ours, when the planning day starts,
//! the peak-tariff windows and the charge targets. Parsed from the command
//! line; every type here can only hold a valid value.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use chrono::{Datelike, NaiveDate, NaiveTime, TimeDelta, Timelike, Weekday};

use crate::span::Span;
use crate::zcell::slot::{SlotIndex, Soc};

/// A set of weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySet(u8);

impl DaySet {
    pub const DAILY: DaySet = DaySet(0b111_1111);
    pub const WEEKDAYS: DaySet = DaySet(0b001_1111);
    pub const WEEKENDS: DaySet = DaySet(0b110_0000);

    fn bit(day: Weekday) -> u8 {
        1 << day.num_days_from_monday()
    }

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & Self::bit(day) != 0
    }
}

impl FromStr for DaySet {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s).with_context(|| {
            format!(
                "`{s}` is not a set of days (use daily, weekdays, weekends, a day, a range such \
                 as mon-fri or a list such as mon,wed,fri; the days are mon, tue, wed, thu, fri, \
                 sat, sun)"
            )
        })
    }
}

impl DaySet {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "daily" => return Some(DaySet::DAILY),
            "weekdays" => return Some(DaySet::WEEKDAYS),
            "weekends" => return Some(DaySet::WEEKENDS),
            _ => {}
        }
        let day = |s: &str| s.parse::<Weekday>().ok();
        let mut bits = 0;
        for part in s.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (mut d, to) = (day(from)?, day(to)?);
                    bits |= Self::bit(d);
                    while d != to {
                        d = d.succ();
                        bits |= Self::bit(d);
                    }
                }
                None => bits |= Self::bit(day(part)?),
            }
        }
        Some(DaySet(bits))
    }
}

impl fmt::Display for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DaySet::DAILY => f.write_str("daily"),
            DaySet::WEEKDAYS => f.write_str("weekdays"),
            DaySet::WEEKENDS => f.write_str("weekends"),
            _ => {
                let days: Vec<String> = (0..7)
                    .map(|n| Weekday::try_from(n).expect("0..7 are weekdays"))
                    .filter(|d| self.contains(*d))
                    .map(|d| d.to_string().to_lowercase())
                    .collect();
                f.write_str(&days.join(","))
            }
        }
    }
}

/// A local wall-clock time of day, `HH:MM`.
pub fn parse_clock(s: &str) -> Result<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .ok()
        .filter(|_| s.len() == 5)
        .with_context(|| format!("`{s}` is not a time of day (use HH:MM, e.g. 07:00)"))
}

/// A daily wall-clock window such as `07:00-10:00`. An end at or before the
/// start crosses midnight (`21:00-07:00`); `24:00` ends at midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: NaiveTime,
    pub length: TimeDelta,
}

impl TimeRange {
    /// The occurrence of this window that starts on `date`.
    pub fn on(&self, date: NaiveDate) -> Span {
        let start = date.and_time(self.start);
        Span::new(start, start + self.length).expect("TimeRange length is positive")
    }

    pub fn end(&self) -> NaiveTime {
        self.start + self.length
    }
}

impl FromStr for TimeRange {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (from, to) = s
            .split_once('-')
            .with_context(|| format!("`{s}` is not a time range (use HH:MM-HH:MM)"))?;
        let start = parse_clock(from)?;
        let end_minutes = if to == "24:00" {
            24 * 60
        } else {
            let end = parse_clock(to)?;
            end.hour() * 60 + end.minute()
        };
        let start_minutes = start.hour() * 60 + start.minute();
        ensure!(
            end_minutes != start_minutes,
            "`{s}` is empty: start and end are the same"
        );
        let minutes = (end_minutes + 24 * 60 - start_minutes) % (24 * 60);
        let minutes = if minutes == 0 { 24 * 60 } else { minutes };
        Ok(TimeRange {
            start,
            length: TimeDelta::minutes(minutes.into()),
        })
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A whole day would print as 00:00-00:00, which means nothing.
        let end = if self.length == TimeDelta::days(1) {
            "24:00".to_string()
        } else {
            self.end().format("%H:%M").to_string()
        };
        write!(f, "{}-{end}", self.start.format("%H:%M"))
    }
}

/// A peak-tariff window, e.g. `weekdays@16:00-21:00`: the battery must be
/// free to discharge then. A window crossing midnight belongs to the day it
/// starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peak {
    pub days: DaySet,
    pub range: TimeRange,
}

impl FromStr for Peak {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (days, range) = s
            .split_once('@')
            .with_context(|| format!("`{s}` is not a peak (use DAYS@HH:MM-HH:MM)"))?;
        Ok(Peak {
            days: days.parse()?,
            range: range.parse()?,
        })
    }
}

impl fmt::Display for Peak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.days, self.range)
    }
}

pub fn parse_soc(s: &str) -> Result<Soc> {
    s.parse::<u8>()
        .ok()
        .and_then(Soc::new)
        .with_context(|| format!("`{s}` is not a state of charge (use 0 to 100)"))
}

/// A charge window on maintenance days, e.g. `13:00-16:00@50`, or
/// `13:00-16:00@50+discharge` to let the battery discharge normally while
/// above the target (`AllowDischarge` 1) instead of being held there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub range: TimeRange,
    pub soc: Soc,
    pub allow_discharge: bool,
}

const DISCHARGE: &str = "+discharge";

impl FromStr for MaintenanceWindow {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (range, soc) = s.split_once('@').with_context(|| {
            format!("`{s}` is not a maintenance window (use HH:MM-HH:MM@SOC or HH:MM-HH:MM@SOC{DISCHARGE})")
        })?;
        let (soc, allow_discharge) = match soc.strip_suffix(DISCHARGE) {
            Some(soc) => (soc, true),
            None => (soc, false),
        };
        Ok(MaintenanceWindow {
            range: range.parse()?,
            soc: parse_soc(soc)?,
            allow_discharge,
        })
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let discharge = if self.allow_discharge { DISCHARGE } else { "" };
        write!(f, "{}@{}{discharge}", self.range, self.soc.get())
    }
}

/// The slots zcell-sched owns, e.g. `3,4`: distinct, in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSlots(Vec<SlotIndex>);

impl OwnedSlots {
    pub fn iter(&self) -> impl Iterator<Item = SlotIndex> + '_ {
        self.0.iter().copied()
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, slot: SlotIndex) -> bool {
        self.0.contains(&slot)
    }
}

impl FromStr for OwnedSlots {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut slots = Vec::new();
        for part in s.split(',') {
            let slot = part
                .trim()
                .parse::<u8>()
                .ok()
                .and_then(SlotIndex::new)
                .with_context(|| format!("`{part}` is not a slot (use 0 to 4)"))?;
            ensure!(!slots.contains(&slot), "slot {slot} is listed twice");
            slots.push(slot);
        }
        slots.sort();
        Ok(OwnedSlots(slots))
    }
}

impl fmt::Display for OwnedSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|s| s.to_string()).collect();
        f.write_str(&names.join(","))
    }
}

/// A set of months, e.g. `apr-sep` or `nov,dec,jan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthSet(u16);

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn parse_month(s: &str) -> Result<u32> {
    MONTHS
        .iter()
        .position(|m| *m == s)
        .map(|i| i as u32 + 1)
        .with_context(|| format!("`{s}` is not a month (use jan, feb, ... dec)"))
}

impl MonthSet {
    pub fn contains(self, month: u32) -> bool {
        self.0 & (1 << month) != 0
    }

    pub fn overlaps(self, other: MonthSet) -> bool {
        self.0 & other.0 != 0
    }

    /// A month of the set, for picking an example date.
    pub fn first(self) -> u32 {
        (1..=12)
            .find(|m| self.contains(*m))
            .expect("a MonthSet is not empty")
    }
}

impl FromStr for MonthSet {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut bits = 0u16;
        for part in s.split(',') {
            let (from, to) = match part.split_once('-') {
                Some((from, to)) => (parse_month(from)?, parse_month(to)?),
                None => (parse_month(part)?, parse_month(part)?),
            };
            let mut month = from;
            loop {
                bits |= 1 << month;
                if month == to {
                    break;
                }
                month = month % 12 + 1;
            }
        }
        Ok(MonthSet(bits))
    }
}

/// Days that count as a Sunday for the peaks: dates (`2026-12-25`) and
/// yearly dates (`12-25`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holidays {
    dates: Vec<NaiveDate>,
    yearly: Vec<(u32, u32)>,
}

impl Holidays {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.dates.contains(&date) || self.yearly.contains(&(date.month(), date.day()))
    }

    pub fn add(&mut self, s: &str) -> Result<()> {
        if s.len() == 10
            && let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        {
            self.add_date(date);
            return Ok(());
        }
        // A leap year, so that 02-29 is accepted.
        let yearly = NaiveDate::parse_from_str(&format!("2024-{s}"), "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 5)
            .with_context(|| {
                format!("`{s}` is not a date (use YYYY-MM-DD, or MM-DD for every year)")
            })?;
        self.yearly.push((yearly.month(), yearly.day()));
        Ok(())
    }

    pub fn add_date(&mut self, date: NaiveDate) {
        self.dates.push(date);
    }
}

/// What a day's plan follows: peaks, the normal-day target and the
/// maintenance windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub peaks: Vec<Peak>,
    pub reserve_soc: Soc,
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

impl Default for Rules {
    /// The owner's tariff: weekday peaks 07:00-10:00 and 16:00-21:00; full
    /// outside them; on maintenance days half-charge over the early
    /// afternoon and full before the morning peak.
    fn default() -> Self {
        Rules {
            peaks: ["weekdays@07:00-10:00", "weekdays@16:00-21:00"]
                .map(|p| p.parse().expect("valid default"))
                .to_vec(),
            reserve_soc: Soc::new(100).expect("valid default"),
            maintenance_windows: ["13:00-16:00@50", "03:00-07:00@100"]
                .map(|w| w.parse().expect("valid default"))
                .to_vec(),
        }
    }
}

impl Rules {
    fn validate(&self) -> Result<()> {
        check_windows(&self.maintenance_windows)
    }
}

/// Maintenance windows the GX can follow: at least one, none overlapping
/// another (the GX would have two targets at once).
pub fn check_windows(windows: &[MaintenanceWindow]) -> Result<()> {
    ensure!(
        !windows.is_empty(),
        "at least one maintenance window is needed"
    );
    let monday = NaiveDate::from_isoywd_opt(2026, 1, Weekday::Mon).expect("valid date");
    for (i, a) in windows.iter().enumerate() {
        for b in &windows[i + 1..] {
            for shift in [-1, 0, 1] {
                let b_span = b.range.on(monday + TimeDelta::days(shift));
                if a.range.on(monday).intersect(&b_span).is_some() {
                    bail!("maintenance windows {a} and {b} overlap");
                }
            }
        }
    }
    Ok(())
}

/// Rules for some months of the year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Season {
    /// As the owner wrote it, e.g. `apr-sep`, for messages.
    pub name: String,
    pub months: MonthSet,
    pub rules: Rules,
}

/// Everything the planner needs besides the clock and the BMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub slots: OwnedSlots,
    pub day_start: NaiveTime,
    /// Outside every season.
    pub rules: Rules,
    pub seasons: Vec<Season>,
    pub holidays: Holidays,
}

impl Policy {
    /// Refuses policies the planner could only follow by guessing.
    /// Errors name the config key they come from.
    pub fn validate(self) -> Result<Self> {
        self.rules.validate().context("`maintenance_windows`")?;
        for (i, season) in self.seasons.iter().enumerate() {
            season.rules.validate().with_context(|| {
                format!("`seasons[{i}]` ({}): `maintenance_windows`", season.name)
            })?;
            if let Some((j, other)) = self.seasons[..i]
                .iter()
                .enumerate()
                .find(|(_, o)| o.months.overlaps(season.months))
            {
                bail!(
                    "`seasons[{j}]` ({}) and `seasons[{i}]` ({}) share a month",
                    other.name,
                    season.name
                );
            }
        }
        Ok(self)
    }

    /// Whether some maintenance window opts in to `AllowDischarge`; then
    /// every window of the owned slots sets it (1 or 0).
    pub fn sets_allow_discharge(&self) -> bool {
        std::iter::once(&self.rules)
            .chain(self.seasons.iter().map(|s| &s.rules))
            .flat_map(|r| &r.maintenance_windows)
            .any(|w| w.allow_discharge)
    }

    /// The rules for a planning day starting on `date`: its season's, else the base ones.
    pub fn rules_on(&self, date: NaiveDate) -> &Rules {
        self.seasons
            .iter()
            .find(|s| s.months.contains(date.month()))
            .map_or(&self.rules, |s| &s.rules)
    }

    /// The peak intervals of `rules` on the calendar days from `first` to
    /// `last`, each peak on the dates whose weekday it names; a holiday
    /// counts as a Sunday.
    pub fn peak_spans(&self, rules: &Rules, first: NaiveDate, last: NaiveDate) -> Vec<Span> {
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .flat_map(|date| {
                let weekday = if self.holidays.contains(date) {
                    Weekday::Sun
                } else {
                    date.weekday()
                };
                rules
                    .peaks
                    .iter()
                    .filter(move |p| p.days.contains(weekday))
                    .map(move |p| p.range.on(date))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_sets() {
        let weekdays: DaySet = "weekdays".parse().unwrap();
        assert!(weekdays.contains(Weekday::Fri));
        assert!(!weekdays.contains(Weekday::Sat));
        assert_eq!("mon-fri".parse::<DaySet>().unwrap(), DaySet::WEEKDAYS);
        assert_eq!("sat,sun".parse::<DaySet>().unwrap(), DaySet::WEEKENDS);
        assert_eq!(
            "fri-mon".parse::<DaySet>().unwrap().to_string(),
            "mon,fri,sat,sun"
        );
        let mwf: DaySet = "mon,wed,fri".parse().unwrap();
        assert!(mwf.contains(Weekday::Wed) && !mwf.contains(Weekday::Tue));
        assert_eq!(mwf.to_string(), "mon,wed,fri");
        for bad in ["", "funday", "mon,", "mon-"] {
            assert!(bad.parse::<DaySet>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clock() {
        assert_eq!(
            parse_clock("07:00").unwrap(),
            NaiveTime::from_hms_opt(7, 0, 0).unwrap()
        );
        for bad in ["7:00", "07:60", "24:00", "07:00:00", "0700", ""] {
            assert!(parse_clock(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_ranges() {
        let r: TimeRange = "07:00-10:00".parse().unwrap();
        assert_eq!(r.length, TimeDelta::hours(3));
        let night: TimeRange = "21:00-07:00".parse().unwrap();
        assert_eq!(night.length, TimeDelta::hours(10));
        let late: TimeRange = "21:00-24:00".parse().unwrap();
        assert_eq!(late.length, TimeDelta::hours(3));
        let whole: TimeRange = "00:00-24:00".parse().unwrap();
        assert_eq!(whole.length, TimeDelta::hours(24));
        assert_eq!(night.to_string(), "21:00-07:00");
        // Found by fuzzing: a whole day printed as 00:00-00:00 and did not parse back.
        assert_eq!(whole.to_string(), "00:00-24:00");
        assert_eq!(whole.to_string().parse::<TimeRange>().unwrap(), whole);
        assert_eq!(late.to_string().parse::<TimeRange>().unwrap(), late);
        for bad in ["07:00-07:00", "07:00", "07:00-", "x-10:00", "07:00-25:00"] {
            assert!(bad.parse::<TimeRange>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn peaks_and_windows() {
        let p: Peak = "weekdays@16:00-21:00".parse().unwrap();
        assert_eq!(p.to_string(), "weekdays@16:00-21:00");
        assert!("16:00-21:00".parse::<Peak>().is_err());
        let m: MaintenanceWindow = "13:00-16:00@50".parse().unwrap();
        assert_eq!(m.soc.get(), 50);
        assert_eq!(m.to_string(), "13:00-16:00@50");
        assert!(!m.allow_discharge);
        let d: MaintenanceWindow = "13:00-16:00@50+discharge".parse().unwrap();
        assert!(d.allow_discharge && d.soc.get() == 50);
        assert_eq!(d.to_string(), "13:00-16:00@50+discharge");
        for bad in [
            "13:00-16:00",
            "13:00-16:00@101",
            "13:00-16:00@-1",
            "13:00-16:00@x",
            "13:00-16:00@50+",
            "13:00-16:00@50+charge",
            "13:00-16:00+discharge",
        ] {
            assert!(bad.parse::<MaintenanceWindow>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn owned_slots() {
        let s: OwnedSlots = "4,3".parse().unwrap();
        assert_eq!(s.to_string(), "3,4");
        assert_eq!(s.count(), 2);
        for bad in ["5", "3,3", "", "a", "-1"] {
            assert!(bad.parse::<OwnedSlots>().is_err(), "{bad:?}");
        }
    }

    fn policy(windows: &[&str]) -> Policy {
        Policy {
            slots: "3,4".parse().unwrap(),
            day_start: parse_clock("07:00").unwrap(),
            rules: Rules {
                peaks: vec![],
                reserve_soc: Soc::new(100).unwrap(),
                maintenance_windows: windows.iter().map(|w| w.parse().unwrap()).collect(),
            },
            seasons: vec![],
            holidays: Holidays::default(),
        }
    }

    #[test]
    fn overlapping_maintenance_windows_are_refused() {
        assert!(
            policy(&["13:00-16:00@50", "03:00-07:00@100"])
                .validate()
                .is_ok()
        );
        assert!(
            policy(&["13:00-16:00@50", "15:00-17:00@100"])
                .validate()
                .is_err()
        );
        assert!(
            policy(&["22:00-04:00@50", "03:00-05:00@100"])
                .validate()
                .is_err()
        );
        assert!(policy(&[]).validate().is_err());
    }

    #[test]
    fn month_sets() {
        let summer: MonthSet = "oct-mar".parse().unwrap();
        for m in [10, 11, 12, 1, 2, 3] {
            assert!(summer.contains(m), "{m}");
        }
        assert!(!summer.contains(4));
        assert_eq!(summer.first(), 1);
        let list: MonthSet = "jan,jul-aug".parse().unwrap();
        assert!(list.contains(8) && !list.contains(9));
        assert!(list.overlaps("aug".parse().unwrap()));
        assert!(!list.overlaps("sep-dec".parse().unwrap()));
        for bad in ["", "april", "apr-", "13"] {
            assert!(bad.parse::<MonthSet>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn holidays() {
        let mut h = Holidays::default();
        h.add("2026-11-24").unwrap();
        h.add("12-25").unwrap();
        h.add("02-29").unwrap();
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(h.contains(d(2026, 11, 24)));
        assert!(!h.contains(d(2027, 11, 24)));
        assert!(h.contains(d(2031, 12, 25)));
        for bad in ["2026-13-01", "12-32", "1225", "christmas", "2026-2-1"] {
            assert!(h.add(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seasons_pick_their_rules_and_may_not_overlap() {
        let mut p = policy(&["13:00-16:00@50"]);
        let mut winter = p.rules.clone();
        winter.reserve_soc = Soc::new(80).unwrap();
        p.seasons.push(Season {
            name: "apr-sep".into(),
            months: "apr-sep".parse().unwrap(),
            rules: winter,
        });
        let d = |m| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
        assert_eq!(p.rules_on(d(6)).reserve_soc.get(), 80);
        assert_eq!(p.rules_on(d(11)).reserve_soc.get(), 100);
        let mut twice = p.clone();
        twice.seasons.push(Season {
            name: "sep-oct".into(),
            months: "sep-oct".parse().unwrap(),
            rules: p.rules.clone(),
        });
        let err = twice.validate().unwrap_err().to_string();
        assert!(
            err.contains("`seasons[0]` (apr-sep) and `seasons[1]` (sep-oct) share a month"),
            "{err}"
        );
        assert!(p.validate().is_ok());
    }

    #[test]
    fn a_holiday_is_a_sunday_for_the_peaks() {
        let mut p = policy(&["13:00-16:00@50"]);
        p.rules.peaks = vec![
            "weekdays@16:00-21:00".parse().unwrap(),
            "sun@18:00-19:00".parse().unwrap(),
        ];
        let tue = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(p.peak_spans(&p.rules, tue, tue).len(), 1);
        p.holidays.add_date(tue);
        let spans = p.peak_spans(&p.rules, tue, tue);
        assert_eq!(
            spans,
            vec!["18:00-19:00".parse::<TimeRange>().unwrap().on(tue)]
        );
    }
}
