//! Discovery payloads, pure: one retained message per device on
//! `<prefix>/device/<node_id>/config` (HA's device-based discovery), the
//! entities reading one JSON state per system through `value_template`s.
//!
//! What a real Home Assistant demands beyond its schema: the origin (`o`)
//! object, else it drops the whole device; a `unique_id` per component,
//! else the component is not tied to the device; `default_entity_id`
//! (`object_id` is ignored); a state topic on a `select`, else HA shows a
//! choice as obeyed whether or not it was; no unit and no `state_class` on
//! a sensor whose state is text, else HA rejects its states.

use serde_json::{Map, Value, json};

/// Where one node's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
    node: String,
}

impl Topics {
    pub fn new(discovery_prefix: &str, node_id: &str) -> Topics {
        Topics {
            prefix: discovery_prefix.to_string(),
            node: node_id.to_string(),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The device's discovery message.
    pub fn config(&self) -> String {
        format!("{}/device/{}/config", self.prefix, self.node)
    }

    /// HA's birth and last will: `online` when HA (re)starts.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// Retained `online`; `offline` as the last will and on a clean stop.
    pub fn availability(&self) -> String {
        format!("zcell-sched/{}/availability", self.node)
    }

    pub fn state(&self) -> String {
        format!("zcell-sched/{}/state", self.node)
    }

    /// Where HA sends a control's new value.
    pub fn command(&self, control: &str) -> String {
        format!("zcell-sched/{}/{control}/set", self.node)
    }
}

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// The device as HA lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub manufacturer: String,
    pub model: Option<String>,
    pub serial: Option<String>,
}

/// How HA shows a value: what it measures, its unit, and whether it is a
/// measurement or a running total (the Energy dashboard takes only
/// `total_increasing` energy in kWh, Wh or MWh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A power in W, a measurement.
    Power,
    /// A state of charge in %.
    Battery,
    /// A running total in kWh.
    Energy,
    /// Free text or a mode name: no unit, no state class.
    Text,
    /// One of `options`: HA's enum sensor.
    Enum(&'static [&'static str]),
    /// A moment (ISO 8601 with offset).
    Timestamp,
}

impl Kind {
    fn fill(self, c: &mut Map<String, Value>) {
        let (class, unit, state_class) = match self {
            Kind::Power => (Some("power"), Some("W"), Some("measurement")),
            Kind::Battery => (Some("battery"), Some("%"), Some("measurement")),
            Kind::Energy => (Some("energy"), Some("kWh"), Some("total_increasing")),
            Kind::Text => (None, None, None),
            Kind::Enum(options) => {
                c.insert("options".into(), json!(options));
                (Some("enum"), None, None)
            }
            Kind::Timestamp => (Some("timestamp"), None, None),
        };
        for (key, value) in [
            ("device_class", class),
            ("unit_of_measurement", unit),
            ("state_class", state_class),
        ] {
            if let Some(value) = value {
                c.insert(key.into(), json!(value));
            }
        }
    }
}

/// One entity of the device.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    Sensor {
        key: &'static str,
        name: &'static str,
        kind: Kind,
        template: String,
    },
    /// `template` renders `ON` or `OFF`.
    BinarySensor {
        key: &'static str,
        name: &'static str,
        device_class: &'static str,
        template: String,
    },
    /// Commands go to `Topics::command(key)`; the state is what the
    /// controller reports it obeys.
    Select {
        key: &'static str,
        name: &'static str,
        options: &'static [&'static str],
        template: String,
    },
    Number {
        key: &'static str,
        name: &'static str,
        device_class: &'static str,
        unit: &'static str,
        range: (f64, f64),
        step: f64,
        template: String,
    },
}

