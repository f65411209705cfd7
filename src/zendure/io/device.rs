//! The Zendure local HTTP API (zenSDK): `GET /properties/report` and
//! `POST /properties/write`.
//!
//! Every write is the full command: `sn` in the body (required), both
//! limits, `acMode` when the command has a direction, and `smartMode: 1`
//! (without it the device writes the values to flash, and a bare limit
//! write may be ignored). Values are integers and limits never negative
//! (a negative `outputLimit` gives a high output). Newer firmware refuses
//! bodies of 512 bytes or more.

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::zendure::core::law::Command;
use crate::zendure::core::reading::{CutOff, DeviceReading, Pack};
use crate::zendure::core::report::Payload;
use crate::zendure::io::http::Http;

/// The device's request body limit.
pub const MAX_WRITE_BYTES: usize = 512;

/// The average SoC, %.
const SOC: &str = "electricLevel";
/// Power flowing into the pack, W.
const INTO_PACK: &str = "outputPackPower";
/// Power flowing out of the pack, W.
const OUT_OF_PACK: &str = "packInputPower";

/// What a server keeps of a posted sample's `properties`, each when given:
/// a sample is stored even when it lacks them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleFigures {
    pub soc_pct: Option<f64>,
    /// Positive charging, negative discharging.
    pub battery_w: Option<f64>,
}

pub fn sample_figures(properties: &Map<String, Value>) -> SampleFigures {
    let number = |name: &str| properties.get(name).and_then(Value::as_f64);
    SampleFigures {
        soc_pct: number(SOC),
        battery_w: match (number(INTO_PACK), number(OUT_OF_PACK)) {
            (None, None) => None,
            (into, out) => Some(into.unwrap_or(0.0) - out.unwrap_or(0.0)),
        },
    }
}

/// Decodes a `/properties/report` once into the reading the core uses;
/// the properties as sent ride along, unread, for the server.
pub fn decode(body: &[u8]) -> Result<DeviceReading> {
    let doc: Value = serde_json::from_slice(body).context("the report is not JSON")?;
    let properties = doc
        .get("properties")
        .and_then(Value::as_object)
        .context("the report has no `properties` object")?
        .clone();
    let pack_data = match doc.get("packData") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(other) => bail!("`packData` is not a list: {other}"),
    };
    let int = |name: &str| properties.get(name).and_then(number);
    let watts = |name: &str| int(name).and_then(|w| u32::try_from(w).ok());
    // `electricLevel`, the average SoC in %. Without it the law cannot
    // keep the bounds: the report counts as garbage.
    let level = int(SOC).context("the report has no numeric `electricLevel`")?;
    let soc_pct = u8::try_from(level)
        .ok()
        .filter(|l| *l <= 100)
        .with_context(|| format!("`electricLevel` {level} is not a percentage"))?;
    // The AC side as the grid sees it, positive drawn; the battery side
    // when the firmware reports no AC side.
    let (drawn, delivered) = match (int("gridInputPower"), int("outputHomePower")) {
        (None, None) => (int(INTO_PACK).unwrap_or(0), int(OUT_OF_PACK).unwrap_or(0)),
        (i, o) => (i.unwrap_or(0), o.unwrap_or(0)),
    };
    Ok(DeviceReading {
        sn: doc.get("sn").and_then(Value::as_str).map(str::to_string),
        product: doc
            .get("product")
            .and_then(Value::as_str)
            .map(str::to_string),
        soc_pct,
        ac_w: i32::try_from(drawn - delivered).unwrap_or(0),
        battery_w: int(INTO_PACK).unwrap_or(0) - int(OUT_OF_PACK).unwrap_or(0),
        ac_mode: int("acMode").and_then(|m| u8::try_from(m).ok()),
        input_limit_w: watts("inputLimit"),
        output_limit_w: watts("outputLimit"),
        charge_max_w: watts("chargeMaxLimit"),
        discharge_max_w: watts("inverseMaxPower"),
        pack_state: int("packState"),
        // `socLimit`: 1 the charge cut-off is reached, 2 the discharge one.
        cut_off: match int("socLimit") {
            Some(1) => Some(CutOff::Charge),
            Some(2) => Some(CutOff::Discharge),
            _ => None,
        },
        packs: pack_data.iter().map(decode_pack).collect(),
        payload: Payload::new(properties, pack_data),
    })
}

