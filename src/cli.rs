//! The command line and the imperative shell around the planner: read the
//! GX and the BMS, plan, apply or fall back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Datelike, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};

use crate::apply;
use crate::bms::{self, BmsAddress, FetchOptions};
use crate::exit::{Exit, ExitContext, Failure};
use crate::gx::{self, DbusSettings, Settings};
use crate::lock;
use crate::log;
use crate::planner::{self, Plan};
use crate::policy::{MaintenanceWindow, OwnedSlots, Peak, Policy, parse_clock, parse_soc};
use crate::report;
use crate::slot::{SlotIndex, Soc, writes_for};

/// A clock before this year has not been set (no NTP yet, dead RTC battery).
const MIN_PLAUSIBLE_YEAR: i32 = 2024;

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
    /// Show all five charge slots, the GX time zone and, with --bms, the batteries.
    Status(StatusArgs),
    /// Disable the owned charge slots (keeping their days), e.g. before uninstalling.
    Disable(DisableArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The ZCell BMS: HOST, HOST:PORT or http://HOST:PORT (port 3000 by default).
    #[arg(long, value_name = "ADDR")]
    bms: BmsAddress,
    /// Plan and print what would be written; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Time zone to plan in, overriding the GX's /Settings/System/TimeZone.
    #[arg(long, value_name = "ZONE", value_parser = gx::parse_zone)]
    tz: Option<Tz>,
    /// Plan as if it were this local time (previews and tests).
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM", value_parser = parse_now)]
    now: Option<NaiveDateTime>,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    lock: LockArgs,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Also read the ZCell BMS and show each battery's SoC and next maintenance.
    #[arg(long, value_name = "ADDR")]
    bms: Option<BmsAddress>,
    /// The slots zcell-sched owns, to mark them.
    #[arg(long, value_name = "N,N", default_value = "3,4")]
    slots: OwnedSlots,
    #[command(flatten)]
    fetch: FetchArgs,
}

#[derive(Debug, Args)]
struct DisableArgs {
    /// The slots zcell-sched owns.
    #[arg(long, value_name = "N,N", default_value = "3,4")]
    slots: OwnedSlots,
    #[command(flatten)]
    lock: LockArgs,
}

#[derive(Debug, Args)]
struct PolicyArgs {
    /// The charge slots zcell-sched owns (0-4; the GX GUI shows them as 1-5).
    /// It never writes any other slot.
    #[arg(long, value_name = "N,N", default_value = "3,4")]
    slots: OwnedSlots,
    /// Local time the planning day starts (and cron runs).
    #[arg(long, value_name = "HH:MM", default_value = "07:00", value_parser = parse_clock)]
    day_start: NaiveTime,
    /// A peak-tariff window, DAYS@HH:MM-HH:MM; DAYS is daily, weekdays,
    /// weekends or a list like mon,wed,fri. Repeat for several.
    #[arg(
        long = "peak",
        value_name = "DAYS@HH:MM-HH:MM",
        default_values = ["weekdays@07:00-10:00", "weekdays@16:00-21:00"],
        conflicts_with = "no_peaks"
    )]
    peaks: Vec<Peak>,
    /// No peak-tariff windows at all.
    #[arg(long)]
    no_peaks: bool,
    /// SoC to hold outside the peaks on normal days.
    #[arg(long, value_name = "PERCENT", default_value = "100", value_parser = parse_soc)]
    reserve_soc: Soc,
    /// A charge window on maintenance days, HH:MM-HH:MM@SOC. Repeat for several.
    #[arg(
        long = "maintenance-window",
        value_name = "HH:MM-HH:MM@SOC",
        default_values = ["13:00-16:00@50", "03:00-07:00@100"]
    )]
    maintenance_windows: Vec<MaintenanceWindow>,
}

impl PolicyArgs {
    fn policy(&self) -> anyhow::Result<Policy> {
        Policy {
            slots: self.slots.clone(),
            day_start: self.day_start,
            peaks: if self.no_peaks {
                Vec::new()
            } else {
                self.peaks.clone()
            },
            reserve_soc: self.reserve_soc,
            maintenance_windows: self.maintenance_windows.clone(),
        }
        .validate()
    }
}

#[derive(Debug, Args)]
struct FetchArgs {
    /// Seconds one BMS request may take, connect to last byte.
    #[arg(long, value_name = "SECONDS", default_value = "10",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    bms_timeout: u64,
    /// BMS attempts after the first, 1 s, 2 s, 4 s ... apart.
    #[arg(long, value_name = "N", default_value = "2",
          value_parser = clap::value_parser!(u32).range(0..=10))]
    bms_retries: u32,
}

