//! Finding Zendure batteries and P1 meters on the LAN over mDNS, so a
//! config can say `"device": "auto"` and survive a DHCP lease change.
//!
//! Browsing is the shell (`browse`); what an announcement means (`found`)
//! and which one "auto" picks (`pick`) are pure and tested on their own.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mdns_sd::{IfKind, ResolvedService, ServiceDaemon, ServiceEvent};
use serde::Serialize;

/// The service types browsed, and what each one announces.
const SERVICES: [(&str, Kind); 4] = [
    ("_zendure._tcp.local.", Kind::Zendure),
    // Firmware 2.0 announces a plain web server; only the instance name
    // (`Zendure-...`) says what it is.
    ("_http._tcp.local.", Kind::Zendure),
    ("_hwenergy._tcp.local.", Kind::HomeWizardV1),
    ("_homewizard._tcp.local.", Kind::HomeWizardV2),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A Zendure device: a SolarFlow battery or Zendure's own P1 meter.
    Zendure,
    /// A HomeWizard P1 meter with API v1 (`/api/v1/data`).
    HomeWizardV1,
    /// A HomeWizard P1 meter with API v2 (HTTPS, bearer token).
    HomeWizardV2,
}

/// One device seen on the LAN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Found {
    pub kind: Kind,
    /// The mDNS instance name, e.g. `Zendure-SolarFlow800-A1B2C3D4E5F6`.
    pub instance: String,
    pub service: String,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    pub model: Option<String>,
    pub serial: Option<String>,
}

impl Found {
    /// `host:port` for a config file (IPv4 preferred: the devices' own).
    pub fn address(&self) -> Option<String> {
        let ip = self
            .addresses
            .iter()
            .find(|ip| ip.is_ipv4())
            .or(self.addresses.first())?;
        Some(match ip {
            IpAddr::V4(v4) => format!("{v4}:{}", self.port),
            IpAddr::V6(v6) => format!("[{v6}]:{}", self.port),
        })
    }

    /// Zendure's P1 meter announces itself like a battery; its model says
    /// which it is.
    pub fn is_meter(&self) -> bool {
        match self.kind {
            Kind::Zendure => self
                .model
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("meter")),
            Kind::HomeWizardV1 | Kind::HomeWizardV2 => true,
        }
    }
}

/// What an announcement says, or None when it is not one of ours (any
/// web server announces `_http._tcp`).
pub fn found(
    kind: Kind,
    service: &str,
    instance: &str,
    addresses: Vec<IpAddr>,
    port: u16,
    txt: &BTreeMap<String, String>,
) -> Option<Found> {
    let txt = |key: &str| txt.get(key).filter(|v| !v.is_empty()).cloned();
    let (model, serial) = match kind {
        Kind::Zendure => {
            // Zendure-<Model>-<last 12 hex digits of the MAC>
            let rest = instance.strip_prefix("Zendure-")?;
            let (model, mac) = rest.rsplit_once('-').unwrap_or((rest, ""));
            let mac = (mac.len() == 12 && mac.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| mac.to_string());
            (
                Some(model.to_string()).filter(|m| !m.is_empty()),
                txt("sn").or(mac),
            )
        }
        Kind::HomeWizardV1 | Kind::HomeWizardV2 => (
            txt("product_type").or_else(|| txt("product_name")),
            txt("serial"),
        ),
    };
    Some(Found {
        kind,
        instance: instance.to_string(),
        service: service.trim_end_matches(".local.").to_string(),
        addresses,
        port,
        model,
        serial,
    })
}

/// What `"auto"` stands for in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The Zendure battery (`"device": "auto"`).
    Battery,
    /// A meter of this kind (`"meter": {"kind": ..., "address": "auto"}`).
    Meter(Kind),
}

