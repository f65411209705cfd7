//! The fault matrix: whatever fails, each owned slot ends exactly as planned
//! or disabled (or, where nothing could be written, as it was), nothing
//! else changes, the exit code and one stderr line say what happened, and
//! the next normal run repairs everything.

mod testenv;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testenv::{TestEnv, assert_exit, due_in, slot_path};

const HOUR: i64 = 3600;
const MONDAY: &str = "2026-11-23T07:00";
const SATURDAY: &str = "2026-11-28T07:00";
const HOBART: &str = "--set=/Settings/System/TimeZone=Australia/Hobart";
/// Slot 3 and 4 on Monday and Saturday with the default policy.
const MONDAY_SLOTS: [(i64, i64, i64, i64); 2] = [(1, 36000, 21600, 100), (1, 75600, 36000, 100)];
const SATURDAY_SLOT3: (i64, i64, i64, i64) = (6, 25200, 86400, 100);

fn owned(path: &str) -> bool {
    ["/Charge/3/", "/Charge/4/"]
        .iter()
        .any(|s| path.contains(s))
        && !path.ends_with("AllowDischarge")
}

/// Nothing but the owned slots' Day/Start/Duration/Soc changed.
#[track_caller]
fn assert_nothing_else_changed(before: &Value, after: &Value) {
    for (path, value) in before.as_object().unwrap() {
        if !owned(path) {
            assert_eq!(&after[path], value, "{path} changed");
        }
    }
}

/// A GX where Monday's plan was applied, then restarted with `faults`.
fn applied_monday(faults: &[&str], bms_args: &[&str]) -> TestEnv {
    let mut env = TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), bms_args);
    let out = env.run(&["run", "--bms", env.bms(), "--now", MONDAY]);
    assert_exit(&out, 0);
    assert_eq!([env.slot(3), env.slot(4)], MONDAY_SLOTS);
    if !faults.is_empty() {
        env.restart_gx(faults);
    }
    env.clear_writes();
    env
}

fn error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("zcell-sched: error:"))
        .map(str::to_string)
        .collect()
}

#[track_caller]
fn assert_one_error(out: &Output, code: i32, expected: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = error_lines(out);
    assert_eq!(errors.len(), 1, "one error line: {errors:?}");
    assert!(
        errors[0].contains(expected),
        "{expected:?} not in {}",
        errors[0]
    );
}

