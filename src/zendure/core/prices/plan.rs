//! A day's schedule from prices: charge when power is cheap, discharge when
//! it is dear, only when it pays. Pure: slots and a battery in, one value
//! per slot out, plus the simulation that scores any schedule with the same
//! battery model.
//!
//! The battery model: charging at P W for h hours stores P·h·√η Wh,
//! discharging at P W for h hours takes P·h/√η Wh from the store (η the
//! round-trip efficiency); power is capped by the limits, and a slot that
//! would pass `min_soc`/`max_soc` runs at the power that reaches it exactly.
//! The grid carries house load − PV + battery power; import costs the buy
//! price and export earns the sell price.
//!
//! What the plan optimises (and [`simulate`] reports): the grid cost, minus
//! the energy left in the store at the end (or plus what was taken from it),
//! valued at the horizon's lowest buy price after the discharge loss, so
//! that emptying the battery is not counted as pure gain and nothing is
//! bought on a bet about prices not yet known. The planner also charges itself
//! `threshold_eur_per_kwh` for every kWh it buys into the battery, so a
//! trade is made only when its margin after losses beats the threshold.
//!
//! Method: dynamic programming over the stored energy in ~240 levels
//! anchored at the starting state, every move between levels the power
//! limits allow, one pass backwards over the slots. A move of k levels is a
//! power that is exact for that level step, so the plan is optimal for the
//! model up to the level size. With a house forecast, NetZero (the battery
//! follows the house within its limits) is a decision too; its effect is
//! rounded to the nearest level.

use crate::zendure::core::schedule::ScheduleValue;

/// The battery as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Battery {
    pub capacity_wh: f64,
    pub min_soc_percent: f64,
    pub max_soc_percent: f64,
    pub max_charge_w: f64,
    pub max_discharge_w: f64,
    /// Energy out / energy in over a full cycle, 0 < η <= 1.
    pub round_trip_efficiency: f64,
}

impl Battery {
    fn leg_efficiency(&self) -> f64 {
        self.round_trip_efficiency.sqrt()
    }

    fn stored_wh(&self, soc_percent: f64) -> f64 {
        self.capacity_wh * soc_percent / 100.0
    }

    fn min_wh(&self) -> f64 {
        self.stored_wh(self.min_soc_percent)
    }

    fn max_wh(&self) -> f64 {
        self.stored_wh(self.max_soc_percent)
    }
}

/// One interval to plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub hours: f64,
    pub buy_eur_per_kwh: f64,
    pub sell_eur_per_kwh: f64,
    /// Expected house load minus PV, W (positive: the house would import);
    /// 0 when no forecast is given.
    pub house_w: f64,
    /// The owner's value for this slot: the plan keeps it and plans around it.
    pub fixed: Option<ScheduleValue>,
}

/// A schedule played on the battery model.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Grid cost minus the value of the energy the store gained.
    pub net_cost_eur: f64,
    /// `net_cost_eur` of leaving the battery at 0 W in every slot the owner
    /// did not fix, minus this one's.
    pub saving_eur: f64,
    pub charged_kwh: f64,
    pub discharged_kwh: f64,
    pub end_soc_percent: f64,
}

/// One slot of a plan: its value and the SoC it is expected to end at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planned {
    pub value: ScheduleValue,
    pub soc_percent: f64,
}

/// The plan: one record per slot (the owner's value where it was fixed),
/// and what the whole is expected to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub slots: Vec<Planned>,
    pub expected: Outcome,
}

impl Plan {
    pub fn values(&self) -> Vec<ScheduleValue> {
        self.slots.iter().map(|s| s.value).collect()
    }
}

/// The battery's AC power in a slot (positive: charging) and the energy
/// stored after it.
fn step(battery: &Battery, stored_wh: f64, value: ScheduleValue, slot: &Slot) -> (f64, f64) {
    let wanted = match value {
        ScheduleValue::Watts(w) => f64::from(w),
        ScheduleValue::NetZero => -slot.house_w,
        ScheduleValue::NetZeroPlus => (-slot.house_w).max(0.0),
    };
    let eff = battery.leg_efficiency();
    let h = slot.hours;
    if wanted > 0.0 && h > 0.0 {
        let room = (battery.max_wh() - stored_wh).max(0.0);
        let power = wanted.min(battery.max_charge_w).min(room / (eff * h));
        (power, stored_wh + power * h * eff)
    } else if wanted < 0.0 && h > 0.0 {
        let available = (stored_wh - battery.min_wh()).max(0.0);
        let power = (-wanted)
            .min(battery.max_discharge_w)
            .min(available * eff / h);
        (-power, stored_wh - power * h / eff)
    } else {
        (0.0, stored_wh)
    }
}

