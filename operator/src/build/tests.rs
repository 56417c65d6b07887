//! What the builders make of small objects.

use k8s_openapi::{
    api::core::v1::PodSpec,
    apimachinery::pkg::{apis::meta::v1::Time, util::intstr::IntOrString},
};

use super::*;
use crate::{
    api::{Dataset, HostingProfile, Workspace},
    fixtures::{dataset, luks_profile, now, profile, workspace},
};

fn names(children: &[Child]) -> Vec<String> {
    children
        .iter()
        .map(|c| format!("{}/{}", c.kind(), c.name()))
        .collect()
}

fn workspace_objects(ws: &Workspace, profile: &HostingProfile) -> Vec<Child> {
    let ds = dataset();
    workspace_children(ws, profile, &[&ds], None, true, now())
}

fn statefulset(children: &[Child]) -> &StatefulSet {
    children
        .iter()
        .find_map(|c| match c {
            Child::StatefulSet(s) => Some(s),
            _ => None,
        })
        .expect("a StatefulSet")
}

fn pod(children: &[Child]) -> PodSpec {
    statefulset(children)
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
}

fn replicas(children: &[Child]) -> i32 {
    statefulset(children)
        .spec
        .as_ref()
        .unwrap()
        .replicas
        .unwrap()
}

#[test]
fn a_workspace_becomes_isolation_access_volumes_workload_and_service() {
    let children = workspace_objects(&workspace(), &profile());
    assert_eq!(
        names(&children),
        [
            "ServiceAccount/study",
            "NetworkPolicy/study-deny-all",
            "NetworkPolicy/study-allow-desktop",
            "NetworkPolicy/study-egress-0",
            "Role/study-analyst",
            "RoleBinding/study-analyst",
            "Role/study-owner",
            "RoleBinding/study-owner",
            "PersistentVolumeClaim/study-home",
            "PersistentVolumeClaim/study-outbox",
            "PersistentVolumeClaim/study-ds-cohort-3ef84d6045",
            "StatefulSet/study",
            "Service/study",
        ]
    );
    for child in &children {
        let labels = child.meta().labels.clone().unwrap();
        assert_eq!(labels[labels::MANAGED_BY], "hygie", "{}", child.name());
        assert_eq!(labels[labels::WORKSPACE], "study", "{}", child.name());
        assert_eq!(child.meta().namespace.as_deref(), Some("research"));
    }
}

#[test]
fn building_twice_gives_the_same_objects() {
    assert_eq!(
        workspace_objects(&workspace(), &luks_profile()),
        workspace_objects(&workspace(), &luks_profile())
    );
}

