//! On a real node (tests/node): the kubelet runs what Hygie builds, the CSI driver mounts its
//! volumes with their keys, kube-router enforces its NetworkPolicies and CoreDNS answers. Every
//! assertion is an observation: a pod the kubelet reports Ready, a command run inside it, a
//! connection that goes through or does not. Nothing is patched by hand.
//!
//! The bundle is examples/scaleway, which these tests did not write: only what cannot exist
//! here is substituted (the image and its registry, sizes a test node can hold, names that keep
//! tests apart), the egress allowlist names a server the test starts, and the ingress namespace
//! is the test's own.

use std::time::Duration;

use hygie::{
    api::{
        Dataset, ExportRequest, HostingProfile, Workspace, common::EgressRule, export::ExportPhase,
        workspace::WorkspacePhase,
    },
    bundle::Bundle,
};
use hygie_tests::{
    cluster::{
        KEYS_NAMESPACE, TestNamespace, apply_as_platform_team, client, create_namespace,
        install_crds, kubectl, kubectl_ok, manifest, wait_for,
    },
    desktop::{self, BACKGROUND, Browser, Gateway, RfbClient, pixels_of, scratch},
    node::{audit_records, create_locked_bucket, exec, fetch, node_state, probe_image, s3},
    operator::{OPERATOR_NAMESPACE, Operator, one_at_a_time},
    repo_root, reviews,
    users::{airlock_roles, create_as, hygie_as, kubectl_as},
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;

const START: Duration = Duration::from_secs(180);
const LEASE: &str = "hygie-node";
/// What the probe image serves on port 8888, and the outside server on 10.215.0.2:8080.
const PROBE_PAGE: &str = "probe";
const OUTSIDE: &str = "10.215.0.2:8080";
const OUTSIDE_PAGE: &str = "the outside";
/// The rows the dataset's source claim holds before Hygie clones it.
const ROWS: &str = "patient,readmitted\n1,yes\n2,no\n";

/// A pod in `namespace` running the probe image as Pod Security `restricted` requires,
/// serving its page on 8888 (and on `extra_port` when given), mounting `claim` at /src.
fn probe_pod(name: &str, extra_port: Option<u16>, claim: Option<&str>) -> serde_json::Value {
    let serve = match extra_port {
        Some(port) => format!("httpd -p {port} -h /www; exec httpd -f -p 8888 -h /www"),
        None => "exec httpd -f -p 8888 -h /www".to_owned(),
    };
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "containers": [{
                "name": "probe",
                "image": probe_image(),
                "command": ["sh", "-c", serve],
                "securityContext": {
                    "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]}
                },
                "readinessProbe": {"tcpSocket": {"port": 8888}, "periodSeconds": 1}
            }]
        }
    });
    if let Some(claim) = claim {
        pod["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "src", "mountPath": "/src"}]);
        pod["spec"]["volumes"] =
            json!([{"name": "src", "persistentVolumeClaim": {"claimName": claim}}]);
    }
    pod
}

fn apply_in(namespace: &str, objects: &[serde_json::Value]) {
    apply_as_platform_team(Some(namespace), objects);
}

async fn wait_ready(client: &Client, namespace: &str, pod: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    wait_for(
        &api,
        pod,
        "Ready, as the kubelet reports it",
        START,
        |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        },
    )
    .await;
    api.get(pod).await.unwrap()
}

fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a pod IP")
}

/// The Scaleway example, moved into `namespace` and made to fit the test node.
struct Scene {
    client: Client,
    namespace: TestNamespace,
    profile: HostingProfile,
    dataset: Dataset,
    workspace: Workspace,
}

impl Scene {
    async fn new(prefix: &str) -> Scene {
        install_crds();
        let client = client().await;
        let namespace = TestNamespace::create(&client, prefix).await;
        let ns = namespace.name.clone();
        let mut bundle = Bundle::load(&[repo_root().join("examples/scaleway")]).unwrap();
        let mut profile = bundle.inventory.profiles.values().next().unwrap().clone();
        let mut dataset = bundle.inventory.datasets.values().next().unwrap().clone();
        let mut workspace = bundle.workspaces.remove(0);

        let profile_name = format!("{}-{ns}", profile.name_any());
        profile.metadata.name = Some(profile_name.clone());
        profile.spec.images.allowed_registries = vec!["registry.hygie.test/".into()];
        profile.spec.images.importer = Some(node_state("rclone.ref"));
        let ingress = profile
            .spec
            .network
            .ingress_from
            .as_mut()
            .expect("the example admits ingress");
        ingress.namespace_labels = [(
            "kubernetes.io/metadata.name".to_owned(),
            format!("{ns}-ingress"),
        )]
        .into();
        // The outside's object store (versitygw), which the airlock's Jobs reach.
        profile.spec.network.egress_destinations = vec!["10.215.0.2/32".into()];

        dataset.metadata.namespace = Some(ns.clone());
        dataset.spec.hosting_profile = profile_name.clone();
        dataset.spec.storage.size =
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1Gi".into());

        workspace.metadata.namespace = Some(ns.clone());
        workspace.spec.hosting_profile = profile_name;
        workspace.spec.image = probe_image();
        workspace.spec.port = 8888;
        workspace.spec.storage.size =
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1Gi".into());
        workspace.spec.resources = serde_json::from_value(json!({
            "requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}
        }))
        .unwrap();
        Scene {
            client,
            namespace,
            profile,
            dataset,
            workspace,
        }
    }

