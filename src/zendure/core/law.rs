//! The control law: from the schedule value in force, recent meter samples,
//! the device's state and the commands already written, the next command to
//! write, or none. Pure: every time is a parameter.
//!
//! Lag: a P1 reading shows the grid as it was `lag` ago. Net grid =
//! house + device AC power (positive = drawn by the battery), so the house
//! then was `grid_sample - device_then`, and the device setpoint that zeroes
//! the grid is `device_then - grid_sample`: the reading is corrected by the
//! device's own reported power at the moment the reading shows, not by what
//! was commanded since. Adding the lagged reading to the last setpoint (the
//! field's law) counts every change twice until the meter catches up, which
//! is what makes it overshoot and oscillate. A sample whose moment falls
//! while the device power was still moving (a ramp, or an uncertain lag) is
//! skipped for an older, unambiguous one. The device's own draw (AC power
//! beyond the setpoint it carries out, ~19 W) is left out of the setpoint,
//! or the grid would import it for ever inside the deadband.
//!
//! The device does not follow a write at once: out of standby it wakes
//! first, then it ramps to the new setpoint (on a SolarFlow 1-3 s, plus a
//! few s of wake-up). While it does, the meter and its own power readings
//! show a transient the law caused itself; judged as the house, it looks
//! like a load step the other way, and the law would take its decision back
//! (write 0 W, then the same direction again). So the law judges only
//! samples that show a settled device: none whose moment falls between a
//! change of command and the first device reading that carries it out, or,
//! for a device held back (SoC cut-off, its own ceiling), twice the settle
//! time learnt from the device's earlier reports (`observe_response`); and
//! none taken before the change (the change was decided knowing them).
//!
//! An unconfigured lag is estimated from the controller's own steps: the
//! lag under which the house power implied by the readings moves least,
//! learnt only from windows where every candidate lag sees the whole step.

use std::time::Duration;

use crate::zendure::core::schedule::ScheduleValue;

/// A point on the controller's monotonic clock (time since it started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Moment(pub Duration);

impl Moment {
    pub fn from_secs_f64(s: f64) -> Moment {
        Moment(Duration::from_secs_f64(s.max(0.0)))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Moment) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    pub fn minus(self, d: Duration) -> Moment {
        Moment(self.0.saturating_sub(d))
    }
}

/// The device's AC direction (`acMode`); switching it clicks a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcMode {
    /// `acMode: 1`, charging from AC.
    Charge = 1,
    /// `acMode: 2`, output to the house.
    Discharge = 2,
}

/// What the device is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Both limits 0; the AC direction stays as it is.
    Idle,
    /// Charge from AC at this many W (`inputLimit`).
    Charge { watts: u32 },
    /// Output this many W to the house (`outputLimit`).
    Discharge { watts: u32 },
}

impl Command {
    /// From a signed setpoint: positive charges, negative discharges.
    pub fn from_setpoint(setpoint_w: i64) -> Command {
        let magnitude = u32::try_from(setpoint_w.unsigned_abs()).unwrap_or(u32::MAX);
        match setpoint_w {
            0 => Command::Idle,
            w if w > 0 => Command::Charge { watts: magnitude },
            _ => Command::Discharge { watts: magnitude },
        }
    }

    /// Signed setpoint in W: positive charges, negative discharges.
    pub fn setpoint_w(self) -> i64 {
        match self {
            Command::Idle => 0,
            Command::Charge { watts } => i64::from(watts),
            Command::Discharge { watts } => -i64::from(watts),
        }
    }

    pub fn ac_mode(self) -> Option<AcMode> {
        match self {
            Command::Idle => None,
            Command::Charge { .. } => Some(AcMode::Charge),
            Command::Discharge { .. } => Some(AcMode::Discharge),
        }
    }

    pub fn is_idle(self) -> bool {
        self == Command::Idle
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Idle => f.write_str("idle (0 W)"),
            Command::Charge { watts } => write!(f, "charge {watts} W"),
            Command::Discharge { watts } => write!(f, "discharge {watts} W"),
        }
    }
}

