//! What Hygie knows of the children that exist: their metadata, kept current by
//! metadata-only watches (cheap in memory: no spec, no key material), filtered by the labels
//! Hygie puts on everything it creates. The same watches trigger the owners' reconciles.

use std::{collections::BTreeMap, fmt::Debug, sync::Arc};

use futures::StreamExt;
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

    /// The child kinds this cache watches.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_kind.keys().copied()
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
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + k8s_openapi::Resource
            + Clone
            + Debug
            + DeserializeOwned
            + Send
            + Sync
            + 'static,
        O: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let writer: Writer<PartialObjectMeta<K>> = Writer::default();
        self.by_kind.insert(K::KIND, Arc::new(writer.as_reader()));
        let config = watcher::Config::default().labels(label);
        let metadata: Api<PartialObjectMeta<K>> = Api::all(client.clone());
        let stream = reflector::reflector(writer, watcher(metadata, config))
            .default_backoff()
            .touched_objects()
            .boxed();
        controller.owns_stream(stream)
    }

    /// Like [`ChildCache::own`], but keeps whole objects, for the children whose status the
    /// owner reads (a StatefulSet's ready replicas). Returns their store.
    pub fn own_whole<K, O>(
        &mut self,
        controller: Controller<O>,
        client: &Client,
        label: &str,
    ) -> (Controller<O>, Store<K>)
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + k8s_openapi::Resource
            + Clone
            + Debug
            + DeserializeOwned
            + Send
            + Sync
            + 'static,
        O: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let writer: Writer<K> = Writer::default();
        let store = writer.as_reader();
        self.by_kind.insert(K::KIND, Arc::new(store.clone()));
        let config = watcher::Config::default().labels(label);
        let stream = reflector::reflector(writer, watcher(Api::<K>::all(client.clone()), config))
            .default_backoff()
            .touched_objects()
            .boxed();
        (controller.owns_stream(stream), store)
    }
}

/// Calls `$body` with `$api` bound to the namespaced `Api` of the child kind named `$kind`.
macro_rules! with_child_api {
    ($kind:expr, $client:expr, $namespace:expr, $api:ident => $body:expr) => {
        match $kind {
            "ServiceAccount" => {
                let $api = kube::Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
                    $client, $namespace,
                );
                $body
            }
            "NetworkPolicy" => {
                let $api = kube::Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(
                    $client, $namespace,
                );
                $body
            }
            "Role" => {
                let $api =
                    kube::Api::<k8s_openapi::api::rbac::v1::Role>::namespaced($client, $namespace);
                $body
            }
            "RoleBinding" => {
                let $api = kube::Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(
                    $client, $namespace,
                );
                $body
            }
            "Secret" => {
                let $api = kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
                    $client, $namespace,
                );
                $body
            }
            "PersistentVolumeClaim" => {
                let $api =
                    kube::Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(
                        $client, $namespace,
                    );
                $body
            }
            "StatefulSet" => {
                let $api = kube::Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(
                    $client, $namespace,
                );
                $body
            }
            "Service" => {
                let $api = kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(
                    $client, $namespace,
                );
                $body
            }
            "Job" => {
                let $api =
                    kube::Api::<k8s_openapi::api::batch::v1::Job>::namespaced($client, $namespace);
                $body
            }
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
