//! Takes the owned slots from what the GX holds to what the plan says, with
//! the fewest writes, then reads them back.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::zcell::gx::Settings;
use crate::zcell::slot::{SlotIndex, SlotPlan, SlotValues, SlotWrites, Write, writes_for};

/// The owned slots and what each should hold.
pub type SlotPlans = [(SlotIndex, SlotPlan)];

/// What a run did (or, previewed, would do) to the owned slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub writes: BTreeMap<SlotIndex, usize>,
    pub after: BTreeMap<SlotIndex, SlotValues>,
}

impl Changes {
    pub fn total(&self) -> usize {
        self.writes.values().sum()
    }
}

/// Every slot's writes in the order that never leaves a live mix of old and
/// new values after any prefix: all disables, then fields, then enables.
pub fn ordered_writes(plans: &SlotPlans, current: &BTreeMap<SlotIndex, SlotValues>) -> Vec<Write> {
    let per_slot: Vec<SlotWrites> = plans
        .iter()
        .map(|(slot, plan)| writes_for(*slot, &current[slot], plan))
        .collect();
    let disables = per_slot.iter().filter_map(|w| w.disable);
    let fields = per_slot.iter().flat_map(|w| w.fields.iter().copied());
    let enables = per_slot.iter().filter_map(|w| w.enable);
    disables.chain(fields).chain(enables).collect()
}

fn count_by_slot(plans: &SlotPlans, writes: &[Write]) -> BTreeMap<SlotIndex, usize> {
    plans
        .iter()
        .map(|(slot, _)| {
            (
                *slot,
                writes.iter().filter(|w| w.leaf.slot == *slot).count(),
            )
        })
        .collect()
}

/// What applying `plans` to `current` would write and leave, without I/O.
pub fn preview(plans: &SlotPlans, current: &BTreeMap<SlotIndex, SlotValues>) -> Changes {
    let writes = ordered_writes(plans, current);
    let mut after = current.clone();
    for w in &writes {
        after
            .get_mut(&w.leaf.slot)
            .expect("writes are for owned slots")
            .set(w.leaf.field, w.value);
    }
    Changes {
        writes: count_by_slot(plans, &writes),
        after,
    }
}

/// Writes what differs, then verifies by reading back.
pub async fn apply(
    gx: &impl Settings,
    plans: &SlotPlans,
    current: &BTreeMap<SlotIndex, SlotValues>,
) -> Result<Changes> {
    let writes = ordered_writes(plans, current);
    for write in &writes {
        gx.write(*write).await?;
    }
    let after = verify(gx, plans).await?;
    Ok(Changes {
        writes: count_by_slot(plans, &writes),
        after,
    })
}

/// Reads the owned slots back and fails on the first one not as planned.
async fn verify(gx: &impl Settings, plans: &SlotPlans) -> Result<BTreeMap<SlotIndex, SlotValues>> {
    let slots: Vec<SlotIndex> = plans.iter().map(|(s, _)| *s).collect();
    let back = gx.read_slots(&slots).await?;
    for (slot, plan) in plans {
        let got = back[slot];
        if !got.satisfies(plan) {
            bail!("read back slot {slot}: the GX holds {got:?}, the plan is {plan:?}");
        }
    }
    Ok(back)
}

/// Disables the given slots (keeping their days), the least bad state.
/// Returns the values before and the changes.
pub async fn disable(
    gx: &impl Settings,
    slots: &[SlotIndex],
) -> Result<(BTreeMap<SlotIndex, SlotValues>, Changes)> {
    let current = gx.read_slots(slots).await?;
    let plans: Vec<(SlotIndex, SlotPlan)> =
        slots.iter().map(|s| (*s, SlotPlan::Disabled)).collect();
    let changes = apply(gx, &plans, &current).await?;
    Ok((current, changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zcell::slot::{ChargeSlot, DurationSeconds, SecondsAfterMidnight, Soc};
    use chrono::Weekday;

    #[test]
    fn preview_leaves_what_apply_would() {
        let (a, b) = (SlotIndex::new(3).unwrap(), SlotIndex::new(4).unwrap());
        let factory = SlotValues {
            day: -7,
            start: 0,
            duration: 0,
            soc: 100,
            allow_discharge: None,
        };
        let current = BTreeMap::from([(a, factory), (b, SlotValues { day: 0, ..factory })]);
        let charge = ChargeSlot {
            day: Weekday::Mon,
            start: SecondsAfterMidnight(36000),
            duration: DurationSeconds(21600),
            soc: Soc::new(100).unwrap(),
            allow_discharge: None,
        };
        let plans = [(a, SlotPlan::Charge(charge)), (b, SlotPlan::Disabled)];
        let changes = preview(&plans, &current);
        assert_eq!(changes.after[&a], charge.values());
        assert_eq!(changes.after[&b].day, -10);
        assert_eq!(changes.writes[&a], 3);
        assert_eq!(changes.total(), 4);
    }

    /// After every prefix of a run's writes each owned slot holds its old
    /// values, is disabled, or is as planned (never a live mix), over a grid
    /// of current states and plans; at the end each is as planned.
    #[test]
    fn every_prefix_keeps_each_slot_planned_or_disabled() {
        let slots = [SlotIndex::new(3).unwrap(), SlotIndex::new(4).unwrap()];
        let charge = |day, start: u32, soc: u8| {
            SlotPlan::Charge(ChargeSlot {
                day,
                start: SecondsAfterMidnight(start),
                duration: DurationSeconds(3600),
                soc: Soc::new(soc).unwrap(),
                allow_discharge: None,
            })
        };
        let plans = [
            SlotPlan::Disabled,
            charge(Weekday::Sun, 0, 100),
            charge(Weekday::Mon, 0, 100),
            charge(Weekday::Mon, 3600, 50),
        ];
        let states: Vec<SlotValues> = [-10, -7, -1, 0, 1, 2, 7]
            .into_iter()
            .flat_map(|day| {
                [(0, 3600, 100), (3600, 3600, 50), (0, 0, 100)].map(|(start, duration, soc)| {
                    SlotValues {
                        day,
                        start,
                        duration,
                        soc,
                        allow_discharge: None,
                    }
                })
            })
            .collect();
        let mut checked = 0;
        for a in &states {
            for b in &states {
                for pa in &plans {
                    for pb in &plans {
                        let current = BTreeMap::from([(slots[0], *a), (slots[1], *b)]);
                        let plan = [(slots[0], *pa), (slots[1], *pb)];
                        let writes = ordered_writes(&plan, &current);
                        let mut state = current.clone();
                        for (i, w) in writes.iter().enumerate() {
                            let cell = state.get_mut(&w.leaf.slot).unwrap();
                            assert_ne!(
                                cell.get(w.leaf.field),
                                w.value,
                                "a write that changes nothing"
                            );
                            cell.set(w.leaf.field, w.value);
                            for (slot, p) in &plan {
                                let v = state[slot];
                                assert!(
                                    v == current[slot] || v.satisfies(p) || v.day < 0,
                                    "after write {i} of {writes:?}: slot {slot} = {v:?}, plan {p:?}"
                                );
                            }
                        }
                        for (slot, p) in &plan {
                            assert!(state[slot].satisfies(p));
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 21 * 21 * 16);
    }
}
