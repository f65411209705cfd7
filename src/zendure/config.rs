//! The `zendure` object of the config file. Every problem names its key
//! (`zendure.meter.kind: ...`); every duration is seconds, fractions
//! allowed, so tests can compress a day into minutes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{self, Seconds, SecondsOrZero, Whole};

use crate::zendure::core::law::{Limits, Tuning};
use crate::zendure::core::prices::config::{self as price_config, PriceConfig};

/// Where the config is read from when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/zcell-sched/config.json";
/// tmpfs: the status file is replaced every cycle, and a Pi's SD card
/// must not be written every few seconds.
pub const DEFAULT_STATUS_FILE: &str = "/run/zcell-sched/zendure-status.json";
pub const DEFAULT_LOCK_FILE: &str = "/run/zcell-sched/zendure.lock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/zcell-sched";

/// A `host[:port]` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: Option<u16>,
}

impl Address {
    pub fn parse(text: &str) -> Result<Address> {
        ensure!(
            !text.contains("://") && !text.contains('/'),
            "give host or host:port, not a URL (`{text}`)"
        );
        let (host, port) = match text.rsplit_once(':') {
            // An IPv6 address without a port has colons but no brackets.
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
                h,
                Some(
                    p.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .with_context(|| format!("`{p}` is not a port"))?,
                ),
            ),
            _ => (text, None),
        };
        ensure!(!host.is_empty(), "the host is empty");
        Ok(Address {
            host: host.to_string(),
            port,
        })
    }

    /// `host:port`, with `default` when no port was given.
    pub fn with_port(&self, default: u16) -> String {
        format!("{}:{}", self.host, self.port.unwrap_or(default))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Where a device is, as the config says: a fixed `host[:port]` (the
/// default, always works), or `"auto"`: found over mDNS at start, and again
/// after it has been unreachable for `rediscover_after` (a DHCP lease
/// change). What the adapters take is an `Address`: `io::auto` resolves
/// "auto" into one, and a build without discovery has no "auto" at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Place {
    Fixed(Address),
    #[cfg(feature = "discover")]
    Auto,
}

impl TryFrom<String> for Place {
    type Error = anyhow::Error;

    fn try_from(text: String) -> Result<Place> {
        if text != "auto" {
            return Address::parse(&text).map(Place::Fixed);
        }
        #[cfg(feature = "discover")]
        return Ok(Place::Auto);
        #[cfg(not(feature = "discover"))]
        bail!("\"auto\" needs mDNS discovery, which this build leaves out; give host or host:port")
    }
}

impl Place {
    /// The address: without discovery in the build, every place is fixed.
    #[cfg(not(feature = "discover"))]
    pub fn fixed(&self) -> &Address {
        match self {
            Place::Fixed(a) => a,
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Fixed(a) => a.fmt(f),
            #[cfg(feature = "discover")]
            Place::Auto => f.write_str("auto"),
        }
    }
}

/// Where the meter is: a fixed address, or `"auto"` for a kind that
/// announces itself on mDNS (a DSMR stream cannot be "auto").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterPlace {
    Fixed(Address),
    #[cfg(feature = "discover")]
    Auto(crate::discover::Kind),
}

impl MeterPlace {
    /// The address: without discovery in the build, every place is fixed.
    #[cfg(not(feature = "discover"))]
    pub fn fixed(&self) -> &Address {
        match self {
            MeterPlace::Fixed(a) => a,
        }
    }
}

/// The device's and the meter's addresses, `"auto"` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    pub device: Address,
    pub meter: Address,
}

impl Addresses {
    /// The config's addresses: without discovery in the build, all fixed.
    #[cfg(not(feature = "discover"))]
    pub fn fixed(config: &ZendureConfig) -> Addresses {
        Addresses {
            device: config.device.fixed().clone(),
            meter: config.meter.place().fixed().clone(),
        }
    }
}