/// One meter reading: net grid W (positive = import), and when it was taken
/// (the reading shows the grid as it was `lag` before that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub taken: Moment,
    pub grid_w: i32,
}

/// The device's AC power at a moment: positive = drawn from the house
/// (charging), negative = delivered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePower {
    pub at: Moment,
    pub ac_w: i32,
}

/// What the law needs from the device's latest report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState {
    pub read: Moment,
    /// `electricLevel`, %.
    pub soc_pct: u8,
    pub ac_w: i32,
    /// The device's own ceilings (`chargeMaxLimit`, `inverseMaxPower`), when
    /// it reports them.
    pub charge_max_w: Option<u32>,
    pub discharge_max_w: Option<u32>,
    /// What the device says it was told: `acMode`, `inputLimit`,
    /// `outputLimit`.
    pub ac_mode: Option<AcMode>,
    pub input_limit_w: u32,
    pub output_limit_w: u32,
}

impl DeviceState {
    /// The signed setpoint the report says the device was told.
    pub fn reported_setpoint_w(&self) -> i64 {
        match self.ac_mode {
            Some(AcMode::Charge) => i64::from(self.input_limit_w),
            Some(AcMode::Discharge) => -i64::from(self.output_limit_w),
            None => 0,
        }
    }

    /// Whether the reported settings carry out `command` (within `step_w`).
    pub fn carries_out(&self, command: Command, step_w: u32) -> bool {
        let near = |a: u32, b: u32| a.abs_diff(b) <= step_w;
        match command {
            Command::Idle => self.input_limit_w == 0 && self.output_limit_w == 0,
            Command::Charge { watts } => {
                self.ac_mode == Some(AcMode::Charge)
                    && near(self.input_limit_w, watts)
                    && self.output_limit_w == 0
            }
            Command::Discharge { watts } => {
                self.ac_mode == Some(AcMode::Discharge)
                    && near(self.output_limit_w, watts)
                    && self.input_limit_w == 0
            }
        }
    }
}

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_charge_w: u32,
    pub max_discharge_w: u32,
    /// No discharging below this SoC, %.
    pub min_soc_pct: u8,
    /// No charging above this SoC, %.
    pub max_soc_pct: u8,
}

/// The tuning and write-rate rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    pub min_write_interval: Duration,
    pub min_direction_change: Duration,
    pub reassert: Duration,
    pub meter_timeout: Duration,
    /// Grid power within this of zero counts as zero in NetZero modes.
    pub deadband_w: u32,
    /// A new setpoint is written only if it differs from the last by more
    /// than this; also the tolerance when checking the device's report.
    pub step_w: u32,
    /// A NetZero target on the other side of zero must exceed this to
    /// switch direction; smaller ones idle instead.
    pub hysteresis_w: u32,
}

/// The meter's lag, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lag {
    /// Configured or estimated, to within `uncertainty` (at least the
    /// polling period: a sample's own time is that coarse).
    Known {
        lag: Duration,
        uncertainty: Duration,
    },
    /// Not yet known: anywhere from 0 to the meter timeout.
    Unknown,
}

impl Lag {
    /// The window of moments a sample taken at `taken` may show.
    fn window(self, taken: Moment, meter_timeout: Duration) -> (Moment, Moment) {
        match self {
            Lag::Known { lag, uncertainty } => {
                let shown = taken.minus(lag);
                (shown.minus(uncertainty), Moment(shown.0 + uncertainty))
            }
            Lag::Unknown => (taken.minus(meter_timeout), taken),
        }
    }
}

/// What has been written, as far as the rate rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteLog {
    pub last: Option<(Moment, Command)>,
    /// The last write of a non-zero command.
    pub last_nonzero: Option<Moment>,
    /// The AC direction last written and when it last changed.
    pub ac_mode: Option<(AcMode, Moment)>,
    /// When the command last changed, and the command before it.
    pub change: Option<(Moment, Command)>,
}

