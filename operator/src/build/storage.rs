//! Encrypted volume claims and their passphrase Secrets.
//!
//! With `NodeLUKS` encryption the CSI driver opens each volume with a passphrase the kubelet
//! reads from a Secret, so that Secret must exist before the claim. It lives in the profile's
//! `secretNamespace`, named `<claim-namespace>.<claim><secretSuffix>`: out of the study's
//! namespace, whose `edit` role reads every Secret there. A Secret in another namespace than
//! its owner carries no owner reference (the garbage collector would take such a reference for
//! a missing owner and delete the key); Hygie deletes it itself, with its record. The builders
//! produce the Secret without key material: the controller puts the key in when it creates the
//! Secret, and render output never carries one.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        PersistentVolumeClaim, PersistentVolumeClaimSpec, Secret, TypedLocalObjectReference,
        VolumeResourceRequirements,
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::api::ObjectMeta;

use super::labels::{CLAIM, CLAIM_NAMESPACE, Owner, PASSPHRASE_GENERATED, PASSPHRASE_SOURCE};
use crate::api::hosting_profile::{EncryptionType, HostingProfile};

/// Where an encrypted volume's content and key come from.
pub enum Origin<'a> {
    /// A new, empty volume with a new key.
    Empty,
    /// A clone of another claim of the same namespace; for NodeLUKS it opens with that claim's
    /// key, so its Secret copies that claim's passphrase.
    CloneOf(&'a str),
}

/// The encrypted claim `name`, preceded by its passphrase Secret where the profile needs one.
pub fn encrypted_volume(
    name: &str,
    namespace: &str,
    owner: Owner,
    component: &str,
    size: &Quantity,
    profile: &HostingProfile,
    origin: Origin,
) -> (Option<Secret>, PersistentVolumeClaim) {
    let labels = owner.labels(component);
    let secret = passphrase_secret(name, namespace, &labels, profile, &origin);
    let data_source = match origin {
        Origin::Empty => None,
        Origin::CloneOf(source) => Some(TypedLocalObjectReference {
            api_group: None,
            kind: "PersistentVolumeClaim".into(),
            name: source.into(),
        }),
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: Some(profile.spec.storage.storage_class_name.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".into(), size.clone())])),
                limits: None,
            }),
            data_source,
            ..Default::default()
        }),
        status: None,
    };
    (secret, claim)
}

/// Where the passphrase Secret of `claim` (in `namespace`) lives under `profile`, as
/// (namespace, name), if the profile uses one. A profile without `secretNamespace`, which
/// `check` refuses, keeps the Secret beside its claim as the first releases did.
pub fn passphrase_secret_place(
    claim: &str,
    namespace: &str,
    profile: &HostingProfile,
) -> Option<(String, String)> {
    let encryption = &profile.spec.storage.encryption;
    if encryption.kind != EncryptionType::NodeLuks {
        return None;
    }
    let suffix = &encryption.secret_suffix;
    Some(match &encryption.secret_namespace {
        Some(keys) => (keys.clone(), format!("{namespace}.{claim}{suffix}")),
        None => (namespace.to_owned(), format!("{claim}{suffix}")),
    })
}

fn passphrase_secret(
    claim: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    profile: &HostingProfile,
    origin: &Origin,
) -> Option<Secret> {
    let (keys, name) = passphrase_secret_place(claim, namespace, profile)?;
    let source = match origin {
        Origin::Empty => PASSPHRASE_GENERATED.to_owned(),
        Origin::CloneOf(source) => passphrase_secret_place(source, namespace, profile)?.1,
    };
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(keys),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([
                (PASSPHRASE_SOURCE.into(), source),
                (CLAIM.into(), claim.to_owned()),
                (CLAIM_NAMESPACE.into(), namespace.to_owned()),
            ])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        immutable: Some(true),
        ..Default::default()
    })
}
