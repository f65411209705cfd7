//! Exit codes, as documented in the README. A caller (cron, a script)
//! branches on them, so each failure carries its code.

use std::fmt;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Applied, or a dry run planned.
    Ok = 0,
    /// Something failed and the owned slots were disabled instead.
    Fallback = 1,
    /// Bad usage or configuration: nothing was written.
    Usage = 2,
    /// The GX settings, or the Zendure device, could not be read or written.
    Gx = 3,
    /// Another run holds the lock.
    Locked = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A failed command: what to exit with and why.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            exit,
            error: error.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Tags an error with the exit code it maps to.
pub trait ExitContext<T> {
    fn or_exit(self, exit: Exit) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> ExitContext<T> for Result<T, E> {
    fn or_exit(self, exit: Exit) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(exit, e))
    }
}
