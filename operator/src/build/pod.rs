//! The hardening every Hygie pod gets: Pod Security `restricted`, a read-only root filesystem,
//! no service account token, and a required node affinity on the certified regions.

use k8s_openapi::{
    api::core::v1::{
        Affinity, Capabilities, Container, EmptyDirVolumeSource, NodeAffinity, NodeSelector,
        NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaimVolumeSource, PodDNSConfig,
        PodSecurityContext, PodSpec, SeccompProfile, SecurityContext, Volume, VolumeMount,
    },
    apimachinery::pkg::api::resource::Quantity,
};

use crate::api::HostingProfile;

/// The unprivileged identity workloads run as. Above 10000 so that it never matches a user of
/// the node.
pub const RUN_AS: i64 = 10001;

/// Scratch space at /tmp, since the root filesystem is read-only. It is in memory (tmpfs,
/// counted in the pod's memory limit), never on the node's disk: what a tool writes there may be
/// health data, and only the claims are encrypted.
pub const TMP_VOLUME: &str = "tmp";
/// Where the writable scratch volume is mounted.
pub const TMP: &str = "/tmp";

/// A pod spec around `containers`, hardened and pinned to the profile's regions.
pub fn hardened_pod(
    profile: &HostingProfile,
    service_account: &str,
    containers: Vec<Container>,
    mut volumes: Vec<Volume>,
    restart_policy: &str,
) -> PodSpec {
    volumes.push(Volume {
        name: TMP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity("1Gi".into())),
        }),
        ..Default::default()
    });
    let scheduling = &profile.spec.scheduling;
    PodSpec {
        containers: containers.into_iter().map(harden).collect(),
        volumes: Some(volumes),
        service_account_name: Some(service_account.into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        restart_policy: Some(restart_policy.into()),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        affinity: Some(region_affinity(profile)),
        node_selector: (!scheduling.node_selector.is_empty())
            .then(|| scheduling.node_selector.clone()),
        tolerations: (!scheduling.tolerations.is_empty()).then(|| scheduling.tolerations.clone()),
        ..Default::default()
    }
}

/// The container-level half of the hardening, plus the /tmp mount.
fn harden(mut container: Container) -> Container {
    container.image_pull_policy = Some("Always".into());
    container.security_context = Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    });
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    mounts.push(VolumeMount {
        name: TMP_VOLUME.into(),
        mount_path: TMP.into(),
        ..Default::default()
    });
    container
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

/// A required node affinity: pods only ever land on nodes of the certified regions.
fn region_affinity(profile: &HostingProfile) -> Affinity {
    let residency = &profile.spec.residency;
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: residency.region_label.clone(),
                        operator: "In".into(),
                        values: Some(residency.regions.clone()),
                    }]),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Default::default()
    }
}

/// A volume from a claim, read-only where asked.
pub fn claim_volume(name: &str, claim: &str, read_only: bool) -> Volume {
    Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            read_only: read_only.then_some(true),
        }),
        ..Default::default()
    }
}

/// Gives the pod no resolver: its resolv.conf names only the loopback address, where nothing
/// answers, so a lookup fails at once instead of waiting for a resolver its network policies
/// do not let it reach.
pub fn without_resolver(pod: &mut PodSpec) {
    with_resolver(pod, "127.0.0.1");
}

/// Gives the pod `address` as its only nameserver, with no search domains: a name is looked up
/// as written, and never through the cluster's resolver.
pub fn with_resolver(pod: &mut PodSpec, address: &str) {
    pod.dns_policy = Some("None".into());
    pod.dns_config = Some(PodDNSConfig {
        nameservers: Some(vec![address.into()]),
        ..Default::default()
    });
}
