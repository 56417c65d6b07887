//! What Hygie knows of the children that exist: their metadata, kept current by
//! metadata-only watches (cheap in memory: no spec, no key material), filtered by the labels
//! Hygie puts on everything it creates. The same watches trigger the owners' reconciles.

use std::{collections::BTreeMap, fmt::Debug, sync::Arc};

use futures::{FutureExt, StreamExt, future::BoxFuture};
use k8s_openapi::NamespaceResourceScope;
use kube::{
    Api, Client, Resource,
    api::{DeleteParams, ObjectMeta, PartialObjectMeta},
    runtime::{
        Controller, WatchStreamExt,
        reflector::{self, Store, store::Writer},
        watcher::{self, watcher},
    },
};
use serde::de::DeserializeOwned;

/// Looks up the metadata of one kind of child.
pub trait MetaStore: Send + Sync {
    fn get(&self, namespace: &str, name: &str) -> Option<ObjectMeta>;
    fn in_namespace(&self, namespace: &str) -> Vec<ObjectMeta>;
    /// Resolves once the store holds the whole first list.
    fn ready(&self) -> BoxFuture<'static, ()>;
}

impl<K> MetaStore for Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    fn get(&self, namespace: &str, name: &str) -> Option<ObjectMeta> {
        self.get(&reflector::ObjectRef::new(name).within(namespace))
            .map(|o| o.meta().clone())
    }

    fn in_namespace(&self, namespace: &str) -> Vec<ObjectMeta> {
        self.state()
            .iter()
            .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
            .map(|o| o.meta().clone())
            .collect()
    }

    fn ready(&self) -> BoxFuture<'static, ()> {
        let store = self.clone();
        async move {
            // The writer lives as long as the operator: an error means it is stopping.
            let _ = store.wait_until_ready().await;
        }
        .boxed()
    }
}

/// A kind of child Hygie creates in a namespace.
pub trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + k8s_openapi::Resource
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Child for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// The metadata of every child of one owner kind, by child kind.
#[derive(Clone, Default)]
pub struct ChildCache {
    by_kind: BTreeMap<&'static str, Arc<dyn MetaStore>>,
}

impl ChildCache {
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<ObjectMeta> {
        self.by_kind.get(kind)?.get(namespace, name)
    }

    /// The children of `kind` in `namespace` whose labels include all of `selector`.
    pub fn matching(
        &self,
        kind: &str,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Vec<ObjectMeta> {
        let Some(store) = self.by_kind.get(kind) else {
            return Vec::new();
        };
        store
            .in_namespace(namespace)
            .into_iter()
            .filter(|meta| {
                let labels = meta.labels.clone().unwrap_or_default();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect()
    }

    /// Waits until every child kind has been listed once, at most `limit`. Until then an
    /// absent child may only be unlisted yet: no cleanup or prune may conclude from it.
    pub async fn wait_until_ready(&self, limit: std::time::Duration) -> bool {
        let all = futures::future::join_all(self.by_kind.values().map(|s| s.ready()));
        tokio::time::timeout(limit, all).await.is_ok()
    }

    /// Watches the metadata of children of kind `K` carrying `label`, keeps them in this cache,
    /// and reconciles their owner when they change.
    pub fn own<K, O>(
        &mut self,
        controller: Controller<O>,
        client: &Client,
        label: &str,
    ) -> Controller<O>
    where
        K: Child,
        O: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let metadata: Api<PartialObjectMeta<K>> = Api::all(client.clone());
        let trim = |child: &mut PartialObjectMeta<K>| {
            child.types = None;
            keep_what_hygie_reads(child);
        };
        self.watch(K::KIND, controller, metadata, label, trim).0
    }

    /// Like [`ChildCache::own`], but keeps whole objects, for the children whose status the
    /// owner reads (a StatefulSet's ready replicas), less what `trim` removes. Returns their
    /// store.
    pub fn own_whole<K, O>(
        &mut self,
        controller: Controller<O>,
        client: &Client,
        label: &str,
        trim: fn(&mut K),
    ) -> (Controller<O>, Store<K>)
    where
        K: Child,
        O: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        self.watch(
            K::KIND,
            controller,
            Api::<K>::all(client.clone()),
            label,
            trim,
        )
    }

    fn watch<T, O>(
        &mut self,
        kind: &'static str,
        controller: Controller<O>,
        api: Api<T>,
        label: &str,
        trim: fn(&mut T),
    ) -> (Controller<O>, Store<T>)
    where
        T: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
        O: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let writer: Writer<T> = Writer::default();
        let store = writer.as_reader();
        self.by_kind.insert(kind, Arc::new(store.clone()));
        let config = watcher::Config::default().labels(label);
        let stream = reflector::reflector(writer, watcher(api, config).modify(trim))
            .default_backoff()
            .touched_objects()
            .boxed();
        (controller.owns_stream(stream), store)
    }
}

