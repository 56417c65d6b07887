//! The recommended audit policy (docs/audit-policy.yaml) on a real API server: a second
//! kube-apiserver of the test control plane, on the same etcd, started with that policy. Each
//! request an auditor asks about is recorded at its level, the rest is not, and no Secret's
//! data ever reaches the log.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use hygie_tests::{
    cluster::{install_crds, kubeconfig, kubectl_at},
    repo_root,
};
use serde_json::Value;

/// A kube-apiserver of the test control plane's etcd, auditing with the recommended policy.
struct AuditedServer {
    process: Child,
    kubeconfig: PathBuf,
    log: PathBuf,
}

impl AuditedServer {
    fn start() -> AuditedServer {
        let state = kubeconfig().parent().unwrap().to_owned();
        let pki = state.join("pki");
        let etcd = std::fs::read_to_string(state.join("etcd.port")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = state.join("audit-recommended.log");
        let _ = std::fs::remove_file(&log);
        let policy = repo_root().join("docs/audit-policy.yaml");
        let file = |name: &str| pki.join(name).to_string_lossy().into_owned();
        let process = Command::new(repo_root().join("tests/controlplane/bin/kube-apiserver"))
            .args([
                "--etcd-servers",
                &format!("http://127.0.0.1:{}", etcd.trim()),
            ])
            .args([
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
            ])
            .args(["--secure-port", &port.to_string()])
            .args(["--tls-cert-file", &file("apiserver.crt")])
            .args(["--tls-private-key-file", &file("apiserver.key")])
            .args(["--client-ca-file", &file("ca.crt")])
            .args(["--authorization-mode", "RBAC"])
            .args(["--service-account-issuer", "https://kubernetes.default.svc"])
            .args(["--service-account-key-file", &file("sa.pub")])
            .args(["--service-account-signing-key-file", &file("sa.key")])
            .args(["--service-cluster-ip-range", "10.96.0.0/12"])
            .args(["--allow-privileged=false", "--profiling=false"])
            .args(["--audit-log-path", &log.to_string_lossy()])
            .args(["--audit-policy-file", &policy.to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(state.join("kube-apiserver-audited.log")).unwrap())
            .spawn()
            .expect("the test control plane's kube-apiserver starts");
        let kubeconfig = state.join("audited.kubeconfig");
        let text = std::fs::read_to_string(self::kubeconfig_of_admin(&state)).unwrap();
        let server = text
            .lines()
            .find(|l| l.trim_start().starts_with("server:"))
            .unwrap()
            .trim()
            .to_owned();
        std::fs::write(
            &kubeconfig,
            text.replace(&server, &format!("server: https://127.0.0.1:{port}")),
        )
        .unwrap();
        let server = AuditedServer {
            process,
            kubeconfig,
            log,
        };
        for _ in 0..120 {
            if server.kubectl(&["get", "--raw", "/readyz"]).0 {
                return server;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("the audited kube-apiserver did not become ready");
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        self.kubectl_with_input(args, None)
    }

    fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> (bool, String) {
        let out = kubectl_at(&self.kubeconfig, args, input);
        (out.success, format!("{}{}", out.stdout, out.stderr))
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for AuditedServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn kubeconfig_of_admin(state: &Path) -> PathBuf {
    state.join("kubeconfig")
}

/// The audit events of `namespace` for `resource` (and subresource, if any) and `verb`.
fn recorded<'a>(
    events: &'a [Value],
    namespace: &str,
    resource: &str,
    verb: &str,
) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            let object = &e["objectRef"];
            let full = match object["subresource"].as_str() {
                Some(sub) => format!("{}/{sub}", object["resource"].as_str().unwrap_or("")),
                None => object["resource"].as_str().unwrap_or("").to_owned(),
            };
            object["namespace"] == namespace && full == resource && e["verb"] == verb
        })
        .collect()
}

#[test]
fn the_recommended_policy_records_what_an_auditor_asks_and_no_secret() {
    install_crds();
    let server = AuditedServer::start();
    let ns = format!("audit-{}", std::process::id());
    assert!(server.kubectl(&["create", "namespace", &ns]).0);
    let material = "c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkw";
    let objects = format!(
        r#"{{"apiVersion": "v1", "kind": "List", "items": [
  {{"apiVersion": "v1", "kind": "Secret", "metadata": {{"name": "study-home-luks", "namespace": "{ns}",
    "labels": {{"app.kubernetes.io/managed-by": "hygie"}}}}, "data": {{"encryptionPassphrase": "{material}"}}}},
  {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "notes", "namespace": "{ns}"}}}},
  {{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "study-0", "namespace": "{ns}"}},
    "spec": {{"containers": [{{"name": "tool", "image": "registry.example.fr/research/jupyter"}}]}}}}
]}}"#
    );
    let (created, out) = server.kubectl_with_input(&["create", "-f", "-"], Some(&objects));
    assert!(created, "{out}");
    let (read, _) = server.kubectl(&["-n", &ns, "get", "secret", "study-home-luks", "-o", "json"]);
    assert!(read);
    assert!(server.kubectl(&["-n", &ns, "get", "configmap", "notes"]).0);
    // No kubelet: exec and port-forward fail after admission, and are recorded all the same.
    let _ = server.kubectl(&["-n", &ns, "exec", "study-0", "--", "cat", "/data/cohort/x"]);
    let forward = format!("/api/v1/namespaces/{ns}/pods/study-0/portforward?ports=8888");
    let _ = server.kubectl_with_input(&["create", "--raw", &forward, "-f", "-"], Some("{}"));
    let workspace = format!(
        r#"{{"apiVersion": "hygie.io/v1alpha1", "kind": "Dataset", "metadata": {{"name": "cohort", "namespace": "{ns}"}},
  "spec": {{"hostingProfile": "p", "classification": "Open",
    "legal": {{"controller": "c", "purpose": "p", "basis": "b", "validUntil": "2030-01-01"}},
    "storage": {{"size": "1Gi"}}}}}}"#
    );
    let (applied, out) = server.kubectl_with_input(&["create", "-f", "-"], Some(&workspace));
    assert!(applied, "{out}");
    assert!(
        server
            .kubectl(&["-n", &ns, "delete", "dataset", "cohort", "--wait=false"])
            .0
    );

    // The log is written asynchronously: give it a moment to hold the last request.
    let mut events = Vec::new();
    for _ in 0..20 {
        events = server.events();
        if !recorded(&events, &ns, "datasets", "delete").is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // The levels a request was recorded at, once per stage and attempt.
    let level = |resource: &str, verb: &str| -> Vec<String> {
        let mut levels: Vec<String> = recorded(&events, &ns, resource, verb)
            .iter()
            .map(|e| e["level"].as_str().unwrap_or("").to_owned())
            .collect();
        levels.dedup();
        levels
    };
    assert_eq!(level("pods/exec", "create"), ["Metadata"], "a shell");
    let exec = recorded(&events, &ns, "pods/exec", "create")[0];
    assert!(
        exec["requestURI"].as_str().unwrap().contains("command=cat"),
        "the command is in the record: {exec}"
    );
    assert_eq!(
        level("pods/portforward", "create"),
        ["Metadata"],
        "a forwarded port"
    );
    assert_eq!(level("secrets", "get"), ["Metadata"], "who read a key");
    assert_eq!(level("secrets", "create"), ["Metadata"]);
    assert_eq!(
        level("datasets", "create"),
        ["Request"],
        "a change, with its body"
    );
    let change = recorded(&events, &ns, "datasets", "create")[0];
    assert_eq!(change["requestObject"]["spec"]["classification"], "Open");
    assert_eq!(level("datasets", "delete"), ["Request"]);
    assert!(
        level("configmaps", "get").is_empty(),
        "other reads are not recorded"
    );
    assert!(level("configmaps", "create").is_empty());
    assert!(
        events.iter().all(|e| e["user"]["username"].is_string()),
        "every record names who asked"
    );
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        !log.contains(material) && !log.contains("secret-key-material"),
        "no Secret's data reaches the audit log"
    );
    let _ = server.kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}
