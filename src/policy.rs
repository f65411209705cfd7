//! What the owner wants: which slots are ours, when the planning day starts,
//! the peak-tariff windows and the charge targets. Parsed from the command
//! line; every type here can only hold a valid value.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use chrono::{Datelike, NaiveDate, NaiveTime, TimeDelta, Timelike, Weekday};

use crate::slot::{SlotIndex, Soc};
use crate::span::Span;

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

fn parse_weekday(s: &str) -> Result<Weekday> {
    s.parse::<Weekday>()
        .ok()
        .with_context(|| format!("`{s}` is not a day (use mon, tue, wed, thu, fri, sat, sun)"))
}

impl FromStr for DaySet {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "daily" => return Ok(DaySet::DAILY),
            "weekdays" => return Ok(DaySet::WEEKDAYS),
            "weekends" => return Ok(DaySet::WEEKENDS),
            _ => {}
        }
        let mut bits = 0;
        for part in s.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (mut day, to) = (parse_weekday(from)?, parse_weekday(to)?);
                    bits |= Self::bit(day);
                    while day != to {
                        day = day.succ();
                        bits |= Self::bit(day);
                    }
                }
                None => bits |= Self::bit(parse_weekday(part)?),
            }
        }
        Ok(DaySet(bits))
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
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end().format("%H:%M")
        )
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

/// A charge window on maintenance days, e.g. `13:00-16:00@50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub range: TimeRange,
    pub soc: Soc,
}

impl FromStr for MaintenanceWindow {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (range, soc) = s
            .split_once('@')
            .with_context(|| format!("`{s}` is not a maintenance window (use HH:MM-HH:MM@SOC)"))?;
        Ok(MaintenanceWindow {
            range: range.parse()?,
            soc: parse_soc(soc)?,
        })
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.range, self.soc.get())
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

/// Everything the planner needs besides the clock and the BMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub slots: OwnedSlots,
    pub day_start: NaiveTime,
    pub peaks: Vec<Peak>,
    pub reserve_soc: Soc,
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

impl Policy {
    /// Refuses policies the planner could only follow by guessing.
    pub fn validate(self) -> Result<Self> {
        let windows = &self.maintenance_windows;
        ensure!(
            !windows.is_empty(),
            "at least one --maintenance-window is needed"
        );
        // Two overlapping windows would give the GX two targets at once.
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
        Ok(self)
    }

    /// The peak intervals that touch the calendar days from `first` to `last`,
    /// each peak on the dates whose weekday it names.
    pub fn peak_spans(&self, first: NaiveDate, last: NaiveDate) -> Vec<Span> {
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .flat_map(|date| {
                self.peaks
                    .iter()
                    .filter(move |p| p.days.contains(date.weekday()))
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
        for bad in [
            "13:00-16:00",
            "13:00-16:00@101",
            "13:00-16:00@-1",
            "13:00-16:00@x",
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
            peaks: vec![],
            reserve_soc: Soc::new(100).unwrap(),
            maintenance_windows: windows.iter().map(|w| w.parse().unwrap()).collect(),
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
}