/// The P1 meter kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum MeterKind {
    /// HomeWizard P1, API v1: `GET http://host/api/v1/data`.
    HomeWizard,
    /// HomeWizard API v2: HTTPS with a bearer token.
    HomeWizardV2,
    /// Zendure's P1 meter: `GET http://host/properties/report`.
    ZendureP1,
    /// A raw DSMR telegram stream over TCP (ser2net and the like).
    DsmrTcp,
}

impl MeterKind {
    pub const NAMES: &str = "homewizard, homewizard-v2, zendure-p1, dsmr-tcp";

    pub fn name(self) -> &'static str {
        match self {
            MeterKind::HomeWizard => "homewizard",
            MeterKind::HomeWizardV2 => "homewizard-v2",
            MeterKind::ZendureP1 => "zendure-p1",
            MeterKind::DsmrTcp => "dsmr-tcp",
        }
    }
}

impl TryFrom<String> for MeterKind {
    type Error = anyhow::Error;

    fn try_from(text: String) -> Result<MeterKind> {
        [
            MeterKind::HomeWizard,
            MeterKind::HomeWizardV2,
            MeterKind::ZendureP1,
            MeterKind::DsmrTcp,
        ]
        .into_iter()
        .find(|k| k.name() == text)
        .ok_or_else(|| anyhow!("unknown kind `{text}` (known: {})", MeterKind::NAMES))
    }
}

/// The P1 meter: each kind with only the keys it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterConfig {
    HomeWizard {
        address: Place,
    },
    HomeWizardV2 {
        address: Place,
        /// The file holding the bearer token.
        token_file: PathBuf,
        /// The meter's certificate (pinned) or a CA that signed it.
        ca_file: PathBuf,
    },
    ZendureP1 {
        address: Place,
    },
    /// A telegram stream announces nothing on mDNS: always host:port.
    DsmrTcp {
        address: Address,
        /// How often the meter sends a telegram, so a first read waits for
        /// a whole one.
        telegram_period: Duration,
    },
}

impl MeterConfig {
    pub fn kind(&self) -> MeterKind {
        match self {
            MeterConfig::HomeWizard { .. } => MeterKind::HomeWizard,
            MeterConfig::HomeWizardV2 { .. } => MeterKind::HomeWizardV2,
            MeterConfig::ZendureP1 { .. } => MeterKind::ZendureP1,
            MeterConfig::DsmrTcp { .. } => MeterKind::DsmrTcp,
        }
    }

    /// Where the meter is, as the config says.
    pub fn place(&self) -> MeterPlace {
        #[cfg(feature = "discover")]
        use crate::discover::Kind;
        match self {
            MeterConfig::HomeWizard {
                address: Place::Fixed(address),
            }
            | MeterConfig::HomeWizardV2 {
                address: Place::Fixed(address),
                ..
            }
            | MeterConfig::ZendureP1 {
                address: Place::Fixed(address),
            }
            | MeterConfig::DsmrTcp { address, .. } => MeterPlace::Fixed(address.clone()),
            #[cfg(feature = "discover")]
            MeterConfig::HomeWizard {
                address: Place::Auto,
            } => MeterPlace::Auto(Kind::HomeWizardV1),
            #[cfg(feature = "discover")]
            MeterConfig::HomeWizardV2 {
                address: Place::Auto,
                ..
            } => MeterPlace::Auto(Kind::HomeWizardV2),
            #[cfg(feature = "discover")]
            MeterConfig::ZendureP1 {
                address: Place::Auto,
            } => MeterPlace::Auto(Kind::Zendure),
        }
    }
}

/// Where the schedule comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ScheduleSource {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for ScheduleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleSource::File(p) => write!(f, "{}", p.display()),
            ScheduleSource::Url(u) => f.write_str(u),
        }
    }
}

