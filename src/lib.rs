//! zcell-sched: plans a Redflow ZCell's charging around peak tariffs and
//! maintenance cycles, and writes the plan into a Victron GX's ESS
//! scheduled-charge slots.
//!
//! The planner is pure; `bms` and `gx` are the adapters at the edges and
//! `cli` wires them together.

pub mod apply;
pub mod bms;
pub mod cli;
pub mod config;
pub mod exit;
pub mod gx;
pub mod lock;
pub mod planner;
pub mod policy;
pub mod record;
pub mod report;
pub mod run;
pub mod slot;
pub mod span;
pub mod zendure;

/// One event, one short line on stderr: cron mails it, syslog keeps it.
pub fn log(message: &str) {
    eprintln!("zcell-sched: {message}");
}
