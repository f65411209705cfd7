//! The status file: the controller's status document, replaced atomically
//! every cycle (on a tmpfs by default). `zendure status` reads it; Home
//! Assistant or Node-RED can too.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::zendure::core::manual::Override;
use crate::zendure::core::status::StatusDoc;

/// Whether the controller that wrote `doc` is still running: the file is
/// recent and its process exists.
pub fn alive(doc: &StatusDoc, now: DateTime<Utc>) -> bool {
    let age = (now - doc.updated).num_milliseconds() as f64 / 1000.0;
    age <= doc.alive_within_s && Path::new(&format!("/proc/{}", doc.pid)).exists()
}

pub fn write(path: &Path, doc: &StatusDoc) -> Result<()> {
    write_json(path, doc)
}

pub fn read(path: &Path) -> Result<Option<StatusDoc>> {
    read_json(path, "a Zendure status file")
}

/// Replaces `path` atomically with `value` as JSON, making its folder.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    crate::atomic::write(path, &bytes)
}

/// `path` as JSON (`what` names it in an error), none when it is absent.
fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not {what}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The override file in the state dir: written only when the override
/// changes (an SD card's wear), removed when there is none.
pub fn save_override(path: &Path, manual: Option<&Override>) -> Result<()> {
    match manual {
        Some(manual) => write_json(path, manual),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        },
    }
}

pub fn load_override(path: &Path) -> Result<Option<Override>> {
    read_json(path, "an override file")
}
