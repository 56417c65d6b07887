//! Health data seen through a screen only, on the test control plane, each person with their own
//! certificate: on a workspace whose status does not record Direct access, the API server
//! refuses a shell, an attach, a forwarded port and a proxy to its pod, to its members
//! (however they came by a Role that grants them) and to mallory holding Kubernetes' `admin`
//! role in the namespace; the same for an export's review pod, to everyone but the platform
//! team. Once the workspace records Direct access (open data, as its Dataset allowed), a
//! member's port-forward passes admission (and fails after it, for want of a kubelet here).
//! The operator may grant no right to the pod of a workspace seen through a screen.

use hygie_tests::{
    cluster::{TestNamespace, client, install_crds, kubectl_ok, kubectl_with_input},
    operator::{OPERATOR_USER, install_chart_rbac},
    users::{create_as, hygie_as, kubectl_as},
};
use serde_json::{Value, json};

const POLICY: &str = "hygie-screen-only";

fn workspace() -> Value {
    json!({"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "study"},
        "spec": {"hostingProfile": "hds-fr",
                 "members": [{"kind": "User", "name": "alice", "role": "Owner"}],
                 "datasets": [{"name": "cohort", "mountPath": "/data/cohort"}],
                 "image": "registry.example.fr/research/jupyter@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                 "storage": {"size": "1Gi"}}})
}

/// A Role of alice's granting every direct right on `pod` and the workspace's Service, as a
/// namespace admin (or a bug) could write one.
fn direct_role(name: &str, pod: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "resourceNames": [pod], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods/exec", "pods/attach", "pods/portforward", "pods/proxy"], "resourceNames": [pod], "verbs": ["create", "get"]},
            {"apiGroups": [""], "resources": ["services/proxy"], "resourceNames": ["study"], "verbs": ["get", "create"]}]})
}

/// A pod of that name, as the StatefulSet controller would make it (the cluster's admin creates
/// it here: this control plane runs no kubelet, so it stays Pending).
fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "tool", "image": "registry.example.fr/tool@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
}

fn apply(ns: &str, object: &Value) {
    let out = kubectl_with_input(&["apply", "-n", ns, "-f", "-"], Some(&object.to_string()));
    assert!(out.success, "{}", out.stderr);
}

/// The connections a person may try on `pod`: a shell, an attach, a forwarded port, a proxy to
/// the pod and one to the workspace's Service. Each is a request the API server admits or not.
fn connections(ns: &str, pod: &str) -> Vec<(&'static str, Vec<String>)> {
    let raw = |path: String| {
        vec![
            "create".into(),
            "--raw".into(),
            path,
            "-f".into(),
            "-".into(),
        ]
    };
    vec![
        (
            "exec",
            vec![
                "exec".into(),
                "-n".into(),
                ns.into(),
                pod.into(),
                "--".into(),
                "cat".into(),
                "/data/cohort/x".into(),
            ],
        ),
        (
            "attach",
            vec!["attach".into(), "-n".into(), ns.into(), pod.into()],
        ),
        (
            "port-forward",
            raw(format!(
                "/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=9000"
            )),
        ),
        (
            "pod proxy",
            vec![
                "get".into(),
                "--raw".into(),
                format!("/api/v1/namespaces/{ns}/pods/{pod}/proxy/"),
            ],
        ),
        (
            "service proxy",
            vec![
                "get".into(),
                "--raw".into(),
                format!("/api/v1/namespaces/{ns}/services/study/proxy/files/data"),
            ],
        ),
    ]
}

/// Asserts `user`'s attempt at `what` was refused by the screen-only policy.
fn refused(user: &str, what: &str, args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kubectl_as(user, &args);
    assert!(!out.success, "{user} was let {what}");
    assert!(
        out.stderr.contains(POLICY),
        "{user}'s {what} is refused by {POLICY}: {}",
        out.stderr
    );
}

