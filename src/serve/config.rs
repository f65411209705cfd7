//! The `serve` object of the config file, as serde types: every key is
//! checked, an unknown one refused, and a bad one named (`serve.listen:
//! ...`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{self, Seconds};
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
    /// The bytes the stored rows may take in the database.
    pub max_database: u64,
    pub max_body: usize,
    /// The largest event or device body stored, in bytes.
    pub max_stored_body: usize,
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

/// The `serve` object as written: every key optional, none unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    listen: Option<String>,
    schedule_file: Option<PathBuf>,
    database: Option<PathBuf>,
    token_file: Option<PathBuf>,
    open_reads: Option<bool>,
    retention: Option<Seconds>,
    max_rows: Option<u64>,
    max_database: Option<u64>,
    max_body: Option<u64>,
    max_stored_body: Option<u64>,
    alive_after: Option<Seconds>,
    time_zone: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    header_timeout: Option<Seconds>,
    max_connections: Option<u64>,
}

fn at_least(key: &str, n: Option<u64>, min: u64, default: u64) -> Result<u64> {
    match n {
        None => Ok(default),
        Some(n) if n >= min => Ok(n),
        Some(n) => bail!("serve.{key}: must be a whole number of at least {min}, not {n}"),
    }
}

/// `allowed_hosts`: plain host names, compared without case or a final dot.
fn host_names(names: Vec<String>) -> Result<Vec<String>> {
    names
        .into_iter()
        .map(|name| {
            let host = name.trim_end_matches('.').to_ascii_lowercase();
            let plain = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !plain {
                bail!(
                    "serve.allowed_hosts: {name:?} is not a host name (letters, digits, - and .)"
                );
            }
            Ok(host)
        })
        .collect()
}

/// Parses the whole config document: the `serve` object, falling back to
/// `zendure.time_zone` and then `system_zone` for the zone.
pub fn parse(doc: &Value, system_zone: impl FnOnce() -> Result<Tz>) -> Result<ServeConfig> {
    let file: ServeFile = match doc.get("serve") {
        None | Some(Value::Null) => ServeFile::default(),
        Some(v) => config::section("serve", v)?,
    };
    let state = Path::new("/var/lib/zcell-sched");
    let listen = file.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let zone = file
        .time_zone
        .as_deref()
        .map(|name| tz::parse_zone(name).context("serve.time_zone"))
        .transpose()?;
    let zendure_zone = doc
        .get("zendure")
        .and_then(|z| z.get("time_zone"))
        .and_then(Value::as_str);
    Ok(ServeConfig {
        listen: listen
            .parse()
            .with_context(|| format!("serve.listen: `{listen}` is not IP:PORT"))?,
        schedule_file: file
            .schedule_file
            .unwrap_or_else(|| state.join("schedule.json")),
        database: file.database.unwrap_or_else(|| state.join("serve.sqlite")),
        token_file: file.token_file,
        open_reads: file.open_reads.unwrap_or(true),
        retention: file
            .retention
            .map_or(Duration::from_secs(14 * 86_400), |s| s.0),
        max_rows: at_least("max_rows", file.max_rows, 100, 2_000_000)?,
        max_database: at_least("max_database", file.max_database, 1 << 20, 256 << 20)?,
        max_body: at_least("max_body", file.max_body, 1024, 64 * 1024)? as usize,
        max_stored_body: at_least("max_stored_body", file.max_stored_body, 256, 8 * 1024)? as usize,
        alive_after: file.alive_after.map_or(Duration::from_secs(120), |s| s.0),
        time_zone: match (zone, zendure_zone) {
            (Some(zone), _) => zone,
            (None, Some(name)) => tz::parse_zone(name).context("zendure.time_zone")?,
            (None, None) => system_zone()?,
        },
        allowed_hosts: host_names(file.allowed_hosts.unwrap_or_default())?,
        header_timeout: file.header_timeout.map_or(Duration::from_secs(10), |s| s.0),
        max_connections: at_least("max_connections", file.max_connections, 1, 256)? as usize,
    })
}

/// Reads `--config FILE` (its `serve` object); without a file, the defaults.
pub fn load(path: Option<&Path>) -> Result<ServeConfig> {
    let doc = match path {
        Some(path) => config::document(path)?,
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
                "max_database": 2_000_000, "max_body": 2048, "max_stored_body": 512,
                "alive_after": 2.5, "time_zone": "Europe/Amsterdam",
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
        assert_eq!((c.max_database, c.max_stored_body), (2_000_000, 512));
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
            (
                json!({"serve": {"max_database": 1000}}),
                "serve.max_database",
            ),
            (
                json!({"serve": {"max_stored_body": 10}}),
                "serve.max_stored_body",
            ),
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
