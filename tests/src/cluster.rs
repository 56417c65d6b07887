//! Helpers for tests on the real control plane of `tests/controlplane`: a client from its
//! kubeconfig, a fresh namespace per test, kubectl, and waiting with a useful failure message.

use std::{
    fmt::Debug,
    path::PathBuf,
    process::Command,
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, Config, Resource,
    api::{ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::wait::{Condition, await_condition},
};
use serde::de::DeserializeOwned;

use crate::repo_root;

/// The kubeconfig of the test control plane: `HYGIE_TEST_KUBECONFIG` when set (the test
/// command exports it), otherwise whatever `tests/controlplane/up.sh` prints, which starts
/// the control plane if it is not running.
pub fn kubeconfig() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("HYGIE_TEST_KUBECONFIG") {
            return PathBuf::from(path);
        }
        let output = Command::new("bash")
            .arg(repo_root().join("tests/controlplane/up.sh"))
            .output()
            .expect("bash runs tests/controlplane/up.sh");
        assert!(
            output.status.success(),
            "tests/controlplane/up.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).expect("a UTF-8 path");
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("up.sh prints the kubeconfig path last"),
        )
    })
    .clone()
}

/// A client of the test control plane, as its admin.
pub async fn client() -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig()).expect("a readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a client")
}

/// The outcome of a kubectl command.
#[derive(Debug)]
pub struct Kubectl {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs kubectl against the test control plane.
pub fn kubectl(args: &[&str]) -> Kubectl {
    kubectl_with_input(args, None)
}

/// Runs kubectl with `input` on its standard input (for `-f -`).
pub fn kubectl_with_input(args: &[&str], input: Option<&str>) -> Kubectl {
    kubectl_at(&kubeconfig(), args, input)
}

/// Runs kubectl against the API server of `kubeconfig`, with `input` on its standard input.
pub fn kubectl_at(kubeconfig: &std::path::Path, args: &[&str], input: Option<&str>) -> Kubectl {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    Kubectl {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs kubectl and fails the test with its output if it fails.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.success,
        "kubectl {} failed:\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// The namespace of the volumes' passphrase Secrets in the test bundles' profiles, as the
/// chart creates it.
pub const KEYS_NAMESPACE: &str = "hygie-keys";

/// Installs crds/ (the CRDs and their admission policies) with server-side apply, and the keys'
/// namespace, and waits until the CRDs are served.
pub fn install_crds() {
    kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", "crds/"]);
    let keys = format!(
        r#"{{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": "{KEYS_NAMESPACE}"}}}}"#
    );
    let applied = kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&keys));
    assert!(applied.success, "{}{}", applied.stdout, applied.stderr);
    let crds: Vec<String> = hygie::api::crds()
        .iter()
        .map(|crd| format!("crd/{}", crd.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    let mut args = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    args.extend(crds.iter().map(String::as_str));
    kubectl_ok(&args);
}

/// A namespace that exists for one test, deleted when dropped. Its pods must meet Pod Security
/// `restricted`, which the API server enforces.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub async fn create(client: &Client, prefix: &str) -> TestNamespace {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "{prefix}-{:x}{:04x}",
            std::process::id() % 0xfff,
            nanos % 0xffff
        );
        create_namespace(client, &name).await;
        TestNamespace { name }
    }
}

/// Creates `name` (if missing) with Pod Security `restricted` enforced.
pub async fn create_namespace(client: &Client, name: &str) {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [
                    ("pod-security.kubernetes.io/enforce", "restricted"),
                    ("pod-security.kubernetes.io/enforce-version", "latest"),
                    ("hygie.io/test", "true"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => panic!("cannot create namespace {name}: {e}"),
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Best effort and asynchronous: the namespace controller finishes the work.
        let _ = kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

/// Waits until `condition` holds for `name`, or fails with what was last seen.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    condition: impl Condition<K>,
) where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let waited = tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await;
    match waited {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("watching {name} for `{what}` failed: {e}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            panic!("{name}: `{what}` did not happen within {timeout:?}; last seen: {last:#?}");
        }
    }
}

/// Deletes `name` and waits until it is gone (finalizers included), or fails.
pub async fn delete_and_wait<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    api.delete(name, &kube::api::DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("cannot delete {name}: {e}"));
    wait_for(api, name, "deleted", timeout, |o: Option<&K>| o.is_none()).await;
}

/// Binds a new PersistentVolume with reclaim policy Retain to the claim `namespace/claim`, as a
/// provisioner and the volume binder would, and returns its name.
pub async fn bind_a_retained_volume(client: &Client, namespace: &str, claim: &str) -> String {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use kube::api::{Patch, PatchParams};
    let name = format!("pv-{namespace}-{claim}");
    let volume: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "csi": {"driver": "csi.example.fr", "volumeHandle": name},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }))
    .unwrap();
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    volumes.create(&Default::default(), &volume).await.unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let bind = Patch::Merge(serde_json::json!({"spec": {"volumeName": name}}));
    claims
        .patch(claim, &PatchParams::default(), &bind)
        .await
        .unwrap();
    name
}

/// Applies `objects` as a platform team would, with kubectl and server-side apply, into
/// `namespace` where they name none.
pub fn apply_as_platform_team(namespace: Option<&str>, objects: &[serde_json::Value]) {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let mut args = vec![
        "apply",
        "--server-side",
        "--field-manager=platform-team",
        "-f",
        "-",
    ];
    if let Some(namespace) = namespace {
        args.extend(["--namespace", namespace]);
    }
    let out = kubectl_with_input(&args, Some(&list.to_string()));
    assert!(out.success, "kubectl apply failed: {}", out.stderr);
}

/// `object` as a manifest: its JSON without status.
pub fn manifest<T: serde::Serialize>(object: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap();
    value.as_object_mut().unwrap().remove("status");
    value
}
