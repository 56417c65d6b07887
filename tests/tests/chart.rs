//! On the real node: `helm install` of charts/hygie with the image built from the project's
//! Dockerfile. The operator runs as a pod under the chart's ServiceAccount, behind the chart's
//! NetworkPolicy (enforced by kube-router), elects a leader and brings a workspace up, which
//! the kubelet then runs. The chart's gateway is the only way to a workspace of health data:
//! its Owner, with her own certificate, is refused every direct route to its pod and sees its
//! desktop (the node's desktop image, TigerVNC) in a real browser through the gateway. A test
//! binary of its own: it installs and uninstalls the chart's cluster-wide objects, which the
//! other node tests also use.

use std::{path::PathBuf, process::Command, time::Duration};

use hygie::api::Workspace;
use hygie_tests::{
    cluster::{
        KEYS_NAMESPACE, apply_as_platform_team, client, install_crds, kubeconfig, kubectl_ok,
        kubectl_with_input, wait_for,
    },
    desktop::{self, BACKGROUND, Browser, pixels_of, port_forward, scratch},
    node::{audit_records, create_locked_bucket, exec, fetch, node_state},
    repo_root,
    users::{hygie_as, kubectl_as},
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{Namespace, Pod},
};
use kube::{Api, api::ListParams};
use serde_json::{Value, json};

const RELEASE: &str = "hygie";
const NAMESPACE: &str = "hygie-system";
const WITHIN: Duration = Duration::from_secs(180);
/// The chart's resolver, at a free address of the test cluster's Service range.
const RESOLVER: &str = "10.96.0.53";
/// A name the platform gives its workspaces, for the outside's web server.
const MIRROR: &str = "mirror.platform.hygie.test";

fn helm(args: &[&str]) -> String {
    let binary: PathBuf = repo_root().join("tests/node/bin/helm");
    let out = Command::new(&binary)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    assert!(
        out.status.success(),
        "helm {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The chart's release, uninstalled when the test ends, however it ends: a release left
/// behind would reconcile the other node tests' objects beside their own operator. A failed
/// test prints the operator's log first.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let leader = kubectl_with_input(
                &[
                    "get",
                    "lease",
                    "-n",
                    NAMESPACE,
                    "hygie-leader",
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ],
                None,
            )
            .stdout;
            let pod = format!("pod/{}", leader.trim());
            let logs = kubectl_with_input(&["logs", "-n", NAMESPACE, &pod, "--tail=300"], None);
            eprintln!("the operator's log:\n{}{}", logs.stdout, logs.stderr);
            let _ = Command::new(repo_root().join("tests/node/bin/helm"))
                .args(["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"])
                .args(["--timeout", "120s", "--kubeconfig"])
                .arg(kubeconfig())
                .status();
        }
    }
}

/// The workspace of docs/install.md's verification step, with the node's probe image.
fn verification_bundle(namespace: &str, probe: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "hygie.io/v1alpha1", "kind": "HostingProfile",
         "metadata": {"name": "install-check"},
         "spec": {
            "provider": "Scaleway",
            "certifications": [{"type": "HDS", "reference": "Scaleway HDS certificate 2024-HDS-117", "validUntil": "2029-06-30"}],
            "residency": {"country": "FR", "regionLabel": "topology.kubernetes.io/region", "regions": ["fr-par"]},
            "storage": {"storageClassName": "scw-bssd-luks",
                        "encryption": {"type": "NodeLUKS", "secretSuffix": "-luks", "passphraseKey": "encryptionPassphrase", "secretNamespace": "hygie-keys"}},
            "images": {"allowedRegistries": ["registry.hygie.test/"]},
            "network": {"dns": {"namespace": "kube-system", "podLabels": {"k8s-app": "kube-dns"}}}
         }},
        {"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace",
         "metadata": {"name": "install-check", "namespace": namespace},
         "spec": {
            "hostingProfile": "install-check",
            "members": [{"kind": "User", "name": "platform-team@hopital-exemple.fr", "role": "Owner"}],
            "image": probe, "port": 8888,
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
            "storage": {"size": "1Gi"},
            "expiresAt": "2029-01-01T00:00:00Z"
         }}
    ]})
}

/// Applies `bundle` and waits for its workspace `name` and that workspace's pod to be Ready.
fn bring_up(namespace: &str, bundle: &Value, name: &str) {
    let out = kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(&bundle.to_string()),
    );
    assert!(out.success, "{}", out.stderr);
    for object in [format!("workspace/{name}"), format!("pod/{name}-0")] {
        kubectl_ok(&[
            "wait",
            "-n",
            namespace,
            &object,
            "--for=condition=Ready",
            "--timeout=180s",
        ]);
    }
}

