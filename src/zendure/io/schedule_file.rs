//! The schedule file, with one owner: reading it (absent means no schedule
//! yet), validating it with the parser (every bad entry named), its ETag,
//! replacing it atomically (checked against the ETag it was read with), and
//! the list of the price plan's entries kept beside it. The server, the
//! price planner and the controller's file source all go through here.
//!
//! The ETag is a hash of the file's bytes, so any change, by any writer,
//! makes an older `If-Match` stale.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::atomic;
use crate::zendure::core::prices::entries::{Owned, Proposal};
use crate::zendure::core::schedule::{Key, Resolver, Schedule, ScheduleValue};

/// One bad entry (or the document as a whole when `key` is None).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryError {
    pub key: Option<String>,
    pub error: String,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(f, "entry \"{key}\": {}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Checks a whole schedule document (the plain-object form, which the file
/// holds); every bad entry is named once. The parser is the one validator:
/// a test holds it to agreement with the published JSON Schema.
pub fn validate(doc: &Value) -> Result<Schedule, Vec<EntryError>> {
    let Some(object) = doc.as_object() else {
        return Err(vec![EntryError {
            key: None,
            error: "the schedule must be a JSON object of \"YYYYMMDDHHmm\": value".into(),
        }]);
    };
    let mut errors = Vec::new();
    let mut entries = Vec::with_capacity(object.len());
    for (key, value) in object {
        let parsed = Key::parse(key)
            .map_err(|e| e.reason)
            .and_then(|k| ScheduleValue::from_json(value).map(|v| (k, v)));
        match parsed {
            Ok(entry) => entries.push(entry),
            Err(error) => errors.push(EntryError {
                key: Some(key.clone()),
                error,
            }),
        }
    }
    if errors.is_empty() {
        Ok(Schedule::from_entries(entries))
    } else {
        Err(errors)
    }
}

/// Parses schedule JSON (either form: the object, or the reference API's
/// GET response).
pub fn parse(bytes: &[u8]) -> Result<Schedule> {
    let doc: Value = serde_json::from_slice(bytes).context("not valid JSON")?;
    Ok(Schedule::parse(&doc)?)
}

/// The ETag of a file's content.
pub fn etag(bytes: &[u8]) -> String {
    // FNV-1a: stable across builds and machines, which a cached page needs.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// A file's bytes, or `None` when it does not exist.
pub fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `value` as pretty JSON, one key per line, atomically.
fn write_json(path: &Path, value: &Value) -> Result<Vec<u8>> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    text.push('\n');
    atomic::write(path, text.as_bytes())?;
    Ok(text.into_bytes())
}

/// The file as stored: its bytes (empty when it does not exist yet).
pub struct Current {
    pub bytes: Vec<u8>,
    pub etag: String,
    path: PathBuf,
}

impl Current {
    /// The document; an absent file is the empty schedule. A file that is
    /// not one is named with what is wrong (line and column), so whoever
    /// edited it by hand can mend it.
    pub fn document(&self) -> Result<Map<String, Value>> {
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        let doc: Value = serde_json::from_slice(&self.bytes)
            .with_context(|| format!("the schedule file {} is not JSON", self.path.display()))?;
        match doc {
            Value::Object(map) => Ok(map),
            _ => anyhow::bail!(
                "the schedule file {} is not a JSON object",
                self.path.display()
            ),
        }
    }

    /// The schedule it holds, validated: every bad entry named.
    pub fn schedule(&self) -> Result<Result<Schedule, Vec<EntryError>>> {
        Ok(validate(&Value::Object(self.document()?)))
    }
}

/// A replacement refused: the file changed since it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The file's ETag now.
    pub etag: String,
}

/// One version of the file, validated and indexed once: while the bytes
/// stay the same, requests reuse it instead of validating and resolving the
/// schedule again.
pub struct Parsed {
    pub etag: String,
    pub valid: Result<(Schedule, Resolver), Vec<EntryError>>,
}

pub struct ScheduleFile {
    path: PathBuf,
    /// The last version parsed.
    parsed: Mutex<Option<Arc<Parsed>>>,
}

impl ScheduleFile {
    pub fn new(path: &Path) -> ScheduleFile {
        ScheduleFile {
            path: path.to_path_buf(),
            parsed: Mutex::new(None),
        }
    }

