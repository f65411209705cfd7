//! SIGTERM and SIGINT: the one way every command is told to stop.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

use crate::exit::{Exit, Failure};

/// The signal that asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        }
    }

    /// 128 + the signal number, as a shell reports a process it killed.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Term => 143,
            Signal::Int => 130,
        }
    }
}

/// Installs the handlers now, before any work, so no signal is missed, and
/// returns what completes with the first signal.
pub fn install() -> Result<impl Future<Output = Signal> + Send + 'static, Failure> {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("cannot install signal handlers"),
        ));
    };
    Ok(async move {
        tokio::select! {
            _ = term.recv() => Signal::Term,
            _ = int.recv() => Signal::Int,
        }
    })
}
