//! Wires each command to its handler: resolves its settings, runs it, and
//! maps the outcome and signals to an exit code.

#[cfg(feature = "discover")]
pub mod discover;
#[cfg(feature = "serve")]
pub mod serve;
pub mod zcell;
#[cfg(feature = "zendure")]
pub mod zendure;

use std::future::Future;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::exit::{Exit, Failure};
use crate::log;
use crate::shutdown;

pub async fn execute(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => until_signal(zcell::run(args)).await,
        Command::Status(args) => until_signal(zcell::status(args)).await,
        Command::Disable(args) => until_signal(zcell::disable(args)).await,
        #[cfg(feature = "discover")]
        Command::Discover(args) => outcome(discover::discover(args).await),
        // The server stops itself on SIGTERM/SIGINT, letting requests finish.
        #[cfg(feature = "serve")]
        Command::Serve(args) => outcome(serve::serve(args).await),
        // The controller handles SIGTERM/SIGINT itself: 0 W, then exit 0.
        #[cfg(feature = "zendure")]
        Command::Zendure(command) => zendure::execute(command).await,
    }
}

/// The exit code of a command that needs no signal handling of its own.
fn outcome(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => Exit::Ok.into(),
        Err(failure) => {
            log(&format!("error: {failure}"));
            for warning in &failure.warnings {
                log(&format!("warning: {warning}"));
            }
            failure.exit.into()
        }
    }
}

/// Runs a GX command to its end, or stops it at SIGTERM/SIGINT. The write
/// order keeps every owned slot whole at any point, so stopping at once is
/// safe; say so, and let the next run finish.
async fn until_signal(command: impl Future<Output = Result<(), Failure>>) -> ExitCode {
    let signalled = match shutdown::install() {
        Ok(signalled) => signalled,
        Err(failure) => return outcome(Err(failure)),
    };
    tokio::select! {
        result = command => outcome(result),
        signal = signalled => {
            log(&format!(
                "stopped by {}: each owned slot holds its old values, is off, or is as planned; the next run completes the plan",
                signal.name()
            ));
            ExitCode::from(signal.exit_code())
        }
    }
}
