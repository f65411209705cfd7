//! The command line's top: the commands of each system, whose options and
//! handlers live beside each other in `commands`, and the dispatch to them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{self, until_signal};

#[cfg(feature = "discover")]
use crate::commands::discover::DiscoverArgs;
#[cfg(feature = "serve")]
use crate::commands::serve::ServeArgs;
use crate::commands::zcell::{DisableArgs, RunArgs, StatusArgs};
#[cfg(feature = "zendure")]
use crate::commands::zendure::ZendureCommand;
use crate::exit::EXIT_CODES;

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

impl Cli {
    /// Runs the command given, to its exit code.
    pub async fn execute(self) -> ExitCode {
        match self.command {
            Command::Run(args) => until_signal(commands::zcell::run(args)).await,
            Command::Status(args) => until_signal(commands::zcell::status(args)).await,
            Command::Disable(args) => until_signal(commands::zcell::disable(args)).await,
            #[cfg(feature = "discover")]
            Command::Discover(args) => commands::outcome(commands::discover::discover(args).await),
            // The server stops itself on SIGTERM/SIGINT, letting requests finish.
            #[cfg(feature = "serve")]
            Command::Serve(args) => commands::outcome(commands::serve::serve(args).await),
            // The controller handles SIGTERM/SIGINT itself: 0 W, then exit 0.
            #[cfg(feature = "zendure")]
            Command::Zendure(command) => commands::zendure::execute(command).await,
        }
    }
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
