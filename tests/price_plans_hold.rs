//! A price plan written into a schedule does what the planner planned: on
//! every price day of the bench, beside the owner schedules people have (the
//! reference's 0 W every hour, the README's example, random recurring and
//! dated entries), the schedule as written, resolved minute by minute,
//! carries out the plan within 1% of the saving the planner claimed.
#![cfg(feature = "zendure")]

use std::path::PathBuf;

use chrono::NaiveDate;
use chrono_tz::Europe::Amsterdam;
use serde_json::{Map, Value, json};
use testenv_price_days::BATTERY;
use zcell_sched::zendure::core::prices::entries::{Owned, propose};
use zcell_sched::zendure::core::schedule::Schedule;

#[path = "testenv/price_days.rs"]
mod testenv_price_days;

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Recurring entries at any minute (some with a `*` in the time), now and
/// then one for the very date.
fn random_owner(rng: &mut Lcg, date: NaiveDate) -> Value {
    let mut doc = Map::new();
    for _ in 0..1 + rng.below(8) {
        let (h, m) = (
            rng.below(24),
            [0, 0, 15, 30, 45, rng.below(60)][rng.below(6) as usize],
        );
        let time = match rng.below(5) {
            0 => format!("{h:02}**"),
            _ => format!("{h:02}{m:02}"),
        };
        let day = match rng.below(6) {
            0 => date.format("%Y%m%d").to_string(),
            1 => date.format("%Y****").to_string(),
            2 => date.format("****%m**").to_string(),
            _ => "********".to_string(),
        };
        let value = match rng.below(5) {
            0 => json!("netzero"),
            1 => json!("netzero+"),
            _ => json!([0, 0, 300, -300, 800, -800][rng.below(6) as usize]),
        };
        doc.insert(format!("{day}{time}"), value);
    }
    Value::Object(doc)
}

#[test]
fn the_written_schedule_carries_out_the_plan_on_every_price_day() {
    let hourly_zero: Map<String, Value> = (0..24)
        .map(|h| (format!("********{h:02}00"), json!(0)))
        .collect();
    let readme = json!({"********0000": "netzero", "********0700": 600, "********0900": "netzero+",
                        "********1700": "netzero", "********2300": -300});
    let mut rng = Lcg(20261205);
    let mut failures = Vec::new();
    let mut checked = 0;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testenv/data/prices");
    for path in testenv_price_days::paths(&dir).unwrap() {
        let (name, slots) = testenv_price_days::load(&path).unwrap();
        let date = zcell_sched::zendure::core::schedule::local(&Amsterdam, slots[0].start).date();
        let mut owners = vec![
            ("empty".to_string(), json!({})),
            (
                "0 W every hour".to_string(),
                Value::Object(hourly_zero.clone()),
            ),
            ("the README's".to_string(), readme.clone()),
        ];
        owners.extend((0..6).map(|i| (format!("random {i}"), random_owner(&mut rng, date))));
        for (owner, doc) in owners {
            let current = Schedule::parse(&doc).unwrap();
            let p = propose(
                &current,
                &Owned::default(),
                slots.clone(),
                &BATTERY,
                10.0,
                0.02,
                Amsterdam,
            );
            let claimed = p.expected.saving_eur;
            let realised = p.realised(&BATTERY, Amsterdam).saving_eur;
            checked += 1;
            if (realised - claimed).abs() > 0.01 * claimed.abs() + 1e-9 {
                failures.push(format!(
                    "{name}, owner {owner} {doc}: claimed {claimed:.4} EUR, the written schedule {realised:.4}"
                ));
            }
        }
    }
    assert!(checked >= 90, "only {checked} plans checked");
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
