//! The GX's ESS scheduled-charge slots: their paths, the `Day` encoding and
//! the values a slot holds.

use std::fmt;

use chrono::Weekday;

/// Where the five charge slots live in `com.victronenergy.settings`.
pub const SCHEDULE_GROUP: &str = "/Settings/CGwacs/BatteryLife/Schedule/Charge";
pub const SLOT_COUNT: u8 = 5;

/// One of the five slots, 0..=4 (the GX GUI numbers them 1..=5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotIndex(u8);

impl SlotIndex {
    pub fn new(n: u8) -> Option<Self> {
        (n < SLOT_COUNT).then_some(SlotIndex(n))
    }

    pub fn all() -> impl Iterator<Item = SlotIndex> {
        (0..SLOT_COUNT).map(SlotIndex)
    }

    pub fn get(self) -> u8 {
        self.0
    }

    pub fn leaf(self, field: Field) -> Leaf {
        Leaf { slot: self, field }
    }
}

impl fmt::Display for SlotIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The leaves of a slot that zcell-sched reads and writes. `AllowDischarge`
/// exists only on firmware from mid-2022 on and belongs to the owner unless
/// a maintenance window opts in with `+discharge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Day,
    Start,
    Duration,
    Soc,
    AllowDischarge,
}

impl Field {
    /// The leaves every firmware has.
    pub const ALL: [Field; 4] = [Field::Day, Field::Start, Field::Duration, Field::Soc];

    pub fn name(self) -> &'static str {
        match self {
            Field::Day => "Day",
            Field::Start => "Start",
            Field::Duration => "Duration",
            Field::Soc => "Soc",
            Field::AllowDischarge => "AllowDischarge",
        }
    }
}

/// One setting of one slot, e.g. `/Settings/CGwacs/BatteryLife/Schedule/Charge/3/Day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub slot: SlotIndex,
    pub field: Field,
}

impl Leaf {
    /// The path relative to [`SCHEDULE_GROUP`], as keys of the group's `GetValue` dict.
    pub fn relative(self) -> String {
        format!("{}/{}", self.slot, self.field.name())
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEDULE_GROUP}/{}", self.relative())
    }
}

/// Which days an enabled slot applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayRule {
    Weekday(Weekday),
    EveryDay,
    Weekdays,
    Weekends,
    Monthly,
}

impl DayRule {
    fn code(self) -> i32 {
        match self {
            DayRule::Weekday(w) => w.num_days_from_sunday() as i32,
            DayRule::EveryDay => 7,
            DayRule::Weekdays => 8,
            DayRule::Weekends => 9,
            // 11 rather than 10: a disabled 10 would read back as a disabled Sunday.
            DayRule::Monthly => 11,
        }
    }

    fn from_code(code: i32) -> Option<Self> {
        const SUN_FIRST: [Weekday; 7] = [
            Weekday::Sun,
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
        ];
        Some(match code {
            0..=6 => DayRule::Weekday(SUN_FIRST[code as usize]),
            7 => DayRule::EveryDay,
            8 => DayRule::Weekdays,
            9 => DayRule::Weekends,
            10 | 11 => DayRule::Monthly,
            _ => return None,
        })
    }
}

impl fmt::Display for DayRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DayRule::Weekday(w) => write!(f, "{w}"),
            DayRule::EveryDay => f.write_str("every day"),
            DayRule::Weekdays => f.write_str("weekdays"),
            DayRule::Weekends => f.write_str("weekends"),
            DayRule::Monthly => f.write_str("monthly"),
        }
    }
}

/// A slot's `Day` setting. The GX treats any negative value as disabled and
/// keeps the day in it so the GUI can re-enable the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    Enabled(DayRule),
    Disabled(DayRule),
}

impl Day {
    pub fn from_raw(raw: i32) -> Option<Self> {
        match raw {
            -10 => Some(Day::Disabled(DayRule::Weekday(Weekday::Sun))),
            r if r < 0 => DayRule::from_code(-r).map(Day::Disabled),
            r => DayRule::from_code(r).map(Day::Enabled),
        }
    }

