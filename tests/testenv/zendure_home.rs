//! A simulated home for the Zendure tests, demo and bench: a SolarFlow
//! device on its local HTTP API, a house (load and PV from a profile) and a
//! P1 meter served as all four kinds the product reads, in one process on
//! one simulated clock.
//!
//! # Command line
//! Every duration is in simulated seconds, fractions allowed.
//! ```text
//! zcell-test-zendure-home
//!   [--profile FILE] [--interpolation linear|step]   CSV `seconds,load_w,pv_w` (see zsim/profile.rs);
//!   [--load W] [--pv W]                              without a profile: constant load and PV (300, 0)
//!   [--speed X]          sim seconds per real second (1)
//!   [--start T]          sim time of day to start at: seconds, HH:MM[:SS] or `now` (now, UTC)
//!   [--date YYYY-MM-DD]  the sim day (today, UTC); unix times = its midnight UTC + sim seconds,
//!                        so by default the device's and meters' timestamps are real time at speed 1
//!   [--step S]           sim seconds per simulation step (1)
//!   [--duration S]       stop after S sim seconds: print `finished {STATE}`, exit 0
//!   [--sn SN] [--product NAME]                       (ZSIM0000000001, solarFlow800Pro)
//!   [--capacity-wh WH] [--soc PERCENT]               (1920, 50)
//!   [--soc-set 0.1%] [--min-soc 0.1%]                device cut-offs (1000, 100)
//!   [--charge-max-w W] [--inverse-max-w W]           chargeMaxLimit, inverseMaxPower (1000, 800)
//!   [--idle-w W]         the device's own draw from AC, always (19)
//!   [--ramp S]           a new setpoint is reached linearly in S (3)
//!   [--wake S]           out of standby, power flows S after a non-zero setpoint (5)
//!   [--standby-after S]  at 0 W for S, the device is in standby (30)
//!   [--limit-reset S]    limits drop to 0 W when none was written for S (never)
//!   [--max-body BYTES]   longer write bodies are refused (512)
//!   [--meter-lag S] [--meter-period S]               the meter shows grid(t - lag), refreshed every period (0, 1)
//!   [--token HEX | --token-file FILE]                HomeWizard v2 bearer token (00112233445566778899aabbccddeeff)
//!   [--cert-out FILE]    write the HomeWizard v2 meter's certificate (PEM) here, for clients to pin
//!   [--ca-out FILE]      write the CA that signed it here (the meter's certificate is shaped as a
//!                        real one: CN `appliance/p1dongle/<sn>`, no subjectAltName, CA-signed)
//!   [--trace FILE]       append one JSON line per step (below)
//!   [--schedule SPEC --schedule-file FILE]  publish the value in force (zsim/schedule.rs) at
//!                        sim time as a reference-format schedule, `{"************": VALUE}`,
//!                        rewritten (atomically) when it changes: a real-time controller reading
//!                        FILE follows the sim clock's schedule
//!   [--port-file FILE]   write the readiness JSON here too (atomically)
//! ```
//!
//! # Readiness
//! Once every listener is bound (all on 127.0.0.1, ports chosen by the OS):
//! `ready {"device":"127.0.0.1:P","control":"127.0.0.1:P","homewizard":"127.0.0.1:P",
//! "homewizard_v2":"127.0.0.1:P","zendure_p1":"127.0.0.1:P","dsmr":"127.0.0.1:P",
//! "token":"...","cert":"PATH or null","ca":"PATH or null","sn":"..."}` on stdout, one line.
//!
//! # Device (`device`)
//! `GET /properties/report`, `POST /properties/write` as the Zendure local
//! API (zsim/model.rs). A write answers 200 `{"code":200,"success":true}`;
//! refused (no or wrong `sn`, bad JSON, a value out of range or not an
//! integer) 400 `{"code":400,"success":false,"msg":...}`; a body over
//! `--max-body` bytes 413. Quirks: negative `outputLimit` gives full output;
//! writes without `smartMode: 1` count as flash writes; `acMode` picks the
//! direction; limits reset after `--limit-reset`; ramp, wake-up delay, idle
//! draw, SoC cut-offs at `socSet`/`minSoc` (`socLimit` 1/2). Unknown and
//! read-only properties in a write are ignored. Every write naming
//! `inputLimit` or `outputLimit` counts as a limit write, re-asserts
//! included. The device starts with `acMode` 1, both limits 0 W and
//! `smartMode` 1, not in standby.
//!
//! # Meters (all show the same lagged sample)
//! Their timestamps (Zendure P1 `timestamp`, HomeWizard v2 `timestamp`,
//! DSMR `0-0:1.0.0`) are the sample's: when it was measured, not sent.
//! - `homewizard`: `GET /api/v1/data` (`active_power_w`, `active_power_l1_w`..,
//!   `total_power_import_kwh`, `total_power_export_kwh`), `GET /api`.
//! - `homewizard_v2`: HTTPS; `GET /api/measurement` (`power_w`, `power_l1_w`..,
//!   `energy_import_kwh`, `energy_export_kwh`), `GET /api`; needs
//!   `Authorization: Bearer TOKEN` (else 401) and `X-Api-Version: 2` (else 400).
//! - `zendure_p1`: `GET /properties/report` (`deviceId`, `total_power`,
//!   `a_aprt_power`, `b_aprt_power`, `c_aprt_power`, `timestamp`).
//! - `dsmr`: TCP; every client gets one DSMR 5 telegram per meter period.
//!
//! # Control API (`control`, JSON over HTTP)
//! - `GET /sim/state`: the state (below).
//! - `POST /sim/fault {"meter": M, "device": D}` (either key): M is `none`,
//!   `silent` (HTTP meters never answer, no telegrams), `garbage` (bad JSON;
//!   telegrams with a wrong CRC) or `error` (HTTP 500; telegrams cut before
//!   the CRC); D is `none`, `refuse` (the port is closed: connection
//!   refused), `hang` (accepts, never answers), `garbage` (200 with broken
//!   JSON, writes not applied) or `ignore-writes` (writes answered as
//!   accepted but not applied).
//! - `POST /sim/reset-limits`: the device drops its limits to 0 W now.
//! - `POST /sim/override {"load_w": W|null, "pv_w": W|null}`: pin load or PV
//!   (null returns to the profile).
//! - `POST /sim/soc {"percent": P}`: set the battery's SoC.
//! - `POST /sim/meter {"lag": S, "period": S}` (either key): change the
//!   meter's lag or period from now on (after a longer lag the meter holds
//!   its value until it has that much history).
//!
//! Each answers with the state: `{"t" (sim seconds since midnight of the
//! sim date), "time_of_day", "unix", "load_w", "pv_w", "battery_w"
//! (+ charging), "target_w", "device_ac_w", "grid_w" (+ import), "meter":
//! {"t","grid_w","import_wh","export_wh"} (what the meter shows),
//! "meter_lag", "meter_period", "meter_updates", "soc", "soc_limit",
//! "standby", "device": {writable properties}, "counters": {"writes",
//! "rejected_writes", "ignored_writes", "limit_writes",
//! "direction_changes", "flash_writes", "limit_resets"}, "limit_writes":
//! [{"t","ac_mode","input_limit","output_limit","command_w"}], "faults",
//! "overrides"}`.
//!
//! # Trace (`--trace`)
//! JSON lines. The first: `{"header": {"start", "step", "speed", "date",
//! "schedule" (the --schedule SPEC or null),
//! "capacity_wh", "soc", "soc_set", "min_soc", "charge_max_w",
//! "inverse_max_w", "idle_w", "ramp", "wake", "standby_after", "meter_lag",
//! "meter_period", "device": {the
//! writable properties at the start, as in the state}}}`; then one per
//! step: `{"t", "load_w", "pv_w", "battery_w", "target_w", "grid_w",
//! "meter_w", "soc", "writes": [properties accepted during the step]?}`.
//! Lines are flushed as the clock advances, so a killed simulator leaves a
//! readable trace.

