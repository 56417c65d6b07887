//! What Hygie knows of the children that exist, kept current by metadata-only watches (no
//! spec, no key material) filtered by the labels Hygie puts on everything it creates, and
//! kept as compact records ([`KnownStore`]). The same watches trigger the owners' reconciles.

use std::{collections::BTreeMap, fmt::Debug};

use futures::{StreamExt, TryStreamExt};
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

use super::known::KnownStore;

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

/// What Hygie knows of every child of one owner kind, by child kind.
#[derive(Clone, Default)]
pub struct ChildCache {
    by_kind: BTreeMap<&'static str, KnownStore>,
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
        self.by_kind
            .get(kind)
            .map(|store| store.matching(namespace, selector))
            .unwrap_or_default()
    }

    /// The children of `kind` of the owner `selector` and `owner_uid` name, whether in the
    /// owner's `namespace` or elsewhere (see [`KnownStore::of_owner`]).
    pub fn of_owner(
        &self,
        kind: &str,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        owner_uid: &str,
    ) -> Vec<ObjectMeta> {
        self.by_kind
            .get(kind)
            .map(|store| store.of_owner(namespace, selector, owner_uid))
            .unwrap_or_default()
    }

    /// Waits until every child kind has been listed once, at most `limit`. Until then an
    /// absent child may only be unlisted yet: no cleanup or prune may conclude from it.
    pub async fn wait_until_ready(&self, limit: std::time::Duration) -> bool {
        let all = futures::future::join_all(self.by_kind.values().map(KnownStore::listed));
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
        let known = self.known(K::KIND);
        let metadata: Api<PartialObjectMeta<K>> = Api::all(client.clone());
        let stream = watcher(metadata, watcher::Config::default().labels(label))
            .default_backoff()
            .inspect_ok(move |event| known.apply(event))
            .touched_objects()
            .boxed();
        controller.owns_stream(stream)
    }

    /// Like [`ChildCache::own`], and keeps whole objects besides, for the children whose
    /// status the owner reads (a StatefulSet's ready replicas), less what `trim` removes.
    /// Returns their store.
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
        let known = self.known(K::KIND);
        let writer: Writer<K> = Writer::default();
        let store = writer.as_reader();
        let events = watcher(
            Api::<K>::all(client.clone()),
            watcher::Config::default().labels(label),
        )
        .default_backoff()
        .inspect_ok(move |event| known.apply(event))
        .modify(trim);
        let stream = reflector::reflector(writer, events)
            .touched_objects()
            .boxed();
        (controller.owns_stream(stream), store)
    }

    fn known(&mut self, kind: &'static str) -> KnownStore {
        self.by_kind.entry(kind).or_default().clone()
    }
}

/// Drops what the API server's managedFields say of an object before it is cached: Hygie
/// never reads them, and they are most of a child's metadata (a third of the operator's
/// memory at a thousand workspaces).
pub fn forget_managed_fields<K: Resource>(object: &mut K) {
    kube::ResourceExt::managed_fields_mut(object).clear();
}

/// Keeps, of a whole child's metadata, only its identity and owners: what Hygie reads of its
/// metadata is in the [`KnownStore`], and the whole object is kept for its status.
pub fn keep_identity_only<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    meta.labels = None;
    meta.annotations = None;
    meta.finalizers = None;
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
