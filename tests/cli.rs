//! End to end: the zcell-sched binary against a simulated GX on a private
//! dbus-daemon and a fake BMS.

mod testenv;

use std::fs::OpenOptions;

use testenv::{TIME_ZONE, TestEnv, assert_exit, due_in, slot_path, stderr, stdout};

const HOBART: &str = "--set=/Settings/System/TimeZone=Australia/Hobart";
const HOUR: i64 = 3600;
// 2026-11-23 is a Monday.
const MONDAY: &str = "2026-11-23T07:00";
const SATURDAY: &str = "2026-11-28T07:00";
const SUNDAY: &str = "2026-11-29T07:00";

/// A GX whose slots 0-2 hold the owner's own schedules.
fn busy_gx() -> Vec<String> {
    let mut args = vec![HOBART.to_string()];
    for (slot, day, start, duration, soc) in [
        (0, 7, 3600, 7200, 80),
        (1, -3, 0, 60, 90),
        (2, 0, 50, 60, 70),
    ] {
        for (leaf, v) in [
            ("Day", day),
            ("Start", start),
            ("Duration", duration),
            ("Soc", soc),
        ] {
            args.push(format!("--set={}={v}", slot_path(slot, leaf)));
        }
    }
    args
}

fn env_with(gx: &[String], payload: &str) -> TestEnv {
    let gx: Vec<&str> = gx.iter().map(String::as_str).collect();
    TestEnv::new(&gx).with_bms(payload, &[])
}

fn other_slots(env: &TestEnv) -> Vec<(i64, i64, i64, i64)> {
    (0..3).map(|n| env.slot(n)).collect()
}

#[test]
fn normal_weekday_writes_the_off_peak_windows_and_nothing_else() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    let before = env.state();
    let out = env.run_at(MONDAY, &[]);
    assert_exit(&out, 0);
    assert_eq!(env.slot(3), (1, 10 * HOUR, 6 * HOUR, 100));
    assert_eq!(env.slot(4), (1, 21 * HOUR, 10 * HOUR, 100));
    // Slots 0-2 and every other setting: same values, never written.
    let after = env.state();
    for (path, value) in before.as_object().unwrap() {
        if !path.contains("/Charge/3/") && !path.contains("/Charge/4/") {
            assert_eq!(&after[path], value, "{path} changed");
        }
    }
    let writes = env.writes();
    assert!(!writes.is_empty());
    for (path, result) in &writes {
        assert!(
            path.contains("/Charge/3/") || path.contains("/Charge/4/"),
            "{path} written"
        );
        assert!(!path.ends_with("AllowDischarge"), "{path} written");
        assert_eq!(*result, 0, "{path}");
    }
    assert!(
        stderr(&out).contains("applied: normal day"),
        "{}",
        stderr(&out)
    );
}

/// The BMS speaks plain HTTP: a run reads it without the system's root
/// certificates, which a build with HTTPS (for the Zendure side) would
/// otherwise load and parse at every start, and fail without.
#[test]
fn a_run_needs_no_root_certificates() {
    let env = env_with(&[HOBART.to_string()], &due_in(48 * HOUR));
    let none = env.dir.join("no-certificates");
    let out = env
        .command(&["run", "--bms", env.bms(), "--now", MONDAY])
        .env("SSL_CERT_FILE", &none)
        .env("SSL_CERT_DIR", &none)
        .output()
        .expect("zcell-sched runs");
    assert_exit(&out, 0);
    assert_eq!(env.slot(3), (1, 10 * HOUR, 6 * HOUR, 100));
}

#[test]
fn maintenance_day_lets_the_battery_drain() {
    let env = env_with(&busy_gx(), &due_in(10 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    assert_eq!(env.slot(3), (1, 13 * HOUR, 3 * HOUR, 50));
    assert_eq!(env.slot(4), (2, 3 * HOUR, 4 * HOUR, 100));
    assert_eq!(
        other_slots(&env),
        vec![(7, 3600, 7200, 80), (-3, 0, 60, 90), (0, 50, 60, 70)]
    );
}

#[test]
fn a_stripping_battery_is_a_maintenance_day() {
    let payload = r#"{"list": [{"id": 1, "state_of_charge": 3.2, "is_stripping": true,
        "strip_pump_run_timer": 262000, "strip_pump_run_target": 259200}]}"#;
    let env = env_with(&busy_gx(), payload);
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    assert_eq!(env.slot(3).3, 50);
}

