//! The `zendure` commands: their options, and the handlers of `run`,
//! `status`, `schedule` and `once` and `plan-prices`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde_json::json;
use tokio::sync::watch;

use crate::exit::{Exit, ExitContext, Failure};
use crate::lock;
use crate::shutdown;
use crate::zendure::config::ScheduleSource;
use crate::zendure::config::{self, ZendureConfig};
use crate::zendure::controller::{self, Parts};
use crate::zendure::core::controller::{Core, Event, Settings, reason_text};
use crate::zendure::core::law::Moment;
use crate::zendure::core::prices::tariff::PlanDay;
use crate::zendure::core::prices::view as plan_view;
use crate::zendure::core::reading::CutOff;
use crate::zendure::core::report::LogReporter;
use crate::zendure::core::schedule::{self, FetchError, Schedule};
use crate::zendure::core::view;
use crate::zendure::io::device::{Device, HttpDevice};
use crate::zendure::io::http::Http;
use crate::zendure::io::meter::{AnyMeter, Meter};
use crate::zendure::io::poster::{HttpReporter, PosterConfig, PosterHandle, Reporting};
use crate::zendure::io::prices;
use crate::zendure::io::schedule_file::ScheduleFile;
use crate::zendure::io::source;
use crate::zendure::io::status;

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

fn parse_plan_day(s: &str) -> Result<PlanDay, String> {
    PlanDay::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct ZendureConfigArgs {
    /// JSON config file with a `zendure` object
    /// [default: /etc/zcell-sched/config.json].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub async fn execute(command: ZendureCommand) -> ExitCode {
    let result = match command {
        ZendureCommand::Run {
            config,
            if_not_running,
        } => run(config.config.as_deref(), if_not_running).await,
        ZendureCommand::Status { config, json } => {
            show_status(config.config.as_deref(), json).await
        }
        ZendureCommand::Schedule { config, date, json } => {
            show_schedule(config.config.as_deref(), date, json).await
        }
        ZendureCommand::Once { config, dry_run } => once(config.config.as_deref(), dry_run).await,
        ZendureCommand::PlanPrices(args) => plan_prices(&args).await,
    };
    match result {
        Ok(()) => Exit::Ok.into(),
        Err(failure) => {
            crate::log(&format!("error: {failure}"));
            failure.exit.into()
        }
    }
}

/// `zendure plan-prices`: plans the day, shows it, and (unless a dry run)
/// writes it into the schedule file.
async fn plan_prices(args: &PlanPricesArgs) -> Result<(), Failure> {
    let config = load(args.config.config.as_deref())?;
    if config.prices.is_none() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("zendure.prices: missing (the price source and the battery's capacity)"),
        ));
    }
    let file = match &config.schedule {
        ScheduleSource::File(path) => ScheduleFile::new(path),
        ScheduleSource::Url(url) => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow!(
                    "zendure.schedule: {url} is a URL; plan-prices writes a schedule file \
                     (on the server, use its POST /api/schedule/plan)"
                ),
            ));
        }
    };
    let current = file.load().or_exit(Exit::Fallback)?.unwrap_or_default();
    let owned = file.plan_entries().or_exit(Exit::Fallback)?;
    let cache = prices::PriceCache::default();
    let proposal = prices::propose(
        &config,
        args.date,
        args.soc,
        &current,
        &owned,
        Utc::now(),
        &cache,
    )
    .await
    .or_exit(Exit::Fallback)?;
    let tz = config.time_zone;
    if args.json {
        let mut doc = proposal.to_json(tz);
        doc["written"] = json!(!args.dry_run);
        println!("{doc:#}");
    } else {
        print!("{}", plan_view::show(&proposal, tz));
    }
    if args.dry_run {
        return Ok(());
    }
    file.write_plan(&owned, &proposal).or_exit(Exit::Fallback)?;
    if !args.json {
        println!(
            "written: {} ({} plan entries replaced by {}, {} of days that are over removed; owner entries kept)",
            file.path().display(),
            proposal.replaced,
            proposal.entries.len(),
            proposal.pruned
        );
    }
    Ok(())
}

