//! A `zcell-sched serve` of its own for each test: a temporary folder for
//! its schedule, database and config, a port the kernel picks on
//! 127.0.0.1, and a small HTTP client.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub fn unix_now() -> f64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.as_secs() as f64
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "zcell-serve-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the config: the test's `serve` keys over a schedule and database
/// in `dir`; `"token_file": "TOKEN"` stands for a file holding `TOKEN`.
fn config(dir: &Path, serve: Value) -> (PathBuf, bool) {
    let mut keys = json!({
        "schedule_file": dir.join("schedule.json"),
        "database": dir.join("serve.sqlite"),
        "time_zone": "Europe/Amsterdam",
    });
    let mut with_token = false;
    for (k, v) in serve.as_object().unwrap() {
        // "TOKEN0644": the same, in a file others may read.
        if k == "token_file" && (v == "TOKEN" || v == "TOKEN0644") {
            use std::os::unix::fs::PermissionsExt as _;
            let file = dir.join("token");
            std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
            let mode = if v == "TOKEN" { 0o600 } else { 0o644 };
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            keys[k] = json!(file);
            with_token = true;
        } else {
            keys[k] = v.clone();
        }
    }
    let path = dir.join("config.json");
    std::fs::write(&path, json!({"serve": keys}).to_string()).unwrap();
    (path, with_token)
}

/// Runs `serve` with a config it must refuse; returns its output.
pub fn run_refused(serve: Value) -> Output {
    let dir = temp_dir();
    let (path, _) = config(&dir, serve);
    let mut child = Command::new(env!("CARGO_BIN_EXE_zcell-sched"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // A refusal exits at once; a server that started would never exit, so
    // the wait is bounded.
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("serve started instead of refusing its config");
}

pub struct Server {
    child: Child,
    /// What the server said on stderr up to its readiness line.
    pub said: Vec<String>,
    pub url: String,
    pub dir: PathBuf,
    token: Option<&'static str>,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    pub async fn start(serve: Value) -> Server {
        Server::start_with(serve, Value::Null, "127.0.0.1:0").await
    }

    /// On a chosen address (a port a client already tried).
    pub async fn start_on(serve: Value, listen: &str) -> Server {
        Server::start_with(serve, Value::Null, listen).await
    }

    /// With a `zendure` object beside `serve` (`DIR` in it stands for the
    /// test's folder), unless it is null, listening on `listen`.
    pub async fn start_with(serve: Value, zendure: Value, listen: &str) -> Server {
        // reqwest with HTTPS built in needs the process's crypto provider.
        zcell_sched::http::install_crypto();
        let http = reqwest::Client::new();
        let dir = temp_dir();
        let (path, with_token) = config(&dir, serve);
        if !zendure.is_null() {
            let text = zendure.to_string().replace("DIR", dir.to_str().unwrap());
            let mut doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            doc["zendure"] = serde_json::from_str(&text).unwrap();
            std::fs::write(&path, doc.to_string()).unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_zcell-sched"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .args(["--listen", listen])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zcell-sched serve");
        // Its readiness line names the port; keep draining stderr after.
        let stderr = child.stderr.take().unwrap();
        let mut server = Server {
            child,
            said: Vec::new(),
            url: String::new(),
            dir,
            token: with_token.then_some(TOKEN),
            http,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
                let _ = tx.send(line);
            }
        });
        // Dropping `server` on a panic here stops the process too.
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("serve did not say where it listens");
            if let Some(url) = line.split("serving ").nth(1) {
                server.url = url.to_string();
                break;
            }
            server.said.push(line);
        }
        server
    }

    pub fn schedule_file(&self) -> PathBuf {
        self.dir.join("schedule.json")
    }

    /// Any request with a JSON content type, as programs send; the body as
    /// text.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: &str,
        token: Option<&str>,
    ) -> (u16, String) {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(token) = token {
            headers.push(("Authorization", format!("Bearer {token}")));
        }
        let response = self.request(method, path, body, &headers).await;
        let code = response.status().as_u16();
        (code, response.text().await.unwrap())
    }

    /// Any request with exactly these headers (and those reqwest adds).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, String)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("the server answers")
    }

    /// A JSON request with the server's token, if it has one.
    pub async fn send(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let (code, text) = self.raw(method, path, &body.to_string(), self.token).await;
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (code, text) = self.raw("GET", path, "", self.token).await;
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_with_etag(&self, path: &str) -> (Value, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        (
            serde_json::from_str(&response.text().await.unwrap()).unwrap(),
            etag,
        )
    }

    pub async fn put_if_match(&self, etag: &str, doc: Value) -> (u16, Value) {
        let mut request = self
            .http
            .put(format!("{}api/schedule", self.url))
            .header("If-Match", etag)
            .header("Content-Type", "application/json")
            .body(doc.to_string());
        if let Some(token) = self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        let code = response.status().as_u16();
        (
            code,
            serde_json::from_str(&response.text().await.unwrap()).unwrap(),
        )
    }
}