#[path = "zsim/command.rs"]
mod command;
#[path = "zsim/crc.rs"]
mod crc;
#[path = "zsim/dsmr.rs"]
mod dsmr;
#[path = "zsim/model.rs"]
mod model;
#[path = "zsim/profile.rs"]
mod profile;
#[path = "zsim/schedule.rs"]
mod schedule;
#[path = "zsim/time.rs"]
mod time;
#[path = "zsim/token.rs"]
mod token;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};

use model::{Device, DeviceConfig, Home, MeterSample};
use profile::{Interpolation, Profile};
use time::parse_time_of_day;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    profile: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "linear")]
    interpolation: Interpolation,
    #[arg(long, default_value = "300")]
    load: f64,
    #[arg(long, default_value = "0")]
    pv: f64,
    #[arg(long, default_value = "1")]
    speed: f64,
    #[arg(long, default_value = "now", value_parser = parse_start)]
    start: f64,
    #[arg(long)]
    date: Option<NaiveDate>,
    #[arg(long, default_value = "1")]
    step: f64,
    #[arg(long)]
    duration: Option<f64>,
    #[arg(long, default_value = "ZSIM0000000001")]
    sn: String,
    #[arg(long, default_value = "solarFlow800Pro")]
    product: String,
    #[arg(long, default_value = "1920")]
    capacity_wh: f64,
    #[arg(long, default_value = "50")]
    soc: f64,
    #[arg(long, default_value = "1000")]
    soc_set: i64,
    #[arg(long, default_value = "100")]
    min_soc: i64,
    #[arg(long, default_value = "1000")]
    charge_max_w: i64,
    #[arg(long, default_value = "800")]
    inverse_max_w: i64,
    #[arg(long, default_value = "19")]
    idle_w: f64,
    #[arg(long, default_value = "3")]
    ramp: f64,
    #[arg(long, default_value = "5")]
    wake: f64,
    #[arg(long, default_value = "30")]
    standby_after: f64,
    #[arg(long)]
    limit_reset: Option<f64>,
    #[arg(long, default_value = "512")]
    max_body: usize,
    #[arg(long, default_value = "0")]
    meter_lag: f64,
    #[arg(long, default_value = "1")]
    meter_period: f64,
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[arg(long)]
    cert_out: Option<PathBuf>,
    #[arg(long)]
    ca_out: Option<PathBuf>,
    #[arg(long)]
    trace: Option<PathBuf>,
    #[arg(long, requires = "schedule_file")]
    schedule: Option<String>,
    #[arg(long, requires = "schedule")]
    schedule_file: Option<PathBuf>,
    #[arg(long)]
    port_file: Option<PathBuf>,
}

