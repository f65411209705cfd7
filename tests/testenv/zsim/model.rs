//! The simulated home's model, free of I/O: a SolarFlow device, a house
//! whose load and PV come from a profile, and a P1 meter that shows the net
//! grid power of `lag` seconds ago, refreshed every `period`. Everything
//! advances together, one step of simulated time at a time.
//!
//! Signs: battery power is positive while charging; grid power is positive
//! while importing. The device's AC power is its battery power plus its idle
//! draw, so net grid = load - PV + battery charge - battery discharge + idle.

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

use super::command::command_w;
use super::profile::Profile;

/// The device's fixed properties (its command line).
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    pub sn: String,
    pub product: String,
    pub capacity_wh: f64,
    pub charge_max_w: i64,
    pub inverse_max_w: i64,
    pub idle_w: f64,
    /// Seconds a change of setpoint takes to complete (linear ramp).
    pub ramp: f64,
    /// Seconds from a non-zero setpoint to power flowing, out of standby.
    pub wake: f64,
    /// Seconds at 0 W after which the device is in standby.
    pub standby_after: f64,
    /// Limits fall back to 0 W when no limit was written for this long.
    pub limit_reset: Option<f64>,
    /// Request bodies longer than this are refused (firmware's 512 bytes).
    pub max_body: usize,
}

/// One accepted limit write, for the counters.
#[derive(Clone, Debug)]
pub struct LimitWrite {
    pub t: f64,
    pub ac_mode: i64,
    pub input_limit: Option<i64>,
    pub output_limit: Option<i64>,
    /// The signed battery power this command asks for (+ charge).
    pub command_w: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub writes: u64,
    pub rejected_writes: u64,
    pub ignored_writes: u64,
    pub limit_writes: u64,
    pub direction_changes: u64,
    pub flash_writes: u64,
    pub limit_resets: u64,
}

pub struct Device {
    pub cfg: DeviceConfig,
    ac_mode: i64,
    input_limit: i64,
    output_limit: i64,
    smart_mode: i64,
    soc_set: i64,
    min_soc: i64,
    grid_reverse: i64,
    inverse_max_w: i64,
    soc_wh: f64,
    actual_w: f64,
    ramp_rate: f64,
    last_target: f64,
    active_at: f64,
    standby: bool,
    wake_at: Option<f64>,
    last_limit_write: f64,
    pub counters: Counters,
    pub limit_writes: Vec<LimitWrite>,
}

/// Properties a client may write, with their accepted ranges.
const WRITABLE: &[(&str, i64, i64)] = &[
    ("acMode", 1, 2),
    ("inputLimit", i64::MIN, i64::MAX),
    // Negative values are accepted: the firmware's quirk, see `commanded_w`.
    ("outputLimit", i64::MIN, i64::MAX),
    ("socSet", 700, 1000),
    ("minSoc", 0, 500),
    ("gridReverse", 0, 2),
    ("inverseMaxPower", 0, 2400),
    ("smartMode", 0, 1),
];

impl Device {
    pub fn new(cfg: DeviceConfig, soc_percent: f64, soc_set: i64, min_soc: i64, t: f64) -> Device {
        Device {
            soc_wh: cfg.capacity_wh * soc_percent / 100.0,
            inverse_max_w: cfg.inverse_max_w,
            cfg,
            ac_mode: 1,
            input_limit: 0,
            output_limit: 0,
            smart_mode: 1,
            soc_set,
            min_soc,
            grid_reverse: 0,
            actual_w: 0.0,
            ramp_rate: 0.0,
            last_target: 0.0,
            active_at: t,
            standby: false,
            wake_at: None,
            last_limit_write: t,
            counters: Counters::default(),
            limit_writes: Vec::new(),
        }
    }

    pub fn soc_percent(&self) -> f64 {
        self.soc_wh / self.cfg.capacity_wh * 100.0
    }

    pub fn set_soc_percent(&mut self, percent: f64) {
        self.soc_wh = self.cfg.capacity_wh * percent.clamp(0.0, 100.0) / 100.0;
    }

    pub fn actual_w(&self) -> f64 {
        self.actual_w
    }

    /// Power the device takes from the house's AC side (+) or gives (-).
    pub fn ac_w(&self) -> f64 {
        self.actual_w + self.cfg.idle_w
    }

