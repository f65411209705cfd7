//! Oracles for the bench: the best a controller can do on the simulated
//! device when it knows the house's true consumption, either as it is now
//! (the limit of the job) or as it was the meter's lag ago (the limit of any
//! controller with that meter). They drive the same device model (limits,
//! ramp, wake-up, SoC cut-offs) under the same write rules as the product
//! (`min_write_interval` between a write and the next non-zero one,
//! `min_direction_change` between direction changes, 0 W meanwhile), so the
//! gap between a law and them is what the law's judgement costs. A third
//! reads the house as a polled meter shows it: the meter refreshes every
//! `period` (showing the house the lag before), and the oracle decides
//! every `interval`, as the controller's loop does; a controller cannot
//! see a step sooner, so that is the bound of any law with that meter and
//! that loop.

use serde_json::json;

use super::model::{Device, DeviceConfig};
use super::schedule::{Schedule, Value};

/// The house as the trace saw it, one entry per step.
pub struct HouseStep {
    pub t: f64,
    pub load_w: f64,
    pub pv_w: f64,
}

/// The write rules the oracle obeys.
pub struct Rules {
    pub min_write_interval: f64,
    pub min_direction_change: f64,
    /// A new setpoint is written only if it differs from the last by more.
    pub step_w: f64,
}

/// How the oracle sees the house: the meter's lag and update period, and
/// how often it decides (all in seconds).
#[derive(Clone, Copy)]
pub struct Reading {
    pub lag: f64,
    pub period: f64,
    pub interval: f64,
}

impl Reading {
    /// The house as it was `lag` ago, read at every step.
    pub fn continuous(lag: f64) -> Reading {
        Reading {
            lag,
            period: 0.0,
            interval: 0.0,
        }
    }
}

/// What an oracle's run came to, per step.
pub struct Run {
    /// (battery W, grid W) after each step.
    pub series: Vec<(f64, f64)>,
    /// (t, signed command W) of each limit write.
    pub writes: Vec<(f64, f64)>,
}

/// The device setpoint that serves `value` for a house drawing `house_w`
/// (its own idle draw included), within the device's limits.
fn wanted_w(value: Value, house_w: f64, cfg: &DeviceConfig) -> f64 {
    let w = match value {
        Value::Watts(w) => w,
        Value::NetZero => -house_w,
        Value::NetZeroPlus => (-house_w).max(0.0),
    };
    w.clamp(-(cfg.inverse_max_w as f64), cfg.charge_max_w as f64)
        .round()
}

fn body(sn: &str, command_w: f64, ac_mode: i64) -> Vec<u8> {
    let w = command_w.abs() as i64;
    let (input, output) = if ac_mode == 1 { (w, 0) } else { (0, w) };
    json!({"sn": sn, "properties": {
        "acMode": ac_mode, "inputLimit": input, "outputLimit": output, "smartMode": 1}})
    .to_string()
    .into_bytes()
}

/// Plays the house on a fresh device reading it as `reading` says.
pub fn run(
    steps: &[HouseStep],
    schedule: &Schedule,
    device: (DeviceConfig, f64, i64, i64),
    rules: &Rules,
    reading: Reading,
    dt: f64,
) -> Run {
    let (cfg, soc, soc_set, min_soc) = device;
    let idle_w = cfg.idle_w;
    let sn = cfg.sn.clone();
    let start = steps.first().map_or(0.0, |s| s.t - dt);
    let mut dev = Device::new(cfg, soc, soc_set, min_soc, start);
    let behind = (reading.lag / dt).round() as usize;
    // In steps, at least one: a period or interval below the step is every step.
    let every = |s: f64| ((s / dt).round() as usize).max(1);
    let (period, interval) = (every(reading.period), every(reading.interval));
    let mut command_w = 0.0;
    let mut ac_mode = 1;
    let mut last_write = f64::NEG_INFINITY;
    let mut last_turn = f64::NEG_INFINITY;
    let mut series = Vec::with_capacity(steps.len());
    let mut writes = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        dev.step(s.t, dt);
        series.push((dev.actual_w(), s.load_w - s.pv_w + dev.ac_w()));
        if i % interval != 0 {
            continue;
        }
        let refreshed = i - i % period;
        let seen = &steps[refreshed.saturating_sub(behind)];
        let wanted = wanted_w(schedule.at(s.t), seen.load_w - seen.pv_w + idle_w, &dev.cfg);
        let mode = if wanted > 0.0 {
            1
        } else if wanted < 0.0 {
            2
        } else {
            ac_mode
        };
        let turn = mode != ac_mode;
        let next = if turn && s.t - last_turn < rules.min_direction_change {
            0.0
        } else {
            wanted
        };
        let moved = (next - command_w).abs() > rules.step_w || (next == 0.0) != (command_w == 0.0);
        let paced = next == 0.0 || s.t - last_write >= rules.min_write_interval;
        if !moved || !paced {
            continue;
        }
        let mode = if next == 0.0 { ac_mode } else { mode };
        if mode != ac_mode {
            last_turn = s.t;
        }
        if dev.write(s.t, &body(&sn, next, mode)).is_ok() {
            command_w = next;
            ac_mode = mode;
            last_write = s.t;
            writes.push((s.t, next));
        }
    }
    Run { series, writes }
}
