//! The GX settings over its MQTT broker (dbus-flashmq), for running on
//! another machine: `R/` to read (one `N/` answer per leaf), `W/` to write.
//! The broker reports no result for a write, so the caller reads back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, Packet, QoS};
use rustls::ClientConfig;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use super::{MissingSetting, Number, Settings, TIME_ZONE_PATH, slots_from};
use crate::log;
use crate::zcell::slot::{Field, SCHEDULE_GROUP, SlotIndex, SlotValues, Write};

/// How to reach the GX's broker.
#[derive(Debug, Clone)]
pub struct MqttOptions {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The GX's portal id; discovered from the retained serial when absent.
    pub portal_id: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// PEM certificates to trust: a CA, or the GX's own self-signed certificate.
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    /// Bounds connecting and each exchange.
    pub timeout: Duration,
}

/// Read after every `R/`: its answer marks the end of the answers before it.
const MARKER: &str = TIME_ZONE_PATH;

enum Incoming {
    Connected(ConnectReturnCode),
    Publish(String, Vec<u8>),
    Failed(String),
}

pub struct MqttSettings {
    client: AsyncClient,
    incoming: Mutex<mpsc::UnboundedReceiver<Incoming>>,
    portal: String,
    timeout: Duration,
    broker: String,
    task: JoinHandle<()>,
}

impl Drop for MqttSettings {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MqttSettings {
    pub async fn connect(options: &MqttOptions) -> Result<Self> {
        let scheme = if options.tls { "mqtts" } else { "mqtt" };
        let broker = format!("{scheme}://{}:{}", options.host, options.port);
        let tls = options.tls.then(|| tls_config(options)).transpose()?;
        let credentials = options.user.clone().map(|user| {
            let password = options.password.clone().unwrap_or_default();
            (user, password)
        });
        let mqtt = crate::mqtt::options(
            format!("zcell-sched-{}", std::process::id()),
            &options.host,
            options.port,
            Duration::from_secs(30),
            credentials,
            tls,
        );
        let (client, mut eventloop) = AsyncClient::new(mqtt, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let message = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => Incoming::Connected(ack.code),
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        Incoming::Publish(p.topic, p.payload.to_vec())
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Incoming::Failed(e.to_string()));
                        break;
                    }
                };
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        let mut gx = MqttSettings {
            client,
            incoming: Mutex::new(rx),
            portal: String::new(),
            timeout: options.timeout,
            broker,
            task,
        };
        gx.wait_connected().await?;
        gx.portal = match &options.portal_id {
            Some(id) => id.clone(),
            None => gx.discover_portal().await?,
        };
        let answers = format!("N/{}/settings/0/Settings/#", gx.portal);
        gx.subscribe(&answers).await?;
        Ok(gx)
    }

    async fn wait_connected(&self) -> Result<()> {
        let mut rx = self.incoming.lock().await;
        let next = tokio::time::timeout(self.timeout, rx.recv()).await;
        match next {
            Ok(Some(Incoming::Connected(ConnectReturnCode::Success))) => Ok(()),
            Ok(Some(Incoming::Connected(code))) => {
                bail!(
                    "the MQTT broker {} refused the connection: {code:?}",
                    self.broker
                )
            }
            Ok(Some(Incoming::Failed(e))) => {
                bail!("cannot connect to the MQTT broker {}: {e}", self.broker)
            }
            Ok(_) => bail!("the MQTT connection to {} closed", self.broker),
            Err(_) => bail!(
                "the MQTT broker {} did not answer within {:?}",
                self.broker,
                self.timeout
            ),
        }
    }

    async fn subscribe(&self, topic: &str) -> Result<()> {
        self.client
            .subscribe(topic, QoS::AtMostOnce)
            .await
            .with_context(|| format!("subscribing to {topic}"))
    }

    async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<()> {
        self.client
            .publish(topic.clone(), QoS::AtMostOnce, false, payload)
            .await
            .with_context(|| format!("publishing to {topic}"))
    }

    /// The portal id from the only retained topic, `N/<id>/system/0/Serial`.
    async fn discover_portal(&self) -> Result<String> {
        const SERIAL: &str = "N/+/system/0/Serial";
        self.subscribe(SERIAL).await?;
        let mut rx = self.incoming.lock().await;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Incoming::Publish(topic, _))) => {
                    let parts: Vec<&str> = topic.split('/').collect();
                    if let ["N", id, "system", "0", "Serial"] = parts.as_slice() {
                        return Ok(id.to_string());
                    }
                }
                Ok(Some(Incoming::Failed(e))) => bail!("MQTT {}: {e}", self.broker),
                Ok(Some(Incoming::Connected(_))) => {}
                Ok(None) => bail!("the MQTT connection to {} closed", self.broker),
                Err(_) => bail!(
                    "no GX answered on {SERIAL} at {} within {:?} (is MQTT enabled on the GX? or give --portal-id)",
                    self.broker,
                    self.timeout
                ),
            }
        }
    }

    /// Publishes `R/` for `path` (a leaf or a group) and returns the value
    /// of each of `leaves` as the GX holds it after every earlier write, and
    /// of those of `optional` the GX has.
    ///
    /// While any client keeps the GX alive, the bridge also publishes the
    /// echo of each of our writes, on the same topics as the answers and
    /// possibly after this `R/` went out, so the first `N/` for a leaf may
    /// be an echo of an earlier write. The bridge handles messages in order
    /// and localsettings answers in order, so the answer to `R/` follows
    /// every earlier echo, and the answer to a second `R/` (the marker, the
    /// time zone, which zcell-sched never writes) follows that answer: the
    /// last `N/` per leaf before the marker's answer is the current value.
    async fn read(
        &self,
        path: &str,
        leaves: &[String],
        optional: &[String],
    ) -> Result<BTreeMap<String, Value>> {
        let prefix = format!("N/{}/settings/0", self.portal);
        let mut rx = self.incoming.lock().await;
        while rx.try_recv().is_ok() {}
        // Reading the marker itself needs no second R/; one would be left
        // over to end the next read too early.
        let reads = if path == MARKER {
            &[path][..]
        } else {
            &[path, MARKER]
        };
        for read in reads {
            self.publish(format!("R/{}/settings/0{read}", self.portal), Vec::new())
                .await?;
        }
        let wanted: BTreeSet<&String> = leaves.iter().collect();
        let mut got = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let missing = |got: &BTreeMap<String, Value>| -> Vec<String> {
            wanted
                .iter()
                .filter(|l| !got.contains_key(l.as_str()))
                .map(|l| l.to_string())
                .collect()
        };
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Incoming::Publish(topic, payload))) => {
                    let Some(leaf) = topic.strip_prefix(&prefix) else {
                        continue;
                    };
                    if wanted.contains(&leaf.to_string()) || optional.iter().any(|o| o == leaf) {
                        let doc: Value = serde_json::from_slice(&payload)
                            .with_context(|| format!("{topic}: the payload is not JSON"))?;
                        let value = doc
                            .get("value")
                            .cloned()
                            .with_context(|| format!("{topic}: no \"value\" in {doc}"))?;
                        got.insert(leaf.to_string(), value);
                    }
                    if leaf == MARKER {
                        // Every answer to the first R/ is in: what is still
                        // missing, the GX does not have.
                        return match missing(&got).first() {
                            None => Ok(got),
                            Some(leaf) => Err(MissingSetting(leaf.clone()).into()),
                        };
                    }
                }
                Ok(Some(Incoming::Failed(e))) => bail!("MQTT {}: {e}", self.broker),
                Ok(Some(Incoming::Connected(_))) => {}
                Ok(None) => bail!("the MQTT connection to {} closed", self.broker),
                Err(_) => {
                    let mut late = missing(&got);
                    if late.is_empty() {
                        late.push(MARKER.to_string());
                    }
                    bail!(
                        "no answer from the GX at {} within {:?} for {}",
                        self.broker,
                        self.timeout,
                        late.join(", ")
                    );
                }
            }
        }
    }
}

