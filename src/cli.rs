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
use crate::zcell::dess::{Writer, parse_overlap};
use crate::zcell::gx::GxTarget;
use crate::zcell::policy::{MaintenanceWindow, OwnedSlots, Peak, parse_clock, parse_soc};
use crate::zcell::slot::Soc;
#[cfg(feature = "zendure")]
use crate::zendure::prices::PlanDay;

/// The help's footer: what a caller (cron, a script) branches on.
const EXIT_CODES: &str = "\
Exit codes:
  0         applied (or, with --dry-run, planned); status: everything read
  1         fell back: the owned slots were disabled (BMS unreadable, zone unknown,
            clock unset, no plan); status: the BMS could not be read
  2         usage or configuration error: nothing was written
  3         the GX settings (zendure: the device) could not be read or written
  4         another run holds the lock
  130, 143  stopped by SIGINT, SIGTERM";

#[derive(Debug, Parser)]
#[command(
    name = "zcell-sched",
    version,
    after_help = EXIT_CODES,
    about = "Runs home batteries locally. A Redflow ZCell on a Victron GX (run, status, disable): \
             kept charged outside peak tariffs and left to drain for maintenance, through the \
             GX's charge schedule. A Zendure SolarFlow with a P1 meter (zendure ...): driven \
             through its local API to follow a charge/discharge schedule."
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
    /// Find Zendure batteries and P1 meters on the LAN (mDNS).
    #[cfg(feature = "discover")]
    Discover(DiscoverArgs),
    /// Serve the Zendure schedule, the controller's status and readings, and the web page.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// The Zendure SolarFlow on the LAN: its controller, status and schedule.
    #[cfg(feature = "zendure")]
    #[command(subcommand)]
    Zendure(ZendureCommand),
}