fn load(path: Option<&Path>) -> Result<ZendureConfig, Failure> {
    config::load(path).or_exit(Exit::Usage)
}

struct Adapters {
    http: Http,
    device: HttpDevice,
    meter: AnyMeter,
}

/// The device and meter, `"auto"` ones found over mDNS first.
async fn adapters(config: &ZendureConfig) -> Result<Adapters, Failure> {
    #[cfg(feature = "discover")]
    let addresses = crate::zendure::io::auto::resolve(config)
        .await
        .or_exit(Exit::Gx)?;
    #[cfg(not(feature = "discover"))]
    let addresses = crate::zendure::config::Addresses::fixed(config);
    let http = Http::new(config.timings.http_timeout).or_exit(Exit::Usage)?;
    let device = HttpDevice::new(http.clone(), &addresses.device.with_port(80));
    let meter = AnyMeter::new(&config.meter, &addresses.meter, &http).or_exit(Exit::Usage)?;
    Ok(Adapters {
        http,
        device,
        meter,
    })
}

/// Takes the lock, creating its folder (under /run it is gone after a
/// reboot).
fn take_lock(path: &Path) -> Result<lock::RunLock, Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .or_exit(Exit::Usage)?;
    }
    lock::acquire(path)
}

async fn run(path: Option<&Path>, if_not_running: bool) -> Result<(), Failure> {
    let (config, doc) = config::load_with_document(path).or_exit(Exit::Usage)?;
    // Before the lock: a bad token or certificate file is a config error,
    // and nothing is created for it.
    let Adapters {
        http,
        device,
        meter,
    } = adapters(&config).await?;
    let posting = PosterConfig::from_config(&config).or_exit(Exit::Usage)?;
    let ha = crate::homeassistant::config::from_section(doc.get("homeassistant"))
        .with_context(|| {
            let path = path.unwrap_or(Path::new(config::DEFAULT_PATH));
            format!("config file {}", path.display())
        })
        .or_exit(Exit::Usage)?;
    #[cfg(feature = "mqtt")]
    if let Some(ha) = &ha {
        crate::homeassistant::session::check(ha).or_exit(Exit::Usage)?;
    }
    #[cfg(not(feature = "mqtt"))]
    if ha.is_some() {
        return Err(anyhow!(
            "homeassistant: this build has no MQTT (the `mqtt` feature)"
        ))
        .or_exit(Exit::Usage);
    }
    let _lock = match take_lock(&config.lock_file) {
        Err(f) if f.exit == Exit::Locked && if_not_running => return Ok(()),
        other => other?,
    };
    init_tracing();
    let signalled = shutdown::install()?;
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        let name = signalled.await.name();
        tracing::info!("{name} received");
        let _ = stop.send(true);
    });
    #[cfg(feature = "discover")]
    let (device, meter) = {
        use crate::zendure::io::auto::{AutoDevice, AutoMeter};
        let meter = AutoMeter::new(&config, http.clone(), meter);
        (AutoDevice::new(&config, http.clone(), device), meter)
    };
    let settings = Settings::new(&config, meter.describe(), device.describe());
    let (reporter, poster) = match posting {
        Some(poster) => {
            let (reporter, handle) = HttpReporter::start(poster).or_exit(Exit::Usage)?;
            (Reporting::Http(reporter), Some(handle))
        }
        None => (Reporting::Log(LogReporter), None),
    };
    let (override_tx, overrides) = tokio::sync::mpsc::channel(4);
    let ha = ha.map(|ha| HomeAssistant::start(ha, &config, override_tx));
    let parts = Parts {
        device,
        meter,
        reporter,
        http,
        source: config.schedule.clone(),
        schedule_refresh: config.timings.schedule_refresh,
        saved_schedule: config.saved_schedule(),
        status_file: config.status_file.clone(),
        report_stats: poster.as_ref().map(PosterHandle::watch),
        override_file: config.state_dir.join("zendure-override.json"),
        overrides,
        statuses: ha.as_ref().map(|ha| ha.statuses.clone()),
        prices: config.prices.is_some().then(|| config.clone()),
    };
    let outcome = controller::run(settings, parts, shutdown).await;
    if let Some(ha) = ha {
        ha.finish().await;
    }
    // The controller has dropped its reporter: deliver or keep what waits.
    if let Some(poster) = poster {
        let stats = poster.finish().await;
        if stats.queued > 0 || stats.dropped > 0 {
            tracing::warn!(
                "reports: {} queued for the next run, {} dropped while the server was down",
                stats.queued,
                stats.dropped
            );
        }
    }
    outcome.or_exit(Exit::Fallback)?;
    tracing::info!("stopped");
    Ok(())
}

