//! The P1 meters. Each returns the net grid power (positive = import) and
//! when it was taken. Garbage (bad JSON, HTTP errors, a DSMR CRC failure)
//! is an error, which the controller treats as no reading.

pub mod dsmr;
pub mod homewizard;
pub mod zendure_p1;

use anyhow::Result;
use serde_json::Value;
use tokio::time::Instant;

use crate::zendure::config::{Address, MeterConfig};
use crate::zendure::io::http::Http;

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Net grid power, W: positive = import, negative = export.
    pub grid_w: i32,
    /// When it was received (the meter's own lag comes on top).
    pub taken: Instant,
}

/// A meter as the controller sees it.
pub trait Meter {
    fn read(&mut self) -> impl Future<Output = Result<Reading>> + Send;
    /// For messages: the kind and where it is.
    fn describe(&self) -> String;
}

/// The meter the config names.
pub enum AnyMeter {
    HomeWizard(homewizard::HomeWizard),
    ZendureP1(zendure_p1::ZendureP1),
    Dsmr(dsmr::DsmrTcp),
}

impl AnyMeter {
    /// The meter `config` names, at `address` (`"auto"` resolved).
    pub fn new(config: &MeterConfig, address: &Address, http: &Http) -> Result<AnyMeter> {
        Ok(match config {
            MeterConfig::HomeWizard { .. } => AnyMeter::HomeWizard(homewizard::HomeWizard::v1(
                http.clone(),
                &address.with_port(80),
            )),
            MeterConfig::HomeWizardV2 {
                token_file,
                ca_file,
                ..
            } => AnyMeter::HomeWizard(homewizard::HomeWizard::v2(
                address,
                token_file,
                ca_file,
                http.timeout(),
            )?),
            MeterConfig::ZendureP1 { .. } => AnyMeter::ZendureP1(zendure_p1::ZendureP1::new(
                http.clone(),
                &address.with_port(80),
            )),
            MeterConfig::DsmrTcp {
                telegram_period, ..
            } => AnyMeter::Dsmr(dsmr::DsmrTcp::new(
                &address.with_port(0),
                http.timeout(),
                *telegram_period,
            )),
        })
    }
}

impl Meter for AnyMeter {
    async fn read(&mut self) -> Result<Reading> {
        match self {
            AnyMeter::HomeWizard(m) => m.read().await,
            AnyMeter::ZendureP1(m) => m.read().await,
            AnyMeter::Dsmr(m) => m.read().await,
        }
    }

    fn describe(&self) -> String {
        match self {
            AnyMeter::HomeWizard(m) => m.describe(),
            AnyMeter::ZendureP1(m) => m.describe(),
            AnyMeter::Dsmr(m) => m.describe(),
        }
    }
}

/// A power field of a JSON answer as whole W (meters send floats).
pub(crate) fn watts_field(doc: &Value, field: &str) -> Result<i32> {
    let w = doc
        .get(field)
        .and_then(Value::as_f64)
        .filter(|w| w.is_finite() && w.abs() < 1e7)
        .ok_or_else(|| anyhow::anyhow!("no numeric `{field}` in the answer"))?;
    Ok(w.round() as i32)
}

/// Parses a JSON answer and takes one power field.
pub(crate) fn json_watts(body: &[u8], field: &str) -> Result<i32> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| anyhow::anyhow!("the answer is not JSON: {e}"))?;
    watts_field(&doc, field)
}
