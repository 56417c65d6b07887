//! Kubernetes Events, the audit trail `kubectl describe` shows: every grant, change,
//! suspension, expiry, refusal and shred. Notes never carry key material.
//!
//! Events expire within hours, so each decision is also written as one audit record, a JSON
//! log line with the fixed message `hygie-audit` and the target `hygie::audit`, whose fields
//! are stable: `audit_object` (`Kind/namespace/name`), `audit_uid`, `audit_action` (the
//! Event's reason), `audit_outcome` (`Normal` or `Warning`), `audit_reasons` (the note) and,
//! for the decisions an auditor must be able to prove (a key destroyed, a volume deleted),
//! `audit_evidence`: a JSON object naming what exactly went (`Evidence`). When the chart configures it, the audit sink also writes them to a bucket with Object Lock,
//! where they outlive the cluster (`crate::sink`).

use std::collections::BTreeMap;

use kube::{
    Resource,
    runtime::events::{Event, EventType},
};
use tracing::{info, warn};

use super::{Context, status::truncate};
use crate::sink::Record;

/// What exactly a decision touched, by name: the proof an auditor keeps.
pub type Evidence = BTreeMap<&'static str, String>;

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
    publish_with_evidence(context, object, type_, reason, note, Evidence::new()).await;
}

/// Like [`publish`], with the audit record naming what exactly went.
pub async fn publish_with_evidence<K>(
    context: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: impl Into<String>,
    evidence: Evidence,
) where
    K: Resource<DynamicType = ()>,
{
    let note = truncate(&note.into(), 1024);
    let evidence_json = match evidence.is_empty() {
        true => String::new(),
        false => serde_json::to_string(&evidence).expect("strings serialize"),
    };
    let reference = object.object_ref(&());
    let meta = object.meta();
    let key = match &meta.namespace {
        Some(namespace) => format!(
            "{}/{namespace}/{}",
            K::kind(&()),
            meta.name.as_deref().unwrap_or_default()
        ),
        None => format!(
            "{}/{}",
            K::kind(&()),
            meta.name.as_deref().unwrap_or_default()
        ),
    };
    info!(
        target: "hygie::audit",
        audit_object = %key,
        audit_uid = meta.uid.as_deref().unwrap_or_default(),
        audit_action = reason,
        audit_outcome = ?type_,
        audit_reasons = %note,
        audit_evidence = %evidence_json,
        "hygie-audit"
    );
    if let Some(sink) = &context.audit_sink {
        sink.record(Record {
            time: jiff::Timestamp::now().to_string(),
            object: key.clone(),
            uid: meta.uid.clone().unwrap_or_default(),
            action: reason.to_owned(),
            outcome: format!("{type_:?}"),
            reasons: note.clone(),
            evidence: evidence
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            recorder: super::hostname(),
        });
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = context.recorder.publish(&event, &reference).await {
        warn!(error = %e, reason, "could not record an Event");
    }
}

pub fn normal() -> EventType {
    EventType::Normal
}

pub fn warning() -> EventType {
    EventType::Warning
}
