//! The config file end to end: it replaces the options, the command line
//! overrides it, seasons and holidays change the plan, and a bad file is
//! refused before anything is written.

mod testenv;

use std::process::Output;

use testenv::{TestEnv, assert_exit, due_in};

const HOUR: i64 = 3600;

fn env() -> TestEnv {
    TestEnv::new(&["--set=/Settings/System/TimeZone=/UTC"]).with_bms(&due_in(48 * HOUR), &[])
}

fn write_config(env: &TestEnv, json: &str) -> String {
    let path = env.dir.join("config.json");
    std::fs::write(&path, json.replace("BMS", env.bms())).unwrap();
    path.display().to_string()
}

fn run(env: &TestEnv, config: &str, now: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--config", config, "--now", now];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn the_config_file_replaces_the_options() {
    let env = env();
    let config = write_config(
        &env,
        r#"{"bms": "BMS", "slots": [1, 2], "day_start": "06:00", "time_zone": "Australia/Hobart",
            "peaks": ["daily@17:00-20:00"], "reserve_soc": 90, "bms_retries": 0,
            "maintenance_windows": ["12:00-15:00@40"]}"#,
    );
    // Monday 2026-11-23 06:00 in Hobart.
    assert_exit(&run(&env, &config, "2026-11-23T06:00", &[]), 0);
    assert_eq!(env.slot(1), (1, 6 * HOUR, 11 * HOUR, 90));
    assert_eq!(env.slot(2), (1, 20 * HOUR, 10 * HOUR, 90));
    assert_eq!(env.slot(3).0, -7, "not owned under this config");
    let out = env.run(&[
        "run",
        "--config",
        &config,
        "--now",
        "2026-11-23T06:00",
        "--dry-run",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(Australia/Hobart)"));
}

#[test]
fn the_command_line_overrides_the_config_file_everywhere() {
    let env = env();
    let config = write_config(
        &env,
        r#"{"bms": "BMS", "reserve_soc": 90,
            "seasons": [{"months": "jan-dec", "reserve_soc": 70}]}"#,
    );
    assert_exit(&run(&env, &config, "2026-11-23T07:00", &[]), 0);
    assert_eq!(env.slot(3).3, 70, "the season's");
    assert_exit(
        &run(
            &env,
            &config,
            "2026-11-23T07:00",
            &["--reserve-soc", "80", "--slots", "0,1"],
        ),
        0,
    );
    assert_eq!(
        (env.slot(0).3, env.slot(1).3),
        (80, 80),
        "the command line's, season or not"
    );
}

#[test]
fn seasons_follow_the_planning_days_month() {
    let env = env();
    let config = write_config(
        &env,
        r#"{"bms": "BMS",
            "seasons": [{"months": "apr-sep", "reserve_soc": 60, "peaks": ["weekdays@17:00-19:00"]}]}"#,
    );
    // Monday 2026-06-01: the winter season.
    assert_exit(&run(&env, &config, "2026-06-01T07:00", &[]), 0);
    assert_eq!(env.slot(3), (1, 7 * HOUR, 10 * HOUR, 60));
    assert_eq!(env.slot(4), (1, 19 * HOUR, 12 * HOUR, 60));
    // Monday 2026-11-23: no season, the defaults.
    assert_exit(&run(&env, &config, "2026-11-23T07:00", &[]), 0);
    assert_eq!(env.slot(3), (1, 10 * HOUR, 6 * HOUR, 100));
}

#[test]
fn a_holiday_has_no_weekday_peaks() {
    let env = env();
    let config = write_config(
        &env,
        r#"{"bms": "BMS", "holidays": ["2026-11-24", "12-25"]}"#,
    );
    // Tuesday 2026-11-24 is a holiday: one window all day, like a Sunday.
    assert_exit(&run(&env, &config, "2026-11-24T07:00", &[]), 0);
    assert_eq!(env.slot(3), (2, 7 * HOUR, 24 * HOUR, 100));
    assert!(env.slot(4).0 < 0, "one window: slot 4 stays off");
    // Monday before it: the evening window runs to the holiday's 07:00 and
    // no morning peak follows, so it runs on.
    assert_exit(&run(&env, &config, "2026-11-23T07:00", &[]), 0);
    assert_eq!(env.slot(4), (1, 21 * HOUR, 10 * HOUR, 100));
    // Christmas 2026 is a Friday; yearly form.
    assert_exit(&run(&env, &config, "2026-12-25T07:00", &[]), 0);
    assert_eq!(env.slot(3), (5, 7 * HOUR, 24 * HOUR, 100));
}

