//! The command line: options, how they combine with the config file, and
//! the `status` and `disable` commands. `run` lives in `run.rs`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::{NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::apply;
use crate::bms::{self, BmsAddress, FetchOptions};
use crate::config::{self, Config, Overrides, RulesFile};
use crate::exit::{Exit, ExitContext, Failure};
use crate::gx::{self, GxOptions, GxTarget, Settings};
use crate::lock;
use crate::log;
use crate::planner;
use crate::policy::{MaintenanceWindow, OwnedSlots, Peak, Policy, parse_clock, parse_soc};
use crate::record::{self, BatteryRecord};
use crate::report;
use crate::run;
use crate::slot::{SlotIndex, Soc};

#[derive(Debug, Parser)]
#[command(
    name = "zcell-sched",
    version,
    about = "Keeps a Redflow ZCell charged outside peak tariffs and lets it drain for maintenance, \
             by writing the ESS scheduled-charge slots of a Victron GX."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read the BMS, plan the day and write the owned charge slots (from cron).
    Run(RunArgs),
    /// Show all five charge slots, the GX time zone, the batteries and the last run.
    Status(StatusArgs),
    /// Disable the owned charge slots (keeping their days), e.g. before uninstalling.
    Disable(DisableArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The ZCell BMS: HOST, HOST:PORT or http://HOST:PORT (port 3000 by default).
    #[arg(long, value_name = "ADDR")]
    bms: Option<BmsAddress>,
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
    #[arg(long, value_name = "ZONE", value_parser = gx::parse_zone)]
    tz: Option<Tz>,
    /// Plan as if it were this local time (previews and tests).
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = parse_now)]
    pub now: Option<NaiveDateTime>,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    lock: LockArgs,
    #[command(flatten)]
    status_file: StatusFileArgs,
    #[command(flatten)]
    gx: GxArgs,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also read the ZCell BMS (default: the config file's `bms`).
    #[arg(long, value_name = "ADDR")]
    bms: Option<BmsAddress>,
    /// The slots zcell-sched owns, to mark them [default: 3,4].
    #[arg(long, value_name = "N,N")]
    slots: Option<OwnedSlots>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    status_file: StatusFileArgs,
    #[command(flatten)]
    gx: GxArgs,
}

#[derive(Debug, Args)]
struct DisableArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The slots zcell-sched owns [default: 3,4].
    #[arg(long, value_name = "N,N")]
    slots: Option<OwnedSlots>,
    #[command(flatten)]
    lock: LockArgs,
    #[command(flatten)]
    gx: GxArgs,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// JSON config file; command-line options override it
    /// [default: /data/zcell-sched/config.json, when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config, Failure> {
        config::load(self.config.as_deref()).or_exit(Exit::Usage)
    }
}

#[derive(Debug, Args)]
struct PolicyArgs {
    /// The charge slots zcell-sched owns (0-4; the GX GUI shows them as 1-5).
    /// It never writes any other slot [default: 3,4].
    #[arg(long, value_name = "N,N")]
    slots: Option<OwnedSlots>,
    /// Local time the planning day starts [default: 07:00].
    #[arg(long, value_name = "HH:MM", value_parser = parse_clock)]
    day_start: Option<NaiveTime>,
    /// A peak-tariff window, DAYS@HH:MM-HH:MM; DAYS is daily, weekdays,
    /// weekends or a list like mon,wed,fri. Repeat for several
    /// [default: weekdays@07:00-10:00 weekdays@16:00-21:00].
    #[arg(
        long = "peak",
        value_name = "DAYS@HH:MM-HH:MM",
        conflicts_with = "no_peaks"
    )]
    peaks: Vec<Peak>,
    /// No peak-tariff windows at all.
    #[arg(long)]
    no_peaks: bool,
    /// SoC to hold outside the peaks on normal days [default: 100].
    #[arg(long, value_name = "PERCENT", value_parser = parse_soc, allow_hyphen_values = true)]
    reserve_soc: Option<Soc>,
    /// A charge window on maintenance days, HH:MM-HH:MM@SOC. Repeat for
    /// several [default: 13:00-16:00@50 03:00-07:00@100].
    #[arg(long = "maintenance-window", value_name = "HH:MM-HH:MM@SOC")]
    maintenance_windows: Vec<MaintenanceWindow>,
}

#[derive(Debug, Args)]
struct FetchArgs {
    /// Seconds one BMS request may take, connect to last byte [default: 10].
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    bms_timeout: Option<u64>,
    /// BMS attempts after the first, 1 s, 2 s, 4 s ... apart [default: 2].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=10))]
    bms_retries: Option<u32>,
}