impl WriteLog {
    /// The log after `command` was written at `at`.
    pub fn record(self, at: Moment, command: Command) -> WriteLog {
        let ac_mode = match (command.ac_mode(), self.ac_mode) {
            (Some(mode), Some((old, since))) if mode == old => Some((old, since)),
            (Some(mode), _) => Some((mode, at)),
            (None, kept) => kept,
        };
        WriteLog {
            last: Some((at, command)),
            last_nonzero: if command.is_idle() {
                self.last_nonzero
            } else {
                Some(at)
            },
            ac_mode,
            change: match self.last_command() {
                Some(last) if last == command => self.change,
                last => Some((at, last.unwrap_or(Command::Idle))),
            },
        }
    }

    pub fn last_command(&self) -> Option<Command> {
        self.last.map(|(_, c)| c)
    }
}

/// Everything the law looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub now: Moment,
    pub value: ScheduleValue,
    /// Recent meter samples, oldest first.
    pub samples: &'a [Sample],
    /// Recent device AC power readings, oldest first.
    pub power: &'a [DevicePower],
    /// The latest device report; `None` while the device is unreachable.
    pub device: Option<DeviceState>,
    pub writes: WriteLog,
    pub limits: Limits,
    pub tuning: Tuning,
    pub lag: Lag,
    /// How the device answers a change of command, as learnt so far.
    pub response: Response,
}

/// How the device answers a change of command, learnt from its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// From the write until its power starts to move (wake-up).
    pub wake: Duration,
    /// From the write until its power carries the command out.
    pub settle: Duration,
}

impl Response {
    /// Before anything is learnt: the write interval, within which the law
    /// cannot write a non-zero command again anyway.
    pub fn assumed(tuning: &Tuning) -> Response {
        Response {
            wake: Duration::ZERO,
            settle: tuning.min_write_interval,
        }
    }

    /// With one more observation: a longer settle counts at once (a device
    /// out of standby wakes first), a shorter one a quarter.
    pub fn learn(self, seen: Response) -> Response {
        let blend = |old: Duration, new: Duration| new.max((old * 3 + new) / 4);
        Response {
            wake: blend(self.wake, seen.wake),
            settle: blend(self.settle, seen.settle),
        }
    }
}

/// The last change of command: when it was written, the setpoints before
/// and after, and the first device reading at or after it that carries the
/// new one out (within `step_w` of it plus the device's own draw, as the
/// steady reading at the write shows that draw), if any yet.
struct Change {
    at: Moment,
    from_w: i64,
    to_w: i64,
    settled: Option<Moment>,
}

fn last_change(power: &[DevicePower], writes: &WriteLog, tuning: &Tuning) -> Option<Change> {
    let (at, before) = writes.change?;
    let from_w = before.setpoint_w();
    let to_w = writes.last_command()?.setpoint_w();
    let draw = power_at(power, at)
        .map(|p| i64::from(p) - from_w)
        .filter(|d| d.unsigned_abs() <= u64::from(tuning.hysteresis_w))
        .unwrap_or(0);
    let settled = power
        .iter()
        .find(|p| {
            p.at >= at
                && (i64::from(p.ac_w) - to_w - draw).unsigned_abs() <= u64::from(tuning.step_w)
        })
        .map(|p| p.at);
    Some(Change {
        at,
        from_w,
        to_w,
        settled,
    })
}

/// The device's answer to the last change of command, once its readings
/// show it carried it out: how long it took to start moving and to settle.
/// Only changes bigger than `hysteresis_w` say anything (a small one is
/// "settled" by the first reading).
pub fn observe_response(
    power: &[DevicePower],
    writes: &WriteLog,
    tuning: &Tuning,
) -> Option<Response> {
    let change = last_change(power, writes, tuning)?;
    if change.from_w.abs_diff(change.to_w) <= u64::from(tuning.hysteresis_w) {
        return None;
    }
    let settled = change.settled?;
    let start = power_at(power, change.at).map_or(change.from_w, i64::from);
    let moved = power
        .iter()
        .find(|p| {
            p.at >= change.at
                && (i64::from(p.ac_w) - start).unsigned_abs() > u64::from(tuning.step_w)
        })
        .map_or(settled, |p| p.at);
    Some(Response {
        wake: moved.since(change.at),
        settle: settled.since(change.at),
    })
}

