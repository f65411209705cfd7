//! What a person reads: the dry-run report, `status`, and the one-line
//! summaries the log uses. Pure text rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::zcell::battery::Battery;
use crate::zcell::dess::{
    self, DessState, Mode, OWNED_COUNT, Strategy, WindowIndex, WindowPlan, WindowValues,
};
use crate::zcell::gx::dess::WindowChanges;
use crate::zcell::planner::{DayKind, Plan, Prediction};
use crate::zcell::policy::OwnedSlots;
use crate::zcell::record::{Outcome, RunRecord};
use crate::zcell::slot::{Day, SlotIndex, SlotPlan, SlotValues};

const DAY_SECONDS: i32 = 86_400;

fn clock(seconds: i32) -> String {
    let s = seconds.rem_euclid(DAY_SECONDS);
    format!("{:02}:{:02}", s / 3600, s % 3600 / 60)
}

fn length(seconds: i32) -> String {
    format!("{}h{:02}", seconds / 3600, seconds % 3600 / 60)
}

/// `on  Mon 10:00-16:00 (6h00) to 100%`, as the GX would apply it.
pub fn slot_values(v: &SlotValues) -> String {
    let (state, days) = match Day::from_raw(v.day) {
        Some(Day::Enabled(rule)) => ("on ", rule.to_string()),
        Some(Day::Disabled(rule)) => ("off", rule.to_string()),
        None => ("?  ", format!("day {}", v.day)),
    };
    let discharge = if v.allow_discharge == Some(1) {
        " +discharge"
    } else {
        ""
    };
    format!(
        "{state} {days} {}-{} ({}) to {}%{discharge}",
        clock(v.start),
        clock(v.start.saturating_add(v.duration)),
        length(v.duration),
        v.soc
    )
}

pub fn slot_plan(plan: &SlotPlan) -> String {
    match plan {
        SlotPlan::Charge(c) => slot_values(&c.values()),
        SlotPlan::Disabled => "off".to_string(),
    }
}

fn stamp(t: NaiveDateTime) -> String {
    t.format("%a %Y-%m-%d %H:%M").to_string()
}

pub fn prediction(p: Prediction, now: DateTime<Tz>) -> String {
    match p {
        Prediction::Running => "maintenance running now".to_string(),
        Prediction::Overdue => "maintenance overdue".to_string(),
        Prediction::Due(at) => {
            let hours = (at - now.naive_local()).num_minutes() as f64 / 60.0;
            format!("maintenance due {} (in {hours:.1} h)", stamp(at))
        }
    }
}

fn battery(b: &Battery, p: Prediction, now: DateTime<Tz>) -> String {
    format!(
        "battery {}: SoC {:.1}%, {}",
        b.id,
        b.soc,
        prediction(p, now)
    )
}

