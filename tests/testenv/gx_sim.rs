//! A simulated Victron GX settings service for the tests and the demo.
//!
//! Owns `com.victronenergy.settings` on the bus it is given and behaves as
//! localsettings does: typed settings with coercion, min/max refusal (-1),
//! no write and no signal for an unchanged value, group `GetValue` dicts,
//! `GetItems` on `/`, `PropertiesChanged` after a real change, and
//! `UnknownObject` for paths it does not have. It starts with the 25 slot
//! settings (20 with --no-allow-discharge, as firmware before mid-2022
//! has) and the Dynamic ESS settings (48 windows) that dbus-systemcalc-py
//! creates, the time zone and a few other ESS settings, prints `ready` once
//! the name is owned, and records every
//! `SetValue` call and the resulting state in files for tests to read.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value as Json, json};
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedVariant, Variant, interface};

const SERVICE: &str = "com.victronenergy.settings";
const SCHEDULE: &str = "/Settings/CGwacs/BatteryLife/Schedule/Charge";

#[derive(Parser)]
struct Args {
    /// Bus address; default: DBUS_SYSTEM_BUS_ADDRESS.
    #[arg(long)]
    address: Option<String>,
    /// Start with PATH set to VALUE (coerced to the setting's type).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
    /// Leave PATH out, as older firmware would.
    #[arg(long = "omit", value_name = "PATH")]
    omits: Vec<String>,
    /// Old firmware limits: Day in -10..=9.
    #[arg(long)]
    old_day_range: bool,
    /// Firmware without Dynamic ESS: no /Settings/DynamicEss settings.
    #[arg(long)]
    no_dess: bool,
    /// Dynamic ESS windows as VRM leaves them in Auto mode: all 48 set,
    /// consecutive hours from this unix time, each reaching its own
    /// target SoC (applied before --set).
    #[arg(long, value_name = "UNIX_START")]
    vrm_windows: Option<i64>,
    /// Firmware before mid-2022: the slots have no AllowDischarge.
    #[arg(long)]
    no_allow_discharge: bool,
    /// SetValue on PATH always returns -1.
    #[arg(long = "refuse", value_name = "PATH")]
    refuses: Vec<String>,
    /// The Nth SetValue call (from 1) returns -1 and changes nothing.
    #[arg(long, value_name = "N")]
    refuse_call: Option<usize>,
    /// The Nth SetValue call prints `paused N` and never answers.
    #[arg(long, value_name = "N")]
    pause_call: Option<usize>,
    /// At the Nth SetValue call the service exits without answering.
    #[arg(long, value_name = "N")]
    exit_on_call: Option<usize>,
    /// Make PATH a string setting holding VALUE (a wrong type).
    #[arg(long = "string", value_name = "PATH=VALUE")]
    strings: Vec<String>,
    /// Start from the values in the --state file, as localsettings starts
    /// from its settings file after a restart.
    #[arg(long)]
    resume: bool,
    /// JSON object of every setting's value, rewritten after each change.
    #[arg(long)]
    state: Option<PathBuf>,
    /// One JSON line per SetValue call: path, value, result.
    #[arg(long)]
    log: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Val {
    fn variant(&self) -> Variant<'static> {
        match self {
            // localsettings: int32, or int64 past int32's range.
            Val::Int(i) => match i32::try_from(*i) {
                Ok(v) => Variant::I32(v),
                Err(_) => Variant::I64(*i),
            },
            Val::Float(f) => Variant::F64(*f),
            Val::Str(s) => Variant::from(s.clone()),
        }
    }

