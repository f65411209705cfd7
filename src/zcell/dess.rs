//! The second GX writer: the plan as Dynamic ESS "Local" windows (Venus OS's
//! `delegates/dynamicess.py` in dbus-systemcalc-py). A window has an
//! absolute start (unix seconds) and a length; once the last one has passed,
//! Dynamic ESS finds no window and falls back to plain self-consumption, so a
//! scheduler that stops running leaves a safe GX within a day. Pure: the
//! settings, the encoding, the minimal-write rule, the preconditions and
//! which window the GX follows at a given time.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Result, bail, ensure};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::span::Span;
use crate::tz::takes_effect;
use crate::zcell::planner::Plan;
use crate::zcell::slot::SLOT_COUNT;

pub const SCHEDULE: &str = "/Settings/DynamicEss/Schedule";
pub const MODE_PATH: &str = "/Settings/DynamicEss/Mode";
pub const CAPACITY_PATH: &str = "/Settings/DynamicEss/BatteryCapacity";
/// The ESS settings Dynamic ESS depends on.
pub const HUB4_MODE_PATH: &str = "/Settings/CGwacs/Hub4Mode";
pub const BATTERY_LIFE_STATE_PATH: &str = "/Settings/CGwacs/BatteryLife/State";
/// ESS "DC-coupled PV: feed in excess"; the windows follow it.
pub const FEED_IN_PATH: &str = "/Settings/CGwacs/OvervoltageFeedIn";

/// dbus-systemcalc-py's `NUM_SCHEDULES`.
pub const WINDOW_COUNT: u8 = 48;
/// zcell-sched owns the first windows: the GX follows the lowest-numbered
/// window that contains now, so ours win over any others. A day with at
/// most one charge window per owned slot needs at most one window per charge
/// window, one per stretch between them and the overlap.
pub const OWNED_COUNT: u8 = 2 * SLOT_COUNT + 2;

/// `Hub4Mode` 3: ESS under external control; Dynamic ESS stands aside.
const HUB4_EXTERNAL_CONTROL: i64 = 3;
/// `BatteryLife/State` 9: ESS mode "Keep batteries charged".
const KEEP_CHARGED: i64 = 9;

/// Which writer `run`, `status` and `disable` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Writer {
    /// ESS scheduled-charge slots (every firmware; repeat weekly).
    #[default]
    Slots,
    /// Dynamic ESS Local windows (absolute times; expire by themselves).
    Dess,
}

impl std::str::FromStr for Writer {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "slots" => Ok(Writer::Slots),
            "dess" => Ok(Writer::Dess),
            _ => bail!("`{s}` is not a writer (use slots or dess)"),
        }
    }
}

/// How the Dynamic ESS writer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DessOptions {
    /// How long the last window runs past the planning day's end.
    pub overlap: TimeDelta,
    /// Switch Dynamic ESS to Local when it is in another mode.
    pub set_local: bool,
}

/// Long enough for the next day's first run (at the day start) to read the
/// BMS with its retries, short against a day.
pub const DEFAULT_OVERLAP: std::time::Duration = std::time::Duration::from_secs(600);
/// Longer and the windows would no longer end within about a day.
pub const MAX_OVERLAP_SECONDS: f64 = 3.0 * 3600.0;

/// An overlap in seconds (fractions allowed), 0 to three hours.
pub fn parse_overlap(s: &str) -> Result<std::time::Duration> {
    let seconds: f64 = s
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("`{s}` is not a number of seconds"))?;
    ensure!(
        (0.0..=MAX_OVERLAP_SECONDS).contains(&seconds),
        "`{s}`: the overlap must be 0 to {MAX_OVERLAP_SECONDS} seconds"
    );
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// `/Settings/DynamicEss/Mode` (dynamicess.py `MODES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// VRM writes the windows.
    Auto,
    /// Old modes that now also mean off.
    Buy,
    Sell,
    /// The windows come from the GX itself (or a local tool such as this one).
    Local,
}

impl Mode {
    pub fn from_raw(raw: i64) -> Option<Mode> {
        Some(match raw {
            0 => Mode::Off,
            1 => Mode::Auto,
            2 => Mode::Buy,
            3 => Mode::Sell,
            4 => Mode::Local,
            _ => return None,
        })
    }

    pub fn raw(self) -> i64 {
        match self {
            Mode::Off => 0,
            Mode::Auto => 1,
            Mode::Buy => 2,
            Mode::Sell => 3,
            Mode::Local => 4,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Off => "Off",
            Mode::Auto => "Auto (VRM)",
            Mode::Buy => "Buy (now off)",
            Mode::Sell => "Sell (now off)",
            Mode::Local => "Local",
        })
    }
}

