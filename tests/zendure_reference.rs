//! Differential test against the reference system (maxbis/zendure): the
//! fixture holds its PHP resolver's answers for 3,000 random schedules
//! (wildcards in every position, mixed values, both DST days of
//! Europe/Amsterdam among the dates; in half of them every key has the same
//! specificity, so the tie-break decides). zcell-sched must pick the same winning
//! key at every candidate time of the day.
#![cfg(feature = "zendure")]

use std::fs;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde_json::Value;
use zcell_sched::zendure::core::schedule::{Schedule, resolve_day};

fn fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/zendure/reference-resolution.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The reference's winners, one per candidate time: the fixture lists them
/// only where they change.
fn expected_winners(winners: &str, times: &[String]) -> Vec<String> {
    let changes: Vec<(&str, &str)> = winners
        .split(' ')
        .map(|pair| pair.split_once('=').expect("time=key"))
        .collect();
    times
        .iter()
        .map(|t| {
            let (_, key) = changes
                .iter()
                .rev()
                .find(|(from, _)| *from <= t.as_str())
                .expect("the first change is at 00:00");
            key.to_string()
        })
        .collect()
}

#[test]
fn resolution_equals_the_reference_on_3000_random_schedules() {
    let doc = fixture();
    let cases = doc["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3000);
    let mut differ = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let schedule = Schedule::parse(&case["schedule"])
            .unwrap_or_else(|e| panic!("case {i}: the reference accepted it, we refuse: {e}"));
        let date = NaiveDate::parse_from_str(case["date"].as_str().unwrap(), "%Y%m%d").unwrap();
        let day = resolve_day(&schedule, date);
        assert_eq!(
            day.len() as u64,
            case["times"].as_u64().unwrap(),
            "case {i}: candidate times"
        );
        let times: Vec<String> = day
            .iter()
            .map(|r| r.time.format("%H%M").to_string())
            .collect();
        let ours: Vec<String> = day
            .iter()
            .map(|r| {
                r.key
                    .as_ref()
                    .map_or("-".to_string(), |k| k.as_str().to_string())
            })
            .collect();
        let theirs = expected_winners(case["winners"].as_str().unwrap(), &times);
        if ours != theirs {
            let (t, a, b) = times
                .iter()
                .zip(ours.iter().zip(&theirs))
                .find(|(_, (a, b))| a != b)
                .map(|(t, (a, b))| (t, a, b))
                .unwrap();
            differ.push(format!(
                "case {i} on {}: at {t} we pick {a}, the reference {b}",
                case["date"]
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} cases differ; first ones:\n{}",
        differ.len(),
        cases.len(),
        differ
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