impl FetchArgs {
    fn options(&self) -> FetchOptions {
        FetchOptions {
            timeout: Duration::from_secs(self.bms_timeout),
            retries: self.bms_retries,
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

fn parse_now(s: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .with_context(|| format!("`{s}` is not a local time (use YYYY-MM-DDTHH:MM)"))
}

impl Cli {
    pub async fn execute(self) -> Result<(), Failure> {
        match self.command {
            Command::Run(args) => run(args).await,
            Command::Status(args) => status(args).await,
            Command::Disable(args) => disable(args).await,
        }
    }
}

/// The zone to plan in: `--tz`, else the GX's setting.
async fn zone(gx: &impl Settings, over: Option<Tz>) -> Result<Tz, Failure> {
    match over {
        Some(tz) => Ok(tz),
        None => {
            let name = gx.time_zone().await.or_exit(Exit::Gx)?;
            gx::parse_zone(&name)
                .context("the GX time zone setting")
                .or_exit(Exit::Fallback)
        }
    }
}

/// Now in `tz`: `--now` as local wall-clock time, else the system clock.
fn now_in(tz: Tz, over: Option<NaiveDateTime>) -> Result<DateTime<Tz>, Failure> {
    let now = match over {
        Some(local) => local
            .and_local_timezone(tz)
            .earliest()
            .ok_or_else(|| anyhow!("--now {local} does not exist in {tz} (a DST gap)"))
            .or_exit(Exit::Usage)?,
        None => Utc::now().with_timezone(&tz),
    };
    if now.year() < MIN_PLAUSIBLE_YEAR {
        return Err(Failure::new(
            Exit::Fallback,
            anyhow!("the clock says {now}: not set, refusing to plan"),
        ));
    }
    Ok(now)
}

async fn plan_today(
    gx: &impl Settings,
    args: &RunArgs,
    policy: &Policy,
) -> Result<(DateTime<Tz>, Plan), Failure> {
    let tz = zone(gx, args.tz).await?;
    let now = now_in(tz, args.now)?;
    let snapshot = bms::fetch(&args.bms, args.fetch.options())
        .await
        .or_exit(Exit::Fallback)?;
    let plan = planner::plan(now, &snapshot, policy).or_exit(Exit::Fallback)?;
    Ok((now, plan))
}

async fn run(args: RunArgs) -> Result<(), Failure> {
    let policy = args.policy.policy().or_exit(Exit::Usage)?;
    let _lock = match args.dry_run {
        true => None,
        false => Some(lock::acquire(&args.lock.lock_file)?),
    };
    let gx = DbusSettings::connect().await.or_exit(Exit::Gx)?;
    let owned: Vec<SlotIndex> = policy.slots.iter().collect();
    let outcome: Result<(), Failure> = async {
        let (now, plan) = plan_today(&gx, &args, &policy).await?;
        let current = gx.read_slots(&owned).await.or_exit(Exit::Gx)?;
        if args.dry_run {
            let writes: BTreeMap<SlotIndex, usize> = plan
                .slots
                .iter()
                .map(|(slot, p)| (*slot, writes_for(*slot, &current[slot], p).len()))
                .collect();
            print!("{}", report::dry_run(&plan, now, &current, &writes));
            return Ok(());
        }
        let count = apply::apply(&gx, &plan.slots, &current)
            .await
            .or_exit(Exit::Gx)?;
        log(&format!(
            "applied: {} day {}: {count} writes",
            plan.kind, plan.day
        ));
        for (slot, p) in &plan.slots {
            log(&format!("slot {slot}: {}", report::slot_plan(p)));
        }
        Ok(())
    }
    .await;
    match outcome {
        Err(failure) if failure.exit != Exit::Usage => {
            Err(fall_back(&gx, &policy.slots, args.dry_run, failure).await)
        }
        other => other,
    }
}

/// Disables the owned slots after `failure`; the exit code says whether that worked.
async fn fall_back(
    gx: &impl Settings,
    owned: &OwnedSlots,
    dry_run: bool,
    failure: Failure,
) -> Failure {
    let slots: Vec<SlotIndex> = owned.iter().collect();
    if dry_run {
        let error = failure.error.context(format!(
            "dry run: a real run would disable slots {owned} now"
        ));
        return Failure { error, ..failure };
    }
    match apply::disable(gx, &slots).await {
        Ok(count) => {
            let error = failure.error.context(format!(
                "fell back: slots {owned} disabled ({count} writes)"
            ));
            Failure { error, ..failure }
        }
        Err(e) => Failure::new(
            Exit::Gx,
            failure
                .error
                .context(format!("and disabling slots {owned} failed too: {e:#}")),
        ),
    }
}

async fn status(args: StatusArgs) -> Result<(), Failure> {
    let gx = DbusSettings::connect().await.or_exit(Exit::Gx)?;
    let name = gx.time_zone().await.or_exit(Exit::Gx)?;
    let all: Vec<SlotIndex> = SlotIndex::all().collect();
    let slots = gx.read_slots(&all).await.or_exit(Exit::Gx)?;
    let now = gx::parse_zone(&name)
        .ok()
        .map(|tz| Utc::now().with_timezone(&tz));
    let batteries = match (&args.bms, now) {
        (Some(addr), Some(now)) => {
            let snapshot = bms::fetch(addr, args.fetch.options())
                .await
                .or_exit(Exit::Fallback);
            match snapshot {
                Ok(s) => s
                    .batteries
                    .into_iter()
                    .map(|b| {
                        let p = planner::predict(now, &b);
                        (b, p)
                    })
                    .collect(),
                Err(f) => {
                    print!(
                        "{}",
                        report::status(&name, Some(now), &slots, &args.slots, &[])
                    );
                    return Err(f);
                }
            }
        }
        _ => Vec::new(),
    };
    print!(
        "{}",
        report::status(&name, now, &slots, &args.slots, &batteries)
    );
    Ok(())
}

async fn disable(args: DisableArgs) -> Result<(), Failure> {
    let _lock = lock::acquire(&args.lock.lock_file)?;
    let gx = DbusSettings::connect().await.or_exit(Exit::Gx)?;
    let owned: Vec<SlotIndex> = args.slots.iter().collect();
    let count = apply::disable(&gx, &owned).await.or_exit(Exit::Gx)?;
    log(&format!("slots {} disabled ({count} writes)", args.slots));
    Ok(())
}