#[test]
fn weekend_is_one_day_long_window_and_a_disabled_slot() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    assert_exit(&env.run_at(SATURDAY, &[]), 0);
    assert_eq!(env.slot(3), (6, 7 * HOUR, 24 * HOUR, 100));
    // Slot 4 is off, keeping its Monday for the GUI.
    assert_eq!(env.slot(4), (-1, 21 * HOUR, 10 * HOUR, 100));
}

#[test]
fn identical_rerun_writes_nothing() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    env.clear_writes();
    // Later the same planning day, with the battery 5 hours further on.
    env.set_payload(&due_in(43 * HOUR));
    let out = env.run_at("2026-11-23T12:00", &[]);
    assert_exit(&out, 0);
    assert_eq!(env.writes(), vec![]);
    assert!(stderr(&out).contains(": 0 writes"), "{}", stderr(&out));
}

#[test]
fn dry_run_writes_nothing_and_shows_the_plan() {
    let env = env_with(&busy_gx(), &due_in(10 * HOUR));
    let before = env.state();
    let out = env.run_at(MONDAY, &["--dry-run"]);
    assert_exit(&out, 0);
    assert_eq!(env.writes(), vec![]);
    assert_eq!(env.state(), before);
    let text = stdout(&out);
    for expected in [
        "planning day  Mon 2026-11-23 07:00 -> Tue 2026-11-24 07:00, 24 real hours",
        "MAINTENANCE",
        "battery 1: SoC 87.4%, maintenance due Mon 2026-11-23 17:00 (in 10.0 h)",
        "on  Mon 13:00-16:00 (3h00) to 50%",
        "on  Tue 03:00-07:00 (4h00) to 100%",
        "PPPPPP......AAAAAAPPPPPPPPPP............BBBBBBBB",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn sunday_slot_falls_back_to_minus_ten() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    assert_exit(&env.run_at(SUNDAY, &[]), 0);
    assert_eq!(env.slot(3), (0, 7 * HOUR, 24 * HOUR, 100));
    env.set_payload("{ not json");
    let out = env.run_at(MONDAY, &[]);
    assert_exit(&out, 1);
    assert_eq!(
        env.slot(3).0,
        -10,
        "plain negation would leave Sunday (0) enabled"
    );
    let err = stderr(&out);
    assert!(err.contains("fell back: slots 3,4 disabled"), "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    // Slot 2 holds an enabled Sunday of the owner's: untouched.
    assert_eq!(env.slot(2), (0, 50, 60, 70));
}

#[test]
fn bms_failures_fall_back_to_disabled_slots() {
    let cases: [(&str, &[&str], &str); 3] = [
        ("{}", &["--status", "500"], "HTTP 500"),
        ("{\"list\": []}", &[], "lists no battery"),
        ("<html>", &[], "not valid JSON"),
    ];
    for (payload, args, expected) in cases {
        let mut env = TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), &[]);
        assert_exit(&env.run_at(MONDAY, &[]), 0);
        let bad = env.start_bms("bad", payload, args);
        let out = env.run(&["run", "--bms", &bad, "--now", MONDAY, "--bms-retries", "0"]);
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains(expected),
            "{expected}: {}",
            stderr(&out)
        );
        assert_eq!((env.slot(3).0, env.slot(4).0), (-1, -1), "{expected}");
    }
}

#[test]
fn bms_down_falls_back_after_the_retries() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    // Nothing listens on port 1 of loopback.
    let out = env.run(&[
        "run",
        "--bms",
        "127.0.0.1:1",
        "--now",
        MONDAY,
        "--bms-retries",
        "1",
    ]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("attempt 1 failed"), "{err}");
    assert!(err.contains("(attempts: 2)"), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert_eq!((env.slot(3).0, env.slot(4).0), (-1, -1));
}

#[test]
fn settings_service_absent_is_exit_3() {
    let mut env = TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), &[]);
    env.stop_gx();
    let out = env.run_at(MONDAY, &[]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("com.victronenergy.settings is not running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_bus_at_all_is_exit_3() {
    let env = TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), &[]);
    let out = env
        .command(&["status"])
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}", env.dir.join("nobus").display()),
        )
        .output()
        .unwrap();
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("system D-Bus"), "{}", stderr(&out));
}