#[tokio::test]
async fn nobody_but_the_platform_team_reaches_health_data_but_through_the_screen() {
    install_crds();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "screen").await;
    let ns = namespace.name.as_str();
    apply(ns, &workspace());
    apply(ns, &pod("study-0"));
    apply(ns, &pod("table-1-review-0"));
    apply(ns, &direct_role("alice-direct", "study-0"));
    apply(ns, &direct_role("alice-review", "table-1-review-0"));
    for role in ["alice-direct", "alice-review"] {
        kubectl_ok(&[
            "create",
            "rolebinding",
            "-n",
            ns,
            role,
            &format!("--role={role}"),
            "--user=alice",
        ]);
    }
    kubectl_ok(&[
        "create",
        "rolebinding",
        "-n",
        ns,
        "mallory-admin",
        "--clusterrole=admin",
        "--user=mallory",
    ]);

    for user in ["alice", "mallory"] {
        for (what, args) in connections(ns, "study-0") {
            refused(user, what, &args);
        }
        let (what, args) = connections(ns, "table-1-review-0").remove(0);
        refused(user, &format!("{what} into a review pod"), &args);
    }
    // A proxied name with a scheme and a port is the same Service.
    let named = format!("/api/v1/namespaces/{ns}/services/https:study:8888/proxy/files/data");
    refused(
        "mallory",
        "a proxy by scheme and port",
        &["get".into(), "--raw".into(), named],
    );
    // The platform team (the cluster's admin) is not walled in: its exec fails after admission.
    let out = kubectl_with_input(&["exec", "-n", ns, "study-0", "--", "true"], None);
    assert!(!out.stderr.contains(POLICY), "{}", out.stderr);

    // Open data its Dataset lets members reach directly, recorded so by the operator.
    let status = json!({"status": {"access": "Direct",
        "lineage": [{"name": "cohort", "classification": "Open", "access": "Direct"}]}});
    kubectl_ok(&[
        "patch",
        "workspace",
        "study",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    let (what, args) = connections(ns, "study-0").remove(2);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kubectl_as("alice", &args);
    assert!(
        !out.stderr.contains(POLICY),
        "{what} on a workspace reached directly: {}",
        out.stderr
    );
    // Still none into a review pod.
    let (what, args) = connections(ns, "table-1-review-0").remove(0);
    refused("alice", &format!("{what} into a review pod"), &args);

    // A dataset mounted since, not in the recorded lineage yet, counts as a screen at once.
    let mut more = workspace();
    more["spec"]["datasets"] = json!([{"name": "cohort", "mountPath": "/data/cohort"}, {"name": "registry", "mountPath": "/data/registry"}]);
    apply(ns, &more);
    let (what, args) = connections(ns, "study-0").remove(2);
    refused("alice", what, &args);
}

#[tokio::test]
async fn the_operator_grants_no_right_to_a_pod_seen_through_the_screen() {
    install_crds();
    install_chart_rbac();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "screen-grants").await;
    let ns = namespace.name.as_str();
    let as_operator = format!("--as={OPERATOR_USER}");
    let create = |object: &Value| {
        kubectl_with_input(
            &[
                &as_operator,
                "create",
                "-n",
                ns,
                "--dry-run=server",
                "-f",
                "-",
            ],
            Some(&object.to_string()),
        )
    };
    let hygies = json!({"app.kubernetes.io/managed-by": "hygie"});
    let exec = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "study-owner", "labels": hygies},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "resourceNames": ["study-0"], "verbs": ["create"]}]});
    apply(ns, &workspace());
    let out = create(&exec);
    assert!(!out.success, "exec on a workspace seen through a screen");
    assert!(
        out.stderr.contains("seen through a screen only"),
        "{}",
        out.stderr
    );
    let connect = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "study-owner", "labels": hygies},
        "rules": [{"apiGroups": ["hygie.io"], "resources": ["workspaces"], "resourceNames": ["study"], "verbs": ["get", "connect"]}]});
    let out = create(&connect);
    assert!(out.success, "connect: {}", out.stderr);

    let status = json!({"status": {"access": "Direct",
        "lineage": [{"name": "cohort", "classification": "Open", "access": "Direct"}]}});
    kubectl_ok(&[
        "patch",
        "workspace",
        "study",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    let out = create(&exec);
    assert!(out.success, "exec once reached directly: {}", out.stderr);
    let review = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "table-1-review", "labels": hygies},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "resourceNames": ["table-1-review-0"], "verbs": ["create"]}]});
    let out = create(&review);
    assert!(!out.success, "exec on a review pod is never granted");
}

#[tokio::test]
async fn a_session_names_who_opened_it_as_the_api_server_knows_them() {
    install_crds();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "sessions").await;
    let ns = namespace.name.as_str();
    // What a member's Role holds, and mallory too: anybody may ask; the gateway asks the API
    // server whether the session's user may connect.
    apply(
        ns,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "sessions"},
            "rules": [{"apiGroups": ["hygie.io"], "resources": ["sessions"], "verbs": ["create"]}]}),
    );
    for user in ["alice", "mallory"] {
        kubectl_ok(&[
            "create",
            "rolebinding",
            "-n",
            ns,
            &format!("{user}-sessions"),
            "--role=sessions",
            &format!("--user={user}"),
        ]);
    }
    let out = hygie_as(
        "alice",
        &[
            "connect",
            "study",
            "-n",
            ns,
            "--gateway",
            "https://gateway.hygie.test/",
        ],
    );
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (session, secret) = link
        .strip_prefix(&format!("https://gateway.hygie.test/#{ns}/"))
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or_else(|| panic!("a link to the gateway: {link}"));
    let stored = kubectl_ok(&["get", "session", "-n", ns, session, "-o", "json"]);
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["spec"]["user"], "alice");
    assert_eq!(stored["spec"]["groups"], json!(["researchers"]));
    assert_eq!(stored["spec"]["workspace"], "study");
    assert_eq!(
        stored["spec"]["secretDigest"],
        hygie::api::session::secret_digest(secret),
        "only the digest of the secret is stored"
    );
    assert!(!stored.to_string().contains(secret));

    let forged = json!({"apiVersion": "hygie.io/v1alpha1", "kind": "Session",
        "metadata": {"name": "forged"},
        "spec": {"workspace": "study", "user": "alice", "groups": ["researchers"],
                 "secretDigest": hygie::api::session::secret_digest("mallory's")}});
    let out = create_as("mallory", ns, &forged);
    assert!(!out.success, "mallory opened a session as alice");
    assert!(
        out.stderr.contains("hygie-session-identity"),
        "{}",
        out.stderr
    );
    let mut borrowed = forged.clone();
    borrowed["spec"]["user"] = json!("mallory");
    let out = create_as("mallory", ns, &borrowed);
    assert!(!out.success, "mallory claimed alice's groups");
    assert!(out.stderr.contains("spec.groups"), "{}", out.stderr);
}
