//! The GX settings adapters: `com.victronenergy.settings` over D-Bus (on
//! the GX) or over the GX's MQTT broker (from another machine). The rest of
//! the program sees only the [`Settings`] trait, so both feed the same plan.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use crate::zcell::slot::{Field, Leaf, SlotIndex, SlotValues, Write};

mod dbus;
pub mod dess;
#[cfg(feature = "mqtt")]
mod mqtt;

pub use dbus::DbusSettings;
#[cfg(feature = "mqtt")]
pub use mqtt::{MqttOptions, MqttSettings};

pub const SERVICE: &str = "com.victronenergy.settings";
pub const TIME_ZONE_PATH: &str = "/Settings/System/TimeZone";

/// Where the GX settings are: D-Bus on the GX, or its MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GxTarget {
    Dbus,
    Mqtt { host: String, port: u16, tls: bool },
}

impl std::str::FromStr for GxTarget {
    type Err = anyhow::Error;

    /// `dbus`, `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883).
    fn from_str(s: &str) -> Result<Self> {
        if s == "dbus" {
            return Ok(GxTarget::Dbus);
        }
        let (tls, rest, default_port) = if let Some(rest) = s.strip_prefix("mqtts://") {
            (true, rest, 8883)
        } else if let Some(rest) = s.strip_prefix("mqtt://") {
            (false, rest, 1883)
        } else {
            anyhow::bail!(
                "`{s}` is not a GX (use dbus, mqtt://HOST[:PORT] or mqtts://HOST[:PORT])"
            );
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| anyhow!("`{s}`: `{port}` is not a port"))?;
                (host, port)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        anyhow::ensure!(
            !host.is_empty() && !host.contains(['/', '@', ' ', '?', '#']),
            "`{s}` has no usable host"
        );
        Ok(GxTarget::Mqtt {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

/// The connected GX, whichever way.
pub enum Gx {
    Dbus(DbusSettings),
    #[cfg(feature = "mqtt")]
    Mqtt(MqttSettings),
}

/// How to reach the GX: the target and, for MQTT, the rest.
#[derive(Debug, Clone)]
pub struct GxOptions {
    pub target: GxTarget,
    #[cfg(feature = "mqtt")]
    pub mqtt: MqttOptions,
}

pub async fn connect(options: &GxOptions) -> Result<Gx> {
    match &options.target {
        GxTarget::Dbus => Ok(Gx::Dbus(DbusSettings::connect().await?)),
        #[cfg(feature = "mqtt")]
        GxTarget::Mqtt { .. } => Ok(Gx::Mqtt(MqttSettings::connect(&options.mqtt).await?)),
        #[cfg(not(feature = "mqtt"))]
        GxTarget::Mqtt { .. } => anyhow::bail!(
            "this build has no MQTT support (the GX build leaves it out): use --gx dbus"
        ),
    }
}

impl Settings for Gx {
    async fn time_zone(&self) -> Result<String> {
        match self {
            Gx::Dbus(gx) => gx.time_zone().await,
            #[cfg(feature = "mqtt")]
            Gx::Mqtt(gx) => gx.time_zone().await,
        }
    }

    async fn read_slots(&self, slots: &[SlotIndex]) -> Result<BTreeMap<SlotIndex, SlotValues>> {
        match self {
            Gx::Dbus(gx) => gx.read_slots(slots).await,
            #[cfg(feature = "mqtt")]
            Gx::Mqtt(gx) => gx.read_slots(slots).await,
        }
    }

    async fn write(&self, write: Write) -> Result<()> {
        match self {
            Gx::Dbus(gx) => gx.write(write).await,
            #[cfg(feature = "mqtt")]
            Gx::Mqtt(gx) => gx.write(write).await,
        }
    }

    async fn read_numbers(&self, group: &str, leaves: &[String]) -> Result<BTreeMap<String, f64>> {
        match self {
            Gx::Dbus(gx) => gx.read_numbers(group, leaves).await,
            #[cfg(feature = "mqtt")]
            Gx::Mqtt(gx) => gx.read_numbers(group, leaves).await,
        }
    }

    async fn write_number(&self, path: &str, value: Number) -> Result<()> {
        match self {
            Gx::Dbus(gx) => gx.write_number(path, value).await,
            #[cfg(feature = "mqtt")]
            Gx::Mqtt(gx) => gx.write_number(path, value).await,
        }
    }
}

/// A value for a numeric setting, in the type the setting has (the GX
/// would coerce it anyway; the right type keeps logs and payloads plain).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(n) => write!(f, "{n}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// What zcell-sched needs of the GX settings.
#[allow(async_fn_in_trait)]
pub trait Settings {
    /// The GX time zone setting, e.g. `Australia/Hobart` or `/UTC`.
    async fn time_zone(&self) -> Result<String>;
    /// The current values of the given slots.
    async fn read_slots(&self, slots: &[SlotIndex]) -> Result<BTreeMap<SlotIndex, SlotValues>>;
    /// One write; an error names the leaf. Over MQTT a refused write is
    /// silent: the read-back after writing catches it.
    async fn write(&self, write: Write) -> Result<()>;
    /// Numeric settings, each a full path below `group` (or `group` itself,
    /// a single leaf), read together where the transport allows. A leaf the GX lacks fails the read, as
    /// [`MissingSetting`] over D-Bus, as a timeout naming it over MQTT.
    async fn read_numbers(&self, group: &str, leaves: &[String]) -> Result<BTreeMap<String, f64>>;
    /// One numeric write to a full path; as [`Settings::write`].
    async fn write_number(&self, path: &str, value: Number) -> Result<()>;
}

/// Each slot's values, from a lookup of one leaf's integer value (None
/// when the GX does not have the leaf: an error but for `AllowDischarge`).
fn slots_from(
    slots: &[SlotIndex],
    mut value_of: impl FnMut(Leaf) -> Result<Option<i32>>,
) -> Result<BTreeMap<SlotIndex, SlotValues>> {
    slots
        .iter()
        .map(|&slot| {
            let mut get = |field| {
                let leaf = slot.leaf(field);
                value_of(leaf)?.ok_or_else(|| anyhow::Error::new(MissingSetting(leaf.to_string())))
            };
            let values = SlotValues {
                day: get(Field::Day)?,
                start: get(Field::Start)?,
                duration: get(Field::Duration)?,
                soc: get(Field::Soc)?,
                allow_discharge: value_of(slot.leaf(Field::AllowDischarge))?,
            };
            Ok((slot, values))
        })
        .collect()
}

/// A path this firmware does not have; callers fall back or report it.
#[derive(Debug)]
pub struct MissingSetting(pub String);

impl std::fmt::Display for MissingSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: no such setting on this GX (firmware too old?)",
            self.0
        )
    }
}

impl std::error::Error for MissingSetting {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!("dbus".parse::<GxTarget>().unwrap(), GxTarget::Dbus);
        let mqtt = |host: &str, port, tls| GxTarget::Mqtt {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(
            "mqtt://venus.local".parse::<GxTarget>().unwrap(),
            mqtt("venus.local", 1883, false)
        );
        assert_eq!(
            "mqtts://10.1.1.5:9883/".parse::<GxTarget>().unwrap(),
            mqtt("10.1.1.5", 9883, true)
        );
        assert_eq!(
            "mqtt://[::1]:1884".parse::<GxTarget>().unwrap(),
            mqtt("::1", 1884, false)
        );
        for bad in [
            "",
            "http://gx",
            "mqtt://",
            "mqtt://gx:port",
            "mqtt://user@gx",
            "DBus",
        ] {
            assert!(bad.parse::<GxTarget>().is_err(), "{bad:?}");
        }
    }
}
