//! The reference owner's control law, for the bench to compare the product
//! against on the same simulated home: every interval read the meter, then
//! new setpoint = current setpoint + meter reading (here, in charge W with
//! import positive: current minus meter), no change within the deadband or for less than the
//! minimum step, written with the field's command shapes. It remembers its
//! own last setpoint, re-sends nothing unchanged and holds the setpoint
//! when the meter fails, as the reference does.
//!
//! # Command line
//! ```text
//! zcell-test-zendure-baseline --device HOST:PORT --meter-kind KIND --meter HOST:PORT
//!   [--sn SN]                  (read from the device's report)
//!   [--token T | --token-file F] [--cert PEM]   HomeWizard v2: bearer token, pinned certificate
//!   [--schedule SPEC]          (0=netzero), zsim/schedule.rs; the time of day is the
//!                              device report's `timestamp` modulo a day (the simulated home's clock)
//!   [--interval S] [--deadband W] [--min-step W] [--http-timeout S]   (20, 30, 50, 5)
//! ```
//! KIND: `homewizard`, `homewizard-v2`, `zendure-p1` or `dsmr-tcp`.
//! `--interval` and `--http-timeout` are REAL seconds (this is a controller
//! outside the simulation): divide by the home's `--speed`.
//!
//! # Output
//! `ready` once the device answered, then `write t=SIM_SECONDS_OF_DAY w=W
//! BODY` for every write and `error ...` lines on stderr. Runs until killed.

#[path = "zsim/crc.rs"]
mod crc;
#[path = "zsim/http.rs"]
mod http;
#[path = "zsim/schedule.rs"]
mod schedule;
#[path = "zsim/telegram.rs"]
mod telegram;
#[path = "zsim/time.rs"]
mod time;
#[path = "zsim/token.rs"]
mod token;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value as Json, json};

use schedule::{Schedule, Value};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    device: String,
    #[arg(long)]
    sn: Option<String>,
    #[arg(long, value_enum)]
    meter_kind: MeterKind,
    #[arg(long)]
    meter: String,
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long, default_value = "0=netzero")]
    schedule: Schedule,
    #[arg(long, default_value = "20")]
    interval: f64,
    #[arg(long, default_value = "30")]
    deadband: f64,
    #[arg(long, default_value = "50")]
    min_step: f64,
    #[arg(long, default_value = "5")]
    http_timeout: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MeterKind {
    Homewizard,
    HomewizardV2,
    ZendureP1,
    DsmrTcp,
}

/// The reference law: the next setpoint (W, + charge), or none to keep it.
fn next_setpoint(
    value: Value,
    current: f64,
    meter_w: Option<f64>,
    args: &Args,
    max_charge: f64,
    max_discharge: f64,
) -> Option<f64> {
    let follow = |meter: f64| {
        if meter.abs() < args.deadband {
            current
        } else {
            current - meter
        }
    };
    let wanted = match value {
        Value::Watts(w) => w,
        Value::NetZero => follow(meter_w?),
        Value::NetZeroPlus => follow(meter_w?).max(0.0),
    };
    let wanted = wanted.clamp(-max_discharge, max_charge).round();
    let small = matches!(value, Value::NetZero | Value::NetZeroPlus)
        && (wanted - current).abs() < args.min_step;
    (wanted != current && !small).then_some(wanted)
}

/// The field's command shapes.
fn command(w: f64) -> Json {
    let p = w.abs() as i64;
    if w > 0.0 {
        json!({"acMode": 1, "inputLimit": p, "outputLimit": 0, "smartMode": 1})
    } else if w < 0.0 {
        json!({"acMode": 2, "outputLimit": p, "inputLimit": 0, "smartMode": 1})
    } else {
        json!({"inputLimit": 0, "outputLimit": 0, "smartMode": 1})
    }
}

fn get_json(addr: &str, path: &str, timeout: Duration) -> Result<Json> {
    let (status, body) = http::http_request(addr, "GET", path, &[], b"", timeout)
        .with_context(|| format!("GET http://{addr}{path}"))?;
    if status != 200 {
        bail!("GET http://{addr}{path}: HTTP {status}");
    }
    serde_json::from_str(&body).with_context(|| format!("GET http://{addr}{path}: bad JSON"))
}

