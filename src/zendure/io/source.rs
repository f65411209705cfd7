//! Getting the schedule: from a file or an http(s) URL (the schedule object
//! or the reference API's GET response), and the last good copy kept in
//! the state directory.

use std::path::Path;

use anyhow::{Context, Result};

use crate::zendure::config::ScheduleSource;
use crate::zendure::http::Http;
use crate::zendure::schedule::Schedule;
use crate::zendure::schedule_file::{self, ScheduleFile};

/// Why a fetch gave no schedule: the source could not be read, or what it
/// gave is not a valid schedule. The controller logs them differently.
#[derive(Debug)]
pub enum FetchError {
    Unreachable(anyhow::Error),
    Invalid(anyhow::Error),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unreachable(e) => write!(f, "{e:#}"),
            FetchError::Invalid(e) => write!(f, "invalid: {e:#}"),
        }
    }
}

/// Reads and validates the schedule from its source.
pub async fn fetch(source: &ScheduleSource, http: &Http) -> Result<Schedule, FetchError> {
    let bytes = match source {
        // A small local file: reading it blocks for microseconds.
        ScheduleSource::File(path) => schedule_file::read_bytes(path).and_then(|bytes| {
            bytes.with_context(|| format!("cannot read {}: there is no such file", path.display()))
        }),
        ScheduleSource::Url(url) => http.get(url).await.with_context(|| url.clone()),
    }
    .map_err(FetchError::Unreachable)?;
    schedule_file::parse(&bytes)
        .with_context(|| source.to_string())
        .map_err(FetchError::Invalid)
}

/// The last good schedule, if one was saved and is still valid.
pub fn load_saved(path: &Path) -> Result<Option<Schedule>> {
    ScheduleFile::new(path).load().context("the saved schedule")
}

/// Keeps a good schedule for when the source is down.
pub fn save(path: &Path, schedule: &Schedule) -> Result<()> {
    ScheduleFile::new(path).write(schedule).map(drop)
}
