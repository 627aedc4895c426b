//! The container image (`Dockerfile`): a binary built on the Debian release
//! its runtime image is made from, with at least the Rust the crate
//! declares, and the README naming the image users get.

const DOCKERFILE: &str = include_str!("../../Dockerfile");
const CARGO_TOML: &str = include_str!("../../Cargo.toml");
const README: &str = include_str!("../../README.md");

/// The images of the `FROM` lines: the build stage's, then the runtime's.
fn stages() -> (&'static str, &'static str) {
    let images: Vec<&str> = DOCKERFILE
        .lines()
        .filter_map(|line| line.strip_prefix("FROM "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    match images[..] {
        [build, runtime] => (build, runtime),
        _ => panic!("expected a build stage and a runtime stage, found {images:?}"),
    }
}

/// A version such as `1.95` as numbers, for comparing.
fn version(text: &str) -> Vec<u32> {
    text.split('.')
        .map(|n| n.parse().expect("a number"))
        .collect()
}

#[test]
fn the_binary_is_built_on_the_debian_release_it_runs_on() {
    // rust:1.95-slim-<codename> and gcr.io/distroless/cc-debian<number>:<tag>.
    let (build, runtime) = stages();
    let codename = build.rsplit('-').next().unwrap_or_default();
    let release = runtime
        .split_once("-debian")
        .and_then(|(_, rest)| rest.split(':').next())
        .unwrap_or_default();
    let built_on = match codename {
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        other => panic!("{build}: unknown Debian codename {other}"),
    };
    // A binary linked against a newer glibc than the runtime's does not start.
    assert_eq!(built_on, release, "{build} builds for {runtime}");
}

#[test]
fn the_build_stage_has_at_least_the_declared_rust() {
    let (build, _) = stages();
    let rust = build
        .strip_prefix("rust:")
        .and_then(|tag| tag.split('-').next())
        .unwrap_or_else(|| panic!("{build} is not a rust image"));
    let declared = CARGO_TOML
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .expect("Cargo.toml declares rust-version");
    assert!(
        version(rust) >= version(declared),
        "{build} is older than rust-version {declared}"
    );
}

#[test]
fn the_readme_names_the_runtime_image() {
    let (_, runtime) = stages();
    assert!(
        README.contains(&format!("`{runtime}`")),
        "the README does not name {runtime}"
    );
}