#[test]
fn bms_faults_fall_back_within_the_timeouts() {
    let list = |entry: &str| format!(r#"{{"list": [{entry}]}}"#);
    let field = |name: &str, value: &str| {
        let mut doc: Value = serde_json::from_str(&due_in(48 * HOUR)).unwrap();
        if value.is_empty() {
            doc["list"][0].as_object_mut().unwrap().remove(name);
        } else {
            doc["list"][0][name] = serde_json::from_str(value).unwrap();
        }
        doc.to_string()
    };
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (due_in(HOUR), vec!["--mode", "hang"], "timed out after 2s"),
        (
            due_in(HOUR),
            vec!["--mode", "stall-body"],
            "timed out after 2s",
        ),
        (
            due_in(HOUR),
            vec!["--mode", "trickle"],
            "timed out after 2s",
        ),
        (
            due_in(HOUR),
            vec!["--mode", "redirect"],
            "redirect to http://192.0.2.1/rest/1.0/status refused",
        ),
        (due_in(HOUR), vec!["--mode", "close"], "BMS http://"),
        (due_in(HOUR), vec!["--status", "404"], "HTTP 404"),
        (due_in(HOUR), vec!["--status", "500"], "HTTP 500"),
        (
            due_in(HOUR),
            vec!["--mode", "huge"],
            "larger than 1048576 bytes",
        ),
        (
            "<html><body>Redflow</body></html>".into(),
            vec![],
            "not valid JSON",
        ),
        (due_in(HOUR)[..40].to_string(), vec![], "not valid JSON"),
        ("{}".into(), vec![], "no `list`"),
        (r#"{"list": []}"#.into(), vec![], "lists no battery"),
        (r#"{"list": {"id": 1}}"#.into(), vec![], "not an array"),
        (list("7"), vec![], "battery 1 is not an object: 7"),
        (
            field("strip_pump_run_timer", ""),
            vec![],
            "`strip_pump_run_timer` is missing",
        ),
        (
            field("strip_pump_run_target", "null"),
            vec![],
            "not a number: null",
        ),
        (field("state_of_charge", "\"87.4\""), vec![], "not a number"),
        (
            field("strip_pump_run_timer", "-5"),
            vec![],
            "out of range: -5",
        ),
        (
            field("strip_pump_run_target", "1e300"),
            vec![],
            "out of range",
        ),
        (field("is_stripping", "\"no\""), vec![], "not true/false"),
    ];
    let mut env = applied_monday(&[], &[]);
    for (i, (payload, args, expected)) in cases.iter().enumerate() {
        // Back to Monday's plan, then a run against the misbehaving BMS.
        assert_eq!(
            env.run(&["run", "--bms", env.bms(), "--now", MONDAY])
                .status
                .code(),
            Some(0)
        );
        let before = env.state();
        let bad = env.start_bms(&format!("bad{i}"), payload, args);
        let start = Instant::now();
        let out = env.run(&[
            "run",
            "--bms",
            &bad,
            "--now",
            MONDAY,
            "--bms-timeout",
            "2",
            "--bms-retries",
            "0",
        ]);
        let took = start.elapsed();
        assert_one_error(&out, 1, expected);
        assert!(error_lines(&out)[0].contains("fell back: slots 3,4 disabled"));
        assert!(
            took < Duration::from_secs(2 + 5),
            "{expected}: took {took:?}"
        );
        assert_eq!((env.slot(3).0, env.slot(4).0), (-1, -1), "{expected}");
        assert_nothing_else_changed(&before, &env.state());
    }
}

#[test]
fn a_timer_far_beyond_its_target_is_a_maintenance_day_not_a_fault() {
    let env = applied_monday(&[], &[]);
    env.set_payload(
        r#"{"list": [{"state_of_charge": 12, "is_stripping": false,
        "strip_pump_run_timer": 999999, "strip_pump_run_target": 259200}]}"#,
    );
    let out = env.run(&["run", "--bms", env.bms(), "--now", MONDAY]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(env.slot(3), (1, 13 * HOUR, 3 * HOUR, 50));
}

#[test]
fn a_write_refused_midway_ends_with_the_owned_slots_disabled() {
    let env = applied_monday(&["--refuse-call=2"], &[]);
    let before = env.state();
    let out = env.run(&["run", "--bms", env.bms(), "--now", SATURDAY]);
    assert_one_error(&out, 3, "refused by the GX (returned -1)");
    assert!(error_lines(&out)[0].contains("fell back: slots 3,4 disabled"));
    assert_eq!(
        env.writes()[1].1,
        -1,
        "the second SetValue was the refused one"
    );
    assert!(env.slot(3).0 < 0 && env.slot(4).0 < 0);
    assert_nothing_else_changed(&before, &env.state());
    let out = env.run(&["run", "--bms", env.bms(), "--now", SATURDAY]);
    assert_eq!(out.status.code(), Some(0), "the next run repairs");
    assert_eq!(env.slot(3), SATURDAY_SLOT3);
}

#[test]
fn the_service_vanishing_before_the_first_write_changes_nothing() {
    let mut env = applied_monday(&["--exit-on-call=1"], &[]);
    let before = env.state();
    let out = env.run(&["run", "--bms", env.bms(), "--now", SATURDAY]);
    assert_one_error(&out, 3, "; slots 3,4 could not be disabled either");
    assert_eq!(env.state(), before, "nothing could be written");
    env.restart_gx(&[]);
    let out = env.run(&["run", "--bms", env.bms(), "--now", SATURDAY]);
    assert_exit(&out, 0);
    assert_eq!(env.slot(3), SATURDAY_SLOT3);
}

const NOT_RUNNING: &str = "com.victronenergy.settings is not running on the system D-Bus";

/// What failed, then that disabling could not be done either, each cause
/// once; a dry run says the same of a real run instead of promising it.
#[test]
fn the_settings_service_absent_says_what_failed_then_that_disabling_did_too() {
    let mut env = TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), &[]);
    env.stop_gx();
    let out = env.run(&["run", "--bms", env.bms(), "--now", MONDAY]);
    assert_one_error(&out, 3, "");
    assert_eq!(
        error_lines(&out)[0],
        format!(
            "zcell-sched: error: {NOT_RUNNING}; slots 3,4 could not be disabled either, for the same reason"
        )
    );
    let out = env.run(&["run", "--bms", env.bms(), "--now", MONDAY, "--dry-run"]);
    assert_one_error(&out, 3, "");
    assert_eq!(
        error_lines(&out)[0],
        format!(
            "zcell-sched: error: {NOT_RUNNING}; dry run: a real run could not disable slots 3,4 either, for the same reason"
        )
    );
}

