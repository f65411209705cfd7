//! The record of the last run, `status.json`: what `status` shows, what
//! Node-RED or Home Assistant can read, and how a later run knows the
//! planning day was already applied.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::zcell::battery::Battery;
use crate::zcell::dess::{WindowIndex, WindowValues};
use crate::zcell::planner::{Outlook, Plan, Prediction};
use crate::zcell::slot::{SlotIndex, SlotValues};

pub const DEFAULT_PATH: &str = "/data/zcell-sched/status.json";
/// Cron runs daily; a record older than this means it stopped.
pub const STALE_AFTER: TimeDelta = TimeDelta::hours(26);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The plan is on the GX.
    Applied,
    /// A dry run planned; nothing was written.
    Planned,
    /// The owned slots were disabled (or a dry run would have).
    Fallback,
    /// Usage, configuration or GX failure.
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRecord {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatteryRecord {
    pub id: String,
    pub soc: f64,
    pub stripping: bool,
    pub seconds_to_maintenance: f64,
    /// `running`, `overdue` or `due`.
    pub maintenance: String,
    /// Local wall-clock time maintenance falls due.
    pub due: Option<NaiveDateTime>,
    /// Whether it makes the planning day a maintenance day; absent when no
    /// plan judged it (`status`, or a run that stopped before planning).
    pub in_day: Option<bool>,
}

impl BatteryRecord {
    pub fn new(battery: &Battery, prediction: Prediction, in_day: Option<bool>) -> Self {
        let (maintenance, due) = match prediction {
            Prediction::Running => ("running", None),
            Prediction::Overdue => ("overdue", None),
            Prediction::Due(at) => ("due", Some(at)),
        };
        BatteryRecord {
            id: battery.id.clone(),
            soc: battery.soc,
            stripping: battery.stripping,
            seconds_to_maintenance: battery.seconds_to_maintenance(),
            maintenance: maintenance.to_string(),
            due,
            in_day,
        }
    }
}

impl From<&Outlook> for BatteryRecord {
    fn from(o: &Outlook) -> Self {
        BatteryRecord::new(&o.battery, o.prediction, Some(o.in_day))
    }
}

/// A slot's raw GX values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Values {
    pub day: i32,
    pub start: i32,
    pub duration: i32,
    pub soc: i32,
    /// Absent on firmware without the setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_discharge: Option<i32>,
}

impl From<SlotValues> for Values {
    fn from(v: SlotValues) -> Self {
        Values {
            day: v.day,
            start: v.start,
            duration: v.duration,
            soc: v.soc,
            allow_discharge: v.allow_discharge,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub slot: u8,
    /// Before the run.
    pub before: Values,
    /// After the run (for a dry run: what it would leave).
    pub after: Values,
    /// `SetValue` calls made (or, in a dry run, needed).
    pub writes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub window: u8,
    pub before: WindowValues,
    pub after: WindowValues,
    pub writes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub time: DateTime<Utc>,
    pub zone: Option<String>,
    pub local_time: Option<NaiveDateTime>,
    pub dry_run: bool,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub reason: Option<String>,
    pub planning_day: Option<DayRecord>,
    pub batteries: Vec<BatteryRecord>,
    pub slots: Vec<SlotRecord>,
    /// The owned Dynamic ESS windows (`--writer dess`); absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowRecord>,
    /// Windows zcell-sched does not own that it removed when it took
    /// Dynamic ESS over (`--dess-set-local`); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub foreign_windows_removed: usize,
    pub writes: usize,
    /// When the last run that was not a dry run happened: what cron's
    /// health is judged by.
    pub last_real_run: Option<DateTime<Utc>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RunRecord {
    pub fn day(plan: &Plan) -> DayRecord {
        DayRecord {
            start: plan.day.start,
            end: plan.day.end,
            kind: plan.kind.to_string(),
        }
    }

    pub fn slots(
        before: &BTreeMap<SlotIndex, SlotValues>,
        after: &BTreeMap<SlotIndex, SlotValues>,
        writes: &BTreeMap<SlotIndex, usize>,
    ) -> Vec<SlotRecord> {
        before
            .iter()
            .map(|(slot, b)| SlotRecord {
                slot: slot.get(),
                before: (*b).into(),
                after: after.get(slot).copied().unwrap_or(*b).into(),
                writes: writes.get(slot).copied().unwrap_or(0),
            })
            .collect()
    }

    pub fn windows(
        before: &BTreeMap<WindowIndex, WindowValues>,
        after: &BTreeMap<WindowIndex, WindowValues>,
        writes: &BTreeMap<WindowIndex, usize>,
    ) -> Vec<WindowRecord> {
        before
            .iter()
            .map(|(i, b)| WindowRecord {
                window: i.get(),
                before: *b,
                after: after.get(i).copied().unwrap_or(*b),
                writes: writes.get(i).copied().unwrap_or(0),
            })
            .collect()
    }

    /// The record as seen by a `status --now`: a run's times are those it
    /// planned for (its `--now`), so a demo or preview tells one story
    /// whatever the real date.
    pub fn on_its_own_clock(mut self) -> RunRecord {
        let moment = self.moment();
        if !self.dry_run {
            self.last_real_run = Some(moment);
        }
        self.time = moment;
        self
    }

    /// The moment the run planned for: its local time (`--now`, or the
    /// clock) in its zone, else when it ran.
    fn moment(&self) -> DateTime<Utc> {
        let zone = self
            .zone
            .as_deref()
            .and_then(|z| crate::tz::parse_zone(z).ok());
        match (self.local_time, zone) {
            (Some(local), Some(tz)) => local
                .and_local_timezone(tz)
                .earliest()
                .map_or(self.time, |t| t.with_timezone(&Utc)),
            _ => self.time,
        }
    }

    /// Whether cron looks stopped, judged at `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.last_real_run.is_none_or(|t| now - t > STALE_AFTER)
    }
}

/// The last record, if there is a readable one.
pub fn read(path: &Path) -> Result<Option<RunRecord>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a run record", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Replaces the record atomically.
pub fn write(path: &Path, record: &RunRecord) -> Result<()> {
    let mut text = serde_json::to_string_pretty(record).expect("a record serialises");
    text.push('\n');
    atomic::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(last_real_run: Option<DateTime<Utc>>) -> RunRecord {
        RunRecord {
            time: Utc::now(),
            zone: Some("Australia/Hobart".into()),
            local_time: None,
            dry_run: false,
            outcome: Outcome::Applied,
            exit_code: 0,
            reason: None,
            planning_day: None,
            batteries: vec![],
            slots: vec![],
            windows: vec![],
            foreign_windows_removed: 36,
            writes: 3,
            last_real_run,
        }
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = std::env::temp_dir().join(format!("zcell-record-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("status.json");
        assert_eq!(read(&path).unwrap(), None);
        let r = record(Some(Utc::now()));
        write(&path, &r).unwrap();
        assert_eq!(read(&path).unwrap(), Some(r));
        assert!(!dir.join("status.json.tmp").exists());
        fs::write(&path, "{ half").unwrap();
        assert!(read(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn staleness() {
        let now = Utc::now();
        assert!(!record(Some(now - TimeDelta::hours(25))).is_stale(now));
        assert!(record(Some(now - TimeDelta::hours(27))).is_stale(now));
        assert!(record(None).is_stale(now));
    }
}