/// The moments the device was moving after the last change of command: from
/// the write until the first reading that carries the command out, at most
/// twice the learnt settle time.
fn transient(inputs: &Inputs) -> Option<(Moment, Moment)> {
    let change = last_change(inputs.power, &inputs.writes, &inputs.tuning)?;
    let cap = Moment(change.at.0 + inputs.response.settle * 2);
    let settled = change.settled.map_or(cap, |at| at.min(cap));
    (settled > change.at).then_some((change.at, settled))
}

/// Why the law chose what it chose (logged and shown by `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A fixed W from the schedule.
    Fixed,
    /// NetZero/NetZero+ tracking the corrected grid reading.
    Tracking,
    /// The corrected grid is within the deadband: keep the setpoint.
    Deadband,
    /// No unambiguous meter sample yet: keep the setpoint.
    WaitingForMeter,
    /// Meter silent for `meter_timeout` in a NetZero mode: 0 W.
    MeterLost,
    /// Below `min_soc`: no discharging.
    SocMin,
    /// Above `max_soc`: no charging.
    SocMax,
    /// Device not read: nothing to decide on.
    DeviceUnknown,
}

/// The law's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What the device should be doing now.
    pub target: Command,
    pub reason: Reason,
    /// What to write now and why, if anything (the target, or 0 W while a
    /// direction change must wait).
    pub write: Option<(Command, WriteReason)>,
}

impl Decision {
    /// The command to write now, if any.
    pub fn command(&self) -> Option<Command> {
        self.write.map(|(command, _)| command)
    }
}

/// Why a write happens now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteReason {
    /// Nothing written yet.
    First,
    /// The target moved by more than a step.
    Changed,
    /// The device's report does not match the last command.
    DeviceDiffers,
    /// `reassert` passed since the last write.
    Reassert,
    /// A direction change must wait: idle meanwhile.
    DirectionHold,
}

/// The signed power bounds in force: the configured limits, the device's
/// own, and the SoC bounds. The level is a rounded whole %: one at a bound
/// may be half a percent short of it, so only one past it stops (the
/// device's own `socSet`/`minSoc` stop it at the exact level); stopping at
/// the bound left up to 1 % of the battery unused every day.
fn bounds(limits: Limits, device: &DeviceState) -> (i64, i64, Option<Reason>) {
    let cap = |configured: u32, reported: Option<u32>| match reported {
        Some(r) if r > 0 => configured.min(r),
        _ => configured,
    };
    let mut max_charge = i64::from(cap(limits.max_charge_w, device.charge_max_w));
    let mut max_discharge = i64::from(cap(limits.max_discharge_w, device.discharge_max_w));
    let mut reason = None;
    if device.soc_pct > limits.max_soc_pct {
        max_charge = 0;
        reason = Some(Reason::SocMax);
    }
    if device.soc_pct < limits.min_soc_pct {
        max_discharge = 0;
        reason = Some(Reason::SocMin);
    }
    (-max_discharge, max_charge, reason)
}

/// The device's AC power at moment `at` (the latest reading not after it).
fn power_at(power: &[DevicePower], at: Moment) -> Option<i32> {
    power.iter().rev().find(|p| p.at <= at).map(|p| p.ac_w)
}

/// The device power during a window (the middle of its range), if it held
/// steady (within `step_w`)
/// and the readings cover the window's start, or `before_first` allows
/// taking the first reading for what came before it.
fn steady_power(
    power: &[DevicePower],
    (from, to): (Moment, Moment),
    step_w: u32,
    before_first: bool,
) -> Option<i32> {
    let start =
        power_at(power, from).or_else(|| power.first().filter(|_| before_first).map(|p| p.ac_w))?;
    let (lo, hi) = power
        .iter()
        .filter(|p| p.at > from && p.at <= to)
        .fold((start, start), |(lo, hi), p| {
            (lo.min(p.ac_w), hi.max(p.ac_w))
        });
    // The middle of what it did: a slow ramp within `step_w` (a small
    // change) is not taken for its first moment.
    (lo.abs_diff(hi) <= step_w).then_some(lo + (hi - lo) / 2)
}

