//! `discover`: its options, and the handler that prints what answered.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::discover::{Kind, Options, Wanted, browse, pick, table};
use crate::exit::{Exit, ExitContext, Failure};

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Seconds to listen for answers.
    #[arg(long, value_name = "N", default_value = "3", value_parser = parse_seconds)]
    pub seconds: f64,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Browse on this network interface only [default: all].
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Print only the address "auto" would stand for in the config:
    /// battery, homewizard, homewizard-v2 or zendure-p1.
    #[arg(long, value_name = "WHAT", conflicts_with = "json")]
    pub auto: Option<String>,
    /// With --auto: the device with this serial.
    #[arg(long, value_name = "SERIAL", requires = "auto")]
    pub sn: Option<String>,
}

/// A number of seconds, fractions allowed, as every duration is.
fn parse_seconds(s: &str) -> anyhow::Result<f64> {
    let n: f64 = s
        .parse()
        .with_context(|| format!("`{s}` is not a number of seconds"))?;
    anyhow::ensure!(
        n.is_finite() && n > 0.0,
        "`{s}` must be a positive number of seconds"
    );
    Ok(n)
}

/// What `--auto` names on the command line, as the config's meter kinds do.
fn parse_wanted(s: &str) -> Result<Wanted> {
    Ok(match s {
        "battery" => Wanted::Battery,
        "homewizard" => Wanted::Meter(Kind::HomeWizardV1),
        "homewizard-v2" => Wanted::Meter(Kind::HomeWizardV2),
        "zendure-p1" => Wanted::Meter(Kind::Zendure),
        _ => bail!("--auto `{s}`: say battery, homewizard, homewizard-v2 or zendure-p1"),
    })
}

/// `zcell-sched discover`.
pub async fn discover(args: DiscoverArgs) -> Result<(), Failure> {
    let wanted = args
        .auto
        .as_deref()
        .map(parse_wanted)
        .transpose()
        .or_exit(Exit::Usage)?;
    let options = Options {
        duration: Duration::from_secs_f64(args.seconds),
        interface: args.interface,
    };
    let all = browse(&options).await.or_exit(Exit::Usage)?;
    match wanted {
        Some(wanted) => {
            let one = pick(&all, wanted, args.sn.as_deref()).or_exit(Exit::Fallback)?;
            let address = one
                .address()
                .with_context(|| format!("{} announced no address", one.instance))
                .or_exit(Exit::Fallback)?;
            println!("{address}");
        }
        None if args.json => {
            let doc: Vec<_> = all
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "kind": f.kind,
                        "meter": f.is_meter(),
                        "address": f.address(),
                        "model": f.model,
                        "serial": f.serial,
                        "instance": f.instance,
                        "service": f.service,
                        "addresses": f.addresses,
                        "port": f.port,
                    })
                })
                .collect();
            println!("{:#}", serde_json::Value::from(doc));
        }
        None => print!("{}", table(&all)),
    }
    Ok(())
}
