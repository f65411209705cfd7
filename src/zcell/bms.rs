//! The ZCell BMS REST adapter: `GET <base>/rest/1.0/status`, parsed into a
//! snapshot the planner can trust or refused with the reason.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

use crate::http::brief;
use crate::zcell::battery::{Battery, Snapshot};

pub const DEFAULT_PORT: u16 = 3000;
pub const STATUS_PATH: &str = "/rest/1.0/status";
/// A real status document is a few KiB; anything near this is not the BMS.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// No battery runs anywhere near this long between maintenance cycles.
const MAX_SECONDS: f64 = 1e9;

/// Where the BMS answers, as a base URL without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmsAddress(String);

impl BmsAddress {
    pub fn status_url(&self) -> String {
        format!("{}{STATUS_PATH}", self.0)
    }
}

impl FromStr for BmsAddress {
    type Err = anyhow::Error;

    /// `10.1.1.133`, `10.1.1.133:3000`, `bms.lan` or `http://host:port`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim_end_matches('/');
        ensure!(!s.is_empty(), "the BMS address is empty");
        if let Some((scheme, rest)) = s.split_once("://") {
            ensure!(
                scheme == "http",
                "`{s}`: the BMS speaks plain http, not {scheme}"
            );
            ensure!(
                !rest.is_empty() && !rest.contains(['/', '?', '#', ' ']),
                "`{s}` is not a base URL (use http://HOST:PORT)"
            );
            return Ok(BmsAddress(s.to_string()));
        }
        ensure!(
            !s.contains(['/', '?', '#', ' ', '@']),
            "`{s}` is not a BMS address (use HOST, HOST:PORT or http://HOST:PORT)"
        );
        let has_port = match s.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                port.parse::<u16>()
                    .with_context(|| format!("`{s}`: `{port}` is not a port"))?;
                true
            }
            _ => false,
        };
        Ok(BmsAddress(if has_port {
            format!("http://{s}")
        } else {
            format!("http://{s}:{DEFAULT_PORT}")
        }))
    }
}

impl fmt::Display for BmsAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a status document, refusing anything the planner should not act on.
pub fn parse(body: &[u8]) -> Result<Snapshot> {
    let doc: Value = serde_json::from_slice(body).context("the BMS status is not valid JSON")?;
    let list = doc
        .get("list")
        .context("the BMS status has no `list`")?
        .as_array()
        .context("the BMS status `list` is not an array")?;
    ensure!(!list.is_empty(), "the BMS status lists no battery");
    let batteries = list
        .iter()
        .enumerate()
        .map(|(i, entry)| parse_battery(i, entry))
        .collect::<Result<_>>()?;
    Ok(Snapshot { batteries })
}

fn parse_battery(index: usize, entry: &Value) -> Result<Battery> {
    ensure!(
        entry.is_object(),
        "battery {} is not an object: {entry}",
        index + 1
    );
    let id = match entry.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => (index + 1).to_string(),
    };
    let what = |field: &str| format!("battery {id}: `{field}`");
    let number = |field: &str, max: f64| -> Result<f64> {
        let value = entry
            .get(field)
            .with_context(|| format!("{} is missing", what(field)))?;
        let n = value
            .as_f64()
            .with_context(|| format!("{} is not a number: {value}", what(field)))?;
        ensure!(
            n.is_finite() && (0.0..=max).contains(&n),
            "{} is out of range: {n}",
            what(field)
        );
        Ok(n)
    };
    let stripping = match entry.get("is_stripping") {
        Some(Value::Bool(b)) => *b,
        Some(other) => bail!("{} is not true/false: {other}", what("is_stripping")),
        None => bail!("{} is missing", what("is_stripping")),
    };
    Ok(Battery {
        soc: number("state_of_charge", 100.0)?,
        run_timer: number("strip_pump_run_timer", MAX_SECONDS)?,
        run_target: number("strip_pump_run_target", MAX_SECONDS)?,
        stripping,
        id,
    })
}

/// How hard to try the BMS.
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    /// Bounds each attempt from connect to the last body byte.
    pub timeout: Duration,
    /// Attempts after the first, with a doubling back-off from one second.
    pub retries: u32,
}

