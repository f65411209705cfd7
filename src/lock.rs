//! One run at a time: two runs interleaving their writes could leave a mix
//! of two plans on the GX.

use std::fs::{File, TryLockError};
use std::path::Path;

use anyhow::Context;

use crate::exit::{Exit, Failure};

/// Held for as long as the run lasts; the kernel releases it on exit, even
/// on SIGKILL, so a stale file never blocks a later run.
pub struct RunLock {
    _file: File,
}

pub fn acquire(path: &Path) -> Result<RunLock, Failure> {
    let file = crate::atomic::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
        .map_err(|e| Failure::new(Exit::Usage, e))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(Failure::new(
            Exit::Locked,
            anyhow::anyhow!(
                "another zcell-sched run holds {}; not running twice",
                path.display()
            ),
        )),
        Err(TryLockError::Error(e)) => Err(Failure::new(
            Exit::Usage,
            anyhow::Error::new(e).context(format!("cannot lock {}", path.display())),
        )),
    }
}
