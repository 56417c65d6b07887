//! What an ExportRequest becomes at each stage.

use k8s_openapi::{api::core::v1::PodSpec, apimachinery::pkg::util::intstr::IntOrString};

use super::*;
use crate::build::DESKTOP_PORT;
use crate::fixtures::{export_request, luks_profile, workspace};

fn destination() -> ExportDestination {
    serde_json::from_value(serde_json::json!({
        "name": "results",
        "s3": {
            "endpoint": "https://s3.gra.example.fr",
            "bucket": "publications",
            "prefix": "/chu/",
            "region": "GRA9",
            "credentialsSecretRef": {"name": "publications-writer"},
            "egress": [{"cidr": "192.0.2.10/32", "ports": [{"port": 443}]}]
        }
    }))
    .unwrap()
}

fn staged() -> Vec<StagedFile> {
    vec![StagedFile {
        path: "tables/readmissions-by-age.csv".into(),
        size: 120,
        sha256: "ab".repeat(32),
    }]
}

fn children(stage: ExportStage) -> Vec<Child> {
    children_with(stage, &luks_profile(), None)
}

fn children_with(
    stage: ExportStage,
    profile: &HostingProfile,
    desktop_password: Option<&str>,
) -> Vec<Child> {
    let (request, workspace) = (export_request(), workspace());
    let reviewers: Vec<Reviewer> = serde_json::from_value(serde_json::json!([
        {"kind": "User", "name": "bob"},
        {"kind": "Group", "name": "data-stewards"}
    ]))
    .unwrap();
    let (destination, staged) = (destination(), staged());
    let inputs = ExportInputs {
        request: &request,
        workspace: &workspace,
        profile,
        reviewers: &reviewers,
        destination: Some(&destination),
        staged: &staged,
        desktop_password,
    };
    export_children(&inputs, stage)
}

fn names(children: &[Child]) -> Vec<String> {
    children
        .iter()
        .map(|c| format!("{}/{}", c.kind(), c.name()))
        .collect()
}

fn pod_of(children: &[Child]) -> PodSpec {
    children
        .iter()
        .find_map(|c| match c {
            Child::Job(job) => job.spec.clone()?.template.spec,
            Child::StatefulSet(set) => set.spec.clone()?.template.spec,
            _ => None,
        })
        .expect("a workload")
}

fn egress_cidrs(children: &[Child]) -> Vec<String> {
    children
        .iter()
        .filter_map(|c| match c {
            Child::NetworkPolicy(policy) => policy.spec.clone()?.egress,
            _ => None,
        })
        .flatten()
        .flat_map(|rule| rule.to.unwrap_or_default())
        .filter_map(|peer| Some(peer.ip_block?.cidr))
        .collect()
}

#[test]
fn staging_clones_the_outbox_and_copies_into_a_new_volume_with_a_key_of_its_own() {
    let children = children(ExportStage::Staging);
    assert_eq!(
        names(&children),
        [
            "ServiceAccount/table-1",
            "NetworkPolicy/table-1-deny-all",
            "Secret/research.table-1-snapshot-luks",
            "PersistentVolumeClaim/table-1-snapshot",
            "Secret/research.table-1-staged-luks",
            "PersistentVolumeClaim/table-1-staged",
            "Job/table-1-stage",
        ]
    );
    let claim = |name: &str| {
        children.iter().find_map(|c| match c {
            Child::PersistentVolumeClaim(claim) if claim.name_any() == name => claim.spec.clone(),
            _ => None,
        })
    };
    let snapshot = claim("table-1-snapshot").unwrap();
    assert_eq!(snapshot.data_source.unwrap().name, "study-outbox");
    assert!(claim("table-1-staged").unwrap().data_source.is_none());
    let source = |name: &str| {
        children.iter().find_map(|c| match c {
            Child::Secret(secret) if secret.name_any() == name => secret
                .annotations()
                .get(super::super::labels::PASSPHRASE_SOURCE)
                .cloned(),
            _ => None,
        })
    };
    assert_eq!(
        source("research.table-1-snapshot-luks").as_deref(),
        Some("research.study-outbox-luks")
    );
    assert_eq!(
        source("research.table-1-staged-luks").as_deref(),
        Some("generated")
    );

    let pod = pod_of(&children);
    let container = &pod.containers[0];
    let command = container.command.clone().unwrap();
    assert_eq!(
        command[4], "tables/readmissions-by-age.csv",
        "the files are arguments, never script text"
    );
    let mounts: Vec<(String, Option<bool>)> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.clone(), m.read_only))
        .collect();
    assert!(mounts.contains(&("/snapshot".into(), Some(true))));
    assert!(mounts.contains(&("/staged".into(), None)));
    assert!(
        egress_cidrs(&children).is_empty(),
        "staging reaches nothing"
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
}

