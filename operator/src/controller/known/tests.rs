use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use serde_json::json;

use super::*;

fn written(entries: &[(&str, &str, Option<&str>, serde_json::Value)]) -> bool {
    let meta = ObjectMeta {
        managed_fields: Some(
            entries
                .iter()
                .map(
                    |(manager, operation, subresource, fields)| ManagedFieldsEntry {
                        manager: Some((*manager).into()),
                        operation: Some((*operation).into()),
                        subresource: subresource.map(Into::into),
                        fields_v1: Some(FieldsV1(fields.clone())),
                        ..Default::default()
                    },
                )
                .collect(),
        ),
        ..Default::default()
    };
    written_by_others(&meta)
}

const APPLIED: (&str, &str, Option<&str>, serde_json::Value) = (
    "hygie-workspace-controller",
    "Apply",
    None,
    serde_json::Value::Null,
);

#[test]
fn status_metadata_and_a_binding_are_not_writes_of_what_hygie_applied() {
    assert!(!written(&[APPLIED]));
    assert!(!written(&[
        APPLIED,
        (
            "kube-controller-manager",
            "Update",
            Some("status"),
            json!({"f:status": {"f:phase": {}}})
        ),
        (
            "kube-controller-manager",
            "Update",
            None,
            json!({"f:metadata": {"f:annotations": {"f:pv.kubernetes.io/bind-completed": {}}},
                   "f:spec": {"f:volumeName": {}}})
        ),
    ]));
}

#[test]
fn anybody_elses_write_of_the_object_shows() {
    let ingress = json!({"f:spec": {"f:ingress": {}}});
    assert!(written(&[
        APPLIED,
        ("kubectl-edit", "Update", None, ingress.clone())
    ]));
    assert!(written(&[
        APPLIED,
        (
            "hygie-workspace-controller",
            "Update",
            None,
            ingress.clone()
        )
    ]));
    assert!(written(&[
        APPLIED,
        (
            "hygie-fail-closed",
            "Update",
            None,
            json!({"f:spec": {"f:replicas": {}}})
        )
    ]));
    assert!(written(&[
        APPLIED,
        ("kubectl", "Update", None, json!({"f:rules": {}}))
    ]));
}

#[test]
fn a_child_is_read_back_with_what_hygie_reads_and_nothing_else() {
    let meta: ObjectMeta = serde_json::from_value(json!({
        "name": "study-home", "namespace": "lab", "uid": "u-1", "resourceVersion": "42",
        "generation": 3, "deletionTimestamp": "2026-11-30T10:00:00Z",
        "labels": {"app.kubernetes.io/managed-by": "hygie", "hygie.io/workspace": "study",
                   "app.kubernetes.io/component": "home"},
        "annotations": {"hygie.io/owner-uid": "w-1", "hygie.io/claim": "study-home",
                        "hygie.io/applied-hash": "abc", "note": "someone's"},
        "ownerReferences": [{"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace",
                             "name": "study", "uid": "w-1", "controller": true}],
        "finalizers": ["kubernetes.io/pvc-protection"],
    }))
    .unwrap();
    let back = Known::of(&meta).meta("lab", "study-home");
    assert_eq!(back.uid.as_deref(), Some("u-1"));
    assert_eq!(back.resource_version.as_deref(), Some("42"));
    assert_eq!(back.generation, Some(3));
    assert!(back.deletion_timestamp.is_some());
    let labels = back.labels.unwrap();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(labels["hygie.io/workspace"], "study");
    let annotations = back.annotations.unwrap();
    assert_eq!(annotations.len(), 3, "{annotations:?}");
    assert_eq!(annotations["hygie.io/applied-hash"], "abc");
    let owners = back.owner_references.unwrap();
    assert_eq!(
        (owners[0].controller, owners[0].uid.as_str()),
        (Some(true), "w-1")
    );
    assert!(back.finalizers.is_none());
}

#[test]
fn the_applied_digest_is_forgotten_once_somebody_else_wrote_the_child() {
    let mut meta: ObjectMeta = serde_json::from_value(json!({
        "name": "study", "annotations": {"hygie.io/applied-hash": "abc"},
        "managedFields": [{"manager": "kubectl-edit", "operation": "Update",
                           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:ingress": {}}}}],
    }))
    .unwrap();
    assert_eq!(Known::of(&meta).applied_hash, None);
    meta.managed_fields = None;
    assert_eq!(Known::of(&meta).applied_hash.as_deref(), Some("abc"));
}

#[tokio::test]
async fn a_list_replaces_what_was_known_once_complete() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let object = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("lab".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let store = KnownStore::default();
    store.apply(&watcher::Event::<ConfigMap>::Init);
    store.apply(&watcher::Event::InitApply(object("a")));
    assert!(
        store.get("lab", "a").is_none(),
        "not before the list is complete"
    );
    store.apply(&watcher::Event::<ConfigMap>::InitDone);
    store.listed().await;
    assert!(store.get("lab", "a").is_some());
    store.apply(&watcher::Event::<ConfigMap>::Init);
    store.apply(&watcher::Event::InitApply(object("b")));
    store.apply(&watcher::Event::<ConfigMap>::InitDone);
    assert!(
        store.get("lab", "a").is_none(),
        "gone while the watch was down"
    );
    assert_eq!(store.matching("lab", &BTreeMap::new()).len(), 1);
    store.apply(&watcher::Event::Delete(object("b")));
    assert!(store.matching("lab", &BTreeMap::new()).is_empty());
}