#[test]
fn network_policies_deny_all_then_allow_the_gateway_and_each_egress() {
    let mut ws = workspace();
    ws.spec.egress.push(ws.spec.egress[0].clone());
    ws.spec.egress[1].cidr = "192.0.2.0/24".into();
    let policies: Vec<_> = workspace_objects(&ws, &profile())
        .into_iter()
        .filter_map(|c| match c {
            Child::NetworkPolicy(p) => Some(p.spec.unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(
        policies.len(),
        4,
        "deny-all, the gateway and each egress; no DNS, no ingress to the tool"
    );
    let deny = &policies[0];
    assert_eq!(
        deny.policy_types.as_deref(),
        Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
    );
    assert!(deny.ingress.is_none() && deny.egress.is_none());
    let selector = deny.pod_selector.clone().unwrap().match_labels.unwrap();
    assert_eq!(selector[labels::WORKSPACE], "study");
    let desktop = &policies[1].ingress.as_ref().unwrap()[0];
    assert_eq!(
        desktop.ports.as_ref().unwrap()[0].port,
        Some(IntOrString::Int(DESKTOP_PORT))
    );
    let from = &desktop.from.as_ref().unwrap()[0];
    let namespace = from
        .namespace_selector
        .clone()
        .unwrap()
        .match_labels
        .unwrap();
    assert_eq!(namespace["kubernetes.io/metadata.name"], "hygie-system");
    let pods = from.pod_selector.clone().unwrap().match_labels.unwrap();
    assert_eq!(pods["app.kubernetes.io/component"], "gateway");
    let cidrs: Vec<_> = policies[2..]
        .iter()
        .map(|p| {
            p.egress.as_ref().unwrap()[0].to.as_ref().unwrap()[0]
                .ip_block
                .clone()
                .unwrap()
                .cidr
        })
        .collect();
    assert_eq!(cidrs, ["10.20.0.0/24", "192.0.2.0/24"]);

    // Reached directly, the profile's ingress source reaches the tool too.
    let (ws, open) = reached_directly();
    let direct = workspace_children(&ws, &profile(), &[&open], None, true, now());
    let ingress = direct.iter().find_map(|c| match c {
        Child::NetworkPolicy(p) if p.metadata.name.as_deref() == Some("study-allow-ingress") => {
            p.spec.clone()
        }
        _ => None,
    });
    let ingress = &ingress.expect("an ingress to the tool").ingress.unwrap()[0];
    assert_eq!(
        ingress.ports.as_ref().unwrap()[0].port,
        Some(IntOrString::Int(8888))
    );

    let mut closed = profile();
    closed.spec.network.ingress_from = None;
    let closed_names = names(&workspace_children(
        &ws,
        &closed,
        &[&open],
        None,
        true,
        now(),
    ));
    assert!(
        !closed_names.iter().any(|n| n.ends_with("allow-ingress")),
        "nobody may connect without ingressFrom"
    );
}

#[test]
fn the_workload_stops_when_suspended_or_expired_and_volumes_stay() {
    assert_eq!(replicas(&workspace_objects(&workspace(), &profile())), 1);
    let mut suspended = workspace();
    suspended.spec.suspend = true;
    let children = workspace_objects(&suspended, &profile());
    assert_eq!(replicas(&children), 0);
    assert!(names(&children).contains(&"PersistentVolumeClaim/study-home".to_owned()));

    let mut expiring = workspace();
    expiring.spec.expires_at = Some(Time(now()));
    assert_eq!(
        replicas(&workspace_objects(&expiring, &profile())),
        0,
        "expired at exactly expiresAt"
    );
    expiring.spec.expires_at = Some(Time(now() + jiff::SignedDuration::from_secs(1)));
    assert_eq!(replicas(&workspace_objects(&expiring, &profile())), 1);
}

#[test]
fn dataset_copies_are_clones_mounted_read_only() {
    let children = workspace_objects(&workspace(), &profile());
    let copy = children
        .iter()
        .find_map(|c| match c {
            Child::PersistentVolumeClaim(p)
                if p.metadata.name.as_deref() == Some("study-ds-cohort-3ef84d6045") =>
            {
                Some(p.clone())
            }
            _ => None,
        })
        .unwrap();
    let source = copy.spec.as_ref().unwrap().data_source.clone().unwrap();
    assert_eq!(
        (source.kind.as_str(), source.name.as_str()),
        ("PersistentVolumeClaim", "cohort-data")
    );
    assert_eq!(
        copy.spec.unwrap().storage_class_name.as_deref(),
        Some("csi-cinder-high-speed-gen2-luks")
    );

    let pod = pod(&children);
    let volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "dataset-0")
        .unwrap();
    assert_eq!(
        volume.persistent_volume_claim.as_ref().unwrap().read_only,
        Some(true)
    );
    let mount = pod.containers[0]
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "dataset-0")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        ("/data/cohort", Some(true))
    );
}