impl FetchArgs {
    fn options(&self, config: &Config) -> FetchOptions {
        FetchOptions {
            timeout: Duration::from_secs(self.bms_timeout.or(config.bms_timeout).unwrap_or(10)),
            retries: self.bms_retries.or(config.bms_retries).unwrap_or(2),
        }
    }
}

#[derive(Debug, Args)]
struct LockArgs {
    /// Lock file that keeps two runs from writing at once.
    #[arg(
        long,
        value_name = "PATH",
        env = "ZCELL_SCHED_LOCK_FILE",
        default_value = "/run/zcell-sched.lock"
    )]
    lock_file: PathBuf,
}

#[derive(Debug, Args)]
struct GxArgs {
    /// Where the GX settings are: dbus (on the GX), or the GX's MQTT broker,
    /// mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883).
    #[arg(long, value_name = "TARGET", default_value = "dbus")]
    gx: GxTarget,
    /// MQTT: the GX's portal id [default: discovered from N/+/system/0/Serial].
    #[arg(long, value_name = "ID")]
    portal_id: Option<String>,
    /// MQTT: user name (or token name). The password comes from the
    /// environment (ZCELL_SCHED_MQTT_PASSWORD) or --mqtt-password-file, never
    /// from the command line, where ps would show it.
    #[arg(long, value_name = "USER")]
    mqtt_user: Option<String>,
    /// MQTT: a file holding the password (its first line).
    #[arg(long, value_name = "FILE")]
    mqtt_password_file: Option<PathBuf>,
    /// mqtts: PEM certificates to trust, the GX's own (pinned) or a CA.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// mqtts: accept any certificate (warns on every run).
    #[arg(long, conflicts_with = "ca_file")]
    insecure_skip_verify: bool,
    /// MQTT: seconds to wait for the broker and for each answer.
    #[arg(long, value_name = "SECONDS", default_value = "10",
          value_parser = clap::value_parser!(u64).range(1..=120))]
    mqtt_timeout: u64,
}

impl GxArgs {
    fn options(&self) -> Result<GxOptions, Failure> {
        let mqtt_only = self.portal_id.is_some()
            || self.mqtt_user.is_some()
            || self.mqtt_password_file.is_some()
            || self.ca_file.is_some()
            || self.insecure_skip_verify;
        let usage = |msg: String| Err(Failure::new(Exit::Usage, anyhow!(msg)));
        match &self.gx {
            GxTarget::Dbus if mqtt_only => {
                usage("--portal-id, --mqtt-*, --ca-file and --insecure-skip-verify need --gx mqtt://... or mqtts://...".into())
            }
            GxTarget::Mqtt { tls: true, .. } if self.ca_file.is_none() && !self.insecure_skip_verify => {
                usage("mqtts needs --ca-file (the GX's certificate or its CA) or --insecure-skip-verify".into())
            }
            GxTarget::Mqtt { tls: false, .. } if self.ca_file.is_some() || self.insecure_skip_verify => {
                usage("--ca-file and --insecure-skip-verify need mqtts://".into())
            }
            _ => Ok(GxOptions {
                target: self.gx.clone(),
                #[cfg(feature = "mqtt")]
                mqtt: self.mqtt_options()?,
            }),
        }
    }

    #[cfg(feature = "mqtt")]
    fn mqtt_options(&self) -> Result<gx::MqttOptions, Failure> {
        let password = match &self.mqtt_password_file {
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
        let (host, port, tls) = match &self.gx {
            GxTarget::Mqtt { host, port, tls } => (host.clone(), *port, *tls),
            GxTarget::Dbus => (String::new(), 0, false),
        };
        Ok(gx::MqttOptions {
            host,
            port,
            tls,
            portal_id: self.portal_id.clone(),
            user: self.mqtt_user.clone(),
            password,
            ca_file: self.ca_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
            timeout: Duration::from_secs(self.mqtt_timeout),
        })
    }
}

#[derive(Debug, Args)]
struct StatusFileArgs {
    /// Where the record of the last run is kept
    /// [default: the config's status_file, else /data/zcell-sched/status.json].
    #[arg(long, value_name = "PATH", env = "ZCELL_SCHED_STATUS_FILE")]
    status_file: Option<PathBuf>,
}

impl StatusFileArgs {
    fn path(&self, config: &Config) -> PathBuf {
        self.status_file
            .clone()
            .or_else(|| config.status_file.clone())
            .unwrap_or_else(|| PathBuf::from(record::DEFAULT_PATH))
    }
}

fn parse_now(s: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .with_context(|| format!("`{s}` is not a local time (use YYYY-MM-DDTHH:MM)"))
}

fn owned_slots(cli: &Option<OwnedSlots>, config: &Config) -> OwnedSlots {
    cli.clone().unwrap_or_else(|| config.owned_slots())
}

/// Everything `run` needs, from the command line over the config file over
/// the defaults.
pub struct RunSettings {
    pub policy: Policy,
    pub bms: BmsAddress,
    pub fetch: FetchOptions,
    pub tz: Option<Tz>,
    pub status_file: PathBuf,
    pub lock_file: PathBuf,
    pub gx: GxOptions,
}

impl RunArgs {
    /// Where to record a run whose settings could not be read.
    pub fn status_file(&self) -> PathBuf {
        let config = self.config.load().unwrap_or_default();
        self.status_file.path(&config)
    }

