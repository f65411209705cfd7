//! What the controller tells the outside world besides its log and status
//! file: the reference controller's status events (`start`, `stop`,
//! `change` with old and new value) and its meter and device samples, for
//! a server to store. The controller calls a `Reporter`; the calls must not
//! block (an implementation that posts over HTTP queues and sends from its
//! own task).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::zendure::core::energy::HourRecord;
use crate::zendure::core::manual::Override;

/// A status event, as the reference controller posts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StatusEvent {
    Start {
        timestamp: i64,
    },
    Stop {
        timestamp: i64,
    },
    /// The command written changed: old and new setpoint in W (positive
    /// charges, negative discharges).
    Change {
        old: i64,
        new: i64,
        timestamp: i64,
    },
    /// An override from the owner took over (or replaced another).
    Override {
        manual: Override,
        timestamp: i64,
    },
    /// The override in force ended: cleared, or its time ran out.
    OverrideEnded {
        manual: Override,
        timestamp: i64,
    },
}

impl StatusEvent {
    /// The posted `type` of an override that took over, and of one that
    /// ended: words of our own, which the reference's server stores and
    /// lists like any other type.
    pub const OVERRIDE: &'static str = "override";
    pub const OVERRIDE_ENDED: &'static str = "override_end";
}

/// A meter sample: `{timestamp, total_power}` (net W, import positive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterSample {
    pub timestamp: i64,
    pub total_power: i32,
}

/// A device sample: `{timestamp, properties, packData}` as the device sent
/// them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSample {
    pub timestamp: i64,
    pub properties: Map<String, Value>,
    #[serde(rename = "packData")]
    pub pack_data: Vec<Value>,
}

/// A device report's properties and pack data as sent: the server keeps
/// them; the controller passes them on without reading them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Payload {
    properties: Map<String, Value>,
    pack_data: Vec<Value>,
}

impl Payload {
    pub fn new(properties: Map<String, Value>, pack_data: Vec<Value>) -> Payload {
        Payload {
            properties,
            pack_data,
        }
    }

    /// The sample a server stores.
    pub fn sample(&self, timestamp: i64) -> DeviceSample {
        DeviceSample {
            timestamp,
            properties: self.properties.clone(),
            pack_data: self.pack_data.clone(),
        }
    }

    /// The properties as sent, for a person (`zendure status --json`).
    pub fn properties(&self) -> &Map<String, Value> {
        &self.properties
    }
}

/// What the poster has done, for the controller's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosterStats {
    pub delivered: u64,
    /// Waiting in the queue file.
    pub queued: usize,
    /// The oldest reports dropped because the queue was full.
    pub dropped: u64,
    /// Reports the server refused as malformed (4xx other than 401/403/408/429).
    pub rejected: u64,
    /// The last failure, cleared when a post succeeds.
    pub last_error: Option<String>,
}

/// Where the controller sends its events and samples.
pub trait Reporter: Send {
    fn status(&mut self, event: StatusEvent);
    fn meter(&mut self, sample: MeterSample);
    fn device(&mut self, sample: DeviceSample);
    /// One run's energy account of an hour (at the hour's end, and the
    /// partial hour at a clean stop).
    fn energy(&mut self, hour: HourRecord);
}

/// Logs status events; samples only at debug level (they come every
/// interval).
#[derive(Debug, Default)]
pub struct LogReporter;

impl Reporter for LogReporter {
    fn status(&mut self, event: StatusEvent) {
        tracing::debug!(target: "zendure::report", ?event, "status event");
    }

    fn meter(&mut self, sample: MeterSample) {
        tracing::trace!(target: "zendure::report", ?sample, "meter sample");
    }

    fn device(&mut self, sample: DeviceSample) {
        tracing::trace!(target: "zendure::report", timestamp = sample.timestamp, "device sample");
    }

    fn energy(&mut self, hour: HourRecord) {
        tracing::debug!(target: "zendure::report", ?hour, "energy of an hour");
    }
}