    /// 1: charge cut-off (`socSet`) reached, 2: discharge cut-off (`minSoc`).
    pub fn soc_limit(&self) -> i64 {
        let percent = self.soc_percent();
        if percent >= self.soc_set as f64 / 10.0 {
            1
        } else if percent <= self.min_soc as f64 / 10.0 {
            2
        } else {
            0
        }
    }

    /// The battery power the written properties ask for.
    pub fn commanded_w(&self) -> f64 {
        command_w(
            self.ac_mode,
            self.input_limit,
            self.output_limit,
            self.cfg.charge_max_w,
            self.inverse_max_w,
        )
    }

    /// The commanded power after the SoC cut-offs.
    pub fn target_w(&self) -> f64 {
        let commanded = self.commanded_w();
        match self.soc_limit() {
            1 if commanded > 0.0 => 0.0,
            2 if commanded < 0.0 => 0.0,
            _ => commanded,
        }
    }

    pub fn standby(&self) -> bool {
        self.standby
    }

    /// Sets both limits to 0 W, as the firmware does on its own.
    pub fn reset_limits(&mut self, t: f64) {
        self.input_limit = 0;
        self.output_limit = 0;
        self.last_limit_write = t;
        self.counters.limit_resets += 1;
    }

    /// Advances the device by `dt` seconds ending at `t`.
    pub fn step(&mut self, t: f64, dt: f64) {
        if let Some(period) = self.cfg.limit_reset
            && t - self.last_limit_write >= period
            && (self.input_limit != 0 || self.output_limit != 0)
        {
            self.reset_limits(t);
        }
        let target = self.target_w();
        if self.standby {
            if target == 0.0 {
                self.wake_at = None;
            } else {
                let wake_at = *self.wake_at.get_or_insert(t - dt + self.cfg.wake);
                if t >= wake_at {
                    self.standby = false;
                    self.wake_at = None;
                    // Start the ramp from here, not from the write.
                    self.last_target = f64::NAN;
                }
            }
        }
        if !self.standby {
            if target != self.last_target {
                let change = (target - self.actual_w).abs();
                self.ramp_rate = if self.cfg.ramp > 0.0 {
                    change / self.cfg.ramp
                } else {
                    f64::INFINITY
                };
                self.last_target = target;
            }
            let max = self.ramp_rate * dt;
            self.actual_w += (target - self.actual_w).clamp(-max, max);
            if target != 0.0 || self.actual_w != 0.0 {
                self.active_at = t;
            } else if t - self.active_at >= self.cfg.standby_after {
                self.standby = true;
            }
        }
        self.soc_wh = (self.soc_wh + self.actual_w * dt / 3600.0).clamp(0.0, self.cfg.capacity_wh);
    }

    /// Applies a `POST /properties/write` body at time `t`; `Err` is the
    /// device's refusal message. Returns the properties written.
    pub fn write(&mut self, t: f64, body: &[u8]) -> Result<Map<String, Value>, String> {
        let result = self.parse_write(body);
        let properties = match result {
            Ok(p) => p,
            Err(e) => {
                self.counters.rejected_writes += 1;
                return Err(e);
            }
        };
        self.counters.writes += 1;
        let get = |key: &str| properties.get(key).and_then(Value::as_i64);
        if get("smartMode") != Some(1) {
            self.counters.flash_writes += 1;
        }
        if let Some(mode) = get("acMode")
            && mode != self.ac_mode
        {
            self.counters.direction_changes += 1;
        }
        for (key, value) in &properties {
            let Some(v) = value.as_i64() else { continue };
            match key.as_str() {
                "acMode" => self.ac_mode = v,
                "inputLimit" => self.input_limit = v,
                "outputLimit" => self.output_limit = v,
                "socSet" => self.soc_set = v,
                "minSoc" => self.min_soc = v,
                "gridReverse" => self.grid_reverse = v,
                "inverseMaxPower" => self.inverse_max_w = v,
                "smartMode" => self.smart_mode = v,
                _ => {}
            }
        }
        if get("inputLimit").is_some() || get("outputLimit").is_some() {
            self.counters.limit_writes += 1;
            self.last_limit_write = t;
            self.limit_writes.push(LimitWrite {
                t,
                ac_mode: self.ac_mode,
                input_limit: get("inputLimit"),
                output_limit: get("outputLimit"),
                command_w: self.commanded_w().round() as i64,
            });
        }
        Ok(properties)
    }

