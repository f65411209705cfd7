//! A device report as the core sees it: decoded once by the device adapter
//! (`io::device`) into named fields. The properties as sent ride along as
//! an opaque payload for the server; nothing here reads wire names.

use serde::{Deserialize, Serialize};

use crate::zendure::core::law::{AcMode, DevicePower, DeviceState, Moment};
use crate::zendure::core::report::Payload;

/// One battery pack of `packData`, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pack {
    pub sn: String,
    pub soc_pct: Option<i64>,
    pub state: Option<i64>,
    pub power_w: Option<i64>,
    /// `maxTemp` is 0.1 K: (x - 2731) / 10 °C.
    pub max_temp_c: Option<f64>,
    /// `batcur` is an int16 in 0.1 A.
    pub current_a: Option<f64>,
    /// `minVol`/`maxVol` are 0.01 V.
    pub min_cell_v: Option<f64>,
    pub max_cell_v: Option<f64>,
}

/// A cut-off the device reports reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutOff {
    Charge,
    Discharge,
}

impl CutOff {
    pub fn text(self) -> &'static str {
        match self {
            CutOff::Charge => "charge cut-off reached",
            CutOff::Discharge => "discharge cut-off reached",
        }
    }
}

/// One device report.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReading {
    pub sn: Option<String>,
    /// The model as the report names it (`solarFlow800Pro`).
    pub product: Option<String>,
    /// The average SoC, 0 to 100 %.
    pub soc_pct: u8,
    /// AC power as the grid sees it: positive drawn (charging), negative
    /// delivered.
    pub ac_w: i32,
    /// Battery power: positive charging, negative discharging.
    pub battery_w: i64,
    /// `acMode` as reported: 1 charges, 2 discharges.
    pub ac_mode: Option<u8>,
    pub input_limit_w: Option<u32>,
    pub output_limit_w: Option<u32>,
    pub charge_max_w: Option<u32>,
    pub discharge_max_w: Option<u32>,
    pub pack_state: Option<i64>,
    pub cut_off: Option<CutOff>,
    pub packs: Vec<Pack>,
    pub payload: Payload,
}

impl DeviceReading {
    pub fn mode(&self) -> Option<AcMode> {
        match self.ac_mode {
            Some(1) => Some(AcMode::Charge),
            Some(2) => Some(AcMode::Discharge),
            _ => None,
        }
    }

    /// What the law needs, read at `read`.
    pub fn state(&self, read: Moment) -> DeviceState {
        DeviceState {
            read,
            soc_pct: self.soc_pct,
            ac_w: self.ac_w,
            charge_max_w: self.charge_max_w,
            discharge_max_w: self.discharge_max_w,
            ac_mode: self.mode(),
            input_limit_w: self.input_limit_w.unwrap_or(0),
            output_limit_w: self.output_limit_w.unwrap_or(0),
        }
    }

    pub fn power(&self, at: Moment) -> DevicePower {
        DevicePower {
            at,
            ac_w: self.ac_w,
        }
    }
}
