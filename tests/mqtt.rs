//! Running off the GX: the same plan written through the GX's MQTT broker
//! (a real mosquitto) to the simulated GX behind the flashmq emulator.

mod testenv;

use std::process::Output;

use testenv::mqtt::{Client, PASSWORD, PORTAL, USER};
use testenv::{TestEnv, assert_exit, due_in, slot_path, stderr};

const HOUR: i64 = 3600;
const MONDAY: &str = "2026-11-23T07:00";
const HOBART: &str = "--set=/Settings/System/TimeZone=Australia/Hobart";

fn env() -> TestEnv {
    TestEnv::new(&[HOBART])
        .with_bms(&due_in(48 * HOUR), &[])
        .with_mqtt(&[])
}

fn run(env: &TestEnv, gx: &str, now: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--gx",
        gx,
        "--bms",
        env.bms(),
        "--now",
        now,
        "--mqtt-timeout",
        "3",
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn normal_and_maintenance_days_over_mqtt() {
    let env = env();
    let gx = env.mqtt_url();
    assert_exit(&run(&env, &gx, MONDAY, &[]), 0);
    assert_eq!(env.slot(3), (1, 10 * HOUR, 6 * HOUR, 100));
    assert_eq!(env.slot(4), (1, 21 * HOUR, 10 * HOUR, 100));
    assert_eq!(
        env.w_messages().len(),
        env.writes().len(),
        "one W/ per SetValue"
    );
    assert!(env.w_messages()[0].starts_with("/Settings/CGwacs/BatteryLife/Schedule/Charge/"));
    env.set_payload(&due_in(10 * HOUR));
    assert_exit(&run(&env, &gx, "2026-11-24T07:00", &[]), 0);
    assert_eq!(env.slot(3), (2, 13 * HOUR, 3 * HOUR, 50));
    assert_eq!(env.slot(4), (3, 3 * HOUR, 4 * HOUR, 100));
    assert_eq!(env.record()["outcome"], "applied");
}

#[test]
fn an_identical_rerun_sends_no_w_message() {
    let env = env();
    let gx = env.mqtt_url();
    assert_exit(&run(&env, &gx, MONDAY, &[]), 0);
    let sent = env.w_messages().len();
    assert_exit(&run(&env, &gx, "2026-11-23T12:00", &[]), 0);
    assert_eq!(env.w_messages().len(), sent);
}

#[test]
fn status_and_disable_over_mqtt_with_the_portal_id_given() {
    let env = env();
    let gx = env.mqtt_url();
    assert_exit(&run(&env, &gx, MONDAY, &["--portal-id", PORTAL]), 0);
    let out = env.run(&["status", "--gx", &gx]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("GX time zone  Australia/Hobart"), "{text}");
    assert!(
        text.contains("3     4    zcell-sched  on  Mon 10:00-16:00"),
        "{text}"
    );
    assert_exit(&env.run(&["disable", "--gx", &gx]), 0);
    assert_eq!((env.slot(3).0, env.slot(4).0), (-1, -1));
}

#[test]
fn a_refused_write_is_caught_by_the_read_back() {
    let refuse = format!("--refuse={}", slot_path(4, "Duration"));
    let env = TestEnv::new(&[HOBART, &refuse])
        .with_bms(&due_in(48 * HOUR), &[])
        .with_mqtt(&[]);
    let out = run(&env, &env.mqtt_url(), MONDAY, &[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("read back slot 4"), "{err}");
    assert!(err.contains("fell back: slots 3,4 disabled"), "{err}");
    assert!(env.slot(3).0 < 0 && env.slot(4).0 < 0);
}

/// Another client (the VRM dashboard, Home Assistant) keeps the GX alive,
/// so the bridge publishes the echo of every write: the read-back after
/// writing must still see the GX's state after all of them. The run
/// disables slot 3, rewrites its fields and enables it again.
#[test]
fn the_read_back_is_immune_to_echoes_of_its_own_writes() {
    let env = env();
    let gx = env.mqtt_url();
    assert_exit(&run(&env, &gx, MONDAY, &[]), 0);
    let dashboard = Client::new(&env, "dashboard", &format!("N/{PORTAL}/#"));
    dashboard.keep_alive();
    let out = run(
        &env,
        &gx,
        MONDAY,
        &[
            "--peak",
            "weekdays@07:00-12:00",
            "--peak",
            "weekdays@17:00-20:00",
            "--reserve-soc",
            "90",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(env.slot(3), (1, 12 * HOUR, 5 * HOUR, 90));
    assert_eq!(env.record()["outcome"], "applied");
    // The dashboard saw the echoes: the disable of slot 3 among them.
    let day = format!("N/{PORTAL}/settings/0{}", slot_path(3, "Day"));
    let mut days = Vec::new();
    while let Some((topic, payload)) = dashboard.next(std::time::Duration::from_millis(500)) {
        if topic == day {
            days.push(payload);
        }
    }
    assert!(
        days.iter().any(|p| p.contains("\"value\":-1")),
        "no echo of the disable: {days:?}"
    );
}

/// What the flashmq emulator copies from Victron's bridge (FlashMQ with
/// dbus-flashmq v25 over localsettings), each pinned here. A read of the
/// time zone ends each exchange: the bridge answers in order, so whatever
/// came before its answer is all the earlier messages brought.
#[test]
fn the_emulator_behaves_as_the_real_bridge() {
    let mut env = env();
    let n = |path: &str| format!("N/{PORTAL}/settings/0{path}");
    let (r, w) = (
        |path: &str| format!("R/{PORTAL}/settings/0{path}"),
        |path: &str| format!("W/{PORTAL}/settings/0{path}"),
    );
    let tz = "/Settings/System/TimeZone";
    let client = Client::new(&env, "observer", &format!("N/{PORTAL}/#"));
    // Only the serial is retained.
    client.publish(&r(tz), "");
    let seen = client.until(&n(tz));
    let topics: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [format!("N/{PORTAL}/system/0/Serial"), n(tz)],
        "{seen:?}"
    );
    // Not alive: a write that changes a value publishes nothing.
    client.publish(&w(&slot_path(2, "Soc")), r#"{"value": 40}"#);
    client.publish(&r(tz), "");
    assert_eq!(client.until(&n(tz)).len(), 1);
    assert_eq!(env.slot(2).3, 40);
    // A subtree R/ answers every leaf below it, min/max where the setting has them.
    client.publish(
        &r(&format!(
            "{}/Charge/2",
            "/Settings/CGwacs/BatteryLife/Schedule"
        )),
        "",
    );
    client.publish(&r(tz), "");
    let seen: std::collections::BTreeMap<String, String> =
        client.until(&n(tz)).into_iter().collect();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(
        seen[&n(&slot_path(2, "Day"))],
        r#"{"max":11,"min":-11,"value":-7}"#
    );
    assert_eq!(seen[&n(&slot_path(2, "Start"))], r#"{"value":0}"#);
    assert_eq!(
        seen[&n(&slot_path(2, "Soc"))],
        r#"{"max":100,"min":0,"value":40}"#
    );
    assert!(seen.contains_key(&n(&slot_path(2, "AllowDischarge"))));
    // A keepalive republishes everything, then full_publish_completed with the echo.
    client.publish(
        &format!("R/{PORTAL}/keepalive"),
        r#"{"keepalive-options":[{"full-publish-completed-echo":"mark-1"}]}"#,
    );
    let seen = client.until(&format!("N/{PORTAL}/full_publish_completed"));
    let (_, done) = seen.last().unwrap();
    assert!(
        done.contains(r#""full-publish-completed-echo":"mark-1""#),
        "{done}"
    );
    assert!(seen.iter().any(|(t, _)| *t == n(&slot_path(4, "Duration"))));
    client.until(&format!("N/{PORTAL}/heartbeat"));
    // Alive: every change is published, in order, the echo of a W/ included;
    // a missing path, bad JSON, no "value" and a refused value bring nothing.
    for (path, payload) in [
        (slot_path(2, "Soc"), r#"{"value": 30}"#),
        (slot_path(2, "Missing"), r#"{"value": 1}"#),
        (slot_path(2, "Soc"), "{nope"),
        (slot_path(2, "Soc"), r#"{"val": 20}"#),
        (slot_path(2, "Soc"), r#"{"value": 101}"#),
        (slot_path(2, "Start"), r#"{"value": 3600.0}"#),
        (slot_path(2, "Soc"), r#"{"value": 55.5}"#),
    ] {
        client.publish(&w(&path), payload);
    }
    client.publish(&r(&slot_path(2, "Missing")), "");
    client.publish(&r(tz), "");
    let mut seen = client.until(&n(tz));
    seen.pop();
    // The heartbeat (every 3 s while alive) may come in between.
    let beat = format!("N/{PORTAL}/heartbeat");
    seen.retain(|(t, _)| *t != beat);
    assert_eq!(
        seen,
        [
            (
                n(&slot_path(2, "Soc")),
                r#"{"max":100,"min":0,"value":30}"#.to_string()
            ),
            (n(&slot_path(2, "Start")), r#"{"value":3600}"#.to_string()),
            (
                n(&slot_path(2, "Soc")),
                r#"{"max":100,"min":0,"value":55}"#.to_string()
            ),
        ],
        "{seen:?}"
    );
    // The settings service leaves the bus: an empty payload for each of its paths.
    env.stop_gx();
    let mut emptied = Vec::new();
    while let Some((topic, payload)) = client.next(std::time::Duration::from_secs(5)) {
        if payload.is_empty() {
            emptied.push(topic);
        }
        if emptied.contains(&n(tz)) && emptied.contains(&n(&slot_path(4, "Soc"))) {
            break;
        }
    }
    assert!(emptied.contains(&n(tz)), "{emptied:?}");
    assert!(emptied.contains(&n(&slot_path(4, "Soc"))), "{emptied:?}");
}

#[test]
fn broker_down_is_a_clear_error() {
    let env = TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), &[]);
    let out = run(&env, "mqtt://127.0.0.1:1", MONDAY, &[]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("cannot connect to the MQTT broker mqtt://127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.writes(), vec![]);
}

#[test]
fn a_silent_gx_times_out_naming_what_did_not_arrive() {
    let env = TestEnv::new(&[HOBART])
        .with_bms(&due_in(48 * HOUR), &[])
        .with_mqtt(&["--silent"]);
    let gx = env.mqtt_url();
    let out = run(&env, &gx, MONDAY, &[]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("within 3s for /Settings/System/TimeZone"),
        "{}",
        stderr(&out)
    );
    let out = run(&env, &gx, MONDAY, &["--tz", "Australia/Hobart"]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&slot_path(3, "Day")) && err.contains(&slot_path(4, "Soc")),
        "{err}"
    );
    // A wrong portal id: no GX answers for it either.
    let out = run(&env, &gx, MONDAY, &["--portal-id", "0000000000"]);
    assert_exit(&out, 3);
}

#[test]
fn tls_with_the_ca_is_accepted_and_without_it_refused() {
    let env = env();
    let (url, ca, other) = (
        env.mqtts_url(),
        env.cert("ca.crt"),
        env.cert("other-ca.crt"),
    );
    assert_exit(&run(&env, &url, MONDAY, &["--ca-file", &ca]), 0);
    assert_eq!(env.slot(3).0, 1);
    let out = run(&env, &url, MONDAY, &["--ca-file", &other]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr(&out)
    );
    let out = run(&env, &url, MONDAY, &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("mqtts needs --ca-file"),
        "{}",
        stderr(&out)
    );
    let out = run(&env, &url, MONDAY, &["--insecure-skip-verify"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("warning: --insecure-skip-verify"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_gx_style_self_signed_certificate_is_pinned() {
    let env = env();
    let url = env.mqtts_pinned_url();
    // The certificate names venus.local only (no SAN) and is reached by IP:
    // trusting exactly that certificate works, a CA does not.
    assert_exit(
        &run(&env, &url, MONDAY, &["--ca-file", &env.cert("gx.crt")]),
        0,
    );
    assert_exit(
        &run(&env, &url, MONDAY, &["--ca-file", &env.cert("ca.crt")]),
        3,
    );
}

#[test]
fn the_password_comes_from_the_environment_or_a_file_never_the_command_line() {
    let env = env();
    let url = env.mqtt_auth_url();
    let out = run(&env, &url, MONDAY, &["--mqtt-user", USER]);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("NotAuthorized"), "{}", stderr(&out));
    let out = env
        .command(&[
            "run",
            "--gx",
            &url,
            "--bms",
            env.bms(),
            "--now",
            MONDAY,
            "--mqtt-user",
            USER,
        ])
        .env("ZCELL_SCHED_MQTT_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let file = env.dir.join("mqtt-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let out = run(
        &env,
        &url,
        MONDAY,
        &[
            "--mqtt-user",
            USER,
            "--mqtt-password-file",
            file.to_str().unwrap(),
        ],
    );
    assert_exit(&out, 0);
    let out = run(&env, &url, MONDAY, &["--mqtt-password", PASSWORD]);
    assert_exit(&out, 2);
}

#[test]
fn mqtt_options_without_mqtt_are_refused() {
    let env = TestEnv::new(&[HOBART]).with_bms(&due_in(48 * HOUR), &[]);
    let out = env.run(&[
        "run",
        "--bms",
        env.bms(),
        "--now",
        MONDAY,
        "--portal-id",
        PORTAL,
    ]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("need --gx mqtt://"),
        "{}",
        stderr(&out)
    );
}

/// With a `homeassistant` object, each run's record goes to Home
/// Assistant as a retained state beside the device's discovery message.
#[test]
fn the_run_is_published_for_home_assistant() {
    let env = env();
    let gx = env.mqtt_url();
    let config = env.dir.join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"homeassistant": {"broker": gx, "node_id": "gx1", "reconnect": 5}})
            .to_string(),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    assert_exit(&run(&env, &gx, MONDAY, &["--config", config]), 0);
    let ha = Client::new(&env, "ha", "homeassistant/device/gx1/config");
    let discovery = ha.until_payload("homeassistant/device/gx1/config", |p| !p.is_empty());
    let discovery: serde_json::Value = serde_json::from_str(&discovery).unwrap();
    assert_eq!(discovery["o"]["name"], "zcell-sched");
    assert_eq!(discovery["state_topic"], "zcell-sched/gx1/state");
    let cmps = discovery["cmps"].as_object().unwrap();
    for key in [
        "last_run",
        "outcome",
        "reason",
        "planning_day",
        "maintenance_day",
        "owned_slots",
        "owned_windows",
        "battery_1_maintenance",
    ] {
        assert_eq!(cmps[key]["unique_id"], format!("gx1_{key}"), "{key}");
    }
    assert!(discovery.get("availability_topic").is_none());
    let ha = Client::new(&env, "ha-state", "zcell-sched/gx1/state");
    let state = ha.until_payload("zcell-sched/gx1/state", |p| !p.is_empty());
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["outcome"], "applied");
    assert_eq!(state["planning_day"]["kind"], "normal");
    assert_eq!(state["batteries"].as_array().map(Vec::len), Some(1));
}
