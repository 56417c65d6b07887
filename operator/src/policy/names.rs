//! HYG013 and HYG014: who a workspace names as members, and the names of the objects
//! themselves. The CRDs carry the same rules as CEL; here they also catch objects admitted
//! before the rules existed.

use std::collections::BTreeSet;

use super::{Findings, Rule, identities};
use crate::{api::workspace::Member, build::REVIEW_SUFFIX};

/// Longest Workspace name: its StatefulSet's pods carry a `controller-revision-hash` label of
/// the StatefulSet's name and an 11-character hash, and a label is at most 63 characters.
pub const WORKSPACE_NAME_MAX: usize = 52;
/// Longest Dataset name: its import Job, `<name>-import`, names its pods' `job-name` label.
pub const DATASET_NAME_MAX: usize = 56;
/// The suffix of a dataset's import objects, which a workspace's own objects must not wear.
const IMPORT_SUFFIX: &str = "-import";

pub fn check_workspace_name(findings: &mut Findings, name: &str) {
    let reason = if !is_label(name, WORKSPACE_NAME_MAX) || !name.starts_with(char::is_alphabetic) {
        Some(format!(
            "a Workspace name is a DNS-1035 label (lowercase letters, digits and '-', starting with a letter) of at most {WORKSPACE_NAME_MAX} characters: its StatefulSet, Service and labels are named after it"
        ))
    } else if name.ends_with(IMPORT_SUFFIX) {
        Some(format!(
            "a Workspace name does not end in `{IMPORT_SUFFIX}`: the objects of Dataset `{}`'s import wear that name",
            name.trim_end_matches(IMPORT_SUFFIX)
        ))
    } else if name.ends_with(REVIEW_SUFFIX) {
        Some(format!(
            "a Workspace name does not end in `{REVIEW_SUFFIX}`: the review pod of ExportRequest `{}` wears that name",
            name.trim_end_matches(REVIEW_SUFFIX)
        ))
    } else {
        None
    };
    if let Some(reason) = reason {
        findings.add(Rule::Names, "metadata.name", reason);
    }
}

pub fn check_dataset_name(findings: &mut Findings, name: &str) {
    if !is_label(name, DATASET_NAME_MAX) {
        findings.add(
            Rule::Names,
            "metadata.name",
            format!(
                "a Dataset name is a DNS-1123 label (lowercase letters, digits and '-') of at most {DATASET_NAME_MAX} characters: its import Job and labels are named after it"
            ),
        );
    }
}

pub fn check_members(findings: &mut Findings, members: &[Member]) {
    let mut seen = BTreeSet::new();
    for (i, member) in members.iter().enumerate() {
        if member.name.starts_with("system:") {
            findings.add(
                Rule::Members,
                format!("spec.members[{i}].name"),
                format!(
                    "`{}` is a system identity (system:authenticated is every user, system:unauthenticated anyone); list people and groups of your identity provider",
                    super::quote(&member.name)
                ),
            );
        }
        if let Some(why) = identities::why_ambiguous(&member.name) {
            findings.add(
                Rule::Members,
                format!("spec.members[{i}].name"),
                format!("`{}` {why}", super::quote(&member.name)),
            );
        }
        if !seen.insert((member.kind, identities::look(&member.name))) {
            findings.add(
                Rule::Members,
                format!("spec.members[{i}]"),
                format!(
                    "{:?} `{}` is listed twice (or a name that looks the same); give each member one role",
                    member.kind,
                    super::quote(&member.name)
                ),
            );
        }
    }
}

/// Whether `name` is a DNS-1123 label of at most `max` characters.
fn is_label(name: &str, max: usize) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    !name.is_empty()
        && name.len() <= max
        && name.chars().all(allowed)
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{api::Workspace, fixtures::workspace};

    fn violations(workspace: &Workspace) -> Vec<String> {
        let mut findings = Findings::for_object(workspace);
        check_workspace_name(&mut findings, &kube::ResourceExt::name_any(workspace));
        check_members(&mut findings, &workspace.spec.members);
        findings
            .into_vec()
            .into_iter()
            .map(|v| format!("{} {}", v.field, v.message))
            .collect()
    }

    #[test]
    fn names_that_would_derive_invalid_or_colliding_names_are_refused() {
        let mut w = workspace();
        for (name, refused) in [
            ("study", false),
            (&"a".repeat(52), false),
            (&"a".repeat(53), true),
            ("cohort-import", true),
            ("1study", true),
            ("stu.dy", true),
            ("Study", true),
        ] {
            w.metadata.name = Some(name.to_owned());
            assert_eq!(!violations(&w).is_empty(), refused, "{name}");
        }
    }

    #[test]
    fn system_identities_and_duplicates_are_refused() {
        let mut w = workspace();
        w.spec.members.push(
            serde_json::from_value(serde_json::json!(
                {"kind": "Group", "name": "system:authenticated", "role": "Analyst"}
            ))
            .unwrap(),
        );
        w.spec.members.push(w.spec.members[0].clone());
        let found = violations(&w);
        assert!(found[0].starts_with("spec.members[2].name"), "{found:?}");
        assert!(found[1].starts_with("spec.members[3] "), "{found:?}");
        assert_eq!(found.len(), 2);
    }
}
