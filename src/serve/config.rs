//! The `serve` object of the config file. Every key is checked and a bad
//! one named (`serve.listen: ...`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::tz;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub schedule_file: PathBuf,
    pub database: PathBuf,
    /// Writes need `Authorization: Bearer` with this file's first line.
    /// Without it, writes are open, which is allowed only on loopback.
    pub token_file: Option<PathBuf>,
    /// Reads need no token (the default), or the same one as writes.
    pub open_reads: bool,
    pub retention: Duration,
    pub max_rows: u64,
    pub max_body: usize,
    /// The controller counts as alive while it posted within this.
    pub alive_after: Duration,
    pub time_zone: Tz,
    /// Host names (besides the listen address and `localhost`) the server
    /// answers to; any other `Host` is refused, against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// A connection must send its request's headers within this.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: usize,
}

const KEYS: &str = "listen, schedule_file, database, token_file, open_reads, retention, \
                    max_rows, max_body, alive_after, time_zone, allowed_hosts, header_timeout, \
                    max_connections";

fn string<'a>(key: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str()
        .with_context(|| format!("serve.{key}: must be a string, not {v}"))
}

fn seconds(key: &str, v: &Value) -> Result<Duration> {
    v.as_f64()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0 * 3660.0)
        .map(Duration::from_secs_f64)
        .with_context(|| format!("serve.{key}: must be a positive number of seconds, not {v}"))
}

fn whole(key: &str, v: &Value, min: u64) -> Result<u64> {
    v.as_u64()
        .filter(|n| *n >= min)
        .with_context(|| format!("serve.{key}: must be a whole number of at least {min}, not {v}"))
}

/// `allowed_hosts`: plain host names, compared without case or a final dot.
fn host_names(v: &Value) -> Result<Vec<String>> {
    let names = v
        .as_array()
        .with_context(|| format!("serve.allowed_hosts: must be a list of host names, not {v}"))?;
    names
        .iter()
        .map(|name| {
            let name = name
                .as_str()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| {
                    !n.is_empty()
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                })
                .with_context(|| {
                    format!(
                        "serve.allowed_hosts: {name} is not a host name (letters, digits, - and .)"
                    )
                })?;
            Ok(name)
        })
        .collect()
}

/// Parses the whole config document: the `serve` object, falling back to
/// `zendure.time_zone` and then `system_zone` for the zone.
pub fn parse(doc: &Value, system_zone: impl FnOnce() -> Result<Tz>) -> Result<ServeConfig> {
    let empty = Map::new();
    let serve = match doc.get("serve") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(other) => bail!("serve: must be an object, not {other}"),
    };
    let state = Path::new("/var/lib/zcell-sched");
    let mut config = ServeConfig {
        listen: DEFAULT_LISTEN.parse().expect("a socket address"),
        schedule_file: state.join("schedule.json"),
        database: state.join("serve.sqlite"),
        token_file: None,
        open_reads: true,
        retention: Duration::from_secs(14 * 86_400),
        max_rows: 2_000_000,
        max_body: 64 * 1024,
        alive_after: Duration::from_secs(120),
        time_zone: Tz::UTC,
        allowed_hosts: Vec::new(),
        header_timeout: Duration::from_secs(10),
        max_connections: 256,
    };
    let mut zone = None;
    for (key, v) in serve.iter().filter(|(_, v)| !v.is_null()) {
        match key.as_str() {
            "listen" => {
                config.listen = string(key, v)?
                    .parse()
                    .with_context(|| format!("serve.listen: `{v}` is not IP:PORT"))?;
            }
            "schedule_file" => config.schedule_file = string(key, v)?.into(),
            "database" => config.database = string(key, v)?.into(),
            "token_file" => config.token_file = Some(string(key, v)?.into()),
            "open_reads" => {
                config.open_reads = v
                    .as_bool()
                    .with_context(|| format!("serve.open_reads: must be true or false, not {v}"))?;
            }
            "retention" => config.retention = seconds(key, v)?,
            "max_rows" => config.max_rows = whole(key, v, 100)?,
            "max_body" => config.max_body = whole(key, v, 1024)? as usize,
            "alive_after" => config.alive_after = seconds(key, v)?,
            "allowed_hosts" => config.allowed_hosts = host_names(v)?,
            "header_timeout" => config.header_timeout = seconds(key, v)?,
            "max_connections" => config.max_connections = whole(key, v, 1)? as usize,
            "time_zone" => {
                zone = Some(tz::parse_zone(string(key, v)?).context("serve.time_zone")?);
            }
            _ => bail!("serve.{key}: unknown key (known: {KEYS})"),
        }
    }
    let zendure_zone = doc
        .get("zendure")
        .and_then(|z| z.get("time_zone"))
        .and_then(Value::as_str);
    config.time_zone = match (zone, zendure_zone) {
        (Some(zone), _) => zone,
        (None, Some(name)) => tz::parse_zone(name).context("zendure.time_zone")?,
        (None, None) => system_zone()?,
    };
    Ok(config)
}