    /// The file as it is now (read afresh, so a hand edit shows at once),
    /// validated and indexed, from the cache when its ETag is unchanged.
    pub fn parsed(&self) -> Result<Arc<Parsed>> {
        let current = self.read()?;
        let mut cache = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(parsed) = cache.as_ref().filter(|p| p.etag == current.etag) {
            return Ok(parsed.clone());
        }
        let valid = current.schedule()?.map(|schedule| {
            let resolver = Resolver::new(&schedule);
            (schedule, resolver)
        });
        let parsed = Arc::new(Parsed {
            etag: current.etag,
            valid,
        });
        *cache = Some(parsed.clone());
        Ok(parsed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self) -> Result<Current> {
        let bytes = read_bytes(&self.path)?.unwrap_or_default();
        Ok(Current {
            etag: etag(&bytes),
            bytes,
            path: self.path.clone(),
        })
    }

    /// The schedule the file holds (either form), `None` when there is no
    /// file.
    pub fn load(&self) -> Result<Option<Schedule>> {
        read_bytes(&self.path)?
            .map(|bytes| parse(&bytes))
            .transpose()
            .with_context(|| format!("schedule {}", self.path.display()))
    }

    /// Replaces the file with `schedule` (keys in order, one per line) and
    /// returns the new ETag. The folder is made when missing.
    pub fn write(&self, schedule: &Schedule) -> Result<String> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_json(&self.path, &schedule.to_json()).map(|bytes| etag(&bytes))
    }

    /// Replaces the file with the schedule document `doc` when it is valid
    /// (every bad entry named otherwise); the new ETag.
    pub fn write_document(&self, doc: &Value) -> Result<Result<String, Vec<EntryError>>> {
        match validate(doc) {
            Ok(schedule) => self.write(&schedule).map(Ok),
            Err(errors) => Ok(Err(errors)),
        }
    }

