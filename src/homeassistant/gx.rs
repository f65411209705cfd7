//! The GX's `run` in Home Assistant: after each run its record goes out
//! as a retained state (with the device's discovery message), so HA shows
//! the last run between the daily runs. No availability: the program
//! exits after the run, and the record says how old it is.

use crate::zcell::record::RunRecord;

use super::config::HaConfig;
#[cfg(feature = "mqtt")]
use super::discovery::{Device, Entity, Kind, Topics, optional, payload};

#[cfg(feature = "mqtt")]
const OUTCOMES: &[&str] = &["applied", "planned", "fallback", "error"];

/// The entities; one per battery for its next maintenance.
#[cfg(feature = "mqtt")]
pub fn entities(record: &RunRecord) -> Vec<Entity> {
    let sensor = |key, name, kind, template: String| Entity::Sensor {
        key,
        name,
        kind,
        template,
    };
    let mut list = vec![
        sensor(
            "last_run",
            "Last run",
            Kind::Timestamp,
            "{{ value_json.time }}".into(),
        ),
        sensor(
            "outcome",
            "Outcome",
            Kind::Enum(OUTCOMES),
            "{{ value_json.outcome }}".into(),
        ),
        // Why it fell back; none after an applied run.
        sensor("reason", "Reason", Kind::Text, optional("reason")),
        sensor(
            "planning_day",
            "Planning day",
            Kind::Text,
            "{{ value_json.planning_day.kind ~ ' ' ~ value_json.planning_day.start \
             if value_json.planning_day else none }}"
                .into(),
        ),
        Entity::BinarySensor {
            key: "maintenance_day",
            name: "Maintenance predicted",
            device_class: "running",
            template: "{{ 'ON' if value_json.planning_day and \
                       value_json.planning_day.kind == 'maintenance' else 'OFF' }}"
                .into(),
        },
        sensor(
            "owned_slots",
            "Owned slots",
            Kind::Text,
            "{{ value_json.slots | selectattr('after.day', 'ge', 0) | map(attribute='slot') \
             | join(', ') or 'none' }}"
                .into(),
        ),
        sensor(
            "owned_windows",
            "Owned windows",
            Kind::Text,
            "{{ (value_json.windows | default([])) | map(attribute='window') | join(', ') \
             or 'none' }}"
                .into(),
        ),
    ];
    // Keys must be 'static: at most a few batteries, named by position.
    const BATTERIES: [(&str, &str); 8] = [
        ("battery_1_maintenance", "Battery 1 next maintenance"),
        ("battery_2_maintenance", "Battery 2 next maintenance"),
        ("battery_3_maintenance", "Battery 3 next maintenance"),
        ("battery_4_maintenance", "Battery 4 next maintenance"),
        ("battery_5_maintenance", "Battery 5 next maintenance"),
        ("battery_6_maintenance", "Battery 6 next maintenance"),
        ("battery_7_maintenance", "Battery 7 next maintenance"),
        ("battery_8_maintenance", "Battery 8 next maintenance"),
    ];
    for (i, (key, name)) in BATTERIES.iter().enumerate().take(record.batteries.len()) {
        // `due` is the GX's local time; `running` or `overdue` otherwise.
        let b = format!("value_json.batteries[{i}]");
        list.push(sensor(
            key,
            name,
            Kind::Text,
            format!("{{{{ ({b}.due | replace('T', ' ')) if {b}.due else {b}.maintenance }}}}"),
        ));
    }
    list
}

/// Publishes the run's record; a failure is logged, never the run's.
#[cfg(feature = "mqtt")]
pub async fn publish(config: &HaConfig, record: &RunRecord) {
    let topics = Topics::new(
        &config.discovery_prefix,
        config.node_id.as_deref().unwrap_or("zcell_gx"),
    );
    let device = Device {
        name: "ZCell on Victron GX".into(),
        manufacturer: "Redflow".into(),
        model: Some("ZCell".into()),
        serial: None,
    };
    let content = super::session::Content {
        discovery: payload(&topics, &device, &entities(record)),
        state: serde_json::to_value(record).unwrap_or_default(),
    };
    if let Err(e) = super::session::publish_once(config, &topics, &content).await {
        crate::log(&format!("warning: {e:#}"));
    }
}

#[cfg(not(feature = "mqtt"))]
pub async fn publish(_: &HaConfig, _: &RunRecord) {
    crate::log(
        "warning: homeassistant: this build has no MQTT (the `mqtt` feature); not published",
    );
}