/// A time of day, or `now`: the real time of day (UTC).
fn parse_start(text: &str) -> Result<f64, String> {
    if text == "now" {
        let now = Utc::now();
        let midnight = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        return Ok((now - midnight).as_seconds_f64());
    }
    parse_time_of_day(text)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum MeterFault {
    #[default]
    None,
    Silent,
    Garbage,
    Error,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum DeviceFault {
    #[default]
    None,
    Refuse,
    Hang,
    Garbage,
    IgnoreWrites,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
struct Faults {
    meter: MeterFault,
    device: DeviceFault,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    meter: Option<MeterFault>,
    device: Option<DeviceFault>,
}

struct Shared {
    home: Mutex<Home>,
    faults: watch::Sender<Faults>,
    telegrams: broadcast::Sender<Arc<str>>,
    message_id: AtomicU64,
    midnight_unix: i64,
    token: String,
}

impl Shared {
    fn home(&self) -> MutexGuard<'_, Home> {
        // A panicked handler must not take the simulation down with it.
        self.home.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unix(&self, t: f64) -> f64 {
        self.midnight_unix as f64 + t
    }

    fn time(&self, t: f64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis((self.unix(t) * 1000.0).round() as i64).unwrap_or_default()
    }

    fn faults(&self) -> Faults {
        *self.faults.borrow()
    }

    fn state(&self) -> Value {
        let home = self.home();
        let device = &home.device;
        let c = &device.counters;
        let shown = home.meter.shown();
        json!({
            "t": home.t,
            "time_of_day": format!("{}", self.time(home.t).format("%H:%M:%S")),
            "unix": self.unix(home.t),
            "load_w": home.load_w,
            "pv_w": home.pv_w,
            "battery_w": device.actual_w(),
            "target_w": device.target_w(),
            "device_ac_w": device.ac_w(),
            "grid_w": home.grid_w,
            "meter": {
                "t": shown.t,
                "grid_w": shown.grid_w,
                "import_wh": shown.import_wh,
                "export_wh": shown.export_wh,
            },
            "meter_lag": home.meter.lag,
            "meter_period": home.meter.period,
            "meter_updates": home.meter.updates,
            "soc": device.soc_percent(),
            "soc_limit": device.soc_limit(),
            "standby": device.standby(),
            "device": device.settings(),
            "counters": {
                "writes": c.writes,
                "rejected_writes": c.rejected_writes,
                "ignored_writes": c.ignored_writes,
                "limit_writes": c.limit_writes,
                "direction_changes": c.direction_changes,
                "flash_writes": c.flash_writes,
                "limit_resets": c.limit_resets,
            },
            "limit_writes": device.limit_writes.iter().map(|w| json!({
                "t": w.t,
                "ac_mode": w.ac_mode,
                "input_limit": w.input_limit,
                "output_limit": w.output_limit,
                "command_w": w.command_w,
            })).collect::<Vec<_>>(),
            "faults": self.faults(),
            "overrides": {"load_w": home.overrides.load_w, "pv_w": home.overrides.pv_w},
        })
    }

    /// Waits while `stuck` holds for the current faults (a silent or hung peer).
    async fn wait_while(&self, stuck: impl Fn(&Faults) -> bool) {
        let mut rx = self.faults.subscribe();
        let _ = rx.wait_for(|f| !stuck(f)).await;
    }
}

type App = Arc<Shared>;

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The broken JSON a garbage fault sends.
fn garbage() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        "{\"timestamp\": 17, \"properties\": {\"electricLevel\": ",
    )
        .into_response()
}

// ---- the device ----

fn device_router(app: App) -> Router {
    Router::new()
        .route("/properties/report", get(device_report))
        .route("/properties/write", post(device_write))
        .with_state(app)
}

async fn device_report(State(app): State<App>) -> Response {
    app.wait_while(|f| f.device == DeviceFault::Hang).await;
    if app.faults().device == DeviceFault::Garbage {
        return garbage();
    }
    let id = app.message_id.fetch_add(1, Ordering::Relaxed);
    let home = app.home();
    let report = home.device.report(app.unix(home.t).round() as i64, id);
    json_response(StatusCode::OK, report)
}

async fn device_write(State(app): State<App>, body: Bytes) -> Response {
    app.wait_while(|f| f.device == DeviceFault::Hang).await;
    match app.faults().device {
        DeviceFault::Garbage => return garbage(),
        DeviceFault::IgnoreWrites => {
            app.home().device.counters.ignored_writes += 1;
            return json_response(StatusCode::OK, json!({"code": 200, "success": true}));
        }
        _ => {}
    }
    let mut home = app.home();
    let too_long = body.len() > home.device.cfg.max_body;
    let t = home.t;
    match home.write(&body) {
        Ok(()) => {
            eprintln!(
                "zendure-home: t={t} write {}",
                String::from_utf8_lossy(&body)
            );
            json_response(StatusCode::OK, json!({"code": 200, "success": true}))
        }
        Err(msg) => {
            eprintln!("zendure-home: t={t} refused write: {msg}");
            let status = if too_long {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            json_response(
                status,
                json!({"code": status.as_u16(), "success": false, "msg": msg}),
            )
        }
    }
}

/// Serves the device; while the `refuse` fault holds the port is closed,
/// so connections are refused, and it is bound again when the fault ends.
async fn serve_device(app: App, listener: TcpListener) -> Result<()> {
    let addr = listener.local_addr()?;
    let mut listener = Some(listener);
    let mut faults = app.faults.subscribe();
    loop {
        let current = match listener.take() {
            Some(l) => l,
            None => rebind(addr).await?,
        };
        let mut stop = app.faults.subscribe();
        axum::serve(current, device_router(app.clone()))
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|f| f.device == DeviceFault::Refuse).await;
            })
            .await
            .context("serving the device")?;
        let _ = faults.wait_for(|f| f.device != DeviceFault::Refuse).await;
    }
}