/// The one device `wanted` (matching `serial` when given) among `all`; an
/// error listing the candidates when there is none or more than one.
pub fn pick<'a>(all: &'a [Found], wanted: Wanted, serial: Option<&str>) -> Result<&'a Found> {
    let candidates: Vec<&Found> = all
        .iter()
        .filter(|f| match wanted {
            Wanted::Battery => f.kind == Kind::Zendure && !f.is_meter(),
            Wanted::Meter(kind) => f.kind == kind && f.is_meter(),
        })
        .filter(|f| {
            serial.is_none_or(|s| {
                f.serial
                    .as_deref()
                    .is_some_and(|mine| mine.eq_ignore_ascii_case(s))
            })
        })
        .collect();
    let what = match wanted {
        Wanted::Battery => "Zendure battery".to_string(),
        Wanted::Meter(kind) => format!("{kind:?} meter"),
    };
    let with_serial = serial
        .map(|s| format!(" with serial {s}"))
        .unwrap_or_default();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => {
            bail!("no {what}{with_serial} answered on mDNS; give its address instead of \"auto\"")
        }
        many => bail!(
            "{} devices answered on mDNS as the {what} ({}); give its serial (`sn`) or a fixed address",
            many.len(),
            many.iter()
                .map(|f| f.instance.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How long to listen for answers.
    pub duration: Duration,
    /// Browse on this network interface only (default: all).
    pub interface: Option<String>,
}

/// Browses every service type for `options.duration` and returns what
/// answered, sorted and without repeats.
pub async fn browse(options: &Options) -> Result<Vec<Found>> {
    if let Some(name) = &options.interface
        && !Path::new("/sys/class/net").join(name).exists()
    {
        bail!("no network interface `{name}` (see `ip link`)");
    }
    let daemon = ServiceDaemon::new().context("cannot start mDNS")?;
    if let Some(name) = &options.interface {
        daemon
            .disable_interface(IfKind::All)
            .and_then(|()| daemon.enable_interface(IfKind::Name(name.clone())))
            .with_context(|| format!("cannot limit mDNS to interface {name}"))?;
    }
    let mut receivers = Vec::new();
    for (service, kind) in SERVICES {
        let receiver = daemon
            .browse(service)
            .with_context(|| format!("cannot browse {service}"))?;
        receivers.push((kind, receiver));
    }
    let deadline = tokio::time::Instant::now() + options.duration;
    // One task per service type, so no channel fills while another is read.
    let mut listeners = tokio::task::JoinSet::new();
    for (kind, receiver) in receivers {
        listeners.spawn(async move {
            let mut seen = Vec::new();
            while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, receiver.recv_async()).await
            {
                if let ServiceEvent::ServiceResolved(service) = event {
                    seen.extend(from_resolved(kind, &service));
                }
            }
            seen
        });
    }
    let mut all = Vec::new();
    while let Some(seen) = listeners.join_next().await {
        all.extend(seen.context("an mDNS listener failed")?);
    }
    // Shutting down says goodbye on the sockets; nothing waits for it.
    let _ = daemon.shutdown();
    all.sort();
    all.dedup();
    Ok(all)
}

fn from_resolved(kind: Kind, service: &ResolvedService) -> Option<Found> {
    let instance = service
        .fullname
        .strip_suffix(&service.ty_domain)
        .unwrap_or(&service.fullname)
        .trim_end_matches('.');
    let txt = service
        .txt_properties
        .iter()
        .map(|p| (p.key().to_string(), p.val_str().to_string()))
        .collect();
    let mut addresses: Vec<IpAddr> = service.addresses.iter().map(|a| a.to_ip_addr()).collect();
    addresses.sort();
    found(
        kind,
        &service.ty_domain,
        instance,
        addresses,
        service.port,
        &txt,
    )
}

/// The `host:port` that `"auto"` stands for now: browses, then picks.
/// The controller calls this at start and again after the device has been
/// unreachable for a while.
pub async fn resolve_auto(
    wanted: Wanted,
    serial: Option<&str>,
    options: &Options,
) -> Result<String> {
    let all = browse(options).await?;
    let one = pick(&all, wanted, serial)?;
    one.address()
        .with_context(|| format!("{} announced no address", one.instance))
}

