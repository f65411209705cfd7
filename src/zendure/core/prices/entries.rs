//! A price plan as schedule entries beside the owner's. Pure: the schedule,
//! the list of entries the last plan wrote, the priced slots and the battery
//! in; the new schedule, the new list and what to show out.
//!
//! How the plan's entries live beside the owner's, in the reference format
//! unchanged: the plan writes ordinary fully explicit keys
//! (`YYYYMMDDHHmm`), and keeps the list of the entries it wrote (key and
//! value) beside the schedule, in its own file. An entry is the plan's only
//! while it is on that list with the value the plan gave it; an entry the
//! owner edited becomes the owner's. A new plan for a day removes the
//! plan's entries of that day from its first slot on, and writes its own.
//!
//! The owner's entries for that very date (no `*` in the date part) win:
//! such an entry holds, as the format says, until the owner's next entry,
//! and every slot it covers (or starts in) is left to it and planned around
//! (the battery is assumed to follow it). Recurring entries (a `*` in the
//! date) are the owner's background; the plan takes precedence over them in
//! the slots it plans, by the reference's own rule (the later explicit time
//! wins). So an owner who edits one of the plan's entries takes the rest of
//! that day over from it, until their next entry.
//!
//! A plan also removes the plan's entries of days before the day before the
//! one it plans: those days are over (a dated entry never reaches past its
//! own date), and left in place months of them would make every read of the
//! schedule slower. The owner's entries of any day stay.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::zendure::core::prices::plan::{self, Battery, Outcome, Slot};
use crate::zendure::core::prices::tariff::PriceSlot;
use crate::zendure::core::schedule::{self, Key, Schedule, ScheduleValue};

/// The entries the last plans wrote: key -> value as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Owned {
    pub entries: BTreeMap<String, Value>,
}

impl Owned {
    fn holds(&self, key: &Key, value: ScheduleValue) -> bool {
        self.entries.get(key.as_str()) == Some(&value.to_json())
    }
}

/// One priced slot of a proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposed {
    pub price: PriceSlot,
    /// `value` is the owner's, in force there, which the plan keeps.
    pub owner: bool,
    pub value: ScheduleValue,
    /// The SoC expected at its end, %.
    pub soc_percent: f64,
}

/// What a plan proposes.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub date: NaiveDate,
    pub soc_percent: f64,
    pub slots: Vec<Proposed>,
    pub expected: Outcome,
    /// The plan's new entries.
    pub entries: Vec<(Key, ScheduleValue)>,
    /// How many of the earlier plan's entries these replace.
    pub replaced: usize,
    /// How many of the earlier plans' entries of days that are over go.
    pub pruned: usize,
    /// The schedule with the new entries, and the new list of plan entries.
    pub schedule: Schedule,
    pub owned: Owned,
}

fn local(tz: Tz, slot: &PriceSlot) -> (NaiveDateTime, NaiveDateTime) {
    (
        schedule::local(&tz, slot.start),
        schedule::local(&tz, slot.end),
    )
}

/// Splits `slots` wherever the owner's schedule can change its value inside
/// one (an entry at an odd minute), so that every piece has one owner value.
fn split_at_owner_times(slots: Vec<PriceSlot>, owner: &Schedule, tz: Tz) -> Vec<PriceSlot> {
    let times = owner.candidate_times();
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        let start = local(tz, &slot).0;
        let length = slot.end - slot.start;
        let mut piece = slot;
        for t in &times {
            let offset = start.date().and_time(*t) - start;
            if offset > chrono::TimeDelta::zero() && offset < length {
                let at = slot.start + offset;
                out.push(PriceSlot { end: at, ..piece });
                piece.start = at;
            }
        }
        out.push(piece);
    }
    out
}

/// The owner's value where an entry made for this very date, with its own
/// time, is in force at `start`: the plan leaves that time to it. Recurring
/// entries (a `*` in the date) and entries without a time are defaults the
/// plan's own dated entries override.
fn owner_value(owner: &Schedule, start: NaiveDateTime) -> Option<ScheduleValue> {
    let in_force = schedule::value_at(owner, start);
    in_force
        .key
        .filter(|key| !key.as_str()[..8].contains('*') && key.time().is_some())
        .map(|_| in_force.value)
}