    /// Applies `change` to the document as it is now and writes the result
    /// when it is valid; the new ETag. The caller keeps this process's other
    /// writers out meanwhile.
    pub fn edit(
        &self,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Result<String, Vec<EntryError>>> {
        let mut doc = self.read()?.document()?;
        change(&mut doc);
        self.write_document(&Value::Object(doc))
    }

    /// The file, if it is still as read with `if_match`: an edit checks
    /// this, then writes, while the caller keeps this process's other
    /// writers out.
    pub fn read_if(&self, if_match: &str) -> Result<Result<Current, Stale>> {
        let current = self.read()?;
        Ok(if if_match.trim() == current.etag {
            Ok(current)
        } else {
            Err(Stale { etag: current.etag })
        })
    }

    /// The list of the price plan's entries: beside the schedule file
    /// (`schedule.json` -> `schedule.price-plan.json`), so the command and
    /// the server share it when they share the schedule.
    pub fn plan_entries_path(&self) -> PathBuf {
        self.path.with_extension("price-plan.json")
    }

    /// The price plan's entries now in the schedule (none when no list).
    pub fn plan_entries(&self) -> Result<Owned> {
        let path = self.plan_entries_path();
        let Some(bytes) = read_bytes(&path)? else {
            return Ok(Owned::default());
        };
        let doc: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        serde_json::from_value(doc)
            .with_context(|| format!("{}: not a list of plan entries", path.display()))
    }

    /// Writes a plan's schedule so that a crash at any point leaves every
    /// plan entry listed: the list first grows to old and new, then the
    /// schedule is replaced, then the list shrinks to the new. Returns the
    /// schedule's new ETag.
    pub fn write_plan(&self, before: &Owned, proposal: &Proposal) -> Result<String> {
        let list = self.plan_entries_path();
        if let Some(folder) = list.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        let mut both = before.clone();
        both.entries.extend(proposal.owned.entries.clone());
        let as_json = |o: &Owned| serde_json::to_value(o).expect("the list serialises");
        write_json(&list, &as_json(&both))?;
        let written = self.write(&proposal.schedule)?;
        write_json(&list, &as_json(&proposal.owned))?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(errors: &[EntryError]) -> Vec<Option<&str>> {
        errors.iter().map(|e| e.key.as_deref()).collect()
    }

    #[test]
    fn a_valid_schedule_passes() {
        let doc = json!({"********0700": 500, "202611231730": "netzero", "2026****1800": "netzero+", "********2300": -300});
        let schedule = validate(&doc).unwrap();
        assert_eq!(schedule.entries().count(), 4);
        assert!(validate(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn every_bad_entry_is_named_once() {
        let doc = json!({
            "2026112317": 500,
            "20261123173x": 500,
            "202611231730": "fast",
            "202611231800": true,
            "202613011200": 100,
            "20262*011200": 100,
            "********0700": 500,
        });
        let errors = validate(&doc).unwrap_err();
        assert_eq!(
            keys(&errors),
            vec![
                Some("2026112317"),
                Some("202611231730"),
                Some("20261123173x"),
                Some("202611231800"),
                Some("202613011200"),
                Some("20262*011200"),
            ],
            "{errors:?}"
        );
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(text[0].contains("12 characters"), "{text:?}");
        assert!(text[1].contains("unknown value \"fast\""), "{text:?}");
        assert!(text[2].contains("'x' is not a digit"), "{text:?}");
        assert!(text[3].contains("not a value"), "{text:?}");
        assert!(text[4].contains("month 13"), "{text:?}");
        assert!(text[5].contains("month 2*"), "{text:?}");
    }

    #[test]
    fn only_an_object_is_a_schedule() {
        let errors = validate(&json!([1, 2])).unwrap_err();
        assert_eq!(keys(&errors), vec![None]);
    }

    #[test]
    fn the_etag_follows_the_bytes() {
        assert_eq!(etag(b"{}"), etag(b"{}"));
        assert_ne!(etag(b"{}"), etag(b"{ }"));
        assert!(etag(b"").starts_with('"') && etag(b"").ends_with('"'));
    }

    fn folder(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("zcell-schedfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_edit_is_written_only_when_the_result_is_valid() {
        let dir = folder("edit");
        let file = ScheduleFile::new(&dir.join("schedule.json"));
        // No file yet: the empty schedule, edited.
        let etag = file
            .edit(|doc| {
                doc.insert("********0700".into(), json!(500));
            })
            .unwrap()
            .unwrap();
        assert_eq!(etag, file.read().unwrap().etag);
        let errors = file
            .edit(|doc| {
                doc.insert("********0800".into(), json!("fast"));
            })
            .unwrap()
            .unwrap_err();
        assert_eq!(keys(&errors), vec![Some("********0800")]);
        assert_eq!(file.read().unwrap().etag, etag, "nothing written");
        let schedule = file.read().unwrap().schedule().unwrap().unwrap();
        assert_eq!(schedule.entries().count(), 1);
        let errors = file.write_document(&json!([1])).unwrap().unwrap_err();
        assert_eq!(keys(&errors), vec![None]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_is_parsed_once_and_a_change_is_seen_at_once() {
        let dir = folder("parsed");
        std::fs::create_dir_all(&dir).unwrap();
        let file = ScheduleFile::new(&dir.join("schedule.json"));
        std::fs::write(file.path(), r#"{"********0700": 500}"#).unwrap();
        let first = file.parsed().unwrap();
        assert!(Arc::ptr_eq(&first, &file.parsed().unwrap()));
        // A hand edit: new bytes, new version.
        std::fs::write(file.path(), r#"{"********0700": 600}"#).unwrap();
        let second = file.parsed().unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        let (schedule, _) = second.valid.as_ref().unwrap();
        assert_eq!(schedule.to_json(), json!({"********0700": 600}));
        std::fs::write(file.path(), r#"{"********07": 600}"#).unwrap();
        assert!(file.parsed().unwrap().valid.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_is_replaced_whole_and_its_etag_changes() {
        let dir = folder("replace");
        let file = ScheduleFile::new(&dir.join("schedule.json"));
        let empty = file.read().unwrap();
        assert!(empty.document().unwrap().is_empty());
        assert_eq!(file.load().unwrap(), None);
        let schedule = validate(&json!({"********0700": 500})).unwrap();
        let tag = file.write(&schedule).unwrap();
        let now = file.read().unwrap();
        assert_eq!(now.etag, tag);
        assert_ne!(now.etag, empty.etag);
        assert_eq!(now.document().unwrap()["********0700"], 500);
        assert_eq!(file.load().unwrap(), Some(schedule));
        std::fs::write(file.path(), "[]").unwrap();
        assert!(file.read().unwrap().document().is_err());
        assert!(file.load().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_edit_checks_the_etag_it_read() {
        let dir = folder("conditional");
        let file = ScheduleFile::new(&dir.join("schedule.json"));
        let first = validate(&json!({"********0700": 500})).unwrap();
        let read = file.read().unwrap();
        assert!(file.read_if(&read.etag).unwrap().is_ok());
        let tag = file.write(&first).unwrap();
        // The ETag read before the write is stale now.
        let refused = file.read_if(&format!(" {} ", read.etag)).unwrap();
        assert_eq!(refused.err(), Some(Stale { etag: tag.clone() }));
        assert_eq!(file.read_if(&tag).unwrap().unwrap().etag, tag);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_plan_entries_live_beside_the_schedule() {
        let dir = folder("plan");
        let file = ScheduleFile::new(&dir.join("schedule.json"));
        assert_eq!(
            file.plan_entries_path(),
            dir.join("schedule.price-plan.json")
        );
        assert_eq!(file.plan_entries().unwrap(), Owned::default());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(file.plan_entries_path(), "[").unwrap();
        let err = format!("{:#}", file.plan_entries().unwrap_err());
        assert!(err.contains("not valid JSON"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