/// Every timing, as given in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    /// The control period.
    pub interval: Duration,
    pub schedule_refresh: Duration,
    pub meter_timeout: Duration,
    pub min_write_interval: Duration,
    pub min_direction_change: Duration,
    pub reassert: Duration,
    /// Each device, meter or schedule request.
    pub http_timeout: Duration,
    /// The meter's lag; `None`: estimated.
    pub meter_lag: Option<Duration>,
    /// An `"auto"` device or meter unreachable this long is looked for
    /// again over mDNS.
    pub rediscover_after: Duration,
    /// How long each mDNS look listens for answers.
    pub discover_for: Duration,
}

/// The checked `zendure` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ZendureConfig {
    pub device: Place,
    pub sn: Option<String>,
    pub meter: MeterConfig,
    pub schedule: ScheduleSource,
    pub time_zone: Tz,
    pub limits: Limits,
    pub status_file: PathBuf,
    pub lock_file: PathBuf,
    pub state_dir: PathBuf,
    pub timings: Timings,
    pub deadband_w: u32,
    pub step_w: u32,
    pub hysteresis_w: u32,
    pub report: ReportConfig,
    /// For `plan-prices`: absent when the owner plans by hand.
    pub prices: Option<PriceConfig>,
}

/// Where the controller posts its status events and readings (a
/// `zcell-sched serve`, or the reference PHP host); nothing when both URLs
/// are absent.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    pub status_url: Option<String>,
    pub data_url: Option<String>,
    /// Its first line is sent as `Authorization: Bearer`.
    pub token_file: Option<PathBuf>,
    /// Reports kept on disk while the server is down.
    pub queue_max: usize,
    /// The bytes they may take there.
    pub queue_max_bytes: u64,
}

impl ZendureConfig {
    pub fn tuning(&self) -> Tuning {
        Tuning {
            min_write_interval: self.timings.min_write_interval,
            min_direction_change: self.timings.min_direction_change,
            reassert: self.timings.reassert,
            meter_timeout: self.timings.meter_timeout,
            deadband_w: self.deadband_w,
            step_w: self.step_w,
            hysteresis_w: self.hysteresis_w,
        }
    }

    /// Where the last good schedule is kept.
    pub fn saved_schedule(&self) -> PathBuf {
        self.state_dir.join("zendure-schedule.json")
    }
}

/// The `zendure` object as written; absent and `null` keys take the
/// defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZendureText {
    device: Place,
    sn: Option<String>,
    meter: MeterText,
    schedule: ScheduleSource,
    time_zone: Option<String>,
    max_charge_w: Option<Watts>,
    max_discharge_w: Option<Watts>,
    min_soc: Option<Whole<0, 100>>,
    max_soc: Option<Whole<0, 100>>,
    status_file: Option<PathBuf>,
    lock_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    interval: Option<Seconds>,
    schedule_refresh: Option<Seconds>,
    meter_timeout: Option<Seconds>,
    min_write_interval: Option<SecondsOrZero>,
    min_direction_change: Option<SecondsOrZero>,
    reassert: Option<SecondsOrZero>,
    http_timeout: Option<Seconds>,
    meter_lag: Option<SecondsOrZero>,
    deadband_w: Option<Watts>,
    step_w: Option<Watts>,
    hysteresis_w: Option<Watts>,
    status_url: Option<HttpUrl>,
    data_url: Option<HttpUrl>,
    report_token_file: Option<PathBuf>,
    report_queue_max: Option<Whole<10, 10_000_000>>,
    report_queue_max_bytes: Option<Whole<65_536, { 1 << 30 }>>,
    /// Read by its own module.
    prices: Option<Value>,
    rediscover_after: Option<SecondsOrZero>,
    discover_for: Option<Seconds>,
}

type Watts = Whole<0, 100_000>;

/// The `meter` object as written: every kind's keys, checked against the
/// kind when it becomes a `MeterConfig`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterText {
    kind: MeterKind,
    address: Place,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    telegram_period: Option<SecondsOrZero>,
}

/// A URL the controller posts to.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct HttpUrl(String);

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(url: String) -> Result<HttpUrl, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(HttpUrl(url))
        } else {
            Err(format!("`{url}` is not an http:// or https:// URL"))
        }
    }
}