/// The slots in the wall-clock hour that repeats when clocks go back (both
/// occurrences); none on other days.
fn repeated_hour(tz: Tz, slots: &[PriceSlot]) -> Vec<usize> {
    let starts: Vec<NaiveDateTime> = slots.iter().map(|s| local(tz, s).0).collect();
    let Some(back) = (1..starts.len()).find(|i| starts[*i] <= starts[i - 1]) else {
        return Vec::new();
    };
    // The clock went back at `back`: the repeated span runs from its local
    // start to the wall-clock time the first occurrence reached.
    let from = starts[back];
    let to = starts[back - 1] + (slots[back - 1].end - slots[back - 1].start);
    (0..starts.len())
        .filter(|i| starts[*i] >= from && starts[*i] < to)
        .collect()
}

/// Dated keys that carry the plan through every planned slot: a recurring
/// entry of the owner whose explicit time falls inside a slot would take
/// over there (the later explicit time wins), so at each such time the
/// plan's value is written again with a key for this date, which is more
/// specific. Returns the keys added to `merged`.
fn pin_inside_slots(
    merged: &mut BTreeMap<Key, ScheduleValue>,
    slots: &[Proposed],
    tz: Tz,
) -> Vec<(Key, ScheduleValue)> {
    let mut added = Vec::new();
    let mut schedule = Schedule::from_entries(merged.clone());
    for slot in slots.iter().filter(|s| !s.owner) {
        let start = local(tz, &slot.price).0;
        let end = start + (slot.price.end - slot.price.start);
        let times: Vec<NaiveDateTime> = std::iter::once(start)
            .chain(
                schedule
                    .candidate_times()
                    .into_iter()
                    .map(|t| start.date().and_time(t))
                    .filter(|at| *at > start && *at < end),
            )
            .collect();
        for at in times {
            if schedule::value_at(&schedule, at).value != slot.value {
                let key = key_at(at);
                merged.insert(key.clone(), slot.value);
                added.push((key, slot.value));
                schedule = Schedule::from_entries(merged.clone());
            }
        }
    }
    added
}

fn key_at(at: NaiveDateTime) -> Key {
    Key::parse(&at.format("%Y%m%d%H%M").to_string()).expect("a formatted time is a valid key")
}

