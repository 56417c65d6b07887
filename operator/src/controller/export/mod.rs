//! The ExportRequest controller: the airlock's data path. It stages the files, lets the
//! reviewers see them, counts their reviews, releases what two of them approved, and checks
//! that what arrived is what they saw. Once a request ends, what it staged is shredded: its key
//! first, then its volume. Its record stays in the status, the Events and the audit log.

mod machine;

use std::{sync::Arc, time::Duration, time::Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, ResourceExt,
    runtime::{controller::Action, finalizer, reflector::ObjectRef},
};

use super::{
    Context, EXPORT_FINALIZER,
    apply::owned_by,
    children_listed,
    error::{Category, Error, Result},
    events::{Evidence, conclude, conclude_interrupted, intend, normal, publish, warning},
    jobs,
    keys::key_evidence,
    requeue_at, settle,
    status::{self, Observed, RECONCILING, STALLED},
    uid,
    workspace::{inventory, violations},
};
use crate::{
    api::{
        ExportRequest, ExportReview, HostingProfile,
        conditions::READY,
        export::{
            DEFAULT_REVIEW_DEADLINE_SECONDS, ExportPhase, ExportRequestStatus,
            MAX_REVIEW_DEADLINE_SECONDS, staged_digest,
        },
    },
    build::{
        ExportInputs, ExportNames, ExportStage, export_children,
        labels::{CLAIM, Owner},
    },
    gateway::credential::desktop_password,
    policy::{
        export::{Verdict, check_request, count, in_submission_order, panels},
        summary,
    },
};
pub use machine::JobOutcome;
use machine::{Facts, Transition, is_final, next};

pub async fn reconcile(request: Arc<ExportRequest>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    children_listed(&context.export_children).await?;
    context.stores_listed().await?;
    let api: Api<ExportRequest> = Api::namespaced(
        context.client.clone(),
        &request.namespace().unwrap_or_default(),
    );
    let result = finalizer(&api, EXPORT_FINALIZER, request.clone(), |event| async {
        match event {
            finalizer::Event::Apply(request) => apply(&request, &context).await,
            finalizer::Event::Cleanup(request) => cancel(&request, &context, &api).await,
        }
    })
    .await
    .map_err(Error::from);
    settle(
        &*request,
        &context,
        &result,
        stall(&request, &context, &api, &result),
    )
    .await;
    context
        .metrics
        .reconciled("ExportRequest", started.elapsed());
    result
}

/// A request deleted before its end is Cancelled: recorded as such, then what it staged is
/// shredded, key first, before the object goes.
async fn cancel(
    request: &ExportRequest,
    context: &Context,
    api: &Api<ExportRequest>,
) -> Result<Action> {
    let current = request.status.clone().unwrap_or_default();
    let phase = current.phase.unwrap_or(ExportPhase::Submitted);
    if !is_final(phase) {
        let message = match phase {
            ExportPhase::Releasing => {
                "deleted while releasing: objects may already be at the destination, unverified"
            }
            _ => "deleted before release: nothing left the workspace",
        };
        let status = with_conditions(
            request,
            &current,
            ExportPhase::Cancelled,
            "Cancelled",
            message.into(),
            jiff::Timestamp::now(),
        );
        write(request, context, api, status).await?;
        publish(context, request, warning(), "Cancelled", message).await;
    }
    match shred(request, context).await? {
        true => Ok(Action::await_change()),
        false => Err(Error::Waiting(format!(
            "the shredding of what ExportRequest {} staged",
            request.name_any()
        ))),
    }
}

