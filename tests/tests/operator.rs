//! End-to-end: `hygie run` on the real control plane of tests/controlplane. Each test applies
//! the bundle of tests/fixtures/e2e in a namespace of its own and watches the operator bring
//! the cluster to it: children, keys, status, Events, changes, refusals, expiry, deletion,
//! rest, restarts and leadership. Pods never run (there is no kubelet); where a test needs a
//! Ready pod it patches the pod's status as a kubelet would.

use std::{collections::BTreeMap, time::Duration};

use hygie::{
    api::{
        Dataset, ExportRequest, HostingProfile, Session, Workspace,
        dataset::{DatasetPhase, OnDelete},
        export::ExportPhase,
        hosting_profile::SessionLimits,
        workspace::WorkspacePhase,
    },
    bundle::Bundle,
};
use hygie_tests::{
    cluster::{
        KEYS_NAMESPACE, TestNamespace, apply_as_platform_team, bind_a_retained_volume, client,
        delete_and_wait, install_crds, kubectl, kubectl_ok, manifest, wait_for,
    },
    operator::{OPERATOR_NAMESPACE, OPERATOR_USER, Operator, one_at_a_time, requests_by},
    repo_root,
    users::{airlock_roles, create_as, hygie_as},
};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    batch::v1::Job,
    core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod, Secret},
    networking::v1::NetworkPolicy,
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::json;

const CONVERGE: Duration = Duration::from_secs(60);
const LEASE: &str = "hygie-e2e";

/// The e2e bundle, moved to `namespace`.
fn bundle(namespace: &str) -> (HostingProfile, Dataset, Workspace) {
    let mut bundle = Bundle::load(&[repo_root().join("tests/fixtures/e2e")]).unwrap();
    let profile = bundle.inventory.profiles.values().next().unwrap().clone();
    let mut dataset = bundle.inventory.datasets.values().next().unwrap().clone();
    let mut workspace = bundle.workspaces.remove(0);
    dataset.metadata.namespace = Some(namespace.into());
    workspace.metadata.namespace = Some(namespace.into());
    (profile, dataset, workspace)
}

