//! The Dynamic ESS writer (`--writer dess`) against the simulated GX, which
//! holds the Dynamic ESS settings as dbus-systemcalc-py creates them: the
//! plan as Local windows with absolute start times, the same minimal
//! writes and fallback as the slots, and the preconditions.

mod testenv;

use std::collections::BTreeMap;
use std::process::Output;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Australia::Hobart;
use serde_json::Value;
use testenv::{TestEnv, assert_exit, due_in, stderr, stdout};
use zcell_sched::zcell::dess::{self, WindowIndex, WindowValues};

const HOUR: i64 = 3600;
const MONDAY: &str = "2026-11-23T07:00";
const HOBART: &str = "--set=/Settings/System/TimeZone=Australia/Hobart";
const LOCAL: &str = "--set=/Settings/DynamicEss/Mode=4";
const CAPACITY: &str = "--set=/Settings/DynamicEss/BatteryCapacity=10";
const DESS: &str = "/Settings/DynamicEss";
/// The default overlap past the planning day.
const OVERLAP: i64 = 600;

fn env_with(gx_args: &[&str]) -> TestEnv {
    let mut args = vec![HOBART];
    args.extend_from_slice(gx_args);
    TestEnv::new(&args).with_bms(&due_in(48 * HOUR), &[])
}

fn env() -> TestEnv {
    env_with(&[LOCAL, CAPACITY])
}

fn run(env: &TestEnv, now: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--writer", "dess"];
    args.extend_from_slice(extra);
    env.run_at(now, &args)
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
}

/// Unix seconds of a Hobart wall-clock time.
fn at(s: &str) -> i64 {
    local(s)
        .and_local_timezone(Hobart)
        .earliest()
        .unwrap()
        .timestamp()
}

fn window_path(n: u8, leaf: &str) -> String {
    format!("{DESS}/Schedule/{n}/{leaf}")
}

/// (Start, Duration, TargetSoc, Strategy) of a window, as the GX holds it.
fn window(env: &TestEnv, n: u8) -> (i64, i64, f64, i64) {
    let state = env.state();
    let int = |leaf| state[window_path(n, leaf)].as_i64().unwrap();
    let soc = state[window_path(n, "TargetSoc")].as_f64().unwrap();
    (int("Start"), int("Duration"), soc, int("Strategy"))
}

/// All 48 windows as the GX holds them, for the mirror of Victron's window
/// selection.
fn windows(env: &TestEnv) -> BTreeMap<WindowIndex, WindowValues> {
    let state = env.state();
    (0..48)
        .filter_map(WindowIndex::new)
        .map(|i| {
            let get = |leaf| state[window_path(i.get(), leaf)].as_f64().unwrap();
            let values = WindowValues {
                start: get("Start"),
                duration: get("Duration"),
                target_soc: get("TargetSoc"),
                strategy: get("Strategy"),
                restrictions: get("Restrictions"),
                allow_grid_feed_in: get("AllowGridFeedIn"),
                flags: get("Flags"),
            };
            (i, values)
        })
        .collect()
}

const SELF: i64 = 1;
const CHARGE: i64 = 2;

fn unused_windows_are_none(env: &TestEnv, from: u8) {
    for n in from..48 {
        assert_eq!(window(env, n).0, 0, "window {n} untouched or removed");
    }
}