/// A window's `Strategy` (dynamicess.py `Strategy`): where missing and
/// excess energy go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Grid/grid: reach the target SoC exactly, also by selling.
    TargetSoc,
    /// Plain self-consumption; the target SoC is ignored.
    SelfConsume,
    /// Missing from the grid, excess to the battery: charge to the target
    /// (solar first), then hold it.
    ProBattery,
    /// Missing from the battery, excess to the grid.
    ProGrid,
}

impl Strategy {
    pub fn raw(self) -> i64 {
        match self {
            Strategy::TargetSoc => 0,
            Strategy::SelfConsume => 1,
            Strategy::ProBattery => 2,
            Strategy::ProGrid => 3,
        }
    }

    pub fn from_raw(raw: i64) -> Option<Strategy> {
        Some(match raw {
            0 => Strategy::TargetSoc,
            1 => Strategy::SelfConsume,
            2 => Strategy::ProBattery,
            3 => Strategy::ProGrid,
            _ => return None,
        })
    }
}

/// One of the 48 windows, 0..=47.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowIndex(u8);

impl WindowIndex {
    pub fn new(n: u8) -> Option<Self> {
        (n < WINDOW_COUNT).then_some(WindowIndex(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// The windows zcell-sched owns, in order.
    pub fn owned() -> impl Iterator<Item = WindowIndex> {
        (0..OWNED_COUNT).map(WindowIndex)
    }

    /// The windows it does not own: VRM writes them in Auto mode (as it
    /// writes the owned ones), another tool may in Local mode.
    pub fn foreign() -> impl Iterator<Item = WindowIndex> {
        (OWNED_COUNT..WINDOW_COUNT).map(WindowIndex)
    }

    pub fn is_owned(self) -> bool {
        self.0 < OWNED_COUNT
    }

    pub fn path(self, field: Field) -> String {
        format!("{}/{}", self.group(), field.name())
    }

    /// The window's settings group, e.g. `/Settings/DynamicEss/Schedule/3`.
    pub fn group(self) -> String {
        format!("{SCHEDULE}/{}", self.0)
    }
}

impl fmt::Display for WindowIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The leaves of a window zcell-sched writes. `Soc` (legacy, read only when
/// `TargetSoc` is 0) is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Start,
    Duration,
    TargetSoc,
    Strategy,
    Restrictions,
    AllowGridFeedIn,
    Flags,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Start,
        Field::Duration,
        Field::TargetSoc,
        Field::Strategy,
        Field::Restrictions,
        Field::AllowGridFeedIn,
        Field::Flags,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Start => "Start",
            Field::Duration => "Duration",
            Field::TargetSoc => "TargetSoc",
            Field::Strategy => "Strategy",
            Field::Restrictions => "Restrictions",
            Field::AllowGridFeedIn => "AllowGridFeedIn",
            Field::Flags => "Flags",
        }
    }

    /// `TargetSoc` is a double setting; the rest are integers.
    pub fn is_float(self) -> bool {
        self == Field::TargetSoc
    }
}

/// A window's values as the GX holds them. Integers are exact in f64 (unix
/// seconds included), so one number type serves every field.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct WindowValues {
    pub start: f64,
    pub duration: f64,
    pub target_soc: f64,
    pub strategy: f64,
    pub restrictions: f64,
    pub allow_grid_feed_in: f64,
    pub flags: f64,
}

impl WindowValues {
    pub fn get(&self, field: Field) -> f64 {
        match field {
            Field::Start => self.start,
            Field::Duration => self.duration,
            Field::TargetSoc => self.target_soc,
            Field::Strategy => self.strategy,
            Field::Restrictions => self.restrictions,
            Field::AllowGridFeedIn => self.allow_grid_feed_in,
            Field::Flags => self.flags,
        }
    }

    pub fn set(&mut self, field: Field, value: f64) {
        match field {
            Field::Start => self.start = value,
            Field::Duration => self.duration = value,
            Field::TargetSoc => self.target_soc = value,
            Field::Strategy => self.strategy = value,
            Field::Restrictions => self.restrictions = value,
            Field::AllowGridFeedIn => self.allow_grid_feed_in = value,
            Field::Flags => self.flags = value,
        }
    }

    /// dynamicess.py `windows()` yields a window only for `Start > 0`.
    pub fn is_window(&self) -> bool {
        self.start > 0.0
    }

