//! The top-level `homeassistant` object of the config file: where the
//! MQTT broker Home Assistant listens on is, and how this node names itself
//! there. Every duration is seconds, fractions allowed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Seconds, section};

/// The broker's address, as `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Broker {
    pub fn parse(url: &str) -> Result<Broker> {
        let (tls, rest) = match url.split_once("://") {
            Some(("mqtt", rest)) => (false, rest),
            Some(("mqtts", rest)) => (true, rest),
            _ => bail!("`{url}` is not an mqtt:// or mqtts:// URL"),
        };
        ensure!(
            !rest.is_empty() && !rest.contains(['/', '@', '?']),
            "`{url}`: give HOST or HOST:PORT after the scheme"
        );
        // A bare IPv6 address has colons but no port.
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port.parse::<u16>().ok().filter(|p| *p > 0);
                (
                    host,
                    Some(port.with_context(|| format!("`{url}`: bad port"))?),
                )
            }
            _ => (rest, None),
        };
        ensure!(!host.is_empty(), "`{url}`: no host");
        Ok(Broker {
            host: host.to_string(),
            port: port.unwrap_or(if tls { 8883 } else { 1883 }),
            tls,
        })
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    broker: String,
    user: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    discovery_prefix: Option<String>,
    node_id: Option<String>,
    state_every: Option<Seconds>,
    reconnect: Option<Seconds>,
    keep_alive: Option<Seconds>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HaConfig {
    pub broker: Broker,
    pub user: Option<String>,
    /// Read at connect time, so the password stays out of the config file.
    pub password_file: Option<PathBuf>,
    /// PEM certificates to trust for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    pub discovery_prefix: String,
    /// Names the device in topics and ids; when absent, `zendure_<serial>`
    /// for the battery and `zcell_gx` for the GX.
    pub node_id: Option<String>,
    /// States go out on change and at least this often.
    pub state_every: Duration,
    /// The wait before connecting again after the broker went away.
    pub reconnect: Duration,
    /// The broker declares us gone (and publishes our last will) after
    /// 1.5 times this without a word from us.
    pub keep_alive: Duration,
}

/// The config document's `homeassistant` object (`section`), if it has one.
pub fn from_section(section: Option<&Value>) -> Result<Option<HaConfig>> {
    section.filter(|v| !v.is_null()).map(parse).transpose()
}

pub fn parse(value: &Value) -> Result<HaConfig> {
    let raw: Raw = section("homeassistant", value)?;
    let broker = Broker::parse(&raw.broker).context("homeassistant.broker")?;
    ensure!(
        !broker.tls || raw.ca_file.is_some(),
        "homeassistant.ca_file: mqtts:// needs the broker's certificate or its CA"
    );
    let discovery_prefix = raw
        .discovery_prefix
        .unwrap_or_else(|| "homeassistant".to_string());
    ensure!(
        topic_part(&discovery_prefix, true),
        "homeassistant.discovery_prefix: `{discovery_prefix}` is not a topic prefix"
    );
    if let Some(id) = &raw.node_id {
        ensure!(
            node_id_ok(id),
            "homeassistant.node_id: `{id}` must be letters, digits, _ and - only"
        );
    }
    Ok(HaConfig {
        broker,
        user: raw.user,
        password_file: raw.password_file,
        ca_file: raw.ca_file,
        discovery_prefix,
        node_id: raw.node_id,
        state_every: raw.state_every.map_or(Duration::from_secs(60), |s| s.0),
        reconnect: raw.reconnect.map_or(Duration::from_secs(5), |s| s.0),
        keep_alive: raw.keep_alive.map_or(Duration::from_secs(30), |s| s.0),
    })
}

/// HA's rule for a node id: `[a-zA-Z0-9_-]+`.
pub fn node_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A topic (part) without wildcards or empty levels; `slashes` allows
/// several levels.
fn topic_part(text: &str, slashes: bool) -> bool {
    !text.is_empty()
        && !text.contains(['#', '+', '\0'])
        && (slashes || !text.contains('/'))
        && text.split('/').all(|level| !level.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(value: Value) -> String {
        format!("{:#}", parse(&value).unwrap_err())
    }

    #[test]
    fn defaults() {
        let c = parse(&json!({"broker": "mqtt://127.0.0.1"})).unwrap();
        assert_eq!(
            c.broker,
            Broker {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(c.discovery_prefix, "homeassistant");
        assert_eq!(c.node_id, None);
        assert_eq!(c.state_every, Duration::from_secs(60));
        assert_eq!(c.reconnect, Duration::from_secs(5));
    }

    #[test]
    fn every_key() {
        let c = parse(&json!({
            "broker": "mqtts://ha.lan:8884", "user": "zs", "password_file": "/etc/pw",
            "ca_file": "/etc/ca.pem", "discovery_prefix": "ha/disc", "node_id": "home_1",
            "state_every": 0.5, "reconnect": 1.5,
        }))
        .unwrap();
        assert_eq!(c.broker.to_string(), "mqtts://ha.lan:8884");
        assert_eq!(c.user.as_deref(), Some("zs"));
        assert_eq!(c.password_file, Some(PathBuf::from("/etc/pw")));
        assert_eq!(c.discovery_prefix, "ha/disc");
        assert_eq!(c.node_id.as_deref(), Some("home_1"));
        assert_eq!(c.state_every, Duration::from_millis(500));
        assert_eq!(c.reconnect, Duration::from_millis(1500));
        assert_eq!(
            parse(&json!({"broker": "mqtts://h", "ca_file": "/c"}))
                .unwrap()
                .broker
                .port,
            8883
        );
    }

    #[test]
    fn mistakes_name_their_key() {
        for (value, says) in [
            (json!({}), "homeassistant.broker: missing"),
            (
                json!({"broker": "http://h"}),
                "homeassistant.broker: `http://h` is not an mqtt:// or mqtts:// URL",
            ),
            (
                json!({"broker": "mqtt://h/x"}),
                "homeassistant.broker: `mqtt://h/x`",
            ),
            (json!({"broker": "mqtts://h"}), "homeassistant.ca_file: "),
            (
                json!({"broker": "mqtt://h", "node_id": "a b"}),
                "homeassistant.node_id: ",
            ),
            (
                json!({"broker": "mqtt://h", "discovery_prefix": "a/#"}),
                "homeassistant.discovery_prefix: ",
            ),
            (
                json!({"broker": "mqtt://h", "state_every": 0}),
                "homeassistant.state_every: ",
            ),
            (
                json!({"broker": "mqtt://h", "colour": 1}),
                "homeassistant.colour: unknown key (known: broker, ",
            ),
            // serde alone would fill the object's fields from an array.
            (json!([]), "homeassistant: must be an object, not []"),
        ] {
            let e = error(value.clone());
            assert!(e.starts_with(says), "{value}: {e}");
        }
    }

    #[test]
    fn absent_is_none() {
        let section = |doc: Value| from_section(doc.get("homeassistant")).unwrap();
        assert_eq!(section(json!({"zendure": {}})), None);
        assert!(section(json!({"homeassistant": {"broker": "mqtt://h"}})).is_some());
    }
}