    pub fn raw(self) -> i32 {
        match self {
            Day::Enabled(rule) => rule.code(),
            Day::Disabled(rule) => disable_raw(rule.code()),
        }
    }
}

/// Disables a raw `Day` value, keeping the day. Plain negation would leave a
/// Sunday slot (0) enabled, so Sunday becomes -10; negative values stay.
pub fn disable_raw(raw: i32) -> i32 {
    match raw {
        0 => -10,
        r if r > 0 => -r,
        r => r,
    }
}

pub fn is_enabled_raw(raw: i32) -> bool {
    raw >= 0
}

/// Seconds after local midnight, as the GX's `Start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondsAfterMidnight(pub u32);

/// A wall-clock length in seconds, as the GX's `Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSeconds(pub u32);

/// A state of charge in percent, 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Soc(u8);

impl Soc {
    pub fn new(percent: u8) -> Option<Self> {
        (percent <= 100).then_some(Soc(percent))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Soc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// An enabled charge slot as the planner wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeSlot {
    pub day: Weekday,
    pub start: SecondsAfterMidnight,
    pub duration: DurationSeconds,
    pub soc: Soc,
    /// `AllowDischarge` to set, or None to leave it to the owner.
    pub allow_discharge: Option<bool>,
}

impl ChargeSlot {
    pub fn values(&self) -> SlotValues {
        SlotValues {
            day: Day::Enabled(DayRule::Weekday(self.day)).raw(),
            start: self.start.0 as i32,
            duration: self.duration.0 as i32,
            soc: self.soc.get() as i32,
            allow_discharge: self.allow_discharge.map(i32::from),
        }
    }
}

/// What the planner wants of one owned slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotPlan {
    Charge(ChargeSlot),
    Disabled,
}

/// A slot's raw values as the GX holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotValues {
    pub day: i32,
    pub start: i32,
    pub duration: i32,
    pub soc: i32,
    /// None where the firmware has no such setting (before mid-2022), or
    /// where a plan leaves it alone.
    pub allow_discharge: Option<i32>,
}

impl SlotValues {
    /// A leaf's value; firmware without `AllowDischarge` behaves as 0.
    pub fn get(&self, field: Field) -> i32 {
        match field {
            Field::Day => self.day,
            Field::Start => self.start,
            Field::Duration => self.duration,
            Field::Soc => self.soc,
            Field::AllowDischarge => self.allow_discharge.unwrap_or(0),
        }
    }

    pub fn set(&mut self, field: Field, value: i32) {
        match field {
            Field::Day => self.day = value,
            Field::Start => self.start = value,
            Field::Duration => self.duration = value,
            Field::Soc => self.soc = value,
            Field::AllowDischarge => self.allow_discharge = Some(value),
        }
    }

    /// The fields a plan sets: the four, and `AllowDischarge` when it opts in.
    fn planned_fields(wanted: &SlotValues) -> Vec<Field> {
        let mut fields = vec![Field::Start, Field::Duration, Field::Soc];
        if wanted.allow_discharge.is_some() {
            fields.push(Field::AllowDischarge);
        }
        fields
    }

    /// Whether the GX state satisfies the plan: every field the plan sets
    /// for a charge slot, any disabled day for a disabled one.
    pub fn satisfies(&self, plan: &SlotPlan) -> bool {
        match plan {
            SlotPlan::Charge(slot) => {
                let wanted = slot.values();
                self.day == wanted.day
                    && Self::planned_fields(&wanted)
                        .into_iter()
                        .all(|f| self.get(f) == wanted.get(f))
            }
            SlotPlan::Disabled => !is_enabled_raw(self.day),
        }
    }
}

/// One `SetValue` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub leaf: Leaf,
    pub value: i32,
}

/// The writes that take one slot from `current` to `plan`, only for leaves
/// that differ, in three phases. An enabled slot whose times or SoC change
/// is disabled first and enabled last, so after any prefix of a run's
/// writes each owned slot holds its old values, is disabled, or is as
/// planned: never a live mix of old and new, even if the run is killed.
/// A run performs every slot's `disable`, then the fields, then every
/// `enable`, so stale windows go off before anything new goes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotWrites {
    pub disable: Option<Write>,
    pub fields: Vec<Write>,
    pub enable: Option<Write>,
}