fn apply(objects: &[serde_json::Value]) {
    apply_as_platform_team(None, objects);
}

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
        let (profile, dataset, workspace) = bundle(&namespace.name);
        Scene {
            client,
            namespace,
            profile,
            dataset,
            workspace,
        }
    }

    fn apply_all(&self) {
        apply(&[
            manifest(&self.profile),
            manifest(&self.dataset),
            manifest(&self.workspace),
        ]);
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace.name)
    }

    async fn wait_workspace(
        &self,
        what: &str,
        condition: impl Fn(&Workspace) -> bool + Send + 'static,
    ) {
        let api: Api<Workspace> = self.api();
        wait_for(
            &api,
            "study",
            what,
            CONVERGE,
            move |w: Option<&Workspace>| w.is_some_and(&condition),
        )
        .await;
    }

    async fn wait_phase(&self, phase: WorkspacePhase) {
        self.wait_workspace(&format!("phase {phase:?}"), move |w| {
            phase_of(w) == Some(phase)
        })
        .await;
    }

    async fn wait_dataset_phase(&self, phase: DatasetPhase) {
        let api: Api<Dataset> = self.api();
        wait_for(
            &api,
            "cohort",
            &format!("phase {phase:?}"),
            CONVERGE,
            move |d: Option<&Dataset>| {
                d.and_then(|d| d.status.as_ref()).and_then(|s| s.phase) == Some(phase)
            },
        )
        .await;
    }

    /// Names of the workspace's children of kind `K`.
    async fn children<K>(&self) -> Vec<String>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let listed = self
            .api::<K>()
            .list(&ListParams::default().labels("hygie.io/workspace=study"))
            .await
            .unwrap();
        let mut names: Vec<String> = listed.items.iter().map(|o| o.name_any()).collect();
        names.sort();
        names
    }

    /// The volume keys of the scene's namespace, in the keys' own namespace.
    fn keys(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), KEYS_NAMESPACE)
    }

    /// The key Secret of the scene's claim whose key, beside it, would have been `name`.
    fn key_name(&self, name: &str) -> String {
        format!("{}.{name}", self.namespace.name)
    }

    async fn key(&self, name: &str) -> Secret {
        self.keys().get(&self.key_name(name)).await.unwrap()
    }

    /// Whether the key of the scene's claim whose key, beside it, would have been `name`
    /// exists in the keys' namespace.
    async fn has_key(&self, name: &str) -> bool {
        self.keys()
            .get_opt(&self.key_name(name))
            .await
            .unwrap()
            .is_some()
    }

    /// The workspace's keys, by the name each would have beside its claim.
    async fn workspace_keys(&self) -> Vec<String> {
        let listed = self
            .keys()
            .list(&ListParams::default().labels("hygie.io/workspace=study"))
            .await
            .unwrap();
        let prefix = format!("{}.", self.namespace.name);
        let mut names: Vec<String> = listed
            .items
            .iter()
            .filter_map(|o| o.name_any().strip_prefix(&prefix).map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    async fn secret_data(&self, name: &str) -> Vec<u8> {
        self.key(name).await.data.unwrap()["encryptionPassphrase"]
            .0
            .clone()
    }

    async fn event_reasons(&self, object: &str) -> Vec<String> {
        let events: Api<Event> = self.api();
        let listed = events.list(&ListParams::default()).await.unwrap();
        listed
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(object))
            .filter_map(|e| e.reason)
            .collect()
    }

    async fn patch_workspace(&self, patch: serde_json::Value) {
        let api: Api<Workspace> = self.api();
        api.patch("study", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Marks the workspace's claims Bound, as the volume binder would.
    async fn mark_claims_bound(&self) {
        let claims: Api<PersistentVolumeClaim> = self.api();
        for name in self.children::<PersistentVolumeClaim>().await {
            let bound = json!({"status": {"phase": "Bound"}});
            claims
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(bound))
                .await
                .unwrap();
        }
    }

    /// Marks the workspace pod Running and Ready, as a kubelet would.
    async fn mark_pod_ready(&self) {
        let pods: Api<Pod> = self.api();
        wait_for(
            &pods,
            "study-0",
            "created by the StatefulSet controller",
            CONVERGE,
            |p: Option<&Pod>| p.is_some(),
        )
        .await;
        let now = jiff::Timestamp::now().to_string();
        let status = json!({"status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": [{"name": "tool", "ready": true, "started": true, "restartCount": 0,
                "image": "jupyter", "imageID": "", "state": {"running": {"startedAt": now}}}],
        }});
        pods.patch_status("study-0", &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
    }
}

fn phase_of(workspace: &Workspace) -> Option<WorkspacePhase> {
    workspace.status.as_ref().and_then(|s| s.phase)
}

fn condition<'a>(
    workspace: &'a Workspace,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    workspace
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

async fn replicas(scene: &Scene) -> i32 {
    let sts: StatefulSet = scene.api().get("study").await.unwrap();
    sts.spec.unwrap().replicas.unwrap()
}

#[tokio::test]
async fn a_workspace_becomes_its_children_keys_and_status() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("converge").await;
    // With the key it shares with the gateway: each workspace gets its desktop's credential.
    let key = hygie_tests::cluster::kubeconfig()
        .parent()
        .unwrap()
        .join("desktop.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let operator = Operator::start_with(
        "converge",
        LEASE,
        3600,
        &["--desktop-key-file", key.to_str().unwrap()],
    );
    scene.apply_all();
    scene.wait_dataset_phase(DatasetPhase::Ready).await;
    scene.wait_phase(WorkspacePhase::Provisioning).await;

    assert_eq!(
        scene.children::<NetworkPolicy>().await,
        // No -allow-dns: a workspace of health data resolves no names; no -allow-ingress: it is
        // seen through the gateway's screen, which alone reaches its desktop.
        ["study-allow-desktop", "study-deny-all", "study-egress-0"]
    );
    assert_eq!(
        scene.children::<Role>().await,
        ["study-analyst", "study-owner"]
    );
    assert_eq!(
        scene.children::<RoleBinding>().await,
        ["study-analyst", "study-owner"]
    );
    assert_eq!(
        scene.children::<PersistentVolumeClaim>().await,
        ["study-ds-cohort-3ef84d6045", "study-home", "study-outbox"]
    );
    assert_eq!(
        scene.children::<Secret>().await,
        ["study-desktop"],
        "no key in the study's namespace"
    );
    assert_eq!(
        scene.workspace_keys().await,
        [
            "study-ds-cohort-3ef84d6045-luks",
            "study-home-luks",
            "study-outbox-luks"
        ]
    );
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let password =
        hygie::gateway::credential::desktop_password(&[7u8; 32], &workspace.uid().unwrap());
    let desktop: Secret = scene.api().get("study-desktop").await.unwrap();
    assert_eq!(
        desktop.data.unwrap()["password"].0,
        password.as_bytes(),
        "the password the gateway derives"
    );

    let sts: StatefulSet = scene.api().get("study").await.unwrap();
    let owner = &sts.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Workspace", "study", Some(true))
    );
    assert_eq!(sts.spec.unwrap().replicas, Some(1));

    let dataset_key = scene.secret_data("cohort-data-luks").await;
    let home_key = scene.secret_data("study-home-luks").await;
    assert_eq!(dataset_key.len(), 64, "256 bits as hex");
    assert!(dataset_key.iter().all(u8::is_ascii_hexdigit));
    assert_ne!(dataset_key, home_key, "one key per volume");
    assert_eq!(
        scene.secret_data("study-ds-cohort-3ef84d6045-luks").await,
        dataset_key,
        "a clone opens with its dataset's key"
    );
    let secret = scene.key("study-home-luks").await;
    assert_eq!(secret.immutable, Some(true));
    assert!(
        secret
            .metadata
            .owner_references
            .is_none_or(|o| o.is_empty()),
        "a key in another namespace than its owner's has no owner reference for the garbage collector to read as missing"
    );
    let copy: PersistentVolumeClaim = scene.api().get("study-ds-cohort-3ef84d6045").await.unwrap();
    assert_eq!(copy.spec.unwrap().data_source.unwrap().name, "cohort-data");

    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let bound = condition(&workspace, "DatasetsBound").unwrap();
    assert_eq!(
        (bound.status.as_str(), bound.reason.as_str()),
        ("False", "WaitingForBinding"),
        "observed, not assumed"
    );
    scene.mark_claims_bound().await;
    scene.mark_pod_ready().await;
    scene.wait_phase(WorkspacePhase::Ready).await;
    scene
        .wait_workspace("copies bound", |w| {
            condition(w, "DatasetsBound").is_some_and(|c| c.status == "True")
        })
        .await;
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    for type_ in [
        "Ready",
        "Compliant",
        "DatasetsBound",
        "NetworkIsolated",
        "StorageEncrypted",
    ] {
        let c = condition(&workspace, type_).unwrap_or_else(|| panic!("condition {type_}"));
        assert_eq!(c.status, "True", "{type_}: {c:?}");
        assert_eq!(c.observed_generation, workspace.metadata.generation);
    }
    let status = workspace.status.unwrap();
    assert_eq!(
        status.endpoint.as_deref(),
        Some(format!("study.{}.svc", scene.namespace.name).as_str())
    );

    let reasons = scene.event_reasons("study").await;
    for reason in ["KeyCreated", "AccessGranted", "WorkloadReady"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "Event {reason} in {reasons:?}"
        );
    }
    let text = format!(
        "{}{:?}",
        operator.log(),
        scene
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    );
    for key in [&dataset_key, &home_key] {
        assert!(
            !text.contains(std::str::from_utf8(key).unwrap()),
            "key material leaked into logs or Events"
        );
    }
    let metrics = operator.metrics();
    assert!(
        metrics.contains("hygie_reconciliations_total{kind=\"Workspace\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hygie_objects{kind=\"Workspace\",phase=\"Ready\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn spec_changes_are_followed_and_what_is_no_longer_desired_is_pruned() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("change").await;
    let _operator = Operator::start("change", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;

    let mut workspace = scene.workspace.clone();
    workspace.spec.egress.clear();
    workspace.spec.members.retain(|m| m.name != "analysts");
    apply(&[manifest(&workspace)]);
    let api: Api<NetworkPolicy> = scene.api();
    wait_for(
        &api,
        "study-egress-0",
        "pruned",
        CONVERGE,
        |p: Option<&NetworkPolicy>| p.is_none(),
    )
    .await;
    let roles: Api<Role> = scene.api();
    wait_for(
        &roles,
        "study-analyst",
        "pruned",
        CONVERGE,
        |r: Option<&Role>| r.is_none(),
    )
    .await;
    assert_eq!(scene.children::<RoleBinding>().await, ["study-owner"]);
    assert!(
        scene
            .event_reasons("study")
            .await
            .iter()
            .any(|r| r == "Pruned")
    );

    scene
        .patch_workspace(json!({"spec": {"suspend": true}}))
        .await;
    scene.wait_phase(WorkspacePhase::Suspended).await;
    assert_eq!(
        replicas(&scene).await,
        0,
        "a suspended workspace runs nothing"
    );
    assert_eq!(
        scene.children::<PersistentVolumeClaim>().await,
        ["study-ds-cohort-3ef84d6045", "study-home", "study-outbox"],
        "volumes stay"
    );
    assert_eq!(
        scene.workspace_keys().await,
        [
            "study-ds-cohort-3ef84d6045-luks",
            "study-home-luks",
            "study-outbox-luks"
        ],
        "keys stay"
    );

    scene
        .patch_workspace(json!({"spec": {"suspend": false}}))
        .await;
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    assert_eq!(replicas(&scene).await, 1, "resumed");
}

#[tokio::test]
async fn a_change_that_breaks_a_rule_is_refused_and_nothing_is_loosened() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("refuse").await;
    let _operator = Operator::start("refuse", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    let policies = scene.children::<NetworkPolicy>().await;

    let mut open = scene.workspace.clone();
    open.spec.egress.push(
        serde_json::from_value(json!({"cidr": "0.0.0.0/0", "ports": [{"port": 443}]})).unwrap(),
    );
    apply(&[manifest(&open)]);
    scene.wait_phase(WorkspacePhase::Blocked).await;
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let compliant = condition(&workspace, "Compliant").unwrap();
    assert_eq!(
        (compliant.status.as_str(), compliant.reason.as_str()),
        ("False", "RulesViolated")
    );
    assert!(
        compliant.message.contains("HYG005") && compliant.message.contains("spec.egress[1].cidr"),
        "{}",
        compliant.message
    );
    assert!(
        scene
            .event_reasons("study")
            .await
            .iter()
            .any(|r| r == "RulesViolated")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scene.children::<NetworkPolicy>().await,
        policies,
        "no egress to the Internet was opened"
    );

    // A workspace that never complied gets nothing at all.
    let mut other = open.clone();
    other.metadata.name = Some("other".into());
    apply(&[manifest(&other)]);
    let api: Api<Workspace> = scene.api();
    wait_for(
        &api,
        "other",
        "Blocked",
        CONVERGE,
        |w: Option<&Workspace>| w.and_then(phase_of) == Some(WorkspacePhase::Blocked),
    )
    .await;
    let created = scene
        .api::<NetworkPolicy>()
        .list(&ListParams::default().labels("hygie.io/workspace=other"))
        .await
        .unwrap();
    assert!(
        created.items.is_empty(),
        "nothing is created for a refused workspace"
    );
}

#[tokio::test]
async fn at_expires_at_the_workload_stops_and_volumes_and_keys_stay() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("expiry").await;
    let _operator = Operator::start("expiry", LEASE, 3600);
    let mut workspace = scene.workspace.clone();
    // Whole seconds: metav1.Time has no finer precision.
    let soon = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 8).unwrap();
    workspace.spec.expires_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(soon));
    apply(&[
        manifest(&scene.profile),
        manifest(&scene.dataset),
        manifest(&workspace),
    ]);
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    assert_eq!(replicas(&scene).await, 1);
    scene.wait_phase(WorkspacePhase::Expired).await;
    assert!(jiff::Timestamp::now() >= soon, "not before expiresAt");
    assert_eq!(replicas(&scene).await, 0);
    assert_eq!(
        scene.children::<PersistentVolumeClaim>().await,
        ["study-ds-cohort-3ef84d6045", "study-home", "study-outbox"]
    );
    assert_eq!(
        scene.workspace_keys().await,
        [
            "study-ds-cohort-3ef84d6045-luks",
            "study-home-luks",
            "study-outbox-luks"
        ]
    );
    assert!(
        scene
            .event_reasons("study")
            .await
            .iter()
            .any(|r| r == "Expired")
    );
}