    /// Python's `str(value)`.
    fn text(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Float(f) if f.fract() == 0.0 && f.is_finite() => format!("{f:.1}"),
            Val::Float(f) => f.to_string(),
            Val::Str(s) => s.clone(),
        }
    }

    fn json(&self) -> Json {
        match self {
            Val::Int(i) => json!(i),
            Val::Float(f) => json!(f),
            Val::Str(s) => json!(s),
        }
    }

    /// localsettings' `convertToType`: Python's int(), float() or str() of
    /// the incoming value; None where Python would raise.
    fn coerce_like(&self, v: &Variant<'_>) -> Option<Val> {
        let v = match v {
            Variant::Variant(inner) => inner.as_ref(),
            other => other,
        };
        let as_f64 = |v: &Variant<'_>| -> Option<f64> {
            Some(match v {
                Variant::U8(n) => f64::from(*n),
                Variant::Bool(b) => f64::from(u8::from(*b)),
                Variant::I16(n) => f64::from(*n),
                Variant::U16(n) => f64::from(*n),
                Variant::I32(n) => f64::from(*n),
                Variant::U32(n) => f64::from(*n),
                Variant::I64(n) => *n as f64,
                Variant::U64(n) => *n as f64,
                Variant::F64(f) => *f,
                _ => return None,
            })
        };
        match self {
            Val::Int(_) => match v {
                Variant::I64(n) => Some(Val::Int(*n)),
                Variant::U64(n) => i64::try_from(*n).ok().map(Val::Int),
                Variant::Str(s) => {
                    let t = s.as_str().trim().replace('_', "");
                    t.parse::<i64>().ok().map(Val::Int)
                }
                other => as_f64(other)
                    .filter(|f| f.is_finite())
                    .map(|f| Val::Int(f.trunc() as i64)),
            },
            Val::Float(_) => match v {
                Variant::Str(s) => s.as_str().trim().parse().ok().map(Val::Float),
                other => as_f64(other).map(Val::Float),
            },
            Val::Str(_) => match v {
                Variant::Str(s) => Some(Val::Str(s.to_string())),
                Variant::Bool(b) => Some(Val::Str(if *b { "True" } else { "False" }.into())),
                other => as_f64(other).map(|_| Val::Str(other.to_string())),
            },
        }
    }

    fn less(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::Int(a), Val::Int(b)) => a < b,
            (Val::Float(a), Val::Float(b)) => a < b,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Setting {
    value: Val,
    default: Val,
    min: Option<Val>,
    max: Option<Val>,
}

impl Setting {
    fn int(default: i64, range: Option<(i64, i64)>) -> Setting {
        Setting {
            value: Val::Int(default),
            default: Val::Int(default),
            min: range.map(|r| Val::Int(r.0)),
            max: range.map(|r| Val::Int(r.1)),
        }
    }

    fn float(default: f64, range: (f64, f64)) -> Setting {
        Setting {
            value: Val::Float(default),
            default: Val::Float(default),
            min: Some(Val::Float(range.0)),
            max: Some(Val::Float(range.1)),
        }
    }
}

/// What the Nth SetValue call does besides the usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Refuse,
    Pause,
    Exit,
}

struct Store {
    settings: BTreeMap<String, Setting>,
    refuse: Vec<String>,
    calls: usize,
    faults: BTreeMap<usize, Fault>,
    state: Option<PathBuf>,
    log: Option<PathBuf>,
}

type Shared = Arc<Mutex<Store>>;

impl Store {
    fn dump(&self) -> Result<()> {
        let Some(path) = &self.state else {
            return Ok(());
        };
        let doc: serde_json::Map<String, Json> = self
            .settings
            .iter()
            .map(|(p, s)| (p.clone(), s.value.json()))
            .collect();
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)?;
        fs::rename(&tmp, path)?;
        Ok(())
    }

    fn record(&self, path: &str, value: &Variant<'_>, result: i32) {
        let Some(log) = &self.log else { return };
        let line = json!({"path": path, "value": value.to_string(), "result": result});
        let appended = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            eprintln!("gx-sim: cannot append to {}: {e}", log.display());
        }
    }

    /// Counts a SetValue call and says which fault, if any, it meets.
    fn next_call(&mut self) -> (usize, Fault) {
        self.calls += 1;
        let fault = self.faults.get(&self.calls).copied().unwrap_or(Fault::None);
        (self.calls, fault)
    }

    /// `SetValue` as localsettings does it; Some(new value) when it changed.
    fn set(&mut self, path: &str, value: &Variant<'_>, refused: bool) -> (i32, Option<Val>) {
        let setting = self
            .settings
            .get_mut(path)
            .expect("objects exist only for settings");
        let refused = refused || self.refuse.iter().any(|p| p == path);
        let outcome = match setting.value.coerce_like(value) {
            _ if refused => (-1, None),
            None => (-1, None),
            Some(v) if setting.min.as_ref().is_some_and(|min| v.less(min)) => (-1, None),
            Some(v) if setting.max.as_ref().is_some_and(|max| max.less(&v)) => (-1, None),
            Some(v) if v == setting.value => (0, None),
            Some(v) => {
                setting.value = v.clone();
                (0, Some(v))
            }
        };
        self.record(path, value, outcome.0);
        if outcome.1.is_some()
            && let Err(e) = self.dump()
        {
            eprintln!("gx-sim: cannot write the state file: {e:#}");
        }
        outcome
    }

    /// Everything below `group`, keyed by path relative to it.
    fn below(&self, group: &str) -> impl Iterator<Item = (String, &Setting)> {
        let prefix = if group == "/" {
            "/".to_string()
        } else {
            format!("{group}/")
        };
        self.settings
            .iter()
            .filter_map(move |(p, s)| p.strip_prefix(&prefix).map(|rel| (rel.to_string(), s)))
    }
}

