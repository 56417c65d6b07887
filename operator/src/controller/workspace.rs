//! The Workspace controller: rules, then its children, then its status; at `expiresAt` or on
//! `suspended: true` its workload stops and its volumes and keys stay; on deletion the
//! workload goes first, then the volumes, then the keys.

use std::{sync::Arc, time::Instant};

use kube::{
    Api, ResourceExt,
    runtime::reflector::ObjectRef,
    runtime::{controller::Action, finalizer},
};

use super::{
    Context, WORKSPACE_FINALIZER,
    apply::REMOVAL_STAGES,
    apply::owned_by,
    error::{Error, Result},
    events::{normal, publish, warning},
    requeue_at,
    status::{self, Observed},
};
use crate::{
    api::{
        Dataset, Workspace,
        conditions::*,
        hosting_profile::EncryptionType,
        workspace::{WorkspacePhase, WorkspaceStatus},
    },
    build::{is_expired, labels::Owner, workspace_children},
    policy::{Inventory, Violation, check_dataset, check_profile, check_workspace, summary},
};

pub async fn reconcile(workspace: Arc<Workspace>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let api: Api<Workspace> = Api::namespaced(
        context.client.clone(),
        &workspace.namespace().unwrap_or_default(),
    );
    let result = finalizer(&api, WORKSPACE_FINALIZER, workspace, |event| async {
        match event {
            finalizer::Event::Apply(workspace) => apply(&workspace, &context, &api).await,
            finalizer::Event::Cleanup(workspace) => cleanup(&workspace, &context).await,
        }
    })
    .await
    .map_err(Error::from);
    context.metrics.reconciled("Workspace", started.elapsed());
    result
}

/// The profile and datasets this workspace refers to, from the watched stores.
fn inventory(workspace: &Workspace, context: &Context) -> Inventory {
    let mut inventory = Inventory::default();
    let namespace = workspace.namespace().unwrap_or_default();
    if let Some(profile) = context
        .profiles
        .get(&ObjectRef::new(&workspace.spec.hosting_profile))
    {
        inventory.add_profile((*profile).clone());
    }
    for mount in &workspace.spec.datasets {
        if let Some(dataset) = context
            .datasets
            .get(&ObjectRef::new(&mount.name).within(&namespace))
        {
            inventory.add_dataset((*dataset).clone());
        }
    }
    inventory
}

async fn apply(workspace: &Workspace, context: &Context, api: &Api<Workspace>) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let inventory = inventory(workspace, context);

    let mut violations = check_workspace(workspace, &inventory, now);
    let profile = inventory.profile(&workspace.spec.hosting_profile);
    if let Some(profile) = profile {
        violations.extend(check_profile(profile, now));
    }
    for dataset in inventory.datasets.values() {
        violations.extend(check_dataset(dataset, &inventory, now));
    }
    let (Some(profile), true) = (profile, violations.is_empty()) else {
        return blocked(workspace, context, api, &violations, now).await;
    };

    let datasets: Vec<&Dataset> = workspace
        .spec
        .datasets
        .iter()
        .filter_map(|m| inventory.dataset(&namespace, &m.name))
        .collect();
    let children = owned_by(
        workspace_children(workspace, profile, &datasets, now),
        workspace,
    );
    let key = profile.spec.storage.encryption.passphrase_key.as_deref();
    let changes = match context.workspace_children.apply_all(&children, key).await {
        Err(Error::Waiting(what)) => {
            let message = format!("waiting for {what}");
            let observed = vec![
                Observed::new(READY, false, "Waiting", message.clone()),
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
            return Err(Error::Waiting(what));
        }
        other => other?,
    };
    let pruned = context
        .workspace_children
        .prune(Owner::Workspace(&name), &namespace, &children)
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
    } else if workspace.spec.suspended {
        WorkspacePhase::Suspended
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
        Observed::new(
            DATASETS_BOUND,
            true,
            "CopiesProvisioned",
            format!("{} dataset copies", datasets.len()),
        ),
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
    let expiry = workspace
        .spec
        .expires_at
        .as_ref()
        .map(|t| t.0)
        .filter(|t| *t > now);
    Ok(requeue_at(expiry, now, context.resync))
}

/// Rules fail: say so, change nothing that exists, and wait for a change.
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
    let observed = vec![
        Observed::new(
            READY,
            false,
            "Blocked",
            "the workspace breaks a rule; nothing was created or changed",
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
    ) || previous
        .is_some_and(|p| matches!(p, WorkspacePhase::Suspended | WorkspacePhase::Expired));
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
async fn cleanup(workspace: &Workspace, context: &Context) -> Result<Action> {
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let owner = Owner::Workspace(&name);
    for kinds in REMOVAL_STAGES {
        let remaining = context
            .workspace_children
            .remove_kinds(owner, &namespace, kinds)
            .await?;
        if !remaining.is_empty() {
            return Err(Error::StillDeleting(remaining.join(", ")));
        }
    }
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
