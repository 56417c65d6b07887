//! Names and labels of everything Hygie creates. Labels are how children are found again
//! (to prune them) and how network policies select the pods they protect.

use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const WORKSPACE: &str = "hygie.io/workspace";
pub const DATASET: &str = "hygie.io/dataset";
pub const EXPORT_REQUEST: &str = "hygie.io/export-request";
pub const MANAGER: &str = "hygie";

/// Annotation on a passphrase Secret saying where its key material comes from: `generated`
/// for a new volume, or the name of the dataset's Secret for a workspace's copy of it.
pub const PASSPHRASE_SOURCE: &str = "hygie.io/passphrase-source";
pub const PASSPHRASE_GENERATED: &str = "generated";

/// Annotation on a passphrase Secret naming the claim it opens: a key is never deleted while
/// its claim exists.
pub const CLAIM: &str = "hygie.io/claim";

/// Annotation on a passphrase Secret naming the namespace of the claim it opens, which is not
/// the Secret's own: keys live out of the study's namespace.
pub const CLAIM_NAMESPACE: &str = "hygie.io/claim-namespace";

/// Annotation on every child naming the UID of the Dataset or Workspace it belongs to: how a
/// child is told from another owner's object of the same name, with or without an owner
/// reference (a retained volume has none).
pub const OWNER_UID: &str = "hygie.io/owner-uid";

/// Annotation on every applied child: a digest of what Hygie applied. With the caches' view of
/// who else wrote the object, it lets a restarted operator know a child is as it left it,
/// without writing it again.
pub const APPLIED_HASH: &str = "hygie.io/applied-hash";

/// Who owns a child: a workspace, a dataset or an export request, by name.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    Workspace(&'a str),
    Dataset(&'a str),
    ExportRequest(&'a str),
}

impl Owner<'_> {
    /// Labels that find every child of this owner: what pruning lists by.
    pub fn selector(self) -> BTreeMap<String, String> {
        let (key, name) = match self {
            Owner::Workspace(name) => (WORKSPACE, name),
            Owner::Dataset(name) => (DATASET, name),
            Owner::ExportRequest(name) => (EXPORT_REQUEST, name),
        };
        BTreeMap::from([
            (MANAGED_BY.to_owned(), MANAGER.to_owned()),
            (key.to_owned(), name.to_owned()),
        ])
    }

    /// Labels of one child of this owner, playing `component`.
    pub fn labels(self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector();
        let name = match self {
            Owner::Workspace(name) | Owner::Dataset(name) | Owner::ExportRequest(name) => name,
        };
        labels.insert(INSTANCE.to_owned(), name.to_owned());
        labels.insert(COMPONENT.to_owned(), component.to_owned());
        labels
    }

    /// Labels that select this owner's pods, and only them.
    pub fn pod_selector(self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector();
        labels.insert(COMPONENT.to_owned(), component.to_owned());
        labels
    }
}

/// The name of a workspace's desktop credential Secret.
pub fn desktop_secret_name(workspace: &str) -> String {
    format!("{workspace}-desktop")
}

/// The name of a dataset's own volume claim.
pub fn dataset_claim_name(dataset: &str) -> String {
    format!("{dataset}-data")
}

/// The name of a workspace's copy of a dataset's volume: `<workspace>-ds-<dataset>-<hash>`.
///
/// The hash of the pair ends the name at a fixed length, so two pairs never give one name
/// (workspace `a` with dataset `b-c` and workspace `a-b` with dataset `c` differ by it), and no
/// copy is ever named like a home (`-home`) or a dataset's own claim (`-data`).
pub fn dataset_copy_claim_name(workspace: &str, dataset: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(workspace)
        .chain_update([0])
        .chain_update(dataset)
        .finalize();
    let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("{workspace}-ds-{dataset}-{hash}")
}

/// The name of a workspace's home volume claim.
pub fn home_claim_name(workspace: &str) -> String {
    format!("{workspace}-home")
}

/// The name of a workspace's outbox claim, where files wait for export.
pub fn outbox_claim_name(workspace: &str) -> String {
    format!("{workspace}-outbox")
}

/// The name of the import Job of a dataset, and of its service account and network policies.
pub fn import_name(dataset: &str) -> String {
    format!("{dataset}-import")
}