async fn rebind(addr: SocketAddr) -> Result<TcpListener> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if tries < 100 => {
                tries += 1;
                eprintln!("zendure-home: binding {addr} again: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("binding {addr} again")),
        }
    }
}

// ---- the meters ----

/// Answers a meter request from the shown sample, or misbehaves as the
/// meter fault says.
async fn meter_answer(app: &App, body: impl FnOnce(&MeterSample, f64) -> Value) -> Response {
    app.wait_while(|f| f.meter == MeterFault::Silent).await;
    match app.faults().meter {
        MeterFault::Garbage => return garbage(),
        MeterFault::Error => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
        _ => {}
    }
    let sample = app.home().meter.shown();
    json_response(StatusCode::OK, body(&sample, app.unix(sample.t)))
}

/// Per-phase power: the total split over three phases, summing exactly.
fn phases(total: f64) -> [i64; 3] {
    let total = total.round() as i64;
    let a = total / 3;
    [a, a, total - 2 * a]
}

fn kwh(wh: f64) -> f64 {
    wh.round() / 1000.0
}

async fn homewizard_v1(State(app): State<App>) -> Response {
    meter_answer(&app, |s, _| {
        let [l1, l2, l3] = phases(s.grid_w);
        json!({
            "wifi_ssid": "sim",
            "wifi_strength": 100,
            "smr_version": 50,
            "meter_model": "ISKRA 2M550T-1012",
            "unique_id": "00112233445566778899AABBCCDDEEFF",
            "active_tariff": 1,
            "total_power_import_kwh": kwh(s.import_wh),
            "total_power_import_t1_kwh": kwh(s.import_wh),
            "total_power_import_t2_kwh": 0.0,
            "total_power_export_kwh": kwh(s.export_wh),
            "total_power_export_t1_kwh": kwh(s.export_wh),
            "total_power_export_t2_kwh": 0.0,
            "active_power_w": s.grid_w.round() as i64,
            "active_power_l1_w": l1,
            "active_power_l2_w": l2,
            "active_power_l3_w": l3,
        })
    })
    .await
}

