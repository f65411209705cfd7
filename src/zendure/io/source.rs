//! Getting the schedule: from a file or an http(s) URL (the schedule object
//! or the reference API's GET response), and the last good copy kept in
//! the state directory.

use std::path::Path;

use anyhow::{Context, Result};

use crate::zendure::config::ScheduleSource;
use crate::zendure::core::schedule::{FetchError, Schedule};
use crate::zendure::io::http::Http;
use crate::zendure::io::schedule_file::{self, ScheduleFile};

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
