//! The Zendure core (src/zendure/core) stays pure: no line of its code
//! names the adapters, the loop that runs it, the config file, an async
//! runtime, files, sockets or HTTP. Comments may.

use std::path::{Path, PathBuf};

const FORBIDDEN: [&str; 12] = [
    "zendure::io",
    "zendure::controller",
    "zendure::config",
    "crate::http",
    "crate::atomic",
    "tokio",
    "std::fs",
    "std::net",
    "std::process",
    "reqwest",
    "rusqlite",
    "axum",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of code that name something the core may not use.
fn offences(text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| FORBIDDEN.iter().any(|f| line.contains(f)))
        .map(|(n, line)| format!("{}: {}", n + 1, line.trim()))
        .collect()
}

#[test]
fn the_core_uses_no_io_and_no_runtime() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/zendure/core");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    assert!(
        files.len() >= 10,
        "only {} files in {}",
        files.len(),
        dir.display()
    );
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for offence in offences(&text) {
            found.push(format!("{}:{offence}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "the core reaches outside:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_import() {
    assert_eq!(
        offences("// tokio in a comment\nuse crate::zendure::io::device::Device;\n"),
        vec!["2: use crate::zendure::io::device::Device;".to_string()]
    );
    assert_eq!(offences("    tokio::spawn(f);").len(), 1);
}
