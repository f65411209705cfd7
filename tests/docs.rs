//! The documentation holds together: every relative link and #anchor in
//! README.md and docs/*.md resolves (the file exists, the heading exists by
//! GitHub's anchor rules), and the README names every command and the two
//! scripts a newcomer starts with.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use zcell_sched::cli::Cli;

/// GitHub's anchor for a heading: lower case, anything but letters, digits,
/// spaces, `-` and `_` dropped, spaces made `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors of a Markdown text's headings; a repeated heading gets `-1`,
/// `-2`, ... as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    for line in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while found.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        found.insert(anchor);
    }
    found
}

/// The link targets of a Markdown text (`[text](target)`, images too),
/// leaving out code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        let outside_code: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = outside_code.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            found.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    found
}

/// What is wrong with the relative links of `file` (its text `text`),
/// one message each.
fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for target in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let linked = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !path.is_empty() && !linked.exists() {
            broken.push(format!(
                "{}: {target}: no such file {}",
                file.display(),
                linked.display()
            ));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        let linked_text = if path.is_empty() {
            text.to_string()
        } else {
            std::fs::read_to_string(&linked).unwrap_or_default()
        };
        if !anchors(&linked_text).contains(anchor) {
            broken.push(format!(
                "{}: {target}: no heading with the anchor #{anchor} in {}",
                file.display(),
                linked.display()
            ));
        }
    }
    broken
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let docs = repo().join("docs");
    for entry in std::fs::read_dir(&docs).expect("reading docs/") {
        let path = entry.expect("reading docs/").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Config (`zendure` object of the config file)"),
        "config-zendure-object-of-the-config-file"
    );
    assert_eq!(
        slug("What `./scripts/test` needs"),
        "what-scriptstest-needs"
    );
    assert_eq!(
        slug("Run it off the GX, over MQTT"),
        "run-it-off-the-gx-over-mqtt"
    );
    assert_eq!(slug("Config: `zendure.prices`"), "config-zendureprices");
}

#[test]
fn repeated_headings_and_fences() {
    let text = "# A\n## A\n```sh\n# not a heading\n```\n  ```\n# B\n  ```\n";
    let found = anchors(text);
    assert!(found.contains("a") && found.contains("a-1"));
    assert!(!found.contains("not-a-heading") && !found.contains("b"));
}

#[test]
fn the_checker_finds_broken_links() {
    let dir = repo().join("docs");
    let file = dir.join("probe.md");
    let text = "# Here\n[ok](#here) [bad](#nowhere) [file](serve.md) \
                [gone](missing.md) [web](https://example.org/x) `[code](#nope)`\n\
                [anchor elsewhere](gx.md#no-such-heading)\n";
    let broken = broken_links(&file, text);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("#nowhere"));
    assert!(broken[1].contains("missing.md"));
    assert!(broken[2].contains("#no-such-heading"));
}

#[test]
fn every_relative_link_resolves() {
    let files = documents();
    assert!(files.len() >= 6, "README.md and docs/*.md: {files:?}");
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("reading a document");
        broken.extend(broken_links(file, &text));
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn each_reference_file_has_a_table_of_contents() {
    for file in documents()
        .iter()
        .filter(|f| f.parent().unwrap().ends_with("docs"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains("## Contents\n"),
            "{} has no table of contents",
            file.display()
        );
        let headings = anchors(&text).len();
        let listed = prose(&text)
            .filter(|l| l.trim_start().starts_with("- [") && l.contains("](#"))
            .count();
        // Every heading but the title and "Contents" itself is listed.
        assert_eq!(
            listed,
            headings - 2,
            "{}: contents out of date",
            file.display()
        );
    }
}

#[test]
fn the_readme_names_every_command_and_the_two_scripts() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for script in ["./scripts/test", "./scripts/demo"] {
        assert!(readme.contains(script), "README.md does not show {script}");
    }
    let cli = Cli::command();
    let mut missing = Vec::new();
    for command in cli.get_subcommands() {
        for name in std::iter::once(command.get_name())
            .chain(command.get_subcommands().map(|c| c.get_name()))
        {
            if !readme.contains(&format!("`zcell-sched {name}"))
                && !readme.contains(&format!(" {name}`"))
            {
                missing.push(name.to_string());
            }
        }
    }
    assert!(missing.is_empty(), "README.md does not name: {missing:?}");
}