/// The dry-run report: the day, the batteries, current vs planned slots and
/// a timeline.
pub fn dry_run(
    plan: &Plan,
    now: DateTime<Tz>,
    current: &BTreeMap<SlotIndex, SlotValues>,
    writes: &BTreeMap<SlotIndex, usize>,
) -> String {
    let mut out = String::new();
    let tz = now.timezone();
    let real_hours = match (
        plan.day.start.and_local_timezone(tz).earliest(),
        plan.day.end.and_local_timezone(tz).earliest(),
    ) {
        (Some(a), Some(b)) => format!(", {} real hours", (b - a).num_hours()),
        _ => String::new(),
    };
    let _ = writeln!(out, "now           {} ({tz})", stamp(now.naive_local()));
    let _ = writeln!(
        out,
        "planning day  {} -> {}{real_hours}",
        stamp(plan.day.start),
        stamp(plan.day.end)
    );
    let kind = match plan.kind {
        DayKind::Normal => "normal: keep the battery charged outside the peaks",
        DayKind::Maintenance => "MAINTENANCE: let the battery drain",
    };
    let _ = writeln!(out, "day type      {kind}");
    for o in &plan.outlook {
        let mark = if o.in_day { "  <- in this day" } else { "" };
        let line = battery(&o.battery, o.prediction, now);
        let _ = writeln!(out, "              {line}{mark}");
    }
    let _ = writeln!(
        out,
        "\nslot  gui  {:<42}  {:<42}  writes",
        "current", "planned"
    );
    for (slot, planned) in &plan.slots {
        let _ = writeln!(
            out,
            "{:<4}  {:<3}  {:<42}  {:<42}  {}",
            slot.get(),
            slot.get() + 1,
            slot_values(&current[slot]),
            slot_plan(planned),
            writes.get(slot).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(out);
    out.push_str(&timeline(plan));
    out
}

/// One character per half hour of the planning day: `P` a peak (the battery
/// is free to discharge), `A`, `B`, ... the charge windows, `.` neither.
pub fn timeline(plan: &Plan) -> String {
    const STEP_MINUTES: i64 = 30;
    let cells = TimeDelta::days(1).num_minutes() / STEP_MINUTES;
    let label = |i: usize| char::from(b'A' + (i % 26) as u8);
    let mut bar = String::new();
    let mut hours = String::new();
    for cell in 0..cells {
        let t = plan.day.start + TimeDelta::minutes(cell * STEP_MINUTES);
        let c = if let Some(i) = plan.windows.iter().position(|w| w.span.contains(t)) {
            label(i)
        } else if plan.peaks.iter().any(|p| p.contains(t)) {
            'P'
        } else {
            '.'
        };
        bar.push(c);
        if cell % 6 == 0 {
            let _ = write!(hours, "{:<6}", t.format("%H"));
        }
    }
    let mut legend = String::from("P peak");
    for (i, w) in plan.windows.iter().enumerate() {
        let _ = write!(
            legend,
            "  {} {}-{} to {}",
            label(i),
            w.span.start.format("%H:%M"),
            w.span.end.format("%H:%M"),
            w.soc
        );
    }
    format!("timeline      {hours}\n              {bar}\n              {legend}\n")
}

/// What `status` could learn of the GX.
pub enum GxView<'a> {
    Read {
        zone: &'a str,
        slots: &'a BTreeMap<SlotIndex, SlotValues>,
    },
    Unavailable {
        reason: &'a str,
    },
}

/// `status`: every slot decoded, which are ours, the zone, the batteries
/// and the last run, as of `clock` (`now` is the same instant in the zone
/// planned in, when one is known). What could not be read says why.
pub fn status(
    gx: GxView<'_>,
    clock: DateTime<Utc>,
    now: Option<DateTime<Tz>>,
    owned: &OwnedSlots,
    batteries: &[(Battery, Prediction)],
    last: Result<Option<&RunRecord>, String>,
) -> String {
    let mut out = String::new();
    match gx {
        GxView::Read { zone, slots } => {
            let _ = match now {
                Some(now) => writeln!(
                    out,
                    "GX time zone  {zone} (now {})",
                    stamp(now.naive_local())
                ),
                None => writeln!(out, "GX time zone  {zone} (not a zone zcell-sched knows)"),
            };
            let _ = writeln!(out, "\nslot  gui  owner        schedule");
            for (slot, values) in slots {
                let owner = if owned.contains(*slot) {
                    "zcell-sched"
                } else {
                    "other"
                };
                let _ = writeln!(
                    out,
                    "{:<4}  {:<3}  {owner:<11}  {}",
                    slot.get(),
                    slot.get() + 1,
                    slot_values(values)
                );
            }
        }
        GxView::Unavailable { reason } => {
            let _ = writeln!(out, "GX            UNAVAILABLE: {reason}");
            if let Some(now) = now {
                let _ = writeln!(
                    out,
                    "now           {} ({})",
                    stamp(now.naive_local()),
                    now.timezone()
                );
            }
            let _ = writeln!(out, "slots         unknown (owned: {owned})");
        }
    }
    if let Some(now) = now {
        if !batteries.is_empty() {
            let _ = writeln!(out);
        }
        for (b, p) in batteries {
            let _ = writeln!(out, "{}", battery(b, *p, now));
        }
    }
    out.push('\n');
    match last {
        Ok(last) => out.push_str(&last_run(last, clock)),
        Err(reason) => {
            let _ = writeln!(out, "last run      UNREADABLE: {reason}");
        }
    }
    out
}

/// The last run and, when cron seems to have stopped, a warning.
pub fn last_run(last: Option<&RunRecord>, now: DateTime<Utc>) -> String {
    let Some(r) = last else {
        return "last run      none recorded yet\n".to_string();
    };
    let ago = |t: DateTime<Utc>| format!("{:.1} h ago", (now - t).num_minutes() as f64 / 60.0);
    let what = match r.outcome {
        Outcome::Applied => "applied",
        Outcome::Planned => "dry run",
        Outcome::Fallback => "FELL BACK",
        Outcome::Error => "FAILED",
    };
    let day = r
        .planning_day
        .as_ref()
        .map(|d| format!(", {} day from {}", d.kind, stamp(d.start)))
        .unwrap_or_default();
    let mut out = format!(
        "last run      {} ({}): {what} (exit {}){day}, {} writes\n",
        r.local_time.map_or_else(|| r.time.to_rfc3339(), stamp),
        ago(r.time),
        r.exit_code,
        r.writes
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(out, "              {reason}");
    }
    if r.is_stale(now) {
        let last_real = r.last_real_run.map_or("never".to_string(), ago);
        let _ = writeln!(
            out,
            "WARNING       no scheduled run for over {} h (last: {last_real}): is the cron entry there?",
            crate::zcell::record::STALE_AFTER.num_hours()
        );
    }
    out
}

/// `Tue 2026-11-24 10:00 -> Tue 16:00 (6h00) charge and hold 100%`, local
/// time as the GX follows it; `none` for a window that is not one.
pub fn window_values(v: &WindowValues, tz: Tz) -> String {
    let Some((start, end)) = v.local_span(tz) else {
        return "none".to_string();
    };
    let soc = v.target_soc;
    let what = match Strategy::from_raw(v.strategy as i64) {
        Some(Strategy::SelfConsume) => "self-consume".to_string(),
        Some(Strategy::ProBattery) => format!("charge and hold {soc}%"),
        Some(Strategy::TargetSoc) => format!("reach {soc}% via the grid"),
        Some(Strategy::ProGrid) => format!("{soc}%, excess to the grid"),
        None => format!("strategy {} at {soc}%", v.strategy),
    };
    let seconds = i32::try_from(v.duration as i64).unwrap_or(i32::MAX);
    format!(
        "{} -> {} ({}) {what}",
        stamp(start),
        end.format("%a %H:%M"),
        length(seconds)
    )
}

fn window_plan(plan: &WindowPlan, tz: Tz) -> String {
    match plan {
        WindowPlan::Active(v) => window_values(v, tz),
        WindowPlan::Gone => "none".to_string(),
    }
}

fn dess_mode(raw: i64) -> String {
    Mode::from_raw(raw).map_or_else(|| format!("unknown ({raw})"), |m| m.to_string())
}

/// The dry run's Dynamic ESS part: the mode and each owned window now and
/// as planned, with the writes it needs (windows none before and after are
/// left out).
pub fn dess_dry_run(
    state: &DessState,
    plans: &[(WindowIndex, WindowPlan)],
    changes: &WindowChanges,
    tz: Tz,
) -> String {
    let mut out = String::new();
    let switch = match changes.mode {
        Some(m) => format!(", would be set to {m}"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "\nDynamic ESS   mode {}{switch}, battery capacity {} kWh",
        dess_mode(state.mode),
        state.capacity_kwh
    );
    let _ = writeln!(out, "window  {:<60}  {:<60}  writes", "current", "planned");
    for (i, plan) in plans {
        let current = state.windows.get(i).copied().unwrap_or_default();
        if !current.is_window() && *plan == WindowPlan::Gone {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<6}  {:<60}  {:<60}  {}",
            i.get(),
            window_values(&current, tz),
            window_plan(plan, tz),
            changes.writes.get(i).copied().unwrap_or(0)
        );
    }
    let removed = changes.foreign_removed();
    if removed > 0 {
        let _ = writeln!(out, "{}", foreign_removed(removed, state.mode, false));
    }
    out
}

/// `status` with the Dynamic ESS writer: the mode and the owned windows,
/// marking the one the GX follows now (among them).
/// The windows zcell-sched does not own, as numbers.
fn foreign_range() -> String {
    format!("{OWNED_COUNT}-{}", dess::WINDOW_COUNT - 1)
}

/// What taking Dynamic ESS over (switching it from `was` to Local) did, or
/// would do, to the windows zcell-sched does not own.
pub fn foreign_removed(count: usize, was: i64, done: bool) -> String {
    let verb = if done { "removed" } else { "would remove" };
    format!(
        "{verb} {count} Dynamic ESS windows zcell-sched does not own ({}), left from mode {}: \
         in Local mode nothing refreshes them",
        foreign_range(),
        dess_mode(was)
    )
}

/// What the set windows zcell-sched does not own do while Dynamic ESS is
/// Local, or None when none is set.
pub fn foreign_warning(foreign: &BTreeMap<WindowIndex, WindowValues>, tz: Tz) -> Option<String> {
    let set = dess::set_windows(foreign);
    let last_end = set
        .values()
        .filter_map(|v| v.local_span(tz))
        .map(|(_, end)| end)
        .max()?;
    Some(format!(
        "{} Dynamic ESS windows zcell-sched does not own ({}) are set, the last until {}: \
         Dynamic ESS follows them wherever zcell-sched's windows leave time uncovered (after \
         they end, after the fallback or disable removed them); to remove them, set Dynamic \
         ESS Off on the GX and run once with --dess-set-local",
        set.len(),
        foreign_range(),
        stamp(last_end)
    ))
}

pub fn dess_status(
    mode: Option<i64>,
    windows: &BTreeMap<WindowIndex, WindowValues>,
    foreign: &BTreeMap<WindowIndex, WindowValues>,
    now: Option<DateTime<Tz>>,
) -> String {
    let Some(mode) = mode else {
        return "Dynamic ESS   none on this GX (firmware without it): use --writer slots\n"
            .to_string();
    };
    let mut out = format!(
        "Dynamic ESS   mode {}; windows {}-{} owned by zcell-sched\n",
        dess_mode(mode),
        0,
        OWNED_COUNT - 1
    );
    let Some(now) = now else {
        return out;
    };
    let tz = now.timezone();
    // The GX follows the lowest-numbered of all 48 windows.
    let mut all = windows.clone();
    all.extend(foreign);
    let active = dess::active_at(&all, tz, now.with_timezone(&Utc));
    for (i, v) in windows.iter().filter(|(_, v)| v.is_window()) {
        let mark = if active == Some(*i) { "  <- now" } else { "" };
        let _ = writeln!(
            out,
            "window {:<3}    {}{mark}",
            i.get(),
            window_values(v, tz)
        );
    }
    match active.filter(|i| !i.is_owned()) {
        Some(i) => {
            let _ = writeln!(
                out,
                "window {:<3}    {}  <- now, not zcell-sched's",
                i.get(),
                window_values(&all[&i], tz)
            );
        }
        None if active.is_none() => {
            let _ = writeln!(
                out,
                "              no window active now: plain self-consumption"
            );
        }
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_lines() {
        let v = SlotValues {
            day: 1,
            start: 36000,
            duration: 21600,
            soc: 100,
            allow_discharge: None,
        };
        assert_eq!(slot_values(&v), "on  Mon 10:00-16:00 (6h00) to 100%");
        let night = SlotValues {
            day: -10,
            start: 75600,
            duration: 36000,
            soc: 50,
            allow_discharge: None,
        };
        assert_eq!(slot_values(&night), "off Sun 21:00-07:00 (10h00) to 50%");
        let odd = SlotValues {
            day: 42,
            start: 0,
            duration: 0,
            soc: 0,
            allow_discharge: None,
        };
        assert!(slot_values(&odd).starts_with("?   day 42"));
    }

    #[test]
    fn window_lines() {
        use chrono_tz::Australia::Hobart;
        let v = WindowValues {
            // Mon 2025-11-24 10:00 AEDT
            start: 1_763_938_800.0,
            duration: 21600.0,
            target_soc: 100.0,
            strategy: 2.0,
            ..WindowValues::default()
        };
        assert_eq!(
            window_values(&v, Hobart),
            "Mon 2025-11-24 10:00 -> Mon 16:00 (6h00) charge and hold 100%"
        );
        let sc = WindowValues { strategy: 1.0, ..v };
        assert!(window_values(&sc, Hobart).ends_with("self-consume"));
        assert_eq!(window_values(&WindowValues::default(), Hobart), "none");
    }
}
