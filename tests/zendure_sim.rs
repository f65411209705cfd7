//! The simulated Zendure home must reproduce the device's documented
//! quirks and the meters' protocols, or the controller's tests against it
//! prove nothing. These tests talk to it over its real protocols.
//!
//! The programs are examples: `cargo test` builds them, `cargo test --test
//! zendure_sim` alone does not (run `cargo build --examples` first).

mod testenv;

use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;
use testenv::zendure::http::{http_request, https_get};
use testenv::zendure::telegram::telegram_power;
use testenv::zendure::{SimHome, TempDir, http_get, telegram_time};

const SN: &str = "ZSIM0000000001";

fn start(name: &str, args: &[&str]) -> (TempDir, SimHome) {
    let dir = TempDir::new(name);
    let home = SimHome::start(&dir.0, args);
    (dir, home)
}

fn counter(state: &Value, name: &str) -> u64 {
    state["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {state}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Polls the state until `done` holds, for at most 30 s of real time.
fn wait_state(home: &SimHome, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = home.state();
        if done(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "never {what}: {state}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn report_has_the_documented_shape() {
    let (_dir, home) = start("report", &["--soc", "64"]);
    let report = home.report();
    for key in ["timestamp", "messageId", "sn", "version", "product"] {
        assert!(!report[key].is_null(), "no {key} in {report}");
    }
    assert_eq!(report["sn"], SN);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let timestamp = f(&report["timestamp"]);
    assert!(
        (timestamp - now).abs() < 60.0,
        "by default the sim clock is real time: {timestamp} vs {now}"
    );
    let p = &report["properties"];
    for key in [
        "electricLevel",
        "packInputPower",
        "outputPackPower",
        "outputHomePower",
        "gridInputPower",
        "solarInputPower",
        "packState",
        "socLimit",
        "socStatus",
        "chargeMaxLimit",
        "inverseMaxPower",
        "acMode",
        "inputLimit",
        "outputLimit",
        "socSet",
        "minSoc",
        "smartMode",
        "BatVolt",
        "hyperTmp",
        "is_error",
    ] {
        assert!(p[key].is_i64(), "{key} is not an integer in {p}");
    }
    assert_eq!(p["electricLevel"], 64);
    assert_eq!(p["socSet"], 1000, "socSet in 0.1 %");
    assert_eq!(p["minSoc"], 100, "minSoc in 0.1 %");
    assert_eq!(p["gridInputPower"], 19, "the idle draw");
    let pack = &report["packData"][0];
    for key in [
        "socLevel", "state", "power", "maxTemp", "batcur", "minVol", "maxVol",
    ] {
        assert!(pack[key].is_i64(), "{key} is not an integer in {pack}");
    }
    assert!(pack["sn"].is_string());
    assert_eq!((pack["maxTemp"].as_i64().unwrap() - 2731) / 10, 25);
}

#[test]
fn writes_need_the_sn_and_fit_in_512_bytes() {
    let (_dir, home) = start("sn", &[]);
    let (status, body) = home.write(r#"{"properties":{"acMode":2,"outputLimit":300}}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("sn required"), "{body}");
    let (status, _) =
        home.write(r#"{"sn":"OTHER","properties":{"acMode":2,"outputLimit":300,"smartMode":1}}"#);
    assert_eq!(status, 400);
    let (status, _) = home.write(&format!(
        r#"{{"sn":"{SN}","properties":{{"outputLimit":12.5}}}}"#
    ));
    assert_eq!(status, 400, "a non-integer value is refused");

    let padded = |len: usize| {
        let head = format!(
            r#"{{"sn":"{SN}","properties":{{"acMode":2,"outputLimit":300,"smartMode":1}},"pad":""#
        );
        let pad = "x".repeat(len - head.len() - 2);
        format!("{head}{pad}\"}}")
    };
    let (status, body) = home.write(&padded(513));
    assert_eq!(status, 413, "{body}");
    let state = home.state();
    assert_eq!(
        state["device"]["outputLimit"], 0,
        "nothing refused is applied"
    );
    assert_eq!(counter(&state, "rejected_writes"), 4);
    assert_eq!(counter(&state, "writes"), 0);

    let (status, body) = home.write(&padded(512));
    assert_eq!(status, 200, "{body}");
    let state = home.state();
    assert_eq!(state["device"]["outputLimit"], 300);
    assert_eq!(counter(&state, "writes"), 1);
    assert_eq!(counter(&state, "limit_writes"), 1);
}

#[test]
fn a_negative_output_limit_gives_full_output() {
    let (_dir, home) = start("negative", &["--speed", "20", "--inverse-max-w", "800"]);
    home.command(r#"{"acMode":2,"outputLimit":-100,"inputLimit":0,"smartMode":1}"#);
    let state = home.state();
    assert_eq!(f(&state["target_w"]), -800.0, "{state}");
    let state = wait_state(&home, "at full output", |s| f(&s["battery_w"]) <= -799.0);
    assert_eq!(state["device"]["outputLimit"], -100);
    let report = home.report();
    assert_eq!(report["properties"]["packInputPower"], 800);
    assert_eq!(report["properties"]["outputHomePower"], 800 - 19);
}

#[test]
fn writes_without_smart_mode_1_are_flash_writes() {
    let (_dir, home) = start("flash", &[]);
    home.command(r#"{"acMode":1,"inputLimit":200,"outputLimit":0,"smartMode":1}"#);
    assert_eq!(counter(&home.state(), "flash_writes"), 0);
    home.command(r#"{"acMode":1,"inputLimit":300,"outputLimit":0,"smartMode":0}"#);
    home.command(r#"{"acMode":1,"inputLimit":400,"outputLimit":0}"#);
    let state = home.state();
    assert_eq!(counter(&state, "flash_writes"), 2);
    assert_eq!(counter(&state, "writes"), 3);
    assert_eq!(counter(&state, "direction_changes"), 0, "acMode stayed 1");
    home.command(r#"{"acMode":2,"outputLimit":100,"inputLimit":0,"smartMode":1}"#);
    home.command(r#"{"acMode":1,"inputLimit":100,"outputLimit":0,"smartMode":1}"#);
    let state = home.state();
    assert_eq!(counter(&state, "direction_changes"), 2);
    assert_eq!(counter(&state, "flash_writes"), 2);
    let times: Vec<f64> = state["limit_writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| f(&w["t"]))
        .collect();
    assert_eq!(times.len(), 5);
    assert_eq!(state["limit_writes"][3]["command_w"], -100);
}

#[test]
fn limits_reset_unless_reasserted() {
    let (_dir, home) = start(
        "reset",
        &["--speed", "20", "--limit-reset", "60", "--ramp", "0"],
    );
    home.command(r#"{"acMode":2,"outputLimit":300,"inputLimit":0,"smartMode":1}"#);
    let t0 = f(&home.state()["t"]);
    home.wait_for_t(t0 + 20.0);
    home.command(r#"{"acMode":2,"outputLimit":300,"inputLimit":0,"smartMode":1}"#);
    let t1 = f(&home.state()["t"]);
    assert!(t1 < t0 + 55.0, "the re-assert came too late to test it");
    // Past the first write's reset time, before the re-assert's.
    let state = home.wait_for_t(t0 + 70.0);
    if f(&state["t"]) < t1 + 59.0 {
        assert_eq!(state["device"]["outputLimit"], 300, "re-asserted: {state}");
        assert_eq!(counter(&state, "limit_resets"), 0);
    }
    let state = home.wait_for_t(t1 + 61.0);
    assert_eq!(state["device"]["outputLimit"], 0, "{state}");
    assert_eq!(counter(&state, "limit_resets"), 1);
    let state = wait_state(&home, "stopped", |s| f(&s["battery_w"]) == 0.0);
    assert_eq!(f(&state["target_w"]), 0.0);
}

/// The trace's step lines after the header.
fn trace(path: &std::path::Path) -> (Value, Vec<Value>) {
    let text = std::fs::read_to_string(path).expect("trace");
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"));
    let header = lines.next().expect("header");
    assert!(header["header"].is_object(), "{header}");
    (header["header"].clone(), lines.collect())
}

#[test]
fn a_new_setpoint_ramps_and_standby_delays_it() {
    let dir = TempDir::new("ramp");
    let path = dir.0.join("trace.jsonl");
    let trace_arg = path.to_str().unwrap();
    let home = SimHome::start(
        &dir.0,
        &[
            "--speed",
            "20",
            "--ramp",
            "10",
            "--standby-after",
            "100000",
            "--trace",
            trace_arg,
        ],
    );
    home.command(r#"{"acMode":2,"outputLimit":500,"inputLimit":0,"smartMode":1}"#);
    let t0 = f(&home.state()["t"]);
    home.wait_for_t(t0 + 15.0);
    drop(home);
    let (header, steps) = trace(&path);
    assert_eq!(header["step"], 1.0);
    let i = steps
        .iter()
        .position(|s| s["writes"].is_array())
        .expect("the write in the trace");
    assert_eq!(steps[i]["writes"][0]["outputLimit"], 500);
    let battery = |k: usize| f(&steps[i + k]["battery_w"]);
    assert_eq!(battery(0), -50.0, "500 W in 10 s: 50 W a step");
    assert_eq!(battery(4), -250.0);
    assert_eq!(battery(9), -500.0);
    assert_eq!(battery(12), -500.0);

    // Out of standby the power waits for the wake-up delay.
    let dir = TempDir::new("wake");
    let path = dir.0.join("trace.jsonl");
    let home = SimHome::start(
        &dir.0,
        &[
            "--speed",
            "20",
            "--ramp",
            "0",
            "--standby-after",
            "5",
            "--wake",
            "8",
            "--trace",
            path.to_str().unwrap(),
        ],
    );
    wait_state(&home, "in standby", |s| s["standby"] == true);
    home.command(r#"{"acMode":2,"outputLimit":400,"inputLimit":0,"smartMode":1}"#);
    let t0 = f(&home.state()["t"]);
    home.wait_for_t(t0 + 15.0);
    drop(home);
    let (_, steps) = trace(&path);
    let i = steps
        .iter()
        .position(|s| s["writes"].is_array())
        .expect("the write");
    let written_at = f(&steps[i]["t"]) - 1.0;
    let flowing = steps[i..]
        .iter()
        .find(|s| f(&s["battery_w"]) != 0.0)
        .expect("power flows");
    assert_eq!(f(&flowing["t"]) - written_at, 8.0, "{flowing}");
    assert_eq!(f(&flowing["battery_w"]), -400.0);
}

#[test]
fn soc_stops_at_the_cut_offs() {
    let (_dir, home) = start(
        "soc",
        &[
            "--speed",
            "20",
            "--capacity-wh",
            "10",
            "--soc",
            "12",
            "--min-soc",
            "100",
            "--soc-set",
            "700",
            "--ramp",
            "0",
        ],
    );
    home.command(r#"{"acMode":2,"outputLimit":800,"inputLimit":0,"smartMode":1}"#);
    let state = wait_state(&home, "at the discharge cut-off", |s| s["soc_limit"] == 2);
    assert!(f(&state["soc"]) <= 10.0, "{state}");
    let state = wait_state(&home, "stopped", |s| f(&s["battery_w"]) == 0.0);
    assert_eq!(f(&state["target_w"]), 0.0);
    assert!(f(&state["soc"]) > 5.0, "stopped near minSoc: {state}");
    assert_eq!(home.report()["properties"]["socLimit"], 2);

    home.command(r#"{"acMode":1,"inputLimit":500,"outputLimit":0,"smartMode":1}"#);
    wait_state(&home, "charging", |s| f(&s["battery_w"]) == 500.0);
    let state = wait_state(&home, "at the charge cut-off", |s| s["soc_limit"] == 1);
    assert!(f(&state["soc"]) >= 70.0);
    let state = wait_state(&home, "stopped", |s| f(&s["battery_w"]) == 0.0);
    assert!(f(&state["soc"]) < 75.0, "stopped near socSet: {state}");
    assert_eq!(home.report()["properties"]["socLimit"], 1);
}

/// Telegrams from the DSMR port, split at each `/` header, on a thread.
fn telegrams(addr: &str) -> Receiver<String> {
    let mut stream = TcpStream::connect(addr).expect("DSMR port");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            // A telegram ends after `!CRC\r\n`, or where the next begins
            // when it was cut short.
            loop {
                let next = text.get(1..).and_then(|r| r.find("/ISk5")).map(|i| i + 1);
                let end = text.find('!').map(|b| b + 7).filter(|&e| e <= text.len());
                let cut = match (next, end) {
                    (Some(n), Some(e)) => n.min(e),
                    (Some(n), None) => n,
                    (None, Some(e)) => e,
                    (None, None) => break,
                };
                let telegram: String = text.drain(..cut).collect();
                if tx.send(telegram).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The first telegram measured at sim time `t` or later.
fn telegram_from(telegrams: &Receiver<String>, t: f64) -> String {
    loop {
        let telegram = telegrams
            .recv_timeout(Duration::from_secs(10))
            .expect("a telegram");
        if telegram_time(&telegram).expect("a timestamp") >= t {
            return telegram;
        }
    }
}

#[test]
fn every_meter_shows_the_grid_as_it_was_lag_seconds_ago() {
    let lag = 10.0;
    let (_dir, home) = start(
        "lag",
        &[
            "--speed",
            "5",
            "--meter-lag",
            "10",
            "--meter-period",
            "1",
            "--load",
            "300",
        ],
    );
    let token = home.ports.token.clone();
    let cert = home.ports.cert.clone().expect("certificate");
    let auth = format!("Bearer {token}");
    let dsmr = telegrams(&home.ports.dsmr);
    type Reader<'a> = Box<dyn Fn() -> f64 + 'a>;
    let json_power = |status: u16, body: String, key: &str| -> f64 {
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("meter JSON");
        f(&v[key])
    };
    let readers: Vec<(&str, Reader)> = vec![
        (
            "homewizard",
            Box::new(|| {
                let (s, b) = http_get(&home.ports.homewizard, "/api/v1/data", &[]).unwrap();
                json_power(s, b, "active_power_w")
            }),
        ),
        (
            "homewizard v2",
            Box::new(|| {
                let headers = [("Authorization", auth.as_str()), ("X-Api-Version", "2")];
                let (s, b) = https_get(
                    &home.ports.homewizard_v2,
                    "/api/measurement",
                    &headers,
                    &cert,
                )
                .unwrap();
                json_power(s, b, "power_w")
            }),
        ),
        (
            "zendure p1",
            Box::new(|| {
                let (s, b) = http_get(&home.ports.zendure_p1, "/properties/report", &[]).unwrap();
                json_power(s, b, "total_power")
            }),
        ),
        (
            "dsmr",
            Box::new(|| {
                // A telegram sent from now on: measured `lag` ago.
                let now = f(&home.state()["t"]);
                telegram_power(&telegram_from(&dsmr, now - lag)).expect("a valid telegram")
            }),
        ),
    ];
    let mut load = 300.0;
    for (kind, read) in &readers {
        let old_grid = load + 19.0;
        let before = read();
        assert!(
            (before - old_grid).abs() <= 1.0,
            "{kind}: {before} before the change, expected {old_grid}"
        );
        load = if load == 300.0 { 2300.0 } else { 300.0 };
        let new_grid = load + 19.0;
        let changed_at = f(&home.control("/sim/override", &format!(r#"{{"load_w":{load}}}"#))["t"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let seen_at = loop {
            let value = read();
            let t = f(&home.state()["t"]);
            if (value - new_grid).abs() <= 1.0 {
                break t;
            }
            assert!(
                (value - old_grid).abs() <= 1.0,
                "{kind}: {value} is neither value"
            );
            assert!(Instant::now() < deadline, "{kind} never showed {new_grid}");
            std::thread::sleep(Duration::from_millis(5));
        };
        let delay = seen_at - changed_at;
        assert!(
            delay > lag && delay <= lag + 8.0,
            "{kind}: the change showed after {delay} s, lag {lag}"
        );
    }
    // Timestamps are the sample's: `lag` (up to a period) old.
    let (_, body) = http_get(&home.ports.zendure_p1, "/properties/report", &[]).unwrap();
    let now = f(&home.state()["unix"]);
    let p1: Value = serde_json::from_str(&body).unwrap();
    let age = now - f(&p1["timestamp"]);
    assert!(
        age >= lag - 1.0 && age <= lag + 3.0,
        "the P1 sample is {age} s old"
    );
}

#[test]
fn homewizard_v2_needs_its_token_and_api_version() {
    let dir = TempDir::new("hw2");
    let token_file = dir.0.join("token");
    let token = "0123456789abcdef0123456789abcdef";
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let home = SimHome::start(&dir.0, &["--token-file", token_file.to_str().unwrap()]);
    assert_eq!(home.ports.token, token);
    let cert = home.ports.cert.clone().unwrap();
    let addr = &home.ports.homewizard_v2;
    let good = format!("Bearer {token}");
    let (status, _) =
        https_get(addr, "/api/measurement", &[("X-Api-Version", "2")], &cert).unwrap();
    assert_eq!(status, 401);
    let wrong = [
        ("Authorization", "Bearer 00000000000000000000000000000000"),
        ("X-Api-Version", "2"),
    ];
    assert_eq!(
        https_get(addr, "/api/measurement", &wrong, &cert)
            .unwrap()
            .0,
        401
    );
    let no_version = [("Authorization", good.as_str())];
    assert_eq!(
        https_get(addr, "/api/measurement", &no_version, &cert)
            .unwrap()
            .0,
        400
    );
    let ok = [("Authorization", good.as_str()), ("X-Api-Version", "2")];
    let (status, body) = https_get(addr, "/api/measurement", &ok, &cert).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["power_w"], 319);
    assert!(v["energy_import_kwh"].is_number());
    // Plain HTTP gets no answer on the TLS port.
    assert!(
        http_request(
            addr,
            "GET",
            "/api/measurement",
            &ok,
            b"",
            Duration::from_secs(2)
        )
        .is_err()
    );
}

#[test]
fn meter_faults_silence_and_spoil_every_kind() {
    let (_dir, home) = start("meter-faults", &["--speed", "20"]);
    let dsmr = telegrams(&home.ports.dsmr);
    // A telegram made after the fault set at `state` (no lag: measured then).
    let after = |state: &Value| telegram_from(&dsmr, f(&state["t"]) + 1.0);
    assert_eq!(telegram_power(&after(&home.state())), Ok(319.0));
    let short = Duration::from_millis(1500);
    let get = |addr: &str, path: &str| http_request(addr, "GET", path, &[], b"", short);

    let state = home.control("/sim/fault", r#"{"meter":"silent"}"#);
    assert!(
        get(&home.ports.homewizard, "/api/v1/data").is_err(),
        "a silent meter answers"
    );
    assert!(get(&home.ports.zendure_p1, "/properties/report").is_err());
    while let Ok(telegram) = dsmr.recv_timeout(short) {
        assert!(
            telegram_time(&telegram).expect("a timestamp") <= f(&state["t"]),
            "a silent meter sends telegrams"
        );
    }

    let state = home.control("/sim/fault", r#"{"meter":"garbage"}"#);
    let (status, body) = get(&home.ports.homewizard, "/api/v1/data").unwrap();
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    let (_, body) = get(&home.ports.zendure_p1, "/properties/report").unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    let spoilt = telegram_power(&after(&state)).expect_err("a garbage telegram");
    assert!(spoilt.starts_with("CRC"), "{spoilt}");

    let state = home.control("/sim/fault", r#"{"meter":"error"}"#);
    assert_eq!(get(&home.ports.homewizard, "/api/v1/data").unwrap().0, 500);
    assert_eq!(
        get(&home.ports.zendure_p1, "/properties/report").unwrap().0,
        500
    );
    assert_eq!(
        telegram_power(&after(&state)),
        Err("no CRC line".to_string())
    );

    let state = home.control("/sim/fault", r#"{"meter":"none"}"#);
    assert_eq!(get(&home.ports.homewizard, "/api/v1/data").unwrap().0, 200);
    assert_eq!(telegram_power(&after(&state)), Ok(319.0));
}

#[test]
fn device_faults_refuse_hang_and_spoil() {
    let (_dir, home) = start("device-faults", &["--speed", "20"]);
    let addr = home.ports.device.clone();
    home.control("/sim/fault", r#"{"device":"refuse"}"#);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(&addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ => {
                assert!(Instant::now() < deadline, "the device port stays open");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    home.control("/sim/fault", r#"{"device":"none"}"#);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the device never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(home.report()["sn"], SN);

    home.control("/sim/fault", r#"{"device":"hang"}"#);
    let hung = http_request(
        &addr,
        "GET",
        "/properties/report",
        &[],
        b"",
        Duration::from_millis(1500),
    );
    assert!(hung.is_err(), "a hung device answered: {hung:?}");
    home.control("/sim/fault", r#"{"device":"garbage"}"#);
    let (status, body) = http_get(&addr, "/properties/report", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    home.control("/sim/fault", r#"{"device":"ignore-writes"}"#);
    home.command(r#"{"acMode":2,"outputLimit":300,"inputLimit":0,"smartMode":1}"#);
    let state = home.state();
    assert_eq!(
        state["device"]["outputLimit"], 0,
        "an ignored write was applied"
    );
    assert_eq!(counter(&state, "ignored_writes"), 1);

    home.control("/sim/fault", r#"{"device":"none"}"#);
    home.command(r#"{"acMode":2,"outputLimit":300,"inputLimit":0,"smartMode":1}"#);
    assert_eq!(home.state()["device"]["outputLimit"], 300);
    let state = home.control("/sim/reset-limits", "");
    assert_eq!(state["device"]["outputLimit"], 0);
    assert_eq!(counter(&state, "limit_resets"), 1);
}

#[test]
fn overrides_soc_and_the_end_of_a_run() {
    let dir = TempDir::new("finish");
    let profile = dir.0.join("profile.csv");
    let schedule_file = dir.0.join("schedule.json");
    std::fs::write(
        &profile,
        "# test\nseconds,load_w,pv_w\n0,100,0\n200,300,1000\n",
    )
    .unwrap();
    let home = SimHome::start(
        &dir.0,
        &[
            "--profile",
            profile.to_str().unwrap(),
            "--start",
            "00:00:40",
            "--duration",
            "60",
            "--speed",
            "20",
            "--schedule",
            "0=netzero,00:01:30=-300",
            "--schedule-file",
            schedule_file.to_str().unwrap(),
        ],
    );
    let state = home.state();
    assert!(f(&state["t"]) >= 40.0);
    let published = || std::fs::read_to_string(&schedule_file).expect("the schedule file");
    assert_eq!(published(), r#"{"************":"netzero"}"#);
    let line = home.events.wait_for("finished ");
    assert_eq!(
        published(),
        r#"{"************":-300}"#,
        "the value from 90 s"
    );
    let end: Value = serde_json::from_str(&line["finished ".len()..]).unwrap();
    assert_eq!(f(&end["t"]), 100.0);
    assert_eq!(f(&end["load_w"]), 200.0, "linear between the rows");
    assert_eq!(f(&end["pv_w"]), 500.0);
    assert_eq!(f(&end["grid_w"]), 200.0 - 500.0 + 19.0);

    let (_dir, home) = start("override", &["--load", "500", "--speed", "5"]);
    let state = home.control("/sim/override", r#"{"load_w": 1000, "pv_w": 200}"#);
    assert_eq!(state["overrides"]["load_w"], 1000.0);
    let state = wait_state(&home, "overridden", |s| f(&s["load_w"]) == 1000.0);
    assert_eq!(f(&state["pv_w"]), 200.0);
    home.control("/sim/override", r#"{"load_w": null}"#);
    wait_state(&home, "back to the profile", |s| f(&s["load_w"]) == 500.0);
    // The meter's lag changes at run time.
    let state = home.control("/sim/meter", r#"{"lag": 100000}"#);
    assert_eq!(f(&state["meter_lag"]), 100000.0);
    let shown = f(&state["meter"]["grid_w"]);
    home.control("/sim/override", r#"{"load_w": 2000}"#);
    let t = f(&home.state()["t"]);
    let state = home.wait_for_t(t + 3.0);
    assert_eq!(
        f(&state["meter"]["grid_w"]),
        shown,
        "a long lag hides the change"
    );
    home.control("/sim/meter", r#"{"lag": 0}"#);
    wait_state(&home, "the meter up to date", |s| {
        f(&s["meter"]["grid_w"]) == 2000.0 - 200.0 + 19.0
    });
    home.control("/sim/override", r#"{"load_w": null}"#);

    let state = home.control("/sim/soc", r#"{"percent": 80}"#);
    assert!((f(&state["soc"]) - 80.0).abs() < 0.1);
    let (status, _) = http_request(
        &home.ports.control,
        "POST",
        "/sim/fault",
        &[],
        br#"{"meter":"bogus"}"#,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 400);
}

/// A trace the metrics must score exactly: constant load with one step,
/// commands that flip, a flash write, writes too close together.
#[test]
fn metrics_score_a_known_trace() {
    let dir = TempDir::new("metrics");
    let path = dir.0.join("trace.jsonl");
    let discharge =
        |w: i64| format!(r#"{{"acMode":2,"outputLimit":{w},"inputLimit":0,"smartMode":1}}"#);
    let charge =
        |w: i64| format!(r#"{{"acMode":1,"inputLimit":{w},"outputLimit":0,"smartMode":1}}"#);
    // (t, battery W from then on, the write)
    let commands: Vec<(u32, f64, String)> = vec![
        (100, -500.0, discharge(500)),
        (200, -300.0, discharge(300)),
        // A repeat of the command in force: no change, not paced.
        (202, -300.0, discharge(300)),
        (300, -600.0, discharge(600)),
        (
            305,
            -500.0,
            r#"{"acMode":2,"outputLimit":500,"inputLimit":0}"#.to_string(),
        ),
        (400, 150.0, charge(150)),
        (610, -800.0, discharge(800)),
        (620, 150.0, charge(150)),
        (700, -800.0, discharge(800)),
        (760, 150.0, charge(150)),
        (
            850,
            0.0,
            r#"{"inputLimit":0,"outputLimit":0,"smartMode":1}"#.to_string(),
        ),
        (855, 150.0, charge(150)),
    ];
    let mut text = String::from(
        r#"{"header":{"start":0,"step":1.0,"speed":1,"capacity_wh":1000,"soc":50,"soc_set":1000,"min_soc":100,"charge_max_w":1000,"inverse_max_w":800,"idle_w":0,"ramp":3,"wake":5,"standby_after":30,"meter_lag":20,"meter_period":1,"device":{"acMode":1,"inputLimit":0,"outputLimit":0,"smartMode":1,"socSet":1000,"minSoc":100}}}"#,
    );
    text.push('\n');
    let (mut import, mut export, mut ideal_import) = (0.0, 0.0, 0.0);
    let mut battery = 0.0;
    let mut wrong_way = 0;
    for t in 1..=1000u32 {
        let load = if t < 600 { 500.0 } else { 1500.0 };
        let mut line = serde_json::json!({"t": t, "load_w": load, "pv_w": 0, "target_w": 0,
                                          "meter_w": 0, "soc": 50});
        if let Some((_, w, body)) = commands.iter().find(|c| c.0 == t) {
            battery = *w;
            line["writes"] = serde_json::json!([serde_json::from_str::<Value>(body).unwrap()]);
        }
        let grid = load + battery;
        if (battery > 1.0 && grid > 100.0) || (battery < -1.0 && grid < -100.0) {
            wrong_way += 1;
        }
        line["battery_w"] = battery.into();
        line["grid_w"] = grid.into();
        if grid > 0.0 {
            import += grid / 3600.0;
        } else {
            export -= grid / 3600.0;
        }
        ideal_import += (load - 800.0f64).max(0.0) / 3600.0;
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let metrics = |args: &[&str]| -> Value {
        let out = std::process::Command::new(testenv::bin("zcell-test-zendure-metrics"))
            .args(args)
            .arg("--trace")
            .arg(&path)
            .output()
            .expect("metrics run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("metrics JSON")
    };
    let m = metrics(&[]);
    let kwh = |wh: f64| wh.round() / 1000.0;
    assert_eq!(f(&m["actual"]["import_kwh"]), kwh(import), "{m}");
    assert_eq!(f(&m["actual"]["export_kwh"]), kwh(export));
    assert_eq!(f(&m["ideal"]["import_kwh"]), kwh(ideal_import));
    assert_eq!(f(&m["ideal"]["export_kwh"]), 0.0);
    assert_eq!(f(&m["excess_import_kwh"]), kwh(import - ideal_import));
    assert_eq!(m["writes"], 12);
    assert_eq!(m["limit_writes"], 12);
    assert_eq!(m["flash_writes"], 1);
    assert_eq!(m["direction_changes"], 6, "the idle shape has no acMode");
    // 200, 300, 305 (no step), 760, 850 and 855; not 620, 10 s after the
    // load step.
    assert_eq!(m["flips"], 6, "{m}");
    assert_eq!(m["max_flips_in_window"], 3);
    assert_eq!(m["load_pv_steps"], 1);
    assert_eq!(
        f(&m["max_overshoot_w"]),
        150.0,
        "charging 150 W while importing"
    );
    assert_eq!(m["max_limit_writes_per_interval"], 2);
    assert_eq!(
        m["limit_writes_closer_than_interval"], 2,
        "305 after 300, 855 after 0 W"
    );
    assert_eq!(m["nonzero_writes_closer_than_interval"], 1, "305 after 300");
    assert_eq!(
        f(&m["wrong_way_s"]),
        f64::from(wrong_way),
        "charging 150 W while importing"
    );
    assert!(wrong_way > 0);
    // 760, 850 (0 W), 855: a reversal, but 95 s apart, not within 30 s.
    assert_eq!(m["reversals"], 0);
    assert_eq!(metrics(&["--reversal-window", "100"])["reversals"], 1);
    // The oracles: discharge 500 W at once, 800 W when the load steps at
    // 600 s, seen at once or 20 s late; the 3 s ramp costs the instant one
    // 0.4 Wh, the late one 20 s of 300 W more (~2 Wh).
    // The polled one reads the meter (refreshed every 1 s) every 2 s: it
    // sees the step 1 s after the lagged one, too little to show here; read
    // every 30 s it sees it 11 s later (~0.9 Wh more).
    let polled = metrics(&["--interval", "30"]);
    for (o, lag, excess) in [
        (&m["oracle"]["instant"], 0.0, 0.0),
        (&m["oracle"]["lagged"], 20.0, 0.002),
        (&m["oracle"]["polled"], 20.0, 0.002),
        (&polled["oracle"]["polled"], 20.0, 0.003),
    ] {
        assert_eq!(f(&o["lag_s"]), lag, "{o}");
        assert_eq!(f(&o["excess_kwh"]), excess, "{o}");
        assert_eq!(o["writes"], 2, "{o}");
        assert_eq!(o["reversals"], 0);
        assert_eq!(f(&o["wrong_way_s"]), 0.0);
    }
    assert_eq!(f(&m["oracle"]["polled"]["period_s"]), 1.0);
    assert_eq!(f(&m["oracle"]["polled"]["interval_s"]), 2.0);
    assert_eq!(f(&polled["oracle"]["polled"]["interval_s"]), 30.0);
}

#[test]
fn the_baseline_law_settles_on_every_meter_kind() {
    for (kind, port) in [
        ("homewizard", "homewizard"),
        ("homewizard-v2", "homewizard_v2"),
        ("zendure-p1", "zendure_p1"),
        ("dsmr-tcp", "dsmr"),
    ] {
        let (dir, home) = start(
            "baseline",
            &["--speed", "20", "--load", "500", "--ramp", "0"],
        );
        let ports = &home.ports;
        let addr = match port {
            "homewizard" => &ports.homewizard,
            "homewizard_v2" => &ports.homewizard_v2,
            "zendure_p1" => &ports.zendure_p1,
            _ => &ports.dsmr,
        };
        let cert = ports.cert.clone().unwrap();
        let baseline = testenv::zendure::Program::start(
            "zcell-test-zendure-baseline",
            &[
                "--device",
                &ports.device,
                "--meter-kind",
                kind,
                "--meter",
                addr,
                "--token",
                &ports.token,
                "--cert",
                cert.to_str().unwrap(),
                "--interval",
                "0.25",
            ],
            &dir.0.join("baseline.log"),
        );
        baseline.events.wait_for("ready");
        let line = baseline.events.wait_for("write ");
        assert!(line.ends_with(&format!(r#""sn":"{SN}"}}"#)), "{line}");
        let state = wait_state(&home, "settled", |s| s["device"]["outputLimit"] == 519);
        assert_eq!(state["device"]["acMode"], 2, "{kind}");
        assert_eq!(counter(&state, "flash_writes"), 0);
        assert_eq!(counter(&state, "rejected_writes"), 0);
        let state = wait_state(&home, "balanced", |s| f(&s["grid_w"]).abs() < 1.0);
        assert_eq!(f(&state["battery_w"]), -519.0, "{kind}");
    }
}
