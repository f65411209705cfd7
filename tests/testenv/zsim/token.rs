//! The HomeWizard v2 bearer token, given on the command line or in a file.

use std::path::PathBuf;

use anyhow::{Context, Result};

pub fn token(given: Option<&String>, file: Option<&PathBuf>) -> Result<Option<String>> {
    match (given, file) {
        (Some(t), _) => Ok(Some(t.clone())),
        (None, Some(path)) => Ok(Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading token file {}", path.display()))?
                .trim()
                .to_string(),
        )),
        (None, None) => Ok(None),
    }
}