impl Settings for MqttSettings {
    async fn time_zone(&self) -> Result<String> {
        let leaf = TIME_ZONE_PATH.to_string();
        let got = self
            .read(TIME_ZONE_PATH, std::slice::from_ref(&leaf), &[])
            .await?;
        match &got[&leaf] {
            Value::String(s) => Ok(s.clone()),
            other => bail!("{TIME_ZONE_PATH} holds {other}, not a string"),
        }
    }

    async fn read_slots(&self, slots: &[SlotIndex]) -> Result<BTreeMap<SlotIndex, SlotValues>> {
        let leaves: Vec<String> = slots
            .iter()
            .flat_map(|s| Field::ALL.map(|f| s.leaf(f).to_string()))
            .collect();
        let optional: Vec<String> = slots
            .iter()
            .map(|s| s.leaf(Field::AllowDischarge).to_string())
            .collect();
        let got = self.read(SCHEDULE_GROUP, &leaves, &optional).await?;
        slots_from(slots, |leaf| {
            let path = leaf.to_string();
            got.get(&path)
                .map(|value| {
                    value
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .with_context(|| format!("{path} holds {value}, not an integer"))
                })
                .transpose()
        })
    }

    async fn write(&self, write: Write) -> Result<()> {
        let topic = format!("W/{}/settings/0{}", self.portal, write.leaf);
        let payload = json!({ "value": write.value }).to_string().into_bytes();
        self.publish(topic, payload).await
    }

    async fn read_numbers(&self, group: &str, leaves: &[String]) -> Result<BTreeMap<String, f64>> {
        let got = self.read(group, leaves, &[]).await?;
        got.into_iter()
            .map(|(leaf, value)| {
                let n = value
                    .as_f64()
                    .with_context(|| format!("{leaf} holds {value}, not a number"))?;
                Ok((leaf, n))
            })
            .collect()
    }

    async fn write_number(&self, path: &str, value: Number) -> Result<()> {
        let topic = format!("W/{}/settings/0{path}", self.portal);
        let value = match value {
            Number::Int(n) => json!(n),
            Number::Float(x) => json!(x),
        };
        let payload = json!({ "value": value }).to_string().into_bytes();
        self.publish(topic, payload).await
    }
}

/// TLS for the GX's broker. `--ca-file` may hold a CA (the chain and the
/// name are checked) or the GX's own self-signed certificate (pinned: the
/// broker must present exactly it, whatever name it was reached by).
fn tls_config(options: &MqttOptions) -> Result<ClientConfig> {
    if options.insecure_skip_verify {
        log("warning: --insecure-skip-verify: the GX broker's certificate is not checked");
        return crate::tls::trusting_anything();
    }
    let path = options.ca_file.as_ref().context(
        "mqtts needs --ca-file (the GX's certificate or its CA) or --insecure-skip-verify",
    )?;
    crate::tls::trusting("--ca-file", path, crate::tls::Names::Checked)
}
