//! Wires each command to its handler: resolves its settings, runs it, and
//! maps the outcome and signals to an exit code.

use std::future::Future;
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{Cli, Command};
use crate::exit::{Exit, Failure};
use crate::log;
use crate::zcell;
use crate::zcell::settings::{DisableSettings, RunRequest, StatusSettings};
#[cfg(feature = "zendure")]
use crate::zendure;

pub async fn execute(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => until_signal(zcell::run::run(RunRequest::resolve(&args))).await,
        Command::Status(args) => {
            until_signal(async { zcell::status::status(StatusSettings::resolve(&args)?).await })
                .await
        }
        Command::Disable(args) => {
            until_signal(async { zcell::disable::disable(DisableSettings::resolve(&args)?).await })
                .await
        }
        // The controller handles SIGTERM/SIGINT itself: 0 W, then exit 0.
        #[cfg(feature = "zendure")]
        Command::Zendure(command) => zendure::commands::execute(command).await,
    }
}

/// Runs a GX command to its end, or stops it at SIGTERM/SIGINT. The write
/// order keeps every owned slot whole at any point, so stopping at once is
/// safe; say so, and let the next run finish.
async fn until_signal(command: impl Future<Output = Result<(), Failure>>) -> ExitCode {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log("error: cannot install signal handlers");
        return Exit::Usage.into();
    };
    let stopped = |name: &str, code: u8| {
        log(&format!(
            "stopped by {name}: each owned slot holds its old values, is off, or is as planned; the next run completes the plan"
        ));
        ExitCode::from(code)
    };
    tokio::select! {
        result = command => match result {
            Ok(()) => Exit::Ok.into(),
            Err(failure) => {
                log(&format!("error: {failure}"));
                for warning in &failure.warnings {
                    log(&format!("warning: {warning}"));
                }
                failure.exit.into()
            }
        },
        _ = term.recv() => stopped("SIGTERM", 143),
        _ = int.recv() => stopped("SIGINT", 130),
    }
}