/// What the device draws for itself (its idle draw, ~19 W on a SolarFlow):
/// its AC power minus the setpoint it reports carrying out, once the last
/// two power readings agree (not mid-ramp or waking). A difference beyond
/// `hysteresis_w` is no draw but a device held back (a SoC cut-off, its own
/// ceiling, standby): 0 then. So is a difference below 0 (charging less
/// than told) and one while told to discharge but delivering nothing: a
/// draw only adds to the AC power. At its own cut-off a device takes a small
/// setpoint and only draws for itself; read as a draw, the gap to the
/// setpoint moved the setpoint, and the law hunted. Without the draw the
/// setpoint that zeroes the AC side leaves the grid importing it for ever,
/// inside the deadband.
fn own_draw(inputs: &Inputs, device: &DeviceState) -> i64 {
    let [.., before, latest] = inputs.power else {
        return 0;
    };
    if before.ac_w.abs_diff(latest.ac_w) > inputs.tuning.step_w {
        return 0;
    }
    let setpoint = device.reported_setpoint_w();
    let draw = i64::from(device.ac_w) - setpoint;
    let delivering = setpoint >= 0 || device.ac_w < 0;
    if delivering && (0..=i64::from(inputs.tuning.hysteresis_w)).contains(&draw) {
        draw
    } else {
        0
    }
}

/// The NetZero setpoints from the unambiguous samples, newest first: the
/// device power that would have zeroed the grid a sample shows, less the
/// device's own draw, and the grid now as corrected by the device's change
/// since.
fn net_zero_targets<'a>(
    inputs: &'a Inputs<'a>,
    device: &'a DeviceState,
) -> impl Iterator<Item = (i64, i64)> + 'a {
    let fresh_after = inputs.now.minus(inputs.tuning.meter_timeout);
    let draw = own_draw(inputs, device);
    // Until it is told to move, the device is taken to have held its first
    // reading before it: at start the law acts on the first sample instead
    // of waiting out a window of readings (any move after the first reading
    // still shows and makes a sample ambiguous).
    let untouched = inputs.writes.last_nonzero.is_none();
    let moving = transient(inputs);
    inputs
        .samples
        .iter()
        .rev()
        .take_while(move |s| s.taken >= fresh_after)
        // A sample taken by the last change of command was known when it
        // was decided: judged again mid-transient it would only take the
        // decision back.
        .take_while(move |s| moving.is_none_or(|(from, _)| s.taken > from))
        .filter_map(move |s| {
            let window = inputs.lag.window(s.taken, inputs.tuning.meter_timeout);
            if moving.is_some_and(|(from, to)| window.1 >= from && window.0 < to) {
                return None;
            }
            let then = steady_power(inputs.power, window, inputs.tuning.step_w, untouched)?;
            let target = i64::from(then) - i64::from(s.grid_w) - draw;
            let grid_now = i64::from(s.grid_w) + i64::from(device.ac_w) - i64::from(then);
            Some((target, grid_now))
        })
}

/// The NetZero setpoint and the grid now, as the law judges them: from the
/// newest unambiguous sample when it asks for a big change (a load step
/// must be met at once), from the mean over all of them when the change is
/// small (within `hysteresis_w`): a house near the deadband with a little
/// noise would otherwise have single samples push a small command in and
/// out of idle, a reversal each time.
fn judged_target(inputs: &Inputs, device: &DeviceState, current_w: i64) -> Option<(i64, i64)> {
    let mut all = net_zero_targets(inputs, device);
    let (target, grid_now) = all.next()?;
    if target.abs_diff(current_w) > u64::from(inputs.tuning.hysteresis_w) {
        return Some((target, grid_now));
    }
    let (targets, grids, count) = all.fold(
        (target, grid_now, 1i64),
        |(targets, grids, count), (target, grid_now)| {
            (targets + target, grids + grid_now, count + 1)
        },
    );
    let mean = |sum: i64| (sum as f64 / count as f64).round() as i64;
    Some((mean(targets), mean(grids)))
}

/// Whether the meter has been heard from within `meter_timeout`.
fn meter_alive(inputs: &Inputs) -> bool {
    inputs
        .samples
        .last()
        .is_some_and(|s| inputs.now.since(s.taken) < inputs.tuning.meter_timeout)
}