    fn ns(&self) -> &str {
        &self.namespace.name
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.ns())
    }

    /// The volume keys, in their own namespace.
    fn keys(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), KEYS_NAMESPACE)
    }

    /// The name of the key Secret of the claim `claim` of the scene's namespace.
    fn key_name(&self, claim: &str) -> String {
        format!("{}.{claim}-luks", self.ns())
    }

    /// The claim the dataset clones, filled by a pod before Hygie sees it, with the passphrase
    /// Secret its class reads, as the pipeline that exported the registry would leave it.
    async fn fill_the_source_claim(&self) {
        let source = self
            .dataset
            .spec
            .source
            .as_ref()
            .and_then(|s| s.persistent_volume_claim.as_ref())
            .expect("the example clones a claim")
            .claim_name
            .clone();
        let mut filler = probe_pod("filler", None, Some(&source));
        filler["spec"]["containers"][0]["command"] = json!([
            "sh",
            "-c",
            format!(
                "printf '{}' > /src/readmissions.csv",
                ROWS.replace('\n', "\\n")
            )
        ]);
        filler["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("readinessProbe");
        apply_in(
            KEYS_NAMESPACE,
            &[
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": self.key_name(&source)},
                   "stringData": {"encryptionPassphrase": "the exporting pipeline's passphrase"}}),
            ],
        );
        apply_in(
            self.ns(),
            &[
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": source},
                   "spec": {"storageClassName": "scw-bssd-luks", "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}}}}),
                filler,
            ],
        );
        let pods: Api<Pod> = self.api();
        wait_for(&pods, "filler", "Succeeded", START, |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Succeeded")
        })
        .await;
    }

    fn apply_bundle(&self) {
        apply_in(
            self.ns(),
            &[
                manifest(&self.profile),
                manifest(&self.dataset),
                manifest(&self.workspace),
            ],
        );
    }

    fn workload(&self) -> String {
        format!("{}-0", self.workspace.name_any())
    }

    async fn wait_phase(&self, phase: WorkspacePhase) {
        let api: Api<Workspace> = self.api();
        wait_for(
            &api,
            &self.workspace.name_any(),
            &format!("phase {phase:?}"),
            START,
            move |w: Option<&Workspace>| {
                w.and_then(|w| w.status.as_ref())
                    .and_then(|s| s.phase.as_ref())
                    == Some(&phase)
            },
        )
        .await;
    }

    async fn wait_workload_gone(&self) {
        let api: Api<Pod> = self.api();
        wait_for(&api, &self.workload(), "gone", START, |p: Option<&Pod>| {
            p.is_none()
        })
        .await;
    }

    async fn patch_workspace(&self, patch: serde_json::Value) {
        let api: Api<Workspace> = self.api();
        api.patch(
            &self.workspace.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .unwrap();
    }

    /// The message of the first Event of `reason` about `object`, waiting for one.
    async fn event_message(&self, object: &str, reason: &str) -> String {
        let events: Api<Event> = self.api();
        let deadline = tokio::time::Instant::now() + START;
        loop {
            let found = events
                .list(&ListParams::default().fields(&format!("involvedObject.name={object}")))
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason));
            if let Some(event) = found {
                return event.message.unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {reason} Event for {object}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn bound_claims(&self) -> Vec<String> {
        let claims: Api<PersistentVolumeClaim> = self.api();
        let mut names: Vec<String> = claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .map(|c| c.name_any())
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn a_workspace_from_the_scaleway_example_runs_hardened_reads_its_dataset_and_is_fenced() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("node-run").await;
    let ns = scene.ns().to_owned();
    scene.fill_the_source_claim().await;

    // Servers: one the allowlist names (on 8888; 9999 is not listed), one it does not.
    apply_in(
        &ns,
        &[
            probe_pod("allowed", Some(9999), None),
            probe_pod("other", None, None),
        ],
    );
    let allowed = pod_ip(&wait_ready(&scene.client, &ns, "allowed").await);
    let other = pod_ip(&wait_ready(&scene.client, &ns, "other").await);
    scene.workspace.spec.egress = vec![
        serde_json::from_value::<EgressRule>(
            json!({"cidr": format!("{allowed}/32"), "ports": [{"port": 8888}]}),
        )
        .unwrap(),
    ];
    // The platform declares the allowed server; `other`, as private, is declared by nobody.
    scene
        .profile
        .spec
        .network
        .egress_destinations
        .push(format!("{allowed}/32"));

    let _operator = Operator::start("node-run", LEASE, 3600);
    scene.apply_bundle();
    scene.wait_phase(WorkspacePhase::Ready).await;
    let workload = scene.workload();
    let pod = wait_ready(&scene.client, &ns, &workload).await;
    assert_eq!(
        pod.spec.unwrap().containers[0].image.as_deref(),
        Some(probe_image().as_str())
    );

    // Hardened, as the kubelet and the runtime applied it.
    let (_, id) = exec(&ns, &workload, "id");
    assert!(id.starts_with("uid=10001 gid=10001"), "runs as 10001: {id}");
    let (wrote_root, out) = exec(&ns, &workload, "touch /x");
    assert!(
        !wrote_root && out.contains("Read-only file system"),
        "the root is read-only: {out}"
    );
    let (wrote_home, out) = exec(
        &ns,
        &workload,
        "touch /home/researcher/notes && ls -n /home/researcher/notes",
    );
    assert!(wrote_home, "the home is writable: {out}");
    let (_, status) = exec(&ns, &workload, "cat /proc/1/status");
    assert!(
        status.contains("CapEff:\t0000000000000000"),
        "no capability: {status}"
    );
    assert!(
        status.contains("NoNewPrivs:\t1"),
        "no privilege escalation: {status}"
    );
    assert!(status.contains("Seccomp:\t2"), "a seccomp filter: {status}");

    // The dataset: a clone of the source claim, opened with the source's key, read-only.
    let (_, rows) = exec(&ns, &workload, "cat /data/registry/readmissions.csv");
    assert_eq!(rows, ROWS, "the dataset mount holds the source's content");
    let (wrote_data, out) = exec(&ns, &workload, "touch /data/registry/x");
    assert!(
        !wrote_data && out.contains("Read-only file system"),
        "the dataset is read-only: {out}"
    );

    // No resolver for a workspace of health data: a query is a way out. The control pod, which
    // no policy selects, resolves the same name through the cluster's CoreDNS.
    let lookup = "nslookup kubernetes.default.svc.cluster.local";
    let (resolved, out) = exec(&ns, "other", lookup);
    assert!(
        resolved && out.contains("10.96.0.1"),
        "the control resolves: {out}"
    );
    let (resolved, out) = exec(&ns, &workload, lookup);
    assert!(
        !resolved && !out.contains("10.96.0.1"),
        "the workspace resolves no name: {out}"
    );
    let (_, resolv) = exec(&ns, &workload, "cat /etc/resolv.conf");
    assert!(
        resolv.contains("nameserver 127.0.0.1") && !resolv.contains("10.96.0.10"),
        "{resolv}"
    );
    let policies = kubectl_ok(&["get", "networkpolicies", "-n", &ns, "-o", "name"]);
    assert!(!policies.contains("-allow-dns"), "{policies}");

    // The cluster's CoreDNS forwards what it does not know to the outside's resolver, as a
    // managed cluster's forwards to the Internet, and that resolver logs every query: a DNS
    // tunnel's far end. The control pod's lookup of a name under its zone reaches it; the
    // workspace's, through the cluster's resolver or straight to the outside's, never does.
    let control = format!("control-{ns}.outside.hygie.test");
    let (resolved, out) = exec(&ns, "other", &format!("nslookup {control}"));
    assert!(
        resolved && out.contains("10.215.0.2"),
        "the control resolves through the forwarding resolver: {out}"
    );
    let tunnel = format!("rows-of-{ns}.outside.hygie.test");
    for server in ["", "10.96.0.10", "10.215.0.2"] {
        let (resolved, out) = exec(
            &ns,
            &workload,
            &format!("nslookup -timeout=2 -retry=1 {tunnel} {server}"),
        );
        assert!(
            !resolved,
            "the workspace resolved through `{server}`: {out}"
        );
    }
    let queries = node_state("outside-dns.log");
    assert!(
        queries.contains(&control),
        "the outside logs what reaches it"
    );
    assert!(
        !queries.contains(&tunnel),
        "a query of the workspace's reached the outside"
    );

    // /tmp is in memory, never on the node's disk.
    let (wrote_tmp, out) = exec(
        &ns,
        &workload,
        "echo scratch > /tmp/scratch && grep ' /tmp ' /proc/mounts",
    );
    assert!(wrote_tmp && out.contains("tmpfs"), "/tmp is a tmpfs: {out}");

    // Egress: the allowlisted address and port only. The control pod, which no policy selects,
    // reaches all three, so a refusal below is the policy's.
    for target in [format!("{allowed}:9999"), format!("{other}:8888")] {
        assert!(
            fetch(&ns, "other", &target).contains(PROBE_PAGE),
            "the control reaches {target}"
        );
    }
    assert!(
        fetch(&ns, "other", OUTSIDE).contains(OUTSIDE_PAGE),
        "the control reaches the outside"
    );
    assert!(
        fetch(&ns, &workload, &format!("{allowed}:8888")).contains(PROBE_PAGE),
        "the allowlisted address:port"
    );
    for target in [
        format!("{allowed}:9999"),
        format!("{other}:8888"),
        OUTSIDE.to_owned(),
    ] {
        let got = fetch(&ns, &workload, &target);
        assert!(
            !got.contains("HTTP/1"),
            "egress to {target} must be dropped, got: {got}"
        );
    }

    // Ingress: none to the tool of a workspace of health data, not even from the profile's
    // ingress namespace: it is seen through the gateway's screen only.
    let workspace_ip = pod_ip(&scene.api::<Pod>().get(&workload).await.unwrap());
    let target = format!("{workspace_ip}:8888");
    assert!(
        fetch(&ns, &workload, "127.0.0.1:8888").contains(PROBE_PAGE),
        "the tool serves, to its own pod"
    );
    let ingress = format!("{ns}-ingress");
    create_namespace(&scene.client, &ingress).await;
    apply_in(&ingress, &[probe_pod("client", None, None)]);
    wait_ready(&scene.client, &ingress, "client").await;
    let from_ingress = fetch(&ingress, "client", &target);
    kubectl(&["delete", "namespace", &ingress, "--wait=false"]);
    assert!(
        !from_ingress.contains("HTTP/1"),
        "the ingress namespace does not reach the tool of a workspace seen through a screen: {from_ingress}"
    );
    assert!(
        !fetch(&ns, "other", &target).contains("HTTP/1"),
        "another namespace's pod does not"
    );
}

#[tokio::test]
async fn suspend_and_expiry_stop_the_pod_keep_the_volumes_and_a_lost_key_blocks_the_mount() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("node-stop").await;
    let ns = scene.ns().to_owned();
    scene.fill_the_source_claim().await;
    let (bucket, sink) = audit_sink(&ns);
    let sink: Vec<&str> = sink.iter().map(String::as_str).collect();
    let mut operator = Operator::start_with("node-stop", LEASE, 3600, &sink);
    scene.apply_bundle();
    scene.wait_phase(WorkspacePhase::Ready).await;
    let workload = scene.workload();
    wait_ready(&scene.client, &ns, &workload).await;
    let (wrote, out) = exec(&ns, &workload, "echo kept > /home/researcher/notes");
    assert!(wrote, "{out}");
    let claims = scene.bound_claims().await;

    // Suspend: the pod goes, the volumes stay, and resuming finds the home as it was left.
    scene
        .patch_workspace(json!({"spec": {"suspend": true}}))
        .await;
    scene.wait_workload_gone().await;
    assert_eq!(
        scene.bound_claims().await,
        claims,
        "suspension keeps every volume"
    );
    scene
        .patch_workspace(json!({"spec": {"suspend": false}}))
        .await;
    wait_ready(&scene.client, &ns, &workload).await;
    assert_eq!(
        exec(&ns, &workload, "cat /home/researcher/notes").1,
        "kept\n"
    );

    // The key is the lock. Someone deletes the home's key Secret (a backup of it is kept
    // here) and the pod restarts: the kubelet cannot mount the volume, and Hygie makes no new
    // key, which would not open it either.
    let home = format!("{}-home", scene.workspace.name_any());
    let key_name = scene.key_name(&home);
    let secrets = scene.keys();
    let mut backup = secrets.get(&key_name).await.unwrap();
    secrets
        .delete(&key_name, &Default::default())
        .await
        .unwrap();
    scene
        .api::<Pod>()
        .delete(&workload, &Default::default())
        .await
        .unwrap();
    let failed_mount = scene.event_message(&workload, "FailedMount").await;
    assert!(
        failed_mount.contains(&key_name),
        "the mount fails for the missing Secret: {failed_mount}"
    );
    let api: Api<Workspace> = scene.api();
    wait_for(
        &api,
        &scene.workspace.name_any(),
        "Stalled: KeyLost",
        START,
        |w: Option<&Workspace>| {
            w.and_then(|w| w.status.as_ref()).is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "KeyLost")
            })
        },
    )
    .await;
    assert!(
        secrets.get_opt(&key_name).await.unwrap().is_none(),
        "no new key is made for a volume formatted with the lost one"
    );
    // Restored from the backup, the key opens the volume again, with its content.
    backup.metadata = kube::api::ObjectMeta {
        name: backup.metadata.name,
        labels: backup.metadata.labels,
        annotations: backup.metadata.annotations,
        owner_references: backup.metadata.owner_references,
        ..Default::default()
    };
    secrets.create(&Default::default(), &backup).await.unwrap();
    wait_ready(&scene.client, &ns, &workload).await;
    assert_eq!(
        exec(&ns, &workload, "cat /home/researcher/notes").1,
        "kept\n"
    );

    // Expiry: the pod goes by the clock, and the volumes stay.
    let soon = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 5).unwrap();
    scene
        .patch_workspace(json!({"spec": {"expiresAt": soon.to_string()}}))
        .await;
    scene.wait_phase(WorkspacePhase::Expired).await;
    scene.wait_workload_gone().await;
    assert_eq!(
        scene.bound_claims().await,
        claims,
        "expiry keeps every volume"
    );

    // Deletion: pod, claims, keys and the volumes themselves go.
    let volumes: Vec<String> = scene
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=hygie"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.labels().get("hygie.io/workspace").is_some())
        .filter_map(|c| c.spec.and_then(|s| s.volume_name))
        .collect();
    assert!(!volumes.is_empty());
    kubectl_ok(&[
        "delete",
        "-n",
        &ns,
        "workspace",
        &scene.workspace.name_any(),
        "--wait=true",
        "--timeout=120s",
    ]);
    scene.wait_workload_gone().await;
    let pvs: Api<PersistentVolume> = Api::all(scene.client.clone());
    for volume in &volumes {
        wait_for(
            &pvs,
            volume,
            "deleted by the provisioner",
            START,
            |v: Option<&PersistentVolume>| v.is_none(),
        )
        .await;
        let dir = repo_root().join("tests/node/state/volumes").join(volume);
        assert!(
            !dir.exists(),
            "the volume's data is gone from the node: {}",
            dir.display()
        );
    }
    let left: Vec<String> = scene
        .keys()
        .list(&ListParams::default().labels(&format!(
            "hygie.io/workspace={}",
            scene.workspace.name_any()
        )))
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert!(
        left.is_empty(),
        "the workspace's keys are deleted: {left:?}"
    );

    // The dataset is shredded and the profile goes: no Hygie object is left. The operator is
    // restarted, and the register still tells the whole story from the audit sink.
    let dataset = scene.dataset.name_any();
    let key: Secret = scene
        .keys()
        .get(&scene.key_name(&format!("{dataset}-data")))
        .await
        .unwrap();
    // Nothing irreversible before its record: while the sink cannot take it (its bucket is not
    // there), the shred waits, the dataset Stalled and naming the sink, its key and claim kept.
    assert!(operator.terminate(), "the operator stops on SIGTERM");
    let absent = format!("absent-{ns}");
    let blind_sink: Vec<&str> = sink
        .iter()
        .map(|a| match *a == bucket {
            true => absent.as_str(),
            false => a,
        })
        .collect();
    let mut blind = Operator::start_with("node-stop-blind", LEASE, 3600, &blind_sink);
    kubectl_ok(&["delete", "-n", &ns, "dataset", &dataset, "--wait=false"]);
    let datasets: Api<Dataset> = scene.api();
    wait_for(
        &datasets,
        &dataset,
        "stalled on the audit sink",
        START,
        |d: Option<&Dataset>| {
            d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Stalled" && c.reason == "AuditSinkUnavailable")
            })
        },
    )
    .await;
    let stalled = datasets
        .get(&dataset)
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions;
    let message = &stalled
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap()
        .message;
    assert!(
        message.contains(&format!("bucket `{absent}`")) && message.contains("Shredded of Dataset/"),
        "{message}"
    );
    let kept: Secret = scene
        .keys()
        .get(&scene.key_name(&format!("{dataset}-data")))
        .await
        .unwrap();
    assert_eq!(kept.metadata.uid, key.metadata.uid, "the key waits");
    assert!(kept.metadata.deletion_timestamp.is_none(), "the key waits");
    assert!(
        scene
            .api::<PersistentVolumeClaim>()
            .get_opt(&format!("{dataset}-data"))
            .await
            .unwrap()
            .is_some(),
        "the claim waits"
    );
    assert!(blind.terminate(), "the operator stops on SIGTERM");
    // The sink back, the shred goes on from its record.
    let mut operator = Operator::start_with("node-stop-1", LEASE, 3600, &sink);
    kubectl_ok(&[
        "delete",
        "-n",
        &ns,
        "dataset",
        &dataset,
        "--wait=true",
        "--timeout=120s",
    ]);
    kubectl_ok(&[
        "delete",
        "hostingprofile",
        &scene.profile.name_any(),
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(operator.terminate(), "the operator stops on SIGTERM");
    let _restarted = Operator::start_with("node-stop-2", LEASE, 3600, &sink);
    let register = register_with(&sink);
    let history = register["history"].as_array().unwrap();
    let actions = |object: &str| -> Vec<String> {
        history
            .iter()
            .filter(|r| r["object"] == object)
            .map(|r| r["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let workspace = actions(&format!("Workspace/{ns}/{}", scene.workspace.name_any()));
    for step in [
        "KeyCreated",
        "AccessGranted",
        "Suspended",
        "Expired",
        "VolumeDeleted",
        "KeyDestroyed",
        "Deleted",
    ] {
        assert!(
            workspace.iter().any(|a| a == step),
            "no {step} in {workspace:?}"
        );
    }
    let dataset_history = actions(&format!("Dataset/{ns}/{dataset}"));
    let steps: Vec<&str> = history
        .iter()
        .filter(|r| r["object"] == format!("Dataset/{ns}/{dataset}").as_str())
        .filter(|r| r["action"] == "Shredded" || r["action"] == "Shredding")
        .map(|r| r["step"].as_str().unwrap_or("Done"))
        .collect();
    assert_eq!(
        steps,
        ["Intended", "Done", "Done"],
        "the intent once, before the key, then the volume: {dataset_history:?}"
    );
    let (shredding, shredded) = (
        dataset_history.iter().position(|a| a == "Shredding"),
        dataset_history.iter().rposition(|a| a == "Shredded"),
    );
    assert!(
        matches!((shredding, shredded), (Some(a), Some(b)) if a < b),
        "the key first, then the volume: {dataset_history:?}"
    );
    let proof = register["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["action"] == "Shredding" && d["object"] == format!("Dataset/{ns}/{dataset}").as_str()
        })
        .expect("the proof of the key's destruction");
    assert_eq!(
        proof["evidence"]["keySecretUid"],
        key.metadata.uid.unwrap().as_str()
    );
    assert_eq!(
        proof["evidence"]["keySecretResourceVersion"],
        key.metadata.resource_version.unwrap().as_str()
    );
}

/// Uploads `objects` to a new bucket of the outside's S3 server, signed as AWS signs requests.
fn upload(bucket: &str, objects: &[(&str, &str)]) {
    let endpoint = node_state("s3.endpoint");
    let user = format!("{}:{}", node_state("s3.access"), node_state("s3.secret"));
    let ca = repo_root().join("tests/node/state/s3-ca.crt");
    let put = |path: &str, body: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sSf",
                "-X",
                "PUT",
                "--aws-sigv4",
                "aws:amz:fr-par:s3",
                "--user",
                &user,
            ])
            .arg("--cacert")
            .arg(&ca)
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .args(["--data-binary", body, &format!("{endpoint}/{path}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PUT {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    put(bucket, "");
    for (key, body) in objects {
        put(&format!("{bucket}/{key}"), body);
    }
}

/// The checksum the import reports, computed here the same way over the same content: the
/// sha256 of the list of each file's sha256 and path, sorted by path.
fn expected_checksum(objects: &[(&str, &str)]) -> String {
    let mut files: Vec<(String, &str)> = objects
        .iter()
        .map(|(key, body)| (format!("./{key}"), *body))
        .collect();
    files.sort();
    let listing: String = files
        .iter()
        .map(|(path, body)| format!("{}  {path}\n", sha256_hex(body.as_bytes())))
        .collect();
    sha256_hex(listing.as_bytes())
}

/// The sha256 of `bytes`, by the coreutils the import Job's busybox mirrors.
fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[tokio::test]
async fn an_s3_import_copies_the_objects_through_its_egress_and_reports_their_checksum() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("node-s3").await;
    let ns = scene.ns().to_owned();
    let objects = [
        ("readmissions.csv", ROWS),
        ("2025/cohort.csv", "patient,age\n1,71\n2,64\n"),
    ];
    let bucket = format!("registry-{ns}");
    upload(&bucket, &objects);
    apply_in(
        &ns,
        &[
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-credentials"},
        "stringData": {"accessKeyId": node_state("s3.access"), "secretAccessKey": node_state("s3.secret")}}),
        ],
    );
    scene.dataset.spec.source = serde_json::from_value(json!({"s3": {
        "endpoint": node_state("s3.named-endpoint"), "bucket": bucket, "region": "fr-par",
        "credentialsSecretRef": {"name": "s3-credentials"},
        "egress": [{"cidr": "10.215.0.2/32", "ports": [{"port": 7070}]}]
    }}))
    .unwrap();

    let _operator = Operator::start("node-s3", LEASE, 3600);
    scene.apply_bundle();
    let datasets: Api<Dataset> = scene.api();
    wait_for(
        &datasets,
        &scene.dataset.name_any(),
        "imported",
        START,
        |d: Option<&Dataset>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.imported_checksum.is_some())
        },
    )
    .await;
    let status = datasets
        .get(&scene.dataset.name_any())
        .await
        .unwrap()
        .status
        .unwrap();
    let expected = format!("sha256:{}", expected_checksum(&objects));
    assert_eq!(
        status.imported_checksum,
        Some(expected),
        "the checksum of what was uploaded"
    );
    let bytes: usize = objects.iter().map(|(_, body)| body.len()).sum();
    assert_eq!(status.imported_bytes, Some(bytes as i64));

    scene.wait_phase(WorkspacePhase::Ready).await;
    let workload = scene.workload();
    wait_ready(&scene.client, &ns, &workload).await;
    for (key, body) in objects {
        assert_eq!(
            exec(&ns, &workload, &format!("cat /data/registry/{key}")).1,
            body
        );
    }
}