/// The controller in Home Assistant: set up only when configured.
struct HomeAssistant {
    statuses: watch::Sender<Option<Box<crate::zendure::core::status::StatusDoc>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl HomeAssistant {
    #[cfg(feature = "mqtt")]
    fn start(
        ha: crate::homeassistant::config::HaConfig,
        config: &ZendureConfig,
        overrides: tokio::sync::mpsc::Sender<crate::zendure::core::manual::OverrideRequest>,
    ) -> HomeAssistant {
        let (statuses, watching) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(crate::homeassistant::zendure::run(
            ha,
            config.limits,
            watching,
            overrides,
            stopped,
        ));
        HomeAssistant {
            statuses,
            stop,
            task,
        }
    }

    #[cfg(not(feature = "mqtt"))]
    fn start(
        _: crate::homeassistant::config::HaConfig,
        _: &ZendureConfig,
        _: tokio::sync::mpsc::Sender<crate::zendure::core::manual::OverrideRequest>,
    ) -> HomeAssistant {
        unreachable!("refused before the lock")
    }

    /// After the controller's last status: `offline`, and disconnect.
    async fn finish(self) {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(Err(e)) => tracing::warn!("homeassistant: {e:#}"),
            Err(e) => tracing::warn!("homeassistant: {e}"),
            Ok(Ok(())) => {}
        }
    }
}