    /// Checks a write body the way the firmware does; unknown and read-only
    /// properties are dropped (the device ignores them).
    fn parse_write(&self, body: &[u8]) -> Result<Map<String, Value>, String> {
        if body.len() > self.cfg.max_body {
            return Err(format!(
                "request body of {} bytes exceeds {} bytes",
                body.len(),
                self.cfg.max_body
            ));
        }
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        match doc.get("sn").and_then(Value::as_str) {
            None => return Err("sn required".into()),
            Some(sn) if sn != self.cfg.sn => return Err(format!("sn {sn} is not this device")),
            Some(_) => {}
        }
        let Some(given) = doc.get("properties").and_then(Value::as_object) else {
            return Err("properties required".into());
        };
        let mut properties = Map::new();
        for (key, value) in given {
            let Some(&(_, min, max)) = WRITABLE.iter().find(|(k, _, _)| k == key) else {
                continue;
            };
            match value.as_i64() {
                Some(v) if (min..=max).contains(&v) => {
                    properties.insert(key.clone(), value.clone());
                }
                _ => return Err(format!("bad value for {key}: {value}")),
            }
        }
        Ok(properties)
    }

    /// `GET /properties/report` at sim unix time `unix`.
    pub fn report(&self, unix: i64, message_id: u64) -> Value {
        let actual = self.actual_w.round() as i64;
        let ac = self.ac_w().round() as i64;
        let soc = self.soc_percent();
        let pack_state = match actual {
            a if a > 0 => 1,
            a if a < 0 => 2,
            _ => 0,
        };
        let bat_volt = 4800.0 + soc * 6.0; // 0.01 V, 48.0 V empty to 54.0 V full
        let cell = (bat_volt / 16.0).round() as i64;
        // int16 in tenths of an ampere, sent as the unsigned 16-bit word.
        let batcur = ((self.actual_w / (bat_volt / 100.0) * 10.0).round() as i16) as u16;
        json!({
            "timestamp": unix,
            "messageId": message_id,
            "sn": self.cfg.sn,
            "version": 2,
            "product": self.cfg.product,
            "properties": {
                "electricLevel": soc.round() as i64,
                "packInputPower": (-actual).max(0),
                "outputPackPower": actual.max(0),
                "outputHomePower": (-ac).max(0),
                "gridInputPower": ac.max(0),
                "solarInputPower": 0,
                "packState": pack_state,
                "socLimit": self.soc_limit(),
                "socStatus": 0,
                "chargeMaxLimit": self.cfg.charge_max_w,
                "inverseMaxPower": self.inverse_max_w,
                "acMode": self.ac_mode,
                "inputLimit": self.input_limit,
                "outputLimit": self.output_limit,
                "socSet": self.soc_set,
                "minSoc": self.min_soc,
                "gridReverse": self.grid_reverse,
                "smartMode": self.smart_mode,
                "BatVolt": bat_volt.round() as i64,
                "hyperTmp": 2981,
                "packNum": 1,
                "is_error": 0,
            },
            "packData": [{
                "sn": format!("{}P1", self.cfg.sn),
                "socLevel": soc.round() as i64,
                "state": pack_state,
                "power": actual.abs(),
                "maxTemp": 2981,
                "batcur": batcur,
                "minVol": cell - 1,
                "maxVol": cell + 1,
            }],
        })
    }

    /// The writable state, for the control API.
    pub fn settings(&self) -> Value {
        json!({
            "acMode": self.ac_mode,
            "inputLimit": self.input_limit,
            "outputLimit": self.output_limit,
            "smartMode": self.smart_mode,
            "socSet": self.soc_set,
            "minSoc": self.min_soc,
            "gridReverse": self.grid_reverse,
            "inverseMaxPower": self.inverse_max_w,
            "chargeMaxLimit": self.cfg.charge_max_w,
        })
    }
}

/// What the meter measures at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeterSample {
    pub t: f64,
    pub grid_w: f64,
    pub import_wh: f64,
    pub export_wh: f64,
}

/// A P1 meter whose view lags reality by `lag` and refreshes every `period`.
pub struct Meter {
    pub lag: f64,
    pub period: f64,
    history: VecDeque<MeterSample>,
    shown: MeterSample,
    next_update: f64,
    pub updates: u64,
}

