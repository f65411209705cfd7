//! DSMR 5 telegrams as a P1 port sends them: `/` header, OBIS lines, and
//! `!` followed by the CRC-16/ARC of everything from `/` to `!` inclusive.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::crc::crc16;
use super::model::MeterSample;

/// How a telegram is spoilt, for the meter-garbage fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spoil {
    None,
    /// The CRC does not match the text.
    Crc,
    /// The telegram stops before its `!CRC` line.
    Truncated,
}

/// A telegram for `sample` (three phases, split evenly) taken at `time`.
pub fn telegram(sample: &MeterSample, time: DateTime<Utc>, spoil: Spoil) -> String {
    let kw = |w: f64| w.max(0.0) / 1000.0;
    let import = kw(sample.grid_w);
    let export = kw(-sample.grid_w);
    let mut t = String::new();
    t.push_str("/ISk5\\2MT382-1000\r\n\r\n");
    t.push_str("1-3:0.2.8(50)\r\n");
    // DSMR's timestamp: YYMMDDhhmmss and W (winter) or S (summer) time.
    let _ = write!(t, "0-0:1.0.0({}W)\r\n", time.format("%y%m%d%H%M%S"));
    t.push_str("0-0:96.1.1(4530303034303031353934373534343134)\r\n");
    let _ = write!(t, "1-0:1.8.1({:010.3}*kWh)\r\n", sample.import_wh / 1000.0);
    t.push_str("1-0:1.8.2(000000.000*kWh)\r\n");
    let _ = write!(t, "1-0:2.8.1({:010.3}*kWh)\r\n", sample.export_wh / 1000.0);
    t.push_str("1-0:2.8.2(000000.000*kWh)\r\n");
    t.push_str("0-0:96.14.0(0001)\r\n");
    let _ = write!(t, "1-0:1.7.0({import:06.3}*kW)\r\n");
    let _ = write!(t, "1-0:2.7.0({export:06.3}*kW)\r\n");
    for (voltage, current) in ["32", "52", "72"].iter().zip(["31", "51", "71"]) {
        let amps = (sample.grid_w.abs() / 3.0 / 230.0).round() as i64;
        let _ = write!(
            t,
            "1-0:{voltage}.7.0(230.0*V)\r\n1-0:{current}.7.0({amps:03}*A)\r\n"
        );
    }
    for (import_code, export_code) in [("21", "22"), ("41", "42"), ("61", "62")] {
        let _ = write!(
            t,
            "1-0:{import_code}.7.0({:06.3}*kW)\r\n1-0:{export_code}.7.0({:06.3}*kW)\r\n",
            import / 3.0,
            export / 3.0
        );
    }
    if spoil == Spoil::Truncated {
        return t;
    }
    t.push('!');
    let mut crc = crc16(t.as_bytes());
    if spoil == Spoil::Crc {
        crc ^= 0x5A5A;
    }
    let _ = write!(t, "{crc:04X}\r\n");
    t
}