/// Plans `slots` (one local day's, in order) around the owner's entries and
/// merges the result into `current`.
pub fn propose(
    current: &Schedule,
    owned: &Owned,
    slots: Vec<PriceSlot>,
    battery: &Battery,
    soc_percent: f64,
    threshold_eur_per_kwh: f64,
    tz: Tz,
) -> Proposal {
    let date = schedule::local(&tz, slots[0].start).date();
    let first = local(tz, &slots[0]).0;
    let owner_only = Schedule::from_entries(
        current
            .entries()
            .filter(|(k, v)| !owned.holds(k, *v))
            .map(|(k, v)| (k.clone(), v)),
    );
    let slots = split_at_owner_times(slots, &owner_only, tz);
    let owner: Vec<Option<ScheduleValue>> = slots
        .iter()
        .map(|s| owner_value(&owner_only, local(tz, s).0))
        .collect();
    let plan_slots: Vec<Slot> = slots
        .iter()
        .zip(&owner)
        .map(|(s, fixed)| Slot {
            hours: s.hours(),
            buy_eur_per_kwh: s.buy_eur_per_kwh,
            sell_eur_per_kwh: s.sell_eur_per_kwh,
            house_w: 0.0,
            fixed: *fixed,
        })
        .collect();
    let plan = plan::plan_together(
        battery,
        soc_percent,
        &plan_slots,
        threshold_eur_per_kwh,
        &repeated_hour(tz, &slots),
    );

    let slots: Vec<Proposed> = slots
        .into_iter()
        .zip(&owner)
        .zip(plan.slots)
        .map(|((price, owner), planned)| Proposed {
            price,
            owner: owner.is_some(),
            value: planned.value,
            soc_percent: planned.soc_percent,
        })
        .collect();
    // An entry where a planned stretch starts or its value changes.
    let mut entries: Vec<(Key, ScheduleValue)> = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let starts = i == 0 || slots[i - 1].owner || slots[i - 1].value != slot.value;
        let key = key_at(local(tz, &slot.price).0);
        // The hour repeated when clocks go back has one key (and one value).
        if !slot.owner && starts && entries.iter().all(|(k, _)| *k != key) {
            entries.push((key, slot.value));
        }
    }
    let replaced_by_plan = |key: &Key, value: ScheduleValue| {
        owned.holds(key, value)
            && key.matches_date(date)
            && key.time().is_some_and(|t| date.and_time(t) >= first)
    };
    // The plan is for today or tomorrow: a day before the one before it
    // is over.
    let over = date.pred_opt().unwrap_or(date);
    let past_plan = |key: &Key, value: ScheduleValue| {
        owned.holds(key, value)
            && NaiveDate::parse_from_str(&key.as_str()[..8], "%Y%m%d").is_ok_and(|d| d < over)
    };
    let replaced = current
        .entries()
        .filter(|(k, v)| replaced_by_plan(k, *v))
        .count();
    let pruned = current.entries().filter(|(k, v)| past_plan(k, *v)).count();
    let mut merged: BTreeMap<Key, ScheduleValue> = current
        .entries()
        .filter(|(k, v)| !replaced_by_plan(k, *v) && !past_plan(k, *v))
        .map(|(k, v)| (k.clone(), v))
        .collect();
    let mut new_owned = Owned {
        entries: owned
            .entries
            .iter()
            .filter(|(k, _)| {
                // Keep the list to the plan entries still in the schedule.
                Key::parse(k)
                    .is_ok_and(|key| merged.get(&key).is_some_and(|v| owned.holds(&key, *v)))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    // Never overwrite an owner's key (one at an odd minute inside a slot).
    entries.retain(|(key, _)| !merged.contains_key(key));
    merged.extend(entries.iter().cloned());
    entries.extend(pin_inside_slots(&mut merged, &slots, tz));
    for (key, value) in &entries {
        new_owned
            .entries
            .insert(key.as_str().to_string(), value.to_json());
    }
    Proposal {
        date,
        soc_percent,
        slots,
        expected: plan.expected,
        entries,
        replaced,
        pruned,
        schedule: Schedule::from_entries(merged),
        owned: new_owned,
    }
}

impl Proposal {
    /// What the written schedule carries out: every minute of the slots
    /// played with the value the schedule resolves then (as a controller
    /// following the file does), on the planner's battery model and scored
    /// as the plan is. Equal to `expected` when the entries say what
    /// the planner planned.
    pub fn realised(&self, battery: &Battery, tz: Tz) -> Outcome {
        let mut minutes = Vec::new();
        let mut values = Vec::new();
        for slot in &self.slots {
            let price = &slot.price;
            let count = (price.end - price.start).num_minutes();
            for m in 0..count {
                let at = price.start + chrono::TimeDelta::minutes(m);
                values.push(schedule::value_at(&self.schedule, schedule::local(&tz, at)).value);
                minutes.push(Slot {
                    hours: 1.0 / 60.0,
                    buy_eur_per_kwh: price.buy_eur_per_kwh,
                    sell_eur_per_kwh: price.sell_eur_per_kwh,
                    house_w: 0.0,
                    fixed: slot.owner.then_some(slot.value),
                });
            }
        }
        plan::simulate(battery, self.soc_percent, &minutes, &values)
    }

    /// One JSON document: the slots with prices, values and SoC, the new
    /// entries and the expected saving (for `--json` and the server's page).
    pub fn to_json(&self, tz: Tz) -> Value {
        let slots: Vec<Value> = self
            .slots
            .iter()
            .map(|s| {
                json!({
                    "start": s.price.start.with_timezone(&tz).to_rfc3339(),
                    "end": s.price.end.with_timezone(&tz).to_rfc3339(),
                    "market_eur_per_kwh": s.price.market_eur_per_kwh,
                    "buy_eur_per_kwh": s.price.buy_eur_per_kwh,
                    "sell_eur_per_kwh": s.price.sell_eur_per_kwh,
                    "value": s.value.to_json(),
                    "owner": s.owner,
                    "soc_percent": s.soc_percent,
                })
            })
            .collect();
        let entries: serde_json::Map<String, Value> = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_json()))
            .collect();
        json!({
            "date": self.date.format("%Y-%m-%d").to_string(),
            "time_zone": tz.name(),
            "start_soc_percent": self.soc_percent,
            "slots": slots,
            "entries": entries,
            "replaced": self.replaced,
            "pruned": self.pruned,
            "expected_saving_eur": self.expected.saving_eur,
            "charged_kwh": self.expected.charged_kwh,
            "discharged_kwh": self.expected.discharged_kwh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendure::core::prices::plan::tests::BATTERY;
    use crate::zendure::core::prices::tariff::{Export, Tariff, day_slots, parse};
    use chrono::{DateTime, Utc};
    use chrono_tz::Europe::Amsterdam;

    /// 24 Nov 2026: cheap at night, dear 07-09 and 17-20.
    fn slots(from: &str) -> Vec<PriceSlot> {
        let prices: String = (0..24)
            .map(|h| {
                let p = match h {
                    1..=4 => 0.05,
                    7..=8 | 17..=19 => 0.45,
                    _ => 0.25,
                };
                format!(r#"{{"start":"2026-11-24T{h:02}:00:00+01:00","price":{p}}}"#)
            })
            .collect::<Vec<_>>()
            .join(",");
        let points = parse(&format!("[{prices}]"), Amsterdam).unwrap();
        let tariff = Tariff {
            vat_percent: 0.0,
            markup_eur_per_kwh: 0.0,
            export: Export::NetMetering,
        };
        let now = DateTime::parse_from_rfc3339(from)
            .unwrap()
            .with_timezone(&Utc);
        let date = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        day_slots(&points, date, Amsterdam, &tariff, now).unwrap()
    }

    fn schedule(v: Value) -> Schedule {
        Schedule::parse(&v).unwrap()
    }

    fn propose_on(current: &Schedule, owned: &Owned, from: &str) -> Proposal {
        propose(current, owned, slots(from), &BATTERY, 10.0, 0.02, Amsterdam)
    }

    fn keys(p: &Proposal) -> Vec<&str> {
        p.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn a_plan_beside_recurring_owner_entries() {
        let current = schedule(json!({"********0000": "netzero", "********2200": 0}));
        let p = propose_on(&current, &Owned::default(), "2026-11-23T12:00:00Z");
        assert!(p.slots.iter().all(|s| !s.owner));
        assert_eq!(keys(&p)[0], "202611240000");
        // It charges at night and discharges in both dear stretches.
        let day = schedule::day_changes(&p.schedule, p.date);
        let value_at =
            |h: u32| schedule::value_at(&p.schedule, p.date.and_hms_opt(h, 30, 0).unwrap()).value;
        assert!(
            matches!(value_at(2), ScheduleValue::Watts(w) if w > 0),
            "{day:?}"
        );
        assert!(
            matches!(value_at(7), ScheduleValue::Watts(w) if w < 0),
            "{day:?}"
        );
        assert!(
            matches!(value_at(18), ScheduleValue::Watts(w) if w < 0),
            "{day:?}"
        );
        // The owner's recurring entries stay in the file.
        assert_eq!(
            p.schedule
                .entries()
                .filter(|(k, _)| k.as_str().starts_with('*'))
                .count(),
            2
        );
        assert_eq!(p.owned.entries.len(), p.entries.len());
        assert!(p.expected.saving_eur > 0.0);
    }

    #[test]
    fn the_owners_entries_for_the_day_are_planned_around() {
        // The owner wants 17:00-19:00 at -300 W, and 19:00 on NetZero.
        let current = schedule(json!({"202611241700": -300, "202611241900": "netzero"}));
        let p = propose_on(&current, &Owned::default(), "2026-11-23T12:00:00Z");
        let hour = |i: usize| p.slots[i].owner.then_some(p.slots[i].value);
        assert_eq!(hour(16), None);
        assert_eq!(hour(17), Some(ScheduleValue::Watts(-300)));
        assert_eq!(hour(23), Some(ScheduleValue::NetZero));
        assert!(
            keys(&p).iter().all(|k| k < &"202611241700"),
            "{:?}",
            keys(&p)
        );
        for (k, v) in current.entries() {
            assert_eq!(p.schedule.entries().find(|(k2, _)| *k2 == k).unwrap().1, v);
        }
    }

    #[test]
    fn a_second_plan_replaces_the_first_and_keeps_edits() {
        let current = schedule(json!({"********0000": "netzero"}));
        let first = propose_on(&current, &Owned::default(), "2026-11-23T12:00:00Z");
        // The owner edits one of the plan's entries: it becomes theirs.
        let (edited, _) = first.entries[1].clone();
        let mut doc = first.schedule.to_json();
        doc[edited.as_str()] = json!(123);
        let edited_schedule = schedule(doc);
        let second = propose_on(&edited_schedule, &first.owned, "2026-11-23T12:00:00Z");
        assert_eq!(second.replaced, first.entries.len() - 1);
        assert!(!second.owned.entries.contains_key(edited.as_str()));
        let value = |s: &Schedule, k: &Key| s.entries().find(|(k2, _)| *k2 == k).map(|e| e.1);
        assert_eq!(
            value(&second.schedule, &edited),
            Some(ScheduleValue::Watts(123))
        );
        // Every entry is the owner's, the edited one or the second plan's.
        assert_eq!(
            second.schedule.entries().count(),
            1 + 1 + second.entries.len()
        );
        // Same prices, same owner: the same plan again, apart from the edit.
        let third = propose_on(&second.schedule, &second.owned, "2026-11-23T12:00:00Z");
        assert_eq!(third.schedule, second.schedule);
        assert_eq!(third.owned, second.owned);
    }

    #[test]
    fn planning_from_now_keeps_the_mornings_entries() {
        let current = schedule(json!({}));
        let morning = propose_on(&current, &Owned::default(), "2026-11-23T12:00:00Z");
        // Re-planned at 12:10 local: entries before 12:00 stay.
        let later = propose_on(&morning.schedule, &morning.owned, "2026-11-24T11:10:00Z");
        assert_eq!(later.slots.len(), 12);
        assert_eq!(keys(&later)[0], "202611241200");
        let before_noon = |s: &Schedule| {
            s.entries()
                .filter(|(k, _)| k.as_str() < "202611241200")
                .count()
        };
        assert_eq!(before_noon(&later.schedule), before_noon(&morning.schedule));
        assert!(before_noon(&morning.schedule) > 0);
    }

    #[test]
    fn the_plans_entries_of_days_that_are_over_go_and_the_owners_stay() {
        // What plans of 20-23 November left, and the owner's own entries.
        let mut doc = json!({"202611200700": 42, "********0000": "netzero"});
        let mut owned = Owned::default();
        for (day, value) in [(20, 300), (21, -200), (22, 500), (23, -400)] {
            let key = format!("202611{day}0100");
            doc[&key] = json!(value);
            owned.entries.insert(key, json!(value));
        }
        // The owner edited the plan's 21 November entry: it is theirs now.
        doc["202611210100"] = json!(-250);
        let p = propose_on(&schedule(doc), &owned, "2026-11-23T12:00:00Z");
        let kept: Vec<&str> = p
            .schedule
            .entries()
            .map(|(k, _)| k.as_str())
            .filter(|k| k.starts_with("2026") && k < &"20261124")
            .collect();
        // Planning the 24th: the plan's 20th and 22nd go, its 23rd (the day
        // before) stays, and so do the owner's.
        assert_eq!(kept, ["202611200700", "202611210100", "202611230100"]);
        assert_eq!(p.pruned, 1 + 1);
        assert!(!p.owned.entries.contains_key("202611200100"));
        assert!(p.owned.entries.contains_key("202611230100"));
        assert_eq!(p.to_json(Amsterdam)["pruned"], 2);
    }

    #[test]
    fn json_document_shape() {
        let p = propose_on(
            &Schedule::default(),
            &Owned::default(),
            "2026-11-23T12:00:00Z",
        );
        let doc = p.to_json(Amsterdam);
        assert_eq!(doc["date"], "2026-11-24");
        assert_eq!(doc["slots"].as_array().unwrap().len(), 24);
        assert_eq!(doc["slots"][0]["start"], "2026-11-24T00:00:00+01:00");
        assert_eq!(doc["entries"].as_object().unwrap().len(), p.entries.len());
        assert!(doc["expected_saving_eur"].as_f64().unwrap() > 0.0);
    }
}