fn owned(v: Variant<'_>) -> zbus::fdo::Result<OwnedVariant> {
    v.try_to_owned()
        .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
}

struct SettingItem {
    path: String,
    store: Shared,
}

#[interface(name = "com.victronenergy.BusItem")]
impl SettingItem {
    fn get_value(&self) -> zbus::fdo::Result<OwnedVariant> {
        let store = self.store.lock().expect("store lock");
        owned(store.settings[&self.path].value.variant())
    }

    fn get_text(&self) -> String {
        self.store.lock().expect("store lock").settings[&self.path]
            .value
            .text()
    }

    async fn set_value(
        &self,
        value: OwnedVariant,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> i32 {
        let (call, fault) = self.store.lock().expect("store lock").next_call();
        match fault {
            Fault::Pause => {
                println!("paused {call}");
                let _ = std::io::stdout().flush();
                std::future::pending::<()>().await;
            }
            Fault::Exit => std::process::exit(0),
            Fault::None | Fault::Refuse => {}
        }
        let (code, changed) =
            self.store
                .lock()
                .expect("store lock")
                .set(&self.path, &value, fault == Fault::Refuse);
        if let Some(v) = changed {
            let mut change = HashMap::new();
            change.insert("Value", v.variant());
            change.insert("Text", Variant::from(v.text()));
            if let Err(e) = Self::properties_changed(&emitter, change).await {
                eprintln!("gx-sim: PropertiesChanged on {}: {e}", self.path);
            }
        }
        code
    }

    fn get_min(&self) -> zbus::fdo::Result<OwnedVariant> {
        let store = self.store.lock().expect("store lock");
        let min = store.settings[&self.path].min.clone();
        owned(min.map_or(Variant::I32(0), |m| m.variant()))
    }

    fn get_max(&self) -> zbus::fdo::Result<OwnedVariant> {
        let store = self.store.lock().expect("store lock");
        let max = store.settings[&self.path].max.clone();
        owned(max.map_or(Variant::I32(0), |m| m.variant()))
    }

    fn get_default(&self) -> zbus::fdo::Result<OwnedVariant> {
        let store = self.store.lock().expect("store lock");
        owned(store.settings[&self.path].default.variant())
    }

    #[zbus(signal)]
    async fn properties_changed(
        emitter: &SignalEmitter<'_>,
        changes: HashMap<&str, Variant<'_>>,
    ) -> zbus::Result<()>;
}

struct GroupItem {
    path: String,
    store: Shared,
}

impl GroupItem {
    fn dict(&self, f: impl Fn(&Setting) -> Variant<'static>) -> zbus::fdo::Result<OwnedVariant> {
        let store = self.store.lock().expect("store lock");
        let map: HashMap<String, Variant<'static>> = store
            .below(&self.path)
            .map(|(rel, s)| (rel, f(s)))
            .collect();
        owned(Variant::from(map))
    }
}

#[interface(name = "com.victronenergy.BusItem")]
impl GroupItem {
    fn get_value(&self) -> zbus::fdo::Result<OwnedVariant> {
        self.dict(|s| s.value.variant())
    }

    fn get_text(&self) -> zbus::fdo::Result<OwnedVariant> {
        self.dict(|s| Variant::from(s.value.text()))
    }

    /// Only `/` has this in localsettings; harmless on other groups.
    fn get_items(&self) -> HashMap<String, HashMap<String, OwnedVariant>> {
        let store = self.store.lock().expect("store lock");
        store
            .settings
            .iter()
            .filter(|(p, _)| self.path == "/" || p.starts_with(&format!("{}/", self.path)))
            .map(|(p, s)| {
                let mut props = HashMap::new();
                let mut put = |k: &str, v: Variant<'static>| {
                    if let Ok(v) = v.try_to_owned() {
                        props.insert(k.to_string(), v);
                    }
                };
                put("Value", s.value.variant());
                put("Text", Variant::from(s.value.text()));
                put("Default", s.default.variant());
                if let Some(min) = &s.min {
                    put("Min", min.variant());
                }
                if let Some(max) = &s.max {
                    put("Max", max.variant());
                }
                (p.clone(), props)
            })
            .collect()
    }
}

