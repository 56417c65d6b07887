//! The Workspace controller: rules, then its children, then its status; at `expiresAt` or on
//! `suspend: true` its workload stops and its volumes and keys stay; on deletion the
//! workload goes first, then the volumes, then the keys.
//!
//! It fails closed: the moment a rule stops holding for a running workspace (an authorisation
//! ended or shortened, a certification or qualification lapsed, a dataset expired or blocked,
//! the profile changed or gone), its workload is scaled to zero, volumes and keys kept, until
//! the rules hold again. It is reconciled again at the next instant a date can change that.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::reflector::ObjectRef,
    runtime::{controller::Action, finalizer},
};

use super::{
    Context, FAIL_CLOSED_MANAGER, WORKSPACE_FINALIZER,
    apply::REMOVAL_STAGES,
    apply::owned_by,
    children_listed,
    error::{Error, Result},
    events::{Evidence, conclude, conclude_interrupted, intend, named, normal, publish, warning},
    idle::{Wakefulness, idle_after, wakefulness},
    keys::key_evidence,
    readers, requeue_at, settle,
    status::{self, Observed, RECONCILING, STALLED},
    uid,
};
use crate::{
    api::{
        Access, Dataset, Workspace,
        conditions::*,
        dataset::DatasetPhase,
        hosting_profile::EncryptionType,
        workspace::{Lineage, WorkspacePhase, WorkspaceStatus},
    },
    build::{
        is_expired,
        labels::{Owner, dataset_copy_claim_name},
        member_access, workspace_children,
    },
    gateway::credential::desktop_password,
    policy::{
        Inventory, ObjectKey, Rule, Violation, check_dataset, check_profile, check_workspace,
        summary,
    },
};

/// How soon a workspace stopped for who else reads its pod (HYG020) is looked at again.
const READERS_RECHECK: std::time::Duration = std::time::Duration::from_secs(20);

pub async fn reconcile(workspace: Arc<Workspace>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    children_listed(&context.workspace_children).await?;
    context.stores_listed().await?;
    let api: Api<Workspace> = Api::namespaced(
        context.client.clone(),
        &workspace.namespace().unwrap_or_default(),
    );
    let result = finalizer(
        &api,
        WORKSPACE_FINALIZER,
        workspace.clone(),
        |event| async {
            match event {
                finalizer::Event::Apply(workspace) => apply(&workspace, &context, &api).await,
                finalizer::Event::Cleanup(workspace) => cleanup(&workspace, &context).await,
            }
        },
    )
    .await
    .map_err(Error::from);
    settle(
        &*workspace,
        &context,
        &result,
        stall(&workspace, &context, &api, &result),
    )
    .await;
    context.metrics.reconciled("Workspace", started.elapsed());
    result
}

/// Says in the status that a permanent error stops the workspace from converging.
async fn stall(
    workspace: &Workspace,
    context: &Context,
    api: &Api<Workspace>,
    result: &Result<Action>,
) -> Result<bool> {
    let Err(error) = result else {
        return Ok(false);
    };
    let message = error.to_string();
    let phase = workspace
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(WorkspacePhase::Pending);
    let observed = vec![
        Observed::new(READY, false, STALLED, message.clone()),
        Observed::new(STALLED, true, error.reason(), message),
    ];
    write_status(
        workspace,
        context,
        api,
        phase,
        observed,
        jiff::Timestamp::now(),
    )
    .await
}

/// The profile and datasets this workspace refers to, from the watched stores.
pub(super) fn inventory(workspace: &Workspace, context: &Context) -> Inventory {
    let mut inventory = Inventory::default();
    let namespace = workspace.namespace().unwrap_or_default();
    if let Some(profile) = context
        .profiles
        .get(&ObjectRef::new(&workspace.spec.hosting_profile))
    {
        inventory.add_profile((*profile).clone());
    }
    for name in workspace.lineage() {
        if let Some(dataset) = context
            .datasets
            .get(&ObjectRef::new(name).within(&namespace))
        {
            inventory.add_dataset((*dataset).clone());
        }
    }
    inventory
}