async fn homewizard_v1_info() -> Response {
    json_response(
        StatusCode::OK,
        json!({"product_type": "HWE-P1", "product_name": "P1 meter",
               "serial": "5c2faf000000", "firmware_version": "5.18", "api_version": "v1"}),
    )
}

async fn homewizard_v2(State(app): State<App>, headers: HeaderMap) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(&format!("Bearer {}", app.token)) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "user:unauthorized"}),
        );
    }
    if header("x-api-version") != Some("2") {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "request:api-version-not-supported"}),
        );
    }
    meter_answer(&app, |s, unix| {
        let [l1, l2, l3] = phases(s.grid_w);
        let time = DateTime::from_timestamp(unix as i64, 0).unwrap_or_default();
        json!({
            "protocol_version": 50,
            "meter_model": "ISKRA 2M550T-1012",
            "unique_id": "00112233445566778899AABBCCDDEEFF",
            "timestamp": time.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "tariff": 1,
            "energy_import_kwh": kwh(s.import_wh),
            "energy_import_t1_kwh": kwh(s.import_wh),
            "energy_export_kwh": kwh(s.export_wh),
            "energy_export_t1_kwh": kwh(s.export_wh),
            "power_w": s.grid_w.round() as i64,
            "power_l1_w": l1,
            "power_l2_w": l2,
            "power_l3_w": l3,
        })
    })
    .await
}

async fn homewizard_v2_info() -> Response {
    json_response(
        StatusCode::OK,
        json!({"product_type": "HWE-P1", "product_name": "P1 meter",
               "serial": "5c2faf000000", "firmware_version": "6.00", "api_version": "2.0.0"}),
    )
}

async fn zendure_p1(State(app): State<App>) -> Response {
    meter_answer(&app, |s, unix| {
        let [a, b, c] = phases(s.grid_w);
        json!({
            "deviceId": "ZSIMP1000001",
            "total_power": s.grid_w.round() as i64,
            "a_aprt_power": a,
            "b_aprt_power": b,
            "c_aprt_power": c,
            "timestamp": unix as i64,
        })
    })
    .await
}

/// The HomeWizard v2 listener: TLS over TCP with the generated certificate.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("zendure-home: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let handshake = self.acceptor.accept(stream);
            match tokio::time::timeout(Duration::from_secs(5), handshake).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => eprintln!("zendure-home: TLS handshake from {addr}: {e}"),
                Err(_) => eprintln!("zendure-home: TLS handshake from {addr} timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The meter's certificate and its CA, PEM.
struct Pems {
    meter: String,
    ca: String,
}

/// A certificate shaped as a HomeWizard v2 meter's: signed by a CA of its
/// maker, naming the appliance and its serial, no subjectAltName (so it
/// is valid for no address a client can reach it by).
fn tls_acceptor(sn: &str) -> Result<(tokio_rustls::TlsAcceptor, Pems)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().context("the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::new()).context("the CA")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Appliance Access CA (simulated)");
    let ca = ca_params.self_signed(&ca_key).context("signing the CA")?;
    let issuer = Issuer::new(ca_params, ca_key);
    let meter_key = KeyPair::generate().context("the meter key")?;
    let mut meter_params = CertificateParams::new(Vec::new()).context("the meter certificate")?;
    meter_params.distinguished_name.push(
        DnType::CommonName,
        format!("appliance/p1dongle/{}", sn.to_lowercase()),
    );
    let meter = meter_params
        .signed_by(&meter_key, &issuer)
        .context("signing the meter certificate")?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(meter_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(vec![meter.der().clone()], key)
        .context("TLS server certificate")?;
    let pems = Pems {
        meter: meter.pem(),
        ca: ca.pem(),
    };
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), pems))
}

