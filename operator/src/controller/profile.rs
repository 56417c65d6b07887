//! The HostingProfile controller: whether the profile can host workloads today, which
//! certifications are valid, and when the first one ends. Re-evaluated when that date comes.

use std::{sync::Arc, time::Instant};

use kube::{Api, ResourceExt, runtime::controller::Action};

use super::{
    Context,
    error::Result,
    events::{normal, publish, warning},
    requeue_at, resolver,
    status::{self, Observed, STALLED},
};
use crate::{
    api::{HostingProfile, conditions::*, hosting_profile::HostingProfileStatus},
    policy::{check_profile, summary},
};

pub async fn reconcile(profile: Arc<HostingProfile>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = apply(&profile, &context).await;
    context
        .metrics
        .reconciled("HostingProfile", started.elapsed());
    result
}

async fn apply(profile: &HostingProfile, context: &Context) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let name = profile.name_any();
    let certifications = &profile.spec.certifications;
    for certification in certifications {
        context.metrics.certification_expiry(
            &name,
            certification.kind.as_str(),
            certification.valid_until.end(),
        );
    }
    let expired: Vec<String> = certifications
        .iter()
        .filter(|c| c.valid_until.is_past(now))
        .map(|c| {
            format!(
                "{} `{}` ended on {}",
                c.kind.as_str(),
                c.reference,
                c.valid_until
            )
        })
        .collect();
    let violations = summary(&check_profile(profile, now));
    let ready = violations.is_empty();
    let (reason, message) = match ready {
        true => ("Usable", "the profile can host workloads".to_owned()),
        false => (RULES_VIOLATED, violations),
    };
    let stalled = (!ready).then(|| Observed::new(STALLED, true, RULES_VIOLATED, message.clone()));
    let observed = vec![
        Observed::new(READY, ready, reason, message.clone()),
        Observed::new(
            CERTIFICATIONS_VALID,
            expired.is_empty(),
            if expired.is_empty() {
                "AllValid"
            } else {
                "Expired"
            },
            if expired.is_empty() {
                format!("{} certifications valid", certifications.len())
            } else {
                expired.join("; ")
            },
        ),
    ]
    .into_iter()
    .chain(stalled)
    .collect();
    let current = profile.status.as_ref();
    let generation = profile.metadata.generation;
    let old_conditions = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let new = HostingProfileStatus {
        observed_generation: generation,
        conditions: status::merge(old_conditions, observed, generation, now),
        certifications_expire_at: certifications.iter().map(|c| c.valid_until).min(),
    };
    let was_ready = current
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| c.status == "True");
    let api: Api<HostingProfile> = Api::all(context.client.clone());
    if status::write(&api, profile, current, new).await? && was_ready != Some(ready) {
        match ready {
            true => publish(context, profile, normal(), reason, message).await,
            false => {
                let note = format!("no new health workloads: {message}");
                publish(context, profile, warning(), reason, note).await
            }
        }
    }
    resolver::publish(context).await?;
    context.metrics.phase(
        "HostingProfile",
        &name,
        Some(if ready { "Ready" } else { "NotReady" }),
    );
    let next_end = certifications
        .iter()
        .map(|c| c.valid_until.end())
        .filter(|end| *end > now)
        .min();
    Ok(requeue_at(next_end, now, context.resync))
}