    pub fn satisfies(&self, plan: &WindowPlan) -> bool {
        match plan {
            WindowPlan::Active(v) => self == v,
            WindowPlan::Gone => !self.is_window(),
        }
    }

    /// The local wall-clock interval the GX gives this window: its start
    /// as local time plus `Duration` seconds of naive wall clock, as
    /// `datetime.fromtimestamp(start) + timedelta(seconds=duration)` does.
    pub fn local_span(&self, tz: Tz) -> Option<(NaiveDateTime, NaiveDateTime)> {
        if !self.is_window() {
            return None;
        }
        let start = DateTime::from_timestamp(self.start as i64, 0)?
            .with_timezone(&tz)
            .naive_local();
        Some((start, start + TimeDelta::seconds(self.duration as i64)))
    }
}

/// What one owned window should hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowPlan {
    Active(WindowValues),
    Gone,
}

/// The window Dynamic ESS follows at `t`: the lowest-numbered one whose
/// naive local span contains `t`'s naive local time (dynamicess.py
/// `_on_timer`: `for w in windows: if now in w`), or none, when it falls
/// back to self-consumption (error 3, "No matching schedule").
pub fn active_at(
    windows: &BTreeMap<WindowIndex, WindowValues>,
    tz: Tz,
    t: DateTime<Utc>,
) -> Option<WindowIndex> {
    let now = t.with_timezone(&tz).naive_local();
    windows.iter().find_map(|(i, w)| {
        let (start, stop) = w.local_span(tz)?;
        (start <= now && now < stop).then_some(*i)
    })
}

/// One stretch of the planning day and what the battery does in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub span: Span,
    /// Charge to and hold this SoC %, or plain self-consumption.
    pub charge_to: Option<u8>,
}

/// The planning day cut into stretches: each charge window, the rest
/// self-consumption (peaks included), then `overlap` more self-consumption
/// so the next day's run finds a window still running when it comes.
pub fn stretches(plan: &Plan, overlap: TimeDelta) -> Vec<Stretch> {
    let mut out: Vec<Stretch> = Vec::new();
    let mut push = |span: Span, charge_to: Option<u8>| match out.last_mut() {
        Some(last) if last.charge_to.is_none() && charge_to.is_none() => last.span.end = span.end,
        _ => out.push(Stretch { span, charge_to }),
    };
    let mut cursor = plan.day.start;
    for w in &plan.windows {
        if let Some(gap) = Span::new(cursor, w.span.start) {
            push(gap, None);
        }
        // A target of 0 % holds nothing: dynamicess.py would fall back to
        // the legacy `Soc`, so it is self-consumption.
        let soc = w.soc.get();
        push(w.span, (soc > 0).then_some(soc));
        cursor = w.span.end;
    }
    let end = plan.day.end + overlap;
    if let Some(rest) = Span::new(cursor, end) {
        push(rest, None);
    }
    out
}

/// The values of a window for `stretch`. `feed_in` follows the owner's ESS
/// setting: a window's `AllowGridFeedIn` 0 would forbid feeding in excess
/// PV (dynamicess.py `_set_feedin`), 1 would force it on.
pub fn window_values(stretch: &Stretch, tz: Tz, feed_in: bool) -> WindowValues {
    // A start the clock skips (DST) takes effect when it jumps, as a slot's
    // does. The GX adds Duration to the naive local start, so the length is
    // wall clock from the start it will see to the planned end.
    let start = takes_effect(tz, stretch.span.start);
    let duration = (stretch.span.end - start.naive_local()).num_seconds();
    let (strategy, target) = match stretch.charge_to {
        Some(soc) => (Strategy::ProBattery, f64::from(soc)),
        None => (Strategy::SelfConsume, 0.0),
    };
    WindowValues {
        start: start.timestamp() as f64,
        duration: duration as f64,
        target_soc: target,
        strategy: strategy.raw() as f64,
        restrictions: 0.0,
        allow_grid_feed_in: if feed_in { 1.0 } else { 0.0 },
        flags: 0.0,
    }
}

/// Every owned window's plan: the stretches in time order, the rest gone.
pub fn plan_windows(
    plan: &Plan,
    tz: Tz,
    feed_in: bool,
    overlap: TimeDelta,
) -> Result<Vec<(WindowIndex, WindowPlan)>> {
    let stretches = stretches(plan, overlap);
    ensure!(
        stretches.len() <= usize::from(OWNED_COUNT),
        "{} needs {} Dynamic ESS windows; zcell-sched owns {OWNED_COUNT}",
        plan.day,
        stretches.len()
    );
    let mut values = stretches
        .iter()
        .map(|s| WindowPlan::Active(window_values(s, tz, feed_in)));
    Ok(WindowIndex::owned()
        .map(|i| (i, values.next().unwrap_or(WindowPlan::Gone)))
        .collect())
}

