//! The charge schedule: the reference controller's format, `{"YYYYMMDDHHmm":
//! value}` with `*` wildcards, and its resolution rules. Pure: no clock, no
//! I/O; the caller passes the local date or time (and the zone where an
//! instant is needed).
//!
//! Resolution for a date: the candidate times are every whole hour plus every
//! explicit `HHmm` in the keys. At each candidate, the entries whose date part
//! matches (`*` matches any digit) compete: an entry with an explicit time
//! takes part once its time is <= the candidate, the latest time wins; an
//! entry whose time part holds a `*` matches at any time but loses to every
//! explicit time. Ties go to the key with more explicit characters, then to
//! the larger key in byte order, as the reference does (`*` sorts below the
//! digits: a year beats a month, `********08**` beats `********07**`). The
//! value in force at a moment is the one resolved for the latest candidate
//! <= that moment; no match means 0 W.
//!
//! Times are the home's wall clock. On the spring DST day an entry inside the
//! skipped hour takes effect when the clock jumps (03:00 in Europe/Amsterdam);
//! on the autumn day the repeated hour repeats its values, as the wall clock
//! does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    offset::LocalResult,
};
use serde_json::{Map, Value, json};

/// Length of a key: `YYYYMMDDHHmm`.
pub const KEY_LEN: usize = 12;

/// What the battery should do while an entry is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleValue {
    /// Positive: charge from AC at this power; negative: discharge to the
    /// house. Clamped to the device limits when in force, not when parsed.
    Watts(i32),
    /// Drive the net grid power to ~0: discharge to cover import, charge from
    /// export.
    NetZero,
    /// Only charge from what would be exported; never discharge.
    NetZeroPlus,
}

impl ScheduleValue {
    pub const IDLE: ScheduleValue = ScheduleValue::Watts(0);

    /// The JSON form used in the schedule file.
    pub fn to_json(self) -> Value {
        match self {
            ScheduleValue::Watts(w) => json!(w),
            ScheduleValue::NetZero => json!("netzero"),
            ScheduleValue::NetZeroPlus => json!("netzero+"),
        }
    }

    /// Parses one value; the error says what is wrong with it (without the
    /// key, which the caller adds). Numbers and numeric strings are read as
    /// the reference stores them (PHP's `is_numeric`, then `(int)`): `"500"`
    /// is 500 W and `12.5` is 12 W, cut toward zero.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        const EXPECTED: &str = "expected a whole number of W, \"netzero\" or \"netzero+\"";
        match value {
            Value::Number(n) => match n.as_i64() {
                Some(w) => watts(w as f64, &n.to_string()),
                None => watts(n.as_f64().unwrap_or(f64::NAN), &n.to_string()),
            },
            Value::String(s) => match s.as_str() {
                "netzero" => Ok(ScheduleValue::NetZero),
                "netzero+" => Ok(ScheduleValue::NetZeroPlus),
                other => match php_numeric(other) {
                    Some(x) => watts(x, &format!("\"{other}\"")),
                    None => Err(format!("unknown value \"{other}\" ({EXPECTED})")),
                },
            },
            other => Err(format!("{other} is not a value ({EXPECTED})")),
        }
    }
}

/// W from a number, cut toward zero as PHP's `(int)`.
fn watts(x: f64, shown: &str) -> Result<ScheduleValue, String> {
    let w = x.trunc();
    if w.is_finite() && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&w) {
        Ok(ScheduleValue::Watts(w as i32))
    } else {
        Err(format!("{shown} W is out of range"))
    }
}

/// A numeric string as PHP's `is_numeric` sees one: optional white space
/// around, a sign, digits with an optional fraction, an optional exponent.
fn php_numeric(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'));
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    (mantissa_ok && exponent_ok)
        .then(|| t.parse().ok())
        .flatten()
}

impl fmt::Display for ScheduleValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleValue::Watts(w) => write!(f, "{w} W"),
            ScheduleValue::NetZero => f.write_str("netzero"),
            ScheduleValue::NetZeroPlus => f.write_str("netzero+"),
        }
    }
}

