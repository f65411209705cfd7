//! The server part of `scripts/bench`: a `zcell-sched serve` (the binary
//! given) with schedules of growing size, timed from a client on loopback:
//! `GET /api/status` (median), `GET /api/data?hours=744`, the page's CSS
//! while a month of data is being answered, and the server's memory
//! (`VmHWM`, `VmRSS` from /proc) after every route was used once. Prints a
//! table; exits 1 if a target is missed.
//!
//! Usage: zcell-test-serve-bench ZCELL_SCHED_BINARY

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{Datelike as _, NaiveDate, Timelike as _, Utc};
use serde_json::{Map, Value, json};

/// A request that takes longer than this is reported as "> 60 s".
const TIMEOUT: Duration = Duration::from_secs(60);

struct Serve {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Serve {
    fn start(binary: &Path, name: &str, schedule: &Value) -> Result<Serve> {
        let dir =
            std::env::temp_dir().join(format!("zcell-serve-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).context("cannot make the bench folder")?;
        std::fs::write(dir.join("schedule.json"), schedule.to_string())?;
        let config = json!({"serve": {
            "schedule_file": dir.join("schedule.json"),
            "database": dir.join("serve.sqlite"),
            "time_zone": "Europe/Amsterdam",
        }});
        std::fs::write(dir.join("config.json"), config.to_string())?;
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(dir.join("config.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                bail!("serve exited before it listened");
            };
            if let Some(rest) = line?.split("serving ").nth(1) {
                break rest.trim().to_string();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Serve { child, url, dir })
    }

    fn memory(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib = |field: &str| -> Result<f64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .with_context(|| format!("no {field} in /proc/PID/status"))
        };
        Ok((kib("VmHWM:")? / 1024.0, kib("VmRSS:")? / 1024.0))
    }
}

/// Seconds a request took, or None past `TIMEOUT`.
async fn timed(request: reqwest::RequestBuilder) -> Result<Option<f64>> {
    let start = Instant::now();
    match request.timeout(TIMEOUT).send().await {
        Ok(r) => {
            let code = r.status();
            r.bytes().await?;
            if !code.is_success() {
                bail!("HTTP {code}");
            }
            Ok(Some(start.elapsed().as_secs_f64()))
        }
        Err(e) if e.is_timeout() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn key(date: NaiveDate, minute: u32) -> String {
    format!(
        "{:04}{:02}{:02}{:02}{:02}",
        date.year(),
        date.month(),
        date.day(),
        minute / 60,
        minute % 60
    )
}

fn value(n: usize) -> Value {
    match n % 4 {
        0 => json!("netzero"),
        1 => json!(400),
        2 => json!(-300),
        _ => json!(0),
    }
}

/// `count` date-specific entries every `step` minutes, ending tomorrow
/// (what months of saved price plans leave), under 24 hourly wildcards.
fn dated(count: usize, step: u32) -> Value {
    let mut doc = Map::new();
    for h in 0..24 {
        doc.insert(format!("********{h:02}00"), value(h));
    }
    let end = Utc::now().date_naive() + chrono::Days::new(2);
    let mut at = end.and_hms_opt(0, 0, 0).expect("midnight");
    for n in 0..count {
        at -= chrono::TimeDelta::minutes(i64::from(step));
        doc.insert(key(at.date(), at.hour() * 60 + at.minute()), value(n));
    }
    Value::Object(doc)
}

/// `count` wildcard entries, one a minute, in turn daily, this year's and
/// December's.
fn wildcards(count: usize) -> Value {
    let mut doc = Map::new();
    for n in 0..count {
        let minute = (n % 1440) as u32;
        let date = ["********", "2026****", "****12**"][n / 1440 % 3];
        doc.insert(
            format!("{date}{:02}{:02}", minute / 60, minute % 60),
            value(n),
        );
    }
    Value::Object(doc)
}

fn ms(s: Option<f64>) -> String {
    s.map_or(format!("> {} s", TIMEOUT.as_secs()), |s| {
        format!("{:.1}", s * 1000.0)
    })
}

struct Case {
    name: &'static str,
    schedule: Value,
    /// The target for `GET /api/status`, in ms.
    status_target: Option<f64>,
}

fn main() -> ExitCode {
    let Some(binary) = std::env::args().nth(1) else {
        eprintln!("usage: zcell-test-serve-bench ZCELL_SCHED_BINARY");
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(Path::new(&binary))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("zcell-test-serve-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(binary: &Path) -> Result<bool> {
    // reqwest with HTTPS built in needs the process's crypto provider.
    zcell_sched::http::install_crypto();
    let http = reqwest::Client::new();
    let mut ok = true;
    let cases = [
        Case {
            name: "300 entries",
            schedule: dated(276, 15),
            status_target: Some(1.0),
        },
        Case {
            name: "10,000 entries",
            schedule: dated(9_976, 15),
            status_target: Some(20.0),
        },
        Case {
            name: "3,200 wildcards",
            schedule: wildcards(3_200),
            status_target: None,
        },
        Case {
            name: "100,000 dated",
            schedule: dated(100_000, 5),
            status_target: None,
        },
    ];
    println!(
        "{:<16} {:>7} {:>12} {:>10} {:>14} {:>12}  verdict",
        "schedule", "KB", "status ms", "target", "data 744h ms", "css busy ms"
    );
    for case in cases {
        let serve = Serve::start(binary, &case.name.replace([' ', ','], ""), &case.schedule)?;
        let status = format!("{}api/status", serve.url);
        // The first answer may warm a cache; the median of the rest counts.
        let first = timed(http.get(&status)).await?;
        let mut times = Vec::new();
        if first.is_some_and(|s| s < 1.0) {
            for _ in 0..21 {
                times.extend(timed(http.get(&status)).await?);
            }
            times.sort_by(f64::total_cmp);
        }
        let median = times.get(times.len() / 2).copied().or(first);
        let data = timed(http.get(format!("{}api/data?hours=744", serve.url))).await?;
        // The page's CSS asked for while a month of data is being answered.
        let busy = {
            let month = tokio::spawn(timed(http.get(format!("{}api/data?hours=744", serve.url))));
            tokio::time::sleep(Duration::from_millis(5)).await;
            let css = timed(http.get(format!("{}assets/app.css", serve.url))).await?;
            month.await??;
            css
        };
        let verdict = match case.status_target {
            Some(target) => {
                let met = median.is_some_and(|s| s * 1000.0 <= target);
                ok &= met;
                if met { "ok" } else { "MISSED" }
            }
            None => "-",
        };
        println!(
            "{:<16} {:>7.0} {:>12} {:>10} {:>14} {:>12}  {verdict}",
            case.name,
            case.schedule.to_string().len() as f64 / 1000.0,
            ms(median),
            case.status_target
                .map_or("-".into(), |t| format!("<= {t} ms")),
            ms(data),
            ms(busy),
        );
    }
    ok &= memory(binary, &http).await?;
    Ok(ok)
}

/// Every route once, then the server's peak and current RSS.
async fn memory(binary: &Path, http: &reqwest::Client) -> Result<bool> {
    let serve = Serve::start(binary, "memory", &dated(276, 15))?;
    let at = |path: &str| format!("{}{path}", serve.url);
    let (hwm_start, _) = serve.memory()?;
    let reference = "schedule/api/charge_schedule_api.php";
    let etag = http
        .get(at("api/schedule"))
        .send()
        .await?
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .context("no ETag")?;
    let mut doc = dated(276, 15);
    doc["********0930"] = json!(500);
    let send = |method: reqwest::Method, path: &str, body: &Value| {
        http.request(method, at(path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
    };
    use reqwest::Method;
    let calls = [
        http.get(at("")),
        http.get(at("assets/app.css")),
        http.get(at("assets/app.js")),
        http.get(at("api/schedule")),
        send(Method::PUT, "api/schedule", &doc).header("If-Match", etag),
        send(Method::POST, "api/status", &json!({"type": "start"})),
        http.get(at("api/status")),
        send(
            Method::POST,
            "api/data?type=zendure_p1",
            &json!({"total_power": -420}),
        ),
        send(
            Method::POST,
            "api/data?type=zendure",
            &json!({"properties": {"electricLevel": 50}}),
        ),
        http.get(at("api/data?hours=744")),
        http.get(at(&format!("{reference}?date=20261124"))),
        send(
            Method::POST,
            reference,
            &json!({"key": "********0945", "value": 300}),
        ),
        send(Method::DELETE, reference, &json!({"key": "********0945"})),
        http.get(at("schedule/api/automation_status_api.php?limit=5")),
        send(
            Method::POST,
            "data/api/data_api.php?type=zendure_p1",
            &json!({"total_power": 1}),
        ),
        // Answers 409 without zendure.prices; its route is used all the same.
        send(Method::POST, "api/schedule/plan", &json!({})),
    ];
    for call in calls {
        let answer = call.timeout(TIMEOUT).send().await?;
        let (status, url) = (answer.status(), answer.url().clone());
        answer.bytes().await?;
        // A refused request would leave its route unused: only the plan's
        // 409 (no prices here) is expected.
        ensure!(
            status.is_success() || status == reqwest::StatusCode::CONFLICT,
            "{url}: {status}"
        );
    }
    let (hwm, rss) = serve.memory()?;
    let met = hwm <= 15.0;
    println!(
        "server memory: at start {hwm_start:.1} MiB; after every route once peak (VmHWM) {hwm:.1} MiB, \
         now (VmRSS) {rss:.1} MiB, target peak <= 15 MiB: {}",
        if met { "ok" } else { "MISSED" }
    );
    Ok(met)
}