#[test]
fn normal_weekday_as_windows_with_absolute_starts() {
    let env = env();
    let out = run(&env, MONDAY, &[]);
    assert_exit(&out, 0);
    assert_eq!(window(&env, 0), (at(MONDAY), 3 * HOUR, 0.0, SELF));
    assert_eq!(
        window(&env, 1),
        (at("2026-11-23T10:00"), 6 * HOUR, 100.0, CHARGE)
    );
    assert_eq!(
        window(&env, 2),
        (at("2026-11-23T16:00"), 5 * HOUR, 0.0, SELF)
    );
    assert_eq!(
        window(&env, 3),
        (at("2026-11-23T21:00"), 10 * HOUR, 100.0, CHARGE)
    );
    assert_eq!(
        window(&env, 4),
        (at("2026-11-24T07:00"), OVERLAP, 0.0, SELF)
    );
    unused_windows_are_none(&env, 5);
    let state = env.state();
    for n in 0..5 {
        assert_eq!(
            state[window_path(n, "AllowGridFeedIn")],
            1,
            "follows the ESS"
        );
        assert_eq!(state[window_path(n, "Restrictions")], 0);
        assert_eq!(state[window_path(n, "Flags")], 0);
    }
    // The owned slots stay off, so they cannot take over between windows.
    assert!(env.slot(3).0 < 0 && env.slot(4).0 < 0);
    assert_eq!(state[format!("{DESS}/Mode")], 4, "the mode is the owner's");
    let record = env.record();
    assert_eq!(record["outcome"], "applied");
    assert_eq!(record["windows"].as_array().unwrap().len(), 12);
    assert_eq!(record["writes"], env.writes().len());
    assert!(
        stderr(&out)
            .contains("window 1: Mon 2026-11-23 10:00 -> Mon 16:00 (6h00) charge and hold 100%"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn maintenance_and_weekend_days() {
    let env = env();
    env.set_payload(&due_in(10 * HOUR));
    assert_exit(&run(&env, MONDAY, &[]), 0);
    assert_eq!(window(&env, 0), (at(MONDAY), 6 * HOUR, 0.0, SELF));
    assert_eq!(
        window(&env, 1),
        (at("2026-11-23T13:00"), 3 * HOUR, 50.0, CHARGE)
    );
    assert_eq!(
        window(&env, 2),
        (at("2026-11-23T16:00"), 11 * HOUR, 0.0, SELF)
    );
    assert_eq!(
        window(&env, 3),
        (at("2026-11-24T03:00"), 4 * HOUR, 100.0, CHARGE)
    );
    assert_eq!(env.record()["planning_day"]["kind"], "maintenance");
    env.set_payload(&due_in(48 * HOUR));
    assert_exit(&run(&env, "2026-11-28T07:00", &[]), 0);
    assert_eq!(
        window(&env, 0),
        (at("2026-11-28T07:00"), 24 * HOUR, 100.0, CHARGE)
    );
    assert_eq!(
        window(&env, 1),
        (at("2026-11-29T07:00"), OVERLAP, 0.0, SELF)
    );
    unused_windows_are_none(&env, 2);
}

/// Hobart leaves DST on Sun 2026-04-05 (a 25 h planning day from Saturday
/// 07:00) and starts it on Sun 2026-10-04 (23 h). The GX adds `Duration` to
/// the naive local start, so the 24 h window ends at Sunday 07:00 on the
/// wall clock; the next window starts 25 or 23 real hours after it.
#[test]
fn dst_days_have_absolute_starts_and_wall_clock_ends() {
    for (saturday, real_hours) in [("2026-04-04T07:00", 25), ("2026-10-03T07:00", 23)] {
        let env = env();
        assert_exit(&run(&env, saturday, &[]), 0);
        let (start, duration, soc, strategy) = window(&env, 0);
        assert_eq!(
            (start, duration, soc, strategy),
            (at(saturday), 24 * HOUR, 100.0, CHARGE)
        );
        let next = window(&env, 1).0;
        assert_eq!(next - start, real_hours * HOUR, "{saturday}");
        let sunday = local(saturday) + TimeDelta::days(1);
        assert_eq!(next, at(&sunday.format("%Y-%m-%dT%H:%M").to_string()));
        let text = stdout(&env.run(&[
            "run",
            "--writer",
            "dess",
            "--bms",
            env.bms(),
            "--now",
            saturday,
            "--dry-run",
        ]));
        assert!(text.contains(&format!("{real_hours} real hours")), "{text}");
    }
}

#[test]
fn an_identical_rerun_writes_nothing() {
    let env = env();
    assert_exit(&run(&env, MONDAY, &[]), 0);
    let first = env.writes().len();
    assert!(first > 0);
    assert!(env.writes().iter().all(|(_, result)| *result == 0));
    assert_exit(&run(&env, "2026-11-23T12:00", &[]), 0);
    assert_eq!(env.writes().len(), first, "no SetValue on a re-run");
    assert_eq!(env.record()["writes"], 0);
    // The next day replaces every window, each removed before it changes.
    env.clear_writes();
    assert_exit(&run(&env, "2026-11-24T07:00", &[]), 0);
    let writes = env.writes();
    let first_start = writes
        .iter()
        .position(|(p, _)| p.ends_with("/Start"))
        .unwrap();
    assert!(
        writes[first_start..]
            .iter()
            .take_while(|(p, _)| p.ends_with("/Start"))
            .count()
            >= 5,
        "removals first: {writes:?}"
    );
    assert_eq!(window(&env, 0).0, at("2026-11-24T07:00"));
}

/// The windows of the last run end by themselves: a wall-clock day and the
/// overlap after the run, no owned window is active, by Victron's own
/// selection rule (mirrored in `dess::active_at`) over what the GX holds.
#[test]
fn windows_end_by_themselves_a_day_after_the_last_run() {
    for now in [
        MONDAY,
        "2026-11-23T15:00",
        "2026-04-04T07:00",
        "2026-10-03T20:00",
    ] {
        let env = env();
        assert_exit(&run(&env, now, &[]), 0);
        let held = windows(&env);
        let when = |local: NaiveDateTime| -> DateTime<Utc> {
            local
                .and_local_timezone(Hobart)
                .earliest()
                .unwrap()
                .with_timezone(&Utc)
        };
        assert!(dess::active_at(&held, Hobart, when(local(now))).is_some());
        let day_later = when(local(now) + TimeDelta::days(1)) + TimeDelta::seconds(OVERLAP);
        assert_eq!(dess::active_at(&held, Hobart, day_later), None, "{now}");
    }
}

/// Berlin springs forward on Sun 2026-03-29 at 02:00 (to 03:00). A
/// maintenance window from 02:30 starts when the clock jumps, at 03:00, as
/// the slot writer's slot from 02:30 does: no moment without a window.
#[test]
fn a_window_from_inside_the_dst_gap_starts_when_the_clock_jumps() {
    let berlin = chrono_tz::Europe::Berlin;
    let env = TestEnv::new(&[
        "--set=/Settings/System/TimeZone=Europe/Berlin",
        LOCAL,
        CAPACITY,
    ])
    .with_bms(&due_in(HOUR), &[]);
    let saturday = "2026-03-28T07:00";
    let out = run(&env, saturday, &["--maintenance-window", "02:30-05:00@100"]);
    assert_exit(&out, 0);
    let jump: DateTime<Utc> = "2026-03-29T01:00:00Z".parse().unwrap();
    let charge = (0..12).map(|n| window(&env, n)).find(|w| w.3 == CHARGE);
    assert_eq!(charge, Some((jump.timestamp(), 2 * HOUR, 100.0, CHARGE)));
    assert!(
        stderr(&out).contains("Sun 2026-03-29 03:00 -> Sun 05:00 (2h00) charge and hold 100%"),
        "{}",
        stderr(&out)
    );
    let held = windows(&env);
    let run_at = local(saturday)
        .and_local_timezone(berlin)
        .unwrap()
        .with_timezone(&Utc);
    for minute in (0..23 * 60).step_by(5) {
        let t = run_at + TimeDelta::minutes(minute);
        assert!(
            dess::active_at(&held, berlin, t).is_some(),
            "no window at {t}"
        );
    }
}

/// VRM leaves its windows set when Dynamic ESS leaves Auto mode, and
/// nothing refreshes them in Local: taking Dynamic ESS over removes those
/// zcell-sched does not own, which it would otherwise follow for a day
/// after zcell-sched's own windows end.
#[test]
fn taking_over_from_vrm_removes_the_windows_it_does_not_own() {
    let vrm = format!("--vrm-windows={}", at(MONDAY) - HOUR);
    let env = env_with(&["--set=/Settings/DynamicEss/Mode=1", CAPACITY, &vrm]);
    let out = run(&env, MONDAY, &["--dess-set-local"]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(
            "removed 36 Dynamic ESS windows zcell-sched does not own (12-47), left from mode \
             Auto (VRM)"
        ),
        "{err}"
    );
    assert!(!err.contains("warning"), "{err}");
    unused_windows_are_none(&env, 5);
    assert_eq!(
        window(&env, 1),
        (at("2026-11-23T10:00"), 6 * HOUR, 100.0, CHARGE)
    );
    let writes = env.writes();
    assert_eq!(
        writes.last().unwrap().0,
        format!("{DESS}/Mode"),
        "mode last"
    );
    let held = windows(&env);
    let day_later = at("2026-11-24T07:00") + OVERLAP;
    let day_later = DateTime::from_timestamp(day_later, 0).unwrap();
    assert_eq!(dess::active_at(&held, Hobart, day_later), None);
    let record = env.record();
    assert_eq!(record["foreign_windows_removed"], 36);
    assert_eq!(record["windows"].as_array().unwrap().len(), 12);
    let out = env.run(&["status", "--writer", "dess", "--json"]);
    assert_exit(&out, 0);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["last_run"]["foreign_windows_removed"], 36);
    assert_eq!(doc["dess"]["foreign_windows"], serde_json::json!([]));
    assert_eq!(doc["dess"]["warning"], Value::Null);
    // Taken over once: the next run has nothing of VRM's to remove.
    assert_exit(&run(&env, "2026-11-23T12:00", &[]), 0);
    assert_eq!(env.record()["writes"], 0);
    assert_eq!(env.record()["foreign_windows_removed"], Value::Null);
}

/// In Local mode (not switched by zcell-sched) windows it does not own may
/// be another tool's: left alone, and `run` and `status` say what they do.
#[test]
fn windows_it_does_not_own_in_local_mode_are_left_with_a_warning() {
    let vrm = format!("--vrm-windows={}", at(MONDAY));
    let env = env_with(&[LOCAL, CAPACITY, &vrm]);
    let warning = "36 Dynamic ESS windows zcell-sched does not own (12-47) are set, the last \
                   until Wed 2026-11-25 07:00";
    let out = run(&env, MONDAY, &["--dess-set-local"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains(&format!("warning: {warning}")),
        "{}",
        stderr(&out)
    );
    assert!(
        env.writes().iter().all(|(path, _)| {
            let n: u8 = path
                .strip_prefix(&format!("{DESS}/Schedule/"))
                .and_then(|rest| rest.split('/').next())
                .map_or(0, |n| n.parse().unwrap());
            n < 12
        }),
        "only owned windows written: {:?}",
        env.writes()
    );
    assert_eq!(window(&env, 12).0, at("2026-11-23T19:00"));
    assert_eq!(env.record()["foreign_windows_removed"], Value::Null);
    // What they do: once the owned windows end, Dynamic ESS follows them.
    let held = windows(&env);
    let day_later = DateTime::from_timestamp(at("2026-11-24T07:00") + OVERLAP, 0).unwrap();
    let followed = dess::active_at(&held, Hobart, day_later).map(WindowIndex::get);
    assert_eq!(followed, Some(24));
    let text = stdout(&env.run(&["status", "--writer", "dess"]));
    assert!(text.contains(&format!("warning: {warning}")), "{text}");
    let later = env.run(&["status", "--writer", "dess", "--now", "2026-11-24T08:00"]);
    let text = stdout(&later);
    assert!(
        text.contains(
            "window 25     Tue 2026-11-24 08:00 -> Tue 09:00 (1h00) reach 40% via the grid  \
             <- now, not zcell-sched's"
        ),
        "{text}"
    );
    let out = env.run(&["status", "--writer", "dess", "--json"]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["dess"]["foreign_windows"].as_array().unwrap().len(), 36);
    assert!(
        doc["dess"]["warning"].as_str().unwrap().contains(warning),
        "{doc}"
    );
}

#[test]
fn a_failed_bms_removes_the_windows() {
    let env = env();
    assert_exit(&run(&env, MONDAY, &[]), 0);
    env.set_payload("not json");
    let out = run(&env, "2026-11-24T07:00", &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("Dynamic ESS windows removed"),
        "{}",
        stderr(&out)
    );
    unused_windows_are_none(&env, 0);
    // Removal keeps the other fields: only Start is written.
    assert_eq!(window(&env, 1).1, 6 * HOUR);
    assert_eq!(env.record()["outcome"], "fallback");
    // The next good run repairs it.
    env.set_payload(&due_in(48 * HOUR));
    assert_exit(&run(&env, "2026-11-24T08:00", &[]), 0);
    assert_eq!(window(&env, 0).0, at("2026-11-24T07:00"));
}

#[test]
fn a_gx_without_dynamic_ess_is_refused_with_nothing_written() {
    let env = env_with(&["--no-dess"]);
    let out = run(&env, MONDAY, &[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("lacks the Dynamic ESS setting /Settings/DynamicEss/Mode"),
        "{err}"
    );
    assert!(err.contains("--writer slots"), "{err}");
    assert!(env.writes().is_empty());
    // The slot writer still works there.
    assert_exit(&env.run_at(MONDAY, &[]), 0);
    assert_eq!(env.slot(3), (1, 10 * HOUR, 6 * HOUR, 100));
    let text = stdout(&env.run(&["status", "--writer", "dess"]));
    assert!(text.contains("Dynamic ESS   none on this GX"), "{text}");
}

/// Dynamic ESS before dbus-systemcalc-py v2.241 had `Soc` where windows now
/// have `TargetSoc`: refused, naming the leaf.
#[test]
fn a_gx_with_older_dynamic_ess_is_refused_naming_the_leaf() {
    let env = env_with(&[
        LOCAL,
        CAPACITY,
        "--omit=/Settings/DynamicEss/Schedule/0/TargetSoc",
    ]);
    let out = run(&env, MONDAY, &[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("/Settings/DynamicEss/Schedule/0/TargetSoc"),
        "{err}"
    );
    assert!(env.writes().is_empty());
}

#[test]
fn preconditions_are_explained_before_any_write() {
    let cases: [(&[&str], &str); 5] = [
        (&[CAPACITY], "Dynamic ESS is Off"),
        (&[LOCAL], "battery capacity is not set"),
        (
            &["--set=/Settings/DynamicEss/Mode=1", CAPACITY],
            "Auto mode",
        ),
        (
            &[LOCAL, CAPACITY, "--set=/Settings/CGwacs/Hub4Mode=3"],
            "external control",
        ),
        (
            &[
                LOCAL,
                CAPACITY,
                "--set=/Settings/CGwacs/BatteryLife/State=9",
            ],
            "Keep batteries charged",
        ),
    ];
    for (gx, expected) in cases {
        let env = env_with(gx);
        let out = run(&env, MONDAY, &[]);
        assert_exit(&out, 3);
        let err = stderr(&out);
        assert!(err.contains(expected), "{gx:?}: {err}");
        assert!(err.contains("nothing written"), "{err}");
        assert!(env.writes().is_empty(), "{gx:?}: {:?}", env.writes());
        assert_eq!(env.record()["outcome"], "error");
    }
}

#[test]
fn set_local_switches_the_mode_after_the_windows() {
    let env = env_with(&["--set=/Settings/DynamicEss/Mode=1", CAPACITY]);
    assert_exit(&run(&env, MONDAY, &["--dess-set-local"]), 0);
    assert_eq!(env.value(&format!("{DESS}/Mode")), 4);
    let writes = env.writes();
    assert_eq!(
        writes.last().unwrap().0,
        format!("{DESS}/Mode"),
        "mode last"
    );
    assert_eq!(window(&env, 1).3, CHARGE);
}

#[test]
fn feed_in_follows_the_ess_setting() {
    let env = env_with(&[
        LOCAL,
        CAPACITY,
        "--set=/Settings/CGwacs/OvervoltageFeedIn=0",
    ]);
    assert_exit(&run(&env, MONDAY, &[]), 0);
    assert_eq!(env.value(&window_path(0, "AllowGridFeedIn")), 0);
}

#[test]
fn dry_run_status_and_disable_show_and_remove_the_windows() {
    let env = env();
    let out = env.run(&[
        "run",
        "--writer",
        "dess",
        "--bms",
        env.bms(),
        "--now",
        MONDAY,
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("Dynamic ESS   mode Local"), "{text}");
    assert!(
        text.contains("Mon 2026-11-23 21:00 -> Tue 07:00 (10h00) charge and hold 100%"),
        "{text}"
    );
    assert!(env.writes().is_empty(), "a dry run writes nothing");
    let out = env.run(&[
        "run",
        "--writer",
        "dess",
        "--bms",
        env.bms(),
        "--now",
        MONDAY,
        "--dry-run",
        "--json",
    ]);
    assert_exit(&out, 0);
    let record: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        record["windows"][1]["writes"], 5,
        "Start and the fields that differ"
    );

    assert_exit(&run(&env, MONDAY, &[]), 0);
    let out = env.run(&["status", "--writer", "dess", "--json"]);
    assert_exit(&out, 0);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["dess"]["mode"], 4);
    assert_eq!(doc["dess"]["windows"].as_array().unwrap().len(), 12);
    assert_eq!(doc["dess"]["windows"][1]["values"]["target_soc"], 100.0);
    let text = stdout(&env.run(&["status", "--writer", "dess"]));
    assert!(
        text.contains("window 3      Mon 2026-11-23 21:00 -> Tue 07:00"),
        "{text}"
    );

    env.clear_writes();
    assert_exit(&env.run(&["disable", "--writer", "dess"]), 0);
    unused_windows_are_none(&env, 0);
    assert_eq!(env.writes().len(), 5, "one Start per live window");
    assert_exit(&env.run(&["disable", "--writer", "dess"]), 0);
    assert_eq!(env.writes().len(), 5, "nothing left to remove");
}

#[test]
fn the_config_chooses_the_writer() {
    let env = env();
    let config = env.dir.join("config.json");
    std::fs::write(&config, r#"{"writer": "dess", "dess_overlap": 1800}"#).unwrap();
    let out = env.run_at(MONDAY, &["--config", config.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert_eq!(window(&env, 4), (at("2026-11-24T07:00"), 1800, 0.0, SELF));
    // The command line wins.
    let out = env.run_at(
        "2026-11-24T07:00",
        &["--config", config.to_str().unwrap(), "--writer", "slots"],
    );
    assert_exit(&out, 0);
    assert_eq!(env.slot(3).0, 2, "slots written");
}

#[test]
fn over_mqtt_too() {
    let env = env().with_mqtt(&[]);
    let gx = env.mqtt_url();
    let mqtt = ["--gx", gx.as_str(), "--mqtt-timeout", "3"];
    assert_exit(&run(&env, MONDAY, &mqtt), 0);
    assert_eq!(
        window(&env, 3),
        (at("2026-11-23T21:00"), 10 * HOUR, 100.0, CHARGE)
    );
    let sent = env.w_messages();
    assert!(
        sent.iter()
            .any(|m| m.starts_with("/Settings/DynamicEss/Schedule/1/TargetSoc")),
        "{sent:?}"
    );
    assert_exit(&run(&env, "2026-11-23T12:00", &mqtt), 0);
    assert_eq!(env.w_messages().len(), sent.len(), "no W/ on a re-run");
    let env = env_with(&["--no-dess"]).with_mqtt(&[]);
    let gx = env.mqtt_url();
    let out = run(&env, MONDAY, &["--gx", &gx, "--mqtt-timeout", "1"]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("/Settings/DynamicEss/Mode"),
        "{}",
        stderr(&out)
    );
    assert!(env.w_messages().is_empty());
}
