//! The `console` examples of the README and `docs/routes.md`, run against
//! `--dev` instances as a reader would paste them: each command prints what
//! the page shows. A block that opens with `$ VAR=… cargo run … --dev &`
//! gets its own instance with those settings.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{Process, start_binary};

const PAGES: [&str; 2] = ["README.md", "docs/routes.md"];

/// One `$ command` and the lines the page shows after it.
struct Example {
    line: usize,
    command: String,
    shown: String,
}

/// One `console` block: the settings of its instance and its examples.
#[derive(Default)]
struct Block {
    settings: Vec<(String, String)>,
    examples: Vec<Example>,
}

fn blocks(page: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(page))
        .unwrap_or_else(|e| panic!("{page}: {e}"));
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        match (open.as_mut(), line) {
            (None, "```console") => open = Some(Block::default()),
            (Some(_), "```") => blocks.extend(open.take()),
            (Some(block), line) => match line.strip_prefix("$ ") {
                Some(command) if command.ends_with("--dev &") => {
                    block.settings = assignments(command);
                }
                Some(command) => block.examples.push(Example {
                    line: index + 1,
                    command: command.to_owned(),
                    shown: String::new(),
                }),
                None => {
                    if let Some(example) = block.examples.last_mut() {
                        example.shown.push_str(line);
                        example.shown.push('\n');
                    }
                }
            },
            (None, _) => {}
        }
    }
    blocks
}

/// The `NAME=value` and `NAME='a value'` words before `cargo run`.
fn assignments(command: &str) -> Vec<(String, String)> {
    let (mut rest, _) = command
        .split_once("cargo run")
        .unwrap_or_else(|| panic!("not a cargo run line: {command}"));
    let mut settings = Vec::new();
    while let Some((name, value)) = rest.trim_start().split_once('=') {
        let (value, after) = match value.strip_prefix('\'') {
            Some(quoted) => quoted.split_once('\'').expect("a closing quote"),
            None => value.split_once(' ').unwrap_or((value, "")),
        };
        settings.push((name.to_owned(), value.to_owned()));
        rest = after;
    }
    settings
}

/// Output with what changes from run to run (dates, request ids) replaced,
/// and response headers in a fixed order (actix writes them in hash order).
fn normalized(output: &str) -> String {
    let output = output.replace('\r', "");
    let lines = output
        .trim_end()
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((name @ ("date" | "x-request-id"), _)) => format!("{name}: …"),
            _ => line.to_owned(),
        });
    let mut lines: Vec<String> = lines.collect();
    if lines.first().is_some_and(|line| line.starts_with("HTTP/")) {
        let end = lines
            .iter()
            .position(String::is_empty)
            .unwrap_or(lines.len());
        lines[1..end].sort();
    }
    lines.join("\n")
}

/// Run `command` with bash against `process`, `flexbridge` being this build.
fn run(command: &str, process: &Process) -> String {
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_flexbridge"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    let host = process.address.trim_start_matches("http://");
    let out = Command::new("bash")
        .arg("-c")
        .arg(command.replace("localhost:8080", host))
        .env_clear()
        .env("PATH", path)
        .output()
        .expect("bash and curl run");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn every_console_example_prints_what_its_page_shows() {
    let demo = start_binary(&["--dev"], &[]).await;
    let mut checked = 0;
    let mut wrong = Vec::new();
    for page in PAGES {
        for block in blocks(page) {
            let own = if block.settings.is_empty() {
                None
            } else {
                let settings: Vec<(&str, &str)> = block
                    .settings
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                Some(start_binary(&["--dev"], &settings).await)
            };
            let process = own.as_ref().unwrap_or(&demo);
            for example in &block.examples {
                let printed = normalized(&run(&example.command, process));
                if printed != normalized(&example.shown) {
                    wrong.push(format!(
                        "{page}:{}: $ {}\nshown:\n{}\nprinted:\n{printed}\n",
                        example.line,
                        example.command,
                        normalized(&example.shown)
                    ));
                }
                checked += 1;
            }
            if let Some(process) = own {
                process.stop_and_read_logs();
            }
        }
    }
    demo.stop_and_read_logs();

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 28, "only {checked} examples found");
}
