//! The owned Dynamic ESS windows on the GX: read them with what Dynamic ESS
//! depends on, write only what differs in the safe order, read back.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};

use super::{MissingSetting, Number, Settings};
use crate::zcell::dess::{
    self, BATTERY_LIFE_STATE_PATH, CAPACITY_PATH, DessState, FEED_IN_PATH, Field, HUB4_MODE_PATH,
    MODE_PATH, Mode, WindowIndex, WindowPlan, WindowValues, WindowWrite,
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

    /// Windows zcell-sched does not own that it removed: a plan never sets
    /// one, so any write to one removed it.
    pub fn foreign_removed(&self) -> usize {
        self.writes
            .iter()
            .filter(|(i, n)| !i.is_owned() && **n > 0)
            .count()
    }
}

/// The given windows, one group read each: small answers over MQTT, where a
/// read of all of `/Settings/DynamicEss` would bring ~400 leaves.
async fn read_each(
    gx: &impl Settings,
    indices: impl Iterator<Item = WindowIndex>,
) -> Result<BTreeMap<WindowIndex, WindowValues>> {
    let mut windows = BTreeMap::new();
    for i in indices {
        let leaves = Field::ALL.map(|f| i.path(f));
        let got = gx.read_numbers(&i.group(), &leaves).await?;
        let mut values = WindowValues::default();
        for field in Field::ALL {
            values.set(field, got[&i.path(field)]);
        }
        windows.insert(i, values);
    }
    Ok(windows)
}

/// One numeric leaf.
async fn read_leaf(gx: &impl Settings, path: &str) -> Result<f64> {
    let got = gx.read_numbers(path, &[path.to_string()]).await?;
    Ok(got[path])
}

/// Says what a missing Dynamic ESS setting means for the owner.
fn explain(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<MissingSetting>() {
        Some(missing) => anyhow!(
            "this GX lacks the Dynamic ESS setting {}: its firmware predates the windows \
             zcell-sched writes (those of dbus-systemcalc-py v2.241, November 2025); update \
             Venus OS or use --writer slots",
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
    read_each(gx, WindowIndex::owned()).await.map_err(explain)
}

/// The windows zcell-sched does not own (VRM's, or another tool's).
pub async fn read_foreign(gx: &impl Settings) -> Result<BTreeMap<WindowIndex, WindowValues>> {
    read_each(gx, WindowIndex::foreign()).await.map_err(explain)
}

/// The mode, or None on firmware without Dynamic ESS.
pub async fn read_mode(gx: &impl Settings) -> Result<Option<i64>> {
    match read_leaf(gx, MODE_PATH).await {
        Ok(mode) => Ok(Some(mode as i64)),
        Err(e) if e.is::<MissingSetting>() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The windows and everything the preconditions look at; the mode first,
/// so a GX without Dynamic ESS is told by its first answer.
pub async fn read(gx: &impl Settings) -> Result<DessState> {
    let mode = read_leaf(gx, MODE_PATH).await.map_err(explain)?;
    let capacity_kwh = read_leaf(gx, CAPACITY_PATH).await.map_err(explain)?;
    let windows = read_windows(gx).await?;
    let foreign = read_foreign(gx).await?;
    let mut ess = BTreeMap::new();
    for path in [HUB4_MODE_PATH, BATTERY_LIFE_STATE_PATH, FEED_IN_PATH] {
        let value =
            read_leaf(gx, path)
                .await
                .map_err(|e| match e.downcast_ref::<MissingSetting>() {
                    Some(missing) => anyhow!(
                        "{} is missing: ESS is not set up on this GX, and Dynamic ESS needs it \
                     (its error 1, No ESS)",
                        missing.0
                    ),
                    None => e.context("reading the ESS settings"),
                })?;
        ess.insert(path, value);
    }
    Ok(DessState {
        mode: mode as i64,
        capacity_kwh,
        hub4_mode: ess[HUB4_MODE_PATH] as i64,
        battery_life_state: ess[BATTERY_LIFE_STATE_PATH] as i64,
        feed_in: ess[FEED_IN_PATH] == 1.0,
        windows,
        foreign,
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
    let after = read_each(gx, plans.iter().map(|(i, _)| *i))
        .await
        .context("reading the windows back")?;
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