/// Every window zcell-sched does not own gone: once it has taken Dynamic
/// ESS over (switched it to Local), nothing refreshes them, and Dynamic ESS
/// would follow them wherever the owned windows leave time uncovered.
pub fn foreign_gone() -> Vec<(WindowIndex, WindowPlan)> {
    WindowIndex::foreign()
        .map(|i| (i, WindowPlan::Gone))
        .collect()
}

/// The windows among `windows` that Dynamic ESS would follow (`Start` > 0).
pub fn set_windows(
    windows: &BTreeMap<WindowIndex, WindowValues>,
) -> BTreeMap<WindowIndex, WindowValues> {
    windows
        .iter()
        .filter(|(_, v)| v.is_window())
        .map(|(i, v)| (*i, *v))
        .collect()
}

/// Every owned window gone: the fallback and `disable`.
pub fn all_gone() -> Vec<(WindowIndex, WindowPlan)> {
    WindowIndex::owned()
        .map(|i| (i, WindowPlan::Gone))
        .collect()
}

/// One `SetValue` of a window leaf.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowWrite {
    pub window: WindowIndex,
    pub field: Field,
    pub value: f64,
}

impl WindowWrite {
    pub fn path(&self) -> String {
        self.window.path(self.field)
    }
}

/// The writes that take one window from `current` to `plan`, only for
/// leaves that differ, in three phases as for the slots: a live window that
/// changes at all is removed first (`Start` 0) and started last, so after
/// any prefix of a run's writes each owned window is old, gone or as
/// planned, and no changed old window is live once a new one is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowWrites {
    pub remove: Option<WindowWrite>,
    pub fields: Vec<WindowWrite>,
    pub start: Option<WindowWrite>,
}

pub fn writes_for(window: WindowIndex, current: &WindowValues, plan: &WindowPlan) -> WindowWrites {
    let write = |field, value| WindowWrite {
        window,
        field,
        value,
    };
    let remove = || current.is_window().then(|| write(Field::Start, 0.0));
    match plan {
        WindowPlan::Gone => WindowWrites {
            remove: remove(),
            ..WindowWrites::default()
        },
        WindowPlan::Active(wanted) => {
            let fields: Vec<WindowWrite> = Field::ALL[1..]
                .iter()
                .filter(|&&f| current.get(f) != wanted.get(f))
                .map(|&f| write(f, wanted.get(f)))
                .collect();
            let changed = !fields.is_empty() || current.start != wanted.start;
            let remove = if changed { remove() } else { None };
            let start = (remove.is_some() || current.start != wanted.start)
                .then(|| write(Field::Start, wanted.start));
            WindowWrites {
                remove,
                fields,
                start,
            }
        }
    }
}

/// Every owned window's writes: all removals, then fields, then starts.
pub fn ordered_writes(
    plans: &[(WindowIndex, WindowPlan)],
    current: &BTreeMap<WindowIndex, WindowValues>,
) -> Vec<WindowWrite> {
    let per: Vec<WindowWrites> = plans
        .iter()
        .map(|(i, p)| writes_for(*i, &current.get(i).copied().unwrap_or_default(), p))
        .collect();
    let removes = per.iter().filter_map(|w| w.remove);
    let fields = per.iter().flat_map(|w| w.fields.iter().copied());
    let starts = per.iter().filter_map(|w| w.start);
    removes.chain(fields).chain(starts).collect()
}

/// What the GX holds that Dynamic ESS depends on, as read before writing.
#[derive(Debug, Clone, PartialEq)]
pub struct DessState {
    pub mode: i64,
    pub capacity_kwh: f64,
    pub hub4_mode: i64,
    pub battery_life_state: i64,
    pub feed_in: bool,
    /// The owned windows.
    pub windows: BTreeMap<WindowIndex, WindowValues>,
    /// The others.
    pub foreign: BTreeMap<WindowIndex, WindowValues>,
}

