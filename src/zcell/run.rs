//! `zcell-sched run`: the imperative shell around the planner. Reads the GX
//! and the BMS, plans, applies or falls back, and records what happened.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::exit::{Exit, ExitContext, Failure, causes};
use crate::lock;
use crate::log;
use crate::zcell::apply::{self, Changes};
use crate::zcell::battery::Snapshot;
use crate::zcell::bms;
use crate::zcell::dess::{self, DessState, Mode, WindowIndex, WindowValues, Writer};
use crate::zcell::gx::dess::{self as gx_dess, WindowChanges};
use crate::zcell::gx::{self, Settings};
use crate::zcell::planner::{self, Plan};
use crate::zcell::policy::OwnedSlots;
use crate::zcell::record::{self, BatteryRecord, Outcome, RunRecord};
use crate::zcell::report;
use crate::zcell::settings::{RunMode, RunRequest, RunSettings};
use crate::zcell::slot::{Field, SlotIndex, SlotPlan, SlotValues};

/// A clock before this year has not been set (no NTP yet, dead RTC battery).
const MIN_PLAUSIBLE_YEAR: i32 = 2024;

/// What the run learnt on its way, for the record.
#[derive(Default)]
struct Progress {
    zone: Option<Tz>,
    now: Option<DateTime<Tz>>,
    batteries: Vec<BatteryRecord>,
    plan: Option<Plan>,
    before: BTreeMap<SlotIndex, SlotValues>,
    changes: Changes,
    /// The Dynamic ESS writer's owned windows, before and changed.
    windows_before: BTreeMap<WindowIndex, WindowValues>,
    window_changes: WindowChanges,
    /// A Dynamic ESS precondition failed: nothing was written, nothing to
    /// fall back from.
    refused: bool,
    /// The planning day was already applied: nothing to record.
    skipped: bool,
    /// Held until the record is written, so a later run's record is never
    /// overwritten by this one's.
    lock: Option<lock::RunLock>,
}

pub async fn run(request: RunRequest) -> Result<(), Failure> {
    let started = Utc::now();
    let RunRequest {
        mode,
        status_file,
        settings,
        homeassistant,
    } = request;
    let mut progress = Progress::default();
    let result = match settings {
        Ok(settings) => run_recorded(&mode, &status_file, &settings, &mut progress).await,
        Err(failure) => Err(failure),
    };
    let locked = matches!(&result, Err(f) if f.exit == Exit::Locked);
    if locked || progress.skipped {
        return result;
    }
    let previous = record::read(&status_file).ok().flatten();
    let record = progress.record(started, mode.dry_run, &result, previous.as_ref());
    if mode.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&record).expect("a record serialises")
        );
    }
    // A dry run leaves the record of the last real run, which `status` and
    // --skip-if-done go by: trying a change must not hide a fallback.
    if mode.dry_run {
        return result;
    }
    let written = record::write(&status_file, &record);
    // Published once written, as `status` will show it.
    if let Some(ha) = &homeassistant {
        crate::homeassistant::gx::publish(ha, &record).await;
    }
    match (written, result) {
        (Ok(()), result) => result,
        (Err(e), Ok(())) => {
            log(&format!("warning: cannot record the run: {}", causes(&e)));
            Ok(())
        }
        (Err(e), Err(mut failure)) => {
            failure
                .warnings
                .push(format!("cannot record the run: {}", causes(&e)));
            Err(failure)
        }
    }
}

async fn run_recorded(
    mode: &RunMode,
    status_file: &Path,
    settings: &RunSettings,
    progress: &mut Progress,
) -> Result<(), Failure> {
    if !mode.dry_run {
        progress.lock = Some(lock::acquire(&settings.lock_file)?);
    }
    let gx = gx::connect(&settings.gx).await.or_exit(Exit::Gx)?;
    match plan_and_apply(&gx, mode, status_file, settings, progress).await {
        Err(failure) if failure.exit != Exit::Usage && !progress.refused => Err(fall_back(
            &gx,
            &settings.policy.slots,
            settings.writer,
            mode.dry_run,
            failure,
            progress,
        )
        .await),
        other => other,
    }
}