#[test]
fn the_review_pod_mounts_the_staged_files_read_only_and_reviewers_may_only_connect_to_it() {
    let children = children(ExportStage::Review);
    let listed = names(&children);
    assert!(!listed.iter().any(|n| n.contains("snapshot")), "{listed:?}");
    assert!(listed.contains(&"StatefulSet/table-1-review".to_owned()));
    let pod = pod_of(&children);
    assert!(mounts_read_only(&pod.containers[0], "/staged"));
    assert!(
        egress_cidrs(&children).is_empty(),
        "the review pod reaches nothing"
    );

    let role = children.iter().find_map(|c| match c {
        Child::Role(role) => Some(role.clone()),
        _ => None,
    });
    let rules = role.unwrap().rules.unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!(rules[1].resources, Some(vec!["sessions".into()]));
    assert_eq!(rules[0].resources, Some(vec!["exportrequests".into()]));
    assert_eq!(rules[0].resource_names, Some(vec!["table-1".into()]));
    assert_eq!(
        rules[0].verbs,
        [crate::build::CONNECT_VERB],
        "no right to the pod"
    );
    let binding = children.iter().find_map(|c| match c {
        Child::RoleBinding(binding) => binding.subjects.clone(),
        _ => None,
    });
    let subjects: Vec<(String, String)> = binding
        .unwrap()
        .into_iter()
        .map(|s| (s.kind, s.name))
        .collect();
    assert_eq!(
        subjects,
        [
            ("User".into(), "bob".into()),
            ("Group".into(), "data-stewards".into())
        ]
    );
}

/// The ports of `children`'s NetworkPolicy that admits traffic in, and from whom.
fn ingress(children: &[Child]) -> Vec<(String, i32)> {
    children
        .iter()
        .filter_map(|c| match c {
            Child::NetworkPolicy(policy) => Some((c.name(), policy.spec.clone()?.ingress?)),
            _ => None,
        })
        .flat_map(|(name, rules)| {
            rules.into_iter().flat_map(move |rule| {
                let name = name.clone();
                rule.ports.unwrap_or_default().into_iter().map(move |p| {
                    let port = match p.port {
                        Some(IntOrString::Int(port)) => port,
                        other => panic!("{other:?}"),
                    };
                    (name.clone(), port)
                })
            })
        })
        .collect()
}

#[test]
fn reviewers_see_the_staged_files_on_the_profiles_desktop_which_only_the_gateway_reaches() {
    let mut profile = luks_profile();
    let image = format!(
        "registry.example.fr/research/review-desktop@sha256:{}",
        "5".repeat(64)
    );
    profile.spec.images.review = Some(image.clone());

    let children = children_with(ExportStage::Review, &profile, Some("password"));
    let pod = pod_of(&children);
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(image.as_str()));
    assert_eq!(container.command, None, "the desktop image's own command");
    assert!(mounts_read_only(container, "/staged"));
    assert!(mounts_read_only(container, desktop::CREDENTIAL));
    let secret = children.iter().find_map(|c| match c {
        Child::Secret(secret) if c.name() == "table-1-review-desktop" => Some(secret.clone()),
        _ => None,
    });
    assert_eq!(
        secret.expect("the desktop's credential").data.unwrap()["password"].0,
        b"password"
    );
    assert_eq!(
        ingress(&children),
        [("table-1-allow-desktop".to_owned(), DESKTOP_PORT)],
        "the desktop's port, to the gateway, and nothing else"
    );
    assert!(
        egress_cidrs(&children).is_empty(),
        "the review desktop reaches nothing"
    );

    // Without the gateway's key there is nobody to open it: no desktop, no way in.
    let without_key = children_with(ExportStage::Review, &profile, None);
    assert_eq!(
        pod_of(&without_key).containers[0].image.as_deref(),
        Some(luks_profile().spec.images.importer.unwrap().as_str())
    );
    assert!(ingress(&without_key).is_empty());
    // Nor before the files are staged.
    assert!(
        ingress(&children_with(
            ExportStage::Staging,
            &profile,
            Some("password")
        ))
        .is_empty()
    );
}

#[test]
fn the_release_reaches_only_the_destination_with_the_reviewed_digests() {
    let children = children(ExportStage::Release);
    assert_eq!(egress_cidrs(&children), ["192.0.2.10/32"]);
    assert!(names(&children).contains(&"NetworkPolicy/table-1-allow-dns".to_owned()));
    let pod = pod_of(&children);
    let container = &pod.containers[0];
    let args = &container.command.clone().unwrap()[4..];
    assert_eq!(
        args,
        ["ab".repeat(32), "tables/readmissions-by-age.csv".into()]
    );
    let env: Vec<(String, String)> = container
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert!(env.contains(&("KEY_PREFIX".into(), "chu/research/table-1/".into())));
    assert!(mounts_read_only(container, "/staged"));
    assert!(
        !names(&children)
            .iter()
            .any(|n| n.starts_with("StatefulSet/")),
        "no review pod while releasing"
    );
}

#[test]
fn released_objects_are_keyed_by_namespace_and_request_under_the_prefix() {
    assert_eq!(release_key_prefix("", "ns", "r"), "ns/r/");
    assert_eq!(release_key_prefix("/out/", "ns", "r"), "out/ns/r/");
}

/// Whether `container` mounts something at `path`, read-only.
fn mounts_read_only(container: &k8s_openapi::api::core::v1::Container, path: &str) -> bool {
    container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path == path && m.read_only == Some(true))
}
