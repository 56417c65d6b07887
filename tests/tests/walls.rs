//! The walls around a workspace, on the test control plane, against mallory holding
//! Kubernetes' own `edit` ClusterRole in the namespace (her own certificate): the API server
//! refuses her a pod or a workload that mounts a claim Hygie manages, a claim that clones one,
//! anything that wears Hygie's labels, a change to a Hygie pod, and a network policy that could
//! open a Hygie pod's network; holding `admin` too, a Role granting exec or logs and any
//! RoleBinding; holding both, she reads no passphrase, since the keys live in a namespace of
//! their own. It admits what leaves Hygie's objects alone. The platform team (the cluster's
//! admin) is not walled in.

use hygie_tests::{
    cluster::{
        KEYS_NAMESPACE, TestNamespace, client, install_crds, kubectl_ok, kubectl_with_input,
    },
    users::{create_as, kubectl_as},
};
use serde_json::{Value, json};

fn claim(name: &str, hygie: bool) -> Value {
    let labels = match hygie {
        true => json!({"app.kubernetes.io/managed-by": "hygie"}),
        false => json!({}),
    };
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": name, "labels": labels},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
}

fn pod(name: &str, labels: Value, claim: Option<&str>) -> Value {
    let volumes = match claim {
        Some(claim) => json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]),
        None => json!([]),
    };
    // As Pod Security `restricted` admits it, so that only the walls refuse it.
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels},
           "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "registry.example.fr/tool@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
                    "volumes": volumes}})
}

fn network_policy(name: &str, selector: Value, egress: Option<Value>) -> Value {
    let mut spec = json!({"podSelector": selector, "policyTypes": ["Egress"]});
    if let Some(egress) = egress {
        spec["egress"] = egress;
    }
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name}, "spec": spec})
}

fn role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name}, "rules": rules})
}

fn role_binding(name: &str, kind: &str, role: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}]})
}

/// Creates `object` as mallory and asserts the API server refuses it by `policy`.
fn refused(ns: &str, object: &Value, policy: &str, why: &str) {
    let out = create_as("mallory", ns, object);
    assert!(!out.success, "mallory was let {why}");
    assert!(
        out.stderr.contains(policy),
        "{why}: refused by {policy}, got {}",
        out.stderr
    );
}

/// Applies `object` as the cluster's admin, the platform team, which must succeed.
fn as_platform_team(ns: &str, object: &Value) {
    let out = kubectl_with_input(&["apply", "-n", ns, "-f", "-"], Some(&object.to_string()));
    assert!(out.success, "{}", out.stderr);
}

fn admitted(ns: &str, object: &Value, what: &str) {
    let out = create_as("mallory", ns, object);
    assert!(out.success, "{what}: {}", out.stderr);
}