#[tokio::test]
async fn deletion_removes_workload_volumes_then_keys_and_retains_the_dataset() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("retain").await;
    let _operator = Operator::start("retain", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;

    let datasets: Api<Dataset> = scene.api();
    datasets
        .delete("cohort", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        &datasets,
        "cohort",
        "InUse",
        CONVERGE,
        |d: Option<&Dataset>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "InUse"))
        },
    )
    .await;
    let dataset: Dataset = datasets.get("cohort").await.unwrap();
    let in_use = dataset
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.reason == "InUse")
        .unwrap();
    assert!(
        in_use.message.contains("Workspace/study"),
        "{}",
        in_use.message
    );

    let workspaces: Api<Workspace> = scene.api();
    delete_and_wait(&workspaces, "study", CONVERGE).await;
    assert!(scene.children::<StatefulSet>().await.is_empty());
    assert!(scene.children::<PersistentVolumeClaim>().await.is_empty());
    assert!(
        scene.workspace_keys().await.is_empty(),
        "the workspace's keys are shredded"
    );

    wait_for(
        &datasets,
        "cohort",
        "deleted once unused",
        CONVERGE,
        |d: Option<&Dataset>| d.is_none(),
    )
    .await;
    let claim: PersistentVolumeClaim = scene
        .api()
        .get("cohort-data")
        .await
        .expect("Retain keeps the volume");
    assert!(
        claim.metadata.owner_references.is_none_or(|o| o.is_empty()),
        "and frees it from its owner"
    );
    let key = scene.key("cohort-data-luks").await;
    assert!(key.metadata.owner_references.is_none_or(|o| o.is_empty()));
}

