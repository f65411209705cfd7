//! The MQTT session with the broker Home Assistant listens on: connects
//! with a last will (`offline`, retained), publishes `online`, the
//! discovery message and the state (retained), publishes them again when
//! HA announces itself on `<prefix>/status`, reconnects after the broker
//! went away, hands HA's commands on, and says `offline` on a clean stop.
//!
//! The session never blocks its caller: what it is given goes out when the
//! broker is there, the newest state replacing older ones.

use std::time::Duration;

use anyhow::{Context, Result};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, LastWill, Packet, QoS};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::config::HaConfig;
use super::discovery::{OFFLINE, ONLINE, Topics};
use crate::log;

/// What the session publishes: the discovery message and the state.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub discovery: Value,
    pub state: Value,
}

/// A control's new value from HA: the control's key and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub control: String,
    pub payload: String,
}

/// Commands longer than this are not a number or an option name.
const MAX_COMMAND: usize = 64;

/// Connects and runs until the sender of `content` is gone, the last
/// content published; `controls` are the keys of the entities HA may
/// command.
pub async fn run(
    config: HaConfig,
    topics: Topics,
    controls: Vec<&'static str>,
    mut content: watch::Receiver<Option<Content>>,
    commands: mpsc::Sender<Command>,
) -> Result<()> {
    let (client, mut eventloop) = AsyncClient::new(options(&config, &topics, true)?, 64);
    let mut session = Session {
        client,
        topics,
        controls,
        connected: false,
        published: None,
    };
    let mut every =
        tokio::time::interval_at(Instant::now() + config.state_every, config.state_every);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    // After a failure, the next attempt waits until then.
    let mut pause: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            event = eventloop.poll(), if pause.is_none() => match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                    if failing {
                        log(&format!("homeassistant: connected to {} again", config.broker));
                        failing = false;
                    }
                    session.connected = true;
                    session.subscribe();
                    session.publish_all(content.borrow().as_ref());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.topic == session.topics.ha_status() {
                        // HA restarted: it forgot the devices and states.
                        if p.payload.as_ref() == ONLINE.as_bytes() {
                            session.publish_all(content.borrow().as_ref());
                        }
                    } else if let Some(command) = session.command(&p.topic, &p.payload) {
                        let _ = commands.try_send(command);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    session.connected = false;
                    if !failing {
                        log(&format!("homeassistant: {}: {e}; connecting again every {:?}", config.broker, config.reconnect));
                        failing = true;
                    }
                    pause = Some(Instant::now() + config.reconnect);
                }
            },
            _ = tokio::time::sleep_until(pause.unwrap_or_else(Instant::now)), if pause.is_some() => {
                pause = None;
            }
            changed = content.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = content.borrow_and_update().clone();
                session.publish_changed(now.as_ref());
            }
            _ = every.tick() => {
                let now = content.borrow().clone();
                if let Some(now) = &now {
                    session.publish_state(now);
                }
            }
        }
    }
    session.publish_changed(content.borrow().as_ref());
    session.stop(&mut eventloop, config.reconnect).await;
    Ok(())
}

/// Reads what connecting needs (the password file, the CA file), so a
/// mistake in them is found at start, as a config error.
pub fn check(config: &HaConfig) -> Result<()> {
    let topics = Topics::new(&config.discovery_prefix, "check");
    options(config, &topics, false).map(drop)
}

