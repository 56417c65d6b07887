//! The chart's RBAC is sufficient (every end-to-end test runs the operator as the chart's
//! ServiceAccount with nothing more) and needed: here a whole lifecycle runs, an S3 import
//! included, and every right the chart grants shows up in the API server's audit log, but for
//! the few that Kubernetes demands for another reason, each named below with that reason.

use std::{collections::BTreeSet, time::Duration};

use hygie::{api::Dataset, bundle::Bundle};
use hygie_tests::{
    cluster::{
        TestNamespace, bind_a_retained_volume, client, delete_and_wait, install_crds,
        kubectl_with_input, wait_for,
    },
    operator::{OPERATOR_USER, Operator, one_at_a_time, requests_by},
    repo_root,
};
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::json;

/// Rights granted for a reason other than a request of the operator's own.
const NOT_REQUESTED: [(&str, &str, &str); 8] = [
    // Verbs RBAC checks when a Role with rights the operator does not hold is written and
    // bound; no request carries them (the admission policy hygie-operator-grants bounds them).
    ("rbac.authorization.k8s.io", "roles", "escalate"),
    ("rbac.authorization.k8s.io", "roles", "bind"),
    // Setting blockOwnerDeletion on a child needs it where OwnerReferencesPermissionEnforcement
    // is on (OpenShift, hardened clusters); this control plane does not enable it.
    ("hygie.io", "workspaces/finalizers", "update"),
    ("hygie.io", "datasets/finalizers", "update"),
    ("hygie.io", "exportrequests/finalizers", "update"),
    // The audit sink's spool, used only while an audit store does not take records: this
    // control plane has no store; the node's test
    // `records_the_audit_store_does_not_take_wait_in_the_spool_through_a_crash` uses each of
    // them as the chart's identity.
    ("", "configmaps", "create"),
    ("", "configmaps", "list"),
    ("", "configmaps", "delete"),
];