/// A JSON number as an integer (devices send some as floats).
fn number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.round() as i64)
    })
}

fn decode_pack(v: &Value) -> Pack {
    let int = |name: &str| v.get(name).and_then(number);
    Pack {
        sn: v
            .get("sn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        soc_pct: int("socLevel"),
        state: int("state"),
        power_w: int("power"),
        max_temp_c: int("maxTemp").map(|t| (t - 2731) as f64 / 10.0),
        current_a: int("batcur").map(|c| f64::from(c as u16 as i16) / 10.0),
        min_cell_v: int("minVol").map(|v| v as f64 / 100.0),
        max_cell_v: int("maxVol").map(|v| v as f64 / 100.0),
    }
}

/// The write body for `command`, checked against the device's limit.
pub fn write_body(sn: &str, command: Command) -> Result<Vec<u8>> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Properties {
        #[serde(skip_serializing_if = "Option::is_none")]
        ac_mode: Option<u8>,
        input_limit: u32,
        output_limit: u32,
        smart_mode: u8,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        sn: &'a str,
        properties: Properties,
    }
    let (input_limit, output_limit) = match command {
        Command::Idle => (0, 0),
        Command::Charge { watts } => (watts, 0),
        Command::Discharge { watts } => (0, watts),
    };
    let body = serde_json::to_vec(&Body {
        sn,
        properties: Properties {
            ac_mode: command.ac_mode().map(|m| m as u8),
            input_limit,
            output_limit,
            smart_mode: 1,
        },
    })
    .context("cannot encode the command")?;
    ensure!(
        body.len() < MAX_WRITE_BYTES,
        "the command is {} bytes; the device takes under {MAX_WRITE_BYTES}",
        body.len()
    );
    Ok(body)
}

/// The device as the controller sees it.
pub trait Device {
    /// Reads `/properties/report`.
    fn report(&self) -> impl Future<Output = Result<DeviceReading>> + Send;
    /// Writes the full command.
    fn write(&self, sn: &str, command: Command) -> impl Future<Output = Result<()>> + Send;
    /// For messages: where it is.
    fn describe(&self) -> String;
}

/// The device over its local HTTP API.
pub struct HttpDevice {
    http: Http,
    base: String,
}

impl HttpDevice {
    /// `host_port` as `host:port`.
    pub fn new(http: Http, host_port: &str) -> HttpDevice {
        HttpDevice {
            http,
            base: format!("http://{host_port}"),
        }
    }
}

impl Device for HttpDevice {
    async fn report(&self) -> Result<DeviceReading> {
        let url = format!("{}/properties/report", self.base);
        let body = self.http.get(&url).await.with_context(|| url.clone())?;
        decode(&body).with_context(|| url)
    }