#[tokio::test]
async fn shred_deletes_the_key_first_then_the_volume() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("shred").await;
    scene.dataset.spec.retention.on_delete = OnDelete::Shred;
    let operator = Operator::start("shred", LEASE, 3600);
    apply(&[manifest(&scene.profile), manifest(&scene.dataset)]);
    scene.wait_dataset_phase(DatasetPhase::Ready).await;
    // A disk bound to the claim, from a StorageClass that would keep it (reclaimPolicy Retain).
    let volume = bind_a_retained_volume(&scene.client, &scene.namespace.name, "cohort-data").await;
    let key = scene.key("cohort-data-luks").await;
    let datasets: Api<Dataset> = scene.api();
    delete_and_wait(&datasets, "cohort", CONVERGE).await;
    let volumes: Api<PersistentVolume> = Api::all(scene.client.clone());
    assert!(
        volumes.get_opt(&volume).await.unwrap().is_none(),
        "the PersistentVolume is gone before the dataset is"
    );
    assert!(!scene.has_key("cohort-data-luks").await, "key shredded");
    let claims: Api<PersistentVolumeClaim> = scene.api();
    wait_for(
        &claims,
        "cohort-data",
        "deleted",
        CONVERGE,
        |c: Option<&PersistentVolumeClaim>| c.is_none(),
    )
    .await;
    let reasons = scene.event_reasons("cohort").await;
    let shredding = reasons
        .iter()
        .position(|r| r == "Shredding")
        .expect("the key goes first");
    let shredded = reasons
        .iter()
        .position(|r| r == "Shredded")
        .expect("then the volume");
    assert!(shredding != shredded, "{reasons:?}");

    // The audit records prove which key went, as it was, and which volume.
    let object = format!("Dataset/{}/cohort", scene.namespace.name);
    let evidence = |action: &str| -> serde_json::Value {
        let record = operator
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|r| r["audit_action"] == action && r["audit_object"] == object.as_str())
            .unwrap_or_else(|| panic!("no {action} record"));
        serde_json::from_str(record["audit_evidence"].as_str().unwrap()).unwrap()
    };
    let shredding = evidence("Shredding");
    assert_eq!(
        shredding["keySecret"],
        scene.key_name("cohort-data-luks").as_str()
    );
    assert_eq!(shredding["keySecretNamespace"], KEYS_NAMESPACE);
    assert_eq!(
        shredding["keySecretUid"],
        key.metadata.uid.unwrap().as_str()
    );
    assert_eq!(
        shredding["keySecretResourceVersion"],
        key.metadata.resource_version.unwrap().as_str()
    );
    assert_eq!(shredding["claim"], "cohort-data");
    assert_eq!(
        shredding["storageClass"],
        scene.profile.spec.storage.storage_class_name.as_str()
    );
    assert_eq!(evidence("Shredded")["persistentVolume"], volume.as_str());
}

/// An upgrade from the releases that kept keys beside their claims: the key of an existing
/// volume is copied to the keys' namespace (a new one would not open the volume), the one
/// beside the claim stays (the volume's PersistentVolume names it for good), and a shred
/// destroys both, with both in its record.
#[tokio::test]
async fn a_key_beside_its_claim_is_copied_out_of_the_namespace_and_shredded_in_both_places() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("moved").await;
    scene.dataset.spec.retention.on_delete = OnDelete::Shred;
    apply(&[manifest(&scene.profile), manifest(&scene.dataset)]);
    let dataset: Dataset = scene.api().get("cohort").await.unwrap();
    let owner = dataset.uid().unwrap();
    // What an earlier release made: the claim, and its key beside it.
    let mut earlier = scene.profile.clone();
    earlier.spec.storage.encryption.secret_namespace = None;
    let passphrase = "ab".repeat(32);
    for child in hygie::build::dataset_children(&dataset, &earlier) {
        let mut object = child.to_json();
        object["metadata"]["annotations"]["hygie.io/owner-uid"] = owner.clone().into();
        if object["kind"] == "Secret" {
            object["stringData"] = json!({"encryptionPassphrase": passphrase});
        }
        apply(&[object]);
    }
    let beside: Api<Secret> = scene.api();
    let legacy = beside.get("cohort-data-luks").await.unwrap();

    let operator = Operator::start("moved", LEASE, 3600);
    scene.wait_dataset_phase(DatasetPhase::Ready).await;
    assert_eq!(
        scene.secret_data("cohort-data-luks").await,
        passphrase.as_bytes(),
        "the volume's own key, not a new one"
    );
    assert!(
        beside.get_opt("cohort-data-luks").await.unwrap().is_some(),
        "the key the PersistentVolume names stays"
    );
    let moved = scene.key("cohort-data-luks").await;

    let datasets: Api<Dataset> = scene.api();
    delete_and_wait(&datasets, "cohort", CONVERGE).await;
    assert!(beside.get_opt("cohort-data-luks").await.unwrap().is_none());
    assert!(!scene.has_key("cohort-data-luks").await);
    let object = format!("Dataset/{}/cohort", scene.namespace.name);
    let record = operator
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|r| r["audit_action"] == "Shredding" && r["audit_object"] == object.as_str())
        .expect("a Shredding record");
    let evidence: serde_json::Value =
        serde_json::from_str(record["audit_evidence"].as_str().unwrap()).unwrap();
    let mut uids: Vec<String> = evidence["keySecretUid"]
        .as_str()
        .unwrap()
        .split(", ")
        .map(str::to_owned)
        .collect();
    uids.sort();
    let mut expected = vec![legacy.uid().unwrap(), moved.uid().unwrap()];
    expected.sort();
    assert_eq!(uids, expected, "both keys in the record: {evidence}");
}

