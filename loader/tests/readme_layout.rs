//! The README's "Layout" table against the files git tracks: every path
//! the table names exists, and every tracked top-level folder is in it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The first column of the rows under "## Layout", without the backticks.
fn layout_paths(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("README.md has a \"## Layout\" section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_layout_table_matches_the_tracked_tree() {
    let Ok(out) = Command::new("git").arg("-C").arg(repo()).arg("ls-files").output() else {
        eprintln!("SKIPPED: git is not installed");
        return;
    };
    if !out.status.success() {
        eprintln!("SKIPPED: not a git checkout");
        return;
    }
    let files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let table = layout_paths(&readme);
    assert!(!table.is_empty(), "the Layout table has no rows");
    for path in &table {
        let tracked = files
            .iter()
            .any(|f| f == path || (path.ends_with('/') && f.starts_with(path.as_str())));
        assert!(
            tracked,
            "README.md's Layout table names `{path}`, which git does not track"
        );
    }
    let folders: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.split_once('/').map(|(top, _)| format!("{top}/")))
        .filter(|top| !top.starts_with('.'))
        .collect();
    for folder in &folders {
        assert!(
            table.contains(folder),
            "the tracked folder `{folder}` is missing from README.md's Layout table"
        );
    }
}