/// Sends every telegram to every connected client.
async fn serve_dsmr(app: App, listener: TcpListener) {
    loop {
        let Ok((mut stream, addr)) = listener.accept().await else {
            continue;
        };
        let mut telegrams = app.telegrams.subscribe();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            loop {
                match telegrams.recv().await {
                    Ok(t) => {
                        if stream.write_all(t.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
            eprintln!("zendure-home: DSMR client {addr} left");
        });
    }
}

// ---- the control API ----

fn control_router(app: App) -> Router {
    Router::new()
        .route(
            "/sim/state",
            get(|State(app): State<App>| async move { axum::Json(app.state()) }),
        )
        .route("/sim/fault", post(control_fault))
        .route("/sim/reset-limits", post(control_reset_limits))
        .route("/sim/override", post(control_override))
        .route("/sim/soc", post(control_soc))
        .route("/sim/meter", post(control_meter))
        .with_state(app)
}

/// A control request the simulator cannot follow: 400 with the reason.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        json_response(StatusCode::BAD_REQUEST, json!({"error": self.0}))
    }
}

fn bad_request(msg: impl std::fmt::Display) -> BadRequest {
    BadRequest(msg.to_string())
}

/// A control request's JSON body, or why it is refused.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    serde_json::from_slice(body).map_err(bad_request)
}

/// What every control request answers: the state after it.
type StateAnswer = Result<axum::Json<Value>, BadRequest>;

async fn control_fault(State(app): State<App>, body: Bytes) -> StateAnswer {
    let request: FaultRequest = parse(&body)?;
    app.faults.send_modify(|f| {
        if let Some(m) = request.meter {
            f.meter = m;
        }
        if let Some(d) = request.device {
            f.device = d;
        }
    });
    eprintln!("zendure-home: faults now {:?}", app.faults());
    Ok(axum::Json(app.state()))
}

async fn control_reset_limits(State(app): State<App>) -> StateAnswer {
    {
        let mut home = app.home();
        let t = home.t;
        home.device.reset_limits(t);
    }
    Ok(axum::Json(app.state()))
}

async fn control_override(State(app): State<App>, body: Bytes) -> StateAnswer {
    let doc: Value = parse(&body)?;
    let Some(object) = doc.as_object() else {
        return Err(bad_request("expected an object"));
    };
    let mut changes = Vec::new();
    for (key, value) in object {
        let w = match value {
            Value::Null => None,
            v => match v.as_f64() {
                Some(w) if w >= 0.0 => Some(w),
                _ => return Err(bad_request(format!("{key}: expected W >= 0 or null"))),
            },
        };
        match key.as_str() {
            "load_w" | "pv_w" => changes.push((key.clone(), w)),
            _ => return Err(bad_request(format!("unknown key {key}"))),
        }
    }
    {
        let mut home = app.home();
        for (key, w) in changes {
            if key == "load_w" {
                home.overrides.load_w = w;
            } else {
                home.overrides.pv_w = w;
            }
        }
    }
    Ok(axum::Json(app.state()))
}