#[tokio::test]
async fn at_rest_a_resync_writes_nothing() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("rest").await;
    let operator = Operator::start("rest", LEASE, 2);
    scene.apply_all();
    scene.wait_dataset_phase(DatasetPhase::Ready).await;
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let reconciled = |metrics: String| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with("hygie_reconciliations_total{kind=\"Workspace\"}"));
        line.and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = reconciled(operator.metrics());
    let since = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = reconciled(operator.metrics());
    let ours = |r: &hygie_tests::operator::Request| {
        r.namespace == scene.namespace.name || r.resource == "hostingprofiles"
    };
    let requests: Vec<_> = requests_by(OPERATOR_USER, since)
        .into_iter()
        .filter(|r| ours(r))
        .collect();
    let writes: Vec<_> = requests.iter().filter(|r| r.is_write()).collect();
    assert!(writes.is_empty(), "writes at rest: {writes:#?}");
    assert!(
        after >= before + 3,
        "the workspace was reconciled again and again ({before} then {after})"
    );
}

#[tokio::test]
async fn a_killed_operator_converges_on_restart_with_nothing_duplicated_or_lost() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("restart").await;
    let mut first = Operator::start("restart-1", LEASE, 3600);
    scene.apply_all();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill();
    let mut second = Operator::start("restart-2", LEASE, 3600);
    scene.wait_dataset_phase(DatasetPhase::Ready).await;
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    assert_eq!(
        scene.workspace_keys().await,
        [
            "study-ds-cohort-3ef84d6045-luks",
            "study-home-luks",
            "study-outbox-luks"
        ]
    );
    assert_eq!(scene.children::<StatefulSet>().await, ["study"]);
    let keys: BTreeMap<&str, Vec<u8>> = BTreeMap::from([
        (
            "cohort-data-luks",
            scene.secret_data("cohort-data-luks").await,
        ),
        (
            "study-home-luks",
            scene.secret_data("study-home-luks").await,
        ),
    ]);
    assert_eq!(
        scene.secret_data("study-ds-cohort-3ef84d6045-luks").await,
        keys["cohort-data-luks"]
    );

    second.kill();
    let _third = Operator::start("restart-3", LEASE, 3600);
    scene
        .patch_workspace(json!({"metadata": {"annotations": {"touch": "1"}}}))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (name, key) in &keys {
        assert_eq!(
            &scene.secret_data(name).await,
            key,
            "{name} keeps its key across restarts"
        );
    }
    assert_eq!(
        scene.workspace_keys().await,
        [
            "study-ds-cohort-3ef84d6045-luks",
            "study-home-luks",
            "study-outbox-luks"
        ]
    );
}

