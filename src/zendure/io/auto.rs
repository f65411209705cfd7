//! `"auto"` addresses: the device and the meter found over mDNS at start,
//! and looked for again once one has been unreachable for
//! `rediscover_after` (its DHCP lease changed). Fixed addresses pass
//! through untouched.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::discover::{self, Options, Wanted};
use crate::zendure::config::{Address, Addresses, MeterConfig, MeterPlace, Place, ZendureConfig};
use crate::zendure::core::law::Command;
use crate::zendure::core::reading::DeviceReading;
use crate::zendure::io::device::{Device, HttpDevice};
use crate::zendure::io::http::Http;
use crate::zendure::io::meter::{AnyMeter, Meter, Reading};

/// Looks for one device over mDNS.
struct Finder {
    key: &'static str,
    wanted: Wanted,
    serial: Option<String>,
    options: Options,
    after: Duration,
    failing_since: Option<Instant>,
}

impl Finder {
    fn new(key: &'static str, wanted: Wanted, config: &ZendureConfig) -> Finder {
        Finder {
            key,
            wanted,
            // The serial names the battery; a meter has its own.
            serial: match wanted {
                Wanted::Battery => config.sn.clone(),
                Wanted::Meter(_) => None,
            },
            options: Options {
                duration: config.timings.discover_for,
                interface: None,
            },
            after: config.timings.rediscover_after,
            failing_since: None,
        }
    }

    async fn find(&self) -> Result<Address> {
        let found = discover::resolve_auto(self.wanted, self.serial.as_deref(), &self.options)
            .await
            .with_context(|| format!("{}: \"auto\"", self.key))?;
        Address::parse(&found).with_context(|| format!("{}: found `{found}`", self.key))
    }

    /// After each read: the new address once reads have failed for
    /// `after` and mDNS finds it again.
    async fn moved(&mut self, ok: bool) -> Option<Address> {
        if ok {
            self.failing_since = None;
            return None;
        }
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.after {
            return None;
        }
        // The next look waits another `after`, found or not.
        self.failing_since = Some(Instant::now());
        match self.find().await {
            Ok(address) => {
                tracing::info!("{}: \"auto\" found again at {address}", self.key);
                Some(address)
            }
            Err(e) => {
                tracing::warn!("{e:#}");
                None
            }
        }
    }
}

/// The device's and the meter's addresses, each `"auto"` replaced by what
/// mDNS finds now.
pub async fn resolve(config: &ZendureConfig) -> Result<Addresses> {
    let device = match &config.device {
        Place::Fixed(address) => address.clone(),
        Place::Auto => {
            Finder::new("zendure.device", Wanted::Battery, config)
                .find()
                .await?
        }
    };
    let meter = match config.meter.place() {
        MeterPlace::Fixed(address) => address,
        MeterPlace::Auto(kind) => {
            Finder::new("zendure.meter.address", Wanted::Meter(kind), config)
                .find()
                .await?
        }
    };
    Ok(Addresses { device, meter })
}

/// The device, moved to where mDNS finds it when it was `"auto"`.
pub struct AutoDevice {
    http: Http,
    state: Mutex<(HttpDevice, Option<Finder>)>,
    describe: String,
}

impl AutoDevice {
    /// `config` as given (`auto` kept) and the device at its resolved
    /// address.
    pub fn new(config: &ZendureConfig, http: Http, device: HttpDevice) -> AutoDevice {
        let finder = (config.device == Place::Auto)
            .then(|| Finder::new("zendure.device", Wanted::Battery, config));
        AutoDevice {
            http,
            describe: device.describe(),
            state: Mutex::new((device, finder)),
        }
    }
}

impl Device for AutoDevice {
    async fn report(&self) -> Result<DeviceReading> {
        let mut state = self.state.lock().await;
        let (device, finder) = &mut *state;
        let result = device.report().await;
        if let Some(finder) = finder
            && let Some(address) = finder.moved(result.is_ok()).await
        {
            *device = HttpDevice::new(self.http.clone(), &address.with_port(80));
        }
        result
    }

    async fn write(&self, sn: &str, command: Command) -> Result<()> {
        self.state.lock().await.0.write(sn, command).await
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// The meter, moved to where mDNS finds it when it was `"auto"`.
pub struct AutoMeter {
    http: Http,
    config: MeterConfig,
    meter: AnyMeter,
    finder: Option<Finder>,
}

impl AutoMeter {
    /// `config` as given (`auto` kept) and the meter at its resolved
    /// address.
    pub fn new(config: &ZendureConfig, http: Http, meter: AnyMeter) -> AutoMeter {
        let finder = match config.meter.place() {
            MeterPlace::Auto(kind) => Some(Finder::new(
                "zendure.meter.address",
                Wanted::Meter(kind),
                config,
            )),
            MeterPlace::Fixed(_) => None,
        };
        AutoMeter {
            http,
            config: config.meter.clone(),
            meter,
            finder,
        }
    }
}

impl Meter for AutoMeter {
    async fn read(&mut self) -> Result<Reading> {
        let result = self.meter.read().await;
        if let Some(finder) = &mut self.finder
            && let Some(address) = finder.moved(result.is_ok()).await
        {
            match AnyMeter::new(&self.config, &address, &self.http) {
                Ok(meter) => self.meter = meter,
                Err(e) => tracing::warn!("{e:#}"),
            }
        }
        result
    }

    fn describe(&self) -> String {
        self.meter.describe()
    }
}
