//! Encrypted volume claims and their passphrase Secrets.
//!
//! With `NodeLUKS` encryption the CSI driver opens each volume with a passphrase read from a
//! Secret named `<claim><secretSuffix>` in the claim's namespace, so that Secret must exist
//! before the claim. The builders produce the Secret without key material: the controller puts
//! the key in when it creates the Secret, and render output never carries one.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        PersistentVolumeClaim, PersistentVolumeClaimSpec, Secret, TypedLocalObjectReference,
        VolumeResourceRequirements,
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::api::ObjectMeta;

use super::labels::{CLAIM, Owner, PASSPHRASE_GENERATED, PASSPHRASE_SOURCE};
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

/// The name of the passphrase Secret of `claim` under `profile`, if the profile uses one.
pub fn passphrase_secret_name(claim: &str, profile: &HostingProfile) -> Option<String> {
    let encryption = &profile.spec.storage.encryption;
    (encryption.kind == EncryptionType::NodeLuks)
        .then(|| format!("{claim}{}", encryption.secret_suffix))
}

fn passphrase_secret(
    claim: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    profile: &HostingProfile,
    origin: &Origin,
) -> Option<Secret> {
    let name = passphrase_secret_name(claim, profile)?;
    let source = match origin {
        Origin::Empty => PASSPHRASE_GENERATED.to_owned(),
        Origin::CloneOf(source) => passphrase_secret_name(source, profile)?,
    };
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.into()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([
                (PASSPHRASE_SOURCE.into(), source),
                (CLAIM.into(), claim.to_owned()),
            ])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        immutable: Some(true),
        ..Default::default()
    })
}
