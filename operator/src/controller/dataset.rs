//! The Dataset controller: rules, then its encrypted volume (key first) and import Job, then
//! its status. A dataset past its authorisation is Expired (its volume and key stay). On
//! deletion: refused while a workspace uses it; `Retain` leaves volume and key in place
//! without owner; `Shred` deletes the key first, then the volume.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Instant,
};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams},
    runtime::reflector::ObjectRef,
    runtime::{controller::Action, finalizer},
};

use super::{
    Context, DATASET_FINALIZER,
    apply::owned_by,
    children::orphan,
    children_listed,
    error::{Error, Result},
    events::{Evidence, conclude, intend, normal, publish, publish_with_evidence, warning},
    export::JobOutcome,
    jobs,
    keys::key_evidence,
    requeue_at, settle,
    status::{self, Observed, RECONCILING, STALLED},
    uid,
};
use crate::{
    api::{
        Dataset,
        conditions::*,
        dataset::{DatasetPhase, DatasetStatus, OnDelete},
        hosting_profile::EncryptionType,
    },
    build::{
        Child, dataset_children,
        labels::{MANAGED_BY, MANAGER, Owner, dataset_claim_name, import_name},
    },
    policy::{Inventory, check_dataset, check_profile, summary},
};

pub async fn reconcile(dataset: Arc<Dataset>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    children_listed(&context.dataset_children).await?;
    let api: Api<Dataset> = Api::namespaced(
        context.client.clone(),
        &dataset.namespace().unwrap_or_default(),
    );
    let result = finalizer(&api, DATASET_FINALIZER, dataset.clone(), |event| async {
        match event {
            finalizer::Event::Apply(dataset) => apply(&dataset, &context, &api).await,
            finalizer::Event::Cleanup(dataset) => cleanup(&dataset, &context, &api).await,
        }
    })
    .await
    .map_err(Error::from);
    settle(
        &*dataset,
        &context,
        &result,
        stall(&dataset, &context, &api, &result),
    )
    .await;
    context.metrics.reconciled("Dataset", started.elapsed());
    result
}

/// Says in the status that a permanent error stops the dataset from converging.
async fn stall(
    dataset: &Dataset,
    context: &Context,
    api: &Api<Dataset>,
    result: &Result<Action>,
) -> Result<bool> {
    let Err(error) = result else {
        return Ok(false);
    };
    let message = error.to_string();
    let current = dataset.status.clone().unwrap_or_default();
    let observed = vec![
        Observed::new(READY, false, STALLED, message.clone()),
        Observed::new(STALLED, true, error.reason(), message),
    ];
    let status = with_conditions(dataset, &current, observed, jiff::Timestamp::now());
    write(dataset, context, api, status).await
}

/// The claims Hygie manages in `namespace`, from the caches: datasets' volumes, workspaces'
/// homes, outboxes and copies, and export requests' snapshots and staged files.
fn managed_claims(context: &Context, namespace: &str) -> BTreeSet<(String, String)> {
    let managed = BTreeMap::from([(MANAGED_BY.to_owned(), MANAGER.to_owned())]);
    [
        &context.dataset_children,
        &context.workspace_children,
        &context.export_children,
    ]
    .iter()
    .flat_map(|children| {
        children
            .cache
            .matching("PersistentVolumeClaim", namespace, &managed)
    })
    .filter_map(|meta| Some((namespace.to_owned(), meta.name?)))
    .collect()
}

/// The PersistentVolume behind the dataset's claim: read from the claim while it exists, and
/// remembered in the status, so that it is still known once the claim is gone.
async fn volume_behind(
    dataset: &Dataset,
    context: &Context,
    api: &Api<Dataset>,
    namespace: &str,
) -> Result<Option<String>> {
    let current = dataset.status.clone().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(context.client.clone(), namespace);
    let claim = claims
        .get_opt(&crate::build::labels::dataset_claim_name(
            &dataset.name_any(),
        ))
        .await?;
    let bound = claim
        .and_then(|c| c.spec)
        .and_then(|s| s.volume_name)
        .filter(|v| !v.is_empty());
    match bound {
        Some(volume) if current.persistent_volume_name.as_ref() != Some(&volume) => {
            let status = DatasetStatus {
                persistent_volume_name: Some(volume.clone()),
                ..current.clone()
            };
            status::write(api, dataset, Some(&current), status).await?;
            Ok(Some(volume))
        }
        Some(volume) => Ok(Some(volume)),
        None => Ok(current.persistent_volume_name),
    }
}