/// Reads `--config FILE` (its `serve` object); without a file, the defaults.
pub fn load(path: Option<&Path>) -> Result<ServeConfig> {
    let doc = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("config file {}: not valid JSON", path.display()))?
        }
        None => Value::Null,
    };
    parse(&doc, crate::zendure::config::system_zone).with_context(|| match path {
        Some(path) => format!("config file {}", path.display()),
        None => "the defaults".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc() -> Result<Tz> {
        Ok(Tz::UTC)
    }

    #[test]
    fn defaults_listen_on_loopback_with_open_reads() {
        let c = parse(&json!({}), utc).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.open_reads);
        assert_eq!(c.token_file, None);
        assert_eq!(c.time_zone, Tz::UTC);
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            &json!({"serve": {
                "listen": "0.0.0.0:9000", "schedule_file": "/s.json", "database": "/d.sqlite",
                "token_file": "/t", "open_reads": false, "retention": 0.5, "max_rows": 100,
                "max_body": 2048, "alive_after": 2.5, "time_zone": "Europe/Amsterdam",
                "allowed_hosts": ["Zendure.LAN."], "header_timeout": 0.25, "max_connections": 4
            }}),
            utc,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.schedule_file, PathBuf::from("/s.json"));
        assert_eq!(c.database, PathBuf::from("/d.sqlite"));
        assert_eq!(c.token_file, Some(PathBuf::from("/t")));
        assert!(!c.open_reads);
        assert_eq!(c.retention, Duration::from_millis(500));
        assert_eq!((c.max_rows, c.max_body), (100, 2048));
        assert_eq!(c.alive_after, Duration::from_millis(2500));
        assert_eq!(c.time_zone, chrono_tz::Europe::Amsterdam);
        assert_eq!(c.allowed_hosts, ["zendure.lan"]);
        assert_eq!(c.header_timeout, Duration::from_millis(250));
        assert_eq!(c.max_connections, 4);
    }

    #[test]
    fn the_zone_falls_back_to_the_zendure_one() {
        let c = parse(
            &json!({"zendure": {"time_zone": "Europe/Amsterdam"}}),
            || bail!("not asked"),
        )
        .unwrap();
        assert_eq!(c.time_zone, chrono_tz::Europe::Amsterdam);
    }

    #[test]
    fn bad_keys_are_named() {
        for (doc, says) in [
            (json!({"serve": {"listen": "here"}}), "serve.listen"),
            (json!({"serve": {"port": 1}}), "serve.port: unknown key"),
            (json!({"serve": {"retention": -1}}), "serve.retention"),
            (json!({"serve": {"max_rows": 3}}), "serve.max_rows"),
            (json!({"serve": {"open_reads": "yes"}}), "serve.open_reads"),
            (
                json!({"serve": {"time_zone": "Mars/Base"}}),
                "serve.time_zone",
            ),
            (json!({"serve": 3}), "serve: must be an object"),
            (
                json!({"serve": {"allowed_hosts": ["a b"]}}),
                "serve.allowed_hosts",
            ),
            (
                json!({"serve": {"allowed_hosts": "pi.local"}}),
                "serve.allowed_hosts",
            ),
            (
                json!({"serve": {"max_connections": 0}}),
                "serve.max_connections",
            ),
        ] {
            let err = format!("{:#}", parse(&doc, utc).unwrap_err());
            assert!(err.contains(says), "{doc}: {err}");
        }
    }
}