/// The law.
pub fn decide(inputs: &Inputs) -> Decision {
    let Some(device) = inputs.device else {
        return Decision {
            target: Command::Idle,
            reason: Reason::DeviceUnknown,
            write: None,
        };
    };
    let (lo, hi, soc_reason) = bounds(inputs.limits, &device);
    let current = inputs.writes.last_command();
    let current_w = current.map_or(0, Command::setpoint_w);
    let (wanted, mut reason) = match inputs.value {
        ScheduleValue::Watts(w) => (i64::from(w), Reason::Fixed),
        ScheduleValue::NetZero | ScheduleValue::NetZeroPlus if !meter_alive(inputs) => {
            (0, Reason::MeterLost)
        }
        ScheduleValue::NetZero | ScheduleValue::NetZeroPlus => {
            // NetZero+ never discharges, whatever was commanded before.
            let floor = if inputs.value == ScheduleValue::NetZeroPlus {
                0
            } else {
                i64::MIN
            };
            let (wanted, reason) = match judged_target(inputs, &device, current_w) {
                None => (current_w, Reason::WaitingForMeter),
                Some((target, grid_now))
                    if grid_now.unsigned_abs() <= u64::from(inputs.tuning.deadband_w) =>
                {
                    // Inside the deadband the setpoint stays, but the
                    // re-assertion, written anyway, carries the exact
                    // target on the same side of zero: a rest inside the
                    // deadband costs energy all the while, and no extra write.
                    let reassert_due = inputs
                        .writes
                        .last
                        .is_some_and(|(at, _)| inputs.now.since(at) >= inputs.tuning.reassert);
                    let same_side =
                        target.signum() == current_w.signum() && target.max(floor) == target;
                    let kept = if reassert_due && same_side {
                        target
                    } else {
                        current_w
                    };
                    (kept, Reason::Deadband)
                }
                Some((target, _)) => {
                    let target = target.max(floor);
                    // Crossing zero needs a clear reason; a small opposite
                    // target idles instead of clicking the relay.
                    let crosses = (current_w > 0 && target < 0) || (current_w < 0 && target > 0);
                    let target = if crosses
                        && target.unsigned_abs() < u64::from(inputs.tuning.hysteresis_w)
                    {
                        0
                    } else {
                        target
                    };
                    (target, Reason::Tracking)
                }
            };
            (wanted.max(floor), reason)
        }
    };
    let clamped = wanted.clamp(lo, hi);
    if clamped != wanted
        && let Some(soc) = soc_reason
        && ((soc == Reason::SocMin && wanted < 0) || (soc == Reason::SocMax && wanted > 0))
    {
        reason = soc;
    }
    let target = Command::from_setpoint(clamped);
    Decision {
        target,
        reason,
        write: schedule_write(inputs, &device, target, (lo, hi)),
    }
}

/// Applies the write-rate rules to a target.
fn schedule_write(
    inputs: &Inputs,
    device: &DeviceState,
    target: Command,
    (lo, hi): (i64, i64),
) -> Option<(Command, WriteReason)> {
    let tuning = inputs.tuning;
    let now = inputs.now;
    let Some((last_at, last)) = inputs.writes.last else {
        return gate(inputs, target, WriteReason::First);
    };
    // At its own cut-off the device follows no setpoint that way: another
    // one changes nothing but the count of writes (15-25 a day at a full
    // battery); idle or the other direction it does follow.
    let target = match target.ac_mode() {
        Some(mode) if last.ac_mode() == Some(mode) && at_cut_off(inputs, device, mode) => last,
        _ => target,
    };
    // A last command now beyond the bounds (SoC, a lowered device limit)
    // is never re-asserted: the target replaces it.
    let moved = !(lo..=hi).contains(&last.setpoint_w())
        || target.setpoint_w().abs_diff(last.setpoint_w()) > u64::from(tuning.step_w)
        || (target.is_idle() != last.is_idle())
        || (target.ac_mode().is_some() && target.ac_mode() != last.ac_mode());
    if moved {
        return gate(inputs, target, WriteReason::Changed);
    }
    // Keep writing the last command, not a target within a step of it, so
    // small drifts never cause writes.
    if device.read > last_at && !device.carries_out(last, tuning.step_w) {
        return gate(inputs, last, WriteReason::DeviceDiffers);
    }
    if now.since(last_at) >= tuning.reassert {
        // The target is within a step of the last command here (the law
        // refines it in the deadband on re-assertion only).
        return gate(inputs, target, WriteReason::Reassert);
    }
    None
}