    pub fn settings(&self) -> Result<RunSettings, Failure> {
        let config = self.config.load()?;
        let policy = self.policy(&config).or_exit(Exit::Usage)?;
        let bms = self
            .bms
            .clone()
            .or_else(|| config.bms.clone())
            .ok_or_else(|| anyhow!("no BMS address: give --bms or `bms` in the config file"))
            .or_exit(Exit::Usage)?;
        Ok(RunSettings {
            policy,
            bms,
            fetch: self.fetch.options(&config),
            tz: self.tz.or(config.time_zone),
            status_file: self.status_file.path(&config),
            lock_file: self.lock.lock_file.clone(),
            gx: self.gx.options()?,
        })
    }

    fn policy(&self, config: &Config) -> anyhow::Result<Policy> {
        let cli = &self.policy;
        config.policy(&Overrides {
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
        })
    }
}

impl Cli {
    pub async fn execute(self) -> Result<(), Failure> {
        match self.command {
            Command::Run(args) => run::run(args).await,
            Command::Status(args) => status(args).await,
            Command::Disable(args) => disable(args).await,
        }
    }
}

async fn status(args: StatusArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let owned = owned_slots(&args.slots, &config);
    let last = record::read(&args.status_file.path(&config)).or_exit(Exit::Usage)?;
    let gx = gx::connect(&args.gx.options()?).await.or_exit(Exit::Gx)?;
    let name = gx.time_zone().await.or_exit(Exit::Gx)?;
    let all: Vec<SlotIndex> = SlotIndex::all().collect();
    let slots = gx.read_slots(&all).await.or_exit(Exit::Gx)?;
    let zone = config.time_zone.or_else(|| gx::parse_zone(&name).ok());
    let now = zone.map(|tz| Utc::now().with_timezone(&tz));
    let mut bms_failure = None;
    let mut batteries = Vec::new();
    if let (Some(addr), Some(now)) = (args.bms.as_ref().or(config.bms.as_ref()), now) {
        match bms::fetch(addr, args.fetch.options(&config)).await {
            Ok(s) => {
                batteries = s
                    .batteries
                    .into_iter()
                    .map(|b| {
                        let p = planner::predict(now, &b);
                        (b, p)
                    })
                    .collect();
            }
            Err(e) => bms_failure = Some(Failure::new(Exit::Fallback, e)),
        }
    }
    if args.json {
        let doc = json!({
            "zone": name,
            "now": now.map(|n| n.naive_local()),
            "owned": owned.iter().map(SlotIndex::get).collect::<Vec<_>>(),
            "slots": slots.iter().map(|(s, v)| json!({
                "slot": s.get(), "owned": owned.contains(*s),
                "values": record::Values::from(*v), "text": report::slot_values(v),
            })).collect::<Vec<_>>(),
            "batteries": batteries.iter().map(|(b, p)| BatteryRecord::new(b, *p, None)).collect::<Vec<_>>(),
            "bms_error": bms_failure.as_ref().map(|f| f.to_string()),
            "last_run": last,
            "stale": last.as_ref().is_none_or(|r| r.is_stale(Utc::now())),
        });
        println!("{doc:#}");
    } else {
        print!(
            "{}",
            report::status(&name, now, &slots, &owned, &batteries, last.as_ref())
        );
    }
    bms_failure.map_or(Ok(()), Err)
}

async fn disable(args: DisableArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let owned = owned_slots(&args.slots, &config);
    let options = args.gx.options()?;
    let _lock = lock::acquire(&args.lock.lock_file)?;
    let gx = gx::connect(&options).await.or_exit(Exit::Gx)?;
    let slots: Vec<SlotIndex> = owned.iter().collect();
    let (_, changes) = apply::disable(&gx, &slots).await.or_exit(Exit::Gx)?;
    log(&format!(
        "slots {owned} disabled ({} writes)",
        changes.total()
    ));
    Ok(())
}
