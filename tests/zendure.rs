//! `zcell-sched zendure ...` end to end against the simulated home
//! (`zcell-test-zendure-home`): the device on its local API, a house, and
//! the P1 meters, on a clock running `SPEED` times real time. The
//! controller runs in real time, so its durations are the sim's divided by
//! `SPEED`. Readiness comes from the programs' own lines: the home's
//! `ready`, the controller's log lines on stderr.
//!
//! The simulator is an example: `cargo test` builds it; `cargo test --test
//! zendure` alone does not (run `cargo build --examples` first).
#![cfg(feature = "zendure")]

#[cfg(feature = "serve")]
mod serve_env;
mod testenv;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testenv::Events;
use testenv::zendure::{SimHome, TempDir};

/// Sim seconds per real second.
const SPEED: f64 = 10.0;

/// Real seconds for `sim` sim seconds.
fn real(sim: f64) -> f64 {
    sim / SPEED
}

fn zcell_sched() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zcell-sched"))
}

/// A simulated home and a folder for one test.
struct Rig {
    dir: TempDir,
    home: SimHome,
}

fn rig(name: &str, home_args: &[&str]) -> Rig {
    let dir = TempDir::new(&format!("zendure-{name}"));
    let speed = SPEED.to_string();
    let mut args = vec!["--speed", speed.as_str()];
    args.extend_from_slice(home_args);
    let home = SimHome::start(&dir.0.join("home"), &args);
    Rig { dir, home }
}

impl Rig {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// The meter object for `kind`, pointing at the home.
    fn meter(&self, kind: &str) -> Value {
        let p = &self.home.ports;
        match kind {
            "homewizard" => json!({"kind": kind, "address": p.homewizard}),
            "zendure-p1" => json!({"kind": kind, "address": p.zendure_p1}),
            "dsmr-tcp" => json!({"kind": kind, "address": p.dsmr}),
            "homewizard-v2" => {
                let token = self.path("token");
                std::fs::write(&token, &p.token).unwrap();
                json!({"kind": kind, "address": p.homewizard_v2, "token_file": token,
                       "ca_file": p.cert.as_ref().expect("the home wrote its certificate")})
            }
            other => panic!("no meter kind {other}"),
        }
    }

    /// Writes a config file: the home's device and meter, `schedule` (a
    /// path or URL), sim-scaled timings, and `extra` keys over them.
    fn config(&self, meter: &str, schedule: &str, extra: Value) -> PathBuf {
        let mut zendure = json!({
            "device": self.home.ports.device,
            "meter": self.meter(meter),
            "schedule": schedule,
            "time_zone": "UTC",
            "max_charge_w": 800,
            "max_discharge_w": 800,
            "min_soc": 5,
            "max_soc": 100,
            "status_file": self.path("run/status.json"),
            "lock_file": self.path("run/zendure.lock"),
            "state_dir": self.path("state"),
            "interval": real(2.0),
            "schedule_refresh": 0.5,
            "meter_timeout": real(30.0),
            "min_write_interval": real(10.0),
            "min_direction_change": real(60.0),
            "reassert": real(60.0),
            "http_timeout": 0.5,
        });
        for (k, v) in extra.as_object().expect("extra is an object") {
            zendure[k] = v.clone();
        }
        let path = self.path("config.json");
        std::fs::write(&path, json!({"zendure": zendure}).to_string()).unwrap();
        path
    }

