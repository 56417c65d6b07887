//! Kubernetes Events, the audit trail `kubectl describe` shows: every grant, change,
//! suspension, expiry, refusal and shred. Notes never carry key material.
//!
//! Events expire within hours, so each decision is also written as one audit record, a JSON
//! log line with the fixed message `hygie-audit` and the target `hygie::audit`, whose fields
//! are stable: `audit_object` (`Kind/namespace/name`), `audit_uid`, `audit_action` (the
//! Event's reason), `audit_outcome` (`Normal` or `Warning`), `audit_reasons` (the note) and,
//! for the decisions an auditor must be able to prove (a key destroyed, a volume deleted),
//! `audit_evidence`: a JSON object naming what exactly went (`Evidence`), and `audit_step`
//! (`Intended` for the intent of an irreversible step, written before it, `Done` otherwise).
//! When the chart configures it, the audit sink also writes them to a bucket with Object Lock,
//! where they outlive the cluster (`crate::sink`).

use std::collections::BTreeMap;

use kube::{
    Resource,
    runtime::events::{Event, EventType},
};
use tracing::{info, warn};

use super::{Context, Error, status::truncate};
use crate::sink::{Record, Step};

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
    let record = record_of(object, type_, reason, note.into(), evidence, Step::Done);
    if let Some(sink) = &context.audit_sink {
        sink.record(record.clone());
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(record.reasons),
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

/// Writes the intent of an irreversible step about `object` (`reason`, with what it will
/// destroy or release) to the log and, before anything else happens, to the audit sink: the
/// step may be taken once this returns. While the sink cannot take it, the step waits
/// ([`Error::AuditSink`]) and the object says so in its `Stalled` condition. Without a sink, the
/// log is the record.
pub async fn intend<K>(
    context: &Context,
    object: &K,
    reason: &str,
    note: impl Into<String>,
    evidence: &Evidence,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()>,
{
    let record = record_of(
        object,
        EventType::Normal,
        reason,
        note.into(),
        evidence.clone(),
        Step::Intended,
    );
    let Some(sink) = &context.audit_sink else {
        return Ok(());
    };
    sink.write_ahead(&record)
        .await
        .map_err(|reason| Error::AuditSink {
            sink: sink.describe(),
            step: format!("{} of {}", record.action, record.object),
            reason,
        })
}

/// The audit record of a decision, also written to the log.
fn record_of<K>(
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
    evidence: Evidence,
    step: Step,
) -> Record
where
    K: Resource<DynamicType = ()>,
{
    let note = truncate(&note, 1024);
    let evidence_json = match evidence.is_empty() {
        true => String::new(),
        false => serde_json::to_string(&evidence).expect("strings serialize"),
    };
    let meta = object.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    let key = match &meta.namespace {
        Some(namespace) => format!("{}/{namespace}/{name}", K::kind(&())),
        None => format!("{}/{name}", K::kind(&())),
    };
    info!(
        target: "hygie::audit",
        audit_object = %key,
        audit_uid = meta.uid.as_deref().unwrap_or_default(),
        audit_action = reason,
        audit_outcome = ?type_,
        audit_reasons = %note,
        audit_evidence = %evidence_json,
        audit_step = ?step,
        "hygie-audit"
    );
    Record {
        time: jiff::Timestamp::now().to_string(),
        object: key,
        uid: meta.uid.clone().unwrap_or_default(),
        action: reason.to_owned(),
        outcome: format!("{type_:?}"),
        reasons: note,
        evidence: evidence
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        recorder: super::hostname(),
        step,
    }
}

pub fn normal() -> EventType {
    EventType::Normal
}

pub fn warning() -> EventType {
    EventType::Warning
}