/// Drops what the API server's managedFields say of an object before it is cached: Hygie
/// never reads them, and they are most of a child's metadata (a third of the operator's
/// memory at a thousand workspaces).
pub fn forget_managed_fields<K: Resource>(object: &mut K) {
    kube::ResourceExt::managed_fields_mut(object).clear();
}

/// Keeps, of a child's metadata, only what Hygie reads: its name, UID and versions, whether
/// it is being deleted, its owner (references, and the owner-uid annotation), the labels
/// Hygie selects its children by and the claim a key opens. A child is cached for every
/// workspace, a dozen of them each: the rest (labels and annotations of others, finalizers,
/// timestamps) was most of the operator's memory at a thousand workspaces.
///
/// The digest of what Hygie applied is kept only while nobody else wrote the object since: it
/// then says the object is as Hygie left it.
pub fn keep_what_hygie_reads<K: Resource>(object: &mut K) {
    use crate::build::labels::{
        APPLIED_HASH, CLAIM, DATASET, EXPORT_REQUEST, MANAGED_BY, OWNER_UID, WORKSPACE,
    };
    let meta = object.meta_mut();
    let untouched = !written_by_others(meta);
    meta.managed_fields = None;
    meta.creation_timestamp = None;
    meta.finalizers = None;
    meta.generate_name = None;
    meta.self_link = None;
    meta.deletion_grace_period_seconds = None;
    let keep = |map: &mut Option<BTreeMap<String, String>>, keys: &[&str]| {
        if let Some(entries) = map {
            entries.retain(|key, _| keys.contains(&key.as_str()));
            if entries.is_empty() {
                *map = None;
            }
        }
    };
    keep(
        &mut meta.labels,
        &[MANAGED_BY, WORKSPACE, DATASET, EXPORT_REQUEST],
    );
    match untouched {
        true => keep(&mut meta.annotations, &[OWNER_UID, CLAIM, APPLIED_HASH]),
        false => keep(&mut meta.annotations, &[OWNER_UID, CLAIM]),
    }
    for reference in meta.owner_references.iter_mut().flatten() {
        reference.block_owner_deletion = None;
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

/// Calls `$body` with `$api` bound to the namespaced `Api` of the child kind named `$kind`.
macro_rules! with_child_api {
    ($kind:expr, $client:expr, $namespace:expr, $api:ident => $body:expr) => {
        with_child_api!(@kinds $kind, $client, $namespace, $api, $body;
            core::v1::ServiceAccount, networking::v1::NetworkPolicy, rbac::v1::Role,
            rbac::v1::RoleBinding, core::v1::Secret, core::v1::PersistentVolumeClaim,
            apps::v1::StatefulSet, core::v1::Service, batch::v1::Job)
    };
    (@kinds $kind:expr, $client:expr, $namespace:expr, $api:ident, $body:expr;
     $($group:ident::$version:ident::$type:ident),+) => {
        match $kind {
            $(kind if kind == <k8s_openapi::api::$group::$version::$type as k8s_openapi::Resource>::KIND => {
                let $api = kube::Api::<k8s_openapi::api::$group::$version::$type>::namespaced($client, $namespace);
                $body
            })+
            other => unreachable!("Hygie creates no {other}"),
        }
    };
}

/// Deletes one child, in the background; a child already gone is not an error.
pub async fn delete(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    let params = DeleteParams::background();
    let result = with_child_api!(kind, client.clone(), namespace, api => api.delete(name, &params).await.map(|_| ()));
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}

/// Removes the owner references of one child, so that it outlives its owner.
pub async fn orphan(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    use kube::api::{Patch, PatchParams};
    let patch = Patch::Merge(serde_json::json!({"metadata": {"ownerReferences": null}}));
    let params = PatchParams::default();
    let result = with_child_api!(kind, client.clone(), namespace, api => api.patch_metadata(name, &params, &patch).await.map(|_| ()));
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}

pub(crate) use with_child_api;

#[cfg(test)]
mod tests {
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
}