    async fn write(&self, sn: &str, command: Command) -> Result<()> {
        let url = format!("{}/properties/write", self.base);
        let body = write_body(sn, command)?;
        self.http
            .post_json(&url, body)
            .await
            .with_context(|| format!("{url} ({command})"))?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendure::core::law::{AcMode, Moment};
    use serde_json::json;

    fn report(properties: Value) -> Result<DeviceReading> {
        decode(
            json!({"timestamp": 1763900000, "messageId": 7, "sn": "HOA1", "version": 2,
                   "product": "solarFlow800", "properties": properties,
                   "packData": [{"sn": "P1", "socLevel": 55, "state": 1, "power": 300,
                                 "maxTemp": 3031, "batcur": 65486, "minVol": 330, "maxVol": 334}]})
            .to_string()
            .as_bytes(),
        )
    }

    #[test]
    fn decodes_a_report() {
        let r = report(
            json!({"electricLevel": 55, "gridInputPower": 310, "outputHomePower": 0,
            "outputPackPower": 295, "packInputPower": 0, "acMode": 1, "inputLimit": 300,
            "outputLimit": 0, "chargeMaxLimit": 1000, "inverseMaxPower": 800, "socLimit": 0}),
        )
        .unwrap();
        assert_eq!(r.sn.as_deref(), Some("HOA1"));
        assert_eq!(r.soc_pct, 55);
        assert_eq!(r.ac_w, 310);
        assert_eq!(r.battery_w, 295);
        let s = r.state(Moment::default());
        assert_eq!(s.ac_mode, Some(AcMode::Charge));
        assert_eq!((s.input_limit_w, s.output_limit_w), (300, 0));
        assert_eq!((s.charge_max_w, s.discharge_max_w), (Some(1000), Some(800)));
        let p = &r.packs[0];
        assert_eq!(p.max_temp_c, Some(30.0));
        assert_eq!(p.current_a, Some(-5.0));
        assert_eq!((p.min_cell_v, p.max_cell_v), (Some(3.3), Some(3.34)));
    }

    #[test]
    fn discharging_and_battery_side_fallback() {
        let r = report(json!({"electricLevel": 40, "gridInputPower": 0, "outputHomePower": 420}))
            .unwrap();
        assert_eq!(r.ac_w, -420);
        let r = report(json!({"electricLevel": 40, "packInputPower": 400, "outputPackPower": 0}))
            .unwrap();
        assert_eq!(r.ac_w, -400);
        let r = report(json!({"electricLevel": 40, "socLimit": 2})).unwrap();
        assert_eq!(
            r.cut_off.map(CutOff::text),
            Some("discharge cut-off reached")
        );
    }

    /// A server reads a posted sample's figures as the controller reads the
    /// report, but takes a sample without them.
    #[test]
    fn sample_figures_read_the_report_leniently() {
        let properties =
            json!({"electricLevel": 55.5, "outputPackPower": 0, "packInputPower": 400});
        let f = sample_figures(properties.as_object().unwrap());
        assert_eq!((f.soc_pct, f.battery_w), (Some(55.5), Some(-400.0)));
        assert_eq!(report(properties).unwrap().battery_w, -400);
        let f = sample_figures(json!({"gridInputPower": 5}).as_object().unwrap());
        assert_eq!((f.soc_pct, f.battery_w), (None, None));
    }

    #[test]
    fn garbage_reports_are_errors() {
        for body in [
            "".to_string(),
            "{".to_string(),
            json!({"sn": "x"}).to_string(),
            json!({"properties": {"electricLevel": "x"}}).to_string(),
            json!({"properties": {"electricLevel": 130}}).to_string(),
            json!({"properties": {"electricLevel": 50}, "packData": 5}).to_string(),
        ] {
            assert!(decode(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn write_bodies_are_full_integer_and_small() {
        let body =
            |c| serde_json::from_slice::<Value>(&write_body("HOA1NAH0000001", c).unwrap()).unwrap();
        assert_eq!(
            body(Command::Charge { watts: 300 }),
            json!({"sn": "HOA1NAH0000001", "properties": {"acMode": 1, "inputLimit": 300, "outputLimit": 0, "smartMode": 1}})
        );
        assert_eq!(
            body(Command::Discharge { watts: 450 }),
            json!({"sn": "HOA1NAH0000001", "properties": {"acMode": 2, "inputLimit": 0, "outputLimit": 450, "smartMode": 1}})
        );
        assert_eq!(
            body(Command::Idle),
            json!({"sn": "HOA1NAH0000001", "properties": {"inputLimit": 0, "outputLimit": 0, "smartMode": 1}})
        );
        let largest = write_body(&"S".repeat(64), Command::Discharge { watts: u32::MAX }).unwrap();
        assert!(largest.len() < MAX_WRITE_BYTES);
        assert!(write_body(&"S".repeat(600), Command::Idle).is_err());
    }
}
