//! The command line's top: the commands of each system, whose options and
//! handlers live beside each other in `commands`.

use clap::{Parser, Subcommand};

#[cfg(feature = "discover")]
use crate::commands::discover::DiscoverArgs;
#[cfg(feature = "serve")]
use crate::commands::serve::ServeArgs;
use crate::commands::zcell::{DisableArgs, RunArgs, StatusArgs};
#[cfg(feature = "zendure")]
use crate::commands::zendure::ZendureCommand;

/// The help's footer: what a caller (cron, a script) branches on.
pub const EXIT_CODES: &str = "\
Exit codes:
  0         applied (or, with --dry-run, planned); status: everything read
  1         fell back: the owned slots were disabled (BMS unreadable, zone unknown,
            clock unset, no plan); status: the BMS could not be read
  2         usage or configuration error: nothing was written
  3         the GX settings (zendure: the device) could not be read or written
  4         another run holds the lock
  130, 143  stopped by SIGINT, SIGTERM";

#[derive(Debug, Parser)]
#[command(
    name = "zcell-sched",
    version,
    after_help = EXIT_CODES,
    about = "Runs home batteries locally. A Redflow ZCell on a Victron GX (run, status, disable): \
             kept charged outside peak tariffs and left to drain for maintenance, through the \
             GX's charge schedule. A Zendure SolarFlow with a P1 meter (zendure ...): driven \
             through its local API to follow a charge/discharge schedule."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the BMS, plan the day and write the owned charge slots (from cron).
    Run(RunArgs),
    /// Show all five charge slots, the GX time zone, the batteries and the last run.
    Status(StatusArgs),
    /// Disable the owned charge slots (keeping their days), e.g. before uninstalling.
    Disable(DisableArgs),
    /// Find Zendure batteries and P1 meters on the LAN (mDNS).
    #[cfg(feature = "discover")]
    Discover(DiscoverArgs),
    /// Serve the Zendure schedule, the controller's status and readings, and the web page.
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// The Zendure SolarFlow on the LAN: its controller, status and schedule.
    #[cfg(feature = "zendure")]
    #[command(subcommand)]
    Zendure(ZendureCommand),
}