/// A validated 12-character key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    pub fn parse(key: &str) -> Result<Key, InvalidSchedule> {
        let bad = |reason: String| InvalidSchedule {
            key: Some(key.to_string()),
            reason,
        };
        if key.chars().count() != KEY_LEN {
            return Err(bad(format!(
                "a key has {KEY_LEN} characters (YYYYMMDDHHmm), this one {}",
                key.chars().count()
            )));
        }
        if let Some(c) = key.chars().find(|c| !(c.is_ascii_digit() || *c == '*')) {
            return Err(bad(format!(
                "'{c}' is not a digit or '*' (keys are YYYYMMDDHHmm, '*' matches any digit)"
            )));
        }
        let field = |range: std::ops::Range<usize>| -> Option<u32> { key[range].parse().ok() };
        let checks: [(&str, std::ops::Range<usize>, u32, u32); 4] = [
            ("month", 4..6, 1, 12),
            ("day", 6..8, 1, 31),
            ("hour", 8..10, 0, 23),
            ("minute", 10..12, 0, 59),
        ];
        for (name, range, lo, hi) in checks {
            match field(range.clone()) {
                Some(v) if !(lo..=hi).contains(&v) => {
                    return Err(bad(format!("{name} {v} is out of range {lo:02}-{hi:02}")));
                }
                // Half a wildcard: its digit alone can already rule out
                // every value (month 2*), as the schema's pattern says.
                None if key[range.clone()]
                    .chars()
                    .next()
                    .and_then(|c| c.to_digit(10))
                    .is_some_and(|d| d > hi / 10) =>
                {
                    return Err(bad(format!(
                        "{name} {} can never match: its first digit is at most {}",
                        &key[range],
                        hi / 10
                    )));
                }
                _ => {}
            }
        }
        if let (Some(y), Some(m), Some(d)) = (field(0..4), field(4..6), field(6..8))
            && NaiveDate::from_ymd_opt(y as i32, m, d).is_none()
        {
            return Err(bad(format!("{y:04}-{m:02}-{d:02} is not a date")));
        }
        Ok(Key(key.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The explicit time of day, or `None` when the time part holds a `*`.
    pub fn time(&self) -> Option<NaiveTime> {
        let h = self.0[8..10].parse().ok()?;
        let m = self.0[10..12].parse().ok()?;
        NaiveTime::from_hms_opt(h, m, 0)
    }

    /// Whether the date part matches `date`.
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        let digits = format!("{:04}{:02}{:02}", date.year(), date.month(), date.day());
        self.0[..8]
            .bytes()
            .zip(digits.bytes())
            .all(|(k, d)| k == b'*' || k == d)
    }

    /// Count of explicit (non-`*`) characters.
    pub fn specificity(&self) -> usize {
        self.0.bytes().filter(|b| *b != b'*').count()
    }

    /// True when `self` beats `other` at equal time: more explicit
    /// characters, then the larger key (the reference's `strcmp($b, $a)`:
    /// `*` sorts below every digit, so an explicit character beats a `*` in
    /// the same place, and a later hour beats an earlier one).
    fn beats(&self, other: &Key) -> bool {
        match self.specificity().cmp(&other.specificity()) {
            std::cmp::Ordering::Equal => self.0 > other.0,
            order => order == std::cmp::Ordering::Greater,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a fetch gave no schedule: the source could not be read, or what it
/// gave is not a valid schedule. The controller logs them differently.
#[derive(Debug)]
pub enum FetchError {
    Unreachable(anyhow::Error),
    Invalid(anyhow::Error),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unreachable(e) => write!(f, "{e:#}"),
            FetchError::Invalid(e) => write!(f, "invalid: {e:#}"),
        }
    }
}

/// Why a schedule was refused: the key (when one is at fault) and what is
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSchedule {
    pub key: Option<String>,
    pub reason: String,
}

impl fmt::Display for InvalidSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "schedule key \"{key}\": {}", self.reason),
            None => write!(f, "schedule: {}", self.reason),
        }
    }
}

impl std::error::Error for InvalidSchedule {}

/// A parsed, validated schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    entries: BTreeMap<Key, ScheduleValue>,
}

/// The value resolved for one candidate time of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub time: NaiveTime,
    pub value: ScheduleValue,
    /// The winning key; `None` when nothing matched (0 W).
    pub key: Option<Key>,
}

/// The value in force at a moment, and since when (local wall clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    pub since: NaiveDateTime,
    pub value: ScheduleValue,
    pub key: Option<Key>,
}

/// A coming change of value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<T> {
    pub at: T,
    pub value: ScheduleValue,
    pub key: Option<Key>,
}

/// How far `next_change` looks ahead: a week covers every daily and weekly
/// pattern without resolving a year every control cycle.
pub const LOOKAHEAD_DAYS: u32 = 8;

impl Schedule {
    /// Accepts the schedule object `{"YYYYMMDDHHmm": value}` or the
    /// reference schedule API's GET response (its `entries` list of
    /// `{"key","value"}`).
    pub fn parse(value: &Value) -> Result<Schedule, InvalidSchedule> {
        let object = value.as_object().ok_or_else(|| InvalidSchedule {
            key: None,
            reason: "expected a JSON object of \"YYYYMMDDHHmm\": value".to_string(),
        })?;
        match object.get("entries") {
            Some(entries) if object.contains_key("success") || entries.is_array() => {
                Schedule::from_api_entries(entries)
            }
            _ => Schedule::from_object(object),
        }
    }

