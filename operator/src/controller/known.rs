//! What Hygie keeps of each child it watches: the few fields it reads, in a compact record,
//! rather than the child's metadata. A workspace has a dozen children; as `ObjectMeta`, with
//! their labels and annotations in maps, they were most of the operator's memory at a thousand
//! workspaces (about 2.5 KiB each, against a few hundred bytes here).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::{api::ObjectMeta, runtime::watcher};

use crate::build::labels::{
    APPLIED_HASH, CLAIM, CLAIM_NAMESPACE, DATASET, EXPORT_REQUEST, MANAGED_BY, OWNER_UID, WORKSPACE,
};

/// The labels Hygie selects its children by.
const SELECTED_BY: [&str; 4] = [MANAGED_BY, WORKSPACE, DATASET, EXPORT_REQUEST];

/// What Hygie reads of one child.
#[derive(Clone, Debug, Default, PartialEq)]
struct Known {
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    deleting: bool,
    labels: Vec<(&'static str, String)>,
    owner_uid: Option<String>,
    claim: Option<String>,
    claim_namespace: Option<String>,
    /// The digest of what Hygie applied, kept only while nobody else has written the object.
    applied_hash: Option<String>,
    /// Owner references: whether each is the controller, and its UID.
    owners: Vec<(bool, String)>,
}

impl Known {
    fn of(meta: &ObjectMeta) -> Known {
        let annotation = |key: &str| meta.annotations.as_ref()?.get(key).cloned();
        let labels = SELECTED_BY
            .iter()
            .filter_map(|key| Some((*key, meta.labels.as_ref()?.get(*key)?.clone())))
            .collect();
        Known {
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            generation: meta.generation,
            deleting: meta.deletion_timestamp.is_some(),
            labels,
            owner_uid: annotation(OWNER_UID),
            claim: annotation(CLAIM),
            claim_namespace: annotation(CLAIM_NAMESPACE),
            applied_hash: annotation(APPLIED_HASH).filter(|_| !written_by_others(meta)),
            owners: meta
                .owner_references
                .iter()
                .flatten()
                .map(|r| (r.controller == Some(true), r.uid.clone()))
                .collect(),
        }
    }

    /// The child's metadata as callers read it: only the fields kept. A deletion's time is not
    /// kept, only that there is one.
    fn meta(&self, namespace: &str, name: &str) -> ObjectMeta {
        let annotations: BTreeMap<String, String> = [
            (OWNER_UID, &self.owner_uid),
            (CLAIM, &self.claim),
            (CLAIM_NAMESPACE, &self.claim_namespace),
            (APPLIED_HASH, &self.applied_hash),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), value.clone()?)))
        .collect();
        let labels: BTreeMap<String, String> = self
            .labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: self.uid.clone(),
            resource_version: self.resource_version.clone(),
            generation: self.generation,
            deletion_timestamp: self.deleting.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: (!self.owners.is_empty()).then(|| {
                self.owners
                    .iter()
                    .map(|(controller, uid)| OwnerReference {
                        controller: Some(*controller),
                        uid: uid.clone(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }
}

/// Whether somebody other than Hygie's appliers wrote the object's own fields, as its
/// managedFields record every writer: its status, its metadata (a volume binder's
/// annotations, a finalizer) and the volume a claim is bound to are others' to write, and
/// change nothing of what Hygie applied. A write of any field Hygie applies moves or shares that
/// field's ownership, so it shows here.
pub fn written_by_others(meta: &ObjectMeta) -> bool {
    meta.managed_fields.iter().flatten().any(|entry| {
        let hygie = entry.operation.as_deref() == Some("Apply")
            && entry
                .manager
                .as_deref()
                .is_some_and(|m| super::APPLIERS.contains(&m));
        let status = entry.subresource.as_deref() == Some("status");
        let fields = entry
            .fields_v1
            .as_ref()
            .and_then(|f| f.0.as_object())
            .into_iter()
            .flatten();
        let beyond_metadata = fields
            .into_iter()
            .any(|(field, owned)| match field.as_str() {
                "f:metadata" => false,
                "f:spec" => owned
                    .as_object()
                    .is_some_and(|spec| spec.keys().any(|k| k != "f:volumeName")),
                _ => true,
            });
        !hygie && !status && beyond_metadata
    })
}

type Key = (String, String);

#[derive(Default)]
struct Entries {
    current: HashMap<Key, Known>,
    /// A list in progress (the first, or after a watch expired), swapped in when complete.
    listing: Option<HashMap<Key, Known>>,
}

/// The children of one kind, kept current from a watch's events.
#[derive(Clone)]
pub struct KnownStore {
    entries: Arc<Mutex<Entries>>,
    listed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for KnownStore {
    fn default() -> Self {
        KnownStore {
            entries: Arc::default(),
            listed: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }
}

impl KnownStore {
    /// Takes in one watch event.
    pub fn apply<K: kube::Resource>(&self, event: &watcher::Event<K>) {
        let key = |object: &K| {
            let meta = object.meta();
            (
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            )
        };
        let mut entries = self.entries.lock().expect("not poisoned");
        match event {
            watcher::Event::Apply(object) => {
                entries
                    .current
                    .insert(key(object), Known::of(object.meta()));
            }
            watcher::Event::Delete(object) => {
                entries.current.remove(&key(object));
            }
            watcher::Event::Init => entries.listing = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                entries
                    .listing
                    .get_or_insert_default()
                    .insert(key(object), Known::of(object.meta()));
            }
            watcher::Event::InitDone => {
                entries.current = entries.listing.take().unwrap_or_default();
                entries.current.shrink_to_fit();
                self.listed.send_replace(true);
            }
        }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<ObjectMeta> {
        let entries = self.entries.lock().expect("not poisoned");
        let key = (namespace.to_owned(), name.to_owned());
        entries.current.get(&key).map(|k| k.meta(namespace, name))
    }

    /// The children in `namespace` whose labels include all of `selector`, matched on the
    /// compact records: only those are made into metadata.
    pub fn matching(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Vec<ObjectMeta> {
        self.filtered(selector, |ns, _| ns == namespace)
    }

    /// The children whose labels include all of `selector`, in `namespace` or, elsewhere, marked
    /// with `owner_uid` itself: labels name an owner only within its namespace, and a child
    /// that lives apart from its owner (a key) is told from another namespace's by its owner's
    /// UID.
    pub fn of_owner(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        owner_uid: &str,
    ) -> Vec<ObjectMeta> {
        self.filtered(selector, |ns, known| {
            ns == namespace || known.owner_uid.as_deref() == Some(owner_uid)
        })
    }

    fn filtered(
        &self,
        selector: &BTreeMap<String, String>,
        place: impl Fn(&str, &Known) -> bool,
    ) -> Vec<ObjectMeta> {
        let entries = self.entries.lock().expect("not poisoned");
        entries
            .current
            .iter()
            .filter(|((ns, _), known)| {
                place(ns, known)
                    && selector.iter().all(|(key, value)| {
                        known.labels.iter().any(|(k, v)| k == key && v == value)
                    })
            })
            .map(|((ns, name), known)| known.meta(ns, name))
            .collect()
    }

    /// Resolves once the store holds the whole first list.
    pub async fn listed(&self) {
        let mut listed = self.listed.subscribe();
        // The sender lives as long as the store: an error cannot happen while it is awaited.
        let _ = listed.wait_for(|done| *done).await;
    }
}

#[cfg(test)]
mod tests;