/// No system bus at all (zcell-sched run off the GX without --gx mqtt):
/// the error leads, its OS cause is said once, and a hint says what to do.
#[test]
fn no_system_bus_leads_with_the_error_once_and_a_hint() {
    let env = TestEnv::new(&[]);
    let missing = env.dir.join("no-such-bus");
    for dry_run in [true, false] {
        let mut args = vec!["run", "--bms", "127.0.0.1:1", "--tz", "Europe/Amsterdam"];
        if dry_run {
            args.push("--dry-run");
        }
        let out = env
            .command(&args)
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                format!("unix:path={}", missing.display()),
            )
            .env("ZCELL_SCHED_STATUS_FILE", env.dir.join("none/status.json"))
            .output()
            .unwrap();
        assert_exit(&out, 3);
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "zcell-sched: error: cannot connect to the system D-Bus: failed to connect to `unix:path={}`: \
                 No such file or directory (os error 2). On a GX the system bus is always there; \
                 elsewhere set DBUS_SYSTEM_BUS_ADDRESS or use --gx mqtt://HOST",
                missing.display()
            ),
            "{err}"
        );
        // A dry run writes no record; a real run's failure to record it comes after.
        let warnings: Vec<&&str> = lines[1..].iter().collect();
        if dry_run {
            assert!(warnings.is_empty(), "{err}");
        } else {
            assert_eq!(warnings.len(), 1, "{err}");
            assert!(warnings[0].starts_with("zcell-sched: warning: cannot record the run"));
        }
    }
}

#[test]
fn a_reply_that_never_comes_times_out_and_falls_back() {
    let env = applied_monday(&["--pause-call=1"], &[]);
    let before = env.state();
    let start = Instant::now();
    let out = env.run(&["run", "--bms", env.bms(), "--now", SATURDAY]);
    assert!(
        start.elapsed() < Duration::from_secs(5 + 10),
        "took {:?}",
        start.elapsed()
    );
    assert_one_error(&out, 3, "no reply within 5s");
    assert!(error_lines(&out)[0].contains("fell back: slots 3,4 disabled"));
    assert!(env.slot(3).0 < 0 && env.slot(4).0 < 0);
    assert_nothing_else_changed(&before, &env.state());
}

#[test]
fn a_slot_of_the_wrong_type_is_exit_3() {
    let wrong = format!("--string={}=ten", slot_path(4, "Start"));
    let env = TestEnv::new(&[HOBART, &wrong]).with_bms(&due_in(48 * HOUR), &[]);
    let out = env.run(&["run", "--bms", env.bms(), "--now", MONDAY]);
    assert_one_error(&out, 3, &format!("{} holds a s", slot_path(4, "Start")));
    assert_eq!(env.writes(), vec![]);
}

/// Starts a run in the background; the simulator pauses at its 2nd write.
fn paused_run(env: &TestEnv) -> std::process::Child {
    let child = env
        .command(&["run", "--bms", env.bms(), "--now", SATURDAY])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.gx_events().wait_for("paused 2");
    child
}

#[track_caller]
fn assert_each_slot_old_off_or_planned(
    env: &TestEnv,
    old: [(i64, i64, i64, i64); 2],
    planned: [Option<(i64, i64, i64, i64)>; 2],
) {
    for (i, n) in [3u8, 4].into_iter().enumerate() {
        let v = env.slot(n);
        assert!(
            v == old[i] || v.0 < 0 || Some(v) == planned[i],
            "slot {n} = {v:?}"
        );
    }
}

#[test]
fn killed_between_two_writes_then_the_next_run_repairs() {
    let env = applied_monday(&["--pause-call=2"], &[]);
    let before = env.state();
    let mut child = paused_run(&env);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(env.writes().len(), 1, "killed after the first write");
    assert_each_slot_old_off_or_planned(&env, MONDAY_SLOTS, [Some(SATURDAY_SLOT3), None]);
    assert_nothing_else_changed(&before, &env.state());
    let out = env.run(&["run", "--bms", env.bms(), "--now", SATURDAY]);
    assert_exit(&out, 0);
    assert_eq!(env.slot(3), SATURDAY_SLOT3);
    assert!(env.slot(4).0 < 0);
}