/// The table `discover` prints.
pub fn table(all: &[Found]) -> String {
    if all.is_empty() {
        return "nothing answered\n".to_string();
    }
    let mut out = String::new();
    for f in all {
        let kind = match (f.kind, f.is_meter()) {
            (Kind::Zendure, false) => "zendure battery",
            (Kind::Zendure, true) => "zendure-p1 meter",
            (Kind::HomeWizardV1, _) => "homewizard meter",
            (Kind::HomeWizardV2, _) => "homewizard-v2 meter",
        };
        out.push_str(&format!(
            "{kind:<20} {:<24} model {:<16} serial {:<14} ({}, {})\n",
            f.address().unwrap_or_else(|| "-".into()),
            f.model.as_deref().unwrap_or("-"),
            f.serial.as_deref().unwrap_or("-"),
            f.instance,
            f.service,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ip(s: &str) -> Vec<IpAddr> {
        vec![s.parse().unwrap()]
    }

    fn zendure(instance: &str) -> Option<Found> {
        found(
            Kind::Zendure,
            "_zendure._tcp.local.",
            instance,
            ip("192.168.1.20"),
            80,
            &txt(&[]),
        )
    }

    #[test]
    fn zendure_model_and_mac_come_from_the_instance_name() {
        let f = zendure("Zendure-SolarFlow800-A1B2C3D4E5F6").unwrap();
        assert_eq!(f.model.as_deref(), Some("SolarFlow800"));
        assert_eq!(f.serial.as_deref(), Some("A1B2C3D4E5F6"));
        assert_eq!(f.address().as_deref(), Some("192.168.1.20:80"));
        assert!(!f.is_meter());
        assert_eq!(f.service, "_zendure._tcp");
    }

    #[test]
    fn zendure_sn_in_txt_wins_over_the_mac() {
        let f = found(
            Kind::Zendure,
            "_zendure._tcp.local.",
            "Zendure-SolarFlow800-A1B2C3D4E5F6",
            ip("10.0.0.2"),
            80,
            &txt(&[("sn", "HOA1NAN9N385989")]),
        )
        .unwrap();
        assert_eq!(f.serial.as_deref(), Some("HOA1NAN9N385989"));
    }

    #[test]
    fn http_services_not_named_zendure_are_ignored() {
        assert_eq!(zendure("printer"), None);
        assert_eq!(zendure("Zendure").map(|f| f.instance), None);
        let odd = zendure("Zendure-2400AC").unwrap();
        assert_eq!(odd.model.as_deref(), Some("2400AC"));
        assert_eq!(odd.serial, None);
    }

    #[test]
    fn homewizard_reads_its_txt_records() {
        let f = found(
            Kind::HomeWizardV1,
            "_hwenergy._tcp.local.",
            "p1meter-0A1B2C",
            ip("192.168.1.30"),
            80,
            &txt(&[
                ("product_type", "HWE-P1"),
                ("serial", "5c2fafabcdef"),
                ("path", "/api/v1"),
            ]),
        )
        .unwrap();
        assert_eq!(f.model.as_deref(), Some("HWE-P1"));
        assert_eq!(f.serial.as_deref(), Some("5c2fafabcdef"));
        assert!(f.is_meter());
    }

    #[test]
    fn ipv4_is_preferred_and_ipv6_is_bracketed() {
        let mut f = zendure("Zendure-SolarFlow800-A1B2C3D4E5F6").unwrap();
        f.addresses = vec!["fe80::1".parse().unwrap(), "10.0.0.9".parse().unwrap()];
        assert_eq!(f.address().as_deref(), Some("10.0.0.9:80"));
        f.addresses = vec!["fd00::2".parse().unwrap()];
        assert_eq!(f.address().as_deref(), Some("[fd00::2]:80"));
        f.addresses.clear();
        assert_eq!(f.address(), None);
    }

    fn lan() -> Vec<Found> {
        let mut p1 = zendure("Zendure-SmartMeterP1-0A0B0C0D0E0F").unwrap();
        p1.addresses = ip("192.168.1.21");
        let hw = found(
            Kind::HomeWizardV1,
            "_hwenergy._tcp.local.",
            "p1meter-1",
            ip("192.168.1.30"),
            80,
            &txt(&[("product_type", "HWE-P1"), ("serial", "aa")]),
        )
        .unwrap();
        vec![
            zendure("Zendure-SolarFlow800-A1B2C3D4E5F6").unwrap(),
            p1,
            hw,
        ]
    }

    #[test]
    fn auto_picks_the_only_battery_and_not_the_zendure_meter() {
        let all = lan();
        let one = pick(&all, Wanted::Battery, None).unwrap();
        assert_eq!(one.instance, "Zendure-SolarFlow800-A1B2C3D4E5F6");
        let meter = pick(&all, Wanted::Meter(Kind::Zendure), None).unwrap();
        assert_eq!(meter.instance, "Zendure-SmartMeterP1-0A0B0C0D0E0F");
        let hw = pick(&all, Wanted::Meter(Kind::HomeWizardV1), None).unwrap();
        assert_eq!(hw.serial.as_deref(), Some("aa"));
    }

    #[test]
    fn auto_refuses_to_guess_between_two_batteries() {
        let mut all = lan();
        all.push(zendure("Zendure-SolarFlow2400AC-112233445566").unwrap());
        let err = pick(&all, Wanted::Battery, None).unwrap_err().to_string();
        assert!(err.contains("2 devices answered"), "{err}");
        assert!(
            err.contains("Zendure-SolarFlow2400AC-112233445566"),
            "{err}"
        );
        let one = pick(&all, Wanted::Battery, Some("112233445566")).unwrap();
        assert_eq!(one.model.as_deref(), Some("SolarFlow2400AC"));
    }

    #[test]
    fn auto_with_nothing_found_says_what_to_do() {
        let err = pick(&[], Wanted::Meter(Kind::HomeWizardV2), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("give its address"), "{err}");
        let err = pick(&lan(), Wanted::Battery, Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("with serial nope"), "{err}");
    }

    #[test]
    fn table_shows_address_model_and_serial() {
        let text = table(&lan());
        assert!(
            text.contains("zendure battery      192.168.1.20:80"),
            "{text}"
        );
        assert!(text.contains("model HWE-P1"), "{text}");
        assert!(text.contains("serial A1B2C3D4E5F6"), "{text}");
        assert_eq!(table(&[]), "nothing answered\n");
    }
}