/// Every rule that must hold for the workspace to run: its own, its profile's and its
/// datasets'.
pub(super) fn violations(
    workspace: &Workspace,
    inventory: &Inventory,
    now: jiff::Timestamp,
) -> Vec<Violation> {
    let mut violations = check_workspace(workspace, inventory, now);
    if let Some(profile) = inventory.profile(&workspace.spec.hosting_profile) {
        violations.extend(check_profile(profile, now));
    }
    for dataset in inventory.datasets.values() {
        violations.extend(check_dataset(dataset, inventory, now));
    }
    violations
}

async fn apply(workspace: &Workspace, context: &Context, api: &Api<Workspace>) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let inventory = inventory(workspace, context);
    let violations = violations(workspace, &inventory, now);
    let profile = inventory.profile(&workspace.spec.hosting_profile);
    let (Some(profile), true) = (profile, violations.is_empty()) else {
        return blocked(workspace, context, api, &violations, now).await;
    };
    if let Some(what) = datasets_not_ready(workspace, context, &inventory) {
        return waiting(workspace, context, api, what, now).await;
    }

    let datasets: Vec<&Dataset> = workspace
        .spec
        .datasets
        .iter()
        .filter_map(|m| inventory.dataset(&namespace, &m.name))
        .collect();
    if member_access(workspace, &datasets) == Access::Screen {
        let pod = format!("{name}-0");
        let readers = readers::foreign_readers(&context.client, &namespace, &pod).await?;
        if !readers.is_empty() {
            let violations = [Violation {
                rule: Rule::Readers,
                object: ObjectKey::of(workspace),
                field: "metadata.namespace".into(),
                message: format!(
                    "{}: anyone reading the workspace's pod reads what it prints; bind them nothing on pods in namespace `{namespace}`, or move the workspace",
                    readers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            }];
            blocked(workspace, context, api, &violations, now).await?;
            // Nothing Hygie watches changes when a binding goes: look again soon.
            return Ok(Action::requeue(READERS_RECHECK));
        }
    }
    let password = context
        .desktop_key
        .as_ref()
        .map(|key| desktop_password(key, &uid(workspace)));
    let wake = match idle_after(profile) {
        None => Wakefulness::Unbounded,
        Some(seconds) => {
            let sessions = context.sessions.state();
            wakefulness(workspace, seconds, sessions.iter().map(AsRef::as_ref), now)
        }
    };
    let children = owned_by(
        workspace_children(
            workspace,
            profile,
            &datasets,
            password.as_deref(),
            !wake.is_idle(),
            now,
        ),
        workspace,
        |_| false,
    );
    let key = profile.spec.storage.encryption.passphrase_key.as_deref();
    let changes = match context.workspace_children.apply_all(&children, key).await {
        Err(Error::Waiting(what)) => return waiting(workspace, context, api, what, now).await,
        other => other?,
    };
    let pruned = context
        .workspace_children
        .prune(
            Owner::Workspace(&name),
            &uid(workspace),
            &namespace,
            &children,
        )
        .await?;

    if !changes.keys_created.is_empty() {
        let note = format!("new volume keys in {}", changes.keys_created.join(", "));
        publish(context, workspace, normal(), "KeyCreated", note).await;
    }
    if changes
        .written
        .iter()
        .any(|c| c.starts_with("RoleBinding/"))
    {
        let members: Vec<String> = (workspace.spec.members.iter())
            .map(|m| format!("{:?} {} as {:?}", m.kind, m.name, m.role))
            .collect();
        let note = format!(
            "access is now: {}; applied {}",
            members.join(", "),
            changes.written.join(", ")
        );
        publish(context, workspace, normal(), "AccessGranted", note).await;
    } else if !changes.written.is_empty() {
        publish(
            context,
            workspace,
            normal(),
            "Applied",
            changes.written.join(", "),
        )
        .await;
    }
    if !pruned.is_empty() {
        let note = format!("no longer desired, removed: {}", pruned.join(", "));
        publish(context, workspace, normal(), "Pruned", note).await;
    }

    let phase = if is_expired(workspace, now) {
        WorkspacePhase::Expired
    } else if workspace.spec.suspend {
        WorkspacePhase::Suspended
    } else if wake.is_idle() {
        WorkspacePhase::Idle
    } else if workload_ready(context, &namespace, &name) {
        WorkspacePhase::Ready
    } else {
        WorkspacePhase::Provisioning
    };
    let encrypted = profile.spec.storage.encryption.kind != EncryptionType::None;
    let observed = vec![
        Observed::new(
            READY,
            phase == WorkspacePhase::Ready,
            phase_reason(phase),
            phase_message(phase, workspace),
        ),
        Observed::new(COMPLIANT, true, ALL_RULES_PASS, "every rule passes"),
        copies_bound(workspace, context),
        Observed::new(
            NETWORK_ISOLATED,
            true,
            "DefaultDeny",
            "default-deny network policies are applied",
        ),
        Observed::new(
            STORAGE_ENCRYPTED,
            encrypted,
            if encrypted {
                "EncryptedStorageClass"
            } else {
                "Unencrypted"
            },
            format!(
                "volumes use StorageClass {}",
                profile.spec.storage.storage_class_name
            ),
        ),
    ];
    write_status(workspace, context, api, phase, observed, now).await?;
    let deadline = next_deadline(workspace, &inventory, now)
        .into_iter()
        .chain(wake.deadline())
        .min();
    Ok(requeue_at(deadline, now, context.resync))
}