/// A workspace of health data on the verification step's profile: a Dataset of pseudonymised
/// data, empty, and a workspace mounting it.
fn health_workspace(namespace: &str, probe: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "hygie.io/v1alpha1", "kind": "Dataset",
         "metadata": {"name": "names-cohort", "namespace": namespace},
         "spec": {
            "hostingProfile": "install-check",
            "classification": "Pseudonymised",
            "legal": {"controller": "Hôpital Exemple", "purpose": "Install check",
                      "basis": "CNIL MR-004", "validUntil": "2028-12-31"},
            "storage": {"size": "1Gi"},
            "retention": {"onDelete": "Shred"}
         }},
        {"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace",
         "metadata": {"name": "names-check", "namespace": namespace},
         "spec": {
            "hostingProfile": "install-check",
            "members": [{"kind": "User", "name": "platform-team@hopital-exemple.fr", "role": "Owner"}],
            "datasets": [{"name": "names-cohort", "mountPath": "/data/cohort"}],
            "image": probe, "port": 8888,
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
            "storage": {"size": "1Gi"},
            "expiresAt": "2028-06-01T00:00:00Z"
         }}
    ]})
}

/// A workspace seen through a screen: the node's desktop image, alice its Owner, mounting the
/// dataset of pseudonymised data of `health_workspace`.
fn desktop_workspace(namespace: &str) -> Value {
    json!({"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace",
    "metadata": {"name": "screen-check", "namespace": namespace},
    "spec": {
       "hostingProfile": "install-check",
       "members": [{"kind": "User", "name": "alice", "role": "Owner"}],
       "datasets": [{"name": "names-cohort", "mountPath": "/data/cohort"}],
       "image": node_state("desktop.ref"), "port": 8888,
       "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
       "storage": {"size": "1Gi"},
       "expiresAt": "2028-06-01T00:00:00Z"
    }})
}

/// A pod of the probe image in `namespace` wearing the chart gateway's labels.
fn gateway_lookalike(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gateway-lookalike", "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "hygie", "app.kubernetes.io/component": "gateway", "hygie.io/release": RELEASE}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "probe", "image": node_state("probe.ref"),
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}})
}

/// What a pod of `namespace` reads first from the desktop port of `address`.
fn desktop_banner(namespace: &str, address: &str) -> String {
    let object = gateway_lookalike(namespace);
    let out = kubectl_with_input(&["apply", "-f", "-"], Some(&object.to_string()));
    assert!(out.success, "{}", out.stderr);
    kubectl_ok(&[
        "wait",
        "-n",
        namespace,
        "pod/gateway-lookalike",
        "--for=condition=Ready",
        "--timeout=120s",
    ]);
    let (_, banner) = exec(
        namespace,
        "gateway-lookalike",
        &format!("nc -w 3 {address} 5900 </dev/null | head -c 12"),
    );
    kubectl_ok(&[
        "delete",
        "-n",
        namespace,
        "pod/gateway-lookalike",
        "--wait=false",
    ]);
    banner
}

