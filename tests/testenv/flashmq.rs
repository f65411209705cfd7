//! The GX's MQTT side for the tests and the demo, as dbus-flashmq does it:
//! bridges a broker to the (simulated) settings service on D-Bus.
//!
//! What it copies from the real bridge (FlashMQ with dbus-flashmq):
//! - reads the settings once with `GetItems` on `/` and keeps them;
//! - publishes the retained `N/<id>/system/0/Serial` (the only retained
//!   topic; the GX's `com.victronenergy.system` has a `/Serial` item);
//! - answers `R/<id>/settings/0<path>` with a fresh `GetValue`: one `N/`
//!   per leaf below the path (a subtree answers every leaf), `min`/`max`
//!   in the payload when the setting has them, nothing for a missing path;
//! - applies `W/` with SetValue and says nothing about the result, nor
//!   about a missing path, bad JSON or a payload without `"value"`;
//! - `R/<id>/keepalive` (or `R/<id>/system/0/Serial`) makes it alive for
//!   --keepalive-seconds: it republishes every `N/` topic then
//!   `N/<id>/full_publish_completed` (echoing a `full-publish-completed-echo`
//!   option), sends a heartbeat every 3 s, and publishes an `N/` for every
//!   change the settings service signals, including the echoes of `W/`
//!   writes, in the order D-Bus delivers them (so before the answer to a
//!   later `R/`). At most 3 republishes a second; one more gets none;
//! - when the settings service leaves the bus, a zero-byte `N/` for each
//!   of its paths.
//!
//! Prints `ready` once subscribed, and logs every `W/` it receives to --log.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::{FutureExt, StreamExt};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::time::Instant;
use zbus::message::Type;
use zbus::{Connection, MatchRule, Message, MessageStream, OwnedVariant, Variant};

const SERVICE: &str = "com.victronenergy.settings";
const BUS_ITEM: &str = "com.victronenergy.BusItem";
/// The real bridge's heartbeat period while alive.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// The real bridge's limit on full republishes per second.
const REPUBLISHES_PER_SECOND: u32 = 3;

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
    /// How long a keepalive keeps the bridge publishing changes.
    #[arg(long, default_value = "60")]
    keepalive_seconds: f64,
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

/// JSON to D-Bus as dbus-flashmq maps it: int -> i (x past int32), float
/// -> d, string -> s, bool -> b.
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

/// One setting as the bridge caches it.
#[derive(Debug, Clone)]
struct Item {
    value: Value,
    min: Option<Value>,
    max: Option<Value>,
}

impl Item {
    fn payload(&self) -> String {
        let mut doc = json!({ "value": self.value });
        if let Some(min) = &self.min {
            doc["min"] = min.clone();
        }
        if let Some(max) = &self.max {
            doc["max"] = max.clone();
        }
        doc.to_string()
    }
}

struct Bridge {
    bus: Connection,
    mqtt: AsyncClient,
    portal: String,
    log: Option<PathBuf>,
    items: BTreeMap<String, Item>,
    changes: MessageStream,
    alive_until: Option<Instant>,
    keepalive: Duration,
    republishes: (Instant, u32),
}

impl Bridge {
    fn alive(&self) -> bool {
        self.alive_until.is_some_and(|t| Instant::now() < t)
    }

    async fn call<B>(&self, path: &str, method: &str, body: &B) -> Option<Message>
    where
        B: serde::Serialize + zbus::DynamicType,
    {
        self.bus
            .call_method(Some(SERVICE), path, Some(BUS_ITEM), method, body)
            .await
            .ok()
    }

    async fn publish(&self, topic: String, payload: String) -> Result<()> {
        self.mqtt
            .publish(topic, QoS::AtMostOnce, false, payload)
            .await?;
        Ok(())
    }

    fn topic(&self, path: &str) -> String {
        format!("N/{}/settings/0{path}", self.portal)
    }

    /// Reads every path of the settings service, as the bridge does once
    /// per service.
    async fn scan(&mut self) {
        let Some(reply) = self.call("/", "GetItems", &()).await else {
            return;
        };
        let Ok(items) = reply
            .body()
            .deserialize::<HashMap<String, HashMap<String, OwnedVariant>>>()
        else {
            return;
        };
        self.items = items
            .into_iter()
            .filter_map(|(path, props)| {
                let value = to_json(props.get("Value")?);
                let min = props.get("Min").map(|v| to_json(v));
                let max = props.get("Max").map(|v| to_json(v));
                Some((path, Item { value, min, max }))
            })
            .collect();
    }

