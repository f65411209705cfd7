//! The Zendure bench's figures, from a trace of the simulated home
//! (`zcell-test-zendure-home --trace`), as one JSON document on stdout.
//!
//! # Command line
//! ```text
//! zcell-test-zendure-metrics --trace FILE
//!   [--schedule SPEC]            what the controller was told to do, zsim/schedule.rs
//!                                (the trace header's, else 0=netzero)
//!   [--min-write-interval S]     (10)
//!   [--min-soc PERCENT] [--max-soc PERCENT]   the ideal's SoC bounds (the device's minSoc/socSet)
//!   [--flip-w W] [--settle S] [--flip-window S]       (50, 60, 300)
//!   [--step-w W] [--step-window S]                    (100, 10)
//!   [--min-direction-change S] [--oracle-step-w W]    the oracles' write rules (60, 20)
//!   [--interval S]               the controller's control period, for the polled oracle (2)
//!   [--reversal-window S] [--wrong-way-w W]           (30, 100)
//! ```
//! Durations are sim seconds.
//!
//! # Output
//! ```text
//! {"duration_s", "actual": {"import_kwh", "export_kwh"},
//!  "ideal": {"import_kwh", "export_kwh"},
//!  "excess_import_kwh", "excess_export_kwh", "excess_kwh",
//!  "writes", "limit_writes", "flash_writes", "direction_changes",
//!  "direction_changes_per_day", "max_overshoot_w", "overshoot_wh",
//!  "flips", "max_flips_in_window", "load_pv_steps",
//!  "max_limit_writes_per_interval", "limit_writes_closer_than_interval",
//!  "nonzero_writes_closer_than_interval", "reversals", "wrong_way_s",
//!  "oracle": {"instant"|"lagged"|"polled": {"lag_s", "period_s",
//!  "interval_s", "excess_kwh", "writes", "reversals", "wrong_way_s"}}}
//! ```
//! - The ideal is a shadow battery that follows the schedule perfectly and
//!   at once, within the device's power limits and the SoC bounds, with the
//!   same idle draw: for NetZero it cancels the net grid power, for
//!   NetZero+ only export, for a fixed W it runs that W. Excess = actual
//!   grid energy minus the ideal's, per direction.
//! - Overshoot (NetZero modes): how far the battery pushed the grid past
//!   zero in one step: discharging while exporting (NetZero only) or
//!   charging while importing, at most the battery's power.
//! - A command is the signed battery power a limit write asks for (the
//!   device's rules). A flip: two successive command changes of at least
//!   `--flip-w`, in opposite directions, with no load or PV step between
//!   them, the first at least `--settle` after the last step. A step: load
//!   or PV moving `--step-w` or more within `--step-window`.
//! - The write interval paces changes of command; limit writes of 0 W are
//!   exempt, and so is a write that repeats the command in force (it
//!   changes no setpoint): `max_limit_writes_per_interval` counts the
//!   non-zero changes in any `--min-write-interval` window,
//!   `limit_writes_closer_than_interval` the non-zero changes written
//!   sooner than that after any change (one to 0 W included),
//!   `nonzero_writes_closer_than_interval` those sooner than that after
//!   the last non-zero change.
//! - Reversals: a command, then 0 W, then the same direction again, all
//!   within `--reversal-window`. Wrong-way seconds (NetZero modes):
//!   discharging while the grid exports more than `--wrong-way-w`, or
//!   charging while it imports more than that.
//! - Oracles (zsim/oracle.rs): the same device model and write rules,
//!   driven by the house's true consumption now ("instant") or as it was
//!   the meter's lag ago ("lagged"), or as the meter shows it (lag and
//!   update period) read every `--interval` ("polled"); the header gives
//!   the device's ramp, wake-up and standby and the meter's lag and period.

#[path = "zsim/command.rs"]
mod command;
// The oracles drive the home's device model; its house and meter stay unused.
#[allow(dead_code)]
#[path = "zsim/model.rs"]
mod model;
#[path = "zsim/oracle.rs"]
mod oracle;
#[allow(dead_code)]
#[path = "zsim/profile.rs"]
mod profile;
#[path = "zsim/schedule.rs"]
mod schedule;
#[path = "zsim/time.rs"]
mod time;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde_json::{Value as Json, json};