#[tokio::test]
async fn a_restart_writes_nothing_but_what_somebody_changed_meanwhile() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("rewrite").await;
    let mut first = Operator::start("rewrite-1", LEASE, 3600);
    scene.apply_all();
    scene.wait_dataset_phase(DatasetPhase::Ready).await;
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    first.kill();

    // While no operator runs, somebody opens one of the workspace's NetworkPolicies.
    let policies: Api<NetworkPolicy> = scene.api();
    let name = scene.children::<NetworkPolicy>().await[0].clone();
    let before = policies
        .get(&name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .pod_selector;
    let opened = json!({"spec": {"podSelector": {"matchLabels": {"opened": "yes"}}}});
    policies
        .patch(&name, &PatchParams::default(), &Patch::Merge(opened))
        .await
        .unwrap();

    let since = jiff::Timestamp::now();
    let second = Operator::start("rewrite-2", LEASE, 3600);
    let selector = before.clone();
    wait_for(
        &policies,
        &name,
        "put back",
        CONVERGE,
        move |p: Option<&NetworkPolicy>| {
            p.and_then(|p| p.spec.as_ref())
                .is_some_and(|s| s.pod_selector == selector)
        },
    )
    .await;
    let reconciled = |kind: &str| {
        second.metrics().lines().any(|l| {
            l.starts_with(&format!("hygie_reconciliations_total{{kind=\"{kind}\"}}"))
                && !l.ends_with(" 0")
        })
    };
    for _ in 0..100 {
        if reconciled("Workspace") && reconciled("Dataset") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes: Vec<String> = requests_by(OPERATOR_USER, since)
        .into_iter()
        .filter(|r| r.is_write() && r.namespace == scene.namespace.name)
        .map(|r| match r.resource.as_str() {
            "events" => format!("{} events", r.verb),
            _ => format!("{} {}/{}", r.verb, r.resource, r.name),
        })
        .collect();
    assert_eq!(
        writes,
        [
            format!("patch networkpolicies/{name}"),
            "create events".to_owned()
        ],
        "after the restart, Hygie puts back what was changed, says so, and writes nothing else"
    );
    assert!(
        second
            .log()
            .contains(&format!("\"audit_reasons\":\"NetworkPolicy/{name}\"")),
        "the Event and the audit record name the object put back"
    );
}

#[tokio::test]
async fn of_two_replicas_one_leads_and_the_other_takes_over() {
    let _turn = one_at_a_time().await;
    // A lease of its own: a stale holder from an earlier run would only blur the picture.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let lease = &format!("hygie-e2e-pair-{nanos}");
    let mut a = Operator::start("replica-a", lease, 3600);
    let mut b = Operator::start("replica-b", lease, 3600);
    let leading = |o: &Operator| o.log().contains("leading: controllers start");
    let mut waited = 0;
    while !leading(&a) && !leading(&b) && waited < 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(leading(&a) ^ leading(&b), "exactly one replica leads");
    let (leader, standby) = if leading(&a) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let holder = kubectl_ok(&[
        "-n",
        OPERATOR_NAMESPACE,
        "get",
        "lease",
        lease,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, leader.identity);
    assert!(leader.terminate(), "SIGTERM stops the leader gracefully");
    let mut waited = 0;
    while !leading(standby) && waited < 200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(
        leading(standby),
        "the standby took over:\n{}",
        standby.log()
    );
}

/// Waits until the workspace's StatefulSet asks for `count` replicas.
async fn wait_replicas(scene: &Scene, count: i32, within: Duration) {
    let statefulsets: Api<StatefulSet> = scene.api();
    wait_for(
        &statefulsets,
        "study",
        &format!("{count} replicas"),
        within,
        move |s: Option<&StatefulSet>| {
            s.and_then(|s| s.spec.as_ref()).and_then(|s| s.replicas) == Some(count)
        },
    )
    .await;
}

#[tokio::test]
async fn a_workspace_stops_when_its_host_declares_foreign_exposure_and_resumes_when_lifted() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("exposure").await;
    let operator = Operator::start("exposure", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    assert_eq!(replicas(&scene).await, 1);
    let claims = scene.children::<PersistentVolumeClaim>().await;
    let keys = scene.workspace_keys().await;
    assert!(!keys.is_empty());

    // The platform team learns the operator is subject to the CLOUD Act after the fact.
    let mut exposed = scene.profile.clone();
    exposed.spec.sovereignty = Some(
        serde_json::from_value(json!({"extraterritorialExposure": ["US-CLOUD-Act"]})).unwrap(),
    );
    apply(&[manifest(&exposed)]);
    wait_replicas(&scene, 0, Duration::from_secs(60)).await;
    scene.wait_phase(WorkspacePhase::Blocked).await;
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let compliant = condition(&workspace, "Compliant").unwrap();
    assert!(
        compliant.message.contains("HYG012") && compliant.message.contains("US-CLOUD-Act"),
        "{}",
        compliant.message
    );
    assert!(
        scene
            .event_reasons("study")
            .await
            .iter()
            .any(|r| r == "WorkloadStopped")
    );
    assert_eq!(scene.children::<PersistentVolumeClaim>().await, claims);
    assert_eq!(scene.workspace_keys().await, keys, "keys are kept");
    // The decision outlives the Event as an audit record in the operator's log.
    let object = format!("Workspace/{}/study", scene.namespace.name);
    let record = operator
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|r| {
            r["message"] == "hygie-audit"
                && r["audit_action"] == "WorkloadStopped"
                && r["audit_object"] == object.as_str()
        })
        .expect("an audit record of the stop");
    assert_eq!(record["audit_outcome"], "Warning");
    assert!(
        record["audit_reasons"].as_str().unwrap().contains("HYG012"),
        "{record}"
    );
    assert!(record["audit_uid"].as_str().is_some_and(|u| !u.is_empty()));

    // Lifted: the workload comes back on its own.
    apply(&[manifest(&scene.profile)]);
    wait_replicas(&scene, 1, CONVERGE).await;
    scene.wait_phase(WorkspacePhase::Provisioning).await;
}

#[tokio::test]
async fn a_shortened_authorisation_stops_the_workload_at_once() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("authorisation").await;
    let _operator = Operator::start("authorisation", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    assert_eq!(replicas(&scene).await, 1);

    let mut ended = scene.dataset.clone();
    ended.spec.legal.valid_until = "2025-01-31".parse().unwrap();
    apply(&[manifest(&ended)]);
    wait_replicas(&scene, 0, Duration::from_secs(60)).await;
    scene.wait_phase(WorkspacePhase::Blocked).await;
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let compliant = condition(&workspace, "Compliant").unwrap();
    assert!(
        compliant.message.contains("HYG007") && compliant.message.contains("2025-01-31"),
        "{}",
        compliant.message
    );
    assert_eq!(
        scene.children::<PersistentVolumeClaim>().await.len(),
        3,
        "volumes are kept"
    );
}

#[tokio::test]
async fn a_workspace_of_health_data_stops_where_somebody_else_reads_its_pod() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("readers").await;
    let ns = scene.namespace.name.clone();
    let _operator = Operator::start("readers", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    assert_eq!(replicas(&scene).await, 1);

    // Kubernetes' `view` reads every pod's logs: what a process of the workspace prints is
    // mallory's. The platform team holding it too changes nothing.
    let view = |name: &str, kind: &str, subject: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}]})
    };
    apply(&[
        view("platform-view", "Group", "system:masters"),
        view("mallory-view", "User", "mallory"),
    ]);
    wait_replicas(&scene, 0, CONVERGE).await;
    scene.wait_phase(WorkspacePhase::Blocked).await;
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let compliant = condition(&workspace, "Compliant").unwrap();
    assert!(
        compliant.message.contains("HYG020")
            && compliant
                .message
                .contains("RoleBinding `mallory-view` gives User `mallory`")
            && !compliant.message.contains("platform-view"),
        "{}",
        compliant.message
    );
    assert_eq!(
        scene.children::<PersistentVolumeClaim>().await.len(),
        3,
        "volumes are kept"
    );

    // Her binding gone, the workspace runs again at the next look.
    kubectl_ok(&["delete", "rolebinding", "mallory-view", "-n", &ns]);
    wait_replicas(&scene, 1, CONVERGE).await;
}