    /// A change the settings service signalled: cached, and published
    /// while alive.
    async fn changed(&mut self, msg: &Message) -> Result<()> {
        let header = msg.header();
        let Some(path) = header.path().map(|p| p.to_string()) else {
            return Ok(());
        };
        let Ok(changes) = msg.body().deserialize::<HashMap<String, OwnedVariant>>() else {
            return Ok(());
        };
        let Some(value) = changes.get("Value").map(|v| to_json(v)) else {
            return Ok(());
        };
        let Some(item) = self.items.get_mut(&path) else {
            return Ok(());
        };
        item.value = value;
        let payload = item.payload();
        if self.alive() {
            self.publish(self.topic(&path), payload).await?;
        }
        Ok(())
    }

    /// Publishes the changes D-Bus delivered before the reply just
    /// received, so they go out in the order they happened.
    async fn changes_so_far(&mut self) -> Result<()> {
        while let Some(Some(Ok(msg))) = self.changes.next().now_or_never() {
            self.changed(&msg).await?;
        }
        Ok(())
    }

    async fn read(&mut self, path: &str) -> Result<()> {
        let reply = self.call(path, "GetValue", &()).await;
        self.changes_so_far().await?;
        let Some(value) = reply.and_then(|r| r.body().deserialize::<OwnedVariant>().ok()) else {
            return Ok(()); // no such path: no answer, as on a GX
        };
        let answers: Vec<(String, Value)> =
            match HashMap::<String, OwnedVariant>::try_from(value.try_clone()?) {
                Ok(group) => {
                    let mut leaves: Vec<_> = group
                        .iter()
                        .map(|(rel, v)| (format!("{path}/{rel}"), to_json(v)))
                        .collect();
                    leaves.sort_by(|a, b| a.0.cmp(&b.0));
                    leaves
                }
                Err(_) => vec![(path.to_string(), to_json(&value))],
            };
        for (leaf, value) in answers {
            let item = self.items.entry(leaf.clone()).or_insert(Item {
                value: Value::Null,
                min: None,
                max: None,
            });
            item.value = value;
            let payload = item.payload();
            self.publish(self.topic(&leaf), payload).await?;
        }
        Ok(())
    }

    async fn write(&mut self, path: &str, payload: &[u8]) -> Result<()> {
        if let Some(log) = &self.log {
            let mut f = OpenOptions::new().create(true).append(true).open(log)?;
            writeln!(f, "{path} {}", String::from_utf8_lossy(payload))?;
        }
        let Ok(doc) = serde_json::from_slice::<Value>(payload) else {
            return Ok(());
        };
        if !self.items.contains_key(path) {
            return Ok(());
        }
        if let Some(v) = doc.get("value").and_then(to_variant) {
            // The result (0 or -1) goes nowhere: MQTT writes are fire and forget.
            let _ = self.call(path, "SetValue", &v).await;
            self.changes_so_far().await?;
        }
        Ok(())
    }

    async fn keepalive(&mut self, payload: &[u8]) -> Result<()> {
        let payload = String::from_utf8_lossy(payload);
        let now = Instant::now();
        if now - self.republishes.0 >= Duration::from_secs(1) {
            self.republishes = (now, 0);
        }
        if !payload.contains("suppress-republish") && self.republishes.1 < REPUBLISHES_PER_SECOND {
            self.republishes.1 += 1;
            let echo = serde_json::from_str::<Value>(&payload)
                .ok()
                .and_then(|doc| {
                    doc.get("keepalive-options")?
                        .as_array()?
                        .iter()
                        .filter_map(|o| o.get("full-publish-completed-echo").cloned())
                        .next_back()
                });
            self.publish_all(echo).await?;
        }
        let first = !self.alive();
        self.alive_until = Some(now + self.keepalive);
        if first {
            self.heartbeat().await?;
        }
        Ok(())
    }

    async fn publish_all(&self, echo: Option<Value>) -> Result<()> {
        for (path, item) in &self.items {
            self.publish(self.topic(path), item.payload()).await?;
        }
        publish_serial(&self.mqtt, &self.portal).await?;
        let mut done = json!({ "value": unix_time() });
        if let Some(echo) = echo {
            done["full-publish-completed-echo"] = echo;
        }
        self.publish(
            format!("N/{}/full_publish_completed", self.portal),
            done.to_string(),
        )
        .await
    }