/// The grid cost of a slot in which the battery draws `battery_w`.
fn grid_cost(slot: &Slot, battery_w: f64) -> f64 {
    let grid_w = slot.house_w + battery_w;
    let kwh = grid_w * slot.hours / 1000.0;
    if kwh > 0.0 {
        kwh * slot.buy_eur_per_kwh
    } else {
        kwh * slot.sell_eur_per_kwh
    }
}

/// What a Wh left in the store is worth: the horizon's lowest buy price
/// (never below 0), after the discharge loss. Energy could always have been
/// bought then, so the plan never buys to hold for a later day it cannot
/// see, and energy it had at the start is spent where it earns the most.
fn stored_value_eur_per_wh(battery: &Battery, slots: &[Slot]) -> f64 {
    let lowest = slots
        .iter()
        .map(|s| s.buy_eur_per_kwh)
        .fold(f64::INFINITY, f64::min);
    if lowest.is_finite() {
        lowest.max(0.0) * battery.leg_efficiency() / 1000.0
    } else {
        0.0
    }
}

/// Plays `values` (one per slot) from `soc_percent` on the battery model.
pub fn simulate(
    battery: &Battery,
    soc_percent: f64,
    slots: &[Slot],
    values: &[ScheduleValue],
) -> Outcome {
    played(battery, soc_percent, slots, values).expected
}

/// [`simulate`], slot by slot: `values` as a plan.
pub fn played(
    battery: &Battery,
    soc_percent: f64,
    slots: &[Slot],
    values: &[ScheduleValue],
) -> Plan {
    assert_eq!(slots.len(), values.len(), "one value per slot");
    let nothing: Vec<ScheduleValue> = slots
        .iter()
        .map(|s| s.fixed.unwrap_or(ScheduleValue::Watts(0)))
        .collect();
    let (baseline, _) = play(battery, soc_percent, slots, &nothing);
    let (mut expected, soc) = play(battery, soc_percent, slots, values);
    expected.saving_eur = baseline.net_cost_eur - expected.net_cost_eur;
    Plan {
        slots: values
            .iter()
            .zip(soc)
            .map(|(&value, soc_percent)| Planned { value, soc_percent })
            .collect(),
        expected,
    }
}

/// The outcome, and the SoC at the end of each slot.
fn play(
    battery: &Battery,
    soc_percent: f64,
    slots: &[Slot],
    values: &[ScheduleValue],
) -> (Outcome, Vec<f64>) {
    let start_wh = battery.stored_wh(soc_percent);
    let mut stored = start_wh;
    let (mut cost, mut charged, mut discharged) = (0.0, 0.0, 0.0);
    let mut soc = Vec::with_capacity(slots.len());
    for (slot, value) in slots.iter().zip(values) {
        let (power, next) = step(battery, stored, *value, slot);
        cost += grid_cost(slot, power);
        let kwh = power * slot.hours / 1000.0;
        if kwh > 0.0 {
            charged += kwh;
        } else {
            discharged -= kwh;
        }
        stored = next;
        soc.push(percent(battery, stored));
    }
    let outcome = Outcome {
        net_cost_eur: cost - (stored - start_wh) * stored_value_eur_per_wh(battery, slots),
        saving_eur: 0.0,
        charged_kwh: charged,
        discharged_kwh: discharged,
        end_soc_percent: percent(battery, stored),
    };
    (outcome, soc)
}

fn percent(battery: &Battery, stored_wh: f64) -> f64 {
    if battery.capacity_wh > 0.0 {
        stored_wh / battery.capacity_wh * 100.0
    } else {
        0.0
    }
}

/// At most this many steps between the lowest and highest level: fine enough
/// to lose little, small enough to plan a quarter-hourly day in milliseconds.
const LEVEL_STEPS: f64 = 240.0;