/// The first instant after `now` at which a rule can stop holding by the passing of time: the
/// workspace's expiry, the end of a dataset's authorisation, of a certification.
fn next_deadline(
    workspace: &Workspace,
    inventory: &Inventory,
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let expiry = workspace.spec.expires_at.as_ref().map(|t| t.0);
    let authorisations = inventory
        .datasets
        .values()
        .map(|d| d.spec.legal.valid_until.end());
    let certifications = inventory
        .profiles
        .values()
        .flat_map(|p| p.spec.certifications.iter().map(|c| c.valid_until.end()));
    expiry
        .into_iter()
        .chain(authorisations)
        .chain(certifications)
        .filter(|t| *t > now)
        .min()
}

/// The datasets whose copy does not exist yet and that are not Ready to be copied (an import
/// still running or failed): a copy taken now would be partial and never refreshed.
fn datasets_not_ready(
    workspace: &Workspace,
    context: &Context,
    inventory: &Inventory,
) -> Option<String> {
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let pending: Vec<String> = inventory
        .datasets
        .values()
        .filter(|d| {
            let copy = dataset_copy_claim_name(&name, &d.name_any());
            let copied = context
                .workspace_children
                .cache
                .get("PersistentVolumeClaim", &namespace, &copy)
                .is_some();
            let ready = d.status.as_ref().and_then(|s| s.phase) == Some(DatasetPhase::Ready);
            !copied && !ready
        })
        .map(|d| format!("Dataset `{}` to be Ready", d.name_any()))
        .collect();
    (!pending.is_empty()).then(|| pending.join(", "))
}

/// Something the workspace needs is not there yet: say what, and try again soon.
async fn waiting(
    workspace: &Workspace,
    context: &Context,
    api: &Api<Workspace>,
    what: String,
    now: jiff::Timestamp,
) -> Result<Action> {
    if quiet_start(workspace, now) {
        return Err(Error::Waiting(what));
    }
    let observed = vec![
        Observed::new(READY, false, "Waiting", format!("waiting for {what}")),
        Observed::new(COMPLIANT, true, ALL_RULES_PASS, "every rule passes"),
    ];
    write_status(
        workspace,
        context,
        api,
        WorkspacePhase::Pending,
        observed,
        now,
    )
    .await?;
    Err(Error::Waiting(what))
}

/// How long a new workspace may wait without saying so.
const QUIET_START: jiff::SignedDuration = jiff::SignedDuration::from_secs(15);

/// A new workspace, created with its datasets, finds them still being prepared, and they are
/// usually Ready within seconds: a status saying so would be replaced a moment later, one
/// write for nothing per workspace. So a workspace that has never reported says nothing for
/// its first [`QUIET_START`]; GitOps tools read a status without `observedGeneration` as
/// still in progress. Past that, or once it has reported, it says what it waits for.
fn quiet_start(workspace: &Workspace, now: jiff::Timestamp) -> bool {
    let never_reported = workspace
        .status
        .as_ref()
        .is_none_or(|s| s.observed_generation.is_none());
    let young = workspace
        .metadata
        .creation_timestamp
        .as_ref()
        .is_some_and(|created| now.duration_since(created.0) < QUIET_START);
    never_reported && young
}

