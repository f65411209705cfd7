//! The owned Dynamic ESS windows on the GX: read them with what Dynamic ESS
//! depends on, write only what differs in the safe order, read back.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};

use super::{MissingSetting, Number, Settings};
use crate::zcell::dess::{
    self, BATTERY_LIFE_STATE_PATH, CAPACITY_PATH, DessState, ESS_GROUP, FEED_IN_PATH, Field, GROUP,
    HUB4_MODE_PATH, MODE_PATH, Mode, WindowIndex, WindowPlan, WindowValues, WindowWrite,
};

/// What a run did (or, previewed, would do) to the owned windows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowChanges {
    pub writes: BTreeMap<WindowIndex, usize>,
    /// The mode switched to, when `run` was told to.
    pub mode: Option<Mode>,
    pub after: BTreeMap<WindowIndex, WindowValues>,
}

impl WindowChanges {
    pub fn total(&self) -> usize {
        self.writes.values().sum::<usize>() + usize::from(self.mode.is_some())
    }
}

fn window_leaves() -> Vec<String> {
    WindowIndex::owned()
        .flat_map(|i| Field::ALL.map(|f| i.path(f)))
        .collect()
}

fn windows_from(got: &BTreeMap<String, f64>) -> BTreeMap<WindowIndex, WindowValues> {
    WindowIndex::owned()
        .map(|i| {
            let mut values = WindowValues::default();
            for field in Field::ALL {
                values.set(field, got[&i.path(field)]);
            }
            (i, values)
        })
        .collect()
}

/// Says what a missing Dynamic ESS setting means for the owner.
fn explain(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<MissingSetting>() {
        Some(missing) => anyhow!(
            "this GX has no Dynamic ESS settings ({} is missing): its firmware predates Dynamic \
             ESS Local windows; update Venus OS or use --writer slots",
            missing.0
        ),
        None => e.context(
            "reading the Dynamic ESS settings (firmware without Dynamic ESS has none: use \
             --writer slots)",
        ),
    }
}

/// The owned windows only (`status`, `disable`, the fallback).
pub async fn read_windows(gx: &impl Settings) -> Result<BTreeMap<WindowIndex, WindowValues>> {
    let got = gx
        .read_numbers(GROUP, &window_leaves())
        .await
        .map_err(explain)?;
    Ok(windows_from(&got))
}

/// The mode, or None on firmware without Dynamic ESS.
pub async fn read_mode(gx: &impl Settings) -> Result<Option<i64>> {
    match gx.read_numbers(GROUP, &[MODE_PATH.to_string()]).await {
        Ok(got) => Ok(Some(got[MODE_PATH] as i64)),
        Err(e) if e.is::<MissingSetting>() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The windows and everything the preconditions look at.
pub async fn read(gx: &impl Settings) -> Result<DessState> {
    let mut leaves = vec![MODE_PATH.to_string(), CAPACITY_PATH.to_string()];
    leaves.extend(window_leaves());
    let got = gx.read_numbers(GROUP, &leaves).await.map_err(explain)?;
    let ess_leaves = [HUB4_MODE_PATH, BATTERY_LIFE_STATE_PATH, FEED_IN_PATH].map(String::from);
    let ess = gx.read_numbers(ESS_GROUP, &ess_leaves).await.map_err(|e| {
        match e.downcast_ref::<MissingSetting>() {
            Some(missing) => anyhow!(
                "{} is missing: ESS is not set up on this GX, and Dynamic ESS needs it (its \
                 error 1, No ESS)",
                missing.0
            ),
            None => e.context("reading the ESS settings"),
        }
    })?;
    Ok(DessState {
        mode: got[MODE_PATH] as i64,
        capacity_kwh: got[CAPACITY_PATH],
        hub4_mode: ess[HUB4_MODE_PATH] as i64,
        battery_life_state: ess[BATTERY_LIFE_STATE_PATH] as i64,
        feed_in: ess[FEED_IN_PATH] == 1.0,
        windows: windows_from(&got),
    })
}

fn count_by_window(
    plans: &[(WindowIndex, WindowPlan)],
    writes: &[WindowWrite],
) -> BTreeMap<WindowIndex, usize> {
    plans
        .iter()
        .map(|(i, _)| (*i, writes.iter().filter(|w| w.window == *i).count()))
        .collect()
}

/// What applying `plans` would write and leave, without I/O.
pub fn preview(
    plans: &[(WindowIndex, WindowPlan)],
    current: &BTreeMap<WindowIndex, WindowValues>,
    mode: Option<Mode>,
) -> WindowChanges {
    let writes = dess::ordered_writes(plans, current);
    let mut after = current.clone();
    for w in &writes {
        after.entry(w.window).or_default().set(w.field, w.value);
    }
    WindowChanges {
        writes: count_by_window(plans, &writes),
        mode,
        after,
    }
}

/// Writes what differs (then the mode, if asked, so Dynamic ESS starts on
/// finished windows) and verifies by reading back.
pub async fn apply(
    gx: &impl Settings,
    plans: &[(WindowIndex, WindowPlan)],
    current: &BTreeMap<WindowIndex, WindowValues>,
    mode: Option<Mode>,
) -> Result<WindowChanges> {
    let writes = dess::ordered_writes(plans, current);
    for w in &writes {
        let value = if w.field.is_float() {
            Number::Float(w.value)
        } else {
            Number::Int(w.value as i64)
        };
        gx.write_number(&w.path(), value).await?;
    }
    if let Some(mode) = mode {
        gx.write_number(MODE_PATH, Number::Int(mode.raw())).await?;
    }
    let after = read_windows(gx).await.context("reading the windows back")?;
    for (i, plan) in plans {
        let got = after[i];
        if !got.satisfies(plan) {
            bail!("read back window {i}: the GX holds {got:?}, the plan is {plan:?}");
        }
    }
    if let Some(mode) = mode {
        let back = read_mode(gx).await?;
        if back != Some(mode.raw()) {
            bail!("read back {MODE_PATH}: {back:?}, written {}", mode.raw());
        }
    }
    Ok(WindowChanges {
        writes: count_by_window(plans, &writes),
        mode,
        after,
    })
}

/// Removes the owned windows (`Start` 0, the rest kept): the fallback and
/// `disable`. Returns the windows before and the changes.
pub async fn remove(
    gx: &impl Settings,
) -> Result<(BTreeMap<WindowIndex, WindowValues>, WindowChanges)> {
    let current = read_windows(gx).await?;
    let changes = apply(gx, &dess::all_gone(), &current, None).await?;
    Ok((current, changes))
}