#[tokio::test]
async fn a_namespace_editor_cannot_mount_copy_wear_or_open_what_is_hygies() {
    install_crds();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "walls").await;
    let ns = namespace.name.as_str();
    // What Hygie made in the namespace: a workspace's home. And a claim of somebody else's.
    as_platform_team(ns, &claim("study-home", true));
    as_platform_team(ns, &claim("scratch", false));
    kubectl_ok(&[
        "create",
        "rolebinding",
        "-n",
        ns,
        "mallory-edit",
        "--clusterrole=edit",
        "--user=mallory",
    ]);

    let claims = "hygie-claims-guarded";
    refused(
        ns,
        &pod("reader", json!({}), Some("study-home")),
        claims,
        "mount a Hygie claim",
    );
    let mut clone = claim("copy", false);
    clone["spec"]["dataSource"] = json!({"kind": "PersistentVolumeClaim", "name": "study-home"});
    refused(ns, &clone, claims, "clone a Hygie claim");
    let mut clone_ref = claim("copy-ref", false);
    clone_ref["spec"]["dataSourceRef"] =
        json!({"kind": "PersistentVolumeClaim", "name": "study-home"});
    refused(
        ns,
        &clone_ref,
        claims,
        "clone a Hygie claim by dataSourceRef",
    );
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reader"},
        "spec": {"selector": {"matchLabels": {"app": "reader"}},
                 "template": {"metadata": {"labels": {"app": "reader"}},
                              "spec": pod("x", json!({}), Some("study-home"))["spec"].clone()}}});
    refused(
        ns,
        &deployment,
        claims,
        "mount a Hygie claim through a Deployment",
    );
    let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "reader"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": pod("x", json!({}), None)["spec"]["securityContext"].clone(),
            "containers": pod("x", json!({}), None)["spec"]["containers"].clone(),
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "study-home"}}]}}}}}});
    refused(
        ns,
        &cronjob,
        claims,
        "mount a Hygie claim through a CronJob",
    );
    admitted(
        ns,
        &pod("own", json!({"app": "own"}), Some("scratch")),
        "a pod on her own claim",
    );

    let labels = "hygie-labels-guarded";
    let hygie_labels =
        json!({"app.kubernetes.io/managed-by": "hygie", "hygie.io/dataset": "cohort"});
    refused(
        ns,
        &pod("import-egress", hygie_labels.clone(), None),
        labels,
        "wear an import's labels",
    );
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fake-import"},
        "spec": {"template": {"metadata": {"labels": hygie_labels},
                              "spec": {"restartPolicy": "Never", "containers": pod("x", json!({}), None)["spec"]["containers"].clone()}}}});
    refused(ns, &job, labels, "make pods that wear Hygie's labels");

    // A pod Hygie's controllers made (here the admin stands for them) cannot be changed by her.
    as_platform_team(
        ns,
        &pod(
            "study-0",
            json!({"app.kubernetes.io/managed-by": "hygie", "hygie.io/workspace": "study"}),
            Some("study-home"),
        ),
    );
    let out = hygie_tests::users::kubectl_as(
        "mallory",
        &["label", "-n", ns, "pod", "study-0", "app=web"],
    );
    assert!(!out.success, "mallory relabelled a Hygie pod");
    assert!(out.stderr.contains(labels), "{}", out.stderr);

    let network = "hygie-network-guarded";
    refused(
        ns,
        &network_policy("allow-all", json!({}), Some(json!([{}]))),
        network,
        "open every pod's egress",
    );
    refused(
        ns,
        &network_policy(
            "allow-study",
            json!({"matchLabels": {"hygie.io/workspace": "study"}}),
            Some(json!([{}])),
        ),
        network,
        "open the workspace's egress",
    );
    admitted(
        ns,
        &network_policy("deny-only", json!({}), None),
        "a policy that only denies",
    );
    admitted(
        ns,
        &network_policy(
            "own-app",
            json!({"matchLabels": {"app": "web"}}),
            Some(json!([{}])),
        ),
        "a policy for her own pods",
    );
    admitted(
        ns,
        &network_policy(
            "not-hygie",
            json!({"matchExpressions": [{"key": "app.kubernetes.io/managed-by", "operator": "NotIn", "values": ["hygie"]}]}),
            Some(json!([{}])),
        ),
        "a policy that excludes Hygie's pods",
    );

    // Holding Kubernetes' `admin` too, which writes Roles and RoleBindings, she hands out no
    // right in the namespace: RBAC lets her grant what she holds, the walls refuse it.
    kubectl_ok(&[
        "create",
        "rolebinding",
        "-n",
        ns,
        "mallory-admin",
        "--clusterrole=admin",
        "--user=mallory",
    ]);
    let rights = "hygie-rights-guarded";
    refused(
        ns,
        &role(
            "exec",
            json!([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"], "resourceNames": ["study-0"]}]),
        ),
        rights,
        "grant exec on the workspace pod",
    );
    refused(
        ns,
        &role(
            "logs",
            json!([{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]}]),
        ),
        rights,
        "grant the pods' logs",
    );
    refused(
        ns,
        &role(
            "keys",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        ),
        rights,
        "grant the Secrets, passphrases with them",
    );
    admitted(
        ns,
        &role(
            "settings",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
        ),
        "a Role for her own settings",
    );
    refused(
        ns,
        &role_binding("eve-settings", "Role", "settings"),
        rights,
        "bind even a Role of hers that grants nothing of Hygie's",
    );
    refused(
        ns,
        &role_binding("eve-view", "ClusterRole", "view"),
        rights,
        "bind Kubernetes' view, every pod's logs with it",
    );
    let eve_view = role_binding("eve-view", "ClusterRole", "view");

    // The home's key, where Hygie puts it: out of her namespace, so that neither role reads it.
    let key = format!("{ns}.study-home-luks");
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": key, "namespace": KEYS_NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hygie"},
                     "annotations": {"hygie.io/claim": "study-home", "hygie.io/claim-namespace": ns}},
        "stringData": {"encryptionPassphrase": "the home's passphrase"}});
    as_platform_team(KEYS_NAMESPACE, &secret);
    let read = kubectl_as(
        "mallory",
        &["get", "secret", "-n", KEYS_NAMESPACE, &key, "-o", "json"],
    );
    assert!(
        !read.success && read.stderr.contains("Forbidden"),
        "mallory read a passphrase: {}{}",
        read.stdout,
        read.stderr
    );

    // The platform team may still do what the walls refuse others.
    as_platform_team(ns, &pod("inspection", json!({}), Some("study-home")));
    as_platform_team(ns, &eve_view);
}
