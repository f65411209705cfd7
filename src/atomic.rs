//! Replacing a file so that a reader sees the old or the new content, never
//! half of one, even if power fails mid-write; and creating files that hold
//! household data readable by their owner only.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The mode of every file the programs create: readings, events and
/// schedules tell when people are home.
pub const MODE: u32 = 0o600;

/// Options that create a file with `MODE` (an existing file keeps its own).
pub fn options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.mode(MODE);
    options
}

/// Writes `bytes` to a new temporary file beside `path`, syncs it, renames
/// it over `path` and syncs the folder, so the rename itself survives a
/// crash.
///
/// The temporary's name is random and it is created exclusively
/// (`O_CREAT|O_EXCL`, which never follows a symlink), so a link planted in
/// a shared folder cannot redirect the write to another file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let (tmp, mut file) = create_temporary(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| {
            fs::rename(&tmp, path)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
        });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Some filesystems cannot sync a folder; the data itself is safe by now.
    if let Ok(dir) = fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A new file `<path>.<random>.tmp`, made by this call and no other.
fn create_temporary(path: &Path) -> Result<(PathBuf, fs::File)> {
    // Each `RandomState` has fresh random keys; no crate needed for that.
    let random = || RandomState::new().build_hasher().finish();
    let mut last = None;
    for _ in 0..4 {
        let tmp = PathBuf::from(format!("{}.{:016x}.tmp", path.display(), random()));
        match options().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", tmp.display())),
        }
    }
    let (tmp, e) = last.expect("the loop ran");
    Err(e).with_context(|| format!("cannot create {}", tmp.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zcell-atomic-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_and_leaves_no_temporary() {
        let dir = folder("replace");
        let path = dir.join("file.json");
        write(&path, b"old").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(&dir), ["file.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_symlink_never_takes_the_write() {
        let dir = folder("planted");
        let path = dir.join("schedule.json");
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        // The name a predictable writer would use, and the exclusive
        // creation itself: neither may follow a link.
        std::os::unix::fs::symlink(&victim, dir.join("schedule.json.tmp")).unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(options().write(true).create_new(true).open(&link).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_the_owners_only() {
        let dir = folder("mode");
        let path = dir.join("file.json");
        write(&path, b"x").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_the_file_it_cannot_create() {
        let err = write(Path::new("/nonexistent-dir/x.json"), b"x").unwrap_err();
        let text = format!("{err}");
        assert!(
            text.contains("/nonexistent-dir/x.json.") && text.ends_with(".tmp"),
            "{err}"
        );
    }
}