/// A `zendure` object for `Server::start_with` whose prices come from
/// `DIR/prices.json`, with the `tariff` keys given (VAT, markup, ...).
pub fn zendure(tariff: Value) -> Value {
    let mut prices = json!({"source": "DIR/prices.json", "capacity_wh": 1920});
    for (k, v) in tariff.as_object().unwrap() {
        prices[k] = v.clone();
    }
    json!({
        "device": "127.0.0.1:9",
        "meter": {"kind": "homewizard", "address": "127.0.0.1:9"},
        "schedule": "DIR/schedule.json",
        "time_zone": "Europe/Amsterdam",
        "prices": prices,
    })
}

/// A server with `zendure.prices` from a file in its folder: every quarter
/// hour of yesterday and today (the home's, Europe/Amsterdam) at 0.10
/// EUR/kWh, 0.20 at noon yesterday; no VAT or markup, export netted.
pub mod energy {
    use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
    use chrono_tz::Europe::Amsterdam;
    use serde_json::{Value, json};

    use super::Server;

    /// The local hour's start, UTC.
    pub fn hour(date: NaiveDate, h: u32) -> DateTime<Utc> {
        Amsterdam
            .from_local_datetime(&date.and_hms_opt(h, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .to_utc()
    }

    pub fn today() -> NaiveDate {
        Utc::now().with_timezone(&Amsterdam).date_naive()
    }

    /// One run's hour as the controller posts it; 250 Wh discharged.
    pub fn record(
        at: DateTime<Utc>,
        run: &str,
        import_wh: f64,
        without_wh: f64,
        grid_s: f64,
    ) -> Value {
        json!({"hour": at.timestamp(), "run": run, "import_wh": import_wh, "export_wh": 0.0,
            "charged_wh": 0.0, "discharged_wh": 250.0, "device_wh": -10.0,
            "import_without_wh": without_wh, "export_without_wh": 0.0,
            "grid_s": grid_s, "device_s": grid_s})
    }

    pub async fn priced_server(serve: Value) -> Server {
        let (today, yesterday) = (today(), today() - Duration::days(1));
        let mut t = hour(yesterday, 0);
        let mut points = Vec::new();
        while t < hour(today, 23) + Duration::hours(1) {
            let noon = t >= hour(yesterday, 12) && t < hour(yesterday, 13);
            points.push(json!({"start": t.to_rfc3339(), "price": if noon { 0.20 } else { 0.10 }}));
            t += Duration::minutes(15);
        }
        let zendure = super::zendure(json!({"vat_percent": 0, "markup_eur_per_kwh": 0}));
        let s = Server::start_with(serve, zendure, "127.0.0.1:0").await;
        std::fs::write(s.dir.join("prices.json"), Value::Array(points).to_string()).unwrap();
        s
    }
}