/// Makes sure deleting `volume` deletes its disk, whatever the StorageClass's reclaim policy
/// (a `Retain` class would keep the disk, readable under provider-managed encryption), and
/// deletes it; the volume stays until its claim is gone. Returns it while it exists.
async fn delete_with_its_disk(context: &Context, volume: &str) -> Result<Vec<String>> {
    let volumes: Api<PersistentVolume> = Api::all(context.client.clone());
    let Some(existing) = volumes.get_opt(volume).await? else {
        return Ok(Vec::new());
    };
    let policy = existing
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
    if policy != Some("Delete") {
        let patch =
            Patch::Merge(serde_json::json!({"spec": {"persistentVolumeReclaimPolicy": "Delete"}}));
        volumes
            .patch(volume, &PatchParams::default(), &patch)
            .await?;
    }
    if existing.metadata.deletion_timestamp.is_none() {
        match volumes.delete(volume, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(vec![format!("PersistentVolume/{volume}")])
}

/// Takes the owner references off a retained dataset's key Secrets that still carry one (keys
/// are created once, so those made before retention kept them out of garbage collection keep
/// theirs until now).
async fn release_retained(dataset: &Dataset, context: &Context) -> Result<()> {
    for kind in ["Secret", "PersistentVolumeClaim"] {
        for meta in volume_and_keys(dataset, context, kind) {
            if meta
                .owner_references
                .as_ref()
                .is_some_and(|r| !r.is_empty())
            {
                let (namespace, name) = (meta.namespace, meta.name);
                orphan(
                    &context.client,
                    kind,
                    &namespace.unwrap_or_default(),
                    &name.unwrap_or_default(),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The dataset's children of `kind`, a claim or its keys, wherever they live.
fn volume_and_keys(dataset: &Dataset, context: &Context, kind: &str) -> Vec<ObjectMeta> {
    let namespace = dataset.namespace().unwrap_or_default();
    let owner = Owner::Dataset(&dataset.name_any());
    context
        .dataset_children
        .cache
        .of_owner(kind, &namespace, &owner.selector(), &uid(dataset))
}

/// Import progress, as the import Job reports it.
struct Import {
    phase: DatasetPhase,
    bytes: Option<i64>,
    checksum: Option<String>,
}

async fn apply(dataset: &Dataset, context: &Context, api: &Api<Dataset>) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let name = dataset.name_any();
    let namespace = dataset.namespace().unwrap_or_default();
    let profile = context
        .profiles
        .get(&ObjectRef::new(&dataset.spec.hosting_profile));
    let mut inventory = Inventory::default();
    if let Some(profile) = &profile {
        inventory.add_profile((**profile).clone());
    }
    inventory.managed_claims = managed_claims(context, &namespace);
    let mut violations = check_dataset(dataset, &inventory, now);
    if let Some(profile) = &profile {
        violations.extend(check_profile(profile, now));
    }
    let current = dataset.status.clone().unwrap_or_default();
    let (Some(profile), true) = (profile, violations.is_empty()) else {
        let message = summary(&violations);
        // Fail closed: an import still copying data onto a host that no longer complies stops.
        if current.imported_checksum.is_none() {
            let stopped = context
                .dataset_children
                .remove_kinds(Owner::Dataset(&name), &uid(dataset), &namespace, &["Job"])
                .await?;
            if !stopped.is_empty() {
                let note = format!("the import is stopped: {message}");
                publish(context, dataset, warning(), "ImportStopped", note).await;
            }
        }
        let observed = vec![
            Observed::new(
                READY,
                false,
                "Blocked",
                "the dataset breaks a rule: any import is stopped, and nothing else is created or changed",
            ),
            Observed::new(COMPLIANT, false, RULES_VIOLATED, message.clone()),
            Observed::new(STALLED, true, RULES_VIOLATED, message.clone()),
        ];
        let phase = current
            .phase
            .filter(|p| *p != DatasetPhase::Ready)
            .unwrap_or(DatasetPhase::Failed);
        let status = DatasetStatus {
            phase: Some(phase),
            ..with_conditions(dataset, &current, observed, now)
        };
        if write(dataset, context, api, status).await? {
            publish(context, dataset, warning(), RULES_VIOLATED, message).await;
        }
        return Ok(requeue_at(None, now, context.resync));
    };

    let retain = dataset.spec.retention.on_delete == OnDelete::Retain;
    let children = owned_by(dataset_children(dataset, &profile), dataset, |child| {
        retain && matches!(child, Child::Secret(_) | Child::PersistentVolumeClaim(_))
    });
    let key = profile.spec.storage.encryption.passphrase_key.as_deref();
    let changes = match context.dataset_children.apply_all(&children, key).await {
        Err(Error::Waiting(what)) => {
            let observed = vec![
                Observed::new(READY, false, "Waiting", format!("waiting for {what}")),
                Observed::new(COMPLIANT, true, ALL_RULES_PASS, "every rule passes"),
                Observed::new(RECONCILING, true, "Waiting", format!("waiting for {what}")),
            ];
            let status = DatasetStatus {
                phase: Some(DatasetPhase::Pending),
                ..with_conditions(dataset, &current, observed, now)
            };
            write(dataset, context, api, status).await?;
            return Err(Error::Waiting(what));
        }
        other => other?,
    };
    context
        .dataset_children
        .prune(Owner::Dataset(&name), &uid(dataset), &namespace, &children)
        .await?;
    if retain {
        release_retained(dataset, context).await?;
    }
    if !changes.keys_created.is_empty() {
        publish(
            context,
            dataset,
            normal(),
            "KeyCreated",
            format!("new volume key in {}", changes.keys_created.join(", ")),
        )
        .await;
    }
    // At creation the phase Event says it all; later changes are recorded one by one.
    if !changes.written.is_empty() && dataset.status.is_some() {
        let note = changes.written.join(", ");
        publish(context, dataset, normal(), "Applied", note).await;
    }

    let import = if dataset.spec.legal.valid_until.is_past(now) {
        Import {
            phase: DatasetPhase::Expired,
            bytes: current.imported_bytes,
            checksum: current.imported_checksum.clone(),
        }
    } else {
        import_progress(dataset, context, &current).await?
    };
    let encrypted = profile.spec.storage.encryption.kind != EncryptionType::None;
    let progress = match import.phase {
        DatasetPhase::Pending | DatasetPhase::Importing => Some(RECONCILING),
        DatasetPhase::Failed => Some(STALLED),
        DatasetPhase::Ready | DatasetPhase::Expired => None,
    };
    let progress = progress.map(|type_| {
        Observed::new(
            type_,
            true,
            phase_reason(import.phase),
            phase_message(import.phase, dataset),
        )
    });
    let observed = vec![
        Observed::new(
            READY,
            import.phase == DatasetPhase::Ready,
            phase_reason(import.phase),
            phase_message(import.phase, dataset),
        ),
        Observed::new(COMPLIANT, true, ALL_RULES_PASS, "every rule passes"),
        Observed::new(
            ENCRYPTED,
            encrypted,
            if encrypted {
                "EncryptedStorageClass"
            } else {
                "Unencrypted"
            },
            format!(
                "the volume uses StorageClass {}",
                profile.spec.storage.storage_class_name
            ),
        ),
    ]
    .into_iter()
    .chain(progress)
    .collect();
    let status = DatasetStatus {
        phase: Some(import.phase),
        volume_claim_name: Some(crate::build::labels::dataset_claim_name(&name)),
        imported_bytes: import.bytes,
        imported_checksum: import.checksum,
        ..with_conditions(dataset, &current, observed, now)
    };
    let previous = current.phase;
    if write(dataset, context, api, status).await? && previous != Some(import.phase) {
        let type_ = if matches!(import.phase, DatasetPhase::Expired | DatasetPhase::Failed) {
            warning()
        } else {
            normal()
        };
        publish(
            context,
            dataset,
            type_,
            phase_reason(import.phase),
            phase_message(import.phase, dataset),
        )
        .await;
    }
    let expiry = Some(dataset.spec.legal.valid_until.end()).filter(|t| *t > now);
    Ok(requeue_at(expiry, now, context.resync))
}

/// The StorageClass of the dataset's volume, as its profile names it.
fn storage_class(dataset: &Dataset, context: &Context) -> String {
    context
        .profiles
        .get(&ObjectRef::new(&dataset.spec.hosting_profile))
        .map(|p| p.spec.storage.storage_class_name.clone())
        .unwrap_or_default()
}

/// Where the import stands: done once recorded, otherwise read from the Job and its pod's
/// termination message.
async fn import_progress(
    dataset: &Dataset,
    context: &Context,
    current: &DatasetStatus,
) -> Result<Import> {
    let has_s3 = dataset.spec.source.as_ref().is_some_and(|s| s.s3.is_some());
    if !has_s3 || current.imported_checksum.is_some() {
        return Ok(Import {
            phase: DatasetPhase::Ready,
            bytes: current.imported_bytes,
            checksum: current.imported_checksum.clone(),
        });
    }
    let namespace = dataset.namespace().unwrap_or_default();
    let job_name = import_name(&dataset.name_any());
    Ok(
        match jobs::outcome(&context.client, &namespace, &job_name).await? {
            JobOutcome::Running => Import {
                phase: DatasetPhase::Importing,
                bytes: None,
                checksum: None,
            },
            JobOutcome::Failed(_) => Import {
                phase: DatasetPhase::Failed,
                bytes: None,
                checksum: None,
            },
            JobOutcome::Succeeded(message) => {
                let report = serde_json::from_str::<serde_json::Value>(&message).ok();
                Import {
                    phase: DatasetPhase::Ready,
                    bytes: report.as_ref().and_then(|r| r["bytes"].as_i64()),
                    checksum: report
                        .as_ref()
                        .and_then(|r| r["sha256"].as_str().map(|s| format!("sha256:{s}"))),
                }
            }
        },
    )
}

fn with_conditions(
    dataset: &Dataset,
    current: &DatasetStatus,
    observed: Vec<Observed>,
    now: jiff::Timestamp,
) -> DatasetStatus {
    let generation = dataset.metadata.generation;
    DatasetStatus {
        observed_generation: generation,
        conditions: status::merge(&current.conditions, observed, generation, now),
        ..current.clone()
    }
}

async fn write(
    dataset: &Dataset,
    context: &Context,
    api: &Api<Dataset>,
    status: DatasetStatus,
) -> Result<bool> {
    let key = format!(
        "{}/{}",
        dataset.namespace().unwrap_or_default(),
        dataset.name_any()
    );
    context.metrics.phase(
        "Dataset",
        &key,
        status.phase.map(|p| format!("{p:?}")).as_deref(),
    );
    status::write(api, dataset, dataset.status.as_ref(), status).await
}

fn phase_reason(phase: DatasetPhase) -> &'static str {
    match phase {
        DatasetPhase::Pending => "Pending",
        DatasetPhase::Importing => "Importing",
        DatasetPhase::Ready => "VolumeReady",
        DatasetPhase::Failed => "ImportFailed",
        DatasetPhase::Expired => "AuthorisationEnded",
    }
}

fn phase_message(phase: DatasetPhase, dataset: &Dataset) -> String {
    match phase {
        DatasetPhase::Ready => "the encrypted volume is ready".into(),
        DatasetPhase::Importing => "the import Job is copying the objects".into(),
        DatasetPhase::Failed => "the import Job failed; see its pod's logs".into(),
        DatasetPhase::Expired => format!(
            "the authorisation ended on {}: workspaces can no longer use this dataset; volume and key are kept",
            dataset.spec.legal.valid_until
        ),
        DatasetPhase::Pending => "waiting for what the dataset needs".into(),
    }
}

/// Deletion: refused while a workspace uses the dataset; then the import machinery goes, and
/// the volume and key are retained or shredded as the spec says.
async fn cleanup(dataset: &Dataset, context: &Context, api: &Api<Dataset>) -> Result<Action> {
    let name = dataset.name_any();
    let namespace = dataset.namespace().unwrap_or_default();
    let users: Vec<String> = context
        .workspaces
        .state()
        .iter()
        .filter(|w| {
            w.namespace().as_deref() == Some(namespace.as_str())
                && w.spec.datasets.iter().any(|d| d.name == name)
        })
        .map(|w| format!("Workspace/{}", w.name_any()))
        .collect();
    if !users.is_empty() {
        let message = format!(
            "the dataset is still used by {}; it is deleted once they no longer mount it",
            users.join(", ")
        );
        let observed = vec![Observed::new(READY, false, "InUse", message.clone())];
        let current = dataset.status.clone().unwrap_or_default();
        let mut conditions = current.conditions.clone();
        conditions.retain(|c| c.type_ != READY);
        conditions.extend(status::merge(
            &current.conditions,
            observed,
            dataset.metadata.generation,
            jiff::Timestamp::now(),
        ));
        let status = DatasetStatus {
            conditions,
            ..current
        };
        if status::write(api, dataset, dataset.status.as_ref(), status).await? {
            publish(context, dataset, warning(), "InUse", message).await;
        }
        return Err(Error::InUse(users.join(", ")));
    }
    let owner = Owner::Dataset(&name);
    let children = &context.dataset_children;
    let remaining = children
        .remove_kinds(
            owner,
            &uid(dataset),
            &namespace,
            &["Job", "NetworkPolicy", "ServiceAccount"],
        )
        .await?;
    if !remaining.is_empty() {
        return Err(Error::StillDeleting(remaining.join(", ")));
    }
    match dataset.spec.retention.on_delete {
        OnDelete::Retain => {
            let mut kept = Vec::new();
            for kind in ["PersistentVolumeClaim", "Secret"] {
                for meta in volume_and_keys(dataset, context, kind) {
                    let place = meta.namespace.unwrap_or_default();
                    let child = meta.name.unwrap_or_default();
                    orphan(&context.client, kind, &place, &child).await?;
                    kept.push(format!("{kind}/{place}/{child}"));
                }
            }
            publish(
                context,
                dataset,
                normal(),
                "Retained",
                format!("kept without owner: {}", kept.join(", ")),
            )
            .await;
        }
        OnDelete::Shred => {
            let mut evidence = Evidence::from([
                ("claim", dataset_claim_name(&name)),
                ("storageClass", storage_class(dataset, context)),
            ]);
            let present = volume_and_keys(dataset, context, "Secret");
            key_evidence(&mut evidence, &present);
            let volume = volume_behind(dataset, context, api, &namespace).await?;
            evidence.insert("persistentVolume", volume.clone().unwrap_or_default());
            // Nothing irreversible before its record is in the audit sink.
            let intent = "the key, then the claim and its volume's disk, are to be deleted";
            intend(context, dataset, "Shredded", intent, &evidence).await?;
            fail::fail_point!("shred/intended");
            let keys = children
                .remove_kinds(owner, &uid(dataset), &namespace, &["Secret"])
                .await?;
            if !keys.is_empty() {
                publish_with_evidence(
                    context,
                    dataset,
                    normal(),
                    "Shredding",
                    format!("deleting the key first: {}", keys.join(", ")),
                    evidence,
                )
                .await;
                return Err(Error::StillDeleting(keys.join(", ")));
            }
            fail::fail_point!("shred/key-deleted");
            let mut remaining = Vec::new();
            if let Some(volume) = &volume {
                remaining.extend(delete_with_its_disk(context, volume).await?);
            }
            remaining.extend(
                children
                    .remove_kinds(owner, &uid(dataset), &namespace, &["PersistentVolumeClaim"])
                    .await?,
            );
            if !remaining.is_empty() {
                return Err(Error::StillDeleting(remaining.join(", ")));
            }
            fail::fail_point!("shred/volume-deleted");
            conclude(context, dataset, "Shredded", evidence, |evidence| {
                match evidence.get("persistentVolume").map(String::as_str) {
                    Some(volume) if !volume.is_empty() => format!(
                        "the key was deleted, then the claim and PersistentVolume {volume}, set to be deleted with its disk"
                    ),
                    _ => "the key was deleted, then the claim, which no volume had been bound to"
                        .into(),
                }
            })
            .await?;
        }
    }
    context
        .metrics
        .phase("Dataset", &format!("{namespace}/{name}"), None);
    Ok(Action::await_change())
}