impl Meter {
    pub fn new(lag: f64, period: f64, first: MeterSample) -> Meter {
        Meter {
            lag,
            period,
            history: VecDeque::from([first]),
            shown: first,
            next_update: first.t + period,
            updates: 0,
        }
    }

    /// The sample the meter shows now.
    pub fn shown(&self) -> MeterSample {
        self.shown
    }

    /// Records reality at `sample.t`; true when the meter's view refreshed.
    pub fn record(&mut self, sample: MeterSample) -> bool {
        self.history.push_back(sample);
        let keep_from = sample.t - self.lag - self.period - 1.0;
        while self.history.len() > 2 && self.history[1].t <= keep_from {
            self.history.pop_front();
        }
        if sample.t + 1e-9 < self.next_update {
            return false;
        }
        while self.next_update <= sample.t + 1e-9 {
            self.next_update += self.period;
        }
        let seen_at = sample.t - self.lag;
        // Nothing that old (at the start, or the lag just grew): hold.
        if let Some(seen) = self.history.iter().rev().find(|s| s.t <= seen_at + 1e-9) {
            self.shown = *seen;
        }
        self.updates += 1;
        true
    }
}

/// Load and PV now: from the profile unless a test overrides them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub load_w: Option<f64>,
    pub pv_w: Option<f64>,
}

pub struct Home {
    /// Sim seconds since midnight of the sim date.
    pub t: f64,
    pub step: f64,
    pub device: Device,
    pub profile: Profile,
    pub overrides: Overrides,
    pub meter: Meter,
    pub load_w: f64,
    pub pv_w: f64,
    pub grid_w: f64,
    pub import_wh: f64,
    pub export_wh: f64,
    /// Writes accepted since the last step, for the trace.
    pub pending_writes: Vec<Value>,
}

impl Home {
    pub fn new(t: f64, step: f64, device: Device, profile: Profile, lag: f64, period: f64) -> Home {
        let (load_w, pv_w) = profile.at(t);
        let grid_w = load_w - pv_w + device.ac_w();
        let first = MeterSample {
            t,
            grid_w,
            import_wh: 0.0,
            export_wh: 0.0,
        };
        Home {
            t,
            step,
            device,
            profile,
            overrides: Overrides::default(),
            meter: Meter::new(lag, period, first),
            load_w,
            pv_w,
            grid_w,
            import_wh: 0.0,
            export_wh: 0.0,
            pending_writes: Vec::new(),
        }
    }

    /// One step; true when the meter's view refreshed.
    pub fn advance(&mut self) -> bool {
        self.t += self.step;
        self.device.step(self.t, self.step);
        let (load, pv) = self.profile.at(self.t);
        self.load_w = self.overrides.load_w.unwrap_or(load);
        self.pv_w = self.overrides.pv_w.unwrap_or(pv);
        self.grid_w = self.load_w - self.pv_w + self.device.ac_w();
        let wh = self.grid_w * self.step / 3600.0;
        if wh > 0.0 {
            self.import_wh += wh;
        } else {
            self.export_wh -= wh;
        }
        self.meter.record(MeterSample {
            t: self.t,
            grid_w: self.grid_w,
            import_wh: self.import_wh,
            export_wh: self.export_wh,
        })
    }

    /// A write to the device now; remembered for the trace when accepted.
    pub fn write(&mut self, body: &[u8]) -> Result<(), String> {
        let properties = self.device.write(self.t, body)?;
        self.pending_writes.push(Value::Object(properties));
        Ok(())
    }

    /// One trace line for the step just made (takes the pending writes).
    pub fn trace_line(&mut self) -> Value {
        let mut line = json!({
            "t": round3(self.t),
            "load_w": round3(self.load_w),
            "pv_w": round3(self.pv_w),
            "battery_w": round3(self.device.actual_w()),
            "target_w": round3(self.device.target_w()),
            "grid_w": round3(self.grid_w),
            "meter_w": round3(self.meter.shown().grid_w),
            "soc": round3(self.device.soc_percent()),
        });
        if !self.pending_writes.is_empty() {
            line["writes"] = Value::Array(std::mem::take(&mut self.pending_writes));
        }
        line
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
