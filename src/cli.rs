//! The command line's shape: commands and options, with the parsers of
//! their values. What they mean is resolved elsewhere (`zcell::settings`),
//! and `app` hands each command to its handler.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{NaiveDateTime, NaiveTime};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};

use crate::tz;
use crate::zcell::bms::BmsAddress;
use crate::zcell::gx::GxTarget;
use crate::zcell::policy::{MaintenanceWindow, OwnedSlots, Peak, parse_clock, parse_soc};
use crate::zcell::slot::Soc;
use crate::zendure::plan_prices::PlanDay;

#[derive(Debug, Parser)]
#[command(
    name = "zcell-sched",
    version,
    about = "Keeps a Redflow ZCell charged outside peak tariffs and lets it drain for maintenance, \
             by writing the ESS scheduled-charge slots of a Victron GX."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the BMS, plan the day and write the owned charge slots (from cron).
    Run(RunArgs),
    /// Show all five charge slots, the GX time zone, the batteries and the last run.
    Status(StatusArgs),
    /// Disable the owned charge slots (keeping their days), e.g. before uninstalling.
    Disable(DisableArgs),
    /// The Zendure battery: its schedule and controller.
    #[command(subcommand)]
    Zendure(ZendureCommand),
    /// Find Zendure batteries and P1 meters on the LAN (mDNS).
    #[cfg(feature = "discover")]
    Discover(DiscoverArgs),
    /// Serve the Zendure schedule, the controller's status and readings, and the web page.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
}

#[derive(Debug, Subcommand)]
pub enum ZendureCommand {
    /// Plan a day from day-ahead prices and write it into the schedule,
    /// beside the owner's entries.
    PlanPrices(PlanPricesArgs),
}

#[derive(Debug, Args)]
pub struct PlanPricesArgs {
    /// JSON config file (its `zendure` object) [default: /etc/zcell-sched/config.json].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The day to plan: YYYY-MM-DD, `today` (from the current hour on) or `tomorrow`.
    #[arg(long, value_name = "DATE", default_value = "today", value_parser = parse_plan_day)]
    pub date: PlanDay,
    /// The SoC at the start of the plan, % [default: for today, the running
    /// controller's last reading; else zendure.min_soc, so the plan never
    /// counts on energy that may not be there].
    #[arg(long, value_name = "PERCENT")]
    pub soc: Option<f64>,
    /// Show the plan; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan as one JSON document.
    #[arg(long)]
    pub json: bool,
}

fn parse_plan_day(s: &str) -> Result<PlanDay, String> {
    PlanDay::parse(s).map_err(|e| e.to_string())
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// JSON config file; its `serve` object holds the server's keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding `serve.listen` [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[cfg(feature = "discover")]
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Seconds to listen for answers.
    #[arg(long, value_name = "N", default_value = "3", value_parser = parse_seconds)]
    pub seconds: f64,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Browse on this network interface only [default: all].
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Print only the address "auto" would stand for in the config:
    /// battery, homewizard, homewizard-v2 or zendure-p1.
    #[arg(long, value_name = "WHAT", conflicts_with = "json")]
    pub auto: Option<String>,
    /// With --auto: the device with this serial.
    #[arg(long, value_name = "SERIAL", requires = "auto")]
    pub sn: Option<String>,
}

/// A number of seconds, fractions allowed, as every duration is.
pub fn parse_seconds(s: &str) -> anyhow::Result<f64> {
    let n: f64 = s
        .parse()
        .with_context(|| format!("`{s}` is not a number of seconds"))?;
    anyhow::ensure!(
        n.is_finite() && n > 0.0,
        "`{s}` must be a positive number of seconds"
    );
    Ok(n)
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The ZCell BMS: HOST, HOST:PORT or http://HOST:PORT (port 3000 by default).
    #[arg(long, value_name = "ADDR")]
    pub bms: Option<BmsAddress>,
    /// Plan and print what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the run record as one JSON document.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// Do nothing if the status file records this planning day as applied
    /// (for an hourly cron entry).
    #[arg(long, conflicts_with = "dry_run")]
    pub skip_if_done: bool,
    /// Time zone to plan in, overriding the GX's /Settings/System/TimeZone.
    #[arg(long, value_name = "ZONE", value_parser = tz::parse_zone)]
    pub tz: Option<Tz>,
    /// Plan as if it were this local time (previews and tests).
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = parse_now)]
    pub now: Option<NaiveDateTime>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub status_file: StatusFileArgs,
    #[command(flatten)]
    pub gx: GxArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also read the ZCell BMS (default: the config file's `bms`).
    #[arg(long, value_name = "ADDR")]
    pub bms: Option<BmsAddress>,
    /// The slots zcell-sched owns, to mark them [default: 3,4].
    #[arg(long, value_name = "N,N")]
    pub slots: Option<OwnedSlots>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub status_file: StatusFileArgs,
    #[command(flatten)]
    pub gx: GxArgs,
}

