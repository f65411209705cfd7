//! Exit codes, as documented in the README. A caller (cron, a script)
//! branches on them, so each failure carries its code.

use std::fmt;
use std::process::ExitCode;

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
    /// Lesser problems met on the way out (e.g. the record could not be
    /// written), logged after the error so the error leads.
    pub warnings: Vec<String>,
}

impl Failure {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            exit,
            error: error.into(),
            warnings: Vec::new(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&causes(&self.error))
    }
}

/// An error and its causes on one line, each said once. Some errors (zbus,
/// std::io wrappers) print their source in their own message and return it
/// from `source()` too, so a plain `{:#}` would repeat it: a cause whose
/// text is already there is left out.
pub fn causes(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "failed to connect to `unix:path=/x`: {}", self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let error = anyhow::Error::new(Wrapper(io)).context("cannot connect to the system D-Bus");
        let text = causes(&error);
        assert_eq!(
            text,
            format!(
                "cannot connect to the system D-Bus: failed to connect to `unix:path=/x`: {}",
                std::io::Error::from(std::io::ErrorKind::NotFound)
            )
        );
        let plain = anyhow::anyhow!("root").context("middle").context("top");
        assert_eq!(causes(&plain), "top: middle: root");
    }
}