#[cfg(feature = "zendure")]
#[derive(Debug, Subcommand)]
pub enum ZendureCommand {
    /// Follow the schedule in the foreground until SIGTERM/SIGINT (then 0 W).
    Run {
        #[command(flatten)]
        config: ZendureConfigArgs,
        /// Exit 0 with no output if another controller holds the lock (for
        /// an hourly cron entry).
        #[arg(long)]
        if_not_running: bool,
    },
    /// Show the device, the meter, the schedule in force and the controller.
    Status {
        #[command(flatten)]
        config: ZendureConfigArgs,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Show a day of the schedule resolved, or why it is invalid.
    Schedule {
        #[command(flatten)]
        config: ZendureConfigArgs,
        /// The day [default: today in the configured zone].
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<chrono::NaiveDate>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// One control step: read meter, device and schedule, decide, write.
    Once {
        #[command(flatten)]
        config: ZendureConfigArgs,
        /// Decide and print; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Plan a day from day-ahead prices and write it into the schedule,
    /// beside the owner's entries.
    PlanPrices(PlanPricesArgs),
}

#[cfg(feature = "zendure")]
#[derive(Debug, Args)]
pub struct PlanPricesArgs {
    #[command(flatten)]
    pub config: ZendureConfigArgs,
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

#[cfg(feature = "zendure")]
fn parse_plan_day(s: &str) -> Result<PlanDay, String> {
    PlanDay::parse(s).map_err(|e| e.to_string())
}

#[cfg(feature = "zendure")]
#[derive(Debug, Args)]
pub struct ZendureConfigArgs {
    /// JSON config file with a `zendure` object
    /// [default: /etc/zcell-sched/config.json].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
#[command(after_help = EXIT_CODES)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The ZCell BMS: HOST, HOST:PORT or http://HOST:PORT (port 3000 by
    /// default). Required: from this option or the config file's `bms`.
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
    #[command(flatten)]
    pub writer: WriterArgs,
    /// With --writer dess: switch Dynamic ESS to Local mode when it is Off or
    /// Auto (VRM); without it such a GX is refused (exit 3).
    #[arg(long)]
    pub dess_set_local: bool,
    /// With --writer dess: seconds the last window runs past the planning
    /// day, so the next day's run finds one running [default: 600].
    #[arg(long, value_name = "SECONDS", value_parser = parse_overlap)]
    pub dess_overlap: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct WriterArgs {
    /// How the plan goes to the GX: slots (ESS scheduled-charge slots, any
    /// firmware, repeat weekly) or dess (Dynamic ESS Local windows, which end
    /// by themselves) [default: the config's writer, else slots].
    #[arg(long, value_name = "slots|dess")]
    pub writer: Option<Writer>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
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
    /// Time zone to show times in, overriding the config's and the GX's.
    #[arg(long, value_name = "ZONE", value_parser = tz::parse_zone)]
    pub tz: Option<Tz>,
    /// Show as if it were this local time (previews, demos, tests).
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = parse_now)]
    pub now: Option<NaiveDateTime>,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub status_file: StatusFileArgs,
    #[command(flatten)]
    pub gx: GxArgs,
    #[command(flatten)]
    pub writer: WriterArgs,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
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
    #[command(flatten)]
    pub writer: WriterArgs,
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
    /// A peak-tariff window, DAYS@HH:MM-HH:MM. DAYS is daily, weekdays,
    /// weekends, a day (mon ... sun), a range like mon-fri or a list like
    /// mon,wed,fri. The end may be 24:00 (midnight); an end at or before the
    /// start crosses midnight (fri@21:00-07:00 runs into Saturday). Repeat
    /// for several [default: weekdays@07:00-10:00 weekdays@16:00-21:00].
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
    /// A charge window on maintenance days, HH:MM-HH:MM@SOC (24:00 and
    /// crossing midnight as for --peak). Below 100% the GX holds the battery
    /// at SOC; add +discharge (HH:MM-HH:MM@SOC+discharge) to let it discharge
    /// while above SOC (AllowDischarge 1, firmware from mid-2022 on). Repeat
    /// for several [default: 13:00-16:00@50 03:00-07:00@100].
    #[arg(
        long = "maintenance-window",
        value_name = "HH:MM-HH:MM@SOC[+discharge]"
    )]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Seconds one BMS request may take, connect to last byte, 1 to 300
    /// [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = parse_bms_timeout)]
    pub bms_timeout: Option<u64>,
    /// BMS attempts after the first, 1 s, 2 s, 4 s ... apart, 0 to 10
    /// [default: 2].
    #[arg(long, value_name = "N", value_parser = parse_bms_retries)]
    pub bms_retries: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Lock file that keeps two runs from writing at once.
    #[arg(
        long,
        value_name = "PATH",
        env = "ZCELL_SCHED_LOCK_FILE",
        hide_env_values = true,
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
    /// MQTT: seconds to wait for the broker and for each answer, 1 to 120.
    #[arg(long, value_name = "SECONDS", default_value = "10",
          value_parser = parse_mqtt_timeout)]
    pub mqtt_timeout: u64,
}

#[derive(Debug, Args)]
pub struct StatusFileArgs {
    /// Where the record of the last run is kept
    /// [default: the config's status_file, else /data/zcell-sched/status.json].
    #[arg(
        long,
        value_name = "PATH",
        env = "ZCELL_SCHED_STATUS_FILE",
        hide_env_values = true
    )]
    pub status_file: Option<PathBuf>,
}

pub fn parse_now(s: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .with_context(|| format!("`{s}` is not a local time (use YYYY-MM-DDTHH:MM)"))
}

/// A whole number from `min` to `max`, the bounds said in words when not.
fn whole(s: &str, min: u64, max: u64, unit: &str) -> anyhow::Result<u64> {
    s.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .with_context(|| format!("`{s}` is not a whole number of {unit} from {min} to {max}"))
}

fn parse_bms_timeout(s: &str) -> anyhow::Result<u64> {
    whole(s, 1, 300, "seconds")
}

fn parse_bms_retries(s: &str) -> anyhow::Result<u32> {
    whole(s, 0, 10, "retries").map(|n| n as u32)
}

fn parse_mqtt_timeout(s: &str) -> anyhow::Result<u64> {
    whole(s, 1, 120, "seconds")
}
