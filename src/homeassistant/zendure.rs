//! The Zendure controller in Home Assistant: its entities, its state
//! (the controller's status document with the override controls' values),
//! and the override controls turned into requests to the controller.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::config::HaConfig;
use super::discovery::{
    Device, Entity, Kind, Topics, optional, optional_text, payload, with_availability,
};
use super::session::{self, Command, Content};
use crate::zendure::core::law::Limits;
use crate::zendure::core::manual::{OverrideMode, OverrideRequest};
use crate::zendure::core::status::StatusDoc;

/// The select's options: `auto` follows the schedule.
pub const MODES: &[&str] = &["auto", "idle", "charge", "discharge", "netzero", "netzero+"];
const STATES: &[&str] = &["running", "stopped"];
/// The longest override HA can ask for, in s: a week.
const MAX_LASTING_S: f64 = 7.0 * 86_400.0;

const MODE: &str = "override_mode";
const WATTS: &str = "override_watts";
const LASTING: &str = "override_duration";

/// The four running totals the energy accounting adds to the status.
const ENERGY: [(&str, &str, &str); 4] = [
    ("grid_import", "Grid import", "grid_import_kwh"),
    ("grid_export", "Grid export", "grid_export_kwh"),
    ("battery_charged", "Battery charged", "battery_charged_kwh"),
    (
        "battery_discharged",
        "Battery discharged",
        "battery_discharged_kwh",
    ),
];

pub fn entities(limits: Limits) -> Vec<Entity> {
    let sensor = |key, name, kind, template: &str| Entity::Sensor {
        key,
        name,
        kind,
        template: template.to_string(),
    };
    let mut list = vec![
        sensor(
            "grid_power",
            "Grid power",
            Kind::Power,
            &optional("meter.grid_w"),
        ),
        sensor(
            "battery_power",
            "Battery power",
            Kind::Power,
            &optional("device.battery_w"),
        ),
        Entity::BinarySensor {
            key: "charging",
            name: "Charging",
            device_class: "battery_charging",
            template: "{{ 'ON' if (value_json.device.battery_w or 0) > 0 else 'OFF' }}".into(),
        },
        sensor(
            "soc",
            "State of charge",
            Kind::Battery,
            &optional("device.soc_pct"),
        ),
        sensor(
            "ac_power",
            "AC power",
            Kind::Power,
            &optional("device.ac_w"),
        ),
        // A mode name or watts: text, so no unit and no state class.
        sensor(
            "schedule_value",
            "Schedule value",
            Kind::Text,
            "{{ value_json.schedule.value }}",
        ),
        sensor(
            "target",
            "Target",
            Kind::Power,
            "{{ value_json.target.setpoint_w }}",
        ),
        sensor("reason", "Reason", Kind::Text, &optional_text("reason")),
        sensor(
            "last_command",
            "Last command",
            Kind::Power,
            &optional("last_command.setpoint_w"),
        ),
        sensor(
            "state",
            "Controller state",
            Kind::Enum(STATES),
            "{{ 'stopped' if value_json.stopped else 'running' }}",
        ),
        sensor(
            "override_until",
            "Override ends",
            Kind::Timestamp,
            &optional("override.until"),
        ),
        Entity::Select {
            key: MODE,
            name: "Override",
            options: MODES,
            template: "{{ value_json.override.mode if value_json.override else 'auto' }}".into(),
        },
        Entity::Number {
            key: WATTS,
            name: "Override power",
            device_class: "power",
            unit: "W",
            range: (
                0.0,
                f64::from(limits.max_charge_w.max(limits.max_discharge_w)),
            ),
            step: 10.0,
            template: "{{ value_json.controls.watts }}".into(),
        },
        // 0: until the schedule's next change.
        Entity::Number {
            key: LASTING,
            name: "Override duration",
            device_class: "duration",
            unit: "s",
            range: (0.0, MAX_LASTING_S),
            step: 1.0,
            template: "{{ value_json.controls.duration_s }}".into(),
        },
    ];
    list.extend(ENERGY.map(|(key, name, total)| Entity::Sensor {
        key,
        name,
        kind: Kind::Energy,
        template: optional(&format!("energy.{total}")),
    }));
    list
}

/// The device as its report names it.
pub fn device(doc: &StatusDoc) -> Device {
    let model = doc.device.product.clone();
    Device {
        name: format!("Zendure {}", model.as_deref().unwrap_or("SolarFlow")),
        manufacturer: "Zendure".into(),
        model,
        serial: doc.device.sn.clone(),
    }
}

/// What the override controls hold: the power and duration the next
/// choice of mode uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Controls {
    pub watts: u32,
    /// 0: until the schedule's next change.
    pub duration_s: f64,
}

impl Controls {
    /// Applies one command; the request for the controller, if the command
    /// asks for one. A new power or duration while an override is in force
    /// applies to it at once.
    pub fn command(
        &mut self,
        command: &Command,
        current: Option<OverrideMode>,
        limits: Limits,
    ) -> Option<OverrideRequest> {
        let number = || {
            command
                .payload
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
        };
        let mode = match command.control.as_str() {
            MODE if command.payload == "auto" => return Some(OverrideRequest::Clear),
            MODE => OverrideMode::parse(&command.payload)?,
            WATTS => {
                let max = limits.max_charge_w.max(limits.max_discharge_w);
                self.watts = number()?.clamp(0.0, f64::from(max)).round() as u32;
                current?
            }
            LASTING => {
                self.duration_s = number()?.clamp(0.0, MAX_LASTING_S);
                current?
            }
            _ => return None,
        };
        Some(OverrideRequest::Set {
            mode,
            watts: self.watts,
            lasting: (self.duration_s > 0.0).then(|| Duration::from_secs_f64(self.duration_s)),
        })
    }
}

