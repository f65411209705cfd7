//! The run record (status.json): written after every run whatever the
//! outcome, shown by `status`, read by --skip-if-done, printed by --json.

mod testenv;

use serde_json::Value;
use testenv::{TestEnv, assert_exit, due_in, stderr, stdout};

const HOUR: i64 = 3600;
const MONDAY: &str = "2026-11-23T07:00";
const HOBART: &str = "--set=/Settings/System/TimeZone=Australia/Hobart";

fn env() -> TestEnv {
    TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), &[])
}

#[test]
fn an_applied_run_records_the_day_the_batteries_and_the_slots() {
    let env = env();
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    let r = env.record();
    assert_eq!(r["outcome"], "applied");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["dry_run"], false);
    assert_eq!(r["zone"], "Australia/Hobart");
    assert_eq!(r["local_time"], "2026-11-23T07:00:00");
    assert_eq!(r["planning_day"]["start"], "2026-11-23T07:00:00");
    assert_eq!(r["planning_day"]["kind"], "normal");
    assert_eq!(r["batteries"][0]["soc"], 87.4);
    assert_eq!(r["batteries"][0]["due"], "2026-11-25T07:00:00");
    assert_eq!(r["writes"], 6);
    assert_eq!(r["slots"][0]["slot"], 3);
    assert_eq!(r["slots"][0]["before"]["day"], -7);
    assert_eq!(r["slots"][0]["after"]["start"], 36000);
    assert_eq!(r["last_real_run"], r["time"]);
    assert!(r["reason"].is_null());
    assert!(!env.status_file().with_extension("json.tmp").exists());
}

#[test]
fn a_fallback_is_recorded_with_its_reason() {
    let env = env();
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    env.set_payload("{}");
    assert_exit(&env.run_at(MONDAY, &[]), 1);
    let r = env.record();
    assert_eq!(r["outcome"], "fallback");
    assert_eq!(r["exit_code"], 1);
    assert!(r["reason"].as_str().unwrap().contains("no `list`"), "{r}");
    assert_eq!(r["slots"][0]["after"]["day"], -1);
    assert_eq!(r["writes"], 2);
}

#[test]
fn errors_are_recorded_too() {
    let mut env = env();
    let out = env.run_at(MONDAY, &["--slots", "4"]);
    assert_exit(&out, 2);
    assert_eq!(env.record()["outcome"], "error");
    assert_eq!(env.record()["exit_code"], 2);
    env.stop_gx();
    assert_exit(&env.run_at(MONDAY, &[]), 3);
    let r = env.record();
    assert_eq!(
        (r["outcome"].as_str(), r["exit_code"].as_i64()),
        (Some("error"), Some(3))
    );
    assert!(r["reason"].as_str().unwrap().contains("not running"), "{r}");
}