async fn apply(request: &ExportRequest, context: &Context) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let name = request.name_any();
    let namespace = request.namespace().unwrap_or_default();
    let api: Api<ExportRequest> = Api::namespaced(context.client.clone(), &namespace);
    let current = request.status.clone().unwrap_or_default();
    let phase = current.phase.unwrap_or(ExportPhase::Submitted);
    if is_final(phase) {
        return Ok(match shred(request, context).await? {
            true => Action::await_change(),
            false => Action::requeue(Duration::from_secs(2)),
        });
    }

    let workspace = context
        .workspaces
        .get(&ObjectRef::new(&request.spec.workspace).within(&namespace));
    let inventory = workspace
        .as_deref()
        .map(|w| inventory(w, context))
        .unwrap_or_default();
    let workspaces: Vec<_> = workspace.iter().map(|w| (**w).clone()).collect();
    let mut refused = check_request(request, &inventory, &workspaces);
    if let Some(workspace) = &workspace {
        refused.extend(violations(workspace, &inventory, now));
    }
    let profile = workspace
        .as_deref()
        .and_then(|w| inventory.profile(&w.spec.hosting_profile));
    let (Some(workspace), Some(profile), true) = (&workspace, profile, refused.is_empty()) else {
        let facts = Facts {
            refused: Some(summary(&refused)),
            ..Facts::default()
        };
        return advance(request, context, &api, &current, next(phase, &facts), now).await;
    };

    let panels = panels(workspace, &inventory);
    let mut reviews: Vec<ExportReview> = context
        .export_reviews
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(namespace.as_str()))
        .map(|r| (**r).clone())
        .collect();
    in_submission_order(&mut reviews);
    let (verdict, records) = count(request, workspace, &panels, &reviews);
    let reviewers: Vec<_> = panels.iter().flat_map(|p| p.reviewers.clone()).collect();
    let destination = profile.spec.exports.as_ref().and_then(|e| {
        e.destinations
            .iter()
            .find(|d| d.name == request.spec.destination)
    });
    let desktop_password = context
        .desktop_key
        .as_ref()
        .map(|key| desktop_password(key, &uid(request)));
    let inputs = ExportInputs {
        request,
        workspace,
        profile,
        reviewers: &reviewers,
        destination,
        staged: &current.staged_files,
        desktop_password: desktop_password.as_deref(),
    };
    let stage = match phase {
        ExportPhase::Submitted | ExportPhase::Staging => ExportStage::Staging,
        ExportPhase::InReview => ExportStage::Review,
        _ => ExportStage::Release,
    };
    let released_to = destination
        .map(|d| {
            let prefix = crate::build::release_key_prefix(&d.s3.prefix, &namespace, &name);
            format!("s3://{}/{prefix}", d.s3.bucket)
        })
        .unwrap_or_default();
    if stage == ExportStage::Release && destination.is_some() {
        // Files that leave do not come back: the release is recorded before it starts.
        let evidence = Evidence::from([
            ("destination", released_to.clone()),
            (
                "stagedDigest",
                current.staged_digest.clone().unwrap_or_default(),
            ),
            ("files", current.staged_files.len().to_string()),
        ]);
        let note = format!("the reviewed files are to be released to {released_to}");
        intend(context, request, "Released", note, &evidence).await?;
        fail::fail_point!("release/intended");
    }
    let children = owned_by(export_children(&inputs, stage), request, |_| false);
    let key = profile.spec.storage.encryption.passphrase_key.as_deref();
    let owner = Owner::ExportRequest(&name);
    let applied = match context.export_children.apply_all(&children, key).await {
        Ok(_) => {
            context
                .export_children
                .prune(owner, &uid(request), &namespace, &children)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(error) = applied {
        // A name another object holds, a staged key gone, an object the API server finds
        // invalid: no retry can change that, so the request fails and says why.
        if !matches!(
            error.category(),
            Category::NotOurs | Category::KeyLost | Category::Invalid
        ) {
            return Err(error);
        }
        let failed = Transition::failed("CannotStage", error.to_string());
        return advance(request, context, &api, &current, Some(failed), now).await;
    }

    let names = ExportNames::of(&name);
    let client = &context.client;
    let deadline = review_deadline(request, profile);
    let facts = Facts {
        refused: None,
        expired: deadline.filter(|d| *d <= now).map(|d| {
            format!("not approved by its review deadline, {d}: what it staged is shredded")
        }),
        files: &request.spec.files,
        stage: match phase {
            ExportPhase::Staging => Some(jobs::outcome(client, &namespace, &names.stage).await?),
            _ => None,
        },
        staged: &current.staged_files,
        verdict: (phase == ExportPhase::InReview).then_some(verdict.clone()),
        release: match phase {
            ExportPhase::Releasing => {
                Some(jobs::outcome(client, &namespace, &names.release).await?)
            }
            _ => None,
        },
        released_to,
    };
    let current = ExportRequestStatus {
        reviews: records,
        ..current.clone()
    };
    let waiting = match (&verdict, phase) {
        (Verdict::Pending { missing }, ExportPhase::InReview) => Some(missing.join("; ")),
        _ => None,
    };
    let transition = next(phase, &facts);
    if transition.is_none()
        && let Some(missing) = waiting
    {
        let status = with_conditions(request, &current, phase, "InReview", missing, now);
        write(request, context, &api, status).await?;
        return Ok(requeue_at(deadline, now, context.resync));
    }
    advance(request, context, &api, &current, transition, now).await
}

/// When `request` must be approved by: its submission plus the profile's review deadline, never
/// more than `MAX_REVIEW_DEADLINE_SECONDS` (a profile admitted before that bound gets the bound).
fn review_deadline(request: &ExportRequest, profile: &HostingProfile) -> Option<jiff::Timestamp> {
    let seconds = profile
        .spec
        .exports
        .as_ref()
        .and_then(|e| e.review_deadline_seconds)
        .unwrap_or(DEFAULT_REVIEW_DEADLINE_SECONDS)
        .min(MAX_REVIEW_DEADLINE_SECONDS);
    let submitted = request.metadata.creation_timestamp.as_ref()?.0;
    Some(
        submitted
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .unwrap_or(submitted),
    )
}

/// Writes the status of a request that moved (with an Event) or stayed.
async fn advance(
    request: &ExportRequest,
    context: &Context,
    api: &Api<ExportRequest>,
    current: &ExportRequestStatus,
    transition: Option<Transition>,
    now: jiff::Timestamp,
) -> Result<Action> {
    let Some(transition) = transition else {
        let phase = current.phase.unwrap_or(ExportPhase::Submitted);
        let message = condition_message(current).unwrap_or_default();
        let status = with_conditions(request, current, phase, reason_of(phase), message, now);
        write(request, context, api, status).await?;
        return Ok(Action::requeue(context.resync));
    };
    let opens_review = transition.phase == ExportPhase::InReview;
    let moved = ExportRequestStatus {
        staged_digest: transition
            .staged
            .as_deref()
            .map(staged_digest)
            .or_else(|| current.staged_digest.clone()),
        // Whole seconds, as creation times are: a review made in the same second counts.
        review_opened_at: match opens_review {
            true => jiff::Timestamp::from_second(now.as_second()).ok().map(Time),
            false => current.review_opened_at.clone(),
        },
        staged_files: transition
            .staged
            .clone()
            .unwrap_or_else(|| current.staged_files.clone()),
        released_objects: transition
            .released
            .clone()
            .unwrap_or_else(|| current.released_objects.clone()),
        ..current.clone()
    };
    let status = with_conditions(
        request,
        &moved,
        transition.phase,
        transition.reason,
        transition.message.clone(),
        now,
    );
    let released = transition.phase == ExportPhase::Released;
    if released {
        // What left is recorded, once, with its intent's evidence, before the request says so:
        // after a crash between the two, the request is still Releasing and comes here again.
        let evidence =
            Evidence::from([("releasedObjects", moved.released_objects.len().to_string())]);
        let message = transition.message.clone();
        conclude(context, request, "Released", evidence, |_| message).await?;
        fail::fail_point!("release/recorded");
    }
    if write(request, context, api, status).await? && !released {
        let type_ = match transition.phase {
            ExportPhase::Failed | ExportPhase::Rejected => warning(),
            _ => normal(),
        };
        publish(
            context,
            request,
            type_,
            transition.reason,
            transition.message,
        )
        .await;
    }
    // The status write wakes the next step; a short requeue covers a lost event.
    Ok(Action::requeue(Duration::from_secs(5)))
}

/// Deletes what a finished request staged: workloads first, then the keys (after which the
/// staged bytes are unreadable), then the volumes and the rest. Returns whether nothing is
/// left; each call goes one stage further.
async fn shred(request: &ExportRequest, context: &Context) -> Result<bool> {
    let name = request.name_any();
    let namespace = request.namespace().unwrap_or_default();
    let owner = Owner::ExportRequest(&name);
    let stages: [&[&'static str]; 3] = [
        &["Job", "StatefulSet"],
        &["Secret"],
        &[
            "PersistentVolumeClaim",
            "RoleBinding",
            "Role",
            "NetworkPolicy",
            "ServiceAccount",
        ],
    ];
    for kinds in stages {
        let keys = context.export_children.cache.of_owner(
            "Secret",
            &namespace,
            &owner.selector(),
            &uid(request),
        );
        let evidence = staged_key_evidence(&name, &keys);
        let going = keys.iter().any(|k| k.deletion_timestamp.is_none());
        if kinds == ["Secret"] && going {
            let note = "the staged copy's key is to be destroyed";
            intend(context, request, "KeyShredded", note, &evidence).await?;
            fail::fail_point!("export-shred/intended");
        }
        let remaining = context
            .export_children
            .remove_kinds(owner, &uid(request), &namespace, kinds)
            .await?;
        if remaining.is_empty() {
            continue;
        }
        if kinds == ["Secret"] {
            fail::fail_point!("export-shred/key-deleted");
            let note = format!("key destroyed: {}", remaining.join(", "));
            conclude(context, request, "KeyShredded", evidence, |_| note).await?;
        }
        return Ok(false);
    }
    // A key shred a crash interrupted between its deletion and its record is recorded now.
    conclude_interrupted(context, request, |_, evidence| {
        let key = evidence.get("keySecret").map_or("", String::as_str);
        format!("key destroyed: Secret/{key}")
    })
    .await?;
    Ok(true)
}

/// What proves the staged copy unreadable: the staged claim, and the UID and version of the
/// key Secret that opened it, as they were when it was deleted. (The snapshot's key is a copy of
/// the outbox's, which the workspace keeps.)
fn staged_key_evidence(request: &str, keys: &[kube::api::ObjectMeta]) -> Evidence {
    let names = ExportNames::of(request);
    let mut evidence = Evidence::from([("claim", names.staged.clone())]);
    let staged_keys = keys
        .iter()
        .filter(|k| k.annotations.as_ref().and_then(|a| a.get(CLAIM)) == Some(&names.staged));
    key_evidence(&mut evidence, staged_keys);
    evidence
}

/// Says in the status that the request cannot go on (a step waiting for the audit sink): its
/// phase unchanged, Stalled with why.
async fn stall(
    request: &ExportRequest,
    context: &Context,
    api: &Api<ExportRequest>,
    result: &Result<Action>,
) -> Result<bool> {
    let Err(error) = result else {
        return Ok(false);
    };
    let current = request.status.clone().unwrap_or_default();
    let phase = current.phase.unwrap_or(ExportPhase::Submitted);
    let message = error.to_string();
    let observed = vec![
        Observed::new(READY, false, STALLED, message.clone()),
        Observed::new(
            RECONCILING,
            !is_final(phase),
            reason_of(phase),
            message.clone(),
        ),
        Observed::new(STALLED, true, error.reason(), message),
    ];
    let generation = request.metadata.generation;
    let status = ExportRequestStatus {
        conditions: status::merge(
            &current.conditions,
            observed,
            generation,
            jiff::Timestamp::now(),
        ),
        ..current
    };
    write(request, context, api, status).await
}

/// The status in `phase`, with its conditions: Ready once released, Reconciling while under
/// way, Stalled when it failed.
fn with_conditions(
    request: &ExportRequest,
    current: &ExportRequestStatus,
    phase: ExportPhase,
    reason: &'static str,
    message: String,
    now: jiff::Timestamp,
) -> ExportRequestStatus {
    let done = is_final(phase);
    let mut observed = vec![Observed::new(
        READY,
        phase == ExportPhase::Released,
        reason,
        message.clone(),
    )];
    if !done {
        observed.push(Observed::new(RECONCILING, true, reason, message.clone()));
    }
    if phase == ExportPhase::Failed {
        observed.push(Observed::new(STALLED, true, reason, message));
    }
    let generation = request.metadata.generation;
    ExportRequestStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions: status::merge(&current.conditions, observed, generation, now),
        ..current.clone()
    }
}

fn reason_of(phase: ExportPhase) -> &'static str {
    match phase {
        ExportPhase::Submitted => "Submitted",
        ExportPhase::Staging => "Staging",
        ExportPhase::InReview => "InReview",
        ExportPhase::Approved => "Approved",
        ExportPhase::Rejected => "Rejected",
        ExportPhase::Releasing => "Releasing",
        ExportPhase::Released => "Released",
        ExportPhase::Failed => "Failed",
        ExportPhase::Cancelled => "Cancelled",
        ExportPhase::Expired => "Expired",
    }
}

/// The Ready condition's message as last written, kept while nothing moves.
fn condition_message(current: &ExportRequestStatus) -> Option<String> {
    current
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| c.message.clone())
}

async fn write(
    request: &ExportRequest,
    context: &Context,
    api: &Api<ExportRequest>,
    status: ExportRequestStatus,
) -> Result<bool> {
    let key = format!(
        "{}/{}",
        request.namespace().unwrap_or_default(),
        request.name_any()
    );
    context.metrics.phase(
        "ExportRequest",
        &key,
        status.phase.map(|p| format!("{p:?}")).as_deref(),
    );
    status::write(api, request, request.status.as_ref(), status).await
}
