//! The status file: the controller's status document, replaced atomically
//! every cycle (on a tmpfs by default). `zendure status` reads it; Home
//! Assistant or Node-RED can too.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::zendure::core::status::StatusDoc;

/// Whether the controller that wrote `doc` is still running: the file is
/// recent and its process exists.
pub fn alive(doc: &StatusDoc, now: DateTime<Utc>) -> bool {
    let age = (now - doc.updated).num_milliseconds() as f64 / 1000.0;
    age <= doc.alive_within_s && Path::new(&format!("/proc/{}", doc.pid)).exists()
}

pub fn write(path: &Path, doc: &StatusDoc) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = serde_json::to_vec_pretty(doc)?;
    bytes.push(b'\n');
    crate::atomic::write(path, &bytes)
}

pub fn read(path: &Path) -> Result<Option<StatusDoc>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a Zendure status file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