/// Reads the config file and checks its `zendure` object.
pub fn load(explicit: Option<&Path>) -> Result<ZendureConfig> {
    Ok(load_with_document(explicit)?.0)
}

/// `load`, also giving the whole document, for the other sections a
/// command reads (`homeassistant`) without reading the file again.
pub fn load_with_document(explicit: Option<&Path>) -> Result<(ZendureConfig, Value)> {
    let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
    let doc = config::document(path)?;
    let zendure = doc
        .get("zendure")
        .with_context(|| format!("config file {}: no `zendure` object", path.display()))?;
    let parsed =
        parse(zendure, system_zone).with_context(|| format!("config file {}", path.display()))?;
    Ok((parsed, doc))
}

/// Checks the `zendure` object; `system_zone` is asked only when
/// `time_zone` is absent.
pub fn parse(value: &Value, system_zone: impl FnOnce() -> Result<Tz>) -> Result<ZendureConfig> {
    ensure!(
        value.is_object(),
        "`zendure` must be an object, not {value}"
    );
    let file: ZendureText = config::section("zendure", value)?;
    if let Some(sn) = &file.sn {
        ensure!(
            !sn.is_empty() && sn.chars().all(|c| c.is_ascii_alphanumeric()),
            "zendure.sn: `{sn}` is not a serial number (letters and digits)"
        );
    }
    let time_zone = match &file.time_zone {
        Some(name) => crate::tz::parse_zone(name).context("zendure.time_zone")?,
        None => system_zone().context("zendure.time_zone: absent, and the system zone")?,
    };
    let watts = |w: Option<Watts>, default: u32| w.map_or(default, |w| w.0 as u32);
    let percent = |p: Option<Whole<0, 100>>, default: u8| p.map_or(default, |p| p.0 as u8);
    let limits = Limits {
        max_charge_w: watts(file.max_charge_w, 800),
        max_discharge_w: watts(file.max_discharge_w, 800),
        min_soc_pct: percent(file.min_soc, 10),
        max_soc_pct: percent(file.max_soc, 100),
    };
    ensure!(
        limits.min_soc_pct < limits.max_soc_pct,
        "zendure.min_soc: {} must be below max_soc {}",
        limits.min_soc_pct,
        limits.max_soc_pct
    );
    let positive =
        |s: Option<Seconds>, default: u64| s.map_or(Duration::from_secs(default), |s| s.0);
    let any =
        |s: Option<SecondsOrZero>, default: u64| s.map_or(Duration::from_secs(default), |s| s.0);
    let timings = Timings {
        interval: positive(file.interval, 2),
        schedule_refresh: positive(file.schedule_refresh, 300),
        meter_timeout: positive(file.meter_timeout, 30),
        min_write_interval: any(file.min_write_interval, 10),
        min_direction_change: any(file.min_direction_change, 60),
        reassert: any(file.reassert, 60),
        http_timeout: positive(file.http_timeout, 5),
        meter_lag: file.meter_lag.map(|s| s.0),
        rediscover_after: any(file.rediscover_after, 300),
        discover_for: positive(file.discover_for, 3),
    };
    let path = |p: Option<PathBuf>, default: &str| p.unwrap_or_else(|| PathBuf::from(default));
    Ok(ZendureConfig {
        device: file.device,
        sn: file.sn,
        meter: file.meter.check()?,
        schedule: file.schedule,
        time_zone,
        limits,
        status_file: path(file.status_file, DEFAULT_STATUS_FILE),
        lock_file: path(file.lock_file, DEFAULT_LOCK_FILE),
        state_dir: path(file.state_dir, DEFAULT_STATE_DIR),
        timings,
        deadband_w: watts(file.deadband_w, 25),
        step_w: watts(file.step_w, 20),
        hysteresis_w: watts(file.hysteresis_w, 60),
        report: ReportConfig {
            status_url: file.status_url.map(|u| u.0),
            data_url: file.data_url.map(|u| u.0),
            token_file: file.report_token_file,
            queue_max: file.report_queue_max.map_or(20_000, |n| n.0 as usize),
            queue_max_bytes: file.report_queue_max_bytes.map_or(8 << 20, |n| n.0 as u64),
        },
        prices: file.prices.as_ref().map(price_config::parse).transpose()?,
    })
}

