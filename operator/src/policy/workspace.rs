//! Rules on a Workspace, which depend on its profile and datasets: HYG002, HYG004 to HYG008,
//! HYG010, HYG012, HYG013 and HYG014.

use kube::ResourceExt;

use super::{
    Findings, Inventory, Rule, Violation,
    images::check_image,
    mounts::check_mounts,
    names::{check_members, check_workspace_name},
    network::{check_egress, check_no_shared_store, destinations},
    profile::has_valid_hds,
    resources::{check_resources, check_size},
    sovereignty::check_immunity,
};
use crate::api::{Dataset, EgressRule, Workspace};

pub fn check_workspace(
    workspace: &Workspace,
    inventory: &Inventory,
    now: jiff::Timestamp,
) -> Vec<Violation> {
    let mut findings = Findings::for_object(workspace);
    let spec = &workspace.spec;
    let namespace = workspace.namespace().unwrap_or_default();

    check_workspace_name(&mut findings, &workspace.name_any());
    check_members(&mut findings, &spec.members);
    let declared = inventory
        .profile(&spec.hosting_profile)
        .map(|p| destinations(&p.spec.network.egress_destinations));
    check_egress(
        &mut findings,
        "spec.egress",
        &spec.egress,
        declared.as_deref(),
    );
    let mut stores: Vec<(String, &EgressRule)> = Vec::new();
    if let Some(exports) = inventory
        .profile(&spec.hosting_profile)
        .and_then(|p| p.spec.exports.as_ref())
    {
        for destination in &exports.destinations {
            let what = format!("export destination `{}`", destination.name);
            stores.extend(destination.s3.egress.iter().map(|e| (what.clone(), e)));
        }
    }
    for name in workspace.lineage() {
        let source = inventory
            .dataset(&namespace, name)
            .and_then(|d| d.spec.source.as_ref())
            .and_then(|s| s.s3.as_ref());
        if let Some(s3) = source {
            let what = format!("the import source of Dataset `{name}`");
            stores.extend(s3.egress.iter().map(|e| (what.clone(), e)));
        }
    }
    check_no_shared_store(&mut findings, "spec.egress", &spec.egress, &stores);
    check_resources(&mut findings, &spec.resources);
    check_size(&mut findings, "spec.storage.size", &spec.storage.size);
    if let Some(outbox) = &spec.outbox {
        check_size(&mut findings, "spec.outbox.size", &outbox.size);
    }
    check_mounts(&mut findings, &spec.datasets);
    super::export::check_workspace_panels(&mut findings, workspace, inventory);

    let datasets: Vec<(usize, &Dataset)> = spec
        .datasets
        .iter()
        .enumerate()
        .filter_map(|(i, mount)| {
            let found = inventory.dataset(&namespace, &mount.name);
            if found.is_none() {
                findings.add(
                    Rule::DatasetBinding,
                    format!("spec.datasets[{i}].name"),
                    format!(
                        "Dataset `{}` does not exist in namespace `{namespace}`",
                        mount.name
                    ),
                );
            }
            found.map(|d| (i, d))
        })
        .collect();

    for &(i, dataset) in &datasets {
        if dataset.spec.hosting_profile != spec.hosting_profile {
            findings.add(
                Rule::DatasetBinding,
                format!("spec.datasets[{i}].name"),
                format!(
                    "Dataset `{}` lives on HostingProfile `{}`, not `{}`",
                    dataset.name_any(),
                    dataset.spec.hosting_profile,
                    spec.hosting_profile
                ),
            );
        }
        if dataset.is_expired(now) {
            findings.add(
                Rule::DatasetBinding,
                format!("spec.datasets[{i}].name"),
                format!(
                    "Dataset `{}` is Expired: its authorisation ended on {}",
                    dataset.name_any(),
                    dataset.spec.legal.valid_until
                ),
            );
        }
    }

    let health: Vec<&Dataset> = datasets
        .iter()
        .map(|&(_, d)| d)
        .filter(|d| d.is_health_data())
        .collect();
    if !health.is_empty() {
        match &spec.expires_at {
            None => findings.add(
                Rule::Expiry,
                "spec.expiresAt",
                "a workspace on health data needs expiresAt, at the latest the end of its datasets' authorisations",
            ),
            Some(expires_at) => {
                for dataset in &health {
                    let until = dataset.spec.legal.valid_until;
                    if expires_at.0 > until.end() {
                        findings.add(
                            Rule::Expiry,
                            "spec.expiresAt",
                            format!(
                                "expiresAt {} is after the end of Dataset `{}`'s authorisation on {until}",
                                expires_at.0,
                                dataset.name_any()
                            ),
                        );
                    }
                }
            }
        }
    }

    let Some(profile) = inventory.profile(&spec.hosting_profile) else {
        findings.add(
            Rule::ProfileExists,
            "spec.hostingProfile",
            format!("HostingProfile `{}` does not exist", spec.hosting_profile),
        );
        return findings.into_vec();
    };

    check_image(
        &mut findings,
        "spec.image",
        &spec.image,
        &profile.spec.images.allowed_registries,
    );

    let mounted: Vec<&Dataset> = datasets.iter().map(|&(_, d)| d).collect();
    check_immunity(&mut findings, profile, &mounted, now);

    if !health.is_empty() && !has_valid_hds(profile, now) {
        findings.add(
            Rule::HdsCertified,
            "spec.hostingProfile",
            format!(
                "the workspace mounts health data, and HostingProfile `{}` has no HDS certification valid today",
                profile.name_any()
            ),
        );
    }
    findings.into_vec()
}
