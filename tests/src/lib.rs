//! Helpers shared by Hygie's integration tests: where things are, what fixtures expect, and
//! the assertion that a pod is as hardened as Hygie promises.

pub mod pod_security;

use std::path::{Path, PathBuf};

/// The root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}

/// The instant golden renders are made at, so that they do not change with the calendar.
pub fn golden_now() -> jiff::Timestamp {
    "2026-12-01T00:00:00Z".parse().expect("a valid instant")
}

/// The valid example bundles: every directory of examples/ but invalid/.
pub fn valid_examples() -> Vec<PathBuf> {
    subdirectories(&repo_root().join("examples"))
        .into_iter()
        .filter(|d| !d.ends_with("invalid"))
        .collect()
}

/// The invalid example bundles, one directory per rule.
pub fn invalid_examples() -> Vec<PathBuf> {
    subdirectories(&repo_root().join("examples/invalid"))
}

/// The sorted subdirectories of `dir`.
pub fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The files of `dir`, sorted by name.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .collect();
    files.sort();
    files
}

/// The `# <tag>: <value>` lines at the top of each fixture, such as `# expect: HYG005 ...`.
pub fn annotations(dir_or_file: &Path, tag: &str) -> Vec<String> {
    let files: Vec<PathBuf> = if dir_or_file.is_dir() {
        files_in(dir_or_file)
    } else {
        vec![dir_or_file.to_owned()]
    };
    let prefix = format!("# {tag}: ");
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// Compares `actual` with the file at `path`, or rewrites the file when HYGIE_BLESS is set.
/// Generated files are reviewed like code: a difference fails with the command that updates it.
pub fn assert_file_matches(path: &Path, actual: &str) {
    if std::env::var_os("HYGIE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} is out of date (first difference at line {}); review the change and run \
             `HYGIE_BLESS=1 cargo test -p hygie-tests --test generated` to update it",
            path.display(),
            line + 1
        );
    }
}

pub mod cluster;
pub mod desktop;
pub mod node;
pub mod operator;
pub mod outage;
pub mod reviews;
pub mod users;