impl MeterText {
    /// The kind's own keys, and no other kind's.
    fn check(self) -> Result<MeterConfig> {
        let MeterText {
            kind,
            address,
            token_file,
            ca_file,
            telegram_period,
        } = self;
        ensure!(
            kind == MeterKind::DsmrTcp || telegram_period.is_none(),
            "zendure.meter.telegram_period: only dsmr-tcp streams telegrams"
        );
        if kind != MeterKind::HomeWizardV2 {
            ensure!(
                token_file.is_none(),
                "zendure.meter.token_file: only homewizard-v2 uses a token"
            );
            ensure!(
                ca_file.is_none(),
                "zendure.meter.ca_file: only homewizard-v2 uses HTTPS"
            );
        }
        Ok(match kind {
            MeterKind::HomeWizard => MeterConfig::HomeWizard { address },
            MeterKind::HomeWizardV2 => MeterConfig::HomeWizardV2 {
                address,
                token_file: token_file.context(
                    "zendure.meter.token_file: missing (homewizard-v2 needs the API token)",
                )?,
                ca_file: ca_file.context(
                    "zendure.meter.ca_file: missing (homewizard-v2 needs the meter's certificate or its CA)",
                )?,
            },
            MeterKind::ZendureP1 => MeterConfig::ZendureP1 { address },
            MeterKind::DsmrTcp => MeterConfig::DsmrTcp {
                address: match address {
                    Place::Fixed(a) => {
                        ensure!(
                            a.port.is_some(),
                            "zendure.meter.address: dsmr-tcp needs host:port"
                        );
                        a
                    }
                    #[cfg(feature = "discover")]
                    Place::Auto => bail!(
                        "zendure.meter.address: a dsmr-tcp stream announces nothing on mDNS; give host:port"
                    ),
                },
                // DSMR 2.2-4 meters send every 10 s, DSMR 5 every second.
                telegram_period: telegram_period.map_or(Duration::from_secs(10), |s| s.0),
            },
        })
    }
}

impl TryFrom<String> for ScheduleSource {
    type Error = anyhow::Error;

    fn try_from(text: String) -> Result<ScheduleSource> {
        if text.starts_with("http://") || text.starts_with("https://") {
            Ok(ScheduleSource::Url(text))
        } else if text.contains("://") {
            bail!("`{text}`: only http(s) URLs or file paths")
        } else {
            ensure!(!text.is_empty(), "the path is empty");
            Ok(ScheduleSource::File(PathBuf::from(text)))
        }
    }
}

