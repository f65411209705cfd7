//! Takes the owned slots from what the GX holds to what the plan says, with
//! the fewest writes, then reads them back.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::gx::Settings;
use crate::slot::{SlotIndex, SlotPlan, SlotValues, writes_for};

/// The owned slots and what each should hold.
pub type SlotPlans = [(SlotIndex, SlotPlan)];

/// Writes what differs, slot by slot, then verifies. Returns the number of
/// `SetValue` calls made.
pub async fn apply(
    gx: &impl Settings,
    plans: &SlotPlans,
    current: &BTreeMap<SlotIndex, SlotValues>,
) -> Result<usize> {
    let mut count = 0;
    for (slot, plan) in plans {
        let now = current
            .get(slot)
            .expect("current values are read for every owned slot");
        for write in writes_for(*slot, now, plan) {
            gx.write(write).await?;
            count += 1;
        }
    }
    verify(gx, plans).await?;
    Ok(count)
}

/// Reads the owned slots back and fails on the first one that is not as planned.
pub async fn verify(gx: &impl Settings, plans: &SlotPlans) -> Result<()> {
    let slots: Vec<SlotIndex> = plans.iter().map(|(s, _)| *s).collect();
    let back = gx.read_slots(&slots).await?;
    for (slot, plan) in plans {
        let got = back[slot];
        if !got.satisfies(plan) {
            bail!("read back slot {slot}: the GX holds {got:?}, the plan is {plan:?}");
        }
    }
    Ok(())
}

/// Disables the given slots (keeping their days), the least bad state.
pub async fn disable(gx: &impl Settings, slots: &[SlotIndex]) -> Result<usize> {
    let current = gx.read_slots(slots).await?;
    let plans: Vec<(SlotIndex, SlotPlan)> =
        slots.iter().map(|s| (*s, SlotPlan::Disabled)).collect();
    apply(gx, &plans, &current).await
}
