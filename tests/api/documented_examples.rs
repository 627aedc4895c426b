//! The `console` examples of the README and `docs/`, run against `--dev`
//! instances as a reader would paste them: each command prints what the
//! page shows, where a line `…` stands for lines left out. A block that
//! opens with `$ VAR=… cargo run … --dev &` gets its own instance with
//! those settings.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{Process, coverage_env, free_port, start_binary};
use crate::redis_server::{REDIS_PASSWORD, RedisServer};

const PAGES: [&str; 2] = ["README.md", "docs/routes.md"];

/// The page whose examples need a Redis.
const STORE_PAGE: &str = "docs/shared-store.md";

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

/// Output with what changes from run to run (dates, request ids, round
/// trips) replaced, and response headers in a fixed order (actix writes
/// them in hash order).
fn normalized(output: &str) -> String {
    let output = output.replace('\r', "");
    let lines = output
        .trim_end()
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((name @ ("date" | "x-request-id"), _)) => format!("{name}: …"),
            _ => match line.split_once(" answered PING in ") {
                Some((before, _)) => format!("{before} answered PING in … ms"),
                None => line.to_owned(),
            },
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
        .envs(coverage_env())
        .env("PATH", path)
        .output()
        .expect("bash and curl run");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `printed` is what the page `shown`: the same lines, where a
/// line `…` on the page stands for any number of lines.
fn shows(shown: &str, printed: &str) -> bool {
    fn from(shown: &[&str], printed: &[&str]) -> bool {
        match shown.split_first() {
            None => printed.is_empty(),
            Some((&"…", rest)) => (0..=printed.len()).any(|skip| from(rest, &printed[skip..])),
            Some((line, rest)) => printed
                .split_first()
                .is_some_and(|(first, after)| first == line && from(rest, after)),
        }
    }
    let shown: Vec<&str> = shown.lines().collect();
    let printed: Vec<&str> = printed.lines().collect();
    from(&shown, &printed)
}

/// The harness's own rule: only a `…` line stands for other lines.
#[test]
fn a_page_leaves_lines_out_only_where_it_shows_an_ellipsis() {
    assert!(shows("a\nb", "a\nb"));
    assert!(!shows("a", "a\nb"), "a line more");
    assert!(!shows("a\nb", "a"), "a line fewer");
    assert!(!shows("a\nb", "b\na"), "the lines in another order");
    assert!(shows("…\nb\n…\nd", "a\nb\nc\nd"));
    assert!(shows("a\n…", "a"), "`…` may stand for no line");
    assert!(!shows("…\nb", "b\nc"), "the page's last line ends it");
}

/// Run every `console` example of `pages`, with each `(on the page, here)`
/// of `swaps` swapped in the commands and settings and back in the output;
/// returns how many ran and a report of each that printed something else.
async fn run_pages(pages: &[&str], swaps: &[(&str, &str)]) -> (usize, Vec<String>) {
    let to_test = |text: &str| {
        swaps.iter().fold(text.to_owned(), |text, (page, here)| {
            text.replace(page, here)
        })
    };
    let to_page = |text: &str| {
        swaps.iter().fold(text.to_owned(), |text, (page, here)| {
            text.replace(here, page)
        })
    };
    let demo = start_binary(&["--dev"], &[]).await;
    let mut checked = 0;
    let mut wrong = Vec::new();
    for page in pages {
        for block in blocks(page) {
            let own = if block.settings.is_empty() {
                None
            } else {
                let settings: Vec<(&str, String)> = block
                    .settings
                    .iter()
                    .map(|(name, value)| (name.as_str(), to_test(value)))
                    .collect();
                let settings: Vec<(&str, &str)> = settings
                    .iter()
                    .map(|(name, value)| (*name, value.as_str()))
                    .collect();
                Some(start_binary(&["--dev"], &settings).await)
            };
            let process = own.as_ref().unwrap_or(&demo);
            for example in &block.examples {
                let printed = normalized(&to_page(&run(&to_test(&example.command), process)));
                let shown = normalized(&example.shown);
                if !shows(&shown, &printed) {
                    wrong.push(format!(
                        "{page}:{}: $ {}\nshown:\n{shown}\nprinted:\n{printed}\n",
                        example.line, example.command,
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
    (checked, wrong)
}

#[tokio::test]
async fn every_console_example_prints_what_its_page_shows() {
    let (checked, wrong) = run_pages(&PAGES, &[]).await;

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 28, "only {checked} examples found");
}

/// `docs/shared-store.md` against a real Redis: the page's
/// `127.0.0.1:6379` (password `s3cret`) is the test's server, and its Redis
/// that is not running (port 6380) a port nothing listens on.
#[tokio::test]
#[ignore = "needs redis-server: cargo test -- --ignored"]
async fn the_shared_store_examples_print_what_their_page_shows() {
    let redis = RedisServer::start().await;
    let live = format!("127.0.0.1:{}", redis.port);
    let down = format!("127.0.0.1:{}", free_port());
    let swaps = [
        ("s3cret", REDIS_PASSWORD),
        ("127.0.0.1:6379", &live),
        ("127.0.0.1:6380", &down),
    ];

    let (checked, wrong) = run_pages(&[STORE_PAGE], &swaps).await;

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(checked, 3, "examples run");
}

/// A `console` block on another page would run nowhere: every page that has
/// one is run above.
#[test]
fn every_page_with_console_examples_is_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/");
    let mut unrun: Vec<String> = docs
        .map(|entry| {
            format!(
                "docs/{}",
                entry.expect("an entry").file_name().to_string_lossy()
            )
        })
        .chain(["README.md".to_owned()])
        .filter(|page| !PAGES.contains(&page.as_str()) && page != STORE_PAGE)
        .filter(|page| {
            std::fs::read_to_string(root.join(page))
                .is_ok_and(|text| text.lines().any(|line| line == "```console"))
        })
        .collect();
    unrun.sort();

    assert!(unrun.is_empty(), "console examples no test runs: {unrun:?}");
}