/// Publishes `content` once, retained, and disconnects: for a program that
/// runs and exits (the GX's `run`), so without availability. Bounded by
/// `config.reconnect`.
pub async fn publish_once(config: &HaConfig, topics: &Topics, content: &Content) -> Result<()> {
    let (client, mut eventloop) = AsyncClient::new(options(config, topics, false)?, 8);
    let broker = &config.broker;
    let exchange = async {
        let mut acked = 0;
        loop {
            let event = eventloop
                .poll()
                .await
                .with_context(|| format!("homeassistant: {broker}"))?;
            match event {
                Event::Incoming(Packet::ConnAck(ack)) => {
                    anyhow::ensure!(
                        ack.code == ConnectReturnCode::Success,
                        "homeassistant: {broker} refused the connection: {:?}",
                        ack.code
                    );
                    for (topic, payload) in [
                        (topics.config(), &content.discovery),
                        (topics.state(), &content.state),
                    ] {
                        client.try_publish(topic, QoS::AtLeastOnce, true, payload.to_string())?;
                    }
                }
                // The broker holds both: done.
                Event::Incoming(Packet::PubAck(_)) => {
                    acked += 1;
                    if acked == 2 {
                        client.try_disconnect()?;
                    }
                }
                Event::Outgoing(rumqttc::Outgoing::Disconnect) => return Ok(()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(config.reconnect, exchange)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "homeassistant: {broker} did not take the messages within {:?}",
                config.reconnect
            )
        })?
}

fn options(config: &HaConfig, topics: &Topics, will: bool) -> Result<rumqttc::MqttOptions> {
    let credentials = match &config.user {
        Some(user) => {
            let password = match &config.password_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("homeassistant.password_file {}", path.display()))?
                    .trim_end()
                    .to_string(),
                None => String::new(),
            };
            Some((user.clone(), password))
        }
        None => None,
    };
    let tls = match (&config.broker.tls, &config.ca_file) {
        (true, Some(path)) => Some(crate::tls::trusting(
            "homeassistant.ca_file",
            path,
            crate::tls::Names::Checked,
        )?),
        _ => None,
    };
    // One client id per node: a restarted controller takes over its old
    // session at once, and the old session's will fires before our `online`.
    let mut options = crate::mqtt::options(
        format!("zcell-sched-{}", topics.node_id()),
        &config.broker.host,
        config.broker.port,
        config.keep_alive,
        credentials,
        tls,
    );
    if will {
        options.set_last_will(LastWill::new(
            topics.availability(),
            OFFLINE,
            QoS::AtLeastOnce,
            true,
        ));
    }
    Ok(options)
}

struct Session {
    client: AsyncClient,
    topics: Topics,
    controls: Vec<&'static str>,
    connected: bool,
    /// The last published content, to publish only what changed.
    published: Option<Content>,
}

impl Session {
    fn subscribe(&self) {
        let mut topics = vec![self.topics.ha_status()];
        topics.extend(self.controls.iter().map(|c| self.topics.command(c)));
        for topic in topics {
            if let Err(e) = self.client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                log(&format!("homeassistant: subscribing to {topic}: {e}"));
            }
        }
    }

    /// Queues a message without waiting: the event loop is this task.
    fn send(&self, topic: String, payload: Vec<u8>) {
        if let Err(e) = self
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, true, payload)
        {
            log(&format!("homeassistant: publishing to {topic}: {e}"));
        }
    }

    fn publish_all(&mut self, content: Option<&Content>) {
        if !self.connected {
            return;
        }
        self.send(self.topics.availability(), ONLINE.into());
        if let Some(content) = content {
            self.send(
                self.topics.config(),
                content.discovery.to_string().into_bytes(),
            );
            self.publish_state(content);
        }
    }

    fn publish_changed(&mut self, content: Option<&Content>) {
        let Some(content) = content else { return };
        if !self.connected {
            return;
        }
        let old = self.published.as_ref();
        if old.map(|c| &c.discovery) != Some(&content.discovery) {
            self.send(
                self.topics.config(),
                content.discovery.to_string().into_bytes(),
            );
        }
        if old.map(|c| &c.state) != Some(&content.state) {
            self.publish_state(content);
        }
    }

    fn publish_state(&mut self, content: &Content) {
        if !self.connected {
            return;
        }
        self.send(self.topics.state(), content.state.to_string().into_bytes());
        self.published = Some(content.clone());
    }

    fn command(&self, topic: &str, payload: &[u8]) -> Option<Command> {
        let control = self
            .controls
            .iter()
            .find(|c| self.topics.command(c) == topic)?;
        let payload = std::str::from_utf8(payload)
            .ok()
            .filter(|p| p.len() <= MAX_COMMAND)?;
        Some(Command {
            control: control.to_string(),
            payload: payload.trim().to_string(),
        })
    }

    /// `offline`, then a clean disconnect, within `bound`.
    async fn stop(self, eventloop: &mut EventLoop, bound: Duration) {
        if !self.connected {
            return;
        }
        self.send(self.topics.availability(), OFFLINE.into());
        let _ = self.client.try_disconnect();
        let _ = tokio::time::timeout(bound, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}