/// Rules fail: say so, stop the workload if it runs (volumes, keys, network policies and
/// access stay as they are: nothing is loosened), and wait for a change.
async fn blocked(
    workspace: &Workspace,
    context: &Context,
    api: &Api<Workspace>,
    violations: &[Violation],
    now: jiff::Timestamp,
) -> Result<Action> {
    let message = summary(violations);
    let message = if message.is_empty() {
        format!(
            "HostingProfile `{}` does not exist",
            workspace.spec.hosting_profile
        )
    } else {
        message
    };
    let stopped = stop_workload(workspace, context).await?;
    if stopped {
        let note = format!("the workload is stopped, volumes and keys are kept: {message}");
        publish(context, workspace, warning(), "WorkloadStopped", note).await;
    }
    let observed = vec![
        Observed::new(
            READY,
            false,
            "Blocked",
            "the workspace breaks a rule: its workload is stopped and nothing else is created or changed",
        ),
        Observed::new(COMPLIANT, false, RULES_VIOLATED, message.clone()),
    ];
    if write_status(
        workspace,
        context,
        api,
        WorkspacePhase::Blocked,
        observed,
        now,
    )
    .await?
    {
        publish(context, workspace, warning(), RULES_VIOLATED, message).await;
    }
    Ok(requeue_at(None, now, context.resync))
}

/// Scales the workspace's StatefulSet to zero if it has replicas. Returns whether it did.
///
/// A merge patch of the replica count only: it works without the profile or datasets the full
/// StatefulSet is built from (they may be what is gone), and the next apply, once the rules
/// hold again, takes the field back.
async fn stop_workload(workspace: &Workspace, context: &Context) -> Result<bool> {
    let namespace = workspace.namespace().unwrap_or_default();
    let name = workspace.name_any();
    let Some(statefulset) = context
        .statefulsets
        .get(&ObjectRef::new(&name).within(&namespace))
    else {
        return Ok(false);
    };
    let ours = statefulset
        .owner_references()
        .iter()
        .any(|r| Some(&r.uid) == workspace.metadata.uid.as_ref());
    let replicas = statefulset.spec.as_ref().and_then(|s| s.replicas);
    if !ours || replicas == Some(0) {
        return Ok(false);
    }
    let api: Api<StatefulSet> = Api::namespaced(context.client.clone(), &namespace);
    let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": 0}}));
    let params = PatchParams {
        field_manager: Some(FAIL_CLOSED_MANAGER.into()),
        ..Default::default()
    };
    api.patch(&name, &params, &patch).await?;
    Ok(true)
}

/// Whether every dataset copy is bound to a volume, as the watched claims say.
fn copies_bound(workspace: &Workspace, context: &Context) -> Observed {
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let copies: Vec<String> = workspace
        .spec
        .datasets
        .iter()
        .map(|m| dataset_copy_claim_name(&name, &m.name))
        .collect();
    let bound = copies
        .iter()
        .filter(|copy| {
            let claim = context
                .claims
                .get(&ObjectRef::new(copy.as_str()).within(&namespace));
            claim
                .as_ref()
                .and_then(|c| c.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Bound")
        })
        .count();
    let all = bound == copies.len();
    Observed::new(
        DATASETS_BOUND,
        all,
        if all {
            "CopiesBound"
        } else {
            "WaitingForBinding"
        },
        format!(
            "{bound} of {} dataset copies are bound to a volume",
            copies.len()
        ),
    )
}

/// Whether the workload has a ready pod, from the watched StatefulSets.
fn workload_ready(context: &Context, namespace: &str, name: &str) -> bool {
    let key = ObjectRef::new(name).within(namespace);
    let status = context
        .statefulsets
        .get(&key)
        .and_then(|s| s.status.clone());
    status.and_then(|s| s.ready_replicas).unwrap_or(0) >= 1
}

fn phase_reason(phase: WorkspacePhase) -> &'static str {
    match phase {
        WorkspacePhase::Ready => "WorkloadReady",
        WorkspacePhase::Provisioning => "Provisioning",
        WorkspacePhase::Suspended => "Suspended",
        WorkspacePhase::Idle => "Idle",
        WorkspacePhase::Expired => "Expired",
        WorkspacePhase::Blocked => "Blocked",
        WorkspacePhase::Pending => "Pending",
    }
}