/// Trying a change with --dry-run (as the README suggests) must not hide
/// the last real run from `status` nor from --skip-if-done.
#[test]
fn a_dry_run_leaves_the_record_of_the_last_real_run() {
    let env = env();
    env.set_payload("{}");
    assert_exit(&env.run_at(MONDAY, &[]), 1);
    let fallback = env.record();
    env.set_payload(&due_in(48 * HOUR));
    let out = env.run_at(MONDAY, &["--dry-run", "--json"]);
    assert_exit(&out, 0);
    let printed: Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(printed["outcome"], "planned");
    assert_eq!(printed["dry_run"], true);
    assert_eq!(printed["writes"], 0);
    assert_eq!(env.record(), fallback, "the record is the fallback's");
    let text = stdout(&env.run(&["status"]));
    assert!(text.contains("FELL BACK (exit 1)"), "{text}");
    // Applied, then a dry run: the next --skip-if-done still skips.
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    let applied = env.record();
    assert_exit(&env.run_at("2026-11-23T08:00", &["--dry-run"]), 0);
    assert_eq!(env.record(), applied);
    let out = env.run_at("2026-11-23T09:00", &["--skip-if-done"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("nothing to do"), "{}", stderr(&out));
    assert_eq!(env.record(), applied);
}

#[test]
fn skip_if_done_does_nothing_once_the_day_is_applied() {
    let env = env();
    let skip = ["--skip-if-done"];
    assert_exit(&env.run_at(MONDAY, &skip), 0);
    assert_eq!(env.writes().len(), 6);
    let record = env.record();
    let requests = std::fs::read_to_string(env.dir.join("bms.log"))
        .unwrap()
        .lines()
        .count();
    // An hour later, same planning day: no BMS request, no write, no new record.
    let out = env.run_at("2026-11-23T08:00", &skip);
    assert_exit(&out, 0);
    // A log line: stderr, the prefix, the time to the second.
    assert_eq!(stdout(&out), "");
    let time = record["time"].as_str().unwrap();
    let line = format!(
        "zcell-sched: planning day Mon 2026-11-23 07:00-07:00 (+1d) was applied at {}Z; nothing to do\n",
        &time[..19]
    );
    assert_eq!(stderr(&out), line);
    assert_eq!(env.writes().len(), 6);
    assert_eq!(env.record(), record);
    let after = std::fs::read_to_string(env.dir.join("bms.log"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(after, requests, "the BMS was not asked");
    // The next planning day runs.
    env.set_payload(&due_in(10 * HOUR));
    assert_exit(&env.run_at("2026-11-24T07:00", &skip), 0);
    assert_eq!(env.record()["planning_day"]["kind"], "maintenance");
    // A fallback does not count as done: the next hour tries again.
    env.set_payload("garbage");
    assert_exit(&env.run_at("2026-11-25T07:00", &skip), 1);
    env.set_payload(&due_in(40 * HOUR));
    assert_exit(&env.run_at("2026-11-25T08:00", &skip), 0);
    assert_eq!(env.record()["outcome"], "applied");
}

#[test]
fn status_shows_the_last_run_and_warns_when_cron_stopped() {
    let env = env();
    let out = env.run(&["status"]);
    assert!(
        stdout(&out).contains("last run      none recorded yet"),
        "{}",
        stdout(&out)
    );
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    let out = env.run(&["status"]);
    let text = stdout(&out);
    assert!(
        text.contains("last run      Mon 2026-11-23 07:00"),
        "{text}"
    );
    assert!(
        text.contains("applied (exit 0), normal day from Mon 2026-11-23 07:00, 6 writes"),
        "{text}"
    );
    assert!(!text.contains("WARNING"), "{text}");
    // Age the record by 30 hours.
    let mut r = env.record();
    let old = (chrono::Utc::now() - chrono::TimeDelta::hours(30)).to_rfc3339();
    r["time"] = Value::from(old.clone());
    r["last_real_run"] = Value::from(old);
    std::fs::write(env.status_file(), r.to_string()).unwrap();
    let text = stdout(&env.run(&["status"]));
    assert!(
        text.contains("WARNING       no scheduled run for over 26 h"),
        "{text}"
    );
    let doc: Value = serde_json::from_str(&stdout(&env.run(&["status", "--json"]))).unwrap();
    assert_eq!(doc["stale"], true);
    assert_eq!(doc["last_run"]["outcome"], "applied");
    assert_eq!(doc["zone"], "Australia/Hobart");
    assert_eq!(doc["slots"][3]["owned"], true);
    assert_eq!(doc["slots"][3]["values"]["start"], 36000);
    assert_eq!(doc["slots"][0]["owned"], false);
}

#[test]
fn an_unwritable_status_file_warns_but_does_not_fail_the_run() {
    let env = env();
    let out = env
        .command(&["run", "--bms", env.bms(), "--now", MONDAY])
        .env("ZCELL_SCHED_STATUS_FILE", "/nonexistent/dir/status.json")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: cannot record the run"));
}