/// The Dynamic ESS settings exactly as dbus-systemcalc-py's
/// `delegates/dynamicess.py` (`DynamicEss.get_settings`) creates them:
/// name, default, min, max; min = max = 0 means unbounded.
fn dynamic_ess() -> BTreeMap<String, Setting> {
    const DESS: &str = "/Settings/DynamicEss";
    let int =
        |default, min, max| Setting::int(default, ((min, max) != (0, 0)).then_some((min, max)));
    let mut s = BTreeMap::new();
    let top: [(&str, Setting); 10] = [
        ("Mode", int(0, 0, 4)),
        ("BatteryCapacity", Setting::float(0.0, (0.0, 1000.0))),
        ("SystemEfficiency", Setting::float(90.0, (50.0, 100.0))),
        ("FullChargeInterval", int(14, -1, 99)),
        ("FullChargeDuration", int(2, -1, 12)),
        ("OperatingMode", int(-1, -1, 2)),
        ("BatteryChargeLimit", Setting::float(-1.0, (-1.0, 9999.9))),
        (
            "BatteryDischargeLimit",
            Setting::float(-1.0, (-1.0, 9999.9)),
        ),
        ("GridImportLimit", Setting::float(-1.0, (-1.0, 9999.9))),
        ("GridExportLimit", Setting::float(-1.0, (-1.0, 9999.9))),
    ];
    for (name, setting) in top {
        s.insert(format!("{DESS}/{name}"), setting);
    }
    // 48 windows; Restrictions and Flags reach the sum of their flags (3).
    for n in 0..48 {
        let window: [(&str, Setting); 8] = [
            ("Start", int(0, 0, 0)),
            ("Duration", int(0, 0, 0)),
            ("TargetSoc", Setting::float(0.0, (0.0, 100.0))),
            ("Soc", int(0, 0, 100)),
            ("AllowGridFeedIn", int(0, 0, 1)),
            ("Restrictions", int(0, 0, 3)),
            ("Strategy", int(0, 0, 3)),
            ("Flags", int(0, 0, 3)),
        ];
        for (name, setting) in window {
            s.insert(format!("{DESS}/Schedule/{n}/{name}"), setting);
        }
    }
    s
}

/// The settings a GX has before any owner change, as far as zcell-sched cares.
/// The settings a GX has before any owner change, as far as zcell-sched cares.
fn initial(old_day_range: bool, dess: bool, allow_discharge: bool) -> BTreeMap<String, Setting> {
    let mut s = if dess { dynamic_ess() } else { BTreeMap::new() };
    let day_range = if old_day_range { (-10, 9) } else { (-11, 11) };
    for n in 0..5 {
        let leaf = |name: &str| format!("{SCHEDULE}/{n}/{name}");
        s.insert(leaf("Day"), Setting::int(-7, Some(day_range)));
        s.insert(leaf("Start"), Setting::int(0, None));
        s.insert(leaf("Duration"), Setting::int(0, None));
        s.insert(leaf("Soc"), Setting::int(100, Some((0, 100))));
        if allow_discharge {
            s.insert(leaf("AllowDischarge"), Setting::int(0, Some((0, 1))));
        }
    }
    s.insert(
        "/Settings/System/TimeZone".into(),
        Setting {
            value: Val::Str("/UTC".into()),
            default: Val::Str("/UTC".into()),
            min: None,
            max: None,
        },
    );
    s.insert(
        "/Settings/CGwacs/BatteryLife/MinimumSocLimit".into(),
        Setting::int(10, Some((0, 100))),
    );
    s.insert(
        "/Settings/CGwacs/AcPowerSetPoint".into(),
        Setting {
            value: Val::Float(50.0),
            default: Val::Float(50.0),
            min: None,
            max: None,
        },
    );
    s.insert(
        "/Settings/CGwacs/Hub4Mode".into(),
        Setting::int(1, Some((0, 3))),
    );
    // ESS mode (9 = Keep batteries charged) and "DC-coupled PV: feed in
    // excess", which Dynamic ESS depends on; set by the GUI, not by
    // dbus-systemcalc-py (ranges as the GUI offers them).
    s.insert(
        "/Settings/CGwacs/BatteryLife/State".into(),
        Setting::int(2, Some((0, 12))),
    );
    s.insert(
        "/Settings/CGwacs/OvervoltageFeedIn".into(),
        Setting::int(1, Some((0, 1))),
    );
    s
}