fn phase_message(phase: WorkspacePhase, workspace: &Workspace) -> String {
    match phase {
        WorkspacePhase::Ready => "the workspace pod is ready".into(),
        WorkspacePhase::Provisioning => "waiting for the workspace pod to be ready".into(),
        WorkspacePhase::Suspended => {
            "suspended: the workload is stopped, volumes and keys are kept".into()
        }
        WorkspacePhase::Idle => "nobody has had a session for the profile's idle time: the workload is stopped until the next `hygie connect`, volumes and keys are kept".into(),
        WorkspacePhase::Expired => format!(
            "expired at {}: the workload is stopped, volumes and keys are kept",
            workspace
                .spec
                .expires_at
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default()
        ),
        WorkspacePhase::Pending => "waiting for what the workspace needs".into(),
        WorkspacePhase::Blocked => String::new(),
    }
}

/// The datasets the workspace has mounted: those of its last status, and those it mounts now
/// as they are classified now. Nothing is ever taken out.
fn lineage(workspace: &Workspace, context: &Context) -> Vec<Lineage> {
    let namespace = workspace.namespace().unwrap_or_default();
    let mut lineage = workspace
        .status
        .as_ref()
        .map(|s| s.lineage.clone())
        .unwrap_or_default();
    for mount in &workspace.spec.datasets {
        let Some(dataset) = context
            .datasets
            .get(&ObjectRef::new(&mount.name).within(&namespace))
        else {
            continue;
        };
        let entry = Lineage {
            name: mount.name.clone(),
            classification: dataset.spec.classification,
            access: dataset.spec.access,
        };
        match lineage.iter_mut().find(|l| l.name == mount.name) {
            Some(known) => *known = entry,
            None => lineage.push(entry),
        }
    }
    lineage
}

/// How members may reach the workspace, as its status records it: `Direct` only if every
/// dataset it mounts is in its lineage (a dataset not seen yet counts as a screen) and every
/// dataset of its lineage allows it.
fn access(workspace: &Workspace, lineage: &[Lineage]) -> Access {
    let seen = workspace
        .spec
        .datasets
        .iter()
        .all(|m| lineage.iter().any(|l| l.name == m.name));
    let accesses = lineage.iter().map(|l| l.access);
    match seen {
        true => Access::of_all(accesses),
        false => Access::Screen,
    }
}

/// Writes the status if it changed, with an Event when the phase changes. Returns whether it
/// wrote.
async fn write_status(
    workspace: &Workspace,
    context: &Context,
    api: &Api<Workspace>,
    phase: WorkspacePhase,
    observed: Vec<Observed>,
    now: jiff::Timestamp,
) -> Result<bool> {
    let current = workspace.status.as_ref();
    let generation = workspace.metadata.generation;
    let old_conditions = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut observed = observed;
    let stalled = observed.iter().any(|o| o.type_ == STALLED);
    match phase {
        _ if stalled => {}
        WorkspacePhase::Pending | WorkspacePhase::Provisioning => observed.push(Observed::new(
            RECONCILING,
            true,
            phase_reason(phase),
            phase_message(phase, workspace),
        )),
        WorkspacePhase::Blocked => {
            let why = observed
                .iter()
                .find(|o| o.type_ == COMPLIANT)
                .map(|o| o.message.clone())
                .unwrap_or_default();
            observed.push(Observed::new(STALLED, true, RULES_VIOLATED, why));
        }
        WorkspacePhase::Ready
        | WorkspacePhase::Suspended
        | WorkspacePhase::Idle
        | WorkspacePhase::Expired => {}
    }
    let lineage = lineage(workspace, context);
    let new = WorkspaceStatus {
        observed_generation: generation,
        phase: Some(phase),
        endpoint: (phase != WorkspacePhase::Blocked).then(|| {
            format!(
                "{}.{}.svc",
                workspace.name_any(),
                workspace.namespace().unwrap_or_default()
            )
        }),
        conditions: status::merge(old_conditions, observed, generation, now),
        access: Some(access(workspace, &lineage)),
        lineage,
    };
    let key = format!(
        "{}/{}",
        workspace.namespace().unwrap_or_default(),
        workspace.name_any()
    );
    context
        .metrics
        .phase("Workspace", &key, Some(&format!("{phase:?}")));
    let previous = current.and_then(|s| s.phase);
    let wrote = status::write(api, workspace, current, new).await?;
    let milestone = !matches!(
        phase,
        WorkspacePhase::Blocked | WorkspacePhase::Pending | WorkspacePhase::Provisioning
    ) || previous.is_some_and(|p| {
        matches!(
            p,
            WorkspacePhase::Suspended | WorkspacePhase::Idle | WorkspacePhase::Expired
        )
    });
    if wrote && previous != Some(phase) && milestone {
        let type_ = if matches!(phase, WorkspacePhase::Expired) {
            warning()
        } else {
            normal()
        };
        publish(
            context,
            workspace,
            type_,
            phase_reason(phase),
            phase_message(phase, workspace),
        )
        .await;
    }
    Ok(wrote)
}