/// A bucket with Object Lock for the audit sink of the test in `ns`, and the options of `hygie
/// run` and `hygie report` that name it, its writer's credentials (in files) and its CA.
fn audit_sink(ns: &str) -> (String, Vec<String>) {
    let (bucket, options) = audit_sink_options(ns);
    create_locked_bucket(&bucket);
    (bucket, options)
}

/// Like [`audit_sink`], the bucket not made yet.
fn audit_sink_options(ns: &str) -> (String, Vec<String>) {
    let bucket = format!("audit-{ns}");
    let credentials = repo_root().join(format!("tests/node/state/audit-{ns}"));
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("accessKeyId"), node_state("s3.access")).unwrap();
    std::fs::write(credentials.join("secretAccessKey"), node_state("s3.secret")).unwrap();
    let ca = repo_root().join("tests/node/state/s3-ca.crt");
    let options = [
        ("--audit-s3-endpoint", node_state("s3.endpoint")),
        ("--audit-s3-bucket", bucket.clone()),
        ("--audit-s3-prefix", "hygie/".into()),
        ("--audit-s3-region", "fr-par".into()),
        ("--audit-s3-retention-days", "1".into()),
        ("--audit-s3-credentials", credentials.display().to_string()),
        ("--audit-s3-ca-file", ca.display().to_string()),
    ];
    let options = options
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect();
    (bucket, options)
}