#[tokio::test]
async fn a_workspace_nobody_enters_stops_when_idle_and_a_session_wakes_it() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("idle").await;
    // A profile of its own, so that no other test's workspace goes idle.
    let profile = format!("idle-{}", scene.namespace.name);
    scene.profile.metadata.name = Some(profile.clone());
    scene.profile.spec.sessions = Some(SessionLimits {
        max_seconds: None,
        idle_after_seconds: Some(60),
    });
    scene.dataset.spec.hosting_profile = profile.clone();
    scene.workspace.spec.hosting_profile = profile.clone();
    let _operator = Operator::start("idle", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    assert_eq!(replicas(&scene).await, 1);

    // Nobody comes: a minute after its creation its workload stops, its volumes stay.
    wait_replicas(&scene, 0, Duration::from_secs(120)).await;
    scene.wait_phase(WorkspacePhase::Idle).await;
    assert_eq!(
        scene.children::<PersistentVolumeClaim>().await.len(),
        3,
        "volumes are kept"
    );

    // alice runs `hygie connect`, with her own certificate: her Session starts it again.
    let ns = scene.namespace.name.clone();
    apply(&[
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "sessions", "namespace": ns},
        "rules": [{"apiGroups": ["hygie.io"], "resources": ["sessions"], "verbs": ["create"]},
                  {"apiGroups": ["hygie.io"], "resources": ["workspaces"], "resourceNames": ["study"], "verbs": ["get"]}]}),
    ]);
    apply(&[
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice-sessions", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sessions"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
    ]);
    let out = hygie_as(
        "alice",
        &[
            "connect",
            "study",
            "-n",
            &ns,
            "--gateway",
            "https://gateway.test/",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_replicas(&scene, 1, Duration::from_secs(60)).await;
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    // Her Session belongs to the workspace, and goes with it.
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let sessions: Api<Session> = scene.api();
    let sessions = sessions.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0]
            .owner_references()
            .first()
            .map(|o| o.uid.as_str()),
        workspace.uid().as_deref()
    );
    kubectl(&["delete", "hostingprofile", &profile, "--wait=false"]);
}

#[tokio::test]
async fn members_may_change_only_suspend_as_the_api_server_enforces() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("members").await;
    let _operator = Operator::start("members", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    let bindings: Api<RoleBinding> = scene.api();
    wait_for(
        &bindings,
        "study-owner",
        "granted",
        CONVERGE,
        |b: Option<&RoleBinding>| b.is_some(),
    )
    .await;
    let ns = scene.namespace.name.clone();
    let patch = |identity: &[&str], body: &str| {
        let mut args: Vec<&str> = identity.to_vec();
        args.extend([
            "-n",
            &ns,
            "patch",
            "workspace",
            "study",
            "--type=merge",
            "-p",
            body,
        ]);
        kubectl(&args)
    };
    let alice = ["--as=alice@chu-exemple.fr"];
    let egress = r#"{"spec":{"egress":[{"cidr":"10.30.0.0/24","ports":[{"port":22}]}]}}"#;

    let suspend = patch(&alice, r#"{"spec":{"suspend":true}}"#);
    assert!(suspend.success, "an Owner suspends: {}", suspend.stderr);
    let widened = patch(&alice, egress);
    assert!(!widened.success, "an Owner may not open egress");
    assert!(
        widened.stderr.contains("may change only spec.suspend")
            && widened.stderr.contains("alice@chu-exemple.fr"),
        "{}",
        widened.stderr
    );
    let more = patch(
        &alice,
        r#"{"spec":{"members":[{"kind":"User","name":"alice@chu-exemple.fr","role":"Owner"},{"kind":"User","name":"eve","role":"Owner"}]}}"#,
    );
    assert!(!more.success, "an Owner may not add members");
    // Membership by group counts, even for someone whose RBAC would allow anything.
    let admin_in_group = patch(
        &[
            "--as=mallory",
            "--as-group=analysts",
            "--as-group=system:masters",
        ],
        egress,
    );
    assert!(!admin_in_group.success, "a member by group is a member");
    // The platform team, who is no member, decides.
    let platform = patch(&[], egress);
    assert!(platform.success, "{}", platform.stderr);
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    assert!(workspace.spec.suspend);
    assert_eq!(workspace.spec.egress[0].cidr, "10.30.0.0/24");
}

#[tokio::test]
async fn foreground_deletion_of_a_retained_dataset_keeps_its_volume_and_key() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("foreground").await;
    let _operator = Operator::start("foreground", LEASE, 3600);
    apply(&[manifest(&scene.profile), manifest(&scene.dataset)]);
    scene.wait_dataset_phase(DatasetPhase::Ready).await;
    let claim: PersistentVolumeClaim = scene.api().get("cohort-data").await.unwrap();
    assert!(
        claim.metadata.owner_references.is_none_or(|o| o.is_empty()),
        "what Retain keeps has no owner to be collected with"
    );
    let datasets: Api<Dataset> = scene.api();
    datasets
        .delete("cohort", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_for(
        &datasets,
        "cohort",
        "deleted",
        CONVERGE,
        |d: Option<&Dataset>| d.is_none(),
    )
    .await;
    // The garbage collector had every chance to act on what it could reach.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let claims: Api<PersistentVolumeClaim> = scene.api();
    assert!(claims.get_opt("cohort-data").await.unwrap().is_some());
    assert!(scene.has_key("cohort-data-luks").await);
}

#[tokio::test]
async fn a_workspace_expiring_past_the_last_timestamp_does_not_stop_the_others() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("poison").await;
    let _operator = Operator::start("poison", LEASE, 3600);
    let mut poison = scene.workspace.clone();
    poison.metadata.name = Some("poison".into());
    let mut poison = manifest(&poison);
    poison["spec"]["expiresAt"] = json!("9999-12-31T00:00:00Z");
    apply(&[manifest(&scene.profile), manifest(&scene.dataset), poison]);
    apply(&[manifest(&scene.workspace)]);
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    let api: Api<Workspace> = scene.api();
    wait_for(
        &api,
        "poison",
        "reconciled",
        CONVERGE,
        |w: Option<&Workspace>| w.and_then(phase_of).is_some(),
    )
    .await;
}

#[tokio::test]
async fn an_object_of_a_childs_name_that_hygie_did_not_create_is_never_adopted() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("adopt").await;
    let _operator = Operator::start("adopt", LEASE, 3600);
    let claims: Api<PersistentVolumeClaim> = scene.api();
    let theirs: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "study-home"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .unwrap();
    claims.create(&Default::default(), &theirs).await.unwrap();
    scene.apply_all();
    scene
        .wait_workspace("Stalled on the name", |w| {
            condition(w, "Stalled").is_some_and(|c| c.reason == "NameTakenByAnotherObject")
        })
        .await;
    let workspace: Workspace = scene.api().get("study").await.unwrap();
    let stalled = condition(&workspace, "Stalled").unwrap();
    assert!(
        stalled.message.contains("PersistentVolumeClaim/study-home"),
        "{}",
        stalled.message
    );
    let claim = claims.get("study-home").await.unwrap();
    assert!(claim.metadata.owner_references.is_none(), "not adopted");
    assert!(claim.metadata.labels.is_none(), "not relabelled");
    assert_eq!(
        claim.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0,
        "1Gi",
        "not resized"
    );
}