/// Reads and parses the status, retrying transient failures.
pub async fn fetch(address: &BmsAddress, options: FetchOptions) -> Result<Snapshot> {
    let url = address.status_url();
    let client = crate::http::plain_client()
        .connect_timeout(options.timeout)
        .timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .context("cannot set up the HTTP client")?;
    let mut backoff = Duration::from_secs(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let limit = options.timeout;
        let result = tokio::time::timeout(limit, fetch_once(&client, &url, limit))
            .await
            .unwrap_or_else(|_| bail!("timed out after {limit:?}"))
            .and_then(|body| parse(&body));
        match result {
            Ok(snapshot) => return Ok(snapshot),
            Err(e) if attempt <= options.retries => {
                crate::log(&format!(
                    "BMS attempt {attempt} failed: {}; retrying in {}s",
                    crate::exit::causes(&e),
                    backoff.as_secs()
                ));
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => {
                return Err(e.context(format!("BMS {url} (attempts: {attempt})")));
            }
        }
    }
}

async fn fetch_once(client: &reqwest::Client, url: &str, limit: Duration) -> Result<Vec<u8>> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow!(brief(&e, limit)))?;
    let status = response.status();
    if status.is_redirection() {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        bail!("HTTP {status}: redirect to {to} refused");
    }
    ensure!(status.is_success(), "HTTP {status}");
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| anyhow!("reading the body: {}", brief(&e, limit)))?
    {
        ensure!(
            body.len() + chunk.len() <= MAX_BODY_BYTES,
            "the body is larger than {MAX_BODY_BYTES} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let cases = [
            ("10.1.1.133", "http://10.1.1.133:3000"),
            ("10.1.1.133:3001", "http://10.1.1.133:3001"),
            ("bms.lan", "http://bms.lan:3000"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("[::1]:3000", "http://[::1]:3000"),
        ];
        for (input, base) in cases {
            assert_eq!(input.parse::<BmsAddress>().unwrap().to_string(), base);
        }
        assert_eq!(
            "10.1.1.133".parse::<BmsAddress>().unwrap().status_url(),
            "http://10.1.1.133:3000/rest/1.0/status"
        );
        for bad in [
            "",
            "https://bms",
            "10.1.1.133:port",
            "http://",
            "bms/rest",
            "a b",
        ] {
            assert!(bad.parse::<BmsAddress>().is_err(), "{bad:?}");
        }
    }

    const NORMAL: &str = r#"{"list": [{"id": 1, "state_of_charge": 87.4, "is_stripping": false,
        "strip_pump_run_timer": 86400, "strip_pump_run_target": 259200, "extra": "ignored"}]}"#;

    #[test]
    fn parses_the_documented_shape() {
        let snap = parse(NORMAL.as_bytes()).unwrap();
        let b = &snap.batteries[0];
        assert_eq!(b.id, "1");
        assert_eq!(b.soc, 87.4);
        assert!(!b.stripping);
        assert_eq!(b.seconds_to_maintenance(), 172800.0);
    }

    #[test]
    fn overdue_is_accepted() {
        let body = r#"{"list": [{"state_of_charge": 3.2, "is_stripping": true,
            "strip_pump_run_timer": 262000, "strip_pump_run_target": 259200}]}"#;
        let b = &parse(body.as_bytes()).unwrap().batteries[0];
        assert_eq!(b.id, "1");
        assert!(b.seconds_to_maintenance() < 0.0);
    }

    fn error_of(body: &str) -> String {
        format!("{:#}", parse(body.as_bytes()).unwrap_err())
    }

    #[test]
    fn refuses_what_makes_no_sense() {
        let field = |name: &str, value: &str| {
            let mut doc: Value = serde_json::from_str(NORMAL).unwrap();
            let entry = &mut doc["list"][0];
            if value.is_empty() {
                entry.as_object_mut().unwrap().remove(name);
            } else {
                entry[name] = serde_json::from_str(value).unwrap();
            }
            doc.to_string()
        };
        let cases = [
            ("not json".to_string(), "not valid JSON"),
            ("{}".to_string(), "no `list`"),
            (r#"{"list": {}}"#.to_string(), "not an array"),
            (r#"{"list": []}"#.to_string(), "no battery"),
            (
                field("strip_pump_run_timer", ""),
                "`strip_pump_run_timer` is missing",
            ),
            (field("strip_pump_run_target", "null"), "not a number: null"),
            (field("state_of_charge", "\"87\""), "not a number"),
            (field("strip_pump_run_timer", "-1"), "out of range: -1"),
            (field("strip_pump_run_target", "1e300"), "out of range"),
            (field("state_of_charge", "100.5"), "out of range"),
            (field("is_stripping", "0"), "not true/false"),
            (field("is_stripping", ""), "`is_stripping` is missing"),
        ];
        for (body, expected) in cases {
            let err = error_of(&body);
            assert!(err.contains(expected), "{body}: {err}");
        }
    }
}
