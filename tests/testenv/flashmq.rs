//! The GX's MQTT side for the tests and the demo, as dbus-flashmq does it:
//! bridges a broker to the (simulated) settings service on D-Bus. Publishes
//! the retained `N/<id>/system/0/Serial`; answers `R/<id>/settings/0<path>`
//! with one `N/` per leaf below the path; applies `W/` writes with SetValue
//! and says nothing about the result, so a refused write is silent. Prints
//! `ready` once subscribed, and logs every `W/` it receives to --log.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use zbus::{Connection, OwnedVariant, Variant};

const SERVICE: &str = "com.victronenergy.settings";

#[derive(Parser)]
struct Args {
    /// The broker, HOST:PORT (plain MQTT).
    #[arg(long)]
    broker: String,
    /// The bus the settings service is on.
    #[arg(long)]
    bus: String,
    #[arg(long, default_value = "c0619ab00001")]
    portal_id: String,
    /// Answer no R/ request (a GX that has gone quiet).
    #[arg(long)]
    silent: bool,
    /// One line per W/ message received.
    #[arg(long)]
    log: Option<PathBuf>,
}

fn to_json(v: &Variant<'_>) -> Value {
    match v {
        Variant::Variant(inner) => to_json(inner),
        Variant::I32(n) => json!(n),
        Variant::I64(n) => json!(n),
        Variant::F64(f) => json!(f),
        Variant::Str(s) => json!(s.as_str()),
        other => json!(other.to_string()),
    }
}

fn to_variant(v: &Value) -> Option<Variant<'static>> {
    Some(match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => match i32::try_from(i) {
                Ok(i) => Variant::I32(i),
                Err(_) => Variant::I64(i),
            },
            None => Variant::F64(n.as_f64()?),
        },
        Value::String(s) => Variant::from(s.clone()),
        Value::Bool(b) => Variant::Bool(*b),
        _ => return None,
    })
}

struct Bridge {
    bus: Connection,
    mqtt: AsyncClient,
    portal: String,
    log: Option<PathBuf>,
}

impl Bridge {
    async fn get(&self, path: &str) -> Option<OwnedVariant> {
        let reply = self
            .bus
            .call_method(
                Some(SERVICE),
                path,
                Some("com.victronenergy.BusItem"),
                "GetValue",
                &(),
            )
            .await
            .ok()?;
        reply.body().deserialize().ok()
    }

    async fn notify(&self, path: &str, value: Value) -> Result<()> {
        let topic = format!("N/{}/settings/0{path}", self.portal);
        let payload = json!({ "value": value }).to_string();
        self.mqtt
            .publish(topic, QoS::AtMostOnce, false, payload)
            .await?;
        Ok(())
    }

    async fn read(&self, path: &str) -> Result<()> {
        let Some(value) = self.get(path).await else {
            return Ok(()); // no such path: no answer, as on a GX
        };
        match HashMap::<String, OwnedVariant>::try_from(value.try_clone()?) {
            Ok(group) => {
                let mut leaves: Vec<_> = group.into_iter().collect();
                leaves.sort_by(|a, b| a.0.cmp(&b.0));
                for (rel, v) in leaves {
                    self.notify(&format!("{path}/{rel}"), to_json(&v)).await?;
                }
            }
            Err(_) => self.notify(path, to_json(&value)).await?,
        }
        Ok(())
    }

    async fn write(&self, path: &str, payload: &[u8]) -> Result<()> {
        if let Some(log) = &self.log {
            let mut f = OpenOptions::new().create(true).append(true).open(log)?;
            writeln!(f, "{path} {}", String::from_utf8_lossy(payload))?;
        }
        let doc: Value = match serde_json::from_slice(payload) {
            Ok(doc) => doc,
            Err(_) => return Ok(()),
        };
        if let Some(v) = doc.get("value").and_then(to_variant) {
            // The result (0 or -1) goes nowhere: MQTT writes are fire and forget.
            let _ = self
                .bus
                .call_method(
                    Some(SERVICE),
                    path,
                    Some("com.victronenergy.BusItem"),
                    "SetValue",
                    &v,
                )
                .await;
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (host, port) = args.broker.rsplit_once(':').context("--broker HOST:PORT")?;
    let bus = zbus::connection::Builder::address(args.bus.as_str())
        .build()
        .await
        .context("connecting to the bus")?;
    let mut options = MqttOptions::new("flashmq-emulator", host, port.parse()?);
    options.set_keep_alive(Duration::from_secs(30));
    let (mqtt, mut eventloop) = AsyncClient::new(options, 256);
    let portal = args.portal_id.clone();
    let serial = format!("N/{portal}/system/0/Serial");
    mqtt.publish(
        &serial,
        QoS::AtLeastOnce,
        true,
        json!({ "value": portal }).to_string(),
    )
    .await?;
    mqtt.subscribe(format!("R/{portal}/#"), QoS::AtMostOnce)
        .await?;
    mqtt.subscribe(format!("W/{portal}/#"), QoS::AtMostOnce)
        .await?;
    let bridge = Bridge {
        bus,
        mqtt,
        portal: portal.clone(),
        log: args.log,
    };
    let read_prefix = format!("R/{portal}/settings/0");
    let write_prefix = format!("W/{portal}/settings/0");
    let mut subscribed = 0;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                subscribed += 1;
                if subscribed == 2 {
                    println!("ready");
                    std::io::stdout().flush()?;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(path) = p.topic.strip_prefix(&read_prefix) {
                    if !args.silent {
                        bridge.read(path).await?;
                    }
                } else if let Some(path) = p.topic.strip_prefix(&write_prefix) {
                    bridge.write(path, &p.payload).await?;
                }
            }
            Ok(_) => {}
            Err(e) => bail!("broker: {e}"),
        }
    }
}