impl Entity {
    /// The keys of the entities Home Assistant sends commands to.
    pub fn commanded(entities: &[Entity]) -> Vec<&'static str> {
        entities
            .iter()
            .filter(|e| matches!(e, Entity::Select { .. } | Entity::Number { .. }))
            .map(Entity::key)
            .collect()
    }

    fn key(&self) -> &'static str {
        match self {
            Entity::Sensor { key, .. }
            | Entity::BinarySensor { key, .. }
            | Entity::Select { key, .. }
            | Entity::Number { key, .. } => key,
        }
    }

    fn component(&self, topics: &Topics) -> Value {
        let node = topics.node_id();
        let (platform, name, template) = match self {
            Entity::Sensor { name, template, .. } => ("sensor", name, template),
            Entity::BinarySensor { name, template, .. } => ("binary_sensor", name, template),
            Entity::Select { name, template, .. } => ("select", name, template),
            Entity::Number { name, template, .. } => ("number", name, template),
        };
        let key = self.key();
        let mut c = Map::new();
        c.insert("p".into(), json!(platform));
        c.insert("name".into(), json!(name));
        c.insert("unique_id".into(), json!(format!("{node}_{key}")));
        c.insert(
            "default_entity_id".into(),
            json!(format!("{platform}.{}_{key}", node.to_lowercase())),
        );
        c.insert("value_template".into(), json!(template));
        match self {
            Entity::Sensor { kind, .. } => kind.fill(&mut c),
            Entity::BinarySensor { device_class, .. } => {
                c.insert("device_class".into(), json!(device_class));
            }
            Entity::Select { options, .. } => {
                c.insert("options".into(), json!(options));
                c.insert("command_topic".into(), json!(topics.command(key)));
            }
            Entity::Number {
                device_class,
                unit,
                range,
                step,
                ..
            } => {
                c.insert("device_class".into(), json!(device_class));
                c.insert("unit_of_measurement".into(), json!(unit));
                c.insert("min".into(), json!(range.0));
                c.insert("max".into(), json!(range.1));
                c.insert("step".into(), json!(step));
                c.insert("mode".into(), json!("box"));
                c.insert("command_topic".into(), json!(topics.command(key)));
            }
        }
        Value::Object(c)
    }
}

/// The device's discovery message: the device, the origin, every entity
/// as a component, and the state topic they share.
pub fn payload(topics: &Topics, device: &Device, entities: &[Entity]) -> Value {
    let mut dev = Map::new();
    dev.insert("ids".into(), json!([topics.node_id()]));
    dev.insert("name".into(), json!(device.name));
    dev.insert("mf".into(), json!(device.manufacturer));
    if let Some(model) = &device.model {
        dev.insert("mdl".into(), json!(model));
    }
    if let Some(serial) = &device.serial {
        dev.insert("sn".into(), json!(serial));
    }
    dev.insert("sw".into(), json!(env!("CARGO_PKG_VERSION")));
    let cmps: Map<String, Value> = entities
        .iter()
        .map(|e| (e.key().to_string(), e.component(topics)))
        .collect();
    json!({
        "dev": dev,
        "o": {"name": "zcell-sched", "sw": env!("CARGO_PKG_VERSION")},
        "cmps": cmps,
        "state_topic": topics.state(),
        "qos": 0,
    })
}

/// `payload` for a device that is there only while its process runs: its
/// entities turn unavailable on the availability topic's `offline`.
pub fn with_availability(mut payload: Value, topics: &Topics) -> Value {
    payload["availability_topic"] = json!(topics.availability());
    payload["payload_available"] = json!(ONLINE);
    payload["payload_not_available"] = json!(OFFLINE);
    payload
}

/// `value_json.<path>`, or none (HA: unknown) while the state has no such
/// key: the running energy totals are absent until the controller has
/// them, and a template failing on a missing key leaves the entity in
/// error.
pub fn optional(path: &str) -> String {
    guarded(path, "")
}

/// HA's longest state, in characters: a longer one is refused (logged as
/// an error, the entity left unknown).
pub const MAX_STATE_CHARS: usize = 255;

/// `optional` for free text, cut to `MAX_STATE_CHARS`: an error chain
/// naming a URL can be longer.
pub fn optional_text(path: &str) -> String {
    guarded(path, &format!("[:{MAX_STATE_CHARS}]"))
}