async fn control_soc(State(app): State<App>, body: Bytes) -> StateAnswer {
    let doc: Value = parse(&body)?;
    let Some(percent) = doc.get("percent").and_then(Value::as_f64) else {
        return Err(bad_request("expected {\"percent\": P}"));
    };
    app.home().device.set_soc_percent(percent);
    Ok(axum::Json(app.state()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterRequest {
    lag: Option<f64>,
    period: Option<f64>,
}

async fn control_meter(State(app): State<App>, body: Bytes) -> StateAnswer {
    let request: MeterRequest = parse(&body)?;
    if request.lag.is_some_and(|l| l.is_nan() || l < 0.0)
        || request.period.is_some_and(|p| p.is_nan() || p <= 0.0)
    {
        return Err(bad_request("lag must be >= 0 and period > 0"));
    }
    {
        let mut home = app.home();
        if let Some(lag) = request.lag {
            home.meter.lag = lag;
        }
        if let Some(period) = request.period {
            home.meter.period = period;
        }
    }
    Ok(axum::Json(app.state()))
}

// ---- the clock ----

/// Advances the simulation with real time, writes the trace and the DSMR
/// telegrams; returns when `duration` has played.
async fn run_clock(
    app: App,
    speed: f64,
    duration: Option<f64>,
    mut trace: Option<std::io::BufWriter<std::fs::File>>,
    mut schedule: Option<SchedulePublisher>,
) -> Result<()> {
    let step = app.home().step;
    let begun = Instant::now();
    let mut done: u64 = 0;
    let tick = Duration::from_secs_f64((step / speed).max(0.001));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let mut due = (begun.elapsed().as_secs_f64() * speed / step) as u64;
        if let Some(d) = duration {
            due = due.min((d / step).round() as u64);
        }
        let mut lines = String::new();
        let mut telegrams = Vec::new();
        let now = {
            let mut home = app.home();
            while done < due {
                done += 1;
                let refreshed = home.advance();
                if trace.is_some() {
                    lines.push_str(&home.trace_line().to_string());
                    lines.push('\n');
                } else {
                    home.pending_writes.clear();
                }
                if refreshed && app.telegrams.receiver_count() > 0 {
                    let spoil = match app.faults().meter {
                        MeterFault::Silent => continue,
                        MeterFault::None => dsmr::Spoil::None,
                        MeterFault::Garbage => dsmr::Spoil::Crc,
                        MeterFault::Error => dsmr::Spoil::Truncated,
                    };
                    let shown = home.meter.shown();
                    telegrams.push(dsmr::telegram(&shown, app.time(shown.t), spoil));
                }
            }
            home.t
        };
        if let Some(publisher) = schedule.as_mut() {
            publisher.publish(now)?;
        }
        if let Some(out) = trace.as_mut() {
            out.write_all(lines.as_bytes())
                .context("writing the trace")?;
            out.flush().context("writing the trace")?;
        }
        for telegram in telegrams {
            let _ = app.telegrams.send(telegram.into());
        }
        if let Some(d) = duration
            && done as f64 * step >= d - 1e-9
        {
            return Ok(());
        }
    }
}

/// Writes the schedule value in force as a file a controller reads.
struct SchedulePublisher {
    schedule: schedule::Schedule,
    path: PathBuf,
    last: Option<schedule::Value>,
}

impl SchedulePublisher {
    fn publish(&mut self, t: f64) -> Result<()> {
        let value = self.schedule.at(t);
        if self.last == Some(value) {
            return Ok(());
        }
        let json = match value {
            schedule::Value::Watts(w) => json!(w.round() as i64),
            schedule::Value::NetZero => json!("netzero"),
            schedule::Value::NetZeroPlus => json!("netzero+"),
        };
        write_atomically(&self.path, &json!({"************": json}).to_string())?;
        self.last = Some(value);
        Ok(())
    }
}

async fn bind() -> Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")
}

fn write_atomically(path: &PathBuf, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn spawn_serving<L>(name: &'static str, listener: L, router: Router)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("zendure-home: {name}: {e}");
        }
    });
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.speed > 0.0 && args.step > 0.0 && args.meter_period > 0.0 && args.meter_lag >= 0.0) {
        bail!("--speed, --step and --meter-period must be > 0 and --meter-lag >= 0");
    }
    let token = token::token(args.token.as_ref(), args.token_file.as_ref())?
        .unwrap_or_else(|| "00112233445566778899aabbccddeeff".to_string());
    let profile = match &args.profile {
        Some(path) => Profile::read(path, args.interpolation)?,
        None => Profile::constant(args.load, args.pv),
    };
    let cfg = DeviceConfig {
        sn: args.sn.clone(),
        product: args.product.clone(),
        capacity_wh: args.capacity_wh,
        charge_max_w: args.charge_max_w,
        inverse_max_w: args.inverse_max_w,
        idle_w: args.idle_w,
        ramp: args.ramp,
        wake: args.wake,
        standby_after: args.standby_after,
        limit_reset: args.limit_reset,
        max_body: args.max_body,
    };
    let device = Device::new(cfg, args.soc, args.soc_set, args.min_soc, args.start);
    let home = Home::new(
        args.start,
        args.step,
        device,
        profile,
        args.meter_lag,
        args.meter_period,
    );
    let date = args.date.unwrap_or_else(|| Utc::now().date_naive());
    let midnight_unix = date
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp();
    let mut trace = match &args.trace {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening trace {}", path.display()))?,
        )),
        None => None,
    };
    if let Some(out) = trace.as_mut() {
        let header = json!({"header": {
            "start": args.start,
            "step": args.step,
            "speed": args.speed,
            "date": date.to_string(),
            "schedule": args.schedule,
            "capacity_wh": args.capacity_wh,
            "soc": args.soc,
            "soc_set": args.soc_set,
            "min_soc": args.min_soc,
            "charge_max_w": args.charge_max_w,
            "inverse_max_w": args.inverse_max_w,
            "idle_w": args.idle_w,
            "ramp": args.ramp,
            "wake": args.wake,
            "standby_after": args.standby_after,
            "meter_lag": args.meter_lag,
            "meter_period": args.meter_period,
            "device": home.device.settings(),
        }});
        writeln!(out, "{header}").context("writing the trace")?;
        out.flush().context("writing the trace")?;
    }

    let (faults, _) = watch::channel(Faults::default());
    let (telegrams, _) = broadcast::channel(64);
    let app: App = Arc::new(Shared {
        home: Mutex::new(home),
        faults,
        telegrams,
        message_id: AtomicU64::new(1),
        midnight_unix,
        token: token.clone(),
    });

    let (acceptor, pems) = tls_acceptor(&args.sn)?;
    if let Some(path) = &args.cert_out {
        write_atomically(path, &pems.meter)?;
    }
    if let Some(path) = &args.ca_out {
        write_atomically(path, &pems.ca)?;
    }
    let device = bind().await?;
    let control = bind().await?;
    let hw1 = bind().await?;
    let hw2 = bind().await?;
    let p1 = bind().await?;
    let dsmr = bind().await?;
    let ports = json!({
        "device": device.local_addr()?.to_string(),
        "control": control.local_addr()?.to_string(),
        "homewizard": hw1.local_addr()?.to_string(),
        "homewizard_v2": hw2.local_addr()?.to_string(),
        "zendure_p1": p1.local_addr()?.to_string(),
        "dsmr": dsmr.local_addr()?.to_string(),
        "token": token,
        "cert": args.cert_out.as_ref().map(|p| p.display().to_string()),
        "ca": args.ca_out.as_ref().map(|p| p.display().to_string()),
        "sn": args.sn,
    });

    let device_app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = serve_device(device_app, device).await {
            eprintln!("zendure-home: {e:#}");
            std::process::exit(1);
        }
    });
    spawn_serving("control", control, control_router(app.clone()));
    spawn_serving(
        "homewizard",
        hw1,
        Router::new()
            .route("/api/v1/data", get(homewizard_v1))
            .route("/api", get(homewizard_v1_info))
            .with_state(app.clone()),
    );
    spawn_serving(
        "homewizard v2",
        TlsListener { tcp: hw2, acceptor },
        Router::new()
            .route("/api/measurement", get(homewizard_v2))
            .route("/api", get(homewizard_v2_info))
            .with_state(app.clone()),
    );
    spawn_serving(
        "zendure p1",
        p1,
        Router::new()
            .route("/properties/report", get(zendure_p1))
            .with_state(app.clone()),
    );
    tokio::spawn(serve_dsmr(app.clone(), dsmr));

    let mut schedule = match (&args.schedule, &args.schedule_file) {
        (Some(spec), Some(path)) => Some(SchedulePublisher {
            schedule: spec.parse()?,
            path: path.clone(),
            last: None,
        }),
        _ => None,
    };
    if let Some(publisher) = schedule.as_mut() {
        publisher.publish(args.start)?;
    }
    if let Some(path) = &args.port_file {
        write_atomically(path, &ports.to_string())?;
    }
    println!("ready {ports}");
    std::io::stdout().flush()?;

    run_clock(app.clone(), args.speed, args.duration, trace, schedule).await?;
    println!("finished {}", app.state());
    std::io::stdout().flush()?;
    Ok(())
}