#[test]
fn missing_slot_path_on_old_firmware_is_exit_3() {
    let omit = format!("--omit={}", slot_path(4, "Soc"));
    let env = TestEnv::new(&[HOBART, &omit]).with_bms(&due_in(48 * HOUR), &[]);
    let out = env.run_at(MONDAY, &[]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains(&format!("{}: no such setting", slot_path(4, "Soc"))),
        "{}",
        stderr(&out)
    );
}

#[test]
fn refused_write_is_exit_3_and_the_owned_slots_end_disabled() {
    let refuse = format!("--refuse={}", slot_path(4, "Duration"));
    let env = TestEnv::new(&[HOBART, &refuse]).with_bms(&due_in(48 * HOUR), &[]);
    let out = env.run_at(MONDAY, &[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "SetValue {} = 36000 refused",
            slot_path(4, "Duration")
        )),
        "{err}"
    );
    assert!(err.contains("fell back: slots 3,4 disabled"), "{err}");
    assert!(env.slot(3).0 < 0 && env.slot(4).0 < 0, "{:?}", env.state());
}

#[test]
fn time_zone_comes_from_the_gx_and_tz_overrides_it() {
    let env =
        TestEnv::new(&["--set=/Settings/System/TimeZone=/UTC"]).with_bms(&due_in(48 * HOUR), &[]);
    let out = env.run_at(MONDAY, &["--dry-run"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("(UTC)"), "{}", stdout(&out));
    let out = env.run_at(MONDAY, &["--dry-run", "--tz", "Europe/Berlin"]);
    assert!(stdout(&out).contains("(Europe/Berlin)"), "{}", stdout(&out));
}

#[test]
fn unknown_gx_zone_and_unset_clock_fall_back() {
    let env = TestEnv::new(&["--set=/Settings/System/TimeZone=Mars/Olympus"])
        .with_bms(&due_in(48 * HOUR), &[]);
    assert_exit(&env.run_at(MONDAY, &["--tz", "Australia/Hobart"]), 0);
    let out = env.run_at(MONDAY, &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("unknown time zone `Mars/Olympus`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.slot(3).0, -1);

    assert_exit(&env.run_at(MONDAY, &["--tz", "Australia/Hobart"]), 0);
    let out = env.run_at("2000-01-01T07:00", &["--tz", "Australia/Hobart"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("not set"), "{}", stderr(&out));
    assert_eq!(env.slot(3).0, -1);
}

#[test]
fn too_few_slots_for_the_policy_is_refused_naming_the_windows() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    let out = env.run_at(MONDAY, &["--slots", "4"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("needs more owned slots"), "{err}");
    assert!(
        err.contains("needs 2 charge windows (13:00-16:00, 03:00-07:00)"),
        "{err}"
    );
    assert!(
        err.contains("error: --slots 4: the policy needs more owned slots")
            && err.contains("but only slot 4 is owned"),
        "{err}"
    );
    assert_eq!(env.writes(), vec![], "nothing written");
}

#[test]
fn usage_errors_are_exit_2_and_write_nothing() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    let cases: [&[&str]; 8] = [
        &["--slots", "5"],
        &["--slots", "3,3"],
        &["--peak", "weekdays@07:00"],
        &["--reserve-soc", "101"],
        &[
            "--maintenance-window",
            "13:00-16:00@50",
            "--maintenance-window",
            "15:00-17:00@90",
        ],
        &["--day-start", "7am"],
        &["--tz", "Mars/Olympus"],
        &["--bms-timeout", "0"],
    ];
    for extra in cases {
        let out = env.run_at(MONDAY, extra);
        assert_exit(&out, 2);
        assert!(!stderr(&out).is_empty());
    }
    // A local time that a DST change skips.
    let out = env.run_at("2026-10-04T02:30", &["--tz", "Australia/Hobart"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("DST gap"), "{}", stderr(&out));
    let out = env.run(&["run", "--now", MONDAY]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--bms"), "{}", stderr(&out));
    assert_eq!(env.writes(), vec![]);
}

#[test]
fn a_second_concurrent_run_exits_4() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.dir.join("run.lock"))
        .unwrap();
    lock.lock().unwrap();
    let out = env.run_at(MONDAY, &[]);
    assert_exit(&out, 4);
    assert!(
        stderr(&out).contains("another zcell-sched run"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.writes(), vec![]);
    // A dry run does not need the lock.
    assert_exit(&env.run_at(MONDAY, &["--dry-run"]), 0);
    lock.unlock().unwrap();
    assert_exit(&env.run_at(MONDAY, &[]), 0);
}

#[test]
fn status_decodes_every_slot() {
    let env = env_with(&busy_gx(), &due_in(10 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    let out = env.run(&["status", "--bms", env.bms()]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for expected in [
        "GX time zone  Australia/Hobart",
        "0     1    other        on  every day 01:00-03:00 (2h00) to 80%",
        "1     2    other        off Wed 00:00-00:01 (0h01) to 90%",
        "2     3    other        on  Sun 00:00-00:01 (0h01) to 70%",
        "3     4    zcell-sched  on  Mon 13:00-16:00 (3h00) to 50%",
        "4     5    zcell-sched  on  Tue 03:00-07:00 (4h00) to 100%",
        "battery 1: SoC 87.4%, maintenance due",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert_eq!(env.value(TIME_ZONE), "Australia/Hobart");
}

/// With the settings service gone, status still shows the last run, the
/// batteries and the zone (given, or the last run's) and says why the GX
/// part is missing; --json still prints one document; the exit code says
/// the GX could not be read.
#[test]
fn status_without_the_settings_service_shows_what_it_can() {
    let mut env = env_with(&busy_gx(), &due_in(10 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    env.stop_gx();
    let reason = "com.victronenergy.settings is not running on the system D-Bus";
    let out = env.run(&["status", "--bms", env.bms(), "--now", "2026-11-23T08:00"]);
    assert_exit(&out, 3);
    let text = stdout(&out);
    for expected in [
        format!("GX            UNAVAILABLE: {reason}\n"),
        "now           Mon 2026-11-23 08:00 (Australia/Hobart)\n".to_string(),
        "slots         unknown (owned: 3,4)\n".to_string(),
        "battery 1: SoC 87.4%, maintenance due Mon 2026-11-23 18:00 (in 10.0 h)".to_string(),
        "last run      Mon 2026-11-23 07:00 (1.0 h ago): applied".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        stderr(&out).contains(&format!("zcell-sched: error: {reason}")),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["status", "--json", "--tz", "Europe/Amsterdam"]);
    assert_exit(&out, 3);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(doc["gx_error"], reason);
    assert!(doc["slots"].is_null());
    assert_eq!(doc["zone"], "Europe/Amsterdam");
    assert_eq!(doc["last_run"]["outcome"], "applied");
    assert!(doc["bms_error"].is_null());
}

/// `status --now` shows the story a demo tells with `run --now`: the same
/// now, the last run's age from it.
#[test]
fn status_now_is_the_same_clock_as_run_now() {
    let env = env_with(&busy_gx(), &due_in(10 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    let out = env.run(&["status", "--now", "2026-11-23T09:30"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("GX time zone  Australia/Hobart (now Mon 2026-11-23 09:30)"),
        "{text}"
    );
    assert!(
        text.contains("last run      Mon 2026-11-23 07:00 (2.5 h ago): applied"),
        "{text}"
    );
    assert!(!text.contains("WARNING"), "{text}");
}

/// `+discharge` sets AllowDischarge 1 on that window's slot (0 on the
/// others, and on every slot once the day is normal again); firmware
/// without the setting gets a clear error and the fallback.
#[test]
fn a_discharge_window_sets_allow_discharge_where_the_firmware_has_it() {
    let windows = [
        "--maintenance-window",
        "13:00-16:00@50+discharge",
        "--maintenance-window",
        "03:00-07:00@100",
    ];
    let allow = |env: &TestEnv, n| env.value(&slot_path(n, "AllowDischarge"));
    let env = env_with(&[HOBART.to_string()], &due_in(10 * HOUR));
    let out = env.run_at(MONDAY, &windows);
    assert_exit(&out, 0);
    assert_eq!(env.slot(3), (1, 13 * HOUR, 3 * HOUR, 50));
    assert_eq!((allow(&env, 3), allow(&env, 4)), (1.into(), 0.into()));
    assert!(
        stderr(&out).contains("slot 3: on  Mon 13:00-16:00 (3h00) to 50% +discharge"),
        "{}",
        stderr(&out)
    );
    env.set_payload(&due_in(48 * HOUR));
    assert_exit(&env.run_at("2026-11-24T07:00", &windows), 0);
    assert_eq!((allow(&env, 3), allow(&env, 4)), (0.into(), 0.into()));

    let old = env_with(
        &[HOBART.to_string(), "--no-allow-discharge".to_string()],
        &due_in(10 * HOUR),
    );
    let out = old.run_at(MONDAY, &windows);
    assert_exit(&out, 3);
    assert_eq!(
        stderr(&out),
        format!(
            "zcell-sched: error: fell back: slots 3,4 disabled (0 writes): a maintenance window \
             with +discharge needs {}, which this GX does not have (firmware from mid-2022 on \
             has it): update the GX or drop +discharge\n",
            slot_path(3, "AllowDischarge")
        )
    );
    // Without the opt-in, old firmware plans as before.
    assert_exit(&old.run_at(MONDAY, &[]), 0);
}

#[test]
fn disable_turns_off_only_the_owned_slots() {
    let env = env_with(&busy_gx(), &due_in(48 * HOUR));
    assert_exit(&env.run_at(SUNDAY, &[]), 0);
    let out = env.run(&["disable"]);
    assert_exit(&out, 0);
    assert_eq!(env.slot(3).0, -10);
    assert_eq!(
        other_slots(&env),
        vec![(7, 3600, 7200, 80), (-3, 0, 60, 90), (0, 50, 60, 70)]
    );
    env.clear_writes();
    assert_exit(&env.run(&["disable"]), 0);
    assert_eq!(env.writes(), vec![], "already disabled: no writes");
}

#[test]
fn the_next_normal_run_repairs_a_fallback() {
    let env = env_with(&busy_gx(), "garbage");
    assert_exit(&env.run_at(MONDAY, &[]), 1);
    env.set_payload(&due_in(48 * HOUR));
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    assert_eq!(env.slot(3), (1, 10 * HOUR, 6 * HOUR, 100));
}

/// A bad value says what would do, in words: every form of DAYS, the
/// bounds of a number.
#[test]
fn bad_values_say_what_would_do() {
    let env = TestEnv::new(&[]);
    let cases: [(&[&str], &str); 4] = [
        (
            &["--peak", "weekday@07:00-10:00"],
            "`weekday` is not a set of days (use daily, weekdays, weekends, a day, a range such as \
             mon-fri or a list such as mon,wed,fri; the days are mon, tue, wed, thu, fri, sat, sun)",
        ),
        (
            &["--bms-timeout", "0"],
            "`0` is not a whole number of seconds from 1 to 300",
        ),
        (
            &["--bms-retries", "11"],
            "`11` is not a whole number of retries from 0 to 10",
        ),
        (
            &["--mqtt-timeout", "121"],
            "`121` is not a whole number of seconds from 1 to 120",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["run", "--bms", "127.0.0.1:1"];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
    }
}

/// The help says what --bms needs, every form of --peak, the exit codes,
/// and no empty environment value.
#[test]
fn help_says_what_a_person_needs() {
    let env = TestEnv::new(&[]);
    let out = env
        .command(&["run", "--help"])
        .env_remove("ZCELL_SCHED_LOCK_FILE")
        .env_remove("ZCELL_SCHED_STATUS_FILE")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let text = stdout(&out);
    for expected in [
        "Required: from this option or the config file's `bms`",
        "a range like mon-fri",
        "The end may be 24:00 (midnight); an end at or before the start crosses midnight",
        "[env: ZCELL_SCHED_LOCK_FILE]",
        "1 to 300 [default: 10]",
        "Exit codes:\n  0 ",
        "  3         the GX settings (zendure: the device) could not be read or written\n",
        "  4         another run holds the lock\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("_FILE=]"), "{text}");
    for command in [
        &["--help"][..],
        &["status", "--help"],
        &["disable", "--help"],
    ] {
        let text = stdout(&env.run(command));
        assert!(text.contains("Exit codes:"), "{command:?}: {text}");
    }
}

#[test]
fn help_lists_the_commands() {
    let env = TestEnv::new(&[]);
    let out = env.run(&["--help"]);
    assert_exit(&out, 0);
    for command in ["run", "status", "disable"] {
        assert!(stdout(&out).contains(command), "{}", stdout(&out));
    }
    assert_exit(&env.run(&["frobnicate"]), 2);
}
