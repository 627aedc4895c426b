//! The Markdown pages link to each other by relative path and heading
//! anchor, and comments, `fly.toml` and `openapi.yaml` name sections as
//! `(page, "Heading")`; a moved section or renamed file must not leave a
//! reader at a dead link.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The text outside fenced code blocks, where links and headings live.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces made `-`.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    prose(&text)
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// The targets of `[text](target)` links, without `<…>` or titles.
fn links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let end = rest.find(')')?;
            let target = rest[..end].split_whitespace().next()?;
            Some(target.trim_matches(['<', '>']).to_owned())
        })
        .collect()
}

#[test]
fn every_relative_link_reaches_its_file_and_heading() {
    let mut checked = 0;
    let mut dead = Vec::new();
    for (name, text) in PROJECT.iter().filter(|(name, _)| name.ends_with(".md")) {
        let page = root().join(name);
        for link in links(&prose(text)) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, heading) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap_or(root()).join(file)
            };
            if !target.exists() {
                dead.push(format!("{name}: {link}: no such file"));
            } else if !heading.is_empty()
                && target.extension().is_some_and(|ext| ext == "md")
                && !anchors(&target).contains(heading)
            {
                dead.push(format!("{name}: {link}: no such heading"));
            }
        }
    }
    assert!(dead.is_empty(), "{}", dead.join("\n"));
    assert!(checked >= 50, "only {checked} links found");
}

/// Folders that hold no text of the project's own (builds, installed
/// packages, generated inputs and reports).
const NOT_OURS: [&str; 8] = [
    ".git",
    "target",
    "node_modules",
    "venv",
    "corpus",
    "artifacts",
    "mutants.out",
    ".schemathesis",
];

/// Every file of the project, lock files aside, by its path from the root,
/// with its text (empty when it is not UTF-8): read once for all the tests.
static PROJECT: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    let mut files = Vec::new();
    project_files(root(), &mut files);
    files
});

/// The files below `dir`, as [`PROJECT`] lists them.
fn project_files(dir: &Path, files: &mut Vec<(String, String)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
    for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !NOT_OURS.contains(&name) {
                project_files(&path, files);
            }
        } else if !name.ends_with(".lock") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let relative = path.strip_prefix(root()).unwrap_or(&path);
            files.push((relative.display().to_string(), text));
        }
    }
}

/// The text as one line, comment markers at line starts removed, so a
/// reference broken over two comment lines reads whole.
fn joined(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.trim_start()
                .trim_start_matches(['#', '/', '!', '-', '*'])
        })
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `(page, "Heading")` references in `text`: a page is `README` or a
/// path ending in `.md`.
fn section_references(text: &str) -> Vec<(String, String)> {
    text.match_indices(", \"")
        .filter_map(|(at, _)| {
            let page = text[..at]
                .rsplit([' ', '(', '`', '['])
                .next()?
                .trim_matches('`');
            let heading = text[at + 3..].split('"').next()?;
            (page == "README" || page.ends_with(".md"))
                .then(|| (page.to_owned(), heading.to_owned()))
        })
        .collect()
}

#[test]
fn every_section_named_in_prose_exists() {
    let mut checked = 0;
    let mut dead = Vec::new();
    for (name, text) in PROJECT.iter() {
        for (page, heading) in section_references(&joined(text)) {
            checked += 1;
            let page_file = if page == "README" {
                root().join("README.md")
            } else {
                let beside = root().join(name).parent().map(|dir| dir.join(&page));
                beside
                    .filter(|path| path.exists())
                    .unwrap_or_else(|| root().join(&page))
            };
            if !anchors(&page_file).contains(&anchor(&heading)) {
                dead.push(format!("{name}: ({page}, \"{heading}\"): no such heading"));
            }
        }
    }
    assert!(dead.is_empty(), "{}", dead.join("\n"));
    assert!(checked >= 8, "only {checked} references found");
}

/// The project's own top-level folders, as a path in prose starts.
const FOLDERS: [&str; 9] = [
    "src/",
    "tests/",
    "docs/",
    "bench/",
    "deploy/",
    "examples/",
    "fuzz/",
    "schemas/",
    ".ci/",
];

/// Whether `c` can be part of a path as prose writes one.
fn in_path(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

/// The project paths `text` names (`src/voice.rs`, `deploy/grafana`), not
/// those inside a URL or a longer path.
fn named_paths(text: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    for folder in FOLDERS {
        for (at, _) in text.match_indices(folder) {
            if text[..at].chars().next_back().is_some_and(in_path) {
                continue;
            }
            let len = text[at..].find(|c| !in_path(c)).unwrap_or(text.len() - at);
            paths.push(text[at..at + len].trim_end_matches(['.', '/', '-']));
        }
    }
    paths
}

/// The folders `.gitignore` names from the root (`/fuzz/corpus`): the
/// tools that fill them make them, so a clean clone has none.
fn made_by_tools() -> Vec<String> {
    let (_, ignored) = PROJECT
        .iter()
        .find(|(name, _)| name == ".gitignore")
        .expect(".gitignore is read with the project");
    ignored
        .lines()
        .filter_map(|line| line.strip_prefix('/'))
        .map(str::to_owned)
        .collect()
}

/// Code, configuration and scripts name files of the project in comments
/// and messages. The Markdown pages are left out: they also tell the
/// history of files since removed. A path in a folder some tool makes
/// (`fuzz/corpus/…`) need not exist, since a clean clone has not run it.
#[test]
fn every_path_named_outside_the_pages_exists() {
    let made = made_by_tools();
    let is_made = |path: &str| {
        made.iter().any(|folder| {
            path.strip_prefix(folder.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    };
    let mut checked = 0;
    let mut missing = Vec::new();
    for (name, text) in PROJECT.iter().filter(|(name, _)| !name.ends_with(".md")) {
        for path in named_paths(text) {
            checked += 1;
            if !root().join(path).exists() && !is_made(path) {
                missing.push(format!("{name}: {path}: no such file or folder"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(checked >= 100, "only {checked} paths found");
}
