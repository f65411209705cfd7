//! The first system: a Redflow ZCell on a Victron GX. Run from cron on the
//! GX, it reads the ZCell BMS, plans the day around peak tariffs and
//! maintenance cycles, and writes the ESS scheduled-charge slots.
//!
//! Pure core: `battery`, `policy`, `planner`, `slot`, `report`. Adapters:
//! `bms` (REST) and `gx` (D-Bus, MQTT). Commands: `run`, `status`,
//! `disable`, each taking what `settings` resolved.

pub mod apply;
pub mod battery;
pub mod bms;
pub mod config;
pub mod dess;
pub mod disable;
pub mod gx;
pub mod planner;
pub mod policy;
pub mod record;
pub mod report;
pub mod run;
pub mod settings;
pub mod slot;
pub mod status;