/// The stored-energy levels the planner moves between.
struct Levels {
    step_wh: f64,
    /// The level of the starting state.
    start: usize,
    count: usize,
    /// Levels below this one are under `min_soc` (reachable only by starting
    /// there); levels above `top` are over `max_soc`.
    bottom: usize,
    top: usize,
    start_wh: f64,
}

impl Levels {
    fn new(battery: &Battery, start_wh: f64, steps: f64) -> Levels {
        let (lo, hi) = (battery.min_wh(), battery.max_wh());
        let low = lo.min(start_wh);
        let high = hi.max(start_wh);
        let step_wh = ((high - low) / steps).max(1e-6);
        let below = ((start_wh - low) / step_wh + 1e-9).floor() as usize;
        let above = ((high - start_wh) / step_wh + 1e-9).floor() as usize;
        let count = below + above + 1;
        let levels = |wh: f64| (wh - start_wh) / step_wh + below as f64;
        let bottom = (levels(lo) - 1e-9).ceil().max(0.0) as usize;
        let top = (levels(hi) + 1e-9).floor().max(0.0) as usize;
        Levels {
            step_wh,
            start: below,
            count,
            bottom: bottom.min(count - 1),
            top: top.min(count - 1),
            start_wh,
        }
    }

    fn wh(&self, level: usize) -> f64 {
        self.start_wh + (level as f64 - self.start as f64) * self.step_wh
    }

    fn nearest(&self, wh: f64) -> usize {
        let level = ((wh - self.start_wh) / self.step_wh + self.start as f64).round();
        level.clamp(0.0, (self.count - 1) as f64) as usize
    }
}

/// A move between levels in one slot: the battery power and what it costs
/// the plan (grid cost plus the threshold on bought energy).
fn move_cost(
    battery: &Battery,
    levels: &Levels,
    slot: &Slot,
    from: usize,
    to: usize,
    threshold_eur_per_kwh: f64,
) -> (f64, f64) {
    let eff = battery.leg_efficiency();
    let delta_wh = (to as f64 - from as f64) * levels.step_wh;
    let power = if delta_wh > 0.0 {
        delta_wh / (eff * slot.hours)
    } else {
        delta_wh * eff / slot.hours
    };
    let bought_kwh = power.max(0.0) * slot.hours / 1000.0;
    (
        power,
        grid_cost(slot, power) + bought_kwh * threshold_eur_per_kwh,
    )
}

/// The moves the limits allow from `from` in a free slot.
fn reachable(battery: &Battery, levels: &Levels, slot: &Slot, from: usize) -> (usize, usize) {
    let eff = battery.leg_efficiency();
    let up = (battery.max_charge_w * slot.hours * eff / levels.step_wh + 1e-9).floor() as usize;
    let down =
        (battery.max_discharge_w * slot.hours / eff / levels.step_wh + 1e-9).floor() as usize;
    let low = if from > levels.bottom {
        from.saturating_sub(down).max(levels.bottom)
    } else {
        from
    };
    let high = if from < levels.top {
        (from + up).min(levels.top)
    } else {
        from
    };
    (low, high)
}

/// The level a value (the owner's, or NetZero) leads to, the battery power
/// and the grid cost.
fn fixed_move(
    battery: &Battery,
    levels: &Levels,
    slot: &Slot,
    from: usize,
    value: ScheduleValue,
) -> (usize, f64, f64) {
    let (power, after) = step(battery, levels.wh(from), value, slot);
    (levels.nearest(after), power, grid_cost(slot, power))
}

/// A slot's decision from one level: the level it leads to, and whether by
/// NetZero (rather than a fixed power).
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    to: usize,
    netzero: bool,
}

/// The cheapest schedule for `slots` from `soc_percent` (see the module doc).
/// Ties go to holding, so a trade is planned only when it strictly gains.
pub fn plan(
    battery: &Battery,
    soc_percent: f64,
    slots: &[Slot],
    threshold_eur_per_kwh: f64,
) -> Plan {
    plan_on(
        battery,
        soc_percent,
        slots,
        threshold_eur_per_kwh,
        LEVEL_STEPS,
    )
}