/// Deletion: the workload first, then the volumes, then the keys, each step waiting for the
/// previous one to be gone.
/// What the removal of `kinds` is about to destroy, as proof: each claim with its
/// PersistentVolume and StorageClass (`VolumeDeleted`), each key Secret with the claim it opened,
/// its UID and its resourceVersion (`KeyDestroyed`). Only what is not already being deleted.
async fn deletion_evidence(
    context: &Context,
    owner: Owner<'_>,
    owner_uid: &str,
    namespace: &str,
    kinds: &[&str],
) -> Result<Vec<(&'static str, Evidence)>> {
    let cache = &context.workspace_children.cache;
    let mut proofs = Vec::new();
    let going = |kind: &str| {
        cache
            .of_owner(kind, namespace, &owner.selector(), owner_uid)
            .into_iter()
            .filter(|m| m.deletion_timestamp.is_none())
    };
    if kinds.contains(&"PersistentVolumeClaim") {
        let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(context.client.clone(), namespace);
        for meta in going("PersistentVolumeClaim") {
            let name = meta.name.unwrap_or_default();
            let spec = claims.get_opt(&name).await?.and_then(|c| c.spec);
            proofs.push((
                "VolumeDeleted",
                Evidence::from([
                    ("claim", name),
                    (
                        "persistentVolume",
                        spec.as_ref()
                            .and_then(|s| s.volume_name.clone())
                            .unwrap_or_default(),
                    ),
                    (
                        "storageClass",
                        spec.and_then(|s| s.storage_class_name).unwrap_or_default(),
                    ),
                ]),
            ));
        }
    }
    if kinds.contains(&"Secret") {
        for meta in going("Secret") {
            let claim = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::build::labels::CLAIM))
                .cloned();
            let mut evidence = Evidence::from([("claim", claim.unwrap_or_default())]);
            key_evidence(&mut evidence, [&meta]);
            proofs.push(("KeyDestroyed", evidence));
        }
    }
    Ok(proofs)
}

/// What a workspace's deletion record says: a key or a claim, from its evidence.
fn tell(reason: &str, evidence: &BTreeMap<String, String>) -> String {
    let field = |name: &str| evidence.get(name).map_or("", String::as_str);
    match reason {
        "KeyDestroyed" => format!(
            "key Secret {} of claim {} deleted",
            field("keySecret"),
            field("claim")
        ),
        _ => format!(
            "claim {} deleted, with PersistentVolume {}",
            field("claim"),
            field("persistentVolume")
        ),
    }
}

async fn cleanup(workspace: &Workspace, context: &Context) -> Result<Action> {
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let owner = Owner::Workspace(&name);
    for kinds in REMOVAL_STAGES {
        let proofs = deletion_evidence(context, owner, &uid(workspace), &namespace, kinds).await?;
        // Nothing irreversible before its record is in the audit sink.
        for (reason, evidence) in &proofs {
            let note = tell(reason, &named(evidence));
            intend(context, workspace, reason, note, evidence).await?;
            fail::fail_point!("workspace-deletion/intended");
        }
        let remaining = context
            .workspace_children
            .remove_kinds(owner, &uid(workspace), &namespace, kinds)
            .await?;
        for (reason, evidence) in proofs {
            fail::fail_point!("workspace-deletion/deleted");
            conclude(context, workspace, reason, evidence, |e| tell(reason, e)).await?;
        }
        if !remaining.is_empty() {
            return Err(Error::StillDeleting(remaining.join(", ")));
        }
    }
    // A step a crash interrupted between its deletion and its record is recorded now.
    conclude_interrupted(context, workspace, tell).await?;
    context
        .metrics
        .phase("Workspace", &format!("{namespace}/{name}"), None);
    publish(
        context,
        workspace,
        normal(),
        "Deleted",
        "workload, volumes and keys are deleted",
    )
    .await;
    Ok(Action::await_change())
}