use schedule::{Schedule, Value};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    trace: PathBuf,
    #[arg(long)]
    schedule: Option<Schedule>,
    #[arg(long, default_value = "10")]
    min_write_interval: f64,
    #[arg(long)]
    min_soc: Option<f64>,
    #[arg(long)]
    max_soc: Option<f64>,
    #[arg(long, default_value = "50")]
    flip_w: f64,
    #[arg(long, default_value = "60")]
    settle: f64,
    #[arg(long, default_value = "300")]
    flip_window: f64,
    #[arg(long, default_value = "100")]
    step_w: f64,
    #[arg(long, default_value = "10")]
    step_window: f64,
    #[arg(long, default_value = "60")]
    min_direction_change: f64,
    #[arg(long, default_value = "20")]
    oracle_step_w: f64,
    #[arg(long, default_value = "2")]
    interval: f64,
    #[arg(long, default_value = "30")]
    reversal_window: f64,
    #[arg(long, default_value = "100")]
    wrong_way_w: f64,
}

/// One step line of the trace.
struct Step {
    t: f64,
    load_w: f64,
    pv_w: f64,
    battery_w: f64,
    grid_w: f64,
    writes: Vec<serde_json::Map<String, Json>>,
}

fn number(doc: &Json, key: &str) -> Result<f64> {
    doc[key]
        .as_f64()
        .with_context(|| format!("no number {key} in {doc}"))
}

fn read_trace(path: &PathBuf) -> Result<(Json, Vec<Step>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut header = None;
    let mut steps = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let doc: Json = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        if let Some(h) = doc.get("header") {
            ensure!(header.is_none(), "{}: more than one run", path.display());
            header = Some(h.clone());
            continue;
        }
        let writes = match doc.get("writes") {
            Some(w) => w
                .as_array()
                .context("writes")?
                .iter()
                .filter_map(|w| w.as_object().cloned())
                .collect(),
            None => Vec::new(),
        };
        steps.push(Step {
            t: number(&doc, "t")?,
            load_w: number(&doc, "load_w")?,
            pv_w: number(&doc, "pv_w")?,
            battery_w: number(&doc, "battery_w")?,
            grid_w: number(&doc, "grid_w")?,
            writes,
        });
    }
    let header = header.with_context(|| format!("{}: no header line", path.display()))?;
    ensure!(!steps.is_empty(), "{}: no steps", path.display());
    Ok((header, steps))
}

/// Import and export energy (Wh) of a grid power series.
#[derive(Default)]
struct Energy {
    import_wh: f64,
    export_wh: f64,
}

impl Energy {
    fn add(&mut self, grid_w: f64, dt: f64) {
        let wh = grid_w * dt / 3600.0;
        if wh > 0.0 {
            self.import_wh += wh;
        } else {
            self.export_wh -= wh;
        }
    }

    fn json(&self) -> Json {
        json!({"import_kwh": kwh(self.import_wh), "export_kwh": kwh(self.export_wh)})
    }
}

fn kwh(wh: f64) -> f64 {
    (wh).round() / 1000.0
}

/// The device's limits and SoC bounds, for the ideal battery.
struct Limits {
    charge_max_w: f64,
    inverse_max_w: f64,
    idle_w: f64,
    capacity_wh: f64,
    min_wh: f64,
    max_wh: f64,
}

/// Net grid power of the ideal battery over the steps.
fn ideal(steps: &[Step], schedule: &Schedule, limits: &Limits, soc: f64, dt: f64) -> Energy {
    let mut soc_wh = limits.capacity_wh * soc / 100.0;
    let mut energy = Energy::default();
    for s in steps {
        let house = s.load_w - s.pv_w + limits.idle_w;
        let wanted = match schedule.at(s.t) {
            Value::Watts(w) => w,
            Value::NetZero => -house,
            Value::NetZeroPlus => (-house).max(0.0),
        };
        let room = ((limits.max_wh - soc_wh) * 3600.0 / dt).max(0.0);
        let stock = ((soc_wh - limits.min_wh) * 3600.0 / dt).max(0.0);
        let battery = wanted
            .min(limits.charge_max_w)
            .max(-limits.inverse_max_w)
            .clamp(-stock, room);
        soc_wh += battery * dt / 3600.0;
        energy.add(house + battery, dt);
    }
    energy
}