#[derive(Debug, Args)]
pub struct DisableArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The slots zcell-sched owns [default: 3,4].
    #[arg(long, value_name = "N,N")]
    pub slots: Option<OwnedSlots>,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub gx: GxArgs,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// JSON config file; command-line options override it
    /// [default: /data/zcell-sched/config.json, when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The charge slots zcell-sched owns (0-4; the GX GUI shows them as 1-5).
    /// It never writes any other slot [default: 3,4].
    #[arg(long, value_name = "N,N")]
    pub slots: Option<OwnedSlots>,
    /// Local time the planning day starts [default: 07:00].
    #[arg(long, value_name = "HH:MM", value_parser = parse_clock)]
    pub day_start: Option<NaiveTime>,
    /// A peak-tariff window, DAYS@HH:MM-HH:MM; DAYS is daily, weekdays,
    /// weekends or a list like mon,wed,fri. Repeat for several
    /// [default: weekdays@07:00-10:00 weekdays@16:00-21:00].
    #[arg(
        long = "peak",
        value_name = "DAYS@HH:MM-HH:MM",
        conflicts_with = "no_peaks"
    )]
    pub peaks: Vec<Peak>,
    /// No peak-tariff windows at all.
    #[arg(long)]
    pub no_peaks: bool,
    /// SoC to hold outside the peaks on normal days [default: 100].
    #[arg(long, value_name = "PERCENT", value_parser = parse_soc, allow_hyphen_values = true)]
    pub reserve_soc: Option<Soc>,
    /// A charge window on maintenance days, HH:MM-HH:MM@SOC. Repeat for
    /// several [default: 13:00-16:00@50 03:00-07:00@100].
    #[arg(long = "maintenance-window", value_name = "HH:MM-HH:MM@SOC")]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Seconds one BMS request may take, connect to last byte [default: 10].
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub bms_timeout: Option<u64>,
    /// BMS attempts after the first, 1 s, 2 s, 4 s ... apart [default: 2].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub bms_retries: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Lock file that keeps two runs from writing at once.
    #[arg(
        long,
        value_name = "PATH",
        env = "ZCELL_SCHED_LOCK_FILE",
        default_value = "/run/zcell-sched.lock"
    )]
    pub lock_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct GxArgs {
    /// Where the GX settings are: dbus (on the GX), or the GX's MQTT broker,
    /// mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883).
    #[arg(long, value_name = "TARGET", default_value = "dbus")]
    pub gx: GxTarget,
    /// MQTT: the GX's portal id [default: discovered from N/+/system/0/Serial].
    #[arg(long, value_name = "ID")]
    pub portal_id: Option<String>,
    /// MQTT: user name (or token name). The password comes from the
    /// environment (ZCELL_SCHED_MQTT_PASSWORD) or --mqtt-password-file, never
    /// from the command line, where ps would show it.
    #[arg(long, value_name = "USER")]
    pub mqtt_user: Option<String>,
    /// MQTT: a file holding the password (its first line).
    #[arg(long, value_name = "FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// mqtts: PEM certificates to trust, the GX's own (pinned) or a CA.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// mqtts: accept any certificate (warns on every run).
    #[arg(long, conflicts_with = "ca_file")]
    pub insecure_skip_verify: bool,
    /// MQTT: seconds to wait for the broker and for each answer.
    #[arg(long, value_name = "SECONDS", default_value = "10",
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub mqtt_timeout: u64,
}

#[derive(Debug, Args)]
pub struct StatusFileArgs {
    /// Where the record of the last run is kept
    /// [default: the config's status_file, else /data/zcell-sched/status.json].
    #[arg(long, value_name = "PATH", env = "ZCELL_SCHED_STATUS_FILE")]
    pub status_file: Option<PathBuf>,
}

pub fn parse_now(s: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .with_context(|| format!("`{s}` is not a local time (use YYYY-MM-DDTHH:MM)"))
}
