//! The simulated Zendure home (`zcell-test-zendure-home`) for tests: start
//! it, read its ports, talk to its device, meters and control API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Events, Killed, bin, spawn};

#[path = "zsim/crc.rs"]
mod crc;
/// The HTTP client the tests share with the baseline law.
#[path = "zsim/http.rs"]
pub mod http;
/// DSMR telegram reading, shared with the baseline law.
#[path = "zsim/telegram.rs"]
pub mod telegram;

use http::{TIMEOUT, http_request};

/// Where the simulated home listens (`ready` line / port file).
#[derive(Clone, Debug)]
pub struct Ports {
    pub device: String,
    pub control: String,
    pub homewizard: String,
    pub homewizard_v2: String,
    pub zendure_p1: String,
    pub dsmr: String,
    pub token: String,
    pub cert: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub sn: String,
}

impl Ports {
    fn parse(doc: &Value) -> Ports {
        let s = |k: &str| {
            doc[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k} in {doc}"))
                .to_string()
        };
        Ports {
            device: s("device"),
            control: s("control"),
            homewizard: s("homewizard"),
            homewizard_v2: s("homewizard_v2"),
            zendure_p1: s("zendure_p1"),
            dsmr: s("dsmr"),
            token: s("token"),
            cert: doc["cert"].as_str().map(PathBuf::from),
            ca: doc["ca"].as_str().map(PathBuf::from),
            sn: s("sn"),
        }
    }
}

/// A running simulated home, killed on drop.
pub struct SimHome {
    pub ports: Ports,
    pub dir: PathBuf,
    pub events: Events,
    _child: Killed,
}

impl SimHome {
    /// Starts the home with `args` in `dir` (its log goes to
    /// `dir/zendure-home.log`, the meter's certificate to
    /// `dir/homewizard.pem` and its CA to `dir/homewizard-ca.pem`).
    pub fn start(dir: &Path, args: &[&str]) -> SimHome {
        std::fs::create_dir_all(dir).expect("sim dir");
        let mut cmd = Command::new(bin("zcell-test-zendure-home"));
        cmd.arg("--cert-out")
            .arg(dir.join("homewizard.pem"))
            .arg("--ca-out")
            .arg(dir.join("homewizard-ca.pem"))
            .args(args);
        let mut child: Child = spawn(
            &mut cmd,
            "the simulated home",
            &dir.join("zendure-home.log"),
        );
        let events = Events::of(&mut child, "the simulated home");
        let line = events.wait_for("ready ");
        let doc: Value = serde_json::from_str(&line["ready ".len()..]).expect("ready JSON");
        SimHome {
            ports: Ports::parse(&doc),
            dir: dir.to_path_buf(),
            events,
            _child: Killed(child),
        }
    }

    /// The control API's `/sim/state`.
    pub fn state(&self) -> Value {
        let (status, body) = http_get(&self.ports.control, "/sim/state", &[]).expect("state");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("state JSON")
    }

    /// POSTs `body` to a control path (`/sim/fault`, ...) and returns the state.
    pub fn control(&self, path: &str, body: &str) -> Value {
        let (status, answer) = http_request(
            &self.ports.control,
            "POST",
            path,
            &[],
            body.as_bytes(),
            TIMEOUT,
        )
        .expect("control API");
        assert_eq!(status, 200, "{path} {body}: {answer}");
        serde_json::from_str(&answer).expect("state JSON")
    }

    /// Waits until the sim clock reaches `t` (sim seconds); returns the state.
    pub fn wait_for_t(&self, t: f64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.state();
            if state["t"].as_f64().expect("t") >= t {
                return state;
            }
            assert!(Instant::now() < deadline, "the sim clock never reached {t}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// POSTs a write to the device.
    pub fn write(&self, body: &str) -> (u16, String) {
        http_request(
            &self.ports.device,
            "POST",
            "/properties/write",
            &[],
            body.as_bytes(),
            TIMEOUT,
        )
        .expect("device write")
    }

    /// A write with this device's `sn` and `properties`, which must be accepted.
    pub fn command(&self, properties: &str) {
        let body = format!(r#"{{"sn":"{}","properties":{properties}}}"#, self.ports.sn);
        let (status, answer) = self.write(&body);
        assert_eq!(status, 200, "{body}: {answer}");
    }

    pub fn report(&self) -> Value {
        let (status, body) =
            http_get(&self.ports.device, "/properties/report", &[]).expect("report");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("report JSON")
    }
}

/// A fresh directory for one test's files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("zcell-sched-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn http_get(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, headers, b"", TIMEOUT)
}

/// The time of day (s) in a telegram's `0-0:1.0.0` timestamp.
pub fn telegram_time(telegram: &str) -> Option<f64> {
    let start = telegram.find("0-0:1.0.0(")? + 10;
    let digits = telegram.get(start + 6..start + 12)?;
    let n = |i: usize| digits[i..i + 2].parse::<f64>().ok();
    Some(n(0)? * 3600.0 + n(2)? * 60.0 + n(4)?)
}

/// Another Zendure test program (e.g. `zcell-test-zendure-baseline`),
/// killed on drop; its stderr goes to `log`.
pub struct Program {
    pub events: Events,
    _child: Killed,
}

impl Program {
    pub fn start(name: &str, args: &[&str], log: &Path) -> Program {
        let mut cmd = Command::new(bin(name));
        cmd.args(args);
        let mut child = spawn(&mut cmd, name, log);
        let events = Events::of(&mut child, name);
        Program {
            events,
            _child: Killed(child),
        }
    }
}