    fn schedule_file(&self, schedule: Value) -> String {
        let path = self.path("schedule.json");
        std::fs::write(&path, schedule.to_string()).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn state(&self) -> Value {
        self.home.state()
    }

    /// Polls the home's state until `done` holds, for at most `limit` real
    /// seconds.
    fn wait_state(&self, what: &str, limit: f64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs_f64(limit);
        loop {
            let state = self.state();
            if done(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "never {what}: {state}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn device(state: &Value, key: &str) -> i64 {
    state["device"][key]
        .as_i64()
        .unwrap_or_else(|| panic!("no device.{key} in {state}"))
}

fn counter(state: &Value, key: &str) -> i64 {
    state["counters"][key]
        .as_i64()
        .unwrap_or_else(|| panic!("no counters.{key} in {state}"))
}

fn grid(state: &Value) -> f64 {
    state["grid_w"].as_f64().expect("grid_w")
}

/// The commanded battery power (W, + charge) the device holds.
fn commanded(state: &Value) -> i64 {
    match device(state, "acMode") {
        1 => device(state, "inputLimit"),
        2 => -device(state, "outputLimit"),
        _ => 0,
    }
}

/// A running controller; killed on drop unless it was stopped.
struct Controller {
    child: Option<Child>,
    log: Events,
}

impl Controller {
    fn start(config: &Path) -> Controller {
        let mut child = Command::new(zcell_sched())
            .args(["zendure", "run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zcell-sched zendure run");
        let log = Events::from_reader(child.stderr.take().unwrap(), "the controller");
        log.wait_for_text("started:");
        Controller {
            child: Some(child),
            log,
        }
    }

    fn wait_log(&self, text: &str) -> String {
        self.log.wait_for_text(text)
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the controller ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(zcell_sched())
        .args(args)
        .output()
        .expect("run zcell-sched")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn fixed_watts_charge_then_discharge_with_full_commands() {
    let rig = rig("fixed", &["--load", "300"]);
    let schedule = rig.schedule_file(json!({"********0000": 400}));
    let config = rig.config("homewizard", &schedule, json!({}));
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote charge 400 W");
    let state = rig.wait_state("charging 400 W", 10.0, |s| commanded(s) == 400);
    assert_eq!(device(&state, "acMode"), 1);
    // A value beyond the limits is clamped.
    rig.schedule_file(json!({"********0000": -5000}));
    ctl.wait_log("wrote idle (0 W)");
    // The direction waits min_direction_change, idle meanwhile.
    ctl.wait_log("wrote discharge 800 W");
    let state = rig.wait_state("discharging 800 W", 10.0, |s| commanded(s) == -800);
    assert_eq!(counter(&state, "flash_writes"), 0, "{state}");
    assert_eq!(counter(&state, "rejected_writes"), 0, "{state}");
    let flips: Vec<&Value> = state["limit_writes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["command_w"].as_i64().unwrap() != 0)
        .collect();
    let charge_end = flips
        .iter()
        .filter(|w| w["command_w"].as_i64().unwrap() > 0)
        .map(|w| w["t"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let discharge_start = flips
        .iter()
        .filter(|w| w["command_w"].as_i64().unwrap() < 0)
        .map(|w| w["t"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert!(
        discharge_start - charge_end >= 60.0 - 2.0,
        "direction changed after {} sim s",
        discharge_start - charge_end
    );
    assert_eq!(ctl.terminate().code(), Some(0));
    let state = rig.wait_state("idle after SIGTERM", 5.0, |s| commanded(s) == 0);
    assert_eq!(device(&state, "outputLimit"), 0);
    // The status file's last word is the stop, not the last running command.
    let status: Value =
        serde_json::from_slice(&std::fs::read(rig.path("run/status.json")).unwrap()).unwrap();
    assert_eq!(status["stopped"], true, "{status}");
    assert_eq!(status["last_command"]["setpoint_w"], 0, "{status}");
    assert_eq!(status["target"]["setpoint_w"], 0, "{status}");
}

/// The log goes to a pipe here, as to a file or the journal: no colour
/// escape codes in it.
#[test]
fn the_log_has_no_colour_when_stderr_is_not_a_terminal() {
    let rig = rig("colour", &["--load", "300"]);
    let schedule = rig.schedule_file(json!({"********0000": 400}));
    let config = rig.config("homewizard", &schedule, json!({}));
    let ctl = Controller::start(&config);
    for line in [ctl.wait_log("control:"), ctl.wait_log("wrote charge 400 W")] {
        assert!(!line.contains('\x1b'), "colour codes in {line:?}");
        assert!(line.contains("INFO"), "{line:?}");
    }
    assert_eq!(ctl.terminate().code(), Some(0));
}

/// With the server down the reports queue on disk; a full queue drops the
/// oldest, and the status file and `zendure status` count them.
#[test]
fn the_status_counts_reports_dropped_while_the_server_is_down() {
    let rig = rig("dropped", &["--load", "300"]);
    let schedule = rig.schedule_file(json!({"********0000": 400}));
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = rig.config(
        "homewizard",
        &schedule,
        json!({
            "status_url": format!("http://{down}/api/status"),
            "data_url": format!("http://{down}/data/api/data_api.php"),
            "report_queue_max": 10,
        }),
    );
    let ctl = Controller::start(&config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let reports = loop {
        let status: Value = std::fs::read(rig.path("run/status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let reports = status["reports"].clone();
        if reports["dropped"].as_u64().is_some_and(|n| n > 0) {
            break reports;
        }
        assert!(
            Instant::now() < deadline,
            "nothing counted as dropped: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reports["queued"], 10, "{reports}");
    assert_eq!(reports["delivered"], 0, "{reports}");
    assert!(reports["last_error"].is_string(), "{reports}");
    let c = config.to_string_lossy();
    let text = stdout(&run(&["zendure", "status", "--config", &c]));
    assert!(
        text.contains("reports       0 delivered, 10 queued, "),
        "{text}"
    );
    let out = run(&["zendure", "status", "--config", &c, "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counted = &doc["controller"]["status"]["reports"];
    assert!(counted["dropped"].as_u64().unwrap() > 0, "{doc}");
    assert_eq!(ctl.terminate().code(), Some(0));
}

/// NetZero on a lagged meter: the grid settles near 0 without flips.
fn net_zero(name: &str, meter: &str, lag: f64) {
    let lag_arg = lag.to_string();
    let rig = rig(name, &["--load", "450", "--meter-lag", &lag_arg]);
    let schedule = rig.schedule_file(json!({"********0000": "netzero"}));
    let config = rig.config(meter, &schedule, json!({"meter_lag": real(lag)}));
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote discharge");
    let t0 = rig.state()["t"].as_f64().unwrap();
    // Settle, then a load step, then settle again.
    let settled = rig.wait_state("settled", 30.0, |s| {
        s["t"].as_f64().unwrap() > t0 + 60.0 + lag && grid(s).abs() <= 60.0
    });
    rig.home.control("/sim/override", r#"{"load_w": 200}"#);
    let t1 = settled["t"].as_f64().unwrap();
    let end = rig.wait_state("settled after the step", 40.0, |s| {
        s["t"].as_f64().unwrap() > t1 + 120.0 + 2.0 * lag
    });
    let g = grid(&end);
    assert!(g.abs() <= 60.0, "{meter} lag {lag}: grid {g} W: {end}");
    let writes: Vec<(f64, i64)> = end["limit_writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["t"].as_f64().unwrap(), w["command_w"].as_i64().unwrap()))
        .collect();
    // Flips: successive changes of 50 W or more in opposite directions,
    // counted from 60 s after the step.
    let changes: Vec<i64> = writes
        .windows(2)
        .filter(|w| w[1].0 >= t1 + 60.0)
        .map(|w| w[1].1 - w[0].1)
        .filter(|d| d.abs() >= 50)
        .collect();
    let flips = changes
        .windows(2)
        .filter(|w| w[0].signum() != w[1].signum())
        .count();
    assert_eq!(flips, 0, "{meter} lag {lag}: {writes:?}");
    assert_eq!(counter(&end, "flash_writes"), 0);
    // No two limit writes within min_write_interval, except 0 W ones.
    let nonzero: Vec<f64> = writes.iter().filter(|w| w.1 != 0).map(|w| w.0).collect();
    for w in nonzero.windows(2) {
        assert!(w[1] - w[0] >= 10.0 - 1.0, "{writes:?}");
    }
}

#[test]
fn net_zero_lag_0_homewizard() {
    net_zero("nz0", "homewizard", 0.0);
}

#[test]
fn net_zero_lag_5_dsmr() {
    net_zero("nz5", "dsmr-tcp", 5.0);
}

#[test]
fn net_zero_lag_20_zendure_p1() {
    net_zero("nz20", "zendure-p1", 20.0);
}

#[test]
fn net_zero_lag_20_estimated_homewizard_v2() {
    let rig = rig("nz20e", &["--load", "450", "--meter-lag", "20"]);
    let schedule = rig.schedule_file(json!({"********0000": "netzero"}));
    let config = rig.config("homewizard-v2", &schedule, json!({}));
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote discharge");
    let t0 = rig.state()["t"].as_f64().unwrap();
    let end = rig.wait_state("settled", 40.0, |s| s["t"].as_f64().unwrap() > t0 + 200.0);
    assert!(grid(&end).abs() <= 60.0, "{end}");
}

#[test]
fn net_zero_plus_charges_from_export_and_never_discharges() {
    let rig = rig("nzplus", &["--load", "300", "--pv", "800"]);
    let schedule = rig.schedule_file(json!({"********0000": "netzero+"}));
    let config = rig.config("homewizard", &schedule, json!({"meter_lag": 0}));
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote charge");
    let state = rig.wait_state("charging the export", 20.0, |s| grid(s).abs() <= 60.0);
    assert!(commanded(&state) > 400, "{state}");
    // Import now: stop charging, do not discharge.
    rig.home.control("/sim/override", r#"{"pv_w": 0}"#);
    ctl.wait_log("wrote idle (0 W)");
    let t = rig.state()["t"].as_f64().unwrap();
    let state = rig.wait_state("a while importing", 20.0, |s| {
        s["t"].as_f64().unwrap() > t + 60.0
    });
    assert_eq!(commanded(&state), 0, "{state}");
    assert!(grid(&state) > 200.0, "{state}");
}

#[test]
fn soc_limits_stop_discharge_and_charge() {
    // A tiny battery so SoC moves in seconds.
    let rig = rig("soc", &["--capacity-wh", "100", "--soc", "23"]);
    let schedule = rig.schedule_file(json!({"********0000": -800}));
    let config = rig.config(
        "homewizard",
        &schedule,
        json!({"min_soc": 20, "max_soc": 80}),
    );
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote discharge 800 W");
    ctl.wait_log("below min_soc");
    let state = rig.wait_state("stopped at min_soc", 5.0, |s| commanded(s) == 0);
    assert!(state["soc"].as_f64().unwrap() >= 18.0, "{state}");
    drop(ctl);
    rig.home.control("/sim/soc", r#"{"percent": 76}"#);
    rig.schedule_file(json!({"********0000": 800}));
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote charge 800 W");
    ctl.wait_log("above max_soc");
    let state = rig.wait_state("stopped at max_soc", 5.0, |s| commanded(s) == 0);
    assert!(state["soc"].as_f64().unwrap() <= 82.0, "{state}");
    // The device's own cut-offs were left alone.
    assert_eq!(device(&state, "socSet"), 1000);
    assert_eq!(device(&state, "minSoc"), 100);
}

#[test]
fn meter_loss_fails_safe_and_resumes() {
    let rig = rig("meterloss", &["--load", "400"]);
    let schedule = rig.schedule_file(json!({"********0000": "netzero"}));
    let config = rig.config("homewizard", &schedule, json!({"meter_lag": 0}));
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote discharge");
    rig.home.control("/sim/fault", r#"{"meter": "silent"}"#);
    let lost = Instant::now();
    ctl.wait_log("meter silent for meter_timeout");
    ctl.wait_log("wrote idle (0 W)");
    // Within meter_timeout (3 s real) plus an HTTP timeout and a cycle.
    assert!(lost.elapsed() <= Duration::from_secs_f64(real(30.0) + 0.5 + 1.0));
    rig.wait_state("idle without a meter", 5.0, |s| commanded(s) == 0);
    rig.home.control("/sim/fault", r#"{"meter": "none"}"#);
    ctl.wait_log("meter reads again");
    ctl.wait_log("wrote discharge");
    // Garbage is no reading either.
    rig.home.control("/sim/fault", r#"{"meter": "garbage"}"#);
    ctl.wait_log("meter silent for meter_timeout");
}

#[test]
fn device_loss_is_survived_and_resets_are_reasserted() {
    let rig = rig("deviceloss", &["--load", "300"]);
    let schedule = rig.schedule_file(json!({"********0000": 350}));
    let config = rig.config("homewizard", &schedule, json!({}));
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote charge 350 W");
    rig.home.control("/sim/fault", r#"{"device": "refuse"}"#);
    ctl.wait_log("device: ");
    wait_status(&rig, "the device error shown", |doc| {
        doc["device"]["error"].is_string()
    });
    rig.home.control("/sim/fault", r#"{"device": "garbage"}"#);
    rig.home.control("/sim/fault", r#"{"device": "none"}"#);
    ctl.wait_log("device answers again");
    // The device dropped its limits: seen on the next report, told again.
    rig.home.control("/sim/reset-limits", "{}");
    rig.wait_state("re-asserted", 10.0, |s| {
        commanded(s) == 350 && counter(s, "limit_resets") >= 1
    });
}

/// Serves `body` at any path until `stop` is set.
fn serve(body: String, stop: Arc<AtomicBool>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/schedule.json", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut socket, _)) => {
                    socket.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf);
                    let _ = write!(
                        socket,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (url, handle)
}

#[test]
fn schedule_url_down_keeps_the_last_good_copy() {
    let rig = rig("url", &["--load", "300"]);
    let stop = Arc::new(AtomicBool::new(false));
    // The reference API's GET response form.
    let body = json!({"success": true, "entries": [{"key": "********0000", "value": 275}],
                      "resolved": [], "date": "20261123", "currentHour": "00", "currentTime": "0000"});
    let (url, server) = serve(body.to_string(), stop.clone());
    let config = rig.config("homewizard", &url, json!({}));
    let ctl = Controller::start(&config);
    ctl.wait_log("schedule read from");
    ctl.wait_log("wrote charge 275 W");
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
    ctl.wait_log("using the last good schedule");
    let saved = std::fs::read_to_string(rig.path("state/zendure-schedule.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&saved).unwrap(),
        json!({"********0000": 275})
    );
    drop(ctl);
    // A restart with the source still down starts from the saved copy.
    let ctl = Controller::start(&config);
    ctl.wait_log("using the last good schedule until the source is read");
    wait_status(&rig, "the saved schedule in force", |doc| {
        doc["schedule"]["state"] == "last_good" && doc["target"]["setpoint_w"] == 275
    });
}

/// Polls the controller's status file until `done` holds (10 s at most).
fn wait_status(rig: &Rig, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let status = rig.path("run/status.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc: Value = serde_json::from_slice(&std::fs::read(&status).unwrap_or_default())
            .unwrap_or(Value::Null);
        if done(&doc) {
            return doc;
        }
        assert!(Instant::now() < deadline, "never {what}: {doc}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_schedule_is_refused_naming_the_key() {
    let rig = rig("invalid", &["--load", "300"]);
    let schedule = rig.schedule_file(json!({"2026112317a0": 100}));
    let config = rig.config("homewizard", &schedule, json!({}));
    let config_arg = config.to_string_lossy().into_owned();
    let out = run(&["zendure", "schedule", "--config", &config_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("2026112317a0"), "{}", stderr(&out));
    // The controller: no schedule at all means 0 W.
    let ctl = Controller::start(&config);
    let line = ctl.wait_log("schedule invalid");
    assert!(line.contains("2026112317a0"), "{line}");
    ctl.wait_log("wrote idle (0 W)");
}

#[test]
fn second_instance_exits_4_or_quietly_0() {
    let rig = rig("second", &[]);
    let schedule = rig.schedule_file(json!({"********0000": 0}));
    let config = rig.config("homewizard", &schedule, json!({}));
    let config_arg = config.to_string_lossy().into_owned();
    let _ctl = Controller::start(&config);
    let out = run(&["zendure", "run", "--config", &config_arg]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("zendure.lock"), "{}", stderr(&out));
    let out = run(&[
        "zendure",
        "run",
        "--config",
        &config_arg,
        "--if-not-running",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    // once (not a dry run) is refused beside a running controller too.
    let out = run(&["zendure", "once", "--config", &config_arg]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

#[test]
fn a_killed_controller_leaves_no_lock_behind() {
    let rig = rig("stale", &[]);
    let schedule = rig.schedule_file(json!({"********0000": 0}));
    let config = rig.config("homewizard", &schedule, json!({}));
    let ctl = Controller::start(&config);
    drop(ctl); // SIGKILL
    assert!(rig.path("run/zendure.lock").exists());
    let ctl = Controller::start(&config);
    assert_eq!(ctl.terminate().code(), Some(0));
}

#[test]
fn bad_config_exits_2_and_writes_nothing() {
    let rig = rig("badconfig", &[]);
    let schedule = rig.schedule_file(json!({"********0000": 500}));
    for (extra, key) in [
        (
            json!({"meter": {"kind": "p1", "address": "127.0.0.1:1"}}),
            "zendure.meter.kind",
        ),
        (json!({"interval": "fast"}), "zendure.interval"),
        (json!({"colour": "red"}), "zendure.colour"),
        (
            json!({"meter": {"kind": "homewizard-v2", "address": "127.0.0.1:1",
                             "token_file": "/nonexistent/token", "ca_file": "/nonexistent/ca.pem"}}),
            "zendure.meter.token_file /nonexistent/token",
        ),
    ] {
        let config = rig.config("homewizard", &schedule, extra);
        let out = run(&["zendure", "run", "--config", &config.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(key), "{key}: {}", stderr(&out));
    }
    assert!(!rig.path("run").exists());
    assert_eq!(counter(&rig.state(), "writes"), 0);
}

#[test]
fn status_schedule_and_once_commands() {
    let rig = rig("commands", &["--load", "500", "--soc", "61"]);
    let schedule = rig.schedule_file(json!({"********0000": "netzero", "********2359": 5000}));
    // Hourly prices from two days ago to two days ahead: today's, in any
    // zone, cost the energy account.
    let hour = chrono::Utc::now().timestamp() / 3600 * 3600;
    let prices: Vec<Value> = (-48..48)
        .map(|h| {
            let start = chrono::DateTime::from_timestamp(hour + h * 3600, 0).unwrap();
            json!({"start": start.to_rfc3339(), "price": 0.25})
        })
        .collect();
    let prices_file = rig.path("prices.json");
    std::fs::write(&prices_file, Value::Array(prices).to_string()).unwrap();
    let config = rig.config(
        "homewizard",
        &schedule,
        json!({"meter_lag": 0, "prices": {"source": prices_file, "capacity_wh": 1920}}),
    );
    let c = config.to_string_lossy().into_owned();
    let out = run(&[
        "zendure",
        "schedule",
        "--config",
        &c,
        "--date",
        "2026-11-23",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("00:00  netzero"), "{text}");
    assert!(text.contains("23:59  5000 W (clamped to 800 W)"), "{text}");
    assert!(text.contains("timeline"), "{text}");
    let out = run(&[
        "zendure",
        "schedule",
        "--config",
        &c,
        "--date",
        "2026-11-23",
        "--json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["changes"][1]["applied_w"], 800);
    assert_eq!(doc["resolved"].as_array().unwrap().len(), 25);

    let out = run(&["zendure", "once", "--config", &c, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("dry run: not written"),
        "{}",
        stdout(&out)
    );
    assert_eq!(counter(&rig.state(), "writes"), 0);
    let out = run(&["zendure", "once", "--config", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("written"), "{}", stdout(&out));
    rig.wait_state("discharging after once", 5.0, |s| commanded(s) < -300);

    let ctl = Controller::start(&config);
    wait_status(&rig, "today's energy costed", |doc| {
        doc["energy"]["today"]["cost_eur"].is_number()
    });
    let out = run(&["zendure", "status", "--config", &c, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["controller"]["alive"], true, "{doc}");
    assert_eq!(doc["device"]["soc_pct"], 61, "{doc}");
    assert!(doc["meter"]["grid_w"].is_i64(), "{doc}");
    assert_eq!(doc["schedule"]["value"], "netzero");
    assert!(!doc["device"]["packs"].as_array().unwrap().is_empty());
    let out = run(&["zendure", "status", "--config", &c]);
    let text = stdout(&out);
    assert!(text.contains("controller    running"), "{text}");
    assert!(text.contains("SoC 61 %"), "{text}");
    assert!(text.contains("today         "), "{text}");
    assert!(text.contains("grid cost "), "{text}");
    assert!(
        doc["controller"]["status"]["energy"]["today"]["grid_import_kwh"].is_number(),
        "{doc}"
    );
    assert_eq!(ctl.terminate().code(), Some(0));
    let out = run(&["zendure", "status", "--config", &c, "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["controller"]["alive"], false, "{doc}");
}

/// The controller posts its status events and readings to a real
/// `zcell-sched serve`, which shows it alive, its command, the SoC and the
/// meter, and then stopped after SIGTERM.
#[cfg(feature = "serve")]
#[test]
fn the_controller_posts_to_serve() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(serve_env::Server::start(json!({"alive_after": 30})));
    let rig = rig("posts", &["--load", "300"]);
    let schedule = rig.schedule_file(json!({"********0000": 400}));
    let config = rig.config(
        "homewizard",
        &schedule,
        json!({
            "status_url": format!("{}api/status", server.url),
            "data_url": format!("{}data/api/data_api.php", server.url),
        }),
    );
    let ctl = Controller::start(&config);
    ctl.wait_log("wrote charge 400 W");
    let deadline = Instant::now() + Duration::from_secs(20);
    let live = loop {
        let (_, status) = rt.block_on(server.get("api/status"));
        let live = status["live"].clone();
        if live["alive"] == true
            && live["last_command"] == 400
            && live["soc"].is_number()
            && live["meter_w"].is_number()
        {
            break live;
        }
        assert!(
            Instant::now() < deadline,
            "serve never saw the controller: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(live["battery_w"].is_number(), "{live}");
    assert_eq!(ctl.terminate().code(), Some(0));
    let (_, status) = rt.block_on(server.get("api/status"));
    assert_eq!(status["events"][0]["type"], "stop", "{status}");
    assert_eq!(status["live"]["alive"], false);
    let (_, data) = rt.block_on(server.get("api/data?hours=1"));
    assert!(!data["meter"].as_array().unwrap().is_empty(), "{data}");
    assert!(!data["device"].as_array().unwrap().is_empty(), "{data}");
    assert!(
        !rig.path("state/zendure-reports.jsonl").exists(),
        "nothing left queued"
    );
    // The hour in progress went at the stop, and the server took it.
    let (_, energy) = rt.block_on(server.get("api/energy?days=2"));
    let covered: f64 = energy["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["covered_hours"].as_f64().unwrap())
        .sum();
    assert!(covered > 0.0, "{energy}");
}

#[test]
fn a_homewizard_v2_meter_is_trusted_by_its_own_certificate_or_its_ca() {
    // The simulated meter presents what a real one does: a certificate
    // signed by its maker's CA, naming a serial, valid for no address.
    let rig = rig("hwv2trust", &["--load", "500"]);
    let schedule = rig.schedule_file(json!({"********0000": 0}));
    let p = &rig.home.ports;
    let meter = |ca_file: &std::path::Path| {
        let mut meter = rig.meter("homewizard-v2");
        meter["ca_file"] = json!(ca_file);
        json!({ "meter": meter, "meter_lag": 0 })
    };
    let status_grid = |extra: Value| {
        let config = rig.config("homewizard", &schedule, extra);
        let out = run(&[
            "zendure",
            "status",
            "--config",
            &config.to_string_lossy(),
            "--json",
        ]);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        (doc["meter"]["grid_w"].clone(), doc.to_string())
    };
    for (file, what) in [
        (p.cert.as_ref(), "the meter's own certificate, pinned"),
        (p.ca.as_ref(), "its CA"),
    ] {
        let (grid, doc) = status_grid(meter(file.expect("the home wrote it")));
        assert!(grid.is_i64(), "{what}: {doc}");
    }
    // Another CA (HomeWizard's real one did not sign the simulated meter).
    let other = rig.path("other-ca.pem");
    std::fs::write(&other, OTHER_CA).unwrap();
    let (grid, doc) = status_grid(meter(&other));
    assert!(grid.is_null(), "{doc}");
    assert!(doc.contains("UnknownIssuer"), "{doc}");
}

/// A CA that signed nothing here (generated once for this test).
const OTHER_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBpzCCAU2gAwIBAgIUTpp/QIJGrWmViNVEh8vaG9XxCLAwCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdQSBDQSB0aGF0IHNpZ25lZCBub3RoaW5nIGhlcmUwIBcNMjYx
MjA1MDgwMDQxWhgPMjEyNjExMTEwODAwNDFaMCgxJjAkBgNVBAMMHUEgQ0EgdGhh
dCBzaWduZWQgbm90aGluZyBoZXJlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
HLSwibvrPvsZJgJUkXUoPEijJnjFD03hkItHL8FVsgZbdFO7FxXtSzxvpRNv68SE
V8stTWZTvqAMU4nMy8kFZKNTMFEwHQYDVR0OBBYEFKKvY1xZOtZKgh+pN5b61bGL
AGu1MB8GA1UdIwQYMBaAFKKvY1xZOtZKgh+pN5b61bGLAGu1MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgDboCzeWgunQKZS+Qk52lBFgHwGgcIUmg
5XYqbJyukJACIQDarmQhmG/FWLErtnP+tk81Q2hZb2+3w5glftk/w7MSfA==
-----END CERTIFICATE-----
";

/// Home Assistant over MQTT discovery, against a real mosquitto: what HA
/// would see on the broker.
#[cfg(feature = "mqtt")]
mod homeassistant {
    use super::*;
    use testenv::mqtt::{Client, PlainBroker};

    const NODE: &str = "zendure_ZSIM0000000001";

    fn topic(leaf: &str) -> String {
        format!("zcell-sched/{NODE}/{leaf}")
    }

    fn discovery() -> String {
        format!("homeassistant/device/{NODE}/config")
    }

    /// The rig's config, with `zendure` keys beside its own, and a
    /// `homeassistant` object for `broker`.
    fn config(rig: &Rig, broker: &PlainBroker, schedule: Value, zendure: Value) -> PathBuf {
        let schedule = rig.schedule_file(schedule);
        let path = rig.config("homewizard", &schedule, zendure);
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        doc["homeassistant"] = json!({
            "broker": format!("mqtt://127.0.0.1:{}", broker.port),
            "state_every": 1, "reconnect": 0.2, "keep_alive": 5,
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn state_until(ha: &Client, done: impl Fn(&Value) -> bool) -> Value {
        json(&ha.until_payload(&topic("state"), |p| done(&json(p))))
    }

    #[test]
    fn discovery_the_override_and_the_last_will() {
        let rig = rig("ha", &["--load", "300"]);
        let broker = PlainBroker::start(&rig.path("mqtt"));
        let ha = Client::at(broker.port, "ha", "#");
        let config = config(&rig, &broker, json!({"********0000": 0}), json!({}));
        let ctl = Controller::start(&config);

        // In this order: online, the device, its state.
        ha.until_payload(&topic("availability"), |p| p == "online");
        let device = json(&ha.until_payload(&discovery(), |p| !p.is_empty()));
        assert_eq!(device["o"]["name"], "zcell-sched");
        assert_eq!(device["dev"]["mf"], "Zendure");
        assert_eq!(device["dev"]["mdl"], "solarFlow800Pro");
        assert_eq!(device["dev"]["sn"], "ZSIM0000000001");
        assert_eq!(device["availability_topic"], topic("availability"));
        let components = device["cmps"].as_object().unwrap();
        for key in [
            "grid_power",
            "battery_power",
            "charging",
            "soc",
            "ac_power",
            "schedule_value",
            "target",
            "reason",
            "last_command",
            "state",
            "override_mode",
            "override_watts",
            "override_duration",
            "grid_import",
            "grid_export",
            "battery_charged",
            "battery_discharged",
        ] {
            let c = &components[key];
            assert_eq!(c["unique_id"], format!("{NODE}_{key}"), "{key}");
            assert!(c["default_entity_id"].is_string() && c.get("object_id").is_none());
        }
        let mode = components["schedule_value"].as_object().unwrap();
        assert!(!mode.contains_key("unit_of_measurement") && !mode.contains_key("state_class"));
        state_until(&ha, |s| s["device"]["soc_pct"].is_number());
        // The Energy dashboard's totals, read by the energy sensors.
        let s = state_until(&ha, |s| s["energy"]["grid_import_kwh"].is_number());
        for total in [
            "grid_export_kwh",
            "battery_charged_kwh",
            "battery_discharged_kwh",
        ] {
            assert!(s["energy"][total].is_number(), "{total}: {s}");
        }

        // The override from HA: 300 W of charge for 3 s, then the schedule.
        ha.publish(&topic("override_watts/set"), "300");
        ha.publish(&topic("override_duration/set"), "3");
        ha.publish(&topic("override_mode/set"), "charge");
        let s = state_until(&ha, |s| s["override"]["mode"] == "charge");
        assert_eq!(s["override"]["watts"], 300);
        assert_eq!(s["schedule"]["value"], 0, "the schedule stays untouched");
        assert_eq!(
            (
                s["controls"]["watts"].as_f64(),
                s["controls"]["duration_s"].as_f64()
            ),
            (Some(300.0), Some(3.0))
        );
        rig.wait_state("charging 300 W", 5.0, |s| commanded(s) == 300);
        ctl.wait_log("override ended");
        state_until(&ha, |s| s["override"].is_null());
        rig.wait_state("back to the schedule's 0 W", 5.0, |s| commanded(s) == 0);

        // Until the schedule's next change (it has none): kept across a
        // restart, even after SIGKILL, whose will says offline.
        ha.publish(&topic("override_duration/set"), "0");
        ha.publish(&topic("override_mode/set"), "discharge");
        state_until(&ha, |s| s["override"]["mode"] == "discharge");
        assert!(rig.path("state/zendure-override.json").exists());
        drop(ctl);
        ha.until_payload(&topic("availability"), |p| p == "offline");
        let ctl = Controller::start(&config);
        ctl.wait_log("override kept: discharge 300 W until cleared");
        let status = run(&["zendure", "status", "--config", config.to_str().unwrap()]);
        assert!(
            stdout(&status).contains("override      discharge 300 W until cleared"),
            "{}",
            stdout(&status)
        );
        ha.until_payload(&topic("availability"), |p| p == "online");
        ha.publish(&topic("override_mode/set"), "auto");
        state_until(&ha, |s| s["override"].is_null());
        assert!(!rig.path("state/zendure-override.json").exists());

        // A clean stop: the stopped state, then offline.
        assert!(ctl.terminate().success());
        state_until(&ha, |s| s["stopped"] == true);
        ha.until_payload(&topic("availability"), |p| p == "offline");
    }

    /// An override chosen in HA shows on the server's page while it is in
    /// force, and goes when it ends.
    #[cfg(feature = "serve")]
    #[test]
    fn the_override_shows_on_the_servers_page_until_it_ends() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(serve_env::Server::start(json!({})));
        let rig = rig("ha-serve", &["--load", "300"]);
        let broker = PlainBroker::start(&rig.path("mqtt"));
        let ha = Client::at(broker.port, "ha", "#");
        let config = config(
            &rig,
            &broker,
            json!({"********0000": 0}),
            json!({"status_url": format!("{}api/status", server.url)}),
        );
        let ctl = Controller::start(&config);
        ha.until_payload(&topic("availability"), |p| p == "online");
        let status_until = |done: &dyn Fn(&Value) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (_, status) = rt.block_on(server.get("api/status"));
                if done(&status) {
                    return status;
                }
                assert!(Instant::now() < deadline, "never so: {status}");
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        ha.publish(&topic("override_watts/set"), "300");
        ha.publish(&topic("override_duration/set"), "3");
        ha.publish(&topic("override_mode/set"), "charge");
        let status = status_until(&|s| s["live"]["override"]["mode"] == "charge");
        let shown = &status["live"]["override"];
        assert_eq!(shown["watts"], 300, "{status}");
        assert_eq!(shown["by"], "homeassistant", "{status}");
        let (since, until) = (shown["since"].as_f64(), shown["until"].as_f64());
        assert_eq!(until.zip(since).map(|(u, s)| u - s), Some(3.0), "{status}");
        // The controller ends it and says so.
        status_until(&|s| {
            s["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e["type"] == "override_end"))
        });
        let (_, status) = rt.block_on(server.get("api/status"));
        assert_eq!(status["live"]["override"], Value::Null, "{status}");
        assert!(ctl.terminate().success());
    }

    #[test]
    fn a_bad_homeassistant_object_exits_2_naming_the_key() {
        let rig = rig("ha-bad", &[]);
        let schedule = rig.schedule_file(json!({"********0000": 0}));
        let path = rig.config("homewizard", &schedule, json!({}));
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for (ha, says) in [
            (
                json!({"broker": "mqtt://127.0.0.1", "port": 1}),
                "homeassistant.port: unknown key",
            ),
            (
                json!({"broker": "mqtt://127.0.0.1", "user": "u",
                       "password_file": rig.path("no-such-file")}),
                "homeassistant.password_file",
            ),
        ] {
            doc["homeassistant"] = ha;
            std::fs::write(&path, doc.to_string()).unwrap();
            let out = run(&["zendure", "run", "--config", path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(stderr(&out).contains(says), "{}", stderr(&out));
        }
        assert!(!rig.path("run").exists(), "nothing is created");
    }

    #[test]
    fn after_the_broker_restarts_and_when_ha_comes_online_discovery_is_published_again() {
        let rig = rig("ha-reconnect", &["--load", "300"]);
        let mut broker = PlainBroker::start(&rig.path("mqtt"));
        let ha = Client::at(broker.port, "ha", "#");
        let config = config(&rig, &broker, json!({"********0000": 0}), json!({}));
        let _ctl = Controller::start(&config);
        ha.until_payload(&discovery(), |p| !p.is_empty());
        drop(ha);
        // The broker keeps nothing: all HA sees comes from the controller.
        broker.restart();
        let ha = Client::at(broker.port, "ha-again", "#");
        ha.until_payload(&topic("availability"), |p| p == "online");
        ha.until_payload(&discovery(), |p| !p.is_empty());
        // HA restarted and forgot the device: it says so on its status.
        ha.retain(&discovery(), "");
        ha.until_payload(&discovery(), str::is_empty);
        ha.publish("homeassistant/status", "online");
        let device = json(&ha.until_payload(&discovery(), |p| !p.is_empty()));
        assert_eq!(device["dev"]["ids"], json!([NODE]));
    }
}