/// The state HA reads: the status document and the controls.
pub fn state(doc: &StatusDoc, controls: Controls) -> Value {
    let mut state = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    state["controls"] = json!({"watts": controls.watts, "duration_s": controls.duration_s});
    state
}

/// Publishes the controller in HA until `stop`: waits for the first
/// status that names the device (its serial number names the node when
/// the config does not), then runs the session, turning the controls'
/// commands into override requests.
pub async fn run(
    config: HaConfig,
    limits: Limits,
    mut statuses: watch::Receiver<Option<Box<StatusDoc>>>,
    overrides: mpsc::Sender<OverrideRequest>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let named = async {
        let doc = statuses
            .wait_for(|d| d.as_ref().is_some_and(|d| d.device.sn.is_some()))
            .await
            .ok()?;
        doc.as_ref().and_then(|d| d.device.sn.clone())
    };
    let sn = tokio::select! {
        _ = stop.wait_for(|s| *s) => return Ok(()),
        sn = named => match sn {
            Some(sn) => sn,
            None => return Ok(()),
        },
    };
    let node = config
        .node_id
        .clone()
        .unwrap_or_else(|| format!("zendure_{sn}"));
    let topics = Topics::new(&config.discovery_prefix, &node);
    let entities = entities(limits);
    let mut controls = Controls {
        watts: limits.max_charge_w.min(limits.max_discharge_w),
        duration_s: 0.0,
    };
    let (content_tx, content) = watch::channel(None);
    let (commands_tx, mut commands) = mpsc::channel(16);
    let session = tokio::spawn(session::run(
        config,
        topics.clone(),
        Entity::commanded(&entities),
        content,
        commands_tx,
    ));
    let publish = |doc: &StatusDoc, controls: Controls| {
        content_tx.send_replace(Some(Content {
            discovery: with_availability(payload(&topics, &device(doc), &entities), &topics),
            state: state(doc, controls),
        }));
    };
    let mut last: Option<Box<StatusDoc>> = None;
    loop {
        // The controller's last status comes before its stop.
        tokio::select! {
            biased;
            changed = statuses.changed() => {
                if changed.is_err() {
                    break;
                }
                last = statuses.borrow_and_update().clone();
                if let Some(doc) = &last {
                    publish(doc, controls);
                }
            }
            Some(command) = commands.recv() => {
                let current = last.as_ref().and_then(|d| d.manual).map(|m| m.mode);
                if let Some(request) = controls.command(&command, current, limits) {
                    let _ = overrides.try_send(request);
                }
                if let Some(doc) = &last {
                    publish(doc, controls);
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    drop(content_tx);
    session.await?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 800 W device.
    fn limits() -> Limits {
        crate::zendure::core::controller::tests::settings().limits
    }

    fn command(control: &str, payload: &str) -> Command {
        Command {
            control: control.into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn the_entities_ha_needs() {
        let list = entities(limits());
        let topics = Topics::new("homeassistant", "zendure_HOA1");
        let device = Device {
            name: "Zendure".into(),
            manufacturer: "Zendure".into(),
            model: None,
            serial: None,
        };
        let p = payload(&topics, &device, &list);
        let c = &p["cmps"];
        for key in [
            "grid_import",
            "grid_export",
            "battery_charged",
            "battery_discharged",
        ] {
            assert_eq!(c[key]["state_class"], "total_increasing", "{key}");
            assert_eq!(c[key]["unit_of_measurement"], "kWh", "{key}");
        }
        for key in [
            "grid_power",
            "battery_power",
            "ac_power",
            "target",
            "last_command",
        ] {
            assert_eq!(c[key]["unit_of_measurement"], "W", "{key}");
        }
        assert_eq!(c["soc"]["device_class"], "battery");
        // Its state can be "netzero": no unit, no state class.
        let value = c["schedule_value"].as_object().unwrap();
        assert!(!value.contains_key("unit_of_measurement") && !value.contains_key("state_class"));
        assert_eq!(c[MODE]["options"], json!(MODES));
        assert_eq!(c[WATTS]["max"].as_f64(), Some(800.0));
        assert_eq!(c[LASTING]["unit_of_measurement"], "s");
    }

    #[test]
    fn commands_become_requests() {
        let mut controls = Controls {
            watts: 300,
            duration_s: 0.0,
        };
        let l = limits();
        assert_eq!(
            controls.command(&command(MODE, "charge"), None, l),
            Some(OverrideRequest::Set {
                mode: OverrideMode::Charge,
                watts: 300,
                lasting: None
            })
        );
        // A new power with no override in force waits for the mode.
        assert_eq!(controls.command(&command(WATTS, "450"), None, l), None);
        assert_eq!(controls.watts, 450);
        assert_eq!(
            controls.command(&command(LASTING, "90"), Some(OverrideMode::Discharge), l),
            Some(OverrideRequest::Set {
                mode: OverrideMode::Discharge,
                watts: 450,
                lasting: Some(Duration::from_secs(90))
            })
        );
        assert_eq!(
            controls.command(&command(MODE, "auto"), Some(OverrideMode::Idle), l),
            Some(OverrideRequest::Clear)
        );
        for bad in [
            command(MODE, "boost"),
            command(WATTS, "lots"),
            command("x", "1"),
        ] {
            assert_eq!(controls.command(&bad, Some(OverrideMode::Idle), l), None);
        }
        controls.command(&command(WATTS, "99999"), None, l);
        assert_eq!(controls.watts, 800, "clamped to the device's limit");
        controls.command(&command(LASTING, "-5"), None, l);
        assert_eq!(controls.duration_s, 0.0);
    }
}
