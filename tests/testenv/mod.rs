//! The test environment: a private dbus-daemon with the simulated GX
//! settings service, a fake BMS, and a way to run zcell-sched against them.
//!
//! `ZCELL_SCHED_BIN` runs another zcell-sched binary (e.g. the armv7 build)
//! and `ZCELL_SCHED_RUNNER` puts a command in front of it (e.g. qemu-arm),
//! so the same scenarios prove the GX binary too.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::Value;

pub mod mqtt;
pub mod zendure;

pub const SCHEDULE: &str = "/Settings/CGwacs/BatteryLife/Schedule/Charge";
pub const TIME_ZONE: &str = "/Settings/System/TimeZone";

/// A BMS payload: one battery, maintenance due in `seconds`.
pub fn due_in(seconds: i64) -> String {
    let target = 259_200;
    format!(
        r#"{{"list": [{{"id": 1, "state_of_charge": 87.4, "is_stripping": false,
            "strip_pump_run_timer": {}, "strip_pump_run_target": {target}}}]}}"#,
        target - seconds
    )
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with the command's output unless it exited with `code`.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

pub fn slot_path(slot: u8, leaf: &str) -> String {
    format!("{SCHEDULE}/{slot}/{leaf}")
}

/// A test double: an example program, which `cargo test` builds into
/// `examples/` beside the folder holding this test's binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lies in target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: build the test doubles with `cargo build --examples`",
        path.display()
    );
    path
}

/// The lines a helper prints on stdout, read on a thread so that it never
/// blocks on a full pipe and a test can wait for a line with a bound.
pub struct Events {
    what: String,
    lines: Receiver<String>,
}

impl Events {
    fn of(child: &mut Child, what: &str) -> Events {
        let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
        Events::from_reader(stdout, what)
    }

    pub(crate) fn from_reader(stream: impl std::io::Read + Send + 'static, what: &str) -> Events {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Events {
            what: what.to_string(),
            lines: rx,
        }
    }

    /// Forgets the lines printed so far.
    pub fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// Waits for the next line starting with `prefix` and returns it.
    pub fn wait_for(&self, prefix: &str) -> String {
        self.wait_until(prefix, |line| line.starts_with(prefix))
    }

    /// Waits for the next line containing `text` and returns it.
    pub fn wait_for_text(&self, text: &str) -> String {
        self.wait_until(text, |line| line.contains(text))
    }

    fn wait_until(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if found(&line) => return line,
                Ok(_) => continue,
                Err(e) => panic!("{} never printed {what:?}: {e}", self.what),
            }
        }
    }
}

/// How long a test waits for a helper's line before failing.
const PATIENCE: Duration = Duration::from_secs(60);

/// Starts a helper; its stderr goes to `log` so test output stays readable.
pub(crate) fn spawn(cmd: &mut Command, what: &str, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    cmd.stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"))
}