/// Whether the device stands at its own SoC cut-off for `mode`: the level
/// at the bound, and no more than its own draw (`hysteresis_w`) that way.
fn at_cut_off(inputs: &Inputs, device: &DeviceState, mode: AcMode) -> bool {
    let still = i64::from(inputs.tuning.hysteresis_w);
    match mode {
        AcMode::Charge => {
            device.soc_pct >= inputs.limits.max_soc_pct && i64::from(device.ac_w) <= still
        }
        AcMode::Discharge => {
            device.soc_pct <= inputs.limits.min_soc_pct && i64::from(device.ac_w) >= -still
        }
    }
}

/// The rate rules for one write: 0 W any time; other limits at most every
/// `min_write_interval`, counted from the last change of command (an idle
/// write included: a command right after it would change the setpoint
/// twice within the interval); a direction change at most every
/// `min_direction_change` (idle meanwhile). A repeat of the command in
/// force (the re-assertion, a device that dropped it) changes no setpoint
/// and starts no interval: counted, every re-assertion held the answer to
/// a load step that followed it back by up to the whole interval.
fn gate(inputs: &Inputs, command: Command, why: WriteReason) -> Option<(Command, WriteReason)> {
    if command.is_idle() {
        return Some((command, why));
    }
    let now = inputs.now;
    let tuning = inputs.tuning;
    if let (Some(mode), Some((old, since))) = (command.ac_mode(), inputs.writes.ac_mode)
        && mode != old
        && now.since(since) < tuning.min_direction_change
    {
        let already_idle = inputs.writes.last_command() == Some(Command::Idle);
        return (!already_idle).then_some((Command::Idle, WriteReason::DirectionHold));
    }
    if inputs
        .writes
        .change
        .is_some_and(|(at, _)| now.since(at) < tuning.min_write_interval)
    {
        return None;
    }
    Some((command, why))
}

