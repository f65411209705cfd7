//! The ZCell/GX commands (`run`, `status`, `disable`): their options, and
//! what they resolve to, the command line over the config file over the
//! defaults. Handlers take the resolved settings and never look at the
//! options again.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::{NaiveDateTime, NaiveTime, TimeDelta};
use chrono_tz::Tz;
use clap::Args;

use crate::exit::EXIT_CODES;
use crate::exit::{Exit, ExitContext, Failure};
use crate::tz;
use crate::zcell::bms::{BmsAddress, FetchOptions};
use crate::zcell::config::{self, Config, Overrides, RulesFile};
use crate::zcell::dess::{DEFAULT_OVERLAP, DessOptions, Writer, parse_overlap};
use crate::zcell::gx::{GxOptions, GxTarget};
use crate::zcell::planner;
use crate::zcell::policy::{
    self, MaintenanceWindow, OwnedSlots, Peak, Policy, parse_clock, parse_soc,
};
use crate::zcell::record;
use crate::zcell::settings::{DisableSettings, RunMode, RunRequest, RunSettings, StatusSettings};
use crate::zcell::slot::Soc;

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

pub async fn run(args: RunArgs) -> Result<(), Failure> {
    crate::zcell::run::run(run_request(&args)).await
}

pub async fn status(args: StatusArgs) -> Result<(), Failure> {
    crate::zcell::status::status(status_settings(&args)?).await
}

pub async fn disable(args: DisableArgs) -> Result<(), Failure> {
    crate::zcell::disable::disable(disable_settings(&args)?).await
}

/// `run`'s request; the record's path even when the rest cannot be resolved.
fn run_request(args: &RunArgs) -> RunRequest {
    let config = load(&args.config);
    // A broken config file still leaves the command line's (or the default) path.
    let status_file = status_file(
        &args.status_file,
        config.as_ref().unwrap_or(&Config::default()),
    );
    // Only `run` publishes, so only `run` checks the object.
    let homeassistant = match config.as_ref() {
        Ok(Config {
            homeassistant: Some(section),
            path: Some(path),
            ..
        }) => crate::homeassistant::config::from_section(Some(section))
            .with_context(|| format!("config file {}", path.display()))
            .or_exit(Exit::Usage),
        _ => Ok(None),
    };
    let settings = config.and_then(|config| run_settings(args, &config));
    let (settings, homeassistant) = match homeassistant {
        Ok(ha) => (settings, ha),
        Err(failure) => (Err(failure), None),
    };
    RunRequest {
        mode: RunMode {
            dry_run: args.dry_run,
            json: args.json,
            skip_if_done: args.skip_if_done,
            now: args.now,
        },
        status_file,
        settings,
        homeassistant,
    }
}

fn run_settings(args: &RunArgs, config: &Config) -> Result<RunSettings, Failure> {
    let policy = policy(args, config).or_exit(Exit::Usage)?;
    let bms = args
        .bms
        .clone()
        .or_else(|| config.bms.clone())
        .ok_or_else(|| anyhow!("no BMS address: give --bms or `bms` in the config file"))
        .or_exit(Exit::Usage)?;
    Ok(RunSettings {
        policy,
        bms,
        fetch: fetch_options(&args.fetch, config),
        tz: args.tz.or(config.time_zone),
        lock_file: args.lock.lock_file.clone(),
        gx: gx_options(&args.gx)?,
        writer: writer(&args.writer, config),
        dess: DessOptions {
            overlap: TimeDelta::from_std(
                args.dess_overlap
                    .or(config.dess_overlap)
                    .unwrap_or(DEFAULT_OVERLAP),
            )
            .expect("an overlap of at most hours"),
            set_local: args.dess_set_local,
        },
    })
}

fn writer(args: &WriterArgs, config: &Config) -> Writer {
    args.writer.or(config.writer).unwrap_or_default()
}

/// The policy, checked, and refused if some day would need more windows
/// than there are owned slots. The file's own policy was checked when it
/// was read; what fails here comes from the command line or the slots.
fn policy(args: &RunArgs, config: &Config) -> anyhow::Result<Policy> {
    let cli = &args.policy;
    if !cli.maintenance_windows.is_empty() {
        policy::check_windows(&cli.maintenance_windows).context("--maintenance-window")?;
    }
    let policy = config.policy(&Overrides {
        slots: cli.slots.clone(),
        day_start: cli.day_start,
        rules: RulesFile {
            peaks: match (cli.no_peaks, cli.peaks.is_empty()) {
                (true, _) => Some(Vec::new()),
                (false, false) => Some(cli.peaks.clone()),
                (false, true) => None,
            },
            reserve_soc: cli.reserve_soc,
            maintenance_windows: (!cli.maintenance_windows.is_empty())
                .then(|| cli.maintenance_windows.clone()),
        },
    })?;
    planner::check_fits(&policy).with_context(|| match (&cli.slots, &config.path) {
        (Some(slots), _) => format!("--slots {slots}"),
        (None, Some(path)) if config.slots.is_some() => {
            format!("config file {}: `slots`", path.display())
        }
        (None, _) => format!("the owned slots {}", policy.slots),
    })?;
    Ok(policy)
}

