//! Applying the desired children with server-side apply, and pruning the ones no longer
//! desired. An object is written only when Hygie's desired state for it changed or the object
//! changed under it: Hygie remembers, per child, the hash of what it applied and the version
//! the API server answered, and compares with the watched metadata. At rest, zero writes.
//! After a restart that memory is empty: each child carries the digest of what was applied
//! (`hygie.io/applied-hash`), which the caches keep only while nobody else has written the
//! object, so a child that is as Hygie left it is not written again.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use sha2::{Digest, Sha256};

use super::{
    adoption::AdoptionGuard,
    children::{ChildCache, delete, with_child_api},
    error::{Error, Result},
    keys::Passphrase,
};
use crate::{
    admission::NOT_ADOPTED,
    build::{
        Child,
        labels::{
            APPLIED_HASH, CLAIM, CLAIM_NAMESPACE, OWNER_UID, Owner, PASSPHRASE_GENERATED,
            PASSPHRASE_SOURCE,
        },
    },
};

/// Child kinds in the order they are removed, in three stages: workloads first, then what
/// surrounds them and the volumes, keys last.
pub const REMOVAL_STAGES: [&[&str]; 3] = [
    &["StatefulSet", "Job"],
    &[
        "Service",
        "RoleBinding",
        "Role",
        "NetworkPolicy",
        "ServiceAccount",
        "PersistentVolumeClaim",
    ],
    &["Secret"],
];

type ChildKey = (&'static str, String, String);

/// `children` marked as `owner`'s by its UID, and, but for those `outlives` keeps, owned by it
/// as their controller: garbage-collected with it, and its reconcile triggered by their
/// changes. What outlives the owner (a retained dataset's volume and key) carries no owner
/// reference at all, so that no garbage collection, foreground deletion included, can take it;
/// nor does a child in another namespace than its owner's (a key), which the garbage collector
/// would read as an orphan and delete at once.
pub fn owned_by<K: Resource<DynamicType = ()>>(
    mut children: Vec<Child>,
    owner: &K,
    outlives: impl Fn(&Child) -> bool,
) -> Vec<Child> {
    let reference = owner
        .controller_owner_ref(&())
        .expect("an object read from the API server has a uid");
    let home = owner.meta().namespace.clone();
    for child in &mut children {
        let kept = outlives(child) || child.meta().namespace != home;
        let meta = child.meta_mut();
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(OWNER_UID.into(), reference.uid.clone());
        if !kept {
            meta.owner_references = Some(vec![reference.clone()]);
        }
    }
    children
}

/// The UID of the Hygie object a child belongs to: its annotation, or its controller.
pub fn owner_uid(meta: &ObjectMeta) -> Option<&str> {
    let annotated = meta.annotations.as_ref().and_then(|a| a.get(OWNER_UID));
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| &r.uid);
    annotated.or(controller).map(String::as_str)
}

/// Refuses an object found under a child's name that Hygie did not create for this owner.
fn check_foreign(kind: &str, found: &ObjectMeta, ours: Option<&str>) -> Result<()> {
    match owner_uid(found) {
        None => Err(Error::NotOurs(format!(
            "{kind}/{} exists and was not created by Hygie",
            found.name.as_deref().unwrap_or_default()
        ))),
        Some(_) => check_owner(kind, found, ours),
    }
}