/// `hygie report -o json` of the cluster, reading the audit sink `sink` names.
fn register_with(sink: &[&str]) -> serde_json::Value {
    let report = std::process::Command::new(hygie_tests::operator::operator_binary())
        .args(["report", "-o", "json"])
        .args(sink)
        .env("KUBECONFIG", hygie_tests::cluster::kubeconfig())
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    serde_json::from_slice(&report.stdout).unwrap()
}

/// The object `key` of `bucket` on the outside's S3 server, if it is there.
fn download(bucket: &str, key: &str) -> Option<String> {
    let (code, body) = s3(&[&format!("{}/{bucket}/{key}", node_state("s3.endpoint"))]);
    match code.as_str() {
        "200" => Some(body),
        "404" => None,
        other => panic!("GET {bucket}/{key}: HTTP {other}: {body}"),
    }
}

fn export_request(name: &str, workspace: &str, files: &[&str]) -> serde_json::Value {
    json!({
        "apiVersion": "hygie.io/v1alpha1", "kind": "ExportRequest",
        "metadata": {"name": name},
        "spec": {"workspace": workspace, "files": files, "justification": "Table 2 of the article",
                 "outputs": ["AggregateStatistics"], "destination": "results", "requester": "alice"}
    })
}

async fn wait_export_phase(
    api: &Api<ExportRequest>,
    name: &str,
    phase: ExportPhase,
) -> ExportRequest {
    wait_for(
        api,
        name,
        &format!("phase {phase:?}"),
        START,
        move |r: Option<&ExportRequest>| {
            r.and_then(|r| r.status.as_ref()).and_then(|s| s.phase) == Some(phase)
        },
    )
    .await;
    api.get(name).await.unwrap()
}

