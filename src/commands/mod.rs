//! Each command's options and handler, and how a handler's outcome and
//! signals become an exit code.

#[cfg(feature = "discover")]
pub mod discover;
#[cfg(feature = "serve")]
pub mod serve;
pub mod zcell;
#[cfg(feature = "zendure")]
pub mod zendure;

use std::future::Future;
use std::process::ExitCode;

use crate::exit::{Exit, Failure};
use crate::log;
use crate::shutdown;

/// The exit code of a command that needs no signal handling of its own.
pub fn outcome(result: Result<(), Failure>) -> ExitCode {
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
pub async fn until_signal(command: impl Future<Output = Result<(), Failure>>) -> ExitCode {
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