/// Refuses to touch `existing` if it belongs to another object than `owner_uid`: Hygie never
/// adopts, overwrites or deletes an object it did not create for this owner.
fn check_owner(kind: &str, existing: &ObjectMeta, ours: Option<&str>) -> Result<()> {
    match (owner_uid(existing), ours) {
        (Some(theirs), Some(ours)) if theirs != ours => Err(Error::NotOurs(format!(
            "{kind}/{} belongs to another object (uid {theirs})",
            existing.name.as_deref().unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

/// Applies and prunes the children of one owner kind, as one field manager.
pub struct Applier {
    client: Client,
    manager: &'static str,
    pub cache: ChildCache,
    guard: Arc<AdoptionGuard>,
    applied: Mutex<HashMap<ChildKey, (String, String)>>,
}

/// What an apply changed, for Events.
#[derive(Debug, Default)]
pub struct Changes {
    pub written: Vec<String>,
    pub keys_created: Vec<String>,
}

/// The passphrase of an existing volume, kept from where its Secret was, to be written where
/// its Secret now belongs.
struct Kept {
    passphrase: Passphrase,
    /// The Secret it was read from, as `namespace/name`.
    place: String,
}

/// Whether `secret` is a volume key: the builders mark every key with where its passphrase
/// comes from.
fn is_key(secret: &Secret) -> bool {
    secret
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(PASSPHRASE_SOURCE))
}

impl Applier {
    pub fn new(
        client: Client,
        manager: &'static str,
        cache: ChildCache,
        guard: Arc<AdoptionGuard>,
    ) -> Self {
        Applier {
            client,
            manager,
            cache,
            guard,
            applied: Mutex::new(HashMap::new()),
        }
    }

    /// Applies `children` in order. Passphrase Secrets are created once with their key
    /// (generated, or copied from the Secret named in their annotation), never updated.
    pub async fn apply_all(
        &self,
        children: &[Child],
        passphrase_key: Option<&str>,
    ) -> Result<Changes> {
        let mut changes = Changes::default();
        for child in children {
            let namespace = child.meta().namespace.clone().unwrap_or_default();
            let name = child.name();
            if let Some(existing) = self.cache.get(child.kind(), &namespace, &name) {
                check_owner(child.kind(), &existing, owner_uid(child.meta()))?;
            }
            match child {
                Child::Secret(secret) if !is_key(secret) => {
                    if self.cache.get("Secret", &namespace, &name).is_none() {
                        self.create_once(secret, &namespace).await?;
                        changes.written.push(format!("Secret/{name}"));
                    }
                }
                Child::Secret(secret) => {
                    if self.cache.get("Secret", &namespace, &name).is_none() {
                        let key = passphrase_key
                            .ok_or_else(|| Error::Waiting("a passphraseKey".into()))?;
                        let kept = self.key_of_an_existing_volume(secret, key).await?;
                        let note = match &kept {
                            Some(Kept { place, .. }) => format!(
                                "Secret/{namespace}/{name} (a copy of {place}, which the volume's PersistentVolume still names)"
                            ),
                            None => format!("Secret/{namespace}/{name}"),
                        };
                        self.create_key(secret, &namespace, key, kept.map(|k| k.passphrase))
                            .await?;
                        fail::fail_point!("key/created");
                        changes.keys_created.push(note);
                    }
                }
                _ => {
                    if self.apply_one(child, &namespace, &name).await? {
                        fail::fail_point!(&format!("applied/{}", child.kind()));
                        changes.written.push(format!("{}/{name}", child.kind()));
                    }
                }
            }
        }
        Ok(changes)
    }

    /// Applies one child unless it is unchanged. Returns whether it wrote.
    async fn apply_one(&self, child: &Child, namespace: &str, name: &str) -> Result<bool> {
        let key: ChildKey = (child.kind(), namespace.to_owned(), name.to_owned());
        let hash = hash_of(child);
        let cached = self.cache.get(child.kind(), namespace, name);
        let existing = cached.as_ref().map(version);
        let remembered = self
            .applied
            .lock()
            .expect("not poisoned")
            .get(&key)
            .cloned();
        if let (Some(existing), Some((applied_hash, applied_version))) = (&existing, &remembered)
            && *applied_hash == hash
            && applied_version == existing
        {
            return Ok(false);
        }
        if let (Some(cached), None) = (&cached, &remembered)
            && applied_hash(cached) == Some(&hash)
        {
            // A restarted operator: the object is as Hygie last applied it, and nobody else
            // wrote it since (the cache keeps the digest only then).
            self.applied
                .lock()
                .expect("not poisoned")
                .insert(key, (hash, version(cached)));
            return Ok(false);
        }
        if existing.is_none() && !self.guard.enforced().await {
            // Not among Hygie's children, and the API server does not refuse the operator an
            // object it did not create: a forced apply would adopt an object of that name.
            self.refuse_foreign(child, namespace, name).await?;
        }
        let params = PatchParams::apply(self.manager).force();
        let applied = with_child_api!(child.kind(), self.client.clone(), namespace, api => {
            let patch = Patch::Apply(with_applied_hash(child, &hash));
            api.patch(name, &params, &patch).await.map(|o| o.meta().clone())
        });
        let meta = match applied {
            Ok(meta) => meta,
            Err(kube::Error::Api(status)) if status.message.contains(NOT_ADOPTED) => {
                return Err(Error::NotOurs(format!(
                    "{}/{name} exists and was not created by Hygie for this owner",
                    child.kind()
                )));
            }
            // The API server validates an object before admission: an apply over somebody
            // else's object may be refused as invalid first (a claim's spec is immutable).
            // Nothing was written; say whose object is in the way, if it is somebody else's.
            Err(e) if existing.is_none() => {
                self.refuse_foreign(child, namespace, name).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.applied
            .lock()
            .expect("not poisoned")
            .insert(key, (hash, version(&meta)));
        Ok(true)
    }

    /// Refuses the object of `child`'s name, if there is one that Hygie did not create for
    /// this owner.
    async fn refuse_foreign(&self, child: &Child, namespace: &str, name: &str) -> Result<()> {
        let found = with_child_api!(child.kind(), self.client.clone(), namespace, api => {
            api.get_metadata_opt(name).await?.map(|o| o.metadata)
        });
        match found {
            Some(found) => check_foreign(child.kind(), &found, owner_uid(child.meta())),
            None => Ok(()),
        }
    }

    /// The passphrase a key Secret missing while the claim it opens exists must carry, or why
    /// there is none. Such a claim's volume was formatted with a key already: a new one would
    /// not open it, and would hide the loss. The key is still where the first releases put it,
    /// beside the claim (`<claim><suffix>`, the Secret's own name less its namespace prefix),
    /// when the profile has since moved keys to a namespace of their own: it is copied, and
    /// stays, since the claim's PersistentVolume names it for good. Otherwise it was deleted by
    /// someone. The Secrets are read from the API server, so that a cache behind the claim's
    /// does not pass for a loss.
    async fn key_of_an_existing_volume(&self, secret: &Secret, key: &str) -> Result<Option<Kept>> {
        let annotations = secret.annotations();
        let Some(claim) = annotations.get(CLAIM) else {
            return Ok(None);
        };
        let namespace = secret.namespace().unwrap_or_default();
        let claim_namespace = annotations.get(CLAIM_NAMESPACE).unwrap_or(&namespace);
        if self
            .cache
            .get("PersistentVolumeClaim", claim_namespace, claim)
            .is_none()
        {
            return Ok(None);
        }
        let name = secret.name_any();
        let here: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        if here.get_metadata_opt(&name).await?.is_some() {
            return Ok(None);
        }
        let lost = || Error::KeyLost {
            secret: format!("{namespace}/{name}"),
            claim: format!("{claim_namespace}/{claim}"),
        };
        let Some(legacy) = name.strip_prefix(&format!("{claim_namespace}.")) else {
            return Err(lost());
        };
        let beside: Api<Secret> = Api::namespaced(self.client.clone(), claim_namespace);
        let ours = owner_uid(&secret.metadata);
        let found = beside.get_opt(legacy).await?.filter(|found| {
            owner_uid(&found.metadata).is_some() && owner_uid(&found.metadata) == ours
        });
        let passphrase = found.as_ref().and_then(|s| Passphrase::read(s, key));
        let passphrase = passphrase.ok_or_else(lost)?;
        Ok(Some(Kept {
            passphrase,
            place: format!("{claim_namespace}/{legacy}"),
        }))
    }

    /// Creates a Secret that is not a volume key (a desktop credential, the same every time it
    /// is derived): once, never updated.
    async fn create_once(&self, secret: &Secret, namespace: &str) -> Result<()> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let params = PostParams {
            field_manager: Some(self.manager.into()),
            ..Default::default()
        };
        match secrets.create(&params, secret).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let name = secret.metadata.name.as_deref().unwrap_or_default();
                match secrets.get_metadata_opt(name).await? {
                    Some(found) => {
                        check_foreign("Secret", &found.metadata, owner_uid(&secret.metadata))
                    }
                    None => Ok(()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a key Secret with `kept`, the passphrase of the volume it opens, or else the one
    /// its annotation says: a new one, or its source claim's.
    async fn create_key(
        &self,
        secret: &Secret,
        namespace: &str,
        key: &str,
        kept: Option<Passphrase>,
    ) -> Result<()> {
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let passphrase = match (kept, annotations.get(PASSPHRASE_SOURCE).map(String::as_str)) {
            (Some(kept), _) => kept,
            (None, Some(PASSPHRASE_GENERATED) | None) => Passphrase::generate()?,
            (None, Some(source)) => {
                let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                let original = secrets.get_opt(source).await?;
                original
                    .as_ref()
                    .and_then(|s| Passphrase::read(s, key))
                    .ok_or_else(|| {
                        Error::Waiting(format!("the passphrase Secret {namespace}/{source}"))
                    })?
            }
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let params = PostParams {
            field_manager: Some(self.manager.into()),
            ..Default::default()
        };
        match secrets
            .create(&params, &passphrase.into_secret(secret.clone(), key))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Made a moment ago by this owner, or someone else's Secret of that name.
                let name = secret.metadata.name.as_deref().unwrap_or_default();
                match secrets.get_metadata_opt(name).await? {
                    Some(found) => {
                        check_foreign("Secret", &found.metadata, owner_uid(&secret.metadata))
                    }
                    None => Ok(()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the children of `owner` (in `namespace`, its keys wherever they are) that are
    /// not in `desired`, workloads first and keys last. A key is kept while the claim it opens
    /// exists.
    pub async fn prune(
        &self,
        owner: Owner<'_>,
        owner_uid: &str,
        namespace: &str,
        desired: &[Child],
    ) -> Result<Vec<String>> {
        let wanted: BTreeSet<(&str, String, String)> = desired
            .iter()
            .map(|c| {
                let place = c.meta().namespace.clone().unwrap_or_default();
                (c.kind(), place, c.name())
            })
            .collect();
        let mut removed = Vec::new();
        let kinds: Vec<&'static str> = REMOVAL_STAGES.concat();
        for kind in kinds {
            for meta in self.children(kind, owner, owner_uid, namespace) {
                let place = meta.namespace.clone().unwrap_or_default();
                let name = meta.name.clone().unwrap_or_default();
                if wanted.contains(&(kind, place.clone(), name.clone()))
                    || meta.deletion_timestamp.is_some()
                {
                    continue;
                }
                if kind == "Secret" && self.claim_remains(&meta, &wanted) {
                    continue;
                }
                delete(&self.client, kind, &place, &name).await?;
                self.forget(kind, &place, &name);
                removed.push(format!("{kind}/{name}"));
            }
        }
        Ok(removed)
    }

    /// The children of `kind` Hygie made for `owner`: those of its namespace it may touch, and
    /// those elsewhere marked with its UID.
    fn children(
        &self,
        kind: &'static str,
        owner: Owner<'_>,
        owner_uid: &str,
        namespace: &str,
    ) -> Vec<ObjectMeta> {
        let mut found = self
            .cache
            .of_owner(kind, namespace, &owner.selector(), owner_uid);
        found.retain(|meta| check_owner(kind, meta, Some(owner_uid)).is_ok());
        found
    }

    fn claim_remains(
        &self,
        secret: &ObjectMeta,
        wanted: &BTreeSet<(&str, String, String)>,
    ) -> bool {
        let annotations = secret.annotations.as_ref();
        let claim = annotations.and_then(|a| a.get(CLAIM));
        let namespace = annotations
            .and_then(|a| a.get(CLAIM_NAMESPACE))
            .or(secret.namespace.as_ref())
            .cloned()
            .unwrap_or_default();
        claim.is_none_or(|claim| {
            wanted.contains(&("PersistentVolumeClaim", namespace.clone(), claim.clone()))
                || self
                    .cache
                    .get("PersistentVolumeClaim", &namespace, claim)
                    .is_some()
        })
    }

    /// Deletes every child of `owner` of the given kinds (in `namespace`, its keys wherever
    /// they are). Returns the ones still present (being deleted), so that the caller waits
    /// before the next step.
    pub async fn remove_kinds(
        &self,
        owner: Owner<'_>,
        owner_uid: &str,
        namespace: &str,
        kinds: &[&'static str],
    ) -> Result<Vec<String>> {
        let mut remaining = Vec::new();
        for kind in kinds {
            for meta in self.children(kind, owner, owner_uid, namespace) {
                let place = meta.namespace.clone().unwrap_or_default();
                let name = meta.name.clone().unwrap_or_default();
                if meta.deletion_timestamp.is_none() {
                    delete(&self.client, kind, &place, &name).await?;
                }
                self.forget(kind, &place, &name);
                remaining.push(format!("{kind}/{name}"));
            }
        }
        Ok(remaining)
    }

    fn forget(&self, kind: &'static str, namespace: &str, name: &str) {
        self.applied.lock().expect("not poisoned").remove(&(
            kind,
            namespace.to_owned(),
            name.to_owned(),
        ));
    }
}

/// What changes when someone else changes an object's spec: its generation where the kind
/// has one (status updates leave it alone), otherwise its resourceVersion.
fn version(meta: &ObjectMeta) -> String {
    match meta.generation {
        Some(generation) => format!("g{generation}"),
        None => meta.resource_version.clone().unwrap_or_default(),
    }
}

/// A digest of what Hygie applies for `child`, the same in every process and release.
fn hash_of(child: &Child) -> String {
    let digest = Sha256::digest(child.to_json().to_string());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `child` as applied: with the digest of itself.
fn with_applied_hash(child: &Child, hash: &str) -> serde_json::Value {
    let mut body = child.to_json();
    body["metadata"]["annotations"][APPLIED_HASH] = hash.into();
    body
}

fn applied_hash(meta: &ObjectMeta) -> Option<&String> {
    meta.annotations.as_ref()?.get(APPLIED_HASH)
}