fn vrm_windows(settings: &mut BTreeMap<String, Setting>, start: i64) -> Result<()> {
    for n in 0..48 {
        let soc = 30 + n % 8 * 10;
        let leaves = [
            ("Start", Val::Int(start + n * 3600)),
            ("Duration", Val::Int(3600)),
            ("TargetSoc", Val::Float(soc as f64)),
            ("Soc", Val::Int(soc)),
            ("Strategy", Val::Int(0)),
            ("AllowGridFeedIn", Val::Int(1)),
        ];
        for (leaf, value) in leaves {
            let path = format!("/Settings/DynamicEss/Schedule/{n}/{leaf}");
            settings
                .get_mut(&path)
                .with_context(|| format!("--vrm-windows: no {path}"))?
                .value = value;
        }
    }
    Ok(())
}

fn groups_of(paths: &[String]) -> Vec<String> {
    let mut groups: Vec<String> = vec!["/".into()];
    for p in paths {
        let mut cut = p.as_str();
        while let Some((parent, _)) = cut.rsplit_once('/') {
            if parent.is_empty() {
                break;
            }
            groups.push(parent.to_string());
            cut = parent;
        }
    }
    groups.sort();
    groups.dedup();
    groups
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut settings = initial(args.old_day_range, !args.no_dess, !args.no_allow_discharge);
    for path in &args.omits {
        settings
            .remove(path)
            .with_context(|| format!("--omit {path}: no such setting"))?;
    }
    if let Some(start) = args.vrm_windows {
        vrm_windows(&mut settings, start)?;
    }
    for set in &args.sets {
        let (path, raw) = set
            .split_once('=')
            .with_context(|| format!("--set {set}: use PATH=VALUE"))?;
        let setting = settings
            .get_mut(path)
            .with_context(|| format!("--set {set}: no such setting"))?;
        setting.value = setting
            .value
            .coerce_like(&Variant::from(raw.to_string()))
            .with_context(|| format!("--set {set}: wrong type"))?;
    }
    for string in &args.strings {
        let (path, raw) = string
            .split_once('=')
            .with_context(|| format!("--string {string}: use PATH=VALUE"))?;
        let setting = settings
            .get_mut(path)
            .with_context(|| format!("--string {string}: no such setting"))?;
        setting.value = Val::Str(raw.to_string());
        setting.default = Val::Str(String::new());
        (setting.min, setting.max) = (None, None);
    }
    if args.resume
        && let Some(state) = &args.state
        && state.exists()
    {
        let saved: serde_json::Map<String, Json> = serde_json::from_slice(&fs::read(state)?)?;
        for (path, value) in saved {
            if let Some(setting) = settings.get_mut(&path) {
                setting.value = match value {
                    Json::Number(n) if n.is_i64() => Val::Int(n.as_i64().expect("i64")),
                    Json::Number(n) => Val::Float(n.as_f64().expect("f64")),
                    Json::String(s) => Val::Str(s),
                    other => bail!("{path} = {other} in {}", state.display()),
                };
            }
        }
    }
    let faults = [
        (args.refuse_call, Fault::Refuse),
        (args.pause_call, Fault::Pause),
        (args.exit_on_call, Fault::Exit),
    ]
    .into_iter()
    .filter_map(|(n, fault)| n.map(|n| (n, fault)))
    .collect();
    let paths: Vec<String> = settings.keys().cloned().collect();
    let store: Shared = Arc::new(Mutex::new(Store {
        settings,
        refuse: args.refuses,
        calls: 0,
        faults,
        state: args.state,
        log: args.log,
    }));
    store.lock().expect("store lock").dump()?;

    let builder = match &args.address {
        Some(a) => zbus::connection::Builder::address(a.as_str()),
        None => zbus::connection::Builder::system(),
    };
    let conn: Connection = builder.build().await.context("connecting to the bus")?;
    let server = conn.object_server();
    for path in &paths {
        let item = SettingItem {
            path: path.clone(),
            store: store.clone(),
        };
        server.at(path.as_str(), item).await?;
    }
    for group in groups_of(&paths) {
        if paths.contains(&group) {
            bail!("{group} is both a setting and a group");
        }
        let item = GroupItem {
            path: group.clone(),
            store: store.clone(),
        };
        server.at(group.as_str(), item).await?;
    }
    // Objects first, then the name: a client that sees the name finds them all.
    conn.request_name(SERVICE)
        .await
        .context("owning the name")?;
    println!("ready");
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}
