//! What each ZCell/GX command will do, resolved once: the command line over
//! the config file over the defaults. Handlers take these values and never
//! look at the options again.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::{NaiveDateTime, TimeDelta};
use chrono_tz::Tz;

use crate::cli::{
    ConfigArgs, DisableArgs, FetchArgs, GxArgs, RunArgs, StatusArgs, StatusFileArgs, WriterArgs,
};
use crate::exit::{Exit, ExitContext, Failure};
use crate::zcell::bms::{BmsAddress, FetchOptions};
use crate::zcell::config::{self, Config, Overrides, RulesFile};
use crate::zcell::dess::{DEFAULT_OVERLAP, DessOptions, Writer};
use crate::zcell::gx::{GxOptions, GxTarget};
use crate::zcell::planner;
use crate::zcell::policy::{self, OwnedSlots, Policy};
use crate::zcell::record;

/// `run`: how it was asked to run, where to record it, and what it needs.
/// The record's path is known even when the rest could not be resolved, so
/// a broken config still leaves a record saying why.
pub struct RunRequest {
    pub mode: RunMode,
    pub status_file: PathBuf,
    pub settings: Result<RunSettings, Failure>,
}

/// How `run` was asked to run.
pub struct RunMode {
    pub dry_run: bool,
    pub json: bool,
    pub skip_if_done: bool,
    pub now: Option<NaiveDateTime>,
}

/// Everything `run` needs to plan and write.
pub struct RunSettings {
    pub policy: Policy,
    pub bms: BmsAddress,
    pub fetch: FetchOptions,
    pub tz: Option<Tz>,
    pub lock_file: PathBuf,
    pub gx: GxOptions,
    pub writer: Writer,
    pub dess: DessOptions,
}

pub struct StatusSettings {
    pub owned: OwnedSlots,
    pub bms: Option<BmsAddress>,
    pub fetch: FetchOptions,
    pub tz: Option<Tz>,
    pub now: Option<NaiveDateTime>,
    pub status_file: PathBuf,
    pub json: bool,
    pub gx: GxOptions,
    pub writer: Writer,
}

pub struct DisableSettings {
    pub owned: OwnedSlots,
    pub lock_file: PathBuf,
    pub gx: GxOptions,
    pub writer: Writer,
}

impl RunRequest {
    pub fn resolve(args: &RunArgs) -> RunRequest {
        let config = load(&args.config);
        // A broken config file still leaves the command line's (or the default) path.
        let status_file = status_file(
            &args.status_file,
            config.as_ref().unwrap_or(&Config::default()),
        );
        RunRequest {
            mode: RunMode {
                dry_run: args.dry_run,
                json: args.json,
                skip_if_done: args.skip_if_done,
                now: args.now,
            },
            status_file,
            settings: config.and_then(|config| run_settings(args, &config)),
        }
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

impl StatusSettings {
    pub fn resolve(args: &StatusArgs) -> Result<StatusSettings, Failure> {
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
}

impl DisableSettings {
    pub fn resolve(args: &DisableArgs) -> Result<DisableSettings, Failure> {
        let config = load(&args.config)?;
        Ok(DisableSettings {
            owned: owned_slots(&args.slots, &config),
            lock_file: args.lock.lock_file.clone(),
            gx: gx_options(&args.gx)?,
            writer: writer(&args.writer, &config),
        })
    }
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