#[tokio::test]
async fn an_export_whose_objects_names_are_taken_fails_and_adopts_nothing() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("export-name").await;
    scene.profile.spec.exports = serde_json::from_value(json!({
        "destinations": [{"name": "results", "s3": {
            "endpoint": "https://s3.fr-par.example.fr", "bucket": "results", "region": "fr-par",
            "credentialsSecretRef": {"name": "results-writer"}}}],
        "reviewers": [{"kind": "User", "name": "bob"}, {"kind": "User", "name": "carol"}]
    }))
    .unwrap();
    scene.workspace.spec.members.push(
        serde_json::from_value(json!({"kind": "User", "name": "alice", "role": "Owner"})).unwrap(),
    );
    let since = jiff::Timestamp::now();
    let _operator = Operator::start("export-name", LEASE, 3600);
    let ns = scene.namespace.name.clone();
    apply_as_platform_team(Some(&ns), &airlock_roles(&ns, &[("alice", "researcher")]));
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = scene.api();
    let theirs = serde_json::from_value(json!({"metadata": {"name": "table-1"}})).unwrap();
    accounts.create(&Default::default(), &theirs).await.unwrap();
    scene.apply_all();

    let request = json!({
        "apiVersion": "hygie.io/v1alpha1", "kind": "ExportRequest",
        "metadata": {"name": "table-1"},
        "spec": {"workspace": "study", "files": ["t.csv"], "justification": "counts",
                 "outputs": ["Table"], "destination": "results", "requester": "alice"}
    });
    let out = create_as("alice", &ns, &request);
    assert!(out.success, "{}", out.stderr);
    let requests: Api<ExportRequest> = scene.api();
    wait_for(
        &requests,
        "table-1",
        "failed on the name",
        CONVERGE,
        |r: Option<&ExportRequest>| {
            r.and_then(|r| r.status.as_ref()).and_then(|s| s.phase) == Some(ExportPhase::Failed)
        },
    )
    .await;
    let status = requests.get("table-1").await.unwrap().status.unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "CannotStage");
    assert!(
        ready
            .message
            .contains("ServiceAccount/table-1 exists and was not created by Hygie"),
        "{}",
        ready.message
    );
    let account = accounts.get("table-1").await.unwrap();
    assert!(account.metadata.owner_references.is_none(), "not adopted");
    assert!(account.metadata.labels.is_none(), "not relabelled");
    // crds/ installs the never-adopts policy for this identity: the operator applied without
    // reading the name first, and the API server refused the apply before writing anything.
    let on_the_name: Vec<String> = requests_by(OPERATOR_USER, since)
        .into_iter()
        .filter(|r| r.resource == "serviceaccounts" && r.name == "table-1")
        .map(|r| r.verb)
        .collect();
    assert_eq!(on_the_name, ["patch"], "one apply, refused; no read");
}

#[tokio::test]
async fn the_register_reads_what_the_cluster_holds() {
    let _turn = one_at_a_time().await;
    let scene = Scene::new("register").await;
    let _operator = Operator::start("register", LEASE, 3600);
    scene.apply_all();
    scene.wait_phase(WorkspacePhase::Provisioning).await;
    let out = std::process::Command::new(hygie_tests::operator::operator_binary())
        .args(["report", "-o", "json"])
        .env("KUBECONFIG", hygie_tests::cluster::kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let register: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cohort = register["processing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["namespace"] == scene.namespace.name.as_str())
        .expect("the scene's dataset is in the register");
    assert_eq!(cohort["dataset"], "cohort");
    assert_eq!(
        cohort["workspaces"][0]["state"], "Provisioning",
        "the phase the operator reported"
    );
}

#[tokio::test]
async fn an_import_onto_a_host_that_stops_complying_is_stopped() {
    let _turn = one_at_a_time().await;
    let mut scene = Scene::new("import-stop").await;
    let _operator = Operator::start("import-stop", LEASE, 3600);
    scene.dataset.spec.source = Some(
        serde_json::from_value(json!({"s3": {
            "endpoint": "https://s3.gra.io.cloud.ovh.net", "bucket": "exports",
            "credentialsSecretRef": {"name": "cohort-s3"},
            "egress": [{"cidr": "141.95.161.0/24", "ports": [{"port": 443}]}]
        }}))
        .unwrap(),
    );
    apply(&[manifest(&scene.profile), manifest(&scene.dataset)]);
    let jobs: Api<Job> = scene.api();
    wait_for(
        &jobs,
        "cohort-import",
        "created",
        CONVERGE,
        |j: Option<&Job>| j.is_some(),
    )
    .await;

    let mut exposed = scene.profile.clone();
    exposed.spec.sovereignty = Some(
        serde_json::from_value(json!({"extraterritorialExposure": ["US-CLOUD-Act"]})).unwrap(),
    );
    apply(&[manifest(&exposed)]);
    wait_for(
        &jobs,
        "cohort-import",
        "stopped",
        CONVERGE,
        |j: Option<&Job>| j.is_none_or(|j| j.metadata.deletion_timestamp.is_some()),
    )
    .await;
    assert!(
        scene
            .event_reasons("cohort")
            .await
            .iter()
            .any(|r| r == "ImportStopped")
    );
    let claims: Api<PersistentVolumeClaim> = scene.api();
    assert!(
        claims.get_opt("cohort-data").await.unwrap().is_some(),
        "the volume and what it holds are kept"
    );
    // Restore the profile for the namespaces that share it.
    apply(&[manifest(&scene.profile)]);
}