pub fn writes_for(slot: SlotIndex, current: &SlotValues, plan: &SlotPlan) -> SlotWrites {
    let write = |field, value| Write {
        leaf: slot.leaf(field),
        value,
    };
    let disable =
        || is_enabled_raw(current.day).then(|| write(Field::Day, disable_raw(current.day)));
    match plan {
        SlotPlan::Disabled => SlotWrites {
            disable: disable(),
            ..SlotWrites::default()
        },
        SlotPlan::Charge(charge) => {
            let wanted = charge.values();
            let fields: Vec<Write> = SlotValues::planned_fields(&wanted)
                .into_iter()
                .filter(|&f| current.get(f) != wanted.get(f))
                .map(|f| write(f, wanted.get(f)))
                .collect();
            let guard = if fields.is_empty() { None } else { disable() };
            let enable = (guard.is_some() || current.day != wanted.day)
                .then(|| write(Field::Day, wanted.day));
            SlotWrites {
                disable: guard,
                fields,
                enable,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: u8) -> SlotIndex {
        SlotIndex::new(n).unwrap()
    }

    fn charge(day: Weekday, start: u32, duration: u32, soc: u8) -> SlotPlan {
        SlotPlan::Charge(ChargeSlot {
            day,
            start: SecondsAfterMidnight(start),
            duration: DurationSeconds(duration),
            soc: Soc::new(soc).unwrap(),
            allow_discharge: None,
        })
    }

    fn values(day: i32, start: i32, duration: i32, soc: i32) -> SlotValues {
        SlotValues {
            day,
            start,
            duration,
            soc,
            allow_discharge: None,
        }
    }

    #[test]
    fn slot_index_is_bounded() {
        assert!(SlotIndex::new(4).is_some());
        assert!(SlotIndex::new(5).is_none());
        assert_eq!(SlotIndex::all().count(), 5);
    }

    #[test]
    fn leaf_paths() {
        assert_eq!(
            slot(3).leaf(Field::Day).to_string(),
            "/Settings/CGwacs/BatteryLife/Schedule/Charge/3/Day"
        );
        assert_eq!(slot(0).leaf(Field::Soc).relative(), "0/Soc");
    }

    #[test]
    fn sunday_disable_is_minus_ten_not_minus_zero() {
        assert_eq!(disable_raw(0), -10);
        assert_eq!(
            Day::Disabled(DayRule::Weekday(Weekday::Sun)).raw(),
            -10,
            "plain negation would leave Sunday enabled"
        );
        assert_eq!(
            Day::from_raw(-10),
            Some(Day::Disabled(DayRule::Weekday(Weekday::Sun)))
        );
    }

    #[test]
    fn disable_keeps_the_day_and_is_idempotent() {
        for raw in 1..=11 {
            assert_eq!(disable_raw(raw), -raw);
        }
        for raw in -11..0 {
            assert_eq!(disable_raw(raw), raw);
        }
    }

    #[test]
    fn day_round_trips_for_every_gx_value() {
        for raw in -11..=9 {
            let day = Day::from_raw(raw).unwrap_or_else(|| panic!("{raw} decodes"));
            assert_eq!(day.raw(), raw, "{raw}");
        }
        assert_eq!(Day::from_raw(10), Some(Day::Enabled(DayRule::Monthly)));
        assert_eq!(Day::from_raw(11), Some(Day::Enabled(DayRule::Monthly)));
        assert_eq!(Day::from_raw(12), None);
        assert_eq!(Day::from_raw(-12), None);
        assert_eq!(
            Day::from_raw(1),
            Some(Day::Enabled(DayRule::Weekday(Weekday::Mon)))
        );
        assert_eq!(Day::from_raw(-7), Some(Day::Disabled(DayRule::EveryDay)));
    }

    #[test]
    fn soc_is_bounded() {
        assert!(Soc::new(100).is_some());
        assert!(Soc::new(101).is_none());
    }

    fn flat(w: SlotWrites) -> Vec<(Field, i32)> {
        w.disable
            .into_iter()
            .chain(w.fields)
            .chain(w.enable)
            .map(|w| (w.leaf.field, w.value))
            .collect()
    }

    #[test]
    fn identical_slot_needs_no_writes() {
        let plan = charge(Weekday::Mon, 36000, 21600, 100);
        let same = writes_for(slot(3), &values(1, 36000, 21600, 100), &plan);
        assert_eq!(same, SlotWrites::default());
        let off = writes_for(slot(3), &values(-1, 0, 0, 0), &SlotPlan::Disabled);
        assert_eq!(off, SlotWrites::default());
    }

    #[test]
    fn enabled_slot_with_new_times_is_disabled_first_and_enabled_last() {
        let plan = charge(Weekday::Tue, 36000, 21600, 100);
        let w = writes_for(slot(3), &values(1, 0, 3600, 100), &plan);
        assert_eq!(
            flat(w),
            vec![
                (Field::Day, -1),
                (Field::Start, 36000),
                (Field::Duration, 21600),
                (Field::Day, 2)
            ]
        );
    }

    #[test]
    fn enabled_sunday_slot_is_guarded_with_minus_ten() {
        let plan = charge(Weekday::Sun, 25200, 86400, 100);
        let w = flat(writes_for(slot(4), &values(0, 0, 3600, 100), &plan));
        assert_eq!(w[0].1, -10);
        assert_eq!(w.last().unwrap().1, 0);
    }

    #[test]
    fn disabled_slot_gets_fields_then_day() {
        let plan = charge(Weekday::Sat, 25200, 86400, 90);
        let w = writes_for(slot(4), &values(-7, 25200, 0, 100), &plan);
        assert_eq!(
            flat(w),
            vec![(Field::Duration, 86400), (Field::Soc, 90), (Field::Day, 6)]
        );
    }

    #[test]
    fn a_new_day_alone_is_one_write() {
        // Old or new, the slot is whole either side of the one write.
        let plan = charge(Weekday::Wed, 36000, 21600, 100);
        let w = writes_for(slot(3), &values(2, 36000, 21600, 100), &plan);
        assert_eq!(flat(w), vec![(Field::Day, 3)]);
        let from_off = writes_for(slot(3), &values(-2, 36000, 21600, 100), &plan);
        assert_eq!(flat(from_off), vec![(Field::Day, 3)]);
    }

    #[test]
    fn allow_discharge_is_written_only_when_the_plan_sets_it() {
        let SlotPlan::Charge(mut c) = charge(Weekday::Mon, 46800, 10800, 50) else {
            unreachable!()
        };
        let on = SlotValues {
            allow_discharge: Some(0),
            ..values(1, 46800, 10800, 50)
        };
        // Left to the owner: whatever it holds satisfies the plan.
        assert!(on.satisfies(&SlotPlan::Charge(c)));
        c.allow_discharge = Some(true);
        let plan = SlotPlan::Charge(c);
        assert!(!on.satisfies(&plan));
        // A live window changes behaviour: off, the one field, on again.
        assert_eq!(
            flat(writes_for(slot(3), &on, &plan)),
            vec![
                (Field::Day, -1),
                (Field::AllowDischarge, 1),
                (Field::Day, 1)
            ]
        );
        // Firmware without the setting behaves as 0.
        c.allow_discharge = Some(false);
        let old = values(1, 46800, 10800, 50);
        assert!(old.satisfies(&SlotPlan::Charge(c)));
        assert_eq!(
            writes_for(slot(3), &old, &SlotPlan::Charge(c)),
            SlotWrites::default()
        );
    }

    #[test]
    fn disabling_touches_only_the_day() {
        let w = writes_for(slot(3), &values(0, 1, 2, 3), &SlotPlan::Disabled);
        assert_eq!(flat(w), vec![(Field::Day, -10)]);
    }

    #[test]
    fn satisfies() {
        let plan = charge(Weekday::Mon, 36000, 21600, 100);
        assert!(values(1, 36000, 21600, 100).satisfies(&plan));
        assert!(!values(-1, 36000, 21600, 100).satisfies(&plan));
        assert!(values(-10, 5, 5, 5).satisfies(&SlotPlan::Disabled));
        assert!(!values(0, 5, 5, 5).satisfies(&SlotPlan::Disabled));
    }
}
