//! The assertion that a pod spec meets Pod Security Standard `restricted` plus what Hygie adds:
//! read-only root filesystem, requests and limits, probes for long-running pods, no service
//! account token, a required node affinity on the profile's regions, and read-only dataset
//! mounts. Each failure names the pod and the field.

use k8s_openapi::api::core::v1::{Container, PodSpec};

use hygie::api::HostingProfile;

/// Which extras apply: long-running workloads need probes, run-to-completion Jobs do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    LongRunning,
    RunToCompletion,
}

/// Checks `pod` and returns every breach, empty when it is hardened.
pub fn breaches(
    owner: &str,
    pod: &PodSpec,
    profile: &HostingProfile,
    workload: Workload,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            found.push(format!("{owner}: {what}"));
        }
    };
    let pod_context = pod.security_context.clone().unwrap_or_default();
    expect(
        pod.host_network != Some(true),
        "spec.hostNetwork must not be true",
    );
    expect(pod.host_pid != Some(true), "spec.hostPID must not be true");
    expect(pod.host_ipc != Some(true), "spec.hostIPC must not be true");
    expect(
        pod_context.run_as_non_root == Some(true),
        "spec.securityContext.runAsNonRoot must be true",
    );
    expect(
        pod_context.run_as_user.is_some_and(|u| u > 0),
        "spec.securityContext.runAsUser must be non-zero",
    );
    expect(
        pod_context.run_as_group.is_some_and(|g| g > 0),
        "spec.securityContext.runAsGroup must be non-zero",
    );
    expect(
        pod_context.fs_group.is_some_and(|g| g > 0),
        "spec.securityContext.fsGroup must be non-zero",
    );
    expect(
        pod_context
            .seccomp_profile
            .as_ref()
            .is_some_and(|p| p.type_ == "RuntimeDefault"),
        "spec.securityContext.seccompProfile.type must be RuntimeDefault",
    );
    expect(
        pod.automount_service_account_token == Some(false),
        "spec.automountServiceAccountToken must be false",
    );
    for volume in pod.volumes.iter().flatten() {
        expect(
            volume.host_path.is_none(),
            &format!("volume {} must not be a hostPath", volume.name),
        );
    }

    let residency = &profile.spec.residency;
    let terms = pod
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|s| s.node_selector_terms.clone())
        .unwrap_or_default();
    let pinned = !terms.is_empty()
        && terms.iter().all(|term| {
            term.match_expressions.iter().flatten().any(|e| {
                e.key == residency.region_label
                    && e.operator == "In"
                    && e.values.as_deref() == Some(residency.regions.as_slice())
            })
        });
    expect(
        pinned,
        "spec.affinity.nodeAffinity must require the profile's regions on every term",
    );

    let read_only_claims: Vec<&str> = pod
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.read_only == Some(true))
        })
        .map(|v| v.name.as_str())
        .collect();

    for container in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        found.extend(container_breaches(
            owner,
            container,
            &read_only_claims,
            workload,
        ));
    }
    found
}

fn container_breaches(
    owner: &str,
    c: &Container,
    read_only_claims: &[&str],
    workload: Workload,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            found.push(format!("{owner}: container {}: {what}", c.name));
        }
    };
    let context = c.security_context.clone().unwrap_or_default();
    expect(
        context.allow_privilege_escalation == Some(false),
        "allowPrivilegeEscalation must be false",
    );
    expect(
        context.privileged != Some(true),
        "privileged must not be true",
    );
    expect(
        context.read_only_root_filesystem == Some(true),
        "readOnlyRootFilesystem must be true",
    );
    expect(context.run_as_user != Some(0), "runAsUser must not be 0");
    let caps = context.capabilities.clone().unwrap_or_default();
    expect(
        caps.drop.iter().flatten().any(|d| d == "ALL"),
        "capabilities must drop ALL",
    );
    expect(
        caps.add.iter().flatten().all(|a| a == "NET_BIND_SERVICE"),
        "capabilities may only add NET_BIND_SERVICE",
    );
    expect(
        context
            .seccomp_profile
            .as_ref()
            .is_none_or(|p| p.type_ == "RuntimeDefault" || p.type_ == "Localhost"),
        "seccompProfile must be RuntimeDefault or Localhost",
    );
    let image = c.image.as_deref().unwrap_or_default();
    expect(hygie_digest(image), "image must be pinned by digest");
    let resources = c.resources.clone().unwrap_or_default();
    for section in [&resources.requests, &resources.limits] {
        for resource in ["cpu", "memory"] {
            expect(
                section.as_ref().is_some_and(|s| s.contains_key(resource)),
                &format!("{resource} requests and limits must be set"),
            );
        }
    }
    if workload == Workload::LongRunning {
        expect(c.liveness_probe.is_some(), "a liveness probe is required");
        expect(c.readiness_probe.is_some(), "a readiness probe is required");
    }
    for mount in c.volume_mounts.iter().flatten() {
        if read_only_claims.contains(&mount.name.as_str()) {
            expect(
                mount.read_only == Some(true),
                &format!("mount {} of a dataset must be readOnly", mount.mount_path),
            );
        }
    }
    found
}

fn hygie_digest(image: &str) -> bool {
    image
        .rsplit_once("@sha256:")
        .is_some_and(|(_, d)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}
