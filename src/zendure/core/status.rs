//! The status document: what the controller knows, as the status file
//! holds it (`io::status` writes and reads the file).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::zendure::core::energy::EnergyKwh;
use crate::zendure::core::law::Command;
use crate::zendure::core::manual::Override;
use crate::zendure::core::reading::Pack;
use crate::zendure::core::report::PosterStats;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    pub pid: u32,
    /// When this was written.
    pub updated: DateTime<Utc>,
    /// The controller counts as stopped once the file is older than this.
    pub alive_within_s: f64,
    pub schedule: ScheduleStatus,
    pub meter: MeterStatus,
    pub device: DeviceStatus,
    /// What the device should be doing now, and why.
    pub target: CommandStatus,
    pub reason: String,
    /// Written last, after SIGTERM/SIGINT and the final 0 W command.
    #[serde(default)]
    pub stopped: bool,
    pub last_command: Option<WrittenStatus>,
    /// Writes and AC direction changes since the controller started.
    pub writes: u64,
    pub direction_changes: u64,
    /// The reports to the server (when `status_url`/`data_url` are set):
    /// delivered, waiting on disk, dropped as the oldest of a full queue.
    #[serde(default)]
    pub reports: Option<PosterStats>,
    /// The owner's override in force, replacing the schedule's value.
    #[serde(default, rename = "override")]
    pub manual: Option<Override>,
    /// Energy this run has measured (absent in files of older versions).
    #[serde(default)]
    pub energy: Option<EnergyStatus>,
}

/// Running totals since the controller started (a restart starts them
/// again, as Home Assistant's `total_increasing` allows), and today's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyStatus {
    pub since: DateTime<Utc>,
    #[serde(flatten)]
    pub total: EnergyKwh,
    pub today: TodayEnergy,
}

/// The local day's totals, as far as this run measured them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TodayEnergy {
    pub date: NaiveDate,
    #[serde(flatten)]
    pub kwh: EnergyKwh,
    /// With `zendure.prices`: what the grid cost over the readings a price
    /// covered, and what the battery saved against its absence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_eur: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saving_eur: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    pub source: String,
    /// `fresh` (read from the source at the last refresh), `last_good`
    /// (the source is down or invalid; the kept copy is used) or `none`
    /// (no schedule at all: 0 W).
    pub state: String,
    pub error: Option<String>,
    /// The value in force, in the schedule's JSON form.
    pub value: Value,
    pub key: Option<String>,
    /// Local wall-clock time it took effect.
    pub since: Option<NaiveDateTime>,
    pub next_change: Option<NextChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextChange {
    /// Local wall-clock time.
    pub at: NaiveDateTime,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterStatus {
    pub meter: String,
    /// Net grid W of the newest reading, import positive.
    pub grid_w: Option<i32>,
    pub age_s: Option<f64>,
    pub error: Option<String>,
    /// The lag in use: `configured`, `estimated` or `unknown`.
    pub lag: String,
    pub lag_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device: String,
    pub sn: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    pub error: Option<String>,
    pub age_s: Option<f64>,
    pub soc_pct: Option<u8>,
    /// AC side: positive drawn (charging), negative delivered.
    pub ac_w: Option<i32>,
    /// Battery side: positive charging, negative discharging.
    pub battery_w: Option<i64>,
    pub ac_mode: Option<u8>,
    pub input_limit_w: Option<u32>,
    pub output_limit_w: Option<u32>,
    pub charge_max_w: Option<u32>,
    pub discharge_max_w: Option<u32>,
    pub pack_state: Option<i64>,
    pub cut_off: Option<String>,
    pub packs: Vec<Pack>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandStatus {
    /// Positive charges, negative discharges.
    pub setpoint_w: i64,
    pub text: String,
}

impl From<Command> for CommandStatus {
    fn from(c: Command) -> Self {
        CommandStatus {
            setpoint_w: c.setpoint_w(),
            text: c.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrittenStatus {
    #[serde(flatten)]
    pub command: CommandStatus,
    pub written: DateTime<Utc>,
}