/// The system's time zone: `TZ`, else `/etc/timezone`, else the target of
/// the `/etc/localtime` link.
pub fn system_zone() -> Result<Tz> {
    let from_env = std::env::var("TZ")
        .ok()
        .map(|s| s.trim_start_matches(':').to_string());
    let from_file = || {
        std::fs::read_to_string("/etc/timezone")
            .ok()
            .map(|s| s.trim().to_string())
    };
    let from_link = || {
        std::fs::read_link("/etc/localtime").ok().and_then(|p| {
            let p = p.to_string_lossy().into_owned();
            p.split_once("zoneinfo/").map(|(_, zone)| zone.to_string())
        })
    };
    let name = from_env
        .filter(|s| !s.is_empty())
        .or_else(from_file)
        .or_else(from_link)
        .context("cannot tell the system time zone (no TZ, /etc/timezone or /etc/localtime link); set zendure.time_zone")?;
    crate::tz::parse_zone(&name).or_else(|_| {
        if name == "UTC" || name == "Etc/UTC" {
            Ok(Tz::UTC)
        } else {
            Err(anyhow!(
                "system time zone `{name}` is unknown; set zendure.time_zone"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "device": "192.168.1.50",
            "meter": {"kind": "homewizard", "address": "192.168.1.60"},
            "schedule": "/etc/zcell-sched/schedule.json",
            "time_zone": "Europe/Amsterdam"
        })
    }

    fn parse_ok(v: Value) -> ZendureConfig {
        parse(&v, || Ok(Tz::UTC)).unwrap()
    }

    #[test]
    fn report_urls_and_queue() {
        let none = parse_ok(minimal()).report;
        assert_eq!(
            (
                none.status_url,
                none.data_url,
                none.queue_max,
                none.queue_max_bytes
            ),
            (None, None, 20_000, 8 << 20)
        );
        let mut v = minimal();
        v["status_url"] = json!("http://pi.local:8080/api/status");
        v["data_url"] = json!("http://pi.local:8080/api/data");
        v["report_token_file"] = json!("/etc/zcell-sched/token");
        v["report_queue_max"] = json!(500);
        v["report_queue_max_bytes"] = json!(100_000);
        let r = parse_ok(v.clone()).report;
        assert_eq!(
            r.status_url.as_deref(),
            Some("http://pi.local:8080/api/status")
        );
        assert_eq!(r.data_url.as_deref(), Some("http://pi.local:8080/api/data"));
        assert_eq!(r.token_file, Some(PathBuf::from("/etc/zcell-sched/token")));
        assert_eq!((r.queue_max, r.queue_max_bytes), (500, 100_000));
        v["status_url"] = json!("pi.local/api/status");
        let err = format!("{:#}", parse(&v, || Ok(Tz::UTC)).unwrap_err());
        assert!(err.contains("zendure.status_url"), "{err}");
    }

    /// `"auto"` for the device and the meter, with the rediscovery timings;
    /// refused naming the key where it cannot work.
    #[test]
    fn auto_addresses() {
        let c = parse_ok(minimal());
        assert_eq!(c.timings.rediscover_after, Duration::from_secs(300));
        assert_eq!(c.timings.discover_for, Duration::from_secs(3));
        let mut v = minimal();
        v["device"] = json!("auto");
        v["meter"] = json!({"kind": "homewizard", "address": "auto"});
        v["rediscover_after"] = json!(0.5);
        v["discover_for"] = json!(0.25);
        #[cfg(feature = "discover")]
        {
            let c = parse_ok(v.clone());
            assert_eq!(c.device, Place::Auto);
            assert_eq!(
                c.meter.place(),
                MeterPlace::Auto(crate::discover::Kind::HomeWizardV1)
            );
            assert_eq!(c.timings.rediscover_after, Duration::from_millis(500));
            assert_eq!(c.timings.discover_for, Duration::from_millis(250));
            let err = parse_err(with(
                "meter",
                json!({"kind": "dsmr-tcp", "address": "auto"}),
            ));
            assert!(err.contains("zendure.meter.address: a dsmr-tcp"), "{err}");
        }
        #[cfg(not(feature = "discover"))]
        {
            let err = parse_err(v.clone());
            assert!(err.contains("zendure.device: \"auto\" needs mDNS"), "{err}");
            v["device"] = json!("192.168.1.50");
            let err = parse_err(v.clone());
            assert!(
                err.contains("zendure.meter.address: \"auto\" needs mDNS"),
                "{err}"
            );
        }
        let err = parse_err(with("discover_for", json!(0)));
        assert!(err.contains("zendure.discover_for"), "{err}");
        let err = parse_err(with("device", json!("Auto:x")));
        assert!(err.contains("zendure.device"), "{err}");
    }

    fn parse_err(v: Value) -> String {
        format!("{:#}", parse(&v, || Ok(Tz::UTC)).unwrap_err())
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = minimal();
        v[key] = value;
        v
    }

    fn fixed(place: &Place) -> &Address {
        match place {
            Place::Fixed(address) => address,
            #[cfg(feature = "discover")]
            Place::Auto => panic!("\"auto\" where an address was given"),
        }
    }

    #[test]
    fn defaults() {
        let c = parse_ok(minimal());
        assert_eq!(fixed(&c.device).with_port(80), "192.168.1.50:80");
        assert_eq!(c.sn, None);
        assert_eq!(c.meter.kind(), MeterKind::HomeWizard);
        assert_eq!(
            c.schedule,
            ScheduleSource::File("/etc/zcell-sched/schedule.json".into())
        );
        assert_eq!(c.time_zone, chrono_tz::Europe::Amsterdam);
        assert_eq!(c.limits.max_charge_w, 800);
        assert_eq!((c.limits.min_soc_pct, c.limits.max_soc_pct), (10, 100));
        assert_eq!(c.status_file, PathBuf::from(DEFAULT_STATUS_FILE));
        assert_eq!(c.timings.interval, Duration::from_secs(2));
        assert_eq!(c.timings.schedule_refresh, Duration::from_secs(300));
        assert_eq!(c.timings.meter_timeout, Duration::from_secs(30));
        assert_eq!(c.timings.min_write_interval, Duration::from_secs(10));
        assert_eq!(c.timings.min_direction_change, Duration::from_secs(60));
        assert_eq!(c.timings.reassert, Duration::from_secs(60));
        assert_eq!(c.timings.http_timeout, Duration::from_secs(5));
        assert_eq!(c.timings.meter_lag, None);
        let c = parse(&json!({"device": "d", "meter": {"kind": "zendure-p1", "address": "m"}, "schedule": "s"}), || Ok(chrono_tz::Europe::Berlin)).unwrap();
        assert_eq!(c.time_zone, chrono_tz::Europe::Berlin);
        let period =
            |meter: Value| match parse_ok(json!({"device": "d", "schedule": "s", "meter": meter}))
                .meter
            {
                MeterConfig::DsmrTcp {
                    telegram_period, ..
                } => telegram_period,
                other => panic!("{other:?}"),
            };
        assert_eq!(
            period(json!({"kind": "dsmr-tcp", "address": "m:2000"})),
            Duration::from_secs(10)
        );
        assert_eq!(
            period(json!({"kind": "dsmr-tcp", "address": "m:2000", "telegram_period": 1})),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn every_key() {
        let c = parse_ok(json!({
            "device": "zendure.local:8080",
            "sn": "HOA1NAH0000001",
            "meter": {"kind": "homewizard-v2", "address": "p1.local", "token_file": "/etc/t", "ca_file": "/etc/c.pem"},
            "schedule": "https://example.org/api/schedule.php",
            "time_zone": "Europe/Amsterdam",
            "max_charge_w": 1200, "max_discharge_w": 600, "min_soc": 15, "max_soc": 90,
            "status_file": "/tmp/s.json", "lock_file": "/tmp/l", "state_dir": "/tmp/state",
            "interval": 0.05, "schedule_refresh": 1.5, "meter_timeout": 3, "min_write_interval": 0.5,
            "min_direction_change": 3, "reassert": 6, "http_timeout": 0.5, "meter_lag": 0.25,
            "deadband_w": 10, "step_w": 5, "hysteresis_w": 40
        }));
        assert_eq!(fixed(&c.device).with_port(80), "zendure.local:8080");
        assert_eq!(c.sn.as_deref(), Some("HOA1NAH0000001"));
        assert!(
            matches!(&c.meter, MeterConfig::HomeWizardV2 { ca_file, .. } if ca_file.as_path() == Path::new("/etc/c.pem")),
            "{:?}",
            c.meter
        );
        assert_eq!(
            c.schedule,
            ScheduleSource::Url("https://example.org/api/schedule.php".into())
        );
        assert_eq!(
            c.limits,
            Limits {
                max_charge_w: 1200,
                max_discharge_w: 600,
                min_soc_pct: 15,
                max_soc_pct: 90
            }
        );
        assert_eq!(c.timings.interval, Duration::from_millis(50));
        assert_eq!(c.timings.meter_lag, Some(Duration::from_millis(250)));
        assert_eq!(
            c.saved_schedule(),
            PathBuf::from("/tmp/state/zendure-schedule.json")
        );
        assert_eq!(c.tuning().deadband_w, 10);
    }

    #[test]
    fn errors_name_the_key() {
        let mut no_device = minimal();
        no_device.as_object_mut().unwrap().remove("device");
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "`zendure` must be an object"),
            (no_device, "zendure.device: missing"),
            (with("bogus", json!(1)), "zendure.bogus: unknown key"),
            (with("device", json!(5)), "zendure.device: must be a string"),
            (with("device", json!("http://x")), "zendure.device"),
            (with("device", json!("x:99999")), "zendure.device"),
            (with("sn", json!("a b")), "zendure.sn"),
            (
                with("meter", json!({"kind": "p1", "address": "m"})),
                "zendure.meter.kind: unknown kind `p1`",
            ),
            (
                with("meter", json!({"address": "m"})),
                "zendure.meter.kind: missing",
            ),
            (
                with("meter", json!({"kind": "homewizard"})),
                "zendure.meter.address: missing",
            ),
            (
                with(
                    "meter",
                    json!({"kind": "homewizard", "address": "m", "x": 1}),
                ),
                "zendure.meter.x: unknown key",
            ),
            (
                with(
                    "meter",
                    json!({"kind": "homewizard-v2", "address": "m", "ca_file": "c"}),
                ),
                "zendure.meter.token_file",
            ),
            (
                with(
                    "meter",
                    json!({"kind": "homewizard-v2", "address": "m", "token_file": "t"}),
                ),
                "zendure.meter.ca_file",
            ),
            (
                with(
                    "meter",
                    json!({"kind": "homewizard", "address": "m", "token_file": "t"}),
                ),
                "zendure.meter.token_file",
            ),
            (
                with("meter", json!({"kind": "dsmr-tcp", "address": "m"})),
                "zendure.meter.address: dsmr-tcp needs host:port",
            ),
            (
                with(
                    "meter",
                    json!({"kind": "homewizard", "address": "m", "telegram_period": 1}),
                ),
                "zendure.meter.telegram_period: only dsmr-tcp",
            ),
            (
                with(
                    "meter",
                    json!({"kind": "dsmr-tcp", "address": "m:1", "telegram_period": "10"}),
                ),
                "zendure.meter.telegram_period",
            ),
            (with("schedule", json!("ftp://x")), "zendure.schedule"),
            (with("time_zone", json!("Mars/Base")), "zendure.time_zone"),
            (
                with("max_charge_w", json!(-5)),
                "zendure.max_charge_w: must be a whole number",
            ),
            (
                with("max_discharge_w", json!(1.5)),
                "zendure.max_discharge_w",
            ),
            (with("min_soc", json!(101)), "zendure.min_soc"),
            (
                with("max_soc", json!(5)),
                "zendure.min_soc: 10 must be below max_soc 5",
            ),
            (
                with("interval", json!(0)),
                "zendure.interval: must be a positive number of seconds",
            ),
            (
                with("interval", json!("2")),
                "zendure.interval: must be seconds (a number)",
            ),
            (with("reassert", json!(-1)), "zendure.reassert"),
            (with("meter_lag", json!("x")), "zendure.meter_lag"),
            (with("status_file", json!(1)), "zendure.status_file"),
        ];
        for (v, needle) in cases {
            let e = parse_err(v.clone());
            assert!(e.contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn addresses() {
        let a = Address::parse("10.0.0.5:8023").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("10.0.0.5", Some(8023)));
        assert_eq!(a.to_string(), "10.0.0.5:8023");
        let a = Address::parse("fe80::1").unwrap();
        assert_eq!(a.port, None);
        let a = Address::parse("[fe80::1]:80").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("[fe80::1]", Some(80)));
        assert!(Address::parse("").is_err());
        assert!(Address::parse(":80").is_err());
        assert!(Address::parse("h:0").is_err());
    }
}
