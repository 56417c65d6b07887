//! Pure builders: the Kubernetes objects a Dataset or a Workspace becomes. No client, no clock
//! (time-dependent decisions take `now`), no randomness: the same input always gives the same
//! output, which is what makes `hygie render` a faithful preview.

mod access;
mod dataset;
mod desktop;
mod export;
pub mod labels;
mod network;
pub mod pod;
pub mod storage;
mod transfer;
mod workspace;

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    batch::v1::Job,
    core::v1::{PersistentVolumeClaim, Secret, Service, ServiceAccount},
    networking::v1::NetworkPolicy,
    rbac::v1::{Role, RoleBinding},
};
use kube::{Resource, ResourceExt, api::ObjectMeta};

pub use access::{CONNECT_VERB, DIRECT_RESOURCES};
pub use dataset::dataset_children;
pub use export::{
    ExportInputs, ExportNames, ExportStage, REVIEW_SUFFIX, export_children, release_key_prefix,
};
pub use network::DESKTOP_PORT;
pub use transfer::VERDICT_EXIT_CODE;
pub use workspace::{HOME, OUTBOX, is_expired, member_access, workspace_children};

/// One object Hygie creates for a Dataset or a Workspace.
#[derive(Clone, Debug, PartialEq)]
pub enum Child {
    ServiceAccount(ServiceAccount),
    NetworkPolicy(NetworkPolicy),
    Role(Role),
    RoleBinding(RoleBinding),
    Secret(Secret),
    PersistentVolumeClaim(PersistentVolumeClaim),
    StatefulSet(StatefulSet),
    Service(Service),
    Job(Job),
}

/// Calls `$body` with the typed object inside any variant.
macro_rules! each_child {
    ($child:expr, $object:ident => $body:expr) => {
        match $child {
            Child::ServiceAccount($object) => $body,
            Child::NetworkPolicy($object) => $body,
            Child::Role($object) => $body,
            Child::RoleBinding($object) => $body,
            Child::Secret($object) => $body,
            Child::PersistentVolumeClaim($object) => $body,
            Child::StatefulSet($object) => $body,
            Child::Service($object) => $body,
            Child::Job($object) => $body,
        }
    };
}

impl Child {
    pub fn kind(&self) -> &'static str {
        fn kind_of<K: k8s_openapi::Resource>(_: &K) -> &'static str {
            K::KIND
        }
        each_child!(self, o => kind_of(o))
    }

    pub fn name(&self) -> String {
        each_child!(self, o => o.name_any())
    }

    pub fn meta(&self) -> &ObjectMeta {
        each_child!(self, o => o.meta())
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each_child!(self, o => o.meta_mut())
    }

    /// The object as JSON, with its apiVersion and kind.
    pub fn to_json(&self) -> serde_json::Value {
        each_child!(self, o => serde_json::to_value(o).expect("Kubernetes objects serialize to JSON"))
    }
}

#[cfg(test)]
mod tests;
