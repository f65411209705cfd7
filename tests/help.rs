//! The help of every command and subcommand, short (-h) and long (--help),
//! against the texts committed in tests/fixtures/help: a change to the
//! command line's shape or words shows up here as a diff to review. The
//! commands are found by walking the binary's own "Commands:" lists, so a
//! command added or removed fails too.
//!
//! After an intended change: `ZCELL_SCHED_UPDATE_HELP=1 cargo test --test
//! help` rewrites the fixtures; review them with `git diff`.

// The fixtures are the default build's command line.
#![cfg(all(
    feature = "mqtt",
    feature = "zendure",
    feature = "https",
    feature = "serve",
    feature = "discover"
))]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn help(path: &[String], flag: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zcell-sched"))
        .args(path)
        .arg(flag)
        .env_remove("ZCELL_SCHED_LOCK_FILE")
        .env_remove("ZCELL_SCHED_STATUS_FILE")
        .env_remove("COLUMNS")
        .output()
        .expect("run zcell-sched");
    assert!(
        out.status.success(),
        "zcell-sched {} {flag}: {:?}\n{}",
        path.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists, without clap's own `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path, the top (empty) first, depth first.
fn commands() -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        for name in subcommands(&help(&path, "--help")).into_iter().rev() {
            let mut child = path.clone();
            child.push(name);
            todo.push(child);
        }
        found.push(path);
    }
    found
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/help")
}

fn fixture_name(path: &[String], flag: &str) -> String {
    let mut parts = vec!["zcell-sched".to_string()];
    parts.extend(path.iter().cloned());
    format!("{}{flag}.txt", parts.join("_"))
}

#[test]
fn every_help_text_is_as_committed() {
    let update = std::env::var_os("ZCELL_SCHED_UPDATE_HELP").is_some();
    let dir = fixtures();
    let commands = commands();
    assert!(
        commands.len() > 10,
        "found only {} commands: {commands:?}",
        commands.len()
    );
    let mut expected = BTreeSet::new();
    let mut differ = Vec::new();
    for path in &commands {
        for flag in ["-h", "--help"] {
            let name = fixture_name(path, flag);
            let text = help(path, flag);
            let file = dir.join(&name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &text).unwrap();
            } else {
                let committed = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                if committed != text {
                    differ.push(format!(
                        "{name}\n--- committed\n{committed}\n--- now\n{text}"
                    ));
                }
            }
            expected.insert(name);
        }
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let stale: Vec<_> = present.difference(&expected).collect();
    assert!(
        stale.is_empty(),
        "fixtures of commands that no longer exist: {stale:?}"
    );
    assert!(differ.is_empty(), "help changed:\n{}", differ.join("\n"));
}