/// The latest valid telegram's power from a DSMR stream, read on a thread.
fn follow_dsmr(addr: String) -> Arc<Mutex<Option<f64>>> {
    let latest = Arc::new(Mutex::new(None));
    let shared = latest.clone();
    std::thread::spawn(move || {
        loop {
            if let Err(e) = read_dsmr(&addr, &shared) {
                eprintln!("error DSMR {addr}: {e:#}");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    latest
}

fn read_dsmr(addr: &str, latest: &Mutex<Option<f64>>) -> Result<()> {
    let mut stream = TcpStream::connect(addr).context("connecting")?;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).context("reading")?;
        if n == 0 {
            bail!("closed");
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        // A telegram is complete at the line after its `!`.
        while let Some(bang) = text.find('!') {
            let Some(eol) = text[bang..].find('\n') else {
                break;
            };
            let telegram: String = text.drain(..=bang + eol).collect();
            match telegram::telegram_power(&telegram) {
                Ok(w) => *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(w),
                Err(e) => eprintln!("error DSMR telegram: {e}"),
            }
        }
    }
}

struct Meter {
    kind: MeterKind,
    addr: String,
    token: String,
    cert: Option<PathBuf>,
    dsmr: Option<Arc<Mutex<Option<f64>>>>,
}

impl Meter {
    /// Net grid power now (W, + import); a DSMR reading is used once.
    fn read(&self, timeout: Duration) -> Result<f64> {
        let field = |doc: Json, key: &str| {
            doc[key]
                .as_f64()
                .with_context(|| format!("no {key} from the meter"))
        };
        match self.kind {
            MeterKind::Homewizard => field(
                get_json(&self.addr, "/api/v1/data", timeout)?,
                "active_power_w",
            ),
            MeterKind::ZendureP1 => field(
                get_json(&self.addr, "/properties/report", timeout)?,
                "total_power",
            ),
            MeterKind::HomewizardV2 => {
                let cert = self
                    .cert
                    .as_deref()
                    .context("--cert is needed for homewizard-v2")?;
                let auth = format!("Bearer {}", self.token);
                let headers = [("Authorization", auth.as_str()), ("X-Api-Version", "2")];
                let (status, body) =
                    http::https_get(&self.addr, "/api/measurement", &headers, cert)
                        .with_context(|| format!("GET https://{}/api/measurement", self.addr))?;
                if status != 200 {
                    bail!("HomeWizard v2: HTTP {status}");
                }
                field(
                    serde_json::from_str(&body).context("HomeWizard v2: bad JSON")?,
                    "power_w",
                )
            }
            MeterKind::DsmrTcp => {
                let latest = self.dsmr.as_ref().context("DSMR reader")?;
                latest
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .context("no new telegram")
            }
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let timeout = Duration::from_secs_f64(args.http_timeout);
    let token = token::token(args.token.as_ref(), args.token_file.as_ref())?.unwrap_or_default();
    let meter = Meter {
        kind: args.meter_kind,
        addr: args.meter.clone(),
        token,
        cert: args.cert.clone(),
        dsmr: (args.meter_kind == MeterKind::DsmrTcp).then(|| follow_dsmr(args.meter.clone())),
    };
    let mut current = 0.0;
    let mut sn = args.sn.clone();
    let mut ready = false;
    loop {
        if let Err(e) = cycle(&args, &meter, &mut sn, &mut current, &mut ready, timeout) {
            eprintln!("error {e:#}");
        }
        std::io::stdout().flush()?;
        std::thread::sleep(Duration::from_secs_f64(args.interval));
    }
}

/// One control step: read, decide, write.
fn cycle(
    args: &Args,
    meter: &Meter,
    sn: &mut Option<String>,
    current: &mut f64,
    ready: &mut bool,
    timeout: Duration,
) -> Result<()> {
    let report = get_json(&args.device, "/properties/report", timeout)?;
    if !*ready {
        *ready = true;
        println!("ready");
    }
    let sn = match sn {
        Some(sn) => sn.clone(),
        None => sn
            .insert(
                report["sn"]
                    .as_str()
                    .context("no sn in the report")?
                    .to_string(),
            )
            .clone(),
    };
    let p = &report["properties"];
    let max_charge = p["chargeMaxLimit"].as_f64().context("no chargeMaxLimit")?;
    let max_discharge = p["inverseMaxPower"]
        .as_f64()
        .context("no inverseMaxPower")?;
    let time_of_day = report["timestamp"].as_f64().context("no timestamp")? % 86_400.0;
    let meter_w = meter
        .read(timeout)
        .map_err(|e| eprintln!("error meter: {e:#}"))
        .ok();
    let value = args.schedule.at(time_of_day);
    let Some(w) = next_setpoint(value, *current, meter_w, args, max_charge, max_discharge) else {
        return Ok(());
    };
    let body = json!({"sn": sn, "properties": command(w)}).to_string();
    let (status, answer) = http::http_request(
        &args.device,
        "POST",
        "/properties/write",
        &[],
        body.as_bytes(),
        timeout,
    )
    .with_context(|| format!("POST http://{}/properties/write", args.device))?;
    if status != 200 {
        bail!("write refused: HTTP {status} {answer}");
    }
    *current = w;
    println!("write t={time_of_day} w={w} {body}");
    Ok(())
}