#[test]
fn a_bad_config_is_refused_naming_the_key_and_nothing_is_written() {
    let env = env();
    let cases = [
        (
            r#"{"bms": "BMS", "colour": "blue"}"#,
            "unknown key `colour`",
        ),
        (
            r#"{"bms": "BMS", "slots": [3, 9]}"#,
            "`slots` must be a whole number from 0 to 4",
        ),
        (r#"{"bms": "BMS", "day_start": "25:00"}"#, "`day_start`"),
        (r#"{"bms": "BMS", "reserve_soc": 120}"#, "`reserve_soc`"),
        (r#"{"bms": "BMS", "slots": [4]}"#, "needs more owned slots"),
        (
            r#"{"bms": "BMS", "seasons": [{"months": "jan-jun", "reserve_soc": 1}, {"months": "jun", "reserve_soc": 2}]}"#,
            "share a month",
        ),
        (r#"{"slots": [3, 4]}"#, "no BMS address"),
        ("{\"bms\": ", "not valid JSON"),
    ];
    for (json, expected) in cases {
        let config = write_config(&env, json);
        let out = run(&env, &config, "2026-11-23T07:00", &[]);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{json}: {err}");
    }
    // Each of these says the file and the key, as the README promises.
    let config = write_config(&env, "[]");
    let file = format!("zcell-sched: error: config file {config}: ");
    let exact = [
        ("[]", "the top level must be an object ({...}), not []".to_string()),
        (
            r#"{"bms": "BMS", "maintenance_windows": ["13:00-16:00@50", "15:00-17:00@80"]}"#,
            "`maintenance_windows`: maintenance windows 13:00-16:00@50 and 15:00-17:00@80 overlap"
                .to_string(),
        ),
        (
            r#"{"bms": "BMS", "seasons": [{"months": "jan-jun", "reserve_soc": 1}, {"months": "jun", "reserve_soc": 2}]}"#,
            "`seasons[0]` (jan-jun) and `seasons[1]` (jun) share a month".to_string(),
        ),
        (
            r#"{"bms": "BMS", "seasons": [{"months": "jan", "maintenance_windows": ["01:00-03:00@50", "02:00-04:00@50"]}]}"#,
            "`seasons[0]` (jan): `maintenance_windows`: maintenance windows 01:00-03:00@50 and 02:00-04:00@50 overlap"
                .to_string(),
        ),
        (
            r#"{"bms": "BMS", "slots": [3]}"#,
            "`slots`: the policy needs more owned slots, e.g. on this maintenance day: \
             Sat 2026-01-10 07:00-07:00 (+1d) needs 2 charge windows (13:00-16:00, 03:00-07:00) \
             but only slot 3 is owned"
                .to_string(),
        ),
    ];
    for (json, expected) in exact {
        write_config(&env, json);
        let out = run(&env, &config, "2026-11-23T07:00", &[]);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err, format!("{file}{expected}\n"), "{json}");
    }
    let out = run(&env, "/nonexistent/config.json", "2026-11-23T07:00", &[]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
    assert_eq!(env.writes(), vec![]);
}

#[test]
fn status_and_disable_take_the_owned_slots_from_the_config() {
    let env = env();
    let config = write_config(&env, r#"{"bms": "BMS", "slots": [0, 1]}"#);
    assert_exit(&run(&env, &config, "2026-11-23T07:00", &[]), 0);
    let out = env.run(&["status", "--config", &config]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0     1    zcell-sched  on  Mon 10:00-16:00"),
        "{text}"
    );
    assert!(
        text.contains("battery 1: SoC 87.4%"),
        "the config's BMS is read: {text}"
    );
    assert_exit(&env.run(&["disable", "--config", &config]), 0);
    assert_eq!((env.slot(0).0, env.slot(1).0), (-1, -1));
}
