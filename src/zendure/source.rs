//! Getting the schedule: from a file or an http(s) URL (the schedule object
//! or the reference API's GET response), and the last good copy kept in
//! the state directory.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::zendure::config::ScheduleSource;
use crate::zendure::http::Http;
use crate::zendure::schedule::Schedule;

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
        ScheduleSource::File(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        }
        ScheduleSource::Url(url) => http.get(url).await.with_context(|| url.clone()),
    }
    .map_err(FetchError::Unreachable)?;
    parse(&bytes)
        .with_context(|| source.to_string())
        .map_err(FetchError::Invalid)
}

/// Parses schedule JSON (either form).
pub fn parse(bytes: &[u8]) -> Result<Schedule> {
    let doc: Value = serde_json::from_slice(bytes).context("not valid JSON")?;
    Ok(Schedule::parse(&doc)?)
}

/// The last good schedule, if one was saved and is still valid.
pub fn load_saved(path: &Path) -> Result<Option<Schedule>> {
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes)
            .map(Some)
            .with_context(|| format!("the saved schedule {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Keeps a good schedule for when the source is down.
pub fn save(path: &Path, schedule: &Schedule) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = serde_json::to_vec_pretty(&schedule.to_json())?;
    bytes.push(b'\n');
    crate::atomic::write(path, &bytes)
}