/// Whether the windows would act, from dynamicess.py `_on_timer` and
/// `VebusDevice.check_conditions`. `Ok(Some(Local))` asks to switch the
/// mode (only when `set_local`); every refusal says why, before any write.
pub fn check(state: &DessState, set_local: bool) -> Result<Option<Mode>> {
    ensure!(
        state.hub4_mode != HUB4_EXTERNAL_CONTROL,
        "ESS is under external control ({HUB4_MODE_PATH} = 3): Dynamic ESS does nothing then \
         (its error 2, ESS mode); use --writer slots or change the ESS mode"
    );
    ensure!(
        state.battery_life_state != KEEP_CHARGED,
        "ESS is in \"Keep batteries charged\" mode ({BATTERY_LIFE_STATE_PATH} = 9): Dynamic ESS \
         does nothing then (its error 2, ESS mode); choose an Optimized ESS mode"
    );
    ensure!(
        state.capacity_kwh > 0.0,
        "the Dynamic ESS battery capacity is not set ({CAPACITY_PATH} = 0): Dynamic ESS does \
         nothing without it (its error 5); set it under Settings > ESS > Dynamic ESS"
    );
    match Mode::from_raw(state.mode) {
        Some(Mode::Local) => Ok(None),
        _ if set_local => Ok(Some(Mode::Local)),
        Some(Mode::Auto) => bail!(
            "Dynamic ESS is in Auto mode ({MODE_PATH} = 1): VRM writes the windows, they are \
             not zcell-sched's to replace; set it to Local on the GX, or run once with \
             --dess-set-local"
        ),
        Some(mode) => bail!(
            "Dynamic ESS is {mode} ({MODE_PATH} = {}): windows would do nothing; set it to \
             Local on the GX, or run once with --dess-set-local",
            state.mode
        ),
        None => bail!("{MODE_PATH} holds {}, not a known mode", state.mode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zcell::battery::{Battery, Snapshot};
    use crate::zcell::config::{Config, Overrides};
    use crate::zcell::planner;
    use chrono::NaiveDate;
    use chrono_tz::Australia::Hobart;

    const HOUR: TimeDelta = TimeDelta::hours(1);

    fn w(n: u8) -> WindowIndex {
        WindowIndex::new(n).unwrap()
    }

    fn local(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    fn snapshot(maintenance_in: Option<i64>) -> Snapshot {
        let (timer, target) = match maintenance_in {
            Some(s) => (0, s as f64),
            None => (0, 30.0 * 86400.0),
        };
        Snapshot {
            batteries: vec![Battery {
                id: "1".into(),
                soc: 60.0,
                stripping: false,
                run_timer: timer as f64,
                run_target: target,
            }],
        }
    }

    fn plan_at(now: NaiveDateTime, maintenance_in: Option<i64>) -> Plan {
        let now = takes_effect(Hobart, now);
        let policy = Config::default().policy(&Overrides::default()).unwrap();
        planner::plan(now, &snapshot(maintenance_in), &policy).unwrap()
    }

    /// The windows a plan sets, as the GX would hold them.
    fn active(plans: Vec<(WindowIndex, WindowPlan)>) -> BTreeMap<WindowIndex, WindowValues> {
        plans
            .into_iter()
            .filter_map(|(i, p)| match p {
                WindowPlan::Active(v) => Some((i, v)),
                WindowPlan::Gone => None,
            })
            .collect()
    }

    fn windows_at(
        now: NaiveDateTime,
        maintenance_in: Option<i64>,
    ) -> BTreeMap<WindowIndex, WindowValues> {
        active(plan_windows(&plan_at(now, maintenance_in), Hobart, true, HOUR).unwrap())
    }

    fn spans(windows: &BTreeMap<WindowIndex, WindowValues>) -> Vec<(String, String, f64, i64)> {
        windows
            .values()
            .map(|v| {
                let (a, b) = v.local_span(Hobart).unwrap();
                (
                    a.format("%a %H:%M").to_string(),
                    b.format("%a %H:%M").to_string(),
                    v.target_soc,
                    v.strategy as i64,
                )
            })
            .collect()
    }

    fn s(a: &str, b: &str, soc: f64, strategy: Strategy) -> (String, String, f64, i64) {
        (a.into(), b.into(), soc, strategy.raw())
    }

    #[test]
    fn writer_names() {
        assert_eq!("slots".parse::<Writer>().unwrap(), Writer::Slots);
        assert_eq!("dess".parse::<Writer>().unwrap(), Writer::Dess);
        assert!("DESS".parse::<Writer>().is_err());
        assert_eq!(Writer::default(), Writer::Slots);
    }

    #[test]
    fn paths_and_owned_windows() {
        assert_eq!(
            w(3).path(Field::TargetSoc),
            "/Settings/DynamicEss/Schedule/3/TargetSoc"
        );
        assert!(WindowIndex::new(47).is_some() && WindowIndex::new(48).is_none());
        assert_eq!(WindowIndex::owned().count(), 12);
    }

    #[test]
    fn weekday_normal_day() {
        use Strategy::*;
        // Tuesday 2026-11-24, Hobart (AEDT).
        let got = spans(&windows_at(local(2026, 11, 24, 9), None));
        assert_eq!(
            got,
            vec![
                s("Tue 07:00", "Tue 10:00", 0.0, SelfConsume),
                s("Tue 10:00", "Tue 16:00", 100.0, ProBattery),
                s("Tue 16:00", "Tue 21:00", 0.0, SelfConsume),
                s("Tue 21:00", "Wed 07:00", 100.0, ProBattery),
                s("Wed 07:00", "Wed 08:00", 0.0, SelfConsume),
            ]
        );
    }

    #[test]
    fn maintenance_and_weekend_days() {
        use Strategy::*;
        let got = spans(&windows_at(local(2026, 11, 24, 9), Some(3600)));
        assert_eq!(
            got,
            vec![
                s("Tue 07:00", "Tue 13:00", 0.0, SelfConsume),
                s("Tue 13:00", "Tue 16:00", 50.0, ProBattery),
                s("Tue 16:00", "Wed 03:00", 0.0, SelfConsume),
                s("Wed 03:00", "Wed 07:00", 100.0, ProBattery),
                s("Wed 07:00", "Wed 08:00", 0.0, SelfConsume),
            ]
        );
        let weekend = spans(&windows_at(local(2026, 11, 28, 7), None));
        assert_eq!(
            weekend,
            vec![
                s("Sat 07:00", "Sun 07:00", 100.0, ProBattery),
                s("Sun 07:00", "Sun 08:00", 0.0, SelfConsume),
            ]
        );
    }

    /// Hobart leaves DST on Sun 2026-04-05 03:00 (back to 02:00) and starts it
    /// on Sun 2026-10-04 02:00 (to 03:00): 25 h and 23 h planning days. The
    /// starts are absolute; each window ends at its planned wall-clock time.
    #[test]
    fn dst_days_start_absolutely_and_end_on_the_wall_clock() {
        for (day, real_hours) in [(local(2026, 4, 4, 7), 25), (local(2026, 10, 3, 7), 23)] {
            let windows = windows_at(day, None);
            let first = windows[&w(0)];
            let (start, end) = first.local_span(Hobart).unwrap();
            assert_eq!(start, day);
            assert_eq!(end, day + TimeDelta::days(1), "wall-clock day");
            assert_eq!(first.start as i64, takes_effect(Hobart, day).timestamp());
            let next = windows[&w(1)];
            let real = (next.start - first.start) as i64;
            assert_eq!(real, real_hours * 3600, "{day}");
            assert_eq!(first.duration as i64, 86400);
        }
    }

    /// Berlin springs forward on Sun 2026-03-29 at 02:00 (to 03:00). A
    /// maintenance window from 02:30 starts when the clock jumps, at 03:00,
    /// as the slot from 02:30 does: no moment of the day is left without a
    /// window, and the charge runs 03:00-05:00.
    #[test]
    fn a_window_from_inside_the_dst_gap_starts_when_the_clock_jumps() {
        let berlin = chrono_tz::Europe::Berlin;
        let mut policy = Config::default().policy(&Overrides::default()).unwrap();
        policy.rules.maintenance_windows = vec!["02:30-05:00@100".parse().unwrap()];
        let run = takes_effect(berlin, local(2026, 3, 28, 7));
        let plan = planner::plan(run, &snapshot(Some(3600)), &policy).unwrap();
        let windows = active(plan_windows(&plan, berlin, true, HOUR).unwrap());
        let charge = windows
            .values()
            .find(|v| v.strategy == Strategy::ProBattery.raw() as f64)
            .unwrap();
        let sunday = |h| local(2026, 3, 29, h);
        assert_eq!(charge.local_span(berlin), Some((sunday(3), sunday(5))));
        assert_eq!(charge.duration, 7200.0);
        let jump: DateTime<Utc> = "2026-03-29T01:00:00Z".parse().unwrap();
        assert_eq!(charge.start as i64, jump.timestamp());
        // 23 real hours, every minute of them under some window.
        let run = run.with_timezone(&Utc);
        for minute in 0..23 * 60 {
            let t = run + TimeDelta::minutes(minute);
            assert!(active_at(&windows, berlin, t).is_some(), "no window at {t}");
        }
        let half_past_three = jump + TimeDelta::minutes(30);
        let (before_jump, at_jump) = (jump - TimeDelta::seconds(1), jump);
        assert_eq!(
            active_at(&windows, berlin, at_jump).map(|i| windows[&i]),
            Some(*charge)
        );
        assert_ne!(
            active_at(&windows, berlin, before_jump).map(|i| windows[&i]),
            Some(*charge)
        );
        assert_eq!(
            active_at(&windows, berlin, half_past_three).map(|i| windows[&i]),
            Some(*charge)
        );
    }

    #[test]
    fn a_zero_target_is_self_consumption() {
        let plan = plan_at(local(2026, 11, 28, 7), None);
        let mut zero = plan.clone();
        zero.windows[0].soc = crate::zcell::slot::Soc::new(0).unwrap();
        let got = stretches(&zero, HOUR);
        assert_eq!(got.len(), 1, "one self-consumption stretch: {got:?}");
        assert_eq!(got[0].charge_to, None);
    }

    #[test]
    fn feed_in_follows_the_owner() {
        let plan = plan_at(local(2026, 11, 24, 9), None);
        for (feed_in, value) in [(true, 1.0), (false, 0.0)] {
            let windows = plan_windows(&plan, Hobart, feed_in, HOUR).unwrap();
            for (_, p) in windows {
                if let WindowPlan::Active(v) = p {
                    assert_eq!(v.allow_grid_feed_in, value);
                    assert_eq!(v.restrictions, 0.0);
                    assert_eq!(v.flags, 0.0);
                }
            }
        }
    }

    /// The windows of the last run leave no window active a (wall-clock) day
    /// after it (plus the overlap, which is self-consumption anyway), at any hour, on
    /// any kind of day, DST days included: the GX is back to plain
    /// self-consumption by itself.
    #[test]
    fn windows_end_by_themselves() {
        let days = [
            local(2026, 11, 24, 7),
            local(2026, 11, 28, 7),
            local(2026, 4, 4, 7),
            local(2026, 10, 3, 7),
        ];
        for overlap in [TimeDelta::zero(), TimeDelta::minutes(5), HOUR] {
            for day in days {
                for maintenance in [None, Some(3600)] {
                    for hour in 0..24 {
                        let last_run = day + TimeDelta::hours(hour);
                        let plan = plan_at(last_run, maintenance);
                        let windows = active(plan_windows(&plan, Hobart, true, overlap).unwrap());
                        let at = takes_effect(Hobart, last_run).with_timezone(&Utc);
                        assert!(
                            active_at(&windows, Hobart, at).is_some(),
                            "covered at the run {last_run}"
                        );
                        // A wall-clock day: 25 real hours on the day DST ends.
                        let day_later =
                            takes_effect(Hobart, last_run + TimeDelta::days(1)).with_timezone(&Utc);
                        if let Some(i) = active_at(&windows, Hobart, day_later) {
                            assert_eq!(
                                windows[&i].strategy,
                                Strategy::SelfConsume.raw() as f64,
                                "only the overlap a day after the run {last_run}"
                            );
                        }
                        assert_eq!(
                            active_at(&windows, Hobart, day_later + overlap),
                            None,
                            "a day and the overlap after the run {last_run}"
                        );
                        if overlap.is_zero() {
                            assert_eq!(active_at(&windows, Hobart, day_later), None);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_lowest_numbered_window_wins() {
        let at = takes_effect(Hobart, local(2026, 11, 24, 12)).timestamp() as f64;
        let v = |start: f64, soc| WindowValues {
            start,
            duration: 7200.0,
            target_soc: soc,
            ..WindowValues::default()
        };
        let windows = BTreeMap::from([
            (w(0), v(0.0, 10.0)),
            (w(1), v(at - 3600.0, 20.0)),
            (w(2), v(at - 60.0, 30.0)),
        ]);
        let t = DateTime::from_timestamp(at as i64, 0).unwrap();
        assert_eq!(active_at(&windows, Hobart, t), Some(w(1)));
        let stop = DateTime::from_timestamp(at as i64 + 3600, 0).unwrap();
        assert_eq!(
            active_at(&windows, Hobart, stop),
            Some(w(2)),
            "end exclusive"
        );
    }

    #[test]
    fn identical_windows_need_no_writes() {
        let windows = windows_at(local(2026, 11, 24, 9), None);
        let plans =
            plan_windows(&plan_at(local(2026, 11, 24, 9), None), Hobart, true, HOUR).unwrap();
        assert!(ordered_writes(&plans, &windows).is_empty());
    }

    fn state(mode: i64) -> DessState {
        DessState {
            mode,
            capacity_kwh: 10.0,
            hub4_mode: 1,
            battery_life_state: 2,
            feed_in: true,
            windows: BTreeMap::new(),
            foreign: BTreeMap::new(),
        }
    }

    #[test]
    fn preconditions() {
        assert_eq!(check(&state(4), false).unwrap(), None);
        assert_eq!(check(&state(0), true).unwrap(), Some(Mode::Local));
        assert_eq!(check(&state(1), true).unwrap(), Some(Mode::Local));
        let refused = |s: DessState| check(&s, false).unwrap_err().to_string();
        assert!(refused(state(1)).contains("Auto"));
        assert!(refused(state(0)).contains("Off"));
        assert!(
            refused(DessState {
                capacity_kwh: 0.0,
                ..state(4)
            })
            .contains("capacity")
        );
        assert!(
            refused(DessState {
                hub4_mode: 3,
                ..state(4)
            })
            .contains("external control")
        );
        assert!(
            refused(DessState {
                battery_life_state: 9,
                ..state(4)
            })
            .contains("Keep batteries charged")
        );
        // Switching the mode does not excuse a missing capacity.
        assert!(
            check(
                &DessState {
                    capacity_kwh: 0.0,
                    ..state(0)
                },
                true
            )
            .is_err()
        );
    }

    /// After every prefix of a run's writes each owned window is old, gone
    /// or as planned, and no changed old window is live together with a
    /// new one; at the end each is as planned. Over a grid of states and
    /// plans like the slot writer's.
    #[test]
    fn every_prefix_keeps_each_window_old_gone_or_planned() {
        let windows = [w(0), w(1)];
        let values = |start: f64, duration: f64, soc: f64, strategy: Strategy| WindowValues {
            start,
            duration,
            target_soc: soc,
            strategy: strategy.raw() as f64,
            restrictions: 0.0,
            allow_grid_feed_in: 1.0,
            flags: 0.0,
        };
        let t = 1_790_000_000.0;
        let plans = [
            WindowPlan::Gone,
            WindowPlan::Active(values(t, 3600.0, 100.0, Strategy::ProBattery)),
            WindowPlan::Active(values(t + 3600.0, 3600.0, 100.0, Strategy::ProBattery)),
            WindowPlan::Active(values(t, 7200.0, 50.0, Strategy::SelfConsume)),
        ];
        let mut states = Vec::new();
        for start in [0.0, -5.0, t, t + 3600.0] {
            for (duration, soc, strategy) in [
                (3600.0, 100.0, Strategy::ProBattery),
                (7200.0, 50.0, Strategy::SelfConsume),
                (0.0, 0.0, Strategy::TargetSoc),
            ] {
                states.push(values(start, duration, soc, strategy));
                states.push(WindowValues {
                    flags: 2.0,
                    restrictions: 1.0,
                    allow_grid_feed_in: 0.0,
                    ..values(start, duration, soc, strategy)
                });
            }
        }
        let mut checked = 0;
        for a in &states {
            for b in &states {
                for pa in &plans {
                    for pb in &plans {
                        let current = BTreeMap::from([(windows[0], *a), (windows[1], *b)]);
                        let plan = [(windows[0], *pa), (windows[1], *pb)];
                        let writes = ordered_writes(&plan, &current);
                        let mut now = current.clone();
                        for (i, wr) in writes.iter().enumerate() {
                            let cell = now.get_mut(&wr.window).unwrap();
                            assert_ne!(
                                cell.get(wr.field),
                                wr.value,
                                "a write that changes nothing"
                            );
                            cell.set(wr.field, wr.value);
                            let mut old_live = false;
                            let mut new_live = false;
                            for (window, p) in &plan {
                                let v = now[window];
                                let old = v == current[window];
                                assert!(
                                    old || v.satisfies(p) || !v.is_window(),
                                    "after write {i} of {writes:?}: window {window} = {v:?}, plan {p:?}"
                                );
                                let changed = !current[window].satisfies(p);
                                if v.is_window() && changed {
                                    old_live |= old;
                                    new_live |= !old;
                                }
                            }
                            assert!(!(old_live && new_live), "a live mix after write {i}");
                        }
                        for (window, p) in &plan {
                            assert!(now[window].satisfies(p));
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 24 * 24 * 16);
    }
}