/// Estimates the meter's lag: the candidate lag (0 to `max_lag` in steps of
/// `step`) under which the house power implied by each sample
/// (`grid - device power at taken - lag`) varies least. Every candidate is
/// scored on the same samples, those the device readings cover at the
/// longest lag: a sample left out for some lags only would favour them.
/// Only meaningful when the device power moved by more than `min_swing_w`
/// between the oldest of those samples and `max_lag` before the newest,
/// and held within `max_lag` of both ends; `None` otherwise. The `current`
/// estimate stays unless another lag explains the readings better by more
/// than `min_swing_w` (one device step left uncancelled): readings sampled
/// mid-ramp or a house step next to a device step must not move it. No lag
/// is learnt from readings that do not single one out by that margin.
///
/// Only a step the controller caused is evidence: the device must hold
/// still from `max_lag` before the samples until the first change of
/// command among `changes` and answer it within `answer_within`, in the
/// middle. A device that
/// moves on its own (at its SoC cut-off, in a slot where it ignores
/// setpoints) may be reported late or not at all, and such a window once
/// pulled a 20 s estimate under 10 s. The answer names that change, so
/// that `confirm_lag` can tell one step from another.
pub fn estimate_lag(
    samples: &[Sample],
    power: &[DevicePower],
    (changes, answer_within): (&[Moment], Duration),
    current: Option<Duration>,
    (max_lag, step): (Duration, Duration),
    min_swing_w: u32,
) -> Option<LagSeen> {
    if step.is_zero() {
        return None;
    }
    let covered_from = Moment(power.first()?.at.0 + max_lag);
    let samples: Vec<&Sample> = samples.iter().filter(|s| s.taken >= covered_from).collect();
    if samples.len() < 4 {
        return None;
    }
    let first = samples.first()?.taken;
    let last = samples.last()?.taken;
    let swing = |from: Moment, to: Moment| {
        let (lo, hi) = power
            .iter()
            .filter(|p| p.at >= from && p.at <= to)
            .fold((i32::MAX, i32::MIN), |(lo, hi), p| {
                (lo.min(p.ac_w), hi.max(p.ac_w))
            });
        if lo > hi { 0 } else { lo.abs_diff(hi) }
    };
    // Every candidate must see each device change both in the readings and
    // in the device power it subtracts: a change within `max_lag` of either
    // end of the samples shows under some lags only, and makes them look
    // better than they are. So the device moved in the middle, not at the
    // ends.
    let middle = (first, last.minus(max_lag));
    if middle.0 >= middle.1
        || swing(middle.0, middle.1) <= min_swing_w
        || swing(first.minus(max_lag), first) > min_swing_w
        || swing(middle.1, last) > min_swing_w
    {
        return None;
    }
    let cause = changes
        .iter()
        .copied()
        .find(|&c| c > first.minus(max_lag) && c <= middle.1)?;
    // From the power in force at `cause` to the first reading that shows
    // the answer.
    let answered = power_at(power, cause).is_some_and(|before| {
        power
            .iter()
            .filter(|p| p.at > cause && p.at <= Moment(cause.0 + answer_within))
            .any(|p| p.ac_w.abs_diff(before) > min_swing_w)
    });
    if swing(first.minus(max_lag), cause) > min_swing_w || !answered {
        return None;
    }
    let score = |lag: Duration| {
        let house: Vec<f64> = samples
            .iter()
            .filter_map(|s| {
                power_at(power, s.taken.minus(lag)).map(|p| f64::from(s.grid_w) - f64::from(p))
            })
            .collect();
        (house.len() == samples.len()).then(|| spread(&house))
    };
    let steps = (max_lag.as_secs_f64() / step.as_secs_f64()).floor() as u32;
    let scores: Vec<(Duration, f64)> = (0..=steps)
        .map(|i| step * i)
        .filter_map(|lag| score(lag).map(|s| (lag, s)))
        .collect();
    let &(best, best_score) = scores.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let margin = f64::from(min_swing_w);
    // A lag is only learnt when it explains the readings clearly better
    // than every lag more than two steps away (readings taken at odd
    // moments blur a device step over a step or two, no further).
    let clear = scores
        .iter()
        .filter(|(lag, _)| lag.abs_diff(best) > step * 2)
        .all(|(_, s)| *s - best_score > margin);
    let lag = match current.and_then(|c| score(c).map(|s| (c, s))) {
        Some((kept, kept_score)) if !clear || kept_score - best_score <= margin => Some(kept),
        _ => clear.then_some(best),
    }?;
    Some(LagSeen { lag, cause })
}

/// What one window of readings says: the lag that explains the device's
/// answer to the change of command at `cause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagSeen {
    pub lag: Duration,
    pub cause: Moment,
}

/// The lag in use after `seen`, and the evidence still waiting for a
/// second opinion. The first estimate is taken at once (nothing better is
/// known); a different one only once the answers to two different changes
/// of command agree on it within `tolerance`: one step read at odd moments
/// (a loaded machine, a slow answer) must not move a lag that every step
/// before confirmed.
pub fn confirm_lag(
    current: Option<Duration>,
    pending: Option<LagSeen>,
    seen: LagSeen,
    tolerance: Duration,
) -> (Option<Duration>, Option<LagSeen>) {
    match (current, pending) {
        (None, _) => (Some(seen.lag), None),
        (Some(c), _) if c.abs_diff(seen.lag) <= tolerance => (current, None),
        (_, Some(p)) if p.cause != seen.cause && p.lag.abs_diff(seen.lag) <= tolerance => {
            (Some(seen.lag), None)
        }
        _ => (current, Some(seen)),
    }
}

/// Sum of absolute differences between successive values: small when the
/// device's own steps cancel out.
fn spread(values: &[f64]) -> f64 {
    values.windows(2).map(|w| (w[1] - w[0]).abs()).sum()
}

#[cfg(test)]
mod tests;
