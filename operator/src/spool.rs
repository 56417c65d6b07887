//! The audit sink's spool: the batches of records the store did not take, kept as ConfigMaps
//! of the operator's namespace until it does, so that an outage of the store loses nothing
//! across a restart, a crash or a failover.
//!
//! The API server is the spool's disk (etcd's): it survives the loss of a pod and of a node,
//! needs no volume of the operator's own, and every replica reads the same spool. Each batch
//! is kept with the name of the object it will be in the store, so that whoever drains it (the
//! replica that spooled it, once restarted, or any other) writes that same object, once, and
//! deletes the ConfigMap after. A ConfigMap rather than a Secret: records carry no key material
//! (see `controller::events`), and the right to list ConfigMaps of the operator's namespace
//! reveals none of its Secrets.
//!
//! The spool is bounded by a number of batches: beyond it, a batch the store does not take is
//! dropped from the sink (it stays in the log), counted by `hygie_audit_records_dropped_total`,
//! which the chart's alert watches.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};

/// The label every spooled batch carries.
const LABEL: &str = "hygie.io/audit-spool";
/// The data keys of a spooled batch: the store object's name, and its records (JSON lines).
const KEY: &str = "key";
const RECORDS: &str = "records";

/// Why a batch is not in the spool.
#[derive(Debug, thiserror::Error)]
pub enum NotKept {
    #[error("the spool holds {0} batches, its bound")]
    Full(usize),
    #[error("the API server did not keep it: {0}")]
    Refused(#[from] kube::Error),
}

/// A batch in the spool.
pub struct Spooled {
    /// The ConfigMap's name.
    pub name: String,
    /// The name of the store object it is to be.
    pub key: String,
    pub body: String,
    pub records: usize,
}

/// The spool of the sink, in one namespace.
#[derive(Clone)]
pub struct Spool {
    api: Api<ConfigMap>,
    bound: usize,
}

impl Spool {
    /// The spool in `namespace`, holding at most `bound` batches.
    pub fn new(client: Client, namespace: &str, bound: usize) -> Spool {
        Spool {
            api: Api::namespaced(client, namespace),
            bound,
        }
    }

    /// Keeps `body`, the batch to be the store object `key`; returns how many batches the spool
    /// holds then.
    pub async fn keep(&self, key: &str, body: &str) -> Result<usize, NotKept> {
        let held = self.names().await?.len();
        if held >= self.bound {
            return Err(NotKept::Full(held));
        }
        let batch = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name_of(key)),
                labels: Some(BTreeMap::from([
                    (LABEL.to_owned(), "true".to_owned()),
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        "hygie".to_owned(),
                    ),
                ])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                (KEY.to_owned(), key.to_owned()),
                (RECORDS.to_owned(), body.to_owned()),
            ])),
            ..Default::default()
        };
        match self.api.create(&PostParams::default(), &batch).await {
            Ok(_) => Ok(held + 1),
            // Kept already: the same batch, spooled again after a failed answer.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(held),
            Err(e) => Err(e.into()),
        }
    }

    /// The batches the spool holds, oldest first.
    pub async fn batches(&self) -> Result<Vec<Spooled>, kube::Error> {
        let mut batches: Vec<Spooled> = self
            .api
            .list(&ListParams::default().labels(&format!("{LABEL}=true")))
            .await?
            .items
            .into_iter()
            .filter_map(|batch| {
                let name = batch.name_any();
                let mut data = batch.data?;
                let body = data.remove(RECORDS)?;
                Some(Spooled {
                    name,
                    key: data.remove(KEY)?,
                    records: body.lines().filter(|l| !l.trim().is_empty()).count(),
                    body,
                })
            })
            .collect();
        // Object names begin with their day and instant.
        batches.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(batches)
    }

    /// Forgets the batch `name`, which the store now has.
    pub async fn remove(&self, name: &str) -> Result<(), kube::Error> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn names(&self) -> Result<Vec<String>, kube::Error> {
        let listed = self
            .api
            .list_metadata(&ListParams::default().labels(&format!("{LABEL}=true")))
            .await?;
        Ok(listed.items.iter().map(ResourceExt::name_any).collect())
    }
}

/// `hygie-audit-spool-<digest of key>`: one name per store object, a valid object name
/// whatever the prefix holds.
fn name_of(key: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("hygie-audit-spool-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_named_by_its_store_object() {
        let key = "hygie/prod/2026/12/03/20261203T160000.000000001Z-hygie-0-00000001.jsonl";
        assert_eq!(name_of(key), name_of(key), "spooled again, the same object");
        assert_ne!(
            name_of(key),
            name_of(&key.replace("-00000001", "-00000002"))
        );
        assert!(name_of(key).len() <= 63, "{}", name_of(key));
    }
}