#[test]
fn sigterm_mid_run_stops_with_a_line_and_the_next_run_repairs() {
    let env = applied_monday(&["--pause-call=2"], &[]);
    let child = paused_run(&env);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert_each_slot_old_off_or_planned(&env, MONDAY_SLOTS, [Some(SATURDAY_SLOT3), None]);
    assert_eq!(
        env.run(&["run", "--bms", env.bms(), "--now", SATURDAY])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(env.slot(3), SATURDAY_SLOT3);
}

#[test]
fn two_runs_at_once_one_runs_one_exits_4() {
    let env = applied_monday(&[], &["--delay-ms", "1500"]);
    env.bms_events().drain();
    let first = env
        .command(&["run", "--bms", env.bms(), "--now", SATURDAY])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first run holds the lock once it asks the BMS.
    env.bms_events().wait_for("request");
    let second = env.run(&["run", "--bms", env.bms(), "--now", SATURDAY]);
    assert_one_error(&second, 4, "another zcell-sched run holds");
    let first = first.wait_with_output().unwrap();
    assert_exit(&first, 0);
    assert_eq!(env.slot(3), SATURDAY_SLOT3);
}

#[test]
fn every_weekday_and_both_dst_changes_end_to_end() {
    let env = TestEnv::new(&["--set=/Settings/System/TimeZone=Australia/Sydney"])
        .with_bms(&due_in(48 * HOUR), &[]);
    // 2026-11-23 is a Monday; Sunday code 0 .. Saturday 6.
    for (offset, code) in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 0)] {
        let now = format!("2026-11-{}T07:00", 23 + offset);
        assert_eq!(
            env.run(&["run", "--bms", env.bms(), "--now", &now])
                .status
                .code(),
            Some(0)
        );
        let expected = if code == 6 || code == 0 {
            (code, 7 * HOUR, 24 * HOUR, 100)
        } else {
            (code, 10 * HOUR, 6 * HOUR, 100)
        };
        assert_eq!(env.slot(3), expected, "{now}");
    }
    // The Saturdays before Sydney's spring-forward and fall-back Sundays:
    // 23 and 25 real hours, one 24 h wall-clock window each.
    for now in ["2026-10-03T07:00", "2026-04-04T07:00"] {
        let out = env.run(&["run", "--bms", env.bms(), "--now", now, "--dry-run"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let hours = if now.contains("-10-") {
            "23 real hours"
        } else {
            "25 real hours"
        };
        assert!(text.contains(hours), "{now}: {text}");
        assert_eq!(
            env.run(&["run", "--bms", env.bms(), "--now", now])
                .status
                .code(),
            Some(0)
        );
        assert_eq!(env.slot(3), (6, 7 * HOUR, 24 * HOUR, 100), "{now}");
    }
}

#[test]
fn every_malformed_option_is_exit_2_naming_it_and_writes_nothing() {
    let env = applied_monday(&[], &[]);
    let before = env.state();
    let cases: [(&[&str], &str); 16] = [
        (&["--bms", "https://bms"], "--bms"),
        (&["--bms", "bms:99999"], "--bms"),
        (&["--slots", "7"], "--slots"),
        (&["--slots", "3,,4"], "--slots"),
        (&["--day-start", "25:00"], "--day-start"),
        (&["--peak", "someday@07:00-10:00"], "--peak"),
        (&["--peak", "weekdays@10:00-10:00"], "--peak"),
        (&["--reserve-soc", "-1"], "--reserve-soc"),
        (
            &["--maintenance-window", "13:00-16:00"],
            "--maintenance-window",
        ),
        (&["--tz", "Atlantis/Capital"], "--tz"),
        (&["--now", "2026-11-23 07:00"], "--now"),
        (&["--bms-timeout", "9999"], "--bms-timeout"),
        (&["--bms-retries", "x"], "--bms-retries"),
        (&["--config", "/nonexistent.json"], "config file"),
        (&["--lock-file", "/nonexistent/dir/lock"], "lock file"),
        (&["--json"], "--dry-run"),
    ];
    for (extra, named) in cases {
        let mut args = vec!["run", "--bms", env.bms(), "--now", MONDAY];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{extra:?}: {err}");
    }
    assert_eq!(env.writes(), vec![]);
    assert_eq!(env.state(), before);
}