/// [`plan`], with one value for every slot in `together` (the hour that
/// repeats when clocks go back: a wall-clock schedule key cannot tell its two
/// occurrences apart, so whatever it says holds for both). The candidates
/// are holding and every eighth of each power limit; the DP plans the rest
/// of the day around each, and the cheapest wins.
pub fn plan_together(
    battery: &Battery,
    soc_percent: f64,
    slots: &[Slot],
    threshold_eur_per_kwh: f64,
    together: &[usize],
) -> Plan {
    let free: Vec<usize> = together
        .iter()
        .copied()
        .filter(|i| slots[*i].fixed.is_none())
        .collect();
    if free.is_empty() {
        return plan(battery, soc_percent, slots, threshold_eur_per_kwh);
    }
    let eighths = |limit: f64, sign: f64| {
        (1..=8)
            .map(move |k| ScheduleValue::Watts((sign * limit * f64::from(k) / 8.0).round() as i32))
    };
    let candidates = std::iter::once(ScheduleValue::Watts(0))
        .chain(eighths(battery.max_charge_w, 1.0))
        .chain(eighths(battery.max_discharge_w, -1.0));
    let objective =
        |p: &Plan| p.expected.net_cost_eur + p.expected.charged_kwh * threshold_eur_per_kwh;
    let (held, best) = candidates
        .map(|value| {
            let mut tied = slots.to_vec();
            for i in &free {
                tied[*i].fixed = Some(value);
            }
            let p = plan(battery, soc_percent, &tied, threshold_eur_per_kwh);
            // Scored against doing nothing in those slots, as any plan is.
            (value, played(battery, soc_percent, slots, &p.values()))
        })
        .fold(
            None,
            |kept: Option<(ScheduleValue, Plan)>, (value, p)| match kept {
                // Ties go to the earlier candidate: holding first.
                Some(k) if objective(&k.1) <= objective(&p) + 1e-9 => Some(k),
                _ => Some((value, p)),
            },
        )
        .expect("at least one candidate");
    if held != ScheduleValue::Watts(0) {
        return best;
    }
    // Holding reads as the other holding slots do: NetZero+ while energy
    // waits for a later discharge, NetZero otherwise.
    let mut values = best.values();
    let last = *free.iter().max().expect("not empty");
    let discharges_later = values[last + 1..]
        .iter()
        .any(|v| matches!(v, ScheduleValue::Watts(w) if *w < 0));
    let hold = if discharges_later {
        ScheduleValue::NetZeroPlus
    } else {
        ScheduleValue::NetZero
    };
    for i in &free {
        values[*i] = hold;
    }
    played(battery, soc_percent, slots, &values)
}

fn plan_on(
    battery: &Battery,
    soc_percent: f64,
    slots: &[Slot],
    threshold_eur_per_kwh: f64,
    steps: f64,
) -> Plan {
    let start_wh = battery.stored_wh(soc_percent);
    let levels = Levels::new(battery, start_wh, steps);
    let worth = stored_value_eur_per_wh(battery, slots);
    let usable = battery.capacity_wh > 0.0
        && battery.round_trip_efficiency > 0.0
        && slots.iter().all(|s| s.hours > 0.0);
    // Cost-to-go from each level, starting from the value of what is left.
    let mut to_go: Vec<f64> = (0..levels.count)
        .map(|l| -(levels.wh(l) - start_wh) * worth)
        .collect();
    let mut choice = vec![vec![Step::default(); levels.count]; slots.len()];
    for (t, slot) in slots.iter().enumerate().rev() {
        let mut here = vec![f64::INFINITY; levels.count];
        for from in 0..levels.count {
            let (step, best) = match slot.fixed {
                Some(value) => {
                    let (to, _, cost) = fixed_move(battery, &levels, slot, from, value);
                    (Step { to, netzero: false }, cost + to_go[to])
                }
                None => {
                    let hold = move_cost(battery, &levels, slot, from, from, 0.0).1 + to_go[from];
                    let mut best = (
                        Step {
                            to: from,
                            netzero: false,
                        },
                        hold,
                    );
                    // With a forecast, NetZero follows the house; without one
                    // it is the same as holding.
                    if usable && slot.house_w != 0.0 {
                        let (to, power, cost) =
                            fixed_move(battery, &levels, slot, from, ScheduleValue::NetZero);
                        let bought_kwh = power.max(0.0) * slot.hours / 1000.0;
                        let total = cost + bought_kwh * threshold_eur_per_kwh + to_go[to];
                        if total <= best.1 + 1e-9 {
                            best = (Step { to, netzero: true }, total);
                        }
                    }
                    if usable {
                        let (low, high) = reachable(battery, &levels, slot, from);
                        for to in (low..=high).filter(|to| *to != from) {
                            let (_, cost) =
                                move_cost(battery, &levels, slot, from, to, threshold_eur_per_kwh);
                            let total = cost + to_go[to];
                            // Strictly better by more than rounding noise.
                            if total < best.1 - 1e-9 {
                                best = (Step { to, netzero: false }, total);
                            }
                        }
                    }
                    best
                }
            };
            here[from] = best;
            choice[t][from] = step;
        }
        to_go = here;
    }
    let mut path = Vec::with_capacity(slots.len());
    let mut level = levels.start;
    for steps in &choice {
        let step = steps[level];
        path.push((level, step));
        level = step.to;
    }
    let values = label(battery, &levels, slots, &path);
    played(battery, soc_percent, slots, &values)
}