fn init_tracing() {
    use std::io::IsTerminal;
    // Escape codes only for a person at a terminal: a log file or journal
    // would keep them as noise.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

/// The schedule from its source, else the last good copy.
async fn current_schedule(
    config: &ZendureConfig,
    http: &Http,
) -> (Option<Schedule>, &'static str, Option<String>) {
    match source::fetch(&config.schedule, http).await {
        Ok(s) => (Some(s), "fresh", None),
        Err(e) => match source::load_saved(&config.saved_schedule()) {
            Ok(Some(saved)) => (Some(saved), "last_good", Some(e.to_string())),
            _ => (None, "none", Some(e.to_string())),
        },
    }
}

async fn show_status(path: Option<&Path>, as_json: bool) -> Result<(), Failure> {
    let config = load(path)?;
    let Adapters {
        http,
        device,
        mut meter,
    } = adapters(&config).await?;
    let doc = status::read(&config.status_file).or_exit(Exit::Usage)?;
    let now = Utc::now();
    let (report, reading) = tokio::join!(device.report(), meter.read());
    let (schedule, state, error) = current_schedule(&config, &http).await;
    let empty = Schedule::default();
    let in_force =
        schedule::value_at_instant(schedule.as_ref().unwrap_or(&empty), &config.time_zone, now);
    let next = schedule::next_change(
        schedule.as_ref().unwrap_or(&empty),
        schedule::local(&config.time_zone, now),
    );
    let alive = doc.as_ref().is_some_and(|d| status::alive(d, now));
    let live_device = match &report {
        Ok(r) => json!({
            "sn": r.sn, "soc_pct": r.soc_pct, "ac_w": r.ac_w, "battery_w": r.battery_w,
            "cut_off": r.cut_off.map(CutOff::text), "properties": r.payload.properties(),
            "packs": r.packs,
        }),
        Err(e) => json!({"error": format!("{e:#}")}),
    };
    let live_meter = match &reading {
        Ok(r) => json!({"grid_w": r.grid_w}),
        Err(e) => json!({"error": format!("{e:#}")}),
    };
    if as_json {
        let out = json!({
            "controller": {"alive": alive, "status_file": config.status_file, "status": doc},
            "device": live_device,
            "meter": live_meter,
            "schedule": {
                "source": config.schedule.to_string(), "state": state, "error": error,
                "value": in_force.value.to_json(), "key": in_force.key.map(|k| k.to_string()),
                "since": in_force.since,
                "next_change": next.map(|c| json!({"at": c.at, "value": c.value.to_json()})),
            },
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("JSON values serialise")
        );
        return Ok(());
    }
    match &report {
        Ok(r) => {
            println!(
                "device        {} sn {}: SoC {} %, AC {} W, battery {} W{}",
                device.describe(),
                r.sn.as_deref().unwrap_or("?"),
                r.soc_pct,
                r.ac_w,
                r.battery_w,
                r.cut_off
                    .map_or(String::new(), |c| format!(" ({})", c.text()))
            );
        }
        Err(e) => println!("device        {}: {e:#}", device.describe()),
    }
    match &reading {
        Ok(r) => println!("meter         {}: {} W", meter.describe(), r.grid_w),
        Err(e) => println!("meter         {}: {e:#}", meter.describe()),
    }
    println!(
        "schedule      {} ({state}){}: {} now{}",
        config.schedule,
        error.map_or(String::new(), |e| format!(", {e}")),
        in_force.value,
        next.map_or(String::new(), |c| format!(
            ", {} at {}",
            c.value,
            c.at.format("%Y-%m-%d %H:%M")
        ))
    );
    match doc {
        Some(doc) => {
            let age = (now - doc.updated).num_milliseconds() as f64 / 1000.0;
            println!(
                "--- the controller's view ({})",
                config.status_file.display()
            );
            print!("{}", view::status(&doc, alive, age));
        }
        None => println!(
            "controller    not running (no status file {})",
            config.status_file.display()
        ),
    }
    Ok(())
}

async fn show_schedule(
    path: Option<&Path>,
    date: Option<chrono::NaiveDate>,
    as_json: bool,
) -> Result<(), Failure> {
    let config = load(path)?;
    let http = Http::new(config.timings.http_timeout).or_exit(Exit::Usage)?;
    let date = date.unwrap_or_else(|| schedule::local(&config.time_zone, Utc::now()).date());
    let schedule = match source::fetch(&config.schedule, &http).await {
        Ok(s) => s,
        Err(FetchError::Invalid(e)) => {
            return Err(Failure::new(
                Exit::Usage,
                e.context("the schedule is invalid"),
            ));
        }
        Err(e @ FetchError::Unreachable(_)) => {
            return Err(Failure::new(Exit::Fallback, anyhow::anyhow!("{e}")));
        }
    };
    if as_json {
        let resolved: Vec<_> = schedule::resolve_day(&schedule, date)
            .into_iter()
            .map(|r| {
                json!({"time": r.time.format("%H%M").to_string(), "value": r.value.to_json(),
                       "key": r.key.map(|k| k.to_string()),
                       "applied_w": view::clamp(r.value, config.limits)})
            })
            .collect();
        let changes: Vec<_> = schedule::day_changes(&schedule, date)
            .into_iter()
            .map(|r| {
                json!({"time": r.time.format("%H:%M").to_string(), "value": r.value.to_json(),
                       "key": r.key.map(|k| k.to_string()),
                       "applied_w": view::clamp(r.value, config.limits)})
            })
            .collect();
        let out = json!({"date": date, "source": config.schedule.to_string(),
                         "entries": schedule.to_json(), "changes": changes, "resolved": resolved});
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("JSON values serialise")
        );
    } else {
        print!("{}", view::day(&schedule, date, config.limits));
    }
    Ok(())
}

/// One control step: the controller's core fed one cycle (the schedule,
/// one reading of the meter and of the device, a tick); its decision is
/// printed and, unless a dry run, written.
async fn once(path: Option<&Path>, dry_run: bool) -> Result<(), Failure> {
    let config = load(path)?;
    // A running controller owns the device; one step beside it would
    // fight it.
    let _lock = if dry_run {
        None
    } else {
        Some(take_lock(&config.lock_file)?)
    };
    let Adapters {
        http,
        device,
        mut meter,
    } = adapters(&config).await?;
    let (reading, metered) = tokio::join!(device.report(), meter.read());
    let (schedule, state, error) = current_schedule(&config, &http).await;
    let reading = reading
        .with_context(|| device.describe())
        .or_exit(Exit::Gx)?;
    let now = Utc::now();
    let in_force = schedule::value_at_instant(
        schedule.as_ref().unwrap_or(&Schedule::default()),
        &config.time_zone,
        now,
    );
    println!(
        "schedule  {} ({state}{}): {}{}",
        config.schedule,
        error.map_or(String::new(), |e| format!(": {e}")),
        in_force.value,
        in_force
            .key
            .map_or(String::new(), |k| format!(" (key {k})"))
    );
    println!(
        "device    {}: SoC {} %, AC {} W, acMode {:?}, inputLimit {}, outputLimit {}",
        device.describe(),
        reading.soc_pct,
        reading.ac_w,
        reading.mode(),
        json!(reading.input_limit_w),
        json!(reading.output_limit_w),
    );
    match &metered {
        Ok(r) => println!("meter     {}: {} W", meter.describe(), r.grid_w),
        Err(e) => println!("meter     {}: {e:#}", meter.describe()),
    }
    // One step has one reading of each: the device is taken as steady
    // since the meter's moment, which is what the law then assumes, with
    // the configured lag (else none).
    let mut settings = Settings::new(&config, meter.describe(), device.describe());
    settings.meter_lag = Some(config.timings.meter_lag.unwrap_or(Duration::ZERO));
    let mut core = Core::new(settings);
    let at = Moment(config.timings.meter_timeout);
    let state_now = reading.state(at);
    if let Some(schedule) = schedule {
        core.step(Event::Saved(schedule));
    }
    core.step(Event::Device {
        at: Moment::default(),
        wall: now,
        result: Ok(reading.clone()),
    });
    core.step(Event::Device {
        at,
        wall: now,
        result: Ok(reading.clone()),
    });
    core.step(Event::Meter {
        at,
        wall: now,
        result: metered.map(|r| r.grid_w).map_err(|e| format!("{e:#}")),
    });
    core.step(Event::Tick { at, wall: now });
    let decision = core.decision().expect("a tick decides");
    println!(
        "decision  {} ({})",
        decision.target,
        reason_text(decision.reason)
    );
    let Some(command) = decision
        .command()
        .filter(|c| !state_now.carries_out(*c, config.step_w))
    else {
        println!("write     nothing (the device already does this)");
        return Ok(());
    };
    if dry_run {
        println!("write     {command} (dry run: not written)");
        return Ok(());
    }
    let sn = config
        .sn
        .clone()
        .or(reading.sn.clone())
        .context("the device reports no serial number; set zendure.sn")
        .or_exit(Exit::Usage)?;
    device.write(&sn, command).await.or_exit(Exit::Gx)?;
    println!("write     {command}: written");
    Ok(())
}