/// The zone to plan in: `--tz` or the config's, else the GX's setting.
async fn zone(gx: &impl Settings, over: Option<Tz>) -> Result<Tz, Failure> {
    match over {
        Some(tz) => Ok(tz),
        None => {
            let name = gx.time_zone().await.or_exit(Exit::Gx)?;
            crate::tz::parse_zone(&name)
                .map_err(|e| e.context("the GX time zone setting"))
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

/// Whether `last` applied this planning day already.
fn already_applied(last: &RunRecord, day_start: NaiveDateTime, tz: Tz) -> bool {
    last.outcome == Outcome::Applied
        && !last.dry_run
        && last.zone.as_deref() == Some(tz.name())
        && last
            .planning_day
            .as_ref()
            .is_some_and(|d| d.start == day_start)
}

async fn plan_and_apply(
    gx: &impl Settings,
    mode: &RunMode,
    status_file: &Path,
    settings: &RunSettings,
    progress: &mut Progress,
) -> Result<(), Failure> {
    let policy = &settings.policy;
    let tz = zone(gx, settings.tz).await?;
    progress.zone = Some(tz);
    let now = now_in(tz, mode.now)?;
    progress.now = Some(now);
    if mode.skip_if_done {
        let day = planner::planning_day(now.naive_local(), policy);
        if let Ok(Some(last)) = record::read(status_file)
            && already_applied(&last, day.start, tz)
        {
            log(&format!(
                "planning day {day} was applied at {}; nothing to do",
                last.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
            progress.skipped = true;
            return Ok(());
        }
    }
    let dess = match settings.writer {
        Writer::Slots => None,
        Writer::Dess => Some(dess_ready(gx, settings.dess.set_local, progress).await?),
    };
    let snapshot = bms::fetch(&settings.bms, settings.fetch)
        .await
        .or_exit(Exit::Fallback)?;
    progress.batteries = unplanned_outlook(now, &snapshot);
    let plan = planner::plan(now, &snapshot, policy).or_exit(Exit::Fallback)?;
    progress.batteries = plan.outlook.iter().map(BatteryRecord::from).collect();
    let owned: Vec<SlotIndex> = policy.slots.iter().collect();
    let current = gx.read_slots(&owned).await.or_exit(Exit::Gx)?;
    progress.before = current.clone();
    progress.plan = Some(plan.clone());
    if let Some((state, set_mode)) = dess {
        return write_windows(
            gx, mode, settings, tz, now, &plan, &current, state, set_mode, progress,
        )
        .await;
    }
    can_allow_discharge(&plan, &current).or_exit(Exit::Gx)?;
    if mode.dry_run {
        let changes = apply::preview(&plan.slots, &current);
        if !mode.json {
            print!("{}", report::dry_run(&plan, now, &current, &changes.writes));
        }
        progress.changes = changes;
        return Ok(());
    }
    let changes = apply::apply(gx, &plan.slots, &current)
        .await
        .or_exit(Exit::Gx)?;
    log(&format!(
        "applied: {} day {}: {} writes",
        plan.kind,
        plan.day,
        changes.total()
    ));
    for (slot, p) in &plan.slots {
        log(&format!("slot {slot}: {}", report::slot_plan(p)));
    }
    progress.changes = changes;
    Ok(())
}

/// The Dynamic ESS state, if the windows would act (else exit 3, nothing
/// written), and the mode to switch to when `run` was told to.
async fn dess_ready(
    gx: &impl Settings,
    set_local: bool,
    progress: &mut Progress,
) -> Result<(DessState, Option<Mode>), Failure> {
    let checked = match gx_dess::read(gx).await {
        Ok(state) => dess::check(&state, set_local).map(|mode| (state, mode)),
        Err(e) => Err(e),
    };
    progress.refused = checked.is_err();
    checked
        .map_err(|e| e.context("--writer dess: nothing written"))
        .or_exit(Exit::Gx)
}

/// The Dynamic ESS writer: the owned slots off (so they cannot take over
/// when no window is active), then the windows, then the mode if asked.
/// Switching the mode takes Dynamic ESS over: the windows zcell-sched does
/// not own (VRM's, when it was Auto) go too, before the switch.
#[allow(clippy::too_many_arguments)]
async fn write_windows(
    gx: &impl Settings,
    mode: &RunMode,
    settings: &RunSettings,
    tz: Tz,
    now: DateTime<Tz>,
    plan: &Plan,
    current: &BTreeMap<SlotIndex, SlotValues>,
    state: DessState,
    set_mode: Option<Mode>,
    progress: &mut Progress,
) -> Result<(), Failure> {
    let windows = dess::plan_windows(plan, tz, state.feed_in, settings.dess.overlap)
        .or_exit(Exit::Fallback)?;
    let mut plans = windows.clone();
    let mut held = state.windows.clone();
    if set_mode.is_some() {
        plans.extend(dess::foreign_gone());
        held.extend(&state.foreign);
    }
    let slots_off: Vec<(SlotIndex, SlotPlan)> = plan
        .slots
        .iter()
        .map(|(s, _)| (*s, SlotPlan::Disabled))
        .collect();
    progress.windows_before = state.windows.clone();
    let warning = match set_mode {
        None => report::foreign_warning(&state.foreign, tz),
        Some(_) => None,
    };
    if mode.dry_run {
        if let Some(warning) = &warning {
            log(&format!("warning: {warning}"));
        }
        let changes = apply::preview(&slots_off, current);
        progress.window_changes = gx_dess::preview(&plans, &held, set_mode);
        if !mode.json {
            let shown = Plan {
                slots: slots_off,
                ..plan.clone()
            };
            print!("{}", report::dry_run(&shown, now, current, &changes.writes));
            print!(
                "{}",
                report::dess_dry_run(&state, &windows, &progress.window_changes, tz)
            );
        }
        progress.changes = changes;
        return Ok(());
    }
    progress.changes = apply::apply(gx, &slots_off, current)
        .await
        .or_exit(Exit::Gx)?;
    progress.window_changes = gx_dess::apply(gx, &plans, &held, set_mode)
        .await
        .or_exit(Exit::Gx)?;
    log(&format!(
        "applied as Dynamic ESS windows: {} day {}: {} writes",
        plan.kind,
        plan.day,
        progress.changes.total() + progress.window_changes.total()
    ));
    for (i, w) in &windows {
        if let dess::WindowPlan::Active(v) = w {
            log(&format!("window {i}: {}", report::window_values(v, tz)));
        }
    }
    let removed = progress.window_changes.foreign_removed();
    if removed > 0 {
        log(&report::foreign_removed(removed, state.mode, true));
    }
    if let Some(m) = set_mode {
        log(&format!("Dynamic ESS mode set to {m}"));
    }
    if let Some(warning) = &warning {
        log(&format!("warning: {warning}"));
    }
    Ok(())
}

/// A window with `+discharge` needs the slot's `AllowDischarge`, which
/// firmware before mid-2022 does not have.
fn can_allow_discharge(
    plan: &Plan,
    current: &BTreeMap<SlotIndex, SlotValues>,
) -> anyhow::Result<()> {
    for (slot, p) in &plan.slots {
        if let SlotPlan::Charge(charge) = p
            && charge.allow_discharge == Some(true)
            && current[slot].allow_discharge.is_none()
        {
            anyhow::bail!(
                "a maintenance window with +discharge needs {}, which this GX does not have \
                 (firmware from mid-2022 on has it): update the GX or drop +discharge",
                slot.leaf(Field::AllowDischarge)
            );
        }
    }
    Ok(())
}

/// Batteries before (or without) a plan: predictions, none of them judged.
fn unplanned_outlook(now: DateTime<Tz>, snapshot: &Snapshot) -> Vec<BatteryRecord> {
    snapshot
        .batteries
        .iter()
        .map(|b| BatteryRecord::new(b, planner::predict(now, b), None))
        .collect()
}

/// Disables the owned slots after `failure` (with the Dynamic ESS writer,
/// first removes the owned windows); the exit code says whether that
/// worked. A dry run says what a real run would do, reading (not writing)
/// the slots to know whether it could.
async fn fall_back(
    gx: &impl Settings,
    owned: &OwnedSlots,
    writer: Writer,
    dry_run: bool,
    failure: Failure,
    progress: &mut Progress,
) -> Failure {
    let slots: Vec<SlotIndex> = owned.iter().collect();
    if dry_run {
        let windows = match writer {
            Writer::Slots => "",
            Writer::Dess => "remove the owned Dynamic ESS windows and ",
        };
        return match gx.read_slots(&slots).await {
            Ok(_) => {
                let error = failure.error.context(format!(
                    "dry run: a real run would {windows}disable slots {owned} now"
                ));
                Failure { error, ..failure }
            }
            Err(e) => Failure::new(
                Exit::Gx,
                failed_too(
                    &failure.error,
                    &e,
                    &format!("dry run: a real run could not {windows}disable slots {owned} either"),
                ),
            ),
        };
    }
    if writer == Writer::Dess {
        match gx_dess::remove(gx).await {
            Ok((before, changes)) => {
                if progress.windows_before.is_empty() {
                    progress.windows_before = before;
                }
                progress.window_changes = changes;
            }
            Err(e) => {
                return Failure::new(
                    Exit::Gx,
                    failed_too(
                        &failure.error,
                        &e,
                        "the owned Dynamic ESS windows could not be removed either",
                    ),
                );
            }
        }
    }
    match apply::disable(gx, &slots).await {
        Ok((before, changes)) => {
            let windows = match writer {
                Writer::Slots => "",
                Writer::Dess => "Dynamic ESS windows removed, ",
            };
            let error = failure.error.context(format!(
                "fell back: {windows}slots {owned} disabled ({} writes)",
                changes.total() + progress.window_changes.total()
            ));
            if progress.before.is_empty() {
                progress.before = before;
            }
            progress.changes = changes;
            Failure { error, ..failure }
        }
        Err(e) => Failure::new(
            Exit::Gx,
            failed_too(
                &failure.error,
                &e,
                &format!("slots {owned} could not be disabled either"),
            ),
        ),
    }
}

/// `first`, then that `then` failed too, with its cause unless it is the
/// same one.
fn failed_too(first: &anyhow::Error, second: &anyhow::Error, then: &str) -> anyhow::Error {
    let (first, second) = (causes(first), causes(second));
    if first.contains(&second) {
        anyhow!("{first}; {then}, for the same reason")
    } else {
        anyhow!("{first}; {then}: {second}")
    }
}

impl Progress {
    fn record(
        &self,
        started: DateTime<Utc>,
        dry_run: bool,
        result: &Result<(), Failure>,
        previous: Option<&RunRecord>,
    ) -> RunRecord {
        let (outcome, exit, reason) = match result {
            Ok(()) if dry_run => (Outcome::Planned, Exit::Ok, None),
            Ok(()) => (Outcome::Applied, Exit::Ok, None),
            Err(f) if f.exit == Exit::Fallback => (Outcome::Fallback, f.exit, Some(f.to_string())),
            Err(f) => (Outcome::Error, f.exit, Some(f.to_string())),
        };
        RunRecord {
            time: started,
            zone: self.zone.map(|z| z.name().to_string()),
            local_time: self.now.map(|n| n.naive_local()),
            dry_run,
            outcome,
            exit_code: exit as u8,
            reason,
            planning_day: self.plan.as_ref().map(RunRecord::day),
            batteries: self.batteries.clone(),
            slots: RunRecord::slots(&self.before, &self.changes.after, &self.changes.writes),
            windows: RunRecord::windows(
                &self.windows_before,
                &self.window_changes.after,
                &self.window_changes.writes,
            ),
            foreign_windows_removed: self.window_changes.foreign_removed(),
            writes: if dry_run {
                0
            } else {
                self.changes.total() + self.window_changes.total()
            },
            last_real_run: if dry_run {
                previous.and_then(|p| p.last_real_run)
            } else {
                Some(started)
            },
        }
    }
}