#[test]
fn nodeluks_secrets_come_before_their_claims_without_key_material() {
    let children = workspace_objects(&workspace(), &luks_profile());
    let order = names(&children);
    let position = |name: &str| {
        order
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{name} in {order:?}"))
    };
    assert!(
        position("Secret/research.study-home-luks") < position("PersistentVolumeClaim/study-home")
    );
    assert!(
        position("Secret/research.study-ds-cohort-3ef84d6045-luks")
            < position("PersistentVolumeClaim/study-ds-cohort-3ef84d6045")
    );
    for child in &children {
        if let Child::Secret(secret) = child {
            assert!(
                secret.data.is_none() && secret.string_data.is_none(),
                "no key material in built objects"
            );
            assert_eq!(secret.immutable, Some(true));
            assert_eq!(
                secret.metadata.namespace.as_deref(),
                Some("hygie-keys"),
                "keys live out of the study's namespace"
            );
            assert_eq!(
                secret.annotations()[labels::CLAIM_NAMESPACE],
                "research",
                "a key names the namespace of the claim it opens"
            );
        }
    }
    let source = |name: &str| {
        children
            .iter()
            .find(|c| c.name() == name)
            .unwrap()
            .meta()
            .annotations
            .clone()
            .unwrap()[labels::PASSPHRASE_SOURCE]
            .clone()
    };
    assert_eq!(
        source("research.study-home-luks"),
        labels::PASSPHRASE_GENERATED
    );
    assert_eq!(
        source("research.study-ds-cohort-3ef84d6045-luks"),
        "research.cohort-data-luks",
        "a clone opens with the dataset's key"
    );

    let provider_managed = names(&workspace_objects(&workspace(), &profile()));
    assert!(!provider_managed.iter().any(|n| n.starts_with("Secret/")));
}

fn role(children: &[Child], name: &str) -> k8s_openapi::api::rbac::v1::Role {
    children
        .iter()
        .find_map(|c| match c {
            Child::Role(r) if r.metadata.name.as_deref() == Some(name) => Some(r.clone()),
            _ => None,
        })
        .unwrap()
}

fn verbs(role: &k8s_openapi::api::rbac::v1::Role, resource: &str) -> Vec<String> {
    role.rules
        .iter()
        .flatten()
        .filter(|r| r.resources.as_ref().unwrap()[0] == resource)
        .flat_map(|r| r.verbs.clone())
        .collect()
}

/// A workspace mounting open data its Dataset lets members reach directly, recorded so.
fn reached_directly() -> (Workspace, Dataset) {
    let mut open = dataset();
    open.spec.classification = crate::api::Classification::Open;
    open.spec.access = crate::api::Access::Direct;
    let mut ws = workspace();
    ws.status = serde_json::from_value(serde_json::json!({
        "access": "Direct",
        "lineage": [{"name": "cohort", "classification": "Open", "access": "Direct"}]
    }))
    .unwrap();
    (ws, open)
}

#[test]
fn members_of_health_data_may_only_connect_through_the_screen() {
    let children = workspace_objects(&workspace(), &profile());
    for name in ["study-owner", "study-analyst"] {
        let role = role(&children, name);
        for resource in DIRECT_RESOURCES {
            assert!(verbs(&role, resource).is_empty(), "{name}: {resource}");
        }
        assert!(verbs(&role, "workspaces").contains(&CONNECT_VERB.to_owned()));
    }
    // Open data the Dataset allows directly, but not recorded yet in the status: still a screen.
    let (mut ws, open) = reached_directly();
    ws.status = None;
    let children = workspace_children(&ws, &profile(), &[&open], None, true, now());
    assert!(verbs(&role(&children, "study-owner"), "pods/exec").is_empty());
    // Once mounted something seen through a screen, never direct again.
    let (mut ws, open) = reached_directly();
    ws.status.as_mut().unwrap().lineage[0].access = crate::api::Access::Screen;
    let children = workspace_children(&ws, &profile(), &[&open], None, true, now());
    assert!(verbs(&role(&children, "study-analyst"), "pods/portforward").is_empty());
}