/// Alice, the Owner of `screen-check`, with her own certificate: every direct route to its pod
/// is refused her; through the chart's gateway her browser shows its desktop, once per link; a
/// pod wearing the gateway's labels outside the gateway's namespace does not reach the desktop;
/// the session is in the audit sink.
async fn only_through_the_gateway(namespace: &str, audit: &str) {
    let pod = "screen-check-0";
    let scratch = scratch("chart-gateway");
    let copy_to = scratch.join("cohort");
    let source = format!("{namespace}/{pod}:/data/cohort");
    let proxy = format!("/api/v1/namespaces/{namespace}/services/screen-check:tool/proxy/");
    let probe = node_state("probe.ref");
    let routes: [(&str, Vec<&str>); 8] = [
        ("exec", vec!["exec", "-n", namespace, pod, "--", "id"]),
        ("cp", vec!["cp", &source, copy_to.to_str().unwrap()]),
        ("attach", vec!["attach", "-n", namespace, pod]),
        (
            "port-forward",
            vec!["port-forward", "-n", namespace, pod, "18888:8888"],
        ),
        ("proxy", vec!["get", "--raw", &proxy]),
        ("logs", vec!["logs", "-n", namespace, pod]),
        (
            "debug",
            vec!["debug", "-n", namespace, pod, "--image", &probe, "--", "id"],
        ),
        (
            "read",
            vec!["get", "pod", "-n", namespace, pod, "-o", "yaml"],
        ),
    ];
    for (route, args) in routes {
        let out = kubectl_as("alice", &args);
        assert!(
            !out.success && out.stderr.to_lowercase().contains("forbidden"),
            "{route} is refused to the workspace's Owner: {}{}",
            out.stdout,
            out.stderr
        );
    }
    assert!(!copy_to.exists(), "nothing was copied out");

    // Through the gateway, as an ingress controller would forward a browser to it.
    let _forward = port_forward(NAMESPACE, "service/hygie-gateway", 18443, 443);
    let out = hygie_as(
        "alice",
        &[
            "connect",
            "screen-check",
            "-n",
            namespace,
            "--gateway",
            "https://127.0.0.1:18443/",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut browser = Browser::start().await;
    let shot = scratch.join("desktop.png");
    let title = browser
        .screenshot(&link, Duration::from_secs(15), &shot)
        .await;
    let shown = pixels_of(&shot, BACKGROUND);
    assert!(
        shown > 200_000,
        "the desktop's 640x480 background is on screen ({shown} pixels, title {title:?}): see {}; console: {:?}",
        shot.display(),
        browser.console
    );
    let again = scratch.join("again.png");
    browser
        .screenshot(&link, Duration::from_secs(3), &again)
        .await;
    assert_eq!(
        pixels_of(&again, BACKGROUND),
        0,
        "the same link opened a second time shows nothing"
    );

    // The desktop's port admits the gateway's pods of the gateway's namespace only: a pod
    // wearing their labels beside the workspace gets nothing, the same pod beside the gateway
    // meets the desktop (and, holding no password, would get no further).
    let address = kubectl_ok(&[
        "get",
        "pod",
        "-n",
        namespace,
        pod,
        "-o",
        "jsonpath={.status.podIP}",
    ]);
    let beside_the_workspace = desktop_banner(namespace, address.trim());
    assert!(
        !beside_the_workspace.contains("RFB"),
        "a lookalike beside the workspace reached its desktop: {beside_the_workspace}"
    );
    let beside_the_gateway = desktop_banner(NAMESPACE, address.trim());
    assert!(
        beside_the_gateway.contains("RFB 003.008"),
        "the desktop answers the gateway's namespace: {beside_the_gateway}"
    );

    // The session is on record in the audit sink: opened by alice, refused once, ended.
    let (_, session, _) = desktop::session_of(&link);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (_, records) = audit_records(audit);
        let ours: Vec<Value> = records
            .lines()
            .filter_map(|r| serde_json::from_str::<Value>(r).ok())
            .filter(|r| r["object"] == format!("Session/{namespace}/{session}"))
            .collect();
        let action = |a: &str| ours.iter().find(|r| r["action"] == a).cloned();
        if let (Some(opened), Some(_), Some(ended)) = (
            action("SessionOpened"),
            action("SessionRefused"),
            action("SessionEnded"),
        ) {
            assert_eq!(opened["evidence"]["user"], "alice", "{opened}");
            assert_eq!(opened["evidence"]["target"], "Workspace/screen-check");
            let sent: u64 = ended["evidence"]["bytesToBrowser"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(sent > 0, "{ended}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session {session} is not on record in the sink: {ours:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn helm_installs_the_operator_image_which_leads_and_runs_a_workspace_on_the_node() {
    install_crds();
    let client = client().await;
    let image = node_state("hygie.ref");
    let (repository, digest) = image.split_once('@').expect("an image by digest");
    let api_port =
        std::fs::read_to_string(repo_root().join("tests/controlplane/state/apiserver.port"))
            .unwrap();
    // The audit sink: a bucket with Object Lock on the outside's S3 server, its writer's
    // credentials and the certificate it is checked against, in the release namespace.
    let audit = format!("audit-chart-{}", jiff::Timestamp::now().as_millisecond());
    create_locked_bucket(&audit);
    let ca = std::fs::read_to_string(repo_root().join("tests/node/state/s3-ca.crt")).unwrap();
    // The gateway's certificate, for the address the test's browser reaches it at.
    let (certificate, tls_key) = desktop::certificate(&scratch("chart-gateway-tls"));
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
    apply_as_platform_team(
        None,
        &[
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hygie-audit", "namespace": NAMESPACE},
                   "stringData": {"accessKeyId": node_state("s3.access"), "secretAccessKey": node_state("s3.secret")}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hygie-audit-ca", "namespace": NAMESPACE},
                   "data": {"ca.crt": ca}}),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                   "metadata": {"name": "hygie-gateway-tls", "namespace": NAMESPACE},
                   "stringData": {"tls.crt": read(&certificate), "tls.key": read(&tls_key)}}),
        ],
    );
    // The chart's NetworkPolicy lets the operator reach the API server's endpoints only (here,
    // the node's address and the test control plane's port), and the audit sink's store.
    let chart = repo_root().join("charts/hygie");
    helm(&[
        "upgrade",
        "--install",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--take-ownership",
        "--force-conflicts",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        &format!("image.repository={repository}"),
        "--set",
        &format!("image.digest={digest}"),
        "--set",
        "networkPolicy.apiServer.cidrs={10.213.0.1/32}",
        "--set",
        &format!("networkPolicy.apiServer.ports={{{}}}", api_port.trim()),
        "--set",
        &format!("audit.s3.endpoint={}", node_state("s3.endpoint")),
        "--set",
        &format!("audit.s3.bucket={audit}"),
        "--set",
        "audit.s3.region=fr-par",
        "--set",
        "audit.s3.retentionDays=1",
        "--set",
        "audit.s3.credentialsSecret=hygie-audit",
        "--set",
        "audit.s3.caConfigMap=hygie-audit-ca",
        "--set",
        "audit.s3.egress[0].cidr=10.215.0.2/32",
        "--set",
        "audit.s3.egress[0].port=7070",
        "--set",
        "resolver.enabled=true",
        "--set",
        &format!("resolver.image={}", node_state("coredns.ref")),
        "--set",
        &format!("resolver.clusterIP={RESOLVER}"),
        "--set",
        "gateway.enabled=true",
        "--set",
        "gateway.tls.secretName=hygie-gateway-tls",
    ]);
    let _installed = Installed;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(
        &deployments,
        RELEASE,
        "both replicas available",
        WITHIN,
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .and_then(|s| s.available_replicas)
                == Some(2)
        },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=hygie"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let replicas = names.clone();
    wait_for(
        &leases,
        "hygie-leader",
        "held by one of the chart's pods",
        WITHIN,
        move |l: Option<&Lease>| {
            l.and_then(|l| l.spec.as_ref())
                .and_then(|s| s.holder_identity.as_ref())
                .is_some_and(|holder| replicas.contains(holder))
        },
    )
    .await;

    // The chart's NetworkPolicy is enforced on the operator's pods: a probe wearing their
    // labels reaches the API server and not the outside, which a probe without them reaches.
    let probe = |name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "probe", "image": node_state("probe.ref"),
                "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}})
    };
    let labelled = probe(
        "policy-probe",
        json!({"app.kubernetes.io/name": "hygie", "app.kubernetes.io/instance": RELEASE}),
    );
    let control = probe("policy-control", json!({"app": "policy-control"}));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [labelled, control]});
    let out = kubectl_with_input(&["apply", "-f", "-"], Some(&list.to_string()));
    assert!(out.success, "{}", out.stderr);
    kubectl_ok(&[
        "wait",
        "-n",
        NAMESPACE,
        "pod/policy-probe",
        "pod/policy-control",
        "--for=condition=Ready",
        "--timeout=120s",
    ]);
    let api_port = api_port.trim();
    // A new pod's first packets may go before the node's firewall knows it: the control is
    // tried until it gets through, so that the probe's refusal below means the policy.
    let mut reached = false;
    for _ in 0..15 {
        reached = fetch(NAMESPACE, "policy-control", "10.215.0.2:8080").contains("the outside");
        if reached {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(reached, "the control reaches the outside");
    assert!(
        !fetch(NAMESPACE, "policy-probe", "10.215.0.2:8080").contains("HTTP/1"),
        "the operator's pods do not"
    );
    let api = fetch(NAMESPACE, "policy-probe", &format!("10.213.0.1:{api_port}"));
    assert!(
        api.contains("HTTP/1.0 400"),
        "the operator's pods reach the API server (which wants TLS): {api}"
    );
    kubectl_ok(&[
        "delete",
        "-n",
        NAMESPACE,
        "pod/policy-probe",
        "pod/policy-control",
        "--wait=false",
    ]);

    // docs/install.md's verification step.
    let namespace = "install-check";
    let out = kubectl_with_input(
        &["apply", "--server-side", "-f", "-"],
        Some(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
            .to_string(),
        ),
    );
    assert!(out.success, "{}", out.stderr);
    bring_up(
        namespace,
        &verification_bundle(namespace, &node_state("probe.ref")),
        "install-check",
    );
    let workspace: Workspace = Api::namespaced(client.clone(), namespace)
        .get("install-check")
        .await
        .unwrap();
    assert!(
        workspace.status.and_then(|s| s.endpoint).is_some(),
        "the workspace reports its endpoint"
    );

    // What the Helm-installed operator built is as hardened and fenced as with a local one.
    let run = |script: &str| exec(namespace, "install-check-0", script);
    assert!(run("id").1.starts_with("uid=10001 gid=10001"));
    let (wrote, out) = run("touch /x");
    assert!(!wrote && out.contains("Read-only file system"), "{out}");
    let (resolved, out) = run("nslookup kubernetes.default.svc.cluster.local");
    assert!(resolved && out.contains("10.96.0.1"), "{out}");
    let out = fetch(namespace, "install-check-0", "10.215.0.2:8080");
    assert!(
        !out.contains("HTTP/1"),
        "egress to the outside is dropped: {out}"
    );

    // Hygie's resolver: given to the profile, it answers a workspace of health data the names
    // the profile lists and nothing else, and none of that workspace's queries reaches the
    // outside's resolver, which the cluster's forwards to.
    let resolver = json!({"spec": {"network": {
        "egressDestinations": ["10.215.0.2/32"],
        "resolver": {"address": RESOLVER, "names": [{"name": MIRROR, "address": "10.215.0.2"}]},
    }}});
    kubectl_ok(&[
        "patch",
        "hostingprofile/install-check",
        "--type=merge",
        "-p",
        &resolver.to_string(),
    ]);
    bring_up(
        namespace,
        &health_workspace(namespace, &node_state("probe.ref")),
        "names-check",
    );
    let run = |script: &str| exec(namespace, "names-check-0", script);
    let resolv = run("cat /etc/resolv.conf").1;
    assert!(
        resolv.contains(&format!("nameserver {RESOLVER}")) && !resolv.contains("10.96.0.10"),
        "{resolv}"
    );
    // The names reach the resolver's pods as the kubelet refreshes their ConfigMap.
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (resolved, out) = run(&format!("nslookup -timeout=2 -retry=1 {MIRROR}"));
        if resolved && out.contains("10.215.0.2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workspace never resolved {MIRROR}: {out}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let tunnel = format!(
        "rows-{}.outside.hygie.test",
        jiff::Timestamp::now().as_millisecond()
    );
    let (resolved, out) = run(&format!("nslookup -timeout=2 -retry=1 {tunnel}"));
    assert!(
        !resolved,
        "Hygie's resolver answered a name nobody listed: {out}"
    );
    assert!(
        !node_state("outside-dns.log").contains(&tunnel),
        "a query of the workspace's reached the outside"
    );
    bring_up(namespace, &desktop_workspace(namespace), "screen-check");
    only_through_the_gateway(namespace, &audit).await;
    kubectl_ok(&[
        "delete",
        "-n",
        namespace,
        "workspace/names-check",
        "workspace/screen-check",
        "dataset/names-cohort",
        "--timeout=120s",
    ]);

    // The leader wrote what it decided to the audit sink, through its NetworkPolicy.
    let deadline = tokio::time::Instant::now() + WITHIN;
    let workspace_records = loop {
        let (_, records) = audit_records(&audit);
        let ours: Vec<String> = records
            .lines()
            .filter(|r| r.contains("\"object\":\"Workspace/install-check/install-check\""))
            .map(str::to_owned)
            .collect();
        if !ours.is_empty() {
            break ours;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit record of the workspace in the sink: {records}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        workspace_records.iter().all(|r| names
            .iter()
            .any(|n| r.contains(&format!("\"recorder\":\"{n}\"")))),
        "recorded by one of the chart's pods: {workspace_records:?}"
    );

    kubectl_ok(&[
        "delete",
        "-n",
        namespace,
        "workspace/install-check",
        "--timeout=120s",
    ]);
    kubectl_ok(&["delete", "hostingprofile/install-check", "--timeout=60s"]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(namespace, &Default::default())
        .await
        .unwrap();
    helm(&[
        "uninstall",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--wait",
        "--timeout",
        "120s",
    ]);
    let keys = namespaces.get(KEYS_NAMESPACE).await.unwrap();
    assert!(
        keys.metadata.deletion_timestamp.is_none(),
        "uninstalling the chart leaves the keys' namespace, whose Secrets open the volumes"
    );
}