fn granted() -> BTreeSet<(String, String, String)> {
    let chart =
        std::fs::read_to_string(repo_root().join("charts/hygie/templates/rbac.yaml")).unwrap();
    let mut rights = BTreeSet::new();
    let (mut groups, mut resources): (Vec<String>, Vec<String>) = (vec![], vec![]);
    let list = |line: &str| -> Vec<String> {
        let inside = line
            .split_once('[')
            .and_then(|(_, r)| r.rsplit_once(']'))
            .map(|(l, _)| l)
            .unwrap_or_default();
        inside
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_owned())
            .filter(|s| !s.is_empty() || inside.contains("\"\""))
            .collect()
    };
    for line in chart.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("- apiGroups:") {
            groups = list(rest);
        } else if let Some(rest) = line.strip_prefix("resources:") {
            resources = list(rest);
        } else if let Some(rest) = line.strip_prefix("verbs:") {
            for group in &groups {
                for resource in &resources {
                    for verb in list(rest) {
                        rights.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    rights
}

/// An admission policy's binding deleted for one test, installed again (with crds/) after it.
struct Unbound;

impl Unbound {
    fn policy(name: &str) -> Unbound {
        let out = kubectl_with_input(
            &["delete", "validatingadmissionpolicybinding", name, "--wait"],
            None,
        );
        assert!(out.success, "{}", out.stderr);
        Unbound
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        install_crds();
    }
}

#[tokio::test]
async fn every_right_the_chart_grants_is_used() {
    let _turn = one_at_a_time().await;
    install_crds();
    // Without the never-adopts policy's binding, the operator reads each new child's name
    // before applying it: the rights it holds for that are used too.
    let _unbound = Unbound::policy(hygie::admission::NEVER_ADOPTS_POLICY);
    let client = client().await;
    let namespace = TestNamespace::create(&client, "rbac").await;
    let since = jiff::Timestamp::now();
    let _operator = Operator::start("rbac", "hygie-rbac", 3600);

    let mut bundle = Bundle::load(&[repo_root().join("tests/fixtures/e2e")]).unwrap();
    let profile = bundle.inventory.profiles.values().next().unwrap().clone();
    let mut dataset: Dataset = bundle.inventory.datasets.values().next().unwrap().clone();
    dataset.metadata.namespace = Some(namespace.name.clone());
    dataset.spec.retention.on_delete = hygie::api::dataset::OnDelete::Shred;
    dataset.spec.source = Some(
        serde_json::from_value(json!({"s3": {
            "endpoint": "https://s3.gra.io.cloud.ovh.net", "bucket": "exports", "prefix": "cohort/",
            "credentialsSecretRef": {"name": "cohort-s3"},
            "egress": [{"cidr": "141.95.161.0/24", "ports": [{"port": 443}]}]
        }}))
        .unwrap(),
    );
    let mut workspace = bundle.workspaces.remove(0);
    workspace.metadata.namespace = Some(namespace.name.clone());
    // A dataset to retain, and a profile of its own whose status is new.
    let mut kept = bundle.inventory.datasets.values().next().unwrap().clone();
    kept.metadata.name = Some("kept".into());
    kept.metadata.namespace = Some(namespace.name.clone());
    let mut fresh = profile.clone();
    fresh.metadata.name = Some(format!("rbac-{}", namespace.name));
    // An export request to a destination the profile does not declare: refused, in its status.
    let request = json!({
        "apiVersion": "hygie.io/v1alpha1", "kind": "ExportRequest",
        "metadata": {"name": "table-1", "namespace": namespace.name},
        "spec": {"workspace": "study", "files": ["t.csv"], "justification": "counts",
                 "outputs": ["Table"], "destination": "nowhere", "requester": "hygie-test-admin"}
    });
    // The platform team reads the namespace's pods: the operator asks the API server who they
    // are (HYG020), and lets the workspace run.
    let platform_view = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "platform-view", "namespace": namespace.name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    });
    let items = json!([
        platform_view,
        profile,
        fresh,
        dataset,
        kept,
        workspace,
        request
    ]);
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out = kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&list.to_string()),
    );
    assert!(out.success, "{}", out.stderr);

    // The import Job runs (as a kubelet would say) and reports its byte count and checksum.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace.name);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace.name);
    wait_for(
        &jobs,
        "cohort-import",
        "created",
        Duration::from_secs(60),
        |j: Option<&Job>| j.is_some(),
    )
    .await;
    let mut pod_name = None;
    for _ in 0..300 {
        let listed = pods
            .list(&ListParams::default().labels("job-name=cohort-import"))
            .await
            .unwrap();
        if let Some(pod) = listed.items.first() {
            pod_name = Some(pod.name_any());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pod_name = pod_name.expect("the Job controller creates the import pod");
    let now = jiff::Timestamp::now().to_string();
    let report = r#"{"bytes":1048576,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#;
    let finished = json!({"status": {"phase": "Succeeded", "containerStatuses": [{
        "name": "import", "ready": false, "restartCount": 0, "image": "rclone", "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": report,
                                 "startedAt": now, "finishedAt": now}}}]}});
    pods.patch_status(&pod_name, &PatchParams::default(), &Patch::Merge(finished))
        .await
        .unwrap();
    let datasets: Api<Dataset> = Api::namespaced(client.clone(), &namespace.name);
    wait_for(
        &datasets,
        "cohort",
        "import recorded",
        Duration::from_secs(90),
        |d: Option<&Dataset>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.imported_checksum.is_some())
        },
    )
    .await;
    let status = datasets.get("cohort").await.unwrap().status.unwrap();
    assert_eq!(status.imported_bytes, Some(1048576));
    assert_eq!(
        status.imported_checksum.as_deref(),
        Some("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    );

    let requests: Api<hygie::api::ExportRequest> = Api::namespaced(client.clone(), &namespace.name);
    wait_for(
        &requests,
        "table-1",
        "refused",
        Duration::from_secs(60),
        |r: Option<&hygie::api::ExportRequest>| {
            r.and_then(|r| r.status.as_ref()).and_then(|s| s.phase)
                == Some(hygie::api::export::ExportPhase::Failed)
        },
    )
    .await;

    // The same refusal twice: the second Event of a kind is a patch of the first (its count).
    let workspaces: Api<hygie::api::Workspace> = Api::namespaced(client.clone(), &namespace.name);
    for egress in ["0.0.0.0/0", "10.20.0.0/24", "0.0.0.0/0", "10.20.0.0/24"] {
        let patch = json!({"spec": {"egress": [{"cidr": egress, "ports": [{"port": 443}]}]}});
        workspaces
            .patch("study", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
        let blocked = egress == "0.0.0.0/0";
        wait_for(
            &workspaces,
            "study",
            "the rule applied",
            Duration::from_secs(60),
            move |w: Option<&hygie::api::Workspace>| {
                let phase = w.and_then(|w| w.status.as_ref()).and_then(|s| s.phase);
                (phase == Some(hygie::api::workspace::WorkspacePhase::Blocked)) == blocked
            },
        )
        .await;
    }

    // A change, then deletion: pruning, ordered removal and shredding.
    workspaces
        .patch(
            "study",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"egress": null}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    bind_a_retained_volume(&client, &namespace.name, "cohort-data").await;
    delete_and_wait(&workspaces, "study", Duration::from_secs(60)).await;
    for name in ["cohort", "kept"] {
        delete_and_wait(&datasets, name, Duration::from_secs(60)).await;
    }
    let profiles: Api<hygie::api::HostingProfile> = Api::all(client.clone());
    let fresh = format!("rbac-{}", namespace.name);
    profiles
        .delete(&fresh, &DeleteParams::default())
        .await
        .unwrap();

    let mut used: BTreeSet<(String, String, String)> = requests_by(OPERATOR_USER, since)
        .into_iter()
        .map(|r| {
            (
                r.group.clone(),
                r.resource_with_subresource(),
                r.verb.clone(),
            )
        })
        .collect();
    // A server-side apply that creates its object is authorized as `create` too, and audited
    // as a patch only.
    let applied: Vec<_> = used
        .iter()
        .filter(|(_, _, verb)| verb == "patch")
        .cloned()
        .collect();
    used.extend(
        applied
            .into_iter()
            .map(|(group, resource, _)| (group, resource, "create".to_owned())),
    );
    let exempt: BTreeSet<(String, String, String)> = NOT_REQUESTED
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    let unused: Vec<_> = granted()
        .into_iter()
        .filter(|right| !used.contains(right) && !exempt.contains(right))
        .collect();
    assert!(
        unused.is_empty(),
        "the chart grants rights the operator never used: {unused:#?}\nused: {used:#?}"
    );
}

#[tokio::test]
async fn the_operator_may_grant_only_what_workspace_members_get() {
    let _turn = one_at_a_time().await;
    install_crds();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "grants").await;
    // Installs the chart's RBAC, as the other tests run the operator with.
    let _operator = Operator::start("grants", "hygie-grants", 3600);
    let as_operator = format!("--as={OPERATOR_USER}");
    let create = |object: serde_json::Value| {
        kubectl_with_input(
            &[&as_operator, "create", "--dry-run=server", "-f", "-"],
            Some(&object.to_string()),
        )
    };
    let role = |name: &str, resources: &[&str], verbs: &[&str], names: Option<&[&str]>| {
        let mut rule = json!({"apiGroups": [""], "resources": resources, "verbs": verbs});
        if let Some(names) = names {
            rule["resourceNames"] = json!(names);
        }
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": name, "namespace": namespace.name,
                            "labels": {"app.kubernetes.io/managed-by": "hygie"}},
               "rules": [rule]})
    };
    let member = create(role(
        "study-owner",
        &["pods/exec"],
        &["create"],
        Some(&["study-0"]),
    ));
    assert!(member.success, "a member's Role: {}", member.stderr);
    for (what, object) in [
        (
            "Secrets",
            role("study-owner", &["secrets"], &["get"], Some(&["x"])),
        ),
        (
            "exec on every pod",
            role("study-owner", &["pods/exec"], &["create"], None),
        ),
        (
            "delete",
            role("study-owner", &["pods"], &["delete"], Some(&["study-0"])),
        ),
        ("a Role not labelled as Hygie's", {
            let mut unlabelled = role(
                "study-owner",
                &["pods/exec"],
                &["create"],
                Some(&["study-0"]),
            );
            unlabelled["metadata"]["labels"] = json!({});
            unlabelled
        }),
    ] {
        let out = create(object);
        assert!(!out.success, "{what} may not be granted");
        assert!(
            out.stderr.contains("hygie-operator-grants") || out.stderr.contains("may only grant"),
            "{what}: {}",
            out.stderr
        );
    }
    let binding = |role_kind: &str, role_name: &str, subject: serde_json::Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "study-owner", "namespace": namespace.name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
               "subjects": [subject]})
    };
    let alice = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"});
    for (what, object) in [
        (
            "a ClusterRole",
            binding("ClusterRole", "cluster-admin", alice.clone()),
        ),
        ("another Role", binding("Role", "admin", alice.clone())),
        (
            "a ServiceAccount",
            binding(
                "Role",
                "study-owner",
                json!({"kind": "ServiceAccount", "name": "default", "namespace": namespace.name}),
            ),
        ),
    ] {
        let out = create(object);
        assert!(!out.success, "binding {what} is refused");
    }
}
