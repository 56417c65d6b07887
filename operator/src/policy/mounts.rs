//! HYG007, where datasets are mounted: each dataset once, each at a path of its own. A mount
//! over the home, the outbox or /tmp would hide the writable volumes the tool needs, or make a
//! dataset copy writable through them (over the outbox, a request would stage the dataset's own
//! files); nested mounts would hide one dataset under another.

use std::{collections::BTreeSet, path::Path};

use super::{Findings, Rule, quote};
use crate::{
    api::workspace::DatasetMount,
    build::{HOME, OUTBOX, pod::TMP},
};

pub fn check_mounts(findings: &mut Findings, mounts: &[DatasetMount]) {
    let mut names = BTreeSet::new();
    let reserved = [HOME, OUTBOX, TMP];
    for (i, mount) in mounts.iter().enumerate() {
        if !names.insert(mount.name.as_str()) {
            findings.add(
                Rule::DatasetBinding,
                format!("spec.datasets[{i}].name"),
                format!("Dataset `{}` is listed twice", quote(&mount.name)),
            );
        }
        let field = format!("spec.datasets[{i}].mountPath");
        let path = mount.mount_path.as_str();
        if !is_plain_absolute(path) {
            findings.add(
                Rule::DatasetBinding,
                field,
                format!(
                    "`{}` is not a plain absolute path (no `.`, `..`, empty segment or trailing `/`, and not `/` itself)",
                    quote(path)
                ),
            );
            continue;
        }
        let clashes = reserved
            .iter()
            .copied()
            .map(|r| (r, "the workspace's own volume"))
            .chain(
                mounts[..i]
                    .iter()
                    .map(|m| (m.mount_path.as_str(), "another dataset")),
            )
            .find(|(other, _)| nested(path, other));
        if let Some((other, what)) = clashes {
            findings.add(
                Rule::DatasetBinding,
                field,
                format!(
                    "`{}` overlaps {other}, where {what} is mounted",
                    quote(path)
                ),
            );
        }
    }
}

/// `/a/b`, not `a/b`, `/a/../b`, `/a//b`, `/a/` or `/`.
fn is_plain_absolute(path: &str) -> bool {
    path.len() > 1
        && path.starts_with('/')
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// Whether one path is the other or lies under it.
fn nested(a: &str, b: &str) -> bool {
    Path::new(a).starts_with(b) || Path::new(b).starts_with(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(mounts: &[(&str, &str)]) -> Vec<String> {
        let mounts: Vec<DatasetMount> = mounts
            .iter()
            .map(|(name, path)| DatasetMount {
                name: (*name).into(),
                mount_path: (*path).into(),
            })
            .collect();
        let workspace = crate::fixtures::workspace();
        let mut findings = Findings::for_object(&workspace);
        check_mounts(&mut findings, &mounts);
        findings.into_vec().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn each_dataset_once_at_a_path_of_its_own() {
        assert!(found(&[("a", "/data/a"), ("b", "/data/b")]).is_empty());
        assert_eq!(
            found(&[("a", "/data/a"), ("a", "/data/b")]),
            ["spec.datasets[1].name"]
        );
        for path in [
            "/home/researcher",
            "/home/researcher/a",
            "/home",
            "/tmp",
            "/tmp/x",
            "/",
            "/data/../tmp",
            "/data//a",
            "/data/a/",
            "data",
        ] {
            assert_eq!(
                found(&[("a", path)]),
                ["spec.datasets[0].mountPath"],
                "{path}"
            );
        }
        assert_eq!(
            found(&[("a", "/data"), ("b", "/data/b")]),
            ["spec.datasets[1].mountPath"]
        );
        assert!(
            found(&[("a", "/data/ab"), ("b", "/data/a")]).is_empty(),
            "siblings, not nested"
        );
    }
}