    /// Parses the schedule object.
    pub fn from_object(object: &Map<String, Value>) -> Result<Schedule, InvalidSchedule> {
        Schedule::from_pairs(object.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// Parses the `entries` list of the reference API's GET response.
    pub fn from_api_entries(entries: &Value) -> Result<Schedule, InvalidSchedule> {
        let list = entries.as_array().ok_or_else(|| InvalidSchedule {
            key: None,
            reason: "`entries` is not a list".to_string(),
        })?;
        let mut pairs = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            let key = entry.get("key").and_then(Value::as_str);
            let value = entry.get("value");
            match (key, value) {
                (Some(key), Some(value)) => pairs.push((key, value)),
                _ => {
                    return Err(InvalidSchedule {
                        key: None,
                        reason: format!("entries[{i}] lacks a string \"key\" or a \"value\""),
                    });
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some((dup, _)) = pairs.iter().find(|(k, _)| !seen.insert(*k)) {
            return Err(InvalidSchedule {
                key: Some(dup.to_string()),
                reason: "appears twice in entries".to_string(),
            });
        }
        Schedule::from_pairs(pairs.into_iter())
    }

    fn from_pairs<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a Value)>,
    ) -> Result<Schedule, InvalidSchedule> {
        let mut entries = BTreeMap::new();
        for (key, value) in pairs {
            let parsed_key = Key::parse(key)?;
            let parsed_value =
                ScheduleValue::from_json(value).map_err(|reason| InvalidSchedule {
                    key: Some(key.to_string()),
                    reason,
                })?;
            entries.insert(parsed_key, parsed_value);
        }
        Ok(Schedule { entries })
    }

    /// Builds a schedule from already-valid parts (planners, tests).
    pub fn from_entries(entries: impl IntoIterator<Item = (Key, ScheduleValue)>) -> Schedule {
        Schedule {
            entries: entries.into_iter().collect(),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = (&Key, ScheduleValue)> {
        self.entries.iter().map(|(k, v)| (k, *v))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The schedule object, keys in order.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.entries
                .iter()
                .map(|(k, v)| (k.0.clone(), v.to_json()))
                .collect(),
        )
    }

    /// Every whole hour plus every explicit time in the keys, ascending.
    pub fn candidate_times(&self) -> Vec<NaiveTime> {
        let mut times: Vec<NaiveTime> = (0..24)
            .filter_map(|h| NaiveTime::from_hms_opt(h, 0, 0))
            .chain(self.entries.keys().filter_map(Key::time))
            .collect();
        times.sort();
        times.dedup();
        times
    }
}

/// One entry as resolution needs it: parsed once, not on every comparison.
#[derive(Debug)]
struct Indexed {
    key: Key,
    value: ScheduleValue,
    /// The date part, `*` kept.
    date: [u8; 8],
    time: Option<NaiveTime>,
}

impl Indexed {
    fn matches(&self, digits: &[u8; 8]) -> bool {
        self.date
            .iter()
            .zip(digits)
            .all(|(k, d)| *k == b'*' || k == d)
    }
}

fn date_digits(date: NaiveDate) -> [u8; 8] {
    let text = format!("{:04}{:02}{:02}", date.year(), date.month(), date.day());
    let mut digits = [b'0'; 8];
    digits.copy_from_slice(&text.as_bytes()[..8]);
    digits
}

/// Days a `Resolver` keeps resolved; a month of plots and a week ahead fit.
const CACHED_DAYS: usize = 64;

/// A schedule indexed for resolution: its entries parsed and its candidate
/// times sorted once, and each date resolved in one sweep (entries by time)
/// and kept, so a month of steps costs a few resolved days, not a scan of
/// every entry at every candidate. Build one per schedule version; it can
/// be shared between threads.
#[derive(Debug)]
pub struct Resolver {
    entries: Vec<Indexed>,
    times: Vec<NaiveTime>,
    days: std::sync::Mutex<HashMap<NaiveDate, Arc<[Resolved]>>>,
}

impl Resolver {
    pub fn new(schedule: &Schedule) -> Resolver {
        let entries = schedule
            .entries
            .iter()
            .map(|(key, value)| {
                let mut date = [0; 8];
                date.copy_from_slice(&key.0.as_bytes()[..8]);
                Indexed {
                    key: key.clone(),
                    value: *value,
                    date,
                    time: key.time(),
                }
            })
            .collect();
        Resolver {
            entries,
            times: schedule.candidate_times(),
            days: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The day resolved at every candidate time.
    pub fn day(&self, date: NaiveDate) -> Arc<[Resolved]> {
        let mut days = self.days.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(day) = days.get(&date) {
            return day.clone();
        }
        let day: Arc<[Resolved]> = self.sweep(date).into();
        if days.len() >= CACHED_DAYS {
            days.clear();
        }
        days.insert(date, day.clone());
        day
    }

    /// The module's rule, in one pass: explicit times in order, each
    /// candidate taking the latest time not after it (ties by `beats`),
    /// else the best entry with a `*` in its time.
    fn sweep(&self, date: NaiveDate) -> Vec<Resolved> {
        let digits = date_digits(date);
        let matching = self.entries.iter().filter(|e| e.matches(&digits));
        let mut explicit: Vec<(NaiveTime, &Indexed)> = Vec::new();
        let mut fallback: Option<&Indexed> = None;
        for entry in matching {
            match entry.time {
                Some(time) => explicit.push((time, entry)),
                None => {
                    if fallback.is_none_or(|held| entry.key.beats(&held.key)) {
                        fallback = Some(entry);
                    }
                }
            }
        }
        // Stable: equal times keep the key order, as a scan would see them.
        explicit.sort_by_key(|(time, _)| *time);
        let mut next = explicit.iter().peekable();
        let mut best: Option<(NaiveTime, &Indexed)> = None;
        self.times
            .iter()
            .map(|&at| {
                while let Some(&&(time, entry)) = next.peek() {
                    if time > at {
                        break;
                    }
                    if best.is_none_or(|(held_time, held)| {
                        time > held_time || entry.key.beats(&held.key)
                    }) {
                        best = Some((time, entry));
                    }
                    next.next();
                }
                match best.map(|(_, e)| e).or(fallback) {
                    Some(entry) => Resolved {
                        time: at,
                        value: entry.value,
                        key: Some(entry.key.clone()),
                    },
                    None => Resolved {
                        time: at,
                        value: ScheduleValue::IDLE,
                        key: None,
                    },
                }
            })
            .collect()
    }

    /// Where the latest candidate <= `at` sits in a resolved day.
    fn index(&self, at: NaiveTime) -> usize {
        // 00:00 is always a candidate, so there is one.
        self.times.partition_point(|t| *t <= at).max(1) - 1
    }

    /// The value in force at a local wall-clock moment.
    pub fn value_at(&self, at: NaiveDateTime) -> InForce {
        let i = self.index(at.time());
        let resolved = self.day(at.date())[i].clone();
        InForce {
            since: at.date().and_time(resolved.time),
            value: resolved.value,
            key: resolved.key,
        }
    }

    /// The next local wall-clock moment after `after` at which the value
    /// changes, looking at most `LOOKAHEAD_DAYS` ahead.
    pub fn next_change(&self, after: NaiveDateTime) -> Option<Change<NaiveDateTime>> {
        let current = self.value_at(after).value;
        // The first candidate after `after` on its own day; every one after.
        let first = self.times.partition_point(|t| *t <= after.time());
        (0..=LOOKAHEAD_DAYS)
            .filter_map(|d| after.date().checked_add_days(chrono::Days::new(d.into())))
            .find_map(|date| {
                let day = self.day(date);
                let skip = if date == after.date() { first } else { 0 };
                day[skip..]
                    .iter()
                    .find(|r| r.value != current)
                    .map(|r| Change {
                        at: date.and_time(r.time),
                        value: r.value,
                        key: r.key.clone(),
                    })
            })
    }

    /// The value in force at an instant, in the home's zone.
    pub fn value_at_instant<Tz: TimeZone>(&self, zone: &Tz, at: DateTime<chrono::Utc>) -> InForce {
        self.value_at(local(zone, at))
    }

    /// The next change after an instant, as an instant and the value the
    /// wall clock shows then (a change inside a skipped hour lands on the
    /// hour after it, where a later entry may already win).
    pub fn next_change_instant<Tz: TimeZone>(
        &self,
        zone: &Tz,
        after: DateTime<chrono::Utc>,
    ) -> Option<Change<DateTime<chrono::Utc>>> {
        let current = self.value_at_instant(zone, after).value;
        let mut from = local(zone, after);
        // Each step moves the wall clock forward; a few steps pass any DST
        // transition.
        for _ in 0..8 {
            let change = self.next_change(from)?;
            let at = instant(zone, change.at, after)?;
            let shown = self.value_at_instant(zone, at);
            if shown.value != current {
                return Some(Change {
                    at,
                    value: shown.value,
                    key: shown.key,
                });
            }
            from = local(zone, at).max(change.at);
        }
        None
    }
}

/// The day resolved at every candidate time (the reference API's
/// `resolved` list).
pub fn resolve_day(schedule: &Schedule, date: NaiveDate) -> Vec<Resolved> {
    Resolver::new(schedule).sweep(date)
}

/// The day as changes: the first candidate (00:00) and every candidate whose
/// value differs from the one before.
pub fn day_changes(schedule: &Schedule, date: NaiveDate) -> Vec<Resolved> {
    let mut out: Vec<Resolved> = Vec::new();
    for r in resolve_day(schedule, date) {
        if out.last().is_none_or(|last| last.value != r.value) {
            out.push(r);
        }
    }
    out
}

/// The value in force at a local wall-clock moment.
pub fn value_at(schedule: &Schedule, at: NaiveDateTime) -> InForce {
    Resolver::new(schedule).value_at(at)
}

/// The next local wall-clock moment after `after` at which the value
/// changes, looking at most `LOOKAHEAD_DAYS` ahead.
pub fn next_change(schedule: &Schedule, after: NaiveDateTime) -> Option<Change<NaiveDateTime>> {
    Resolver::new(schedule).next_change(after)
}

/// The wall-clock moment of `at` in `zone`.
pub fn local<Tz: TimeZone>(zone: &Tz, at: DateTime<chrono::Utc>) -> NaiveDateTime {
    at.with_timezone(zone).naive_local()
}

/// The first instant at or after `not_before` showing wall-clock moment
/// `at` in `zone`: of a repeated time, the occurrence not yet passed; of a
/// skipped one, the end of the gap.
pub fn instant<Tz: TimeZone>(
    zone: &Tz,
    at: NaiveDateTime,
    not_before: DateTime<chrono::Utc>,
) -> Option<DateTime<chrono::Utc>> {
    // DST gaps are at most a few hours; step by minutes to the first
    // existing wall time.
    (0..=24 * 60).find_map(|m| {
        let utc = |d: DateTime<Tz>| d.with_timezone(&chrono::Utc);
        match zone.from_local_datetime(&(at + TimeDelta::minutes(m))) {
            LocalResult::Single(d) => Some(utc(d)),
            LocalResult::Ambiguous(first, last) => {
                let (first, last) = (utc(first), utc(last));
                Some(if first >= not_before { first } else { last })
            }
            LocalResult::None => None,
        }
    })
}

/// The value in force at an instant, in the home's zone.
pub fn value_at_instant<Tz: TimeZone>(
    schedule: &Schedule,
    zone: &Tz,
    at: DateTime<chrono::Utc>,
) -> InForce {
    Resolver::new(schedule).value_at_instant(zone, at)
}

/// The next change after an instant (see `Resolver::next_change_instant`).
pub fn next_change_instant<Tz: TimeZone>(
    schedule: &Schedule,
    zone: &Tz,
    after: DateTime<chrono::Utc>,
) -> Option<Change<DateTime<chrono::Utc>>> {
    Resolver::new(schedule).next_change_instant(zone, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    fn sched(v: Value) -> Schedule {
        Schedule::parse(&v).unwrap()
    }

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn at(s: &Schedule, when: &str) -> ScheduleValue {
        value_at(s, dt(when)).value
    }

    fn err(v: Value) -> InvalidSchedule {
        Schedule::parse(&v).unwrap_err()
    }

    #[test]
    fn parses_every_value_kind_and_round_trips() {
        let v = json!({"202611231730": -400, "********0700": "netzero", "********1200": "netzero+", "2026****1800": 800});
        let s = sched(v.clone());
        assert_eq!(s.entries().count(), 4);
        assert_eq!(s.to_json(), v);
        assert_eq!(Schedule::parse(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn accepts_the_api_response() {
        let v = json!({"success": true, "entries": [{"key": "********0700", "value": 300}, {"key": "********2200", "value": "netzero"}],
            "resolved": [], "date": "20261123", "currentHour": "07", "currentTime": "0701"});
        let s = sched(v);
        assert_eq!(
            s.to_json(),
            json!({"********0700": 300, "********2200": "netzero"})
        );
    }

    #[test]
    fn api_response_errors_name_the_entry() {
        let e = err(json!({"success": true, "entries": [{"key": "********0700"}]}));
        assert!(e.reason.contains("entries[0]"), "{e}");
        let e = err(
            json!({"entries": [{"key": "********0700", "value": 1}, {"key": "********0700", "value": 2}]}),
        );
        assert_eq!(e.key.as_deref(), Some("********0700"));
        let e = err(json!({"success": true, "entries": {}}));
        assert!(e.to_string().contains("entries"), "{e}");
    }

    #[test]
    fn the_empty_object_is_a_schedule_of_zero() {
        let s = sched(json!({}));
        assert!(s.is_empty());
        assert_eq!(at(&s, "2026-11-23 12:00"), ScheduleValue::Watts(0));
        assert_eq!(value_at(&s, dt("2026-11-23 12:00")).key, None);
        assert_eq!(next_change(&s, dt("2026-11-23 12:00")), None);
    }

    #[test]
    fn validation_names_the_bad_key_or_value() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!({"2026112317": 1}), "2026112317", "12 characters"),
            (
                json!({"2026112317300": 1}),
                "2026112317300",
                "12 characters",
            ),
            (json!({"20261123173a": 1}), "20261123173a", "'a'"),
            (json!({"2026-1123173": 1}), "2026-1123173", "'-'"),
            (json!({"202613231730": 1}), "202613231730", "month 13"),
            (json!({"202600231730": 1}), "202600231730", "month 0"),
            (json!({"202611321730": 1}), "202611321730", "day 32"),
            (json!({"202611232430": 1}), "202611232430", "hour 24"),
            (json!({"202611231760": 1}), "202611231760", "minute 60"),
            (json!({"202602301730": 1}), "202602301730", "not a date"),
            (
                json!({"202611231730": "NetZero"}),
                "202611231730",
                "unknown value",
            ),
            (
                json!({"202611231730": "0x1A"}),
                "202611231730",
                "unknown value",
            ),
            (
                json!({"202611231730": "inf"}),
                "202611231730",
                "unknown value",
            ),
            (json!({"202611231730": ""}), "202611231730", "unknown value"),
            (
                json!({"202611231730": "1e99"}),
                "202611231730",
                "out of range",
            ),
            (json!({"202611231730": null}), "202611231730", "not a value"),
            (json!({"202611231730": true}), "202611231730", "not a value"),
            (
                json!({"202611231730": 3_000_000_000i64}),
                "202611231730",
                "out of range",
            ),
        ];
        for (v, key, needle) in cases {
            let e = err(v.clone());
            assert_eq!(e.key.as_deref(), Some(key), "{v}");
            assert!(e.to_string().contains(needle), "{v}: {e}");
            assert!(e.to_string().contains(key), "{v}: {e}");
        }
        assert!(err(json!([1])).key.is_none());
        // Wildcards inside a field skip the range check of that field.
        assert!(Schedule::parse(&json!({"2026**3*1*30": 1})).is_ok());
        // Leap day.
        assert!(Schedule::parse(&json!({"202802291200": 1})).is_ok());
        // A W beyond any limit is valid; it is clamped when in force.
        assert!(Schedule::parse(&json!({"********1200": -100000})).is_ok());
    }

    #[test]
    fn numbers_and_numeric_strings_read_as_the_reference_stores_them() {
        // PHP: is_numeric, then (int), which cuts toward zero.
        for (v, w) in [
            (json!("500"), 500),
            (json!(" 500\n"), 500),
            (json!("-300"), -300),
            (json!("+5"), 5),
            (json!(12.5), 12),
            (json!(-12.5), -12),
            (json!("12.9"), 12),
            (json!("1e3"), 1000),
            (json!(".5"), 0),
            (json!("5."), 5),
            (json!(2400.0), 2400),
        ] {
            assert_eq!(
                ScheduleValue::from_json(&v),
                Ok(ScheduleValue::Watts(w)),
                "{v}"
            );
        }
    }

    #[test]
    fn candidates_are_the_hours_plus_explicit_times() {
        let s = sched(
            json!({"********0730": 1, "2026****1815": 2, "20261123****": 3, "********07**": 4}),
        );
        let times = s.candidate_times();
        assert_eq!(times.len(), 26);
        assert!(times.contains(&t("07:30")) && times.contains(&t("18:15")));
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn latest_explicit_time_wins() {
        let s =
            sched(json!({"********0700": 100, "********1730": -200, "********2200": "netzero"}));
        assert_eq!(at(&s, "2026-11-23 00:00"), ScheduleValue::Watts(0));
        assert_eq!(at(&s, "2026-11-23 06:59"), ScheduleValue::Watts(0));
        assert_eq!(at(&s, "2026-11-23 07:00"), ScheduleValue::Watts(100));
        assert_eq!(at(&s, "2026-11-23 17:29"), ScheduleValue::Watts(100));
        assert_eq!(at(&s, "2026-11-23 17:30"), ScheduleValue::Watts(-200));
        assert_eq!(at(&s, "2026-11-23 23:59"), ScheduleValue::NetZero);
        // The day does not carry over: midnight starts from nothing again.
        assert_eq!(at(&s, "2026-11-24 00:30"), ScheduleValue::Watts(0));
    }

    #[test]
    fn wildcard_time_is_a_fallback_that_loses_to_explicit_times() {
        let s = sched(json!({"20261123****": "netzero", "********0900": 500}));
        assert_eq!(at(&s, "2026-11-23 08:00"), ScheduleValue::NetZero);
        assert_eq!(at(&s, "2026-11-23 09:00"), ScheduleValue::Watts(500));
        // Less specific explicit key still beats the more specific fallback.
        assert_eq!(at(&s, "2026-11-23 23:00"), ScheduleValue::Watts(500));
        // Another day: the fallback does not match, 0 W until 09:00.
        assert_eq!(at(&s, "2026-11-24 08:00"), ScheduleValue::Watts(0));
        // A partial-time wildcard is a fallback too, all day.
        let s = sched(json!({"********07**": 42}));
        assert_eq!(at(&s, "2026-11-23 00:00"), ScheduleValue::Watts(42));
        assert_eq!(at(&s, "2026-11-23 23:00"), ScheduleValue::Watts(42));
    }

    #[test]
    fn ties_go_to_the_more_specific_key() {
        let s = sched(
            json!({"********0700": 1, "2026****0700": 2, "202611230700": 3, "20261123****": 9, "2026********": 8}),
        );
        assert_eq!(at(&s, "2026-11-23 07:00"), ScheduleValue::Watts(3));
        assert_eq!(at(&s, "2026-11-24 07:00"), ScheduleValue::Watts(2));
        assert_eq!(at(&s, "2027-01-01 07:00"), ScheduleValue::Watts(1));
        // Fallbacks: the more specific one.
        assert_eq!(at(&s, "2026-11-23 06:00"), ScheduleValue::Watts(9));
        assert_eq!(at(&s, "2026-11-24 06:00"), ScheduleValue::Watts(8));
        assert_eq!(at(&s, "2027-11-24 06:00"), ScheduleValue::Watts(0));
        let key = value_at(&s, dt("2026-11-23 07:00")).key.unwrap();
        assert_eq!(key.as_str(), "202611230700");
    }

    #[test]
    fn equal_specificity_goes_to_the_larger_key_whatever_the_order() {
        // Year-specific beats month-specific at the same time and count.
        let a = json!({"2026****0700": "netzero", "****11**0700": "netzero+"});
        let b = json!({"****11**0700": "netzero+", "2026****0700": "netzero"});
        for v in [a, b] {
            let s = sched(v);
            assert_eq!(at(&s, "2026-11-23 07:00"), ScheduleValue::NetZero);
            assert_eq!(at(&s, "2027-11-23 07:00"), ScheduleValue::NetZeroPlus);
        }
        // Keys whose time holds a `*` match all day: the larger one wins
        // everywhere, as in the reference (`strcmp($b, $a)`).
        let s = sched(json!({"********07**": 42, "********08**": 43}));
        for time in ["00:00", "07:00", "08:00", "23:59"] {
            assert_eq!(
                at(&s, &format!("2026-11-24 {time}")),
                ScheduleValue::Watts(43)
            );
        }
        let keys: Vec<Key> = [
            "2026****0700",
            "****11**0700",
            "******230700",
            "2***1***0700",
            "********07**",
            "********08**",
            "********1*0*",
        ]
        .iter()
        .map(|k| Key::parse(k).unwrap())
        .collect();
        for x in &keys {
            for y in &keys {
                if x != y {
                    assert_ne!(x.beats(y), y.beats(x), "{x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn wildcards_match_single_digits() {
        let s = sched(json!({"2026112*1200": 7, "******0*1200": 8}));
        assert_eq!(at(&s, "2026-11-23 12:00"), ScheduleValue::Watts(7));
        assert_eq!(at(&s, "2026-11-30 12:00"), ScheduleValue::Watts(0));
        assert_eq!(at(&s, "2026-12-05 12:00"), ScheduleValue::Watts(8));
        assert_eq!(at(&s, "2026-12-15 12:00"), ScheduleValue::Watts(0));
    }

    #[test]
    fn resolve_day_lists_every_candidate_and_changes_collapse() {
        let s =
            sched(json!({"********0700": 100, "********0730": 100, "********1730": "netzero+"}));
        let day = resolve_day(&s, d("2026-11-23"));
        assert_eq!(day.len(), 26);
        assert_eq!(day[0].time, t("00:00"));
        assert_eq!(day[0].key, None);
        let r0730 = day.iter().find(|r| r.time == t("07:30")).unwrap();
        assert_eq!(r0730.key.as_ref().unwrap().as_str(), "********0730");
        let changes = day_changes(&s, d("2026-11-23"));
        let summary: Vec<(NaiveTime, ScheduleValue)> =
            changes.iter().map(|r| (r.time, r.value)).collect();
        assert_eq!(
            summary,
            vec![
                (t("00:00"), ScheduleValue::Watts(0)),
                (t("07:00"), ScheduleValue::Watts(100)),
                (t("17:30"), ScheduleValue::NetZeroPlus),
            ]
        );
    }

    #[test]
    fn value_at_reports_since_and_key() {
        let s = sched(json!({"********0715": -300}));
        let f = value_at(&s, dt("2026-11-23 07:40"));
        assert_eq!(f.since, dt("2026-11-23 07:15"));
        assert_eq!(f.value, ScheduleValue::Watts(-300));
        let f = value_at(&s, dt("2026-11-23 08:40"));
        assert_eq!(f.since, dt("2026-11-23 08:00"));
        assert_eq!(f.value, ScheduleValue::Watts(-300));
    }

    #[test]
    fn next_change_finds_the_next_different_value_across_days() {
        let s = sched(json!({"********0700": 100, "********0800": 100, "********2200": 0}));
        let c = next_change(&s, dt("2026-11-23 06:00")).unwrap();
        assert_eq!(
            (c.at, c.value),
            (dt("2026-11-23 07:00"), ScheduleValue::Watts(100))
        );
        // Same value at 08:00 is no change; 22:00 is.
        let c = next_change(&s, dt("2026-11-23 07:00")).unwrap();
        assert_eq!(
            (c.at, c.value),
            (dt("2026-11-23 22:00"), ScheduleValue::Watts(0))
        );
        let c = next_change(&s, dt("2026-11-23 23:00")).unwrap();
        assert_eq!(c.at, dt("2026-11-24 07:00"));
        // A one-off a month away is beyond the lookahead.
        let s = sched(json!({"202612241800": 5}));
        assert_eq!(next_change(&s, dt("2026-11-23 23:00")), None);
        let c = next_change(&s, dt("2026-12-20 23:00")).unwrap();
        assert_eq!(c.at, dt("2026-12-24 18:00"));
        // And back to 0 W at midnight.
        let c = next_change(&s, dt("2026-12-24 18:00")).unwrap();
        assert_eq!(c.at, dt("2026-12-25 00:00"));
    }

    #[test]
    fn spring_dst_day_in_amsterdam() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        let s = sched(json!({"********0130": 100, "********0230": 200, "********0300": 300}));
        let day = d("2026-03-29");
        assert_eq!(resolve_day(&s, day).len(), 26);
        let utc = |s: &str| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
                .unwrap()
                .and_utc()
        };
        // 00:59 UTC = 01:59 CET: 100 in force; the next change is at the
        // jump (01:00 UTC = 03:00 CEST), where 03:00 wins over 02:30.
        let f = value_at_instant(&s, &Amsterdam, utc("2026-03-29 00:59"));
        assert_eq!(f.value, ScheduleValue::Watts(100));
        let c = next_change_instant(&s, &Amsterdam, utc("2026-03-29 00:59")).unwrap();
        assert_eq!(c.at, utc("2026-03-29 01:00"));
        assert_eq!(c.value, ScheduleValue::Watts(300));
        // Without a 03:00 entry, the skipped 02:30 one takes effect at the jump.
        let s = sched(json!({"********0130": 100, "********0230": 200}));
        let c = next_change_instant(&s, &Amsterdam, utc("2026-03-29 00:59")).unwrap();
        assert_eq!(c.at, utc("2026-03-29 01:00"));
        assert_eq!(c.value, ScheduleValue::Watts(200));
        assert_eq!(
            value_at_instant(&s, &Amsterdam, utc("2026-03-29 01:00")).value,
            ScheduleValue::Watts(200)
        );
        // A 23-hour day still has 24 hourly candidates on the wall clock.
        assert_eq!(
            instant(&Amsterdam, dt("2026-03-29 02:00"), utc("2026-03-29 00:00")),
            Some(utc("2026-03-29 01:00"))
        );
    }

    #[test]
    fn autumn_dst_day_in_amsterdam() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:xx happens twice.
        let s = sched(json!({"********0230": -500, "********0400": 0}));
        let utc = |s: &str| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
                .unwrap()
                .and_utc()
        };
        // First 02:30 (CEST) = 00:30 UTC.
        let c = next_change_instant(&s, &Amsterdam, utc("2026-10-25 00:10")).unwrap();
        assert_eq!(c.at, utc("2026-10-25 00:30"));
        assert_eq!(
            value_at_instant(&s, &Amsterdam, utc("2026-10-25 00:45")).value,
            ScheduleValue::Watts(-500)
        );
        // Second 02:10 (CET) = 01:10 UTC: the wall clock is before 02:30 again.
        assert_eq!(
            value_at_instant(&s, &Amsterdam, utc("2026-10-25 01:10")).value,
            ScheduleValue::Watts(0)
        );
        // Second 02:30 (CET) = 01:30 UTC: back on -500 until 04:00 CET.
        assert_eq!(
            value_at_instant(&s, &Amsterdam, utc("2026-10-25 01:35")).value,
            ScheduleValue::Watts(-500)
        );
        let c = next_change_instant(&s, &Amsterdam, utc("2026-10-25 01:35")).unwrap();
        assert_eq!(c.at, utc("2026-10-25 03:00"));
        // The ambiguous wall time maps to the occurrence not yet passed.
        assert_eq!(
            instant(&Amsterdam, dt("2026-10-25 02:30"), utc("2026-10-25 00:00")),
            Some(utc("2026-10-25 00:30"))
        );
        assert_eq!(
            instant(&Amsterdam, dt("2026-10-25 02:30"), utc("2026-10-25 01:10")),
            Some(utc("2026-10-25 01:30"))
        );
        let c = next_change_instant(&s, &Amsterdam, utc("2026-10-25 01:10")).unwrap();
        assert_eq!(c.at, utc("2026-10-25 01:30"));
    }

    #[test]
    fn value_display() {
        assert_eq!(ScheduleValue::Watts(-300).to_string(), "-300 W");
        assert_eq!(ScheduleValue::NetZero.to_string(), "netzero");
        assert_eq!(ScheduleValue::NetZeroPlus.to_string(), "netzero+");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn key_strategy() -> impl Strategy<Value = String> {
            // Valid keys: date chars digit-or-star from a fixed date, time
            // explicit or starred.
            (
                proptest::collection::vec(any::<bool>(), 8),
                0u32..24,
                0u32..60,
                any::<bool>(),
            )
                .prop_map(|(stars, h, m, star_time)| {
                    let date: Vec<char> = "20261123".chars().collect();
                    let mut k: String = date
                        .iter()
                        .zip(stars)
                        .map(|(c, s)| if s { '*' } else { *c })
                        .collect();
                    if star_time {
                        k.push_str("****");
                    } else {
                        k.push_str(&format!("{h:02}{m:02}"));
                    }
                    k
                })
        }

        fn value_strategy() -> impl Strategy<Value = Value> {
            prop_oneof![
                (-2400i32..2400).prop_map(|w| json!(w)),
                Just(json!("netzero")),
                Just(json!("netzero+")),
            ]
        }

        /// The rule as first written, kept as the reference the indexed
        /// `Resolver` must agree with: at each candidate, scan every entry.
        mod reference {
            use super::super::*;

            fn winner(
                s: &Schedule,
                date: NaiveDate,
                at: NaiveTime,
            ) -> Option<(&Key, ScheduleValue)> {
                let mut best: Option<(&Key, ScheduleValue)> = None;
                for (key, value) in s.entries().filter(|(k, _)| k.matches_date(date)) {
                    let time = key.time();
                    if time.is_some_and(|t| t > at) {
                        continue;
                    }
                    let better = match best {
                        None => true,
                        Some((held, _)) => match (time, held.time()) {
                            (Some(t), Some(h)) => t > h || (t == h && key.beats(held)),
                            (Some(_), None) => true,
                            (None, Some(_)) => false,
                            (None, None) => key.beats(held),
                        },
                    };
                    if better {
                        best = Some((key, value));
                    }
                }
                best
            }

            pub fn resolve_at(s: &Schedule, date: NaiveDate, at: NaiveTime) -> Resolved {
                let won = winner(s, date, at);
                Resolved {
                    time: at,
                    value: won.map_or(ScheduleValue::IDLE, |(_, v)| v),
                    key: won.map(|(k, _)| k.clone()),
                }
            }

            pub fn value_at(s: &Schedule, at: NaiveDateTime) -> InForce {
                let candidate = s
                    .candidate_times()
                    .into_iter()
                    .rfind(|t| *t <= at.time())
                    .unwrap_or(NaiveTime::MIN);
                let r = resolve_at(s, at.date(), candidate);
                InForce {
                    since: at.date().and_time(candidate),
                    value: r.value,
                    key: r.key,
                }
            }

            pub fn next_change(
                s: &Schedule,
                after: NaiveDateTime,
            ) -> Option<Change<NaiveDateTime>> {
                let current = value_at(s, after).value;
                let times = s.candidate_times();
                (0..=LOOKAHEAD_DAYS)
                    .filter_map(|d| after.date().checked_add_days(chrono::Days::new(d.into())))
                    .flat_map(|date| times.iter().map(move |t| date.and_time(*t)))
                    .filter(|moment| *moment > after)
                    .map(|moment| (moment, resolve_at(s, moment.date(), moment.time())))
                    .find(|(_, r)| r.value != current)
                    .map(|(at, r)| Change {
                        at,
                        value: r.value,
                        key: r.key,
                    })
            }
        }

        /// Keys over a few nearby dates and a few times, so entries match
        /// some days and not others and tie often.
        fn any_key() -> impl Strategy<Value = String> {
            (
                proptest::collection::vec(0u8..3, 8),
                prop_oneof![
                    Just(None),
                    (0u32..24, prop_oneof![Just(0u32), Just(30), 0u32..60]).prop_map(Some)
                ],
                0usize..4,
            )
                .prop_map(|(stars, time, date)| {
                    let date = ["20261123", "20261124", "20261130", "20261201"][date];
                    let mut k: String = date
                        .chars()
                        .zip(stars)
                        .map(|(c, s)| if s == 0 { '*' } else { c })
                        .collect();
                    match time {
                        Some((h, m)) => k.push_str(&format!("{h:02}{m:02}")),
                        None => k.push_str(["****", "**00", "1***"][k.len() % 3]),
                    }
                    k
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn the_resolver_agrees_with_the_reference_rule(
                pairs in proptest::collection::vec((any_key(), value_strategy()), 0..40),
                day in 0u64..12,
                minute in 0u32..1440,
            ) {
                let obj: Map<String, Value> = pairs.into_iter().collect();
                let Ok(s) = Schedule::from_object(&obj) else { return Ok(()); };
                let resolver = Resolver::new(&s);
                let date = d("2026-11-20") + chrono::Days::new(day);
                let expected: Vec<Resolved> = s
                    .candidate_times()
                    .into_iter()
                    .map(|t| reference::resolve_at(&s, date, t))
                    .collect();
                prop_assert_eq!(&resolver.day(date)[..], &expected[..]);
                prop_assert_eq!(resolve_day(&s, date), expected);
                let when = date.and_hms_opt(minute / 60, minute % 60, 0).unwrap();
                prop_assert_eq!(resolver.value_at(when), reference::value_at(&s, when));
                prop_assert_eq!(resolver.next_change(when), reference::next_change(&s, when));
                prop_assert_eq!(next_change(&s, when), reference::next_change(&s, when));
            }
        }

        proptest! {
            #[test]
            fn order_of_entries_does_not_matter(
                pairs in proptest::collection::vec((key_strategy(), value_strategy()), 0..8),
                minute in 0u32..1440,
            ) {
                let mut unique = BTreeMap::new();
                for (k, v) in pairs { unique.insert(k, v); }
                let forward: Vec<(String, Value)> = unique.clone().into_iter().collect();
                let api_fwd = json!({"success": true, "entries": forward.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()});
                let api_rev = json!({"success": true, "entries": forward.iter().rev().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()});
                let a = Schedule::parse(&api_fwd).unwrap();
                let b = Schedule::parse(&api_rev).unwrap();
                let when = d("2026-11-23").and_hms_opt(minute / 60, minute % 60, 0).unwrap();
                prop_assert_eq!(value_at(&a, when), value_at(&b, when));
            }

            #[test]
            fn value_at_matches_resolve_day_and_next_change_is_a_change(
                pairs in proptest::collection::vec((key_strategy(), value_strategy()), 0..8),
                minute in 0u32..1440,
            ) {
                let obj: Map<String, Value> = pairs.into_iter().collect();
                let s = Schedule::from_object(&obj).unwrap();
                let date = d("2026-11-23");
                let when = date.and_hms_opt(minute / 60, minute % 60, 0).unwrap();
                let f = value_at(&s, when);
                let day = resolve_day(&s, date);
                let r = day.iter().rev().find(|r| r.time <= when.time()).unwrap();
                prop_assert_eq!(r.value, f.value);
                if let Some(c) = next_change(&s, when) {
                    prop_assert!(c.at > when);
                    prop_assert_ne!(c.value, f.value);
                    prop_assert_eq!(value_at(&s, c.at).value, c.value);
                    // Nothing changed in between.
                    let before = c.at - TimeDelta::minutes(1);
                    if before > when {
                        prop_assert_eq!(value_at(&s, before).value, f.value);
                    }
                }
            }
        }
    }
}