    async fn heartbeat(&self) -> Result<()> {
        if self.alive() {
            let beat = json!({ "value": unix_time() }).to_string();
            self.publish(format!("N/{}/heartbeat", self.portal), beat)
                .await?;
        }
        Ok(())
    }

    /// The settings service left the bus (empty payloads for its paths,
    /// alive or not) or came back (read again).
    async fn owner_changed(&mut self, msg: &Message) -> Result<()> {
        let Ok((name, _old, new)) = msg.body().deserialize::<(String, String, String)>() else {
            return Ok(());
        };
        if name != SERVICE {
            return Ok(());
        }
        if new.is_empty() {
            for path in std::mem::take(&mut self.items).keys() {
                self.publish(self.topic(path), String::new()).await?;
            }
        } else {
            self.scan().await;
            if self.alive() {
                self.publish_all(None).await?;
            }
        }
        Ok(())
    }
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn publish_serial(mqtt: &AsyncClient, portal: &str) -> Result<()> {
    mqtt.publish(
        format!("N/{portal}/system/0/Serial"),
        QoS::AtLeastOnce,
        true,
        json!({ "value": portal }).to_string(),
    )
    .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (host, port) = args.broker.rsplit_once(':').context("--broker HOST:PORT")?;
    let bus = zbus::connection::Builder::address(args.bus.as_str())
        .build()
        .await
        .context("connecting to the bus")?;
    let changes = MessageStream::for_match_rule(
        MatchRule::builder()
            .msg_type(Type::Signal)
            .interface(BUS_ITEM)
            .member("PropertiesChanged")
            .build()?,
        &bus,
        None,
    )
    .await?;
    let mut owners = MessageStream::for_match_rule(
        MatchRule::builder()
            .msg_type(Type::Signal)
            .sender("org.freedesktop.DBus")
            .interface("org.freedesktop.DBus")
            .member("NameOwnerChanged")
            .arg(0, SERVICE)
            .build()?,
        &bus,
        None,
    )
    .await?;
    let mut options = MqttOptions::new("flashmq-emulator", host, port.parse()?);
    options.set_keep_alive(Duration::from_secs(30));
    let (mqtt, mut eventloop) = AsyncClient::new(options, 4096);
    let portal = args.portal_id.clone();
    publish_serial(&mqtt, &portal).await?;
    mqtt.subscribe(format!("R/{portal}/#"), QoS::AtMostOnce)
        .await?;
    mqtt.subscribe(format!("W/{portal}/#"), QoS::AtMostOnce)
        .await?;
    let mut bridge = Bridge {
        bus,
        mqtt,
        portal: portal.clone(),
        log: args.log,
        items: BTreeMap::new(),
        changes,
        alive_until: None,
        keepalive: Duration::from_secs_f64(args.keepalive_seconds),
        republishes: (Instant::now(), 0),
    };
    bridge.scan().await;
    let read_prefix = format!("R/{portal}/settings/0");
    let write_prefix = format!("W/{portal}/settings/0");
    let keepalives = [
        format!("R/{portal}/keepalive"),
        format!("R/{portal}/system/0/Serial"),
    ];
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut subscribed = 0;
    loop {
        tokio::select! {
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subscribed += 1;
                    if subscribed == 2 {
                        println!("ready");
                        std::io::stdout().flush()?;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if keepalives.contains(&p.topic) {
                        bridge.keepalive(&p.payload).await?;
                    } else if let Some(path) = p.topic.strip_prefix(&read_prefix) {
                        if !args.silent {
                            bridge.read(path).await?;
                        }
                    } else if let Some(path) = p.topic.strip_prefix(&write_prefix) {
                        bridge.write(path, &p.payload).await?;
                    }
                }
                Ok(_) => {}
                Err(e) => bail!("broker: {e}"),
            },
            Some(Ok(msg)) = bridge.changes.next() => bridge.changed(&msg).await?,
            Some(Ok(msg)) = owners.next() => bridge.owner_changed(&msg).await?,
            _ = heartbeat.tick() => bridge.heartbeat().await?,
        }
    }
}