/// The device's writable state as the writes change it, and what they add up to.
struct WriteCount {
    ac_mode: i64,
    input_limit: i64,
    output_limit: i64,
    command_w: f64,
    writes: u64,
    flash_writes: u64,
    direction_changes: u64,
    /// (t, command W) of every limit write.
    limit_writes: Vec<(f64, f64)>,
    /// (t, change W) of every change of command.
    changes: Vec<(f64, f64)>,
}

impl WriteCount {
    fn new(device: &Json) -> Result<WriteCount> {
        let get = |k: &str| {
            device[k]
                .as_i64()
                .with_context(|| format!("header device {k}"))
        };
        Ok(WriteCount {
            ac_mode: get("acMode")?,
            input_limit: get("inputLimit")?,
            output_limit: get("outputLimit")?,
            command_w: 0.0,
            writes: 0,
            flash_writes: 0,
            direction_changes: 0,
            limit_writes: Vec::new(),
            changes: Vec::new(),
        })
    }

    fn write(&mut self, t: f64, w: &serde_json::Map<String, Json>, limits: &Limits) {
        let get = |k: &str| w.get(k).and_then(Json::as_i64);
        self.writes += 1;
        if get("smartMode") != Some(1) {
            self.flash_writes += 1;
        }
        if let Some(mode) = get("acMode") {
            if mode != self.ac_mode {
                self.direction_changes += 1;
            }
            self.ac_mode = mode;
        }
        self.input_limit = get("inputLimit").unwrap_or(self.input_limit);
        self.output_limit = get("outputLimit").unwrap_or(self.output_limit);
        if get("inputLimit").is_none() && get("outputLimit").is_none() {
            return;
        }
        let command = command::command_w(
            self.ac_mode,
            self.input_limit,
            self.output_limit,
            limits.charge_max_w as i64,
            limits.inverse_max_w as i64,
        );
        self.limit_writes.push((t, command));
        if command != self.command_w {
            self.changes.push((t, command - self.command_w));
            self.command_w = command;
        }
    }
}

/// Times at which load or PV moved by `step_w` or more within `window`.
fn step_times(steps: &[Step], dt: f64, step_w: f64, window: f64) -> Vec<f64> {
    let k = ((window / dt).round() as usize).max(1);
    (k..steps.len())
        .filter(|&i| {
            (steps[i].load_w - steps[i - k].load_w).abs() >= step_w
                || (steps[i].pv_w - steps[i - k].pv_w).abs() >= step_w
        })
        .map(|i| steps[i].t)
        .collect()
}

/// Separate step events: runs of step times closer than `window`.
fn count_events(times: &[f64], window: f64) -> usize {
    times
        .iter()
        .enumerate()
        .filter(|&(i, t)| i == 0 || t - times[i - 1] > window)
        .count()
}

/// Times of the flips (the second change of each).
fn flips(changes: &[(f64, f64)], steps: &[f64], flip_w: f64, settle: f64) -> Vec<f64> {
    let big: Vec<(f64, f64)> = changes
        .iter()
        .copied()
        .filter(|(_, d)| d.abs() >= flip_w)
        .collect();
    big.windows(2)
        .filter(|pair| {
            let ((ta, da), (tb, db)) = (pair[0], pair[1]);
            let opposite = da.signum() != db.signum();
            let before_a = steps.partition_point(|&s| s <= ta);
            let settled = before_a == 0 || ta >= steps[before_a - 1] + settle;
            let step_between = steps.partition_point(|&s| s <= tb) > before_a;
            opposite && settled && !step_between
        })
        .map(|pair| pair[1].0)
        .collect()
}

/// The most of `times` (sorted) within any window of `width`.
fn max_in_window(times: &[f64], width: f64) -> usize {
    let mut best = 0;
    let mut first = 0;
    for (last, &t) in times.iter().enumerate() {
        while t - times[first] >= width {
            first += 1;
        }
        best = best.max(last - first + 1);
    }
    best
}