fn status_settings(args: &StatusArgs) -> Result<StatusSettings, Failure> {
    let config = load(&args.config)?;
    Ok(StatusSettings {
        owned: owned_slots(&args.slots, &config),
        bms: args.bms.clone().or_else(|| config.bms.clone()),
        fetch: fetch_options(&args.fetch, &config),
        tz: args.tz.or(config.time_zone),
        now: args.now,
        status_file: status_file(&args.status_file, &config),
        json: args.json,
        gx: gx_options(&args.gx)?,
        writer: writer(&args.writer, &config),
    })
}

fn disable_settings(args: &DisableArgs) -> Result<DisableSettings, Failure> {
    let config = load(&args.config)?;
    Ok(DisableSettings {
        owned: owned_slots(&args.slots, &config),
        lock_file: args.lock.lock_file.clone(),
        gx: gx_options(&args.gx)?,
        writer: writer(&args.writer, &config),
    })
}

fn load(args: &ConfigArgs) -> Result<Config, Failure> {
    config::load(args.config.as_deref()).or_exit(Exit::Usage)
}

fn owned_slots(cli: &Option<OwnedSlots>, config: &Config) -> OwnedSlots {
    cli.clone().unwrap_or_else(|| config.owned_slots())
}

fn status_file(args: &StatusFileArgs, config: &Config) -> PathBuf {
    args.status_file
        .clone()
        .or_else(|| config.status_file.clone())
        .unwrap_or_else(|| PathBuf::from(record::DEFAULT_PATH))
}

fn fetch_options(args: &FetchArgs, config: &Config) -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(args.bms_timeout.or(config.bms_timeout).unwrap_or(10)),
        retries: args.bms_retries.or(config.bms_retries).unwrap_or(2),
    }
}

fn gx_options(args: &GxArgs) -> Result<GxOptions, Failure> {
    let mqtt_only = args.portal_id.is_some()
        || args.mqtt_user.is_some()
        || args.mqtt_password_file.is_some()
        || args.ca_file.is_some()
        || args.insecure_skip_verify;
    let usage = |msg: String| Err(Failure::new(Exit::Usage, anyhow!(msg)));
    match &args.gx {
        GxTarget::Dbus if mqtt_only => {
            usage("--portal-id, --mqtt-*, --ca-file and --insecure-skip-verify need --gx mqtt://... or mqtts://...".into())
        }
        GxTarget::Mqtt { tls: true, .. } if args.ca_file.is_none() && !args.insecure_skip_verify => {
            usage("mqtts needs --ca-file (the GX's certificate or its CA) or --insecure-skip-verify".into())
        }
        GxTarget::Mqtt { tls: false, .. } if args.ca_file.is_some() || args.insecure_skip_verify => {
            usage("--ca-file and --insecure-skip-verify need mqtts://".into())
        }
        _ => Ok(GxOptions {
            target: args.gx.clone(),
            #[cfg(feature = "mqtt")]
            mqtt: mqtt_options(args)?,
        }),
    }
}

#[cfg(feature = "mqtt")]
fn mqtt_options(args: &GxArgs) -> Result<crate::zcell::gx::MqttOptions, Failure> {
    use anyhow::Context as _;
    let password = match &args.mqtt_password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --mqtt-password-file {}", path.display()))
                .or_exit(Exit::Usage)?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        None => std::env::var("ZCELL_SCHED_MQTT_PASSWORD").ok(),
    };
    let (host, port, tls) = match &args.gx {
        GxTarget::Mqtt { host, port, tls } => (host.clone(), *port, *tls),
        GxTarget::Dbus => (String::new(), 0, false),
    };
    Ok(crate::zcell::gx::MqttOptions {
        host,
        port,
        tls,
        portal_id: args.portal_id.clone(),
        user: args.mqtt_user.clone(),
        password,
        ca_file: args.ca_file.clone(),
        insecure_skip_verify: args.insecure_skip_verify,
        timeout: Duration::from_secs(args.mqtt_timeout),
    })
}
