//! Kubernetes Events, the audit trail `kubectl describe` shows: every grant, change,
//! suspension, expiry, refusal and shred. Notes never carry key material.

use kube::{
    Resource,
    runtime::events::{Event, EventType},
};
use tracing::warn;

use super::{Context, status::truncate};

/// Publishes an Event about `object`. A failure to record it is logged, not retried: the
/// status conditions carry the same facts.
pub async fn publish<K>(
    context: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: impl Into<String>,
) where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(&note.into(), 1024)),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = context
        .recorder
        .publish(&event, &object.object_ref(&()))
        .await
    {
        warn!(error = %e, reason, "could not record an Event");
    }
}

pub fn normal() -> EventType {
    EventType::Normal
}

pub fn warning() -> EventType {
    EventType::Warning
}
