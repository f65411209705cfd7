//! Announces services over mDNS on one interface only, as Zendure devices
//! and HomeWizard meters do, until stdin closes or it is killed.
//!
//! Usage: zcell-test-mdns --interface NAME SPEC...
//! SPEC: TYPE/INSTANCE/PORT[/KEY=VALUE,...], e.g.
//! `_zendure._tcp/Zendure-SolarFlow800-A1B2C3D4E5F6/80/sn=HOA1`.
//! Prints `announced` once every service is registered.

use std::collections::HashMap;
use std::io::Read;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

fn main() {
    if let Err(e) = run() {
        eprintln!("zcell-test-mdns: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(flag), Some(interface)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: zcell-test-mdns --interface NAME SPEC...");
    };
    anyhow::ensure!(
        flag == "--interface",
        "the first option must be --interface"
    );
    let daemon = ServiceDaemon::new()?;
    // Never announce anywhere but the chosen interface.
    daemon.disable_interface(IfKind::All)?;
    daemon.enable_interface(IfKind::Name(interface.clone()))?;
    let address = if interface == "lo" { "127.0.0.1" } else { "" };
    for spec in args {
        let parts: Vec<&str> = spec.splitn(4, '/').collect();
        let [ty, instance, port, rest @ ..] = parts.as_slice() else {
            anyhow::bail!("bad SPEC `{spec}`: TYPE/INSTANCE/PORT[/KEY=VALUE,...]");
        };
        let txt: HashMap<String, String> = rest
            .first()
            .map(|kv| {
                kv.split(',')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut info = ServiceInfo::new(
            &format!("{ty}.local."),
            instance,
            "zcell-test-device.local.",
            address,
            port.parse()?,
            txt,
        )?;
        if address.is_empty() {
            info = info.enable_addr_auto();
        }
        info.set_interfaces(vec![IfKind::Name(interface.clone())]);
        daemon.register(info)?;
    }
    println!("announced");
    // Live as long as the parent keeps stdin open.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let _ = daemon.shutdown();
    Ok(())
}
