//! Offline rendering of a whole bundle: the rules first, then the builders for every object
//! that passes them. What `hygie render` prints is what the controllers would apply.

use std::collections::BTreeSet;

use kube::ResourceExt;

use crate::{
    build::{Child, dataset_children, workspace_children},
    bundle::Bundle,
    policy::{ObjectKey, Violation, check_all},
};

/// The result of rendering a bundle.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The objects Hygie would create, datasets first, each owner's children in apply order.
    pub objects: Vec<Child>,
    /// Every rule violation of the bundle.
    pub violations: Vec<Violation>,
    /// Objects rendered to nothing, and why: their own violations or those of what they use.
    pub skipped: Vec<(ObjectKey, String)>,
}

/// Checks and renders `bundle` as of `now`.
pub fn render(bundle: &Bundle, now: jiff::Timestamp) -> Rendered {
    let inventory = &bundle.inventory;
    let violations = check_all(inventory, &bundle.workspaces, now);
    let failing: BTreeSet<&ObjectKey> = violations.iter().map(|v| &v.object).collect();
    let profile_fails = |name: &str| {
        failing.contains(&ObjectKey {
            kind: "HostingProfile".into(),
            namespace: None,
            name: name.into(),
        })
    };
    let mut rendered = Rendered::default();

    for dataset in inventory.datasets.values() {
        let key = ObjectKey::of(dataset);
        let profile = inventory.profile(&dataset.spec.hosting_profile);
        match profile {
            Some(profile)
                if !failing.contains(&key) && !profile_fails(&dataset.spec.hosting_profile) =>
            {
                rendered.objects.extend(dataset_children(dataset, profile));
            }
            _ => rendered
                .skipped
                .push((key, blocked_reason(&dataset.spec.hosting_profile))),
        }
    }

    for workspace in &bundle.workspaces {
        let key = ObjectKey::of(workspace);
        let namespace = workspace.namespace().unwrap_or_default();
        let datasets: Option<Vec<_>> = workspace
            .spec
            .datasets
            .iter()
            .map(|mount| {
                inventory
                    .dataset(&namespace, &mount.name)
                    .filter(|d| !failing.contains(&ObjectKey::of(*d)))
            })
            .collect();
        let profile = inventory.profile(&workspace.spec.hosting_profile);
        match (profile, datasets) {
            (Some(profile), Some(datasets))
                if !failing.contains(&key) && !profile_fails(&workspace.spec.hosting_profile) =>
            {
                rendered.objects.extend(workspace_children(
                    workspace, profile, &datasets, None, true, now,
                ));
            }
            _ => rendered
                .skipped
                .push((key, blocked_reason(&workspace.spec.hosting_profile))),
        }
    }
    rendered.violations = violations;
    rendered
}

fn blocked_reason(profile: &str) -> String {
    format!(
        "not rendered: it, its HostingProfile `{profile}` or one of its datasets breaks a rule listed above"
    )
}

/// Documents as one YAML stream, each introduced by `---`.
pub fn yaml_stream(documents: &[serde_json::Value]) -> String {
    documents
        .iter()
        .map(|d| {
            format!(
                "---\n{}",
                serde_saphyr::to_string(d).expect("JSON values serialize to YAML")
            )
        })
        .collect()
}
