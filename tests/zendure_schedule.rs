//! The shipped JSON Schema and the parser agree on the examples and test
//! fixtures: what the schema accepts parses, what it refuses is refused.
#![cfg(feature = "zendure")]

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use zcell_sched::zendure::core::schedule::Schedule;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator() -> jsonschema::Validator {
    let schema = load(&root().join("src/zendure/schedule.schema.json"));
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

fn fixtures() -> Vec<PathBuf> {
    let dir = root().join("tests/fixtures/zendure");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("schedule") || n.starts_with("invalid-"))
        })
        .collect();
    files.push(root().join("examples/zendure-schedule.json"));
    files.sort();
    files
}

#[test]
fn valid_fixtures_pass_the_schema_and_parse() {
    let v = validator();
    let mut checked = 0;
    for path in fixtures()
        .iter()
        .filter(|p| !p.to_string_lossy().contains("invalid-"))
    {
        let doc = load(path);
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        Schedule::parse(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} valid fixtures found");
}

#[test]
fn invalid_fixtures_fail_the_schema_and_the_parser() {
    let v = validator();
    let mut checked = 0;
    for path in fixtures()
        .iter()
        .filter(|p| p.to_string_lossy().contains("invalid-"))
    {
        let doc = load(path);
        assert!(!v.is_valid(&doc), "{} passes the schema", path.display());
        let err = Schedule::parse(&doc).expect_err(&path.display().to_string());
        assert!(err.key.is_some(), "{}: {err} names no key", path.display());
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} invalid fixtures found");
}

#[test]
fn serialised_schedules_pass_the_schema() {
    let v = validator();
    let doc = load(&root().join("tests/fixtures/zendure/schedule-api-response.json"));
    let object = Schedule::parse(&doc).unwrap().to_json();
    assert!(v.is_valid(&object), "{object}");
    assert_eq!(
        Schedule::parse(&object).unwrap(),
        Schedule::parse(&doc).unwrap()
    );
}
