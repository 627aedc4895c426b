//! The Markdown pages link to each other by relative path and heading
//! anchor; a moved section or renamed file must not leave a reader at a
//! dead link.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const PAGES: [&str; 5] = [
    "README.md",
    "docs",
    "bench",
    "fuzz/README.md",
    "tests/fixtures/README.md",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files named by [`PAGES`] (directories: the files in them).
fn pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    for page in PAGES {
        let path = root().join(page);
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
            pages.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "md")),
            );
        } else {
            pages.push(path);
        }
    }
    pages
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
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        let name = page
            .strip_prefix(root())
            .unwrap_or(&page)
            .display()
            .to_string();
        for link in links(&prose(&text)) {
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