/// The whole airlock, as alice (a member of the workspace), bob and carol (the dataset's
/// reviewers) and mallory (nobody), each authenticated by their own certificate, with real
/// Jobs, a real review pod and the outside's real S3 server.
#[tokio::test]
async fn an_export_leaves_only_with_two_reviewers_approval_and_exactly_the_reviewed_bytes() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("node-airlock").await;
    let ns = scene.ns().to_owned();
    scene.fill_the_source_claim().await;
    let bucket = format!("airlock-{ns}");
    upload(&bucket, &[]);
    scene.profile.spec.exports = serde_json::from_value(json!({
        "destinations": [{"name": "results", "s3": {
            "endpoint": node_state("s3.named-endpoint"), "bucket": bucket, "region": "fr-par",
            "credentialsSecretRef": {"name": "s3-credentials"},
            "egress": [{"cidr": "10.215.0.2/32", "ports": [{"port": 7070}]}]
        }}],
        "maxTotalSize": "1Mi"
    }))
    .unwrap();
    scene.dataset.spec.export = serde_json::from_value(json!({
        "allowed": true,
        "reviewers": [{"kind": "User", "name": "bob"}, {"kind": "User", "name": "carol"},
                      {"kind": "User", "name": "dave"}]
    }))
    .unwrap();
    scene.workspace.spec.members.push(
        serde_json::from_value(json!({"kind": "User", "name": "alice", "role": "Owner"})).unwrap(),
    );
    // dave is listed as a reviewer and also works in the study: his reviews never count.
    scene.workspace.spec.members.push(
        serde_json::from_value(json!({"kind": "User", "name": "dave", "role": "Viewer"})).unwrap(),
    );
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-credentials"},
        "stringData": {"accessKeyId": node_state("s3.access"), "secretAccessKey": node_state("s3.secret")}}),
    ];
    objects.extend(airlock_roles(
        &ns,
        &[
            ("alice", "researcher"),
            ("alice", "reviewer"),
            ("bob", "reviewer"),
            ("carol", "reviewer"),
            ("dave", "reviewer"),
        ],
    ));
    apply_in(&ns, &objects);

    // The audit sink: a bucket with Object Lock, and its writer's credentials in files.
    let endpoint = node_state("s3.endpoint");
    let (audit, sink) = audit_sink(&ns);
    // Reviewers see the staged files on the node's desktop image, opened by a gateway sharing
    // the operator's desktop key.
    scene.profile.spec.images.review = Some(node_state("desktop.ref"));
    let scratch = scratch("node-review");
    let mut desktop_key = vec![0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut desktop_key,
    )
    .unwrap();
    let key_file = scratch.join("desktop.key");
    std::fs::write(&key_file, &desktop_key).unwrap();
    let sink: Vec<&str> = sink.iter().map(String::as_str).collect();
    let mut arguments = sink.clone();
    arguments.extend(["--desktop-key-file", key_file.to_str().unwrap()]);
    let _operator = Operator::start_with("node-airlock", LEASE, 3600, &arguments);
    scene.apply_bundle();
    scene.wait_phase(WorkspacePhase::Ready).await;
    let workload = scene.workload();
    wait_ready(&scene.client, &ns, &workload).await;

    // alice writes her table, a row-level file she will not ask for, and a link to her home.
    let table = "band,patients\nHbA1c<7,14\nHbA1c>=7,23\n";
    let script = format!(
        "mkdir -p /outbox/tables && printf '{}' > /outbox/tables/t2.csv \
         && printf 'patient,dob\\n1,1950-01-01\\n' > /outbox/rows.csv \
         && printf 'row-level notes' > /home/researcher/notes.csv \
         && ln -s /home/researcher/notes.csv /outbox/notes.csv",
        table.replace('\n', "\\n")
    );
    let (ok, out) = exec(&ns, &workload, &script);
    assert!(ok, "{out}");

    let ws = scene.workspace.name_any();
    let out = create_as(
        "alice",
        &ns,
        &export_request("table-2", &ws, &["tables/t2.csv"]),
    );
    assert!(out.success, "{}", out.stderr);
    // Before its files are staged nobody can approve them: the command line says so, and the
    // API server refuses a review made by hand.
    let early = hygie_as(
        "bob",
        &[
            "export",
            "-n",
            &ns,
            "approve",
            "table-2",
            "--reason",
            "in advance",
        ],
    );
    assert!(!early.status.success(), "bob approved before staging");
    let said = String::from_utf8_lossy(&early.stderr);
    assert!(said.contains("is not in review"), "{said}");
    let by_hand = reviews::bound(json!({
        "apiVersion": "hygie.io/v1alpha1", "kind": "ExportReview",
        "metadata": {"name": "table-2-in-advance", "namespace": ns},
        "spec": {"request": "table-2", "reviewer": "bob", "reviewerGroups": ["data-stewards"],
                 "decision": "Approve", "reason": "in advance"}
    }));
    let refused = create_as("bob", &ns, &by_hand);
    assert!(!refused.success, "a review before staging was admitted");
    assert!(
        refused.stderr.contains("hygie-export-review-binding")
            && refused.stderr.contains("not InReview"),
        "{}",
        refused.stderr
    );
    let requests: Api<ExportRequest> = scene.api();
    let staged = wait_export_phase(&requests, "table-2", ExportPhase::InReview).await;
    let staged = staged.status.unwrap().staged_files;
    assert_eq!(staged.len(), 1);
    assert_eq!(staged[0].path, "tables/t2.csv");
    assert_eq!(staged[0].size, table.len() as i64);
    assert_eq!(staged[0].sha256, sha256_hex(table.as_bytes()));

    // What alice changes now changes nothing that is reviewed or released.
    let (ok, out) = exec(
        &ns,
        &workload,
        "printf 'patient,hba1c\\n1,6.1\\n' > /outbox/tables/t2.csv",
    );
    assert!(ok, "{out}");

    // Nobody but the platform team enters the review pod, a listed reviewer neither: reviewers
    // see the staged files through the gateway's screen only (one reviewer copying them out
    // before the second approves would make the two-person rule a one-person rule).
    let review = wait_ready(&scene.client, &ns, "table-2-review-0").await;
    let read = [
        "exec",
        "-n",
        &ns,
        &review.name_any(),
        "--",
        "cat",
        "/staged/files/tables/t2.csv",
    ];
    for person in ["bob", "alice", "mallory"] {
        let refused = kubectl_as(person, &read);
        assert!(!refused.success, "{person} entered the review pod");
        assert!(refused.stderr.contains("forbidden"), "{}", refused.stderr);
    }
    // bob, a reviewer who counts, sees the review's desktop in his browser through the
    // gateway; alice, who asked, holds no right to connect to it (the API server says so to the
    // gateway), and dave, listed but a member of the study, is refused by the gateway's own
    // check.
    let image = review.spec.as_ref().unwrap().containers[0].image.clone();
    assert_eq!(
        image,
        Some(node_state("desktop.ref")),
        "the review desktop runs"
    );
    let gateway = Gateway::start(&scratch, 18445, &desktop_key, 0);
    let review_link = |person: &str| {
        let out = hygie_as(
            person,
            &[
                "connect",
                "--review",
                "table-2",
                "-n",
                &ns,
                "--gateway",
                &gateway.url,
            ],
        );
        assert!(
            out.status.success(),
            "{person}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let mut browser = Browser::start().await;
    let shot = scratch.join("review.png");
    browser
        .screenshot(&review_link("bob"), Duration::from_secs(15), &shot)
        .await;
    let shown = pixels_of(&shot, BACKGROUND);
    assert!(
        shown > 200_000,
        "bob sees the review's desktop ({shown} pixels): see {}; gateway: {}",
        shot.display(),
        gateway.log()
    );
    for (person, why) in [
        ("alice", "may not connect to exportrequests/table-2"),
        ("dave", "is a member of"),
    ] {
        let link = review_link(person);
        assert!(
            RfbClient::open(&link, 18445, &gateway.certificate)
                .await
                .is_err(),
            "{person} was let into the review"
        );
        let (_, session, _) = desktop::session_of(&link);
        let mut refused = Vec::new();
        for _ in 0..50 {
            refused = gateway.records(&session);
            if !refused.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            refused.iter().any(|r| r["audit_action"] == "SessionRefused"
                && r["audit_reasons"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(why)),
            "{person}: {refused:?}"
        );
    }
    drop(browser);

    let (ok, bytes) = exec(&ns, &review.name_any(), "cat /staged/files/tables/t2.csv");
    assert!(ok, "{bytes}");
    assert_eq!(
        bytes, table,
        "the staged bytes, as the platform team reads them"
    );
    let (ok, out) = exec(&ns, &review.name_any(), "printf x > /staged/files/x");
    assert!(!ok, "the review pod could write the staged files: {out}");

    // alice's and dave's approvals are recorded, not counted (the requester, a member); bob's
    // alone releases nothing.
    let key = format!("{ns}/table-2/tables/t2.csv");
    for (user, reason) in [
        ("alice", "mine is fine"),
        ("bob", "counts only, smallest cell 14"),
        ("dave", "I know these rows well"),
    ] {
        let out = hygie_as(
            user,
            &[
                "export", "-n", &ns, "approve", "table-2", "--reason", reason,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_for(
        &requests,
        "table-2",
        "the three reviews recorded",
        START,
        |r: Option<&ExportRequest>| {
            r.and_then(|r| r.status.as_ref())
                .is_some_and(|s| s.reviews.len() == 3)
        },
    )
    .await;
    let status = requests.get("table-2").await.unwrap().status.unwrap();
    assert_eq!(status.phase, Some(ExportPhase::InReview));
    let counted: Vec<bool> = status.reviews.iter().map(|r| r.counted).collect();
    assert_eq!(counted, [false, true, false], "{:?}", status.reviews);
    assert_eq!(
        status.reviews[2].ignored_because.as_deref(),
        Some("a member of the workspace cannot review its exports")
    );
    assert_eq!(download(&bucket, &key), None, "released with one approval");

    // carol's approval is the second: the reviewed bytes are released, and read back.
    let out = hygie_as(
        "carol",
        &[
            "export",
            "-n",
            &ns,
            "approve",
            "table-2",
            "--reason",
            "checked every cell",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let released = wait_export_phase(&requests, "table-2", ExportPhase::Released).await;
    let released = released.status.unwrap().released_objects;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].url, format!("s3://{bucket}/{key}"));
    assert_eq!(released[0].sha256, staged[0].sha256);
    assert_eq!(
        download(&bucket, &key).as_deref(),
        Some(table),
        "the bytes reviewed, not the later ones"
    );
    assert_eq!(download(&bucket, &format!("{ns}/table-2/rows.csv")), None);
    let shown = hygie_as("bob", &["export", "-n", &ns, "show", "table-2"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!(
            "Phase:         Released: 1 file(s) released to s3://{bucket}/"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "  s3://{bucket}/{key}  sha256:{}",
            staged[0].sha256
        )),
        "{shown}"
    );

    // The register of processing lists what left, who approved it, and its digest.
    let report = std::process::Command::new(hygie_tests::operator::operator_binary())
        .args(["report", "-o", "json"])
        .env("KUBECONFIG", hygie_tests::cluster::kubeconfig())
        .output()
        .unwrap();
    let register: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let export = register["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["namespace"] == ns.as_str() && e["request"] == "table-2")
        .expect("the export is in the register");
    assert_eq!(export["phase"], "Released");
    let reviews = export["reviews"].as_array().unwrap();
    for line in [
        "carol Approve (counted)",
        "dave Approve (not counted: a member of the workspace cannot review its exports)",
    ] {
        assert!(reviews.contains(&json!(line)), "{reviews:?}");
    }
    assert_eq!(
        export["released"][0],
        format!("s3://{bucket}/{key} sha256:{}", staged[0].sha256)
    );

    // What was staged is shredded, its key first.
    let note = scene.event_message("table-2", "KeyShredded").await;
    let staged_key = scene.key_name("table-2-staged");
    assert!(note.contains(&format!("Secret/{staged_key}")), "{note}");
    let claims: Api<PersistentVolumeClaim> = scene.api();
    for claim in ["table-2-staged", "table-2-snapshot"] {
        wait_for(
            &claims,
            claim,
            "gone",
            START,
            |c: Option<&PersistentVolumeClaim>| c.is_none(),
        )
        .await;
    }
    assert!(scene.keys().get_opt(&staged_key).await.unwrap().is_none());

    // The record of what left stays: alice cannot delete it, so she cannot submit another
    // table-2 for the old approvals to release.
    let out = kubectl_as("alice", &["delete", "-n", &ns, "exportrequest", "table-2"]);
    assert!(
        !out.success,
        "alice deleted the record of a released export"
    );
    assert!(
        out.stderr.contains("hygie-export-records"),
        "{}",
        out.stderr
    );
    // Even once the platform team deletes it, a new table-2 is another request: the approvals
    // of the first (gone with it, or not) never count for it.
    kubectl_ok(&[
        "delete",
        "-n",
        &ns,
        "exportrequest",
        "table-2",
        "--wait=true",
    ]);
    let out = create_as("alice", &ns, &export_request("table-2", &ws, &["rows.csv"]));
    assert!(out.success, "{}", out.stderr);
    let replayed = wait_export_phase(&requests, "table-2", ExportPhase::InReview).await;
    let replayed_uid = replayed.metadata.uid.clone();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let replayed = requests.get("table-2").await.unwrap();
    assert_eq!(replayed.metadata.uid, replayed_uid);
    let status = replayed.status.unwrap();
    assert_eq!(status.phase, Some(ExportPhase::InReview), "{status:?}");
    assert!(
        status.reviews.iter().all(|r| !r.counted),
        "{:?}",
        status.reviews
    );
    assert_eq!(download(&bucket, &format!("{ns}/table-2/rows.csv")), None);
    let out = kubectl_as(
        "alice",
        &[
            "delete",
            "-n",
            &ns,
            "exportrequest",
            "table-2",
            "--wait=true",
        ],
    );
    assert!(
        out.success,
        "alice withdraws a request in review: {}",
        out.stderr
    );

    // One counted Reject ends a request: nothing leaves, and its staged copy is shredded.
    let out = create_as("alice", &ns, &export_request("rows", &ws, &["rows.csv"]));
    assert!(out.success, "{}", out.stderr);
    wait_export_phase(&requests, "rows", ExportPhase::InReview).await;
    let out = hygie_as(
        "bob",
        &[
            "export",
            "-n",
            &ns,
            "reject",
            "rows",
            "--reason",
            "row-level data",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rejected = wait_export_phase(&requests, "rows", ExportPhase::Rejected).await;
    let ready = rejected.status.unwrap().conditions;
    let ready = ready.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.message, "rejected by bob: row-level data");
    let note = scene.event_message("rows", "KeyShredded").await;
    assert!(
        note.contains(&format!("Secret/{}", scene.key_name("rows-staged"))),
        "{note}"
    );
    assert_eq!(download(&bucket, &format!("{ns}/rows/rows.csv")), None);

    // A request deleted in review is Cancelled: its staged copy is shredded, key first, and
    // then it goes.
    let out = create_as(
        "alice",
        &ns,
        &export_request("withdrawn", &ws, &["rows.csv"]),
    );
    assert!(out.success, "{}", out.stderr);
    wait_export_phase(&requests, "withdrawn", ExportPhase::InReview).await;
    let out = kubectl_as(
        "alice",
        &[
            "delete",
            "-n",
            &ns,
            "exportrequest",
            "withdrawn",
            "--wait=false",
        ],
    );
    assert!(out.success, "{}", out.stderr);
    let note = scene.event_message("withdrawn", "Cancelled").await;
    assert_eq!(note, "deleted before release: nothing left the workspace");
    let note = scene.event_message("withdrawn", "KeyShredded").await;
    assert!(
        note.contains(&format!("Secret/{}", scene.key_name("withdrawn-staged"))),
        "{note}"
    );
    wait_for(
        &requests,
        "withdrawn",
        "gone",
        START,
        |r: Option<&ExportRequest>| r.is_none(),
    )
    .await;
    assert!(
        claims.get_opt("withdrawn-staged").await.unwrap().is_none(),
        "the claim goes before the request"
    );

    // Every decision above is in the audit sink (batched within a second), where nobody can
    // change or delete it.
    let table = format!("\"object\":\"ExportRequest/{ns}/table-2\"");
    let actions = ["Staging", "InReview", "Approved", "Released", "KeyShredded"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (keys, records) = loop {
        let (keys, records) = audit_records(&audit);
        let missing: Vec<&str> = actions
            .into_iter()
            .filter(|action| {
                !records
                    .lines()
                    .any(|r| r.contains(&table) && r.contains(&format!("\"action\":\"{action}\"")))
            })
            .collect();
        if missing.is_empty() {
            break (keys, records);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {missing:?} record for table-2 in the sink:\n{records}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        records
            .lines()
            .all(|r| r.contains("\"recorder\":\"node-airlock\"")),
        "{records}"
    );
    assert!(keys.iter().all(|k| k.starts_with("hygie/")), "{keys:?}");
    let shredded = records
        .lines()
        .find(|r| r.contains(&table) && r.contains("\"action\":\"KeyShredded\""))
        .unwrap();
    assert!(
        shredded.contains("\"claim\":\"table-2-staged\"")
            && shredded.contains(&format!("\"keySecret\":\"{staged_key}\""))
            && shredded.contains("\"keySecretUid\":\""),
        "the record proves which key went: {shredded}"
    );
    // The register reads them back: the key's destruction is listed, with its proof.
    let register = register_with(&sink);
    let deletion = register["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["object"] == format!("ExportRequest/{ns}/table-2").as_str())
        .expect("the staged key's destruction is in the register");
    assert_eq!(deletion["action"], "KeyShredded");
    assert_eq!(deletion["evidence"]["keySecret"], staged_key.as_str());

    let first = format!("{endpoint}/{audit}/{}", keys[0]);
    let (code, body) = s3(&["-X", "DELETE", &first]);
    assert_eq!(
        code, "403",
        "a record was deleted before its retention: {body}"
    );
    let (code, body) = s3(&["-X", "PUT", "--data-binary", "{}", &first]);
    assert_eq!(code, "403", "a record was overwritten: {body}");

    // A link out of the outbox is refused, naming the file.
    let out = create_as("alice", &ns, &export_request("notes", &ws, &["notes.csv"]));
    assert!(out.success, "{}", out.stderr);
    let failed = wait_export_phase(&requests, "notes", ExportPhase::Failed).await;
    let message = failed
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(
        message.starts_with("notes.csv: it is, or is reached through, a symbolic link"),
        "{message}"
    );
}

/// The fault points the crash test stops the operator at, one per action: the sample the test
/// command runs, or those `HYGIE_FAULTS` names (`creation=<point>,deletion=<point>,
/// shred=<point>`), as tests/faults/sweep.sh sets it to reach every point.
fn fault_points() -> [String; 3] {
    let mut points = [
        "key/created".to_owned(),
        "workspace-deletion/deleted".to_owned(),
        "shred/key-deleted".to_owned(),
    ];
    if let Ok(chosen) = std::env::var("HYGIE_FAULTS") {
        for pair in chosen.split(',').filter(|p| !p.is_empty()) {
            let (action, point) = pair.split_once('=').expect("HYGIE_FAULTS: action=point");
            let slot = match action {
                "creation" => 0,
                "deletion" => 1,
                "shred" => 2,
                other => panic!("HYGIE_FAULTS: no action {other}"),
            };
            points[slot] = point.to_owned();
        }
    }
    points
}

/// The records of the audit sink `bucket` about `object`, parsed.
fn records_about(bucket: &str, object: &str) -> Vec<serde_json::Value> {
    let (_, records) = audit_records(bucket);
    records
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|r| r["object"] == object)
        .collect()
}

/// How many of `records` are of `action`, at `step` (`Intended`, or `Done` when absent), about
/// `claim`.
fn count(records: &[serde_json::Value], action: &str, step: &str, claim: &str) -> usize {
    records
        .iter()
        .filter(|r| r["action"] == action && r["evidence"]["claim"] == claim)
        .filter(|r| r["step"].as_str().unwrap_or("Done") == step)
        .count()
}

impl Scene {
    /// The UIDs of the scene's volume keys and claims, by kind and name.
    async fn keys_and_claims(&self) -> std::collections::BTreeMap<String, String> {
        let prefix = format!("{}.", self.ns());
        let keys = self
            .keys()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let keys = keys
            .into_iter()
            .filter(|k| k.name_any().starts_with(&prefix))
            .map(|k| (format!("Secret/{}", k.name_any()), k.uid().unwrap()));
        let claims = self.api::<PersistentVolumeClaim>();
        let claims = claims.list(&ListParams::default()).await.unwrap().items;
        let claims = claims.into_iter().map(|c| {
            (
                format!("PersistentVolumeClaim/{}", c.name_any()),
                c.uid().unwrap(),
            )
        });
        keys.chain(claims).collect()
    }

    /// The PersistentVolume bound to the claim `claim`.
    async fn volume_of(&self, claim: &str) -> String {
        let claims = self.api::<PersistentVolumeClaim>();
        let claim = claims.get(claim).await.unwrap();
        claim
            .spec
            .and_then(|s| s.volume_name)
            .expect("a bound claim")
    }
}

#[tokio::test]
async fn a_crash_at_any_step_of_a_creation_a_deletion_or_a_shred_loses_nothing() {
    let _turn = one_at_a_time().await;
    let [creation, deletion, shred] = fault_points();
    let scene = Scene::new("node-crash").await;
    let ns = scene.ns().to_owned();
    scene.fill_the_source_claim().await;
    let (bucket, sink) = audit_sink(&ns);
    let sink: Vec<&str> = sink.iter().map(String::as_str).collect();
    let armed = |identity: &str, point: &str| {
        Operator::start_armed(identity, LEASE, 3600, &sink, Some(point))
    };
    let crashed = |operator: &mut Operator, point: &str| {
        assert!(
            operator.crashed_at(point, START),
            "the operator did not stop at {point}:\n{}",
            operator.log()
        );
    };

    // Creation: the operator dies right after it made a key (or a claim); the next one makes
    // the rest around it, and the volumes open with the keys made before the crash.
    let source_objects = scene.keys_and_claims().await;
    let mut operator = armed("node-crash-1", &creation);
    scene.apply_bundle();
    crashed(&mut operator, &creation);
    let made: Vec<(String, String)> = scene
        .keys_and_claims()
        .await
        .into_iter()
        .filter(|(object, _)| !source_objects.contains_key(object))
        .collect();
    assert!(!made.is_empty(), "something was made before the crash");
    let mut operator = Operator::start_with("node-crash-2", LEASE, 3600, &sink);
    scene.wait_phase(WorkspacePhase::Ready).await;
    let workload = scene.workload();
    wait_ready(&scene.client, &ns, &workload).await;
    let now = scene.keys_and_claims().await;
    for (object, uid) in &made {
        assert_eq!(
            now.get(object),
            Some(uid),
            "{object}, made before the crash, is the one kept, not made again"
        );
    }
    let (_, rows) = exec(&ns, &workload, "cat /data/registry/readmissions.csv");
    assert_eq!(rows, ROWS, "the dataset's copy opens");
    let (wrote, out) = exec(&ns, &workload, "echo kept > /home/researcher/notes");
    assert!(wrote, "the home opens: {out}");

    // A workspace's deletion: the operator dies between a step and its record. The next one
    // finishes the deletion and records each step once, intent and outcome.
    let workspace = scene.workspace.name_any();
    let claims: Vec<String> = scene
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default().labels(&format!("hygie.io/workspace={workspace}")))
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert!(!claims.is_empty());
    let mut volumes = Vec::new();
    for claim in &claims {
        volumes.push(scene.volume_of(claim).await);
    }
    assert!(operator.terminate(), "the operator stops on SIGTERM");
    let mut operator = armed("node-crash-3", &deletion);
    kubectl_ok(&["delete", "-n", &ns, "workspace", &workspace, "--wait=false"]);
    crashed(&mut operator, &deletion);
    let mut operator = Operator::start_with("node-crash-4", LEASE, 3600, &sink);
    let workspaces: Api<Workspace> = scene.api();
    wait_for(
        &workspaces,
        &workspace,
        "deleted",
        START,
        |w: Option<&Workspace>| w.is_none(),
    )
    .await;
    let pvs: Api<PersistentVolume> = Api::all(scene.client.clone());
    for volume in &volumes {
        wait_for(
            &pvs,
            volume,
            "deleted",
            START,
            |v: Option<&PersistentVolume>| v.is_none(),
        )
        .await;
    }
    let records = records_about(&bucket, &format!("Workspace/{ns}/{workspace}"));
    for claim in &claims {
        for action in ["VolumeDeleted", "KeyDestroyed"] {
            for step in ["Intended", "Done"] {
                assert_eq!(
                    count(&records, action, step, claim),
                    1,
                    "{action} of {claim}, {step}, is in the sink once: {records:#?}"
                );
            }
        }
        assert!(
            scene
                .keys()
                .get_opt(&scene.key_name(claim))
                .await
                .unwrap()
                .is_none(),
            "the key of {claim} is deleted"
        );
    }

    // A shred: the operator dies between two of its steps. The next one finishes it; the
    // volume's disk is gone once the shred is recorded, and the record names it.
    let dataset = scene.dataset.name_any();
    let claim = format!("{dataset}-data");
    let volume = scene.volume_of(&claim).await;
    assert!(operator.terminate(), "the operator stops on SIGTERM");
    let mut operator = armed("node-crash-5", &shred);
    kubectl_ok(&["delete", "-n", &ns, "dataset", &dataset, "--wait=false"]);
    crashed(&mut operator, &shred);
    let mut operator = Operator::start_with("node-crash-6", LEASE, 3600, &sink);
    let datasets: Api<Dataset> = scene.api();
    wait_for(
        &datasets,
        &dataset,
        "deleted",
        START,
        |d: Option<&Dataset>| d.is_none(),
    )
    .await;
    assert!(
        pvs.get_opt(&volume).await.unwrap().is_none(),
        "the volume is gone once the shred is recorded"
    );
    let dir = repo_root().join("tests/node/state/volumes").join(&volume);
    assert!(!dir.exists(), "the volume's data is gone from the node");
    assert!(
        scene
            .keys()
            .get_opt(&scene.key_name(&claim))
            .await
            .unwrap()
            .is_none(),
        "the dataset's key is deleted"
    );
    let records = records_about(&bucket, &format!("Dataset/{ns}/{dataset}"));
    assert_eq!(
        count(&records, "Shredded", "Intended", &claim),
        1,
        "{records:#?}"
    );
    assert_eq!(
        count(&records, "Shredded", "Done", &claim),
        1,
        "{records:#?}"
    );
    let outcome = records
        .iter()
        .find(|r| r["action"] == "Shredded" && r["step"].is_null())
        .unwrap();
    assert_eq!(
        outcome["evidence"]["persistentVolume"],
        volume.as_str(),
        "{outcome}"
    );
    assert!(outcome["evidence"]["keySecretUid"].is_string(), "{outcome}");
    kubectl_ok(&[
        "delete",
        "hostingprofile",
        &scene.profile.name_any(),
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(operator.terminate(), "the operator stops on SIGTERM");
}

/// The spooled batches of audit records, in the operator's namespace.
async fn spooled(client: &Client) -> Vec<ConfigMap> {
    let spool: Api<ConfigMap> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    spool
        .list(&ListParams::default().labels("hygie.io/audit-spool=true"))
        .await
        .unwrap()
        .items
}

/// The value of the gauge or counter `name` on a /metrics page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn records_the_audit_store_does_not_take_wait_in_the_spool_through_a_crash() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("node-spool").await;
    let ns = scene.ns().to_owned();
    let (bucket, sink) = audit_sink_options(&ns);
    let sink: Vec<&str> = sink.iter().map(String::as_str).collect();
    // A dataset with nothing to import: its key is made, and its KeyCreated record queued.
    let mut dataset = scene.dataset.clone();
    dataset.spec.source = None;
    let object = format!("Dataset/{ns}/{}", dataset.name_any());

    // The store has no bucket yet: the batch goes to the spool, as the chart's identity.
    let mut operator = Operator::start_with("node-spool-1", LEASE, 3600, &sink);
    apply_in(&ns, &[manifest(&scene.profile), manifest(&dataset)]);
    let deadline = tokio::time::Instant::now() + START;
    let batch = loop {
        let found = spooled(&scene.client).await.into_iter().find(|batch| {
            let records = &batch.data.as_ref().unwrap()["records"];
            records.contains(&object) && records.contains("KeyCreated")
        });
        if let Some(batch) = found {
            break batch;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no spooled batch holds the KeyCreated of {object}:\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let page = operator.metrics();
    assert!(
        metric(&page, "hygie_audit_spooled_batches").is_some_and(|held| held >= 1.0),
        "{page}"
    );
    assert!(
        metric(&page, "hygie_audit_write_failures_total").is_some_and(|failed| failed >= 1.0),
        "{page}"
    );
    assert_eq!(
        metric(&page, "hygie_audit_records_dropped_total"),
        Some(0.0)
    );

    // The operator dies; the store comes back; the next operator writes the spooled batch
    // under the name it was given, once, and forgets it.
    operator.kill();
    create_locked_bucket(&bucket);
    let mut operator = Operator::start_with("node-spool-2", LEASE, 3600, &sink);
    let name = batch.name_any();
    let deadline = tokio::time::Instant::now() + START;
    while spooled(&scene.client)
        .await
        .iter()
        .any(|b| b.name_any() == name)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool is not drained:\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let key = &batch.data.as_ref().unwrap()["key"];
    let (keys, _) = audit_records(&bucket);
    assert!(keys.contains(key), "{key} is not in {keys:?}");
    let created = records_about(&bucket, &object)
        .into_iter()
        .filter(|r| r["action"] == "KeyCreated")
        .count();
    assert_eq!(
        created, 1,
        "the KeyCreated of {object} is in the store once"
    );

    kubectl_ok(&[
        "delete",
        "-n",
        &ns,
        "dataset",
        &dataset.name_any(),
        "--wait=true",
        "--timeout=120s",
    ]);
    kubectl_ok(&[
        "delete",
        "hostingprofile",
        &scene.profile.name_any(),
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(operator.terminate(), "the operator stops on SIGTERM");
}
