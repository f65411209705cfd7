//! Takes the owned slots from what the GX holds to what the plan says, with
//! the fewest writes, then reads them back.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::gx::Settings;
use crate::slot::{SlotIndex, SlotPlan, SlotValues, writes_for};

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

/// What applying `plans` to `current` would write and leave, without I/O.
pub fn preview(plans: &SlotPlans, current: &BTreeMap<SlotIndex, SlotValues>) -> Changes {
    let mut changes = Changes::default();
    for (slot, plan) in plans {
        let mut values = current[slot];
        let writes = writes_for(*slot, &values, plan);
        for w in &writes {
            values.set(w.leaf.field, w.value);
        }
        changes.writes.insert(*slot, writes.len());
        changes.after.insert(*slot, values);
    }
    changes
}

/// Writes what differs, slot by slot, then verifies by reading back.
pub async fn apply(
    gx: &impl Settings,
    plans: &SlotPlans,
    current: &BTreeMap<SlotIndex, SlotValues>,
) -> Result<Changes> {
    let mut writes = BTreeMap::new();
    for (slot, plan) in plans {
        let now = current
            .get(slot)
            .expect("current values are read for every owned slot");
        let slot_writes = writes_for(*slot, now, plan);
        for write in &slot_writes {
            gx.write(*write).await?;
        }
        writes.insert(*slot, slot_writes.len());
    }
    let after = verify(gx, plans).await?;
    Ok(Changes { writes, after })
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
    use crate::slot::{ChargeSlot, DurationSeconds, SecondsAfterMidnight, Soc};
    use chrono::Weekday;

    #[test]
    fn preview_leaves_what_apply_would() {
        let (a, b) = (SlotIndex::new(3).unwrap(), SlotIndex::new(4).unwrap());
        let factory = SlotValues {
            day: -7,
            start: 0,
            duration: 0,
            soc: 100,
        };
        let current = BTreeMap::from([(a, factory), (b, SlotValues { day: 0, ..factory })]);
        let charge = ChargeSlot {
            day: Weekday::Mon,
            start: SecondsAfterMidnight(36000),
            duration: DurationSeconds(21600),
            soc: Soc::new(100).unwrap(),
        };
        let plans = [(a, SlotPlan::Charge(charge)), (b, SlotPlan::Disabled)];
        let changes = preview(&plans, &current);
        assert_eq!(changes.after[&a], charge.values());
        assert_eq!(changes.after[&b].day, -10);
        assert_eq!(changes.writes[&a], 3);
        assert_eq!(changes.total(), 4);
    }
}
