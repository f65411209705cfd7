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

use crate::zendure::http::Http;
use crate::zendure::law::{AcMode, Command, DevicePower, DeviceState, Moment};

/// The device's request body limit.
pub const MAX_WRITE_BYTES: usize = 512;

/// One battery pack of `packData`, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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

/// A decoded `/properties/report`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub sn: Option<String>,
    pub product: Option<String>,
    /// The device's own timestamp (unix seconds), when it sends one.
    pub timestamp: Option<i64>,
    /// As sent, for the status file and the server.
    pub properties: Map<String, Value>,
    pub pack_data: Vec<Value>,
    pub packs: Vec<Pack>,
}

impl Report {
    pub fn parse(body: &[u8]) -> Result<Report> {
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
        let report = Report {
            sn: doc.get("sn").and_then(Value::as_str).map(str::to_string),
            product: doc
                .get("product")
                .and_then(Value::as_str)
                .map(str::to_string),
            timestamp: doc.get("timestamp").and_then(Value::as_i64),
            packs: pack_data.iter().map(decode_pack).collect(),
            properties,
            pack_data,
        };
        // Without a SoC the law cannot keep the bounds: treat as garbage.
        report.soc_pct()?;
        Ok(report)
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.properties.get(name).and_then(number)
    }

    /// `electricLevel`, the average SoC in %.
    pub fn soc_pct(&self) -> Result<u8> {
        let level = self
            .int("electricLevel")
            .context("the report has no numeric `electricLevel`")?;
        u8::try_from(level)
            .ok()
            .filter(|l| *l <= 100)
            .with_context(|| format!("`electricLevel` {level} is not a percentage"))
    }

    /// The device's AC power as the grid sees it: positive = drawn
    /// (charging), negative = delivered. Falls back to the battery side
    /// when the firmware reports no AC side.
    pub fn ac_w(&self) -> i32 {
        let ac = (self.int("gridInputPower"), self.int("outputHomePower"));
        let (drawn, delivered) = match ac {
            (None, None) => (
                self.int("outputPackPower").unwrap_or(0),
                self.int("packInputPower").unwrap_or(0),
            ),
            (i, o) => (i.unwrap_or(0), o.unwrap_or(0)),
        };
        i32::try_from(drawn - delivered).unwrap_or(0)
    }

    /// Battery power: positive charging, negative discharging.
    pub fn battery_w(&self) -> i64 {
        self.int("outputPackPower").unwrap_or(0) - self.int("packInputPower").unwrap_or(0)
    }

    pub fn ac_mode(&self) -> Option<AcMode> {
        match self.int("acMode") {
            Some(1) => Some(AcMode::Charge),
            Some(2) => Some(AcMode::Discharge),
            _ => None,
        }
    }

    /// `socLimit`: 1 the charge cut-off is reached, 2 the discharge one.
    pub fn cut_off(&self) -> Option<&'static str> {
        match self.int("socLimit") {
            Some(1) => Some("charge cut-off reached"),
            Some(2) => Some("discharge cut-off reached"),
            _ => None,
        }
    }

    fn watts(&self, name: &str) -> Option<u32> {
        self.int(name).and_then(|w| u32::try_from(w).ok())
    }

    /// What the law needs, read at `read`.
    pub fn state(&self, read: Moment) -> Result<DeviceState> {
        Ok(DeviceState {
            read,
            soc_pct: self.soc_pct()?,
            ac_w: self.ac_w(),
            charge_max_w: self.watts("chargeMaxLimit"),
            discharge_max_w: self.watts("inverseMaxPower"),
            ac_mode: self.ac_mode(),
            input_limit_w: self.watts("inputLimit").unwrap_or(0),
            output_limit_w: self.watts("outputLimit").unwrap_or(0),
        })
    }

    pub fn power(&self, at: Moment) -> DevicePower {
        DevicePower {
            at,
            ac_w: self.ac_w(),
        }
    }
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
    fn report(&self) -> impl Future<Output = Result<Report>> + Send;
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
    async fn report(&self) -> Result<Report> {
        let url = format!("{}/properties/report", self.base);
        let body = self.http.get(&url).await.with_context(|| url.clone())?;
        Report::parse(&body).with_context(|| url)
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
    use serde_json::json;

    fn report(properties: Value) -> Result<Report> {
        Report::parse(
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
        assert_eq!(r.soc_pct().unwrap(), 55);
        assert_eq!(r.ac_w(), 310);
        assert_eq!(r.battery_w(), 295);
        let s = r.state(Moment::default()).unwrap();
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
        assert_eq!(r.ac_w(), -420);
        let r = report(json!({"electricLevel": 40, "packInputPower": 400, "outputPackPower": 0}))
            .unwrap();
        assert_eq!(r.ac_w(), -400);
        let r = report(json!({"electricLevel": 40, "socLimit": 2})).unwrap();
        assert_eq!(r.cut_off(), Some("discharge cut-off reached"));
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
            assert!(Report::parse(body.as_bytes()).is_err(), "{body}");
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