#[test]
fn members_get_namespaced_roles_limited_to_their_workspace() {
    let (ws, open) = reached_directly();
    let children = workspace_children(&ws, &profile(), &[&open], None, true, now());
    let owner = role(&children, "study-owner");
    let analyst = role(&children, "study-analyst");
    assert!(verbs(&owner, "pods/exec").contains(&"create".to_owned()));
    assert!(
        verbs(&analyst, "pods/exec").is_empty(),
        "analysts cannot open a shell"
    );
    assert!(verbs(&analyst, "pods/portforward").contains(&"create".to_owned()));
    let named = owner.rules.iter().flatten();
    for rule in named.filter(|r| r.resources != Some(vec!["sessions".into()])) {
        assert!(
            rule.resource_names
                .as_ref()
                .is_some_and(|n| n == &["study"] || n == &["study-0"]),
            "{rule:?}"
        );
        assert!(!rule.verbs.iter().any(|v| v == "*"));
    }
    let binding = children
        .iter()
        .find_map(|c| match c {
            Child::RoleBinding(b) if b.metadata.name.as_deref() == Some("study-analyst") => {
                Some(b.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.subjects.unwrap()[0].kind, "Group");
}

#[test]
fn the_pod_is_pinned_to_the_profile_regions_and_scheduling() {
    let mut p = profile();
    p.spec
        .scheduling
        .node_selector
        .insert("nodepool".into(), "hds".into());
    let pod = pod(&workspace_objects(&workspace(), &p));
    let term = &pod
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms[0];
    let expression = &term.match_expressions.as_ref().unwrap()[0];
    assert_eq!(expression.key, "topology.kubernetes.io/region");
    assert_eq!(
        expression.values.as_deref(),
        Some(&["GRA7".to_owned(), "GRA9".to_owned()][..])
    );
    assert_eq!(pod.node_selector.unwrap()["nodepool"], "hds");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(
        pod.containers[0]
            .security_context
            .as_ref()
            .unwrap()
            .read_only_root_filesystem,
        Some(true)
    );
}

fn with_s3(mut ds: Dataset) -> Dataset {
    ds.spec.source = Some(
        serde_json::from_value(serde_json::json!({"s3": {
            "endpoint": "https://s3.example.fr", "bucket": "exports", "prefix": "cohort/",
            "credentialsSecretRef": {"name": "s3"},
            "egress": [{"cidr": "192.0.2.0/24", "ports": [{"port": 443}]}]
        }}))
        .unwrap(),
    );
    ds
}

#[test]
fn a_dataset_becomes_its_encrypted_claim_and_for_s3_an_isolated_import_job() {
    assert_eq!(
        names(&dataset_children(&dataset(), &profile())),
        ["PersistentVolumeClaim/cohort-data"]
    );
    assert_eq!(
        names(&dataset_children(&dataset(), &luks_profile())),
        [
            "Secret/research.cohort-data-luks",
            "PersistentVolumeClaim/cohort-data"
        ]
    );
    let children = dataset_children(&with_s3(dataset()), &profile());
    assert_eq!(
        names(&children),
        [
            "PersistentVolumeClaim/cohort-data",
            "ServiceAccount/cohort-import",
            "NetworkPolicy/cohort-import-deny-all",
            "NetworkPolicy/cohort-import-allow-dns",
            "NetworkPolicy/cohort-import-egress-0",
            "Job/cohort-import",
        ]
    );
    let Some(Child::Job(job)) = children.last() else {
        panic!("a Job")
    };
    let pod = job.spec.clone().unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    assert!(container.image.as_deref().unwrap().contains("@sha256:"));
    assert!(
        container
            .env
            .iter()
            .flatten()
            .all(|e| e.value_from.is_none()),
        "credentials are files, not variables"
    );
    let credentials = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "credentials")
        .unwrap();
    assert_eq!(
        credentials.secret.unwrap().secret_name.as_deref(),
        Some("s3")
    );
}

#[test]
fn a_claim_source_is_cloned_into_the_dataset_volume() {
    let mut ds = dataset();
    ds.spec.source = Some(
        serde_json::from_value(
            serde_json::json!({"persistentVolumeClaim": {"claimName": "export"}}),
        )
        .unwrap(),
    );
    let children = dataset_children(&ds, &luks_profile());
    let Child::PersistentVolumeClaim(claim) = &children[1] else {
        panic!("{:?}", names(&children))
    };
    assert_eq!(
        claim
            .spec
            .as_ref()
            .unwrap()
            .data_source
            .as_ref()
            .unwrap()
            .name,
        "export"
    );
    assert_eq!(
        children[0].meta().annotations.as_ref().unwrap()[labels::PASSPHRASE_SOURCE],
        "research.export-luks"
    );
}

#[test]
fn a_workspace_of_health_data_resolves_no_names_and_keeps_tmp_in_memory() {
    let children = workspace_objects(&workspace(), &profile());
    let spec = pod(&children);
    assert_eq!(spec.dns_policy.as_deref(), Some("None"));
    assert_eq!(
        spec.dns_config.unwrap().nameservers.unwrap(),
        ["127.0.0.1"],
        "nothing answers there"
    );
    let tmp = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == pod::TMP_VOLUME)
        .unwrap();
    assert_eq!(tmp.empty_dir.unwrap().medium.as_deref(), Some("Memory"));

    // Open data only: the cluster's resolver, through -allow-dns.
    let mut open = dataset();
    open.spec.classification = crate::api::Classification::Open;
    let children = workspace_children(&workspace(), &profile(), &[&open], None, true, now());
    assert!(names(&children).contains(&"NetworkPolicy/study-allow-dns".to_owned()));
    assert_eq!(pod(&children).dns_policy, None);

    // Once it has mounted health data, never again.
    let mut once = workspace();
    once.status = serde_json::from_value(serde_json::json!({
        "lineage": [{"name": "registry", "classification": "Identifying"}]
    }))
    .unwrap();
    let children = workspace_children(&once, &profile(), &[&open], None, true, now());
    assert!(!names(&children).contains(&"NetworkPolicy/study-allow-dns".to_owned()));
}

#[test]
fn a_workspace_of_health_data_resolves_through_hygies_resolver_when_its_profile_has_one() {
    let mut with_resolver = profile();
    with_resolver.spec.network.resolver = Some(
        serde_json::from_value(serde_json::json!({
            "address": "10.96.0.53",
            "names": [{"name": "pypi.mirror.chu-exemple.fr", "address": "10.20.0.10"}],
        }))
        .unwrap(),
    );
    let children = workspace_objects(&workspace(), &with_resolver);
    let spec = pod(&children);
    assert_eq!(spec.dns_policy.as_deref(), Some("None"));
    let config = spec.dns_config.unwrap();
    assert_eq!(config.nameservers.unwrap(), ["10.96.0.53"]);
    assert_eq!(config.searches, None, "a name is looked up as written");
    let dns = children
        .iter()
        .find_map(|c| match c {
            Child::NetworkPolicy(p) if p.metadata.name.as_deref() == Some("study-allow-dns") => {
                p.spec.clone()
            }
            _ => None,
        })
        .expect("a policy to the resolver");
    let egress = dns.egress.unwrap();
    let peer = &egress[0].to.as_ref().unwrap()[0];
    assert_eq!(
        peer.namespace_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["kubernetes.io/metadata.name"],
        "hygie-system",
        "Hygie's resolver, never the cluster's"
    );
    assert_eq!(
        peer.pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["app.kubernetes.io/component"],
        "resolver"
    );
}

#[test]
fn the_desktop_credential_is_a_secret_mounted_read_only() {
    let ds = dataset();
    let children = workspace_children(
        &workspace(),
        &profile(),
        &[&ds],
        Some("pa55word"),
        true,
        now(),
    );
    let secret = children
        .iter()
        .find_map(|c| match c {
            Child::Secret(s) if s.metadata.name.as_deref() == Some("study-desktop") => Some(s),
            _ => None,
        })
        .expect("the desktop's credential");
    assert_eq!(secret.data.as_ref().unwrap()["password"].0, b"pa55word");
    let spec = pod(&children);
    let mount = spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "desktop")
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let env = spec.containers[0].env.clone().unwrap();
    assert!(env.iter().any(|e| e.name == "HYGIE_DESKTOP_PASSWORD_FILE"
        && e.value.as_deref() == Some("/var/run/hygie/desktop/password")));
    assert!(
        !names(&workspace_objects(&workspace(), &profile()))
            .contains(&"Secret/study-desktop".into()),
        "without a key, no credential"
    );
}