/// Command -> 0 W -> the same direction again, all within `window`: a
/// decision taken back and retaken. `commands` are (t, signed W) of writes.
fn reversals(commands: &[(f64, f64)], window: f64) -> usize {
    let mut changes: Vec<(f64, f64)> = Vec::new();
    for &(t, w) in commands {
        if changes.last().is_none_or(|&(_, last)| last != w) {
            changes.push((t, w));
        }
    }
    changes
        .windows(3)
        .filter(|c| {
            c[0].1 != 0.0
                && c[1].1 == 0.0
                && c[2].1.signum() == c[0].1.signum()
                && c[2].0 - c[0].0 <= window
        })
        .count()
}

/// Seconds the battery pushed the grid the wrong way in a NetZero mode:
/// discharging while the grid exports more than `w`, or charging while it
/// imports more than `w`. `series` is (t, battery W, grid W) per step.
fn wrong_way_s(
    series: impl Iterator<Item = (f64, f64, f64)>,
    schedule: &Schedule,
    w: f64,
    dt: f64,
) -> f64 {
    let seconds: f64 = series
        .filter(|&(t, battery, grid)| {
            matches!(schedule.at(t), Value::NetZero | Value::NetZeroPlus)
                && ((battery < -1.0 && grid < -w) || (battery > 1.0 && grid > w))
        })
        .count() as f64
        * dt;
    seconds.round()
}