fn guarded(path: &str, filter: &str) -> String {
    let mut guard = Vec::new();
    let mut at = String::from("value_json");
    for part in path.split('.') {
        at = format!("{at}.{part}");
        guard.push(format!("{at} is defined"));
    }
    format!(
        "{{{{ {at}{filter} if {} and {at} is not none else none }}}}",
        guard.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::new("homeassistant", "Zs_1")
    }

    fn entities() -> Vec<Entity> {
        vec![
            Entity::Sensor {
                key: "grid_power",
                name: "Grid power",
                kind: Kind::Power,
                template: optional("meter.grid_w"),
            },
            Entity::Sensor {
                key: "mode",
                name: "Mode",
                kind: Kind::Text,
                template: "{{ value_json.mode }}".into(),
            },
            Entity::Sensor {
                key: "import",
                name: "Grid import",
                kind: Kind::Energy,
                template: optional("energy.grid_import_kwh"),
            },
            Entity::BinarySensor {
                key: "charging",
                name: "Charging",
                device_class: "battery_charging",
                template: "{{ 'ON' if value_json.w > 0 else 'OFF' }}".into(),
            },
            Entity::Select {
                key: "override",
                name: "Override",
                options: &["auto", "idle"],
                template: "{{ value_json.o }}".into(),
            },
            Entity::Number {
                key: "watts",
                name: "Override power",
                device_class: "power",
                unit: "W",
                range: (0.0, 800.0),
                step: 10.0,
                template: "{{ value_json.w }}".into(),
            },
        ]
    }

    #[test]
    fn topics_follow_the_device_based_discovery() {
        let t = topics();
        assert_eq!(t.config(), "homeassistant/device/Zs_1/config");
        assert_eq!(t.ha_status(), "homeassistant/status");
        assert_eq!(t.availability(), "zcell-sched/Zs_1/availability");
        assert_eq!(t.state(), "zcell-sched/Zs_1/state");
        assert_eq!(t.command("override"), "zcell-sched/Zs_1/override/set");
    }

    #[test]
    fn the_payload_has_device_origin_and_shared_topics() {
        let device = Device {
            name: "Zendure solarFlow800".into(),
            manufacturer: "Zendure".into(),
            model: Some("solarFlow800".into()),
            serial: Some("HOA1".into()),
        };
        let p = payload(&topics(), &device, &entities());
        assert!(p.get("availability_topic").is_none());
        let p = with_availability(p, &topics());
        assert_eq!(p["dev"]["ids"], json!(["Zs_1"]));
        assert_eq!(p["dev"]["mf"], "Zendure");
        assert_eq!(p["dev"]["mdl"], "solarFlow800");
        assert_eq!(p["dev"]["sn"], "HOA1");
        assert_eq!(p["o"]["name"], "zcell-sched");
        assert_eq!(p["state_topic"], "zcell-sched/Zs_1/state");
        assert_eq!(p["availability_topic"], "zcell-sched/Zs_1/availability");
        assert_eq!(p["cmps"].as_object().unwrap().len(), 6);
        let bare = Device {
            model: None,
            serial: None,
            ..device
        };
        let p = payload(&topics(), &bare, &entities());
        assert!(p["dev"].get("mdl").is_none() && p["dev"].get("sn").is_none());
    }

    #[test]
    fn every_component_has_a_unique_id_and_a_default_entity_id() {
        let p = payload(&topics(), &Device::test(), &entities());
        for (key, c) in p["cmps"].as_object().unwrap() {
            assert_eq!(c["unique_id"], format!("Zs_1_{key}"));
            let platform = c["p"].as_str().unwrap();
            assert_eq!(c["default_entity_id"], format!("{platform}.zs_1_{key}"));
            assert!(c.get("object_id").is_none());
            assert!(c["value_template"].as_str().unwrap().starts_with("{{"));
        }
    }

    #[test]
    fn units_and_classes_as_ha_documents_them() {
        let p = payload(&topics(), &Device::test(), &entities());
        let c = &p["cmps"];
        assert_eq!(c["grid_power"]["device_class"], "power");
        assert_eq!(c["grid_power"]["unit_of_measurement"], "W");
        assert_eq!(c["grid_power"]["state_class"], "measurement");
        assert_eq!(c["import"]["device_class"], "energy");
        assert_eq!(c["import"]["unit_of_measurement"], "kWh");
        assert_eq!(c["import"]["state_class"], "total_increasing");
        let mode = c["mode"].as_object().unwrap();
        for absent in ["unit_of_measurement", "state_class", "device_class"] {
            assert!(!mode.contains_key(absent), "{absent} on a text sensor");
        }
        assert_eq!(c["charging"]["p"], "binary_sensor");
        assert_eq!(c["charging"]["device_class"], "battery_charging");
    }

    #[test]
    fn controls_have_a_command_and_a_state() {
        let p = payload(&topics(), &Device::test(), &entities());
        let select = &p["cmps"]["override"];
        assert_eq!(select["p"], "select");
        assert_eq!(select["options"], json!(["auto", "idle"]));
        assert_eq!(select["command_topic"], "zcell-sched/Zs_1/override/set");
        // The state: the shared state topic, read by the template.
        assert_eq!(select["value_template"], "{{ value_json.o }}");
        let number = &p["cmps"]["watts"];
        assert_eq!(number["p"], "number");
        assert_eq!(
            (number["min"].as_f64(), number["max"].as_f64()),
            (Some(0.0), Some(800.0))
        );
        assert_eq!(number["command_topic"], "zcell-sched/Zs_1/watts/set");
    }

    #[test]
    fn an_optional_value_guards_every_level() {
        assert_eq!(
            optional("energy.grid_import_kwh"),
            "{{ value_json.energy.grid_import_kwh if value_json.energy is defined and \
             value_json.energy.grid_import_kwh is defined and \
             value_json.energy.grid_import_kwh is not none else none }}"
        );
    }

    #[test]
    fn optional_text_is_cut_to_what_ha_takes() {
        assert_eq!(
            optional_text("reason"),
            "{{ value_json.reason[:255] if value_json.reason is defined and \
             value_json.reason is not none else none }}"
        );
    }

    impl Device {
        fn test() -> Device {
            Device {
                name: "d".into(),
                manufacturer: "m".into(),
                model: None,
                serial: None,
            }
        }
    }
}