/// Turns the decisions into schedule values. A slot that holds gets
/// NetZero+ while energy waits for a later discharge (it may still soak up
/// PV export, never spends the store) and NetZero otherwise; with a forecast
/// a holding slot gets the value that holds for that forecast (NetZero+ while
/// the house imports, 0 W while it exports).
fn label(
    battery: &Battery,
    levels: &Levels,
    slots: &[Slot],
    path: &[(usize, Step)],
) -> Vec<ScheduleValue> {
    let mut discharge_later = false;
    let mut values = vec![ScheduleValue::NetZero; slots.len()];
    for (t, (slot, &(from, step))) in slots.iter().zip(path).enumerate().rev() {
        values[t] = match slot.fixed {
            Some(value) => value,
            None if step.netzero => ScheduleValue::NetZero,
            None if step.to == from => {
                if slot.house_w > 0.0 || (slot.house_w == 0.0 && discharge_later) {
                    ScheduleValue::NetZeroPlus
                } else if slot.house_w == 0.0 {
                    ScheduleValue::NetZero
                } else {
                    ScheduleValue::Watts(0)
                }
            }
            None => {
                let (power, _) = move_cost(battery, levels, slot, from, step.to, 0.0);
                let limit = if power > 0.0 {
                    battery.max_charge_w
                } else {
                    battery.max_discharge_w
                };
                let watts = power.round().clamp(-limit, limit);
                ScheduleValue::Watts(watts as i32)
            }
        };
        if step.to < from {
            discharge_later = true;
        } else if step.to > from {
            discharge_later = false;
        }
    }
    values
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A SolarFlow-sized battery the planner's tests and the schedule's
    /// share.
    pub(crate) const BATTERY: Battery = Battery {
        capacity_wh: 2000.0,
        min_soc_percent: 10.0,
        max_soc_percent: 100.0,
        max_charge_w: 800.0,
        max_discharge_w: 800.0,
        round_trip_efficiency: 0.81,
    };

    fn hours(prices: &[f64]) -> Vec<Slot> {
        prices
            .iter()
            .map(|p| Slot {
                hours: 1.0,
                buy_eur_per_kwh: *p,
                sell_eur_per_kwh: *p,
                house_w: 0.0,
                fixed: None,
            })
            .collect()
    }

    fn watts(values: &[ScheduleValue]) -> Vec<i32> {
        values
            .iter()
            .map(|v| match v {
                ScheduleValue::Watts(w) => *w,
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn flat_prices_plan_nothing() {
        let slots = hours(&[0.25; 24]);
        let p = plan(&BATTERY, 10.0, &slots, 0.0);
        assert!(
            p.values().iter().all(|v| *v == ScheduleValue::NetZero),
            "{:?}",
            p.values()
        );
        assert_eq!(p.expected.saving_eur, 0.0);
    }

    #[test]
    fn cheap_then_dear_charges_then_discharges() {
        // 0.72 kWh stored per full-power hour (√0.81 = 0.9): two cheap hours
        // store 1.44 kWh (10% -> 82%), which gives 1.296 kWh in the two
        // dear hours.
        let slots = hours(&[0.45, 0.10, 0.10, 0.45, 0.50, 0.50, 0.30]);
        let p = plan(&BATTERY, 10.0, &slots, 0.02);
        let w = watts(&p.values());
        assert!(w[1] > 700 && w[2] > 700, "{w:?}");
        assert!(w[4] < -700 && w[5] < -400, "{w:?}");
        assert!((p.expected.discharged_kwh - 1.296).abs() < 0.01);
        assert_eq!(w[0], 0);
        // Energy that is bought waits under NetZero+ for its discharge.
        assert_eq!(p.values()[3], ScheduleValue::NetZeroPlus);
        assert_eq!(p.values()[6], ScheduleValue::NetZero);
        assert!(p.expected.saving_eur > 0.2, "{:?}", p.expected);
        assert!(p.expected.end_soc_percent < 10.5);
    }

    #[test]
    fn dear_before_cheap_is_no_trade_from_empty() {
        // The reference rule would pair these; from an empty battery the
        // discharge cannot come first.
        let slots = hours(&[0.50, 0.50, 0.10, 0.10]);
        let p = plan(&BATTERY, 10.0, &slots, 0.02);
        let w = watts(&p.values());
        assert!(w[0] == 0 && w[1] == 0, "{w:?}");
    }

    #[test]
    fn margin_below_losses_plus_threshold_is_not_traded() {
        // 0.81 × 0.30 − 0.22 = 0.023: above a 0.02 threshold, not above 0.03.
        let slots = hours(&[0.22, 0.30, 0.22, 0.30]);
        let traded = plan(&BATTERY, 10.0, &slots, 0.02);
        assert!(traded.expected.charged_kwh > 0.0);
        let idle = plan(&BATTERY, 10.0, &slots, 0.03);
        assert_eq!(idle.expected.charged_kwh, 0.0, "{:?}", idle.values());
    }

    #[test]
    fn a_full_battery_sells_at_the_peak_and_buys_back() {
        let slots = hours(&[0.30, 0.60, 0.10, 0.30]);
        let p = plan(&BATTERY, 100.0, &slots, 0.02);
        let w = watts(&p.values());
        assert!(w[1] < 0 && w[2] > 0, "{w:?}");
        assert!(p.expected.saving_eur > 0.0);
    }

    #[test]
    fn owner_slots_are_kept_and_planned_around() {
        let mut slots = hours(&[0.10, 0.30, 0.50, 0.50]);
        slots[2].fixed = Some(ScheduleValue::Watts(0));
        let p = plan(&BATTERY, 10.0, &slots, 0.02);
        assert_eq!(p.values()[2], ScheduleValue::Watts(0));
        // Charged energy goes out in the one dear hour left.
        let w = watts(&p.values());
        assert!(w[0] > 0 && w[3] < 0, "{w:?}");
    }

    #[test]
    fn negative_prices_are_used_to_charge() {
        let slots = hours(&[0.20, -0.05, -0.05, 0.20, 0.20]);
        let p = plan(&BATTERY, 10.0, &slots, 0.02);
        let w = watts(&p.values());
        assert!(w[1] > 0 && w[2] > 0, "{w:?}");
    }

    #[test]
    fn quarter_hours_scale_the_power() {
        let slots: Vec<Slot> = hours(&[0.10, 0.10, 0.10, 0.10, 0.50, 0.50, 0.50, 0.50])
            .into_iter()
            .map(|s| Slot { hours: 0.25, ..s })
            .collect();
        let p = plan(&BATTERY, 10.0, &slots, 0.02);
        let w = watts(&p.values());
        assert!(w[..4].iter().all(|w| *w > 700), "{w:?}");
        // 4 × 0.25 h × 800 W × 0.9 = 720 Wh stored, out at 0.9 in 4 quarters:
        // 648 Wh AC = 648 W average.
        assert!(w[4..].iter().all(|w| *w < 0), "{w:?}");
        let out: f64 = p.expected.discharged_kwh;
        assert!((out - 0.648).abs() < 0.01, "{out}");
    }

    #[test]
    fn export_at_a_lower_price_with_a_house_load() {
        // With export at a low price, discharging beyond the house load pays
        // little: the plan covers the house's 300 W with NetZero, and buys
        // only what that takes.
        let mut slots = hours(&[0.10, 0.10, 0.50]);
        for s in &mut slots {
            s.sell_eur_per_kwh = 0.05;
            s.house_w = 300.0;
        }
        let p = plan(&BATTERY, 10.0, &slots, 0.02);
        let w = watts(&p.values());
        assert_eq!(p.values()[2], ScheduleValue::NetZero, "{:?}", p.values());
        assert!(
            (0.29..0.31).contains(&p.expected.discharged_kwh),
            "{:?}",
            p.expected
        );
        assert!(w[0] + w[1] < 400, "{w:?}");
    }

    #[test]
    fn a_forecast_export_is_soaked_up_for_the_evening() {
        // PV exports 600 W at midday for little; the evening is dear.
        let mut slots = hours(&[0.30, 0.30, 0.30, 0.40]);
        for s in &mut slots {
            s.sell_eur_per_kwh = 0.02;
        }
        slots[1].house_w = -600.0;
        slots[3].house_w = 400.0;
        let p = plan(&BATTERY, 10.0, &slots, 0.02);
        assert_eq!(p.values()[1], ScheduleValue::NetZero, "{:?}", p.values());
        assert_eq!(p.values()[3], ScheduleValue::NetZero, "{:?}", p.values());
        assert!(p.expected.saving_eur > 0.1, "{:?}", p.expected);
    }

    #[test]
    fn no_capacity_or_no_slots() {
        let empty = Battery {
            capacity_wh: 0.0,
            ..BATTERY
        };
        let slots = hours(&[0.1, 0.9]);
        assert!(
            plan(&empty, 10.0, &slots, 0.0)
                .values()
                .iter()
                .all(|v| *v == ScheduleValue::NetZero)
        );
        assert!(plan(&BATTERY, 10.0, &[], 0.0).values().is_empty());
    }

    #[test]
    fn simulate_clamps_to_limits_and_soc() {
        let slots = hours(&[0.1; 4]);
        let values = [
            ScheduleValue::Watts(5000),
            ScheduleValue::Watts(5000),
            ScheduleValue::Watts(5000),
            ScheduleValue::Watts(-5000),
        ];
        let p = played(&BATTERY, 10.0, &slots, &values);
        let o = &p.expected;
        // 800 W × 0.9 = 720 Wh/h: 200 -> 920 -> 1640 -> 2000 (full), then
        // 800 W out = 889 Wh from the store.
        let soc: Vec<i64> = p
            .slots
            .iter()
            .map(|s| (s.soc_percent * 10.0).round() as i64)
            .collect();
        assert_eq!(soc, vec![460, 820, 1000, 556]);
        assert!((o.charged_kwh - (0.8 + 0.8 + 0.4)).abs() < 1e-9);
        assert!((o.discharged_kwh - 0.8).abs() < 1e-9);
    }

    /// Few levels, so that walking every path stays small.
    const COARSE: f64 = 12.0;

    // Every level path, tried: the planner's objective must be the best.
    fn brute_force(battery: &Battery, soc: f64, slots: &[Slot], threshold: f64) -> f64 {
        let levels = Levels::new(battery, battery.stored_wh(soc), COARSE);
        let worth = stored_value_eur_per_wh(battery, slots);
        fn go(b: &Battery, l: &Levels, slots: &[Slot], from: usize, thr: f64, worth: f64) -> f64 {
            let Some((slot, rest)) = slots.split_first() else {
                return -(l.wh(from) - l.start_wh) * worth;
            };
            let (low, high) = reachable(b, l, slot, from);
            (low..=high)
                .map(|to| {
                    let paid = if to == from { 0.0 } else { thr };
                    move_cost(b, l, slot, from, to, paid).1 + go(b, l, rest, to, thr, worth)
                })
                .fold(f64::INFINITY, f64::min)
        }
        go(battery, &levels, slots, levels.start, threshold, worth)
    }

    /// What the planner minimises, recomputed from its simulated outcome.
    fn objective(slots: &[Slot], threshold: f64, p: &Plan) -> f64 {
        let nothing = slots.iter().map(|s| grid_cost(s, 0.0)).sum::<f64>();
        nothing - p.expected.saving_eur + threshold * p.expected.charged_kwh
    }

    fn small_battery() -> impl Strategy<Value = Battery> {
        (
            10.0..200.0f64,
            0.0..40.0f64,
            60.0..100.0f64,
            1.0..150.0f64,
            1.0..150.0f64,
            0.5..1.0f64,
        )
            .prop_map(|(capacity, min, max, ch, dis, eta)| Battery {
                capacity_wh: capacity,
                min_soc_percent: min,
                max_soc_percent: max,
                max_charge_w: ch,
                max_discharge_w: dis,
                round_trip_efficiency: eta,
            })
    }

    fn price_day(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Slot>> {
        prop::collection::vec((-0.2..0.8f64, 0.0..0.3f64, 0usize..2), len).prop_map(|v| {
            v.into_iter()
                .map(|(buy, spread, quarter)| Slot {
                    hours: if quarter == 1 { 0.25 } else { 1.0 },
                    buy_eur_per_kwh: buy,
                    sell_eur_per_kwh: buy - spread,
                    house_w: 0.0,
                    fixed: None,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn optimal_against_brute_force(
            battery in small_battery(),
            soc in 0.0..100.0f64,
            slots in price_day(1..5),
            threshold in 0.0..0.1f64,
        ) {
            let p = plan_on(&battery, soc, &slots, threshold, COARSE);
            let best = brute_force(&battery, soc, &slots, threshold);
            let got = objective(&slots, threshold, &p);
            // The plan's power is rounded to whole W; allow for that.
            let slack = 0.0005 * slots.len() as f64;
            prop_assert!((got - best).abs() <= slack, "plan {got} vs best {best}: {:?}", p.values());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn never_beyond_limits_never_a_loss(
            battery in small_battery(),
            soc in 0.0..100.0f64,
            slots in price_day(1..30),
            threshold in 0.0..0.1f64,
        ) {
            let p = plan(&battery, soc, &slots, threshold);
            prop_assert_eq!(p.slots.len(), slots.len());
            for v in &p.values() {
                if let ScheduleValue::Watts(w) = v {
                    prop_assert!(f64::from(*w) <= battery.max_charge_w + 0.5);
                    prop_assert!(f64::from(-*w) <= battery.max_discharge_w + 0.5);
                }
            }
            let o = &p.expected;
            let lo = battery.min_soc_percent.min(soc) - 1e-6;
            let hi = battery.max_soc_percent.max(soc) + 1e-6;
            prop_assert!(p.slots.iter().all(|s| (lo..=hi).contains(&s.soc_percent)), "{:?}", p.slots);
            // Never worse than doing nothing, and every kWh bought earns at
            // least the threshold (up to the W rounding).
            let rounding = 0.0005 * slots.len() as f64;
            prop_assert!(o.saving_eur >= -rounding, "saving {}", o.saving_eur);
            prop_assert!(
                o.saving_eur - threshold * o.charged_kwh >= -rounding,
                "saving {} < threshold × {} kWh", o.saving_eur, o.charged_kwh
            );
        }

        #[test]
        fn with_a_forecast_never_a_loss(
            battery in small_battery(),
            soc in 0.0..100.0f64,
            slots in price_day(1..30),
            house in prop::collection::vec(-200.0..200.0f64, 30),
            threshold in 0.0..0.1f64,
        ) {
            let slots: Vec<Slot> = slots
                .into_iter()
                .zip(house)
                .map(|(s, house_w)| Slot { house_w, ..s })
                .collect();
            let p = plan(&battery, soc, &slots, threshold);
            // NetZero's effect lands between levels; the plan rounds it to
            // the nearest, which costs at most half a level a slot.
            let level_wh = battery.capacity_wh / LEVEL_STEPS;
            let dearest = slots.iter().map(|s| s.buy_eur_per_kwh.abs().max(s.sell_eur_per_kwh.abs())).fold(0.0, f64::max);
            let slack = slots.len() as f64 * (0.0005 + level_wh * dearest / 1000.0);
            prop_assert!(p.expected.saving_eur >= -slack, "saving {} {:?}", p.expected.saving_eur, p.values());
        }

        #[test]
        fn no_spread_no_trade(
            battery in small_battery(),
            soc in 0.0..100.0f64,
            // (Below 0, even the losses of a round trip earn money.)
            price in 0.0..0.8f64,
            len in 1usize..30,
        ) {
            let slots = hours(&vec![price; len]);
            let p = plan(&battery, soc, &slots, 0.0);
            prop_assert!(p.values().iter().all(|v| !matches!(v, ScheduleValue::Watts(_))), "{:?}", p.values());
        }
    }
}