/// Excess grid energy (kWh) of a grid series over the ideal's.
fn excess_kwh(grid: impl Iterator<Item = f64>, ideal: &Energy, dt: f64) -> f64 {
    let mut energy = Energy::default();
    grid.for_each(|g| energy.add(g, dt));
    kwh(energy.import_wh - ideal.import_wh + energy.export_wh - ideal.export_wh)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (header, steps) = read_trace(&args.trace)?;
    let schedule: Schedule = match (&args.schedule, header["schedule"].as_str()) {
        (Some(s), _) => s.clone(),
        (None, Some(spec)) => spec.parse().context("the trace header's schedule")?,
        (None, None) => "0=netzero".parse()?,
    };
    let dt = number(&header, "step")?;
    let capacity_wh = number(&header, "capacity_wh")?;
    let device = &header["device"];
    let permille = |k: &str| -> Result<f64> {
        Ok(device[k]
            .as_f64()
            .with_context(|| format!("header device {k}"))?
            / 10.0)
    };
    let min_soc = args.min_soc.map_or_else(|| permille("minSoc"), Ok)?;
    let max_soc = args.max_soc.map_or_else(|| permille("socSet"), Ok)?;
    if min_soc >= max_soc {
        bail!("--min-soc {min_soc} must be below --max-soc {max_soc}");
    }
    let limits = Limits {
        charge_max_w: number(&header, "charge_max_w")?,
        inverse_max_w: number(&header, "inverse_max_w")?,
        idle_w: number(&header, "idle_w")?,
        capacity_wh,
        min_wh: capacity_wh * min_soc / 100.0,
        max_wh: capacity_wh * max_soc / 100.0,
    };

    let mut actual = Energy::default();
    let mut count = WriteCount::new(device)?;
    let mut max_overshoot: f64 = 0.0;
    let mut overshoot_wh = 0.0;
    for s in &steps {
        actual.add(s.grid_w, dt);
        for w in &s.writes {
            count.write(s.t, w, &limits);
        }
        let value = schedule.at(s.t);
        let overshoot = match value {
            Value::NetZero if s.battery_w < 0.0 && s.grid_w < 0.0 => (-s.grid_w).min(-s.battery_w),
            Value::NetZero | Value::NetZeroPlus if s.battery_w > 0.0 && s.grid_w > 0.0 => {
                s.grid_w.min(s.battery_w)
            }
            _ => 0.0,
        };
        max_overshoot = max_overshoot.max(overshoot);
        overshoot_wh += overshoot * dt / 3600.0;
    }
    let soc = number(&header, "soc")?;
    let ideal = ideal(&steps, &schedule, &limits, soc, dt);

    let step_times = step_times(&steps, dt, args.step_w, args.step_window);
    let flip_times = flips(&count.changes, &step_times, args.flip_w, args.settle);
    let mut last_limit_write = f64::NEG_INFINITY;
    let mut too_close = 0;
    let mut too_close_to_nonzero = 0;
    let mut nonzero: Vec<f64> = Vec::new();
    let mut in_force = None;
    for &(t, command) in &count.limit_writes {
        if in_force == Some(command) {
            continue;
        }
        in_force = Some(command);
        if command != 0.0 {
            if t - last_limit_write < args.min_write_interval {
                too_close += 1;
            }
            if nonzero
                .last()
                .is_some_and(|&n| t - n < args.min_write_interval)
            {
                too_close_to_nonzero += 1;
            }
            nonzero.push(t);
        }
        last_limit_write = t;
    }
    let house: Vec<oracle::HouseStep> = steps
        .iter()
        .map(|s| oracle::HouseStep {
            t: s.t,
            load_w: s.load_w,
            pv_w: s.pv_w,
        })
        .collect();
    let rules = oracle::Rules {
        min_write_interval: args.min_write_interval,
        min_direction_change: args.min_direction_change,
        step_w: args.oracle_step_w,
    };
    let oracle_device = || -> Result<_> {
        let cfg = model::DeviceConfig {
            sn: "oracle".into(),
            product: "oracle".into(),
            capacity_wh,
            charge_max_w: limits.charge_max_w as i64,
            inverse_max_w: limits.inverse_max_w as i64,
            idle_w: limits.idle_w,
            ramp: number(&header, "ramp")?,
            wake: number(&header, "wake")?,
            standby_after: number(&header, "standby_after")?,
            limit_reset: None,
            max_body: usize::MAX,
        };
        let per_mille = |k: &str| header[k].as_i64().with_context(|| format!("header {k}"));
        Ok((cfg, soc, per_mille("soc_set")?, per_mille("min_soc")?))
    };
    let mut oracles = serde_json::Map::new();
    let lag = number(&header, "meter_lag")?;
    let polled = oracle::Reading {
        lag,
        period: number(&header, "meter_period")?,
        interval: args.interval,
    };
    for (name, reading) in [
        ("instant", oracle::Reading::continuous(0.0)),
        ("lagged", oracle::Reading::continuous(lag)),
        ("polled", polled),
    ] {
        let run = oracle::run(&house, &schedule, oracle_device()?, &rules, reading, dt);
        oracles.insert(
            name.into(),
            json!({
                "lag_s": reading.lag,
                "period_s": reading.period,
                "interval_s": reading.interval,
                "excess_kwh": excess_kwh(run.series.iter().map(|&(_, g)| g), &ideal, dt),
                "writes": run.writes.len(),
                "reversals": reversals(&run.writes, args.reversal_window),
                "wrong_way_s": wrong_way_s(
                    house.iter().zip(&run.series).map(|(h, &(b, g))| (h.t, b, g)),
                    &schedule,
                    args.wrong_way_w,
                    dt,
                ),
            }),
        );
    }
    let duration = steps.len() as f64 * dt;
    let report = json!({
        "duration_s": duration,
        "actual": actual.json(),
        "ideal": ideal.json(),
        "excess_import_kwh": kwh(actual.import_wh - ideal.import_wh),
        "excess_export_kwh": kwh(actual.export_wh - ideal.export_wh),
        "excess_kwh": kwh(actual.import_wh - ideal.import_wh + actual.export_wh - ideal.export_wh),
        "writes": count.writes,
        "limit_writes": count.limit_writes.len(),
        "flash_writes": count.flash_writes,
        "direction_changes": count.direction_changes,
        "direction_changes_per_day": (count.direction_changes as f64 * 86_400.0 / duration * 10.0).round() / 10.0,
        "max_overshoot_w": max_overshoot.round(),
        "overshoot_wh": overshoot_wh.round(),
        "flips": flip_times.len(),
        "max_flips_in_window": max_in_window(&flip_times, args.flip_window),
        "load_pv_steps": count_events(&step_times, args.step_window),
        "max_limit_writes_per_interval": max_in_window(&nonzero, args.min_write_interval),
        "limit_writes_closer_than_interval": too_close,
        "nonzero_writes_closer_than_interval": too_close_to_nonzero,
        "reversals": reversals(&count.limit_writes, args.reversal_window),
        "wrong_way_s": wrong_way_s(
            steps.iter().map(|s| (s.t, s.battery_w, s.grid_w)),
            &schedule,
            args.wrong_way_w,
            dt,
        ),
        "oracle": oracles,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