pub struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private bus, a simulated GX and (optionally) a fake BMS, torn down on drop.
pub struct TestEnv {
    pub dir: PathBuf,
    pub bus_address: String,
    bms_url: Option<String>,
    children: Vec<Killed>,
    gx: Option<(Killed, Events)>,
    gx_args: Vec<String>,
    bms_events: Option<Events>,
    pub broker: Option<mqtt::Broker>,
    flashmq: Option<Killed>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestEnv {
    /// A bus and a GX simulator started with `gx_args` (e.g. `--set PATH=V`).
    pub fn new(gx_args: &[&str]) -> TestEnv {
        let dir = std::env::temp_dir().join(format!(
            "zcell-sched-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("bus");
        let config = dir.join("bus.conf");
        let conf = include_str!("bus.conf").replace("@SOCKET@", &socket.display().to_string());
        std::fs::write(&config, conf).expect("bus config");
        let mut daemon = Command::new("dbus-daemon");
        daemon
            .args(["--nofork", "--print-address=1", "--config-file"])
            .arg(&config);
        if Command::new("dbus-daemon")
            .arg("--version")
            .output()
            .is_err()
        {
            panic!("dbus-daemon is missing: `apt-get install dbus` (./scripts/test does)");
        }
        let mut bus = spawn(&mut daemon, "dbus-daemon", &dir.join("bus.log"));
        let bus_address = Events::of(&mut bus, "dbus-daemon").wait_for("unix:");
        let mut env = TestEnv {
            dir,
            bus_address,
            bms_url: None,
            children: vec![Killed(bus)],
            gx: None,
            gx_args: gx_args.iter().map(|a| a.to_string()).collect(),
            bms_events: None,
            broker: None,
            flashmq: None,
        };
        env.start_gx(&[]);
        env
    }

    /// Starts the GX simulator with the environment's arguments and `extra`.
    fn start_gx(&mut self, extra: &[&str]) {
        let mut cmd = Command::new(bin("zcell-test-gx"));
        cmd.arg("--address")
            .arg(&self.bus_address)
            .arg("--state")
            .arg(self.dir.join("state.json"))
            .arg("--log")
            .arg(self.dir.join("writes.jsonl"))
            .args(&self.gx_args)
            .args(extra);
        let mut gx = spawn(&mut cmd, "the GX simulator", &self.dir.join("gx.log"));
        let events = Events::of(&mut gx, "the GX simulator");
        events.wait_for("ready");
        self.gx = Some((Killed(gx), events));
    }

    /// Stops the simulated settings service (the bus stays up).
    pub fn stop_gx(&mut self) {
        self.gx = None;
    }

    /// Stops the settings service and starts it again from its saved
    /// values, as localsettings restarts from its settings file, with
    /// `extra` arguments (e.g. none of the faults it had).
    pub fn restart_gx(&mut self, args: &[&str]) {
        self.gx = None;
        self.gx_args.retain(|a| {
            !a.starts_with("--pause-call")
                && !a.starts_with("--exit-on-call")
                && !a.starts_with("--refuse-call")
        });
        let mut extra = vec!["--resume"];
        extra.extend_from_slice(args);
        self.start_gx(&extra);
    }

    /// The GX simulator's lines after `ready` (e.g. `paused 2`).
    pub fn gx_events(&self) -> &Events {
        &self.gx.as_ref().expect("the GX simulator runs").1
    }

    /// The fake BMS's lines after `listening` (`request ...`).
    pub fn bms_events(&self) -> &Events {
        self.bms_events.as_ref().expect("with_bms was called")
    }

    /// Starts the fake BMS serving `payload`, with extra flags such as `--status 500`.
    pub fn with_bms(mut self, payload: &str, args: &[&str]) -> TestEnv {
        let (url, events) = self.spawn_bms("bms", payload, args);
        self.bms_url = Some(url);
        self.bms_events = Some(events);
        self
    }

    /// Starts another fake BMS, called `name`, and returns its base URL.
    pub fn start_bms(&mut self, name: &str, payload: &str, args: &[&str]) -> String {
        self.spawn_bms(name, payload, args).0
    }

    fn spawn_bms(&mut self, name: &str, payload: &str, args: &[&str]) -> (String, Events) {
        let body = self.dir.join(format!("{name}.json"));
        std::fs::write(&body, payload).expect("payload");
        let mut cmd = Command::new(bin("zcell-test-bms"));
        cmd.arg("--body-file").arg(&body).args(args);
        let log = self.dir.join(format!("{name}.log"));
        let mut bms = spawn(&mut cmd, "the fake BMS", &log);
        let events = Events::of(&mut bms, "the fake BMS");
        let line = events.wait_for("listening ");
        let url = line["listening ".len()..].to_string();
        self.children.push(Killed(bms));
        (url, events)
    }

    /// What the fake BMS answers from now on.
    pub fn set_payload(&self, payload: &str) {
        std::fs::write(self.dir.join("bms.json"), payload).expect("payload");
    }

    pub fn bms(&self) -> &str {
        self.bms_url.as_deref().expect("with_bms was called")
    }

    /// A zcell-sched command wired to this environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let program = std::env::var_os("ZCELL_SCHED_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_zcell-sched")));
        let mut cmd = match std::env::var("ZCELL_SCHED_RUNNER") {
            Ok(runner) if !runner.trim().is_empty() => {
                let mut words = runner.split_whitespace();
                let mut c = Command::new(words.next().expect("non-empty"));
                c.args(words).arg(&program);
                c
            }
            _ => Command::new(&program),
        };
        cmd.args(args);
        self.wire(&mut cmd);
        cmd
    }

    /// Points any command (a script that runs zcell-sched) at this environment.
    pub fn wire(&self, cmd: &mut Command) {
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)
            .env("ZCELL_SCHED_LOCK_FILE", self.dir.join("run.lock"))
            .env("ZCELL_SCHED_STATUS_FILE", self.status_file())
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("zcell-sched runs")
    }

    /// `run` against this environment's BMS as if it were `now`, one BMS
    /// attempt, then `extra`.
    pub fn run_at(&self, now: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "run",
            "--bms",
            self.bms(),
            "--now",
            now,
            "--bms-retries",
            "0",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Where zcell-sched records its runs in this environment.
    pub fn status_file(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    /// The last run record.
    pub fn record(&self) -> Value {
        read_json(&self.status_file())
    }

    /// Every setting's value now, as the simulator last wrote it.
    pub fn state(&self) -> Value {
        read_json(&self.dir.join("state.json"))
    }

    pub fn value(&self, path: &str) -> Value {
        self.state()[path].clone()
    }

    /// (Day, Start, Duration, Soc) of a slot.
    pub fn slot(&self, n: u8) -> (i64, i64, i64, i64) {
        let state = self.state();
        let get = |leaf: &str| {
            state[slot_path(n, leaf)]
                .as_i64()
                .unwrap_or_else(|| panic!("slot {n} {leaf} missing"))
        };
        (get("Day"), get("Start"), get("Duration"), get("Soc"))
    }

    /// Every SetValue call so far: (path, result).
    pub fn writes(&self) -> Vec<(String, i64)> {
        let path = self.dir.join("writes.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("write log line");
                (
                    v["path"].as_str().expect("path").to_string(),
                    v["result"].as_i64().expect("result"),
                )
            })
            .collect()
    }

    pub fn clear_writes(&self) {
        let _ = std::fs::remove_file(self.dir.join("writes.jsonl"));
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.flashmq = None;
        self.broker = None;
        self.gx = None;
        self.children.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}
