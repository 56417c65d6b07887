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
use crate::sink::{AuditSink, Record, Step};

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
    let record = record_of(
        object,
        type_,
        reason,
        note.into(),
        named(&evidence),
        Step::Done,
    );
    log(&record);
    if let Some(sink) = &context.audit_sink {
        sink.record(record.clone());
    }
    event(context, object, record).await;
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
        named(evidence),
        Step::Intended,
    );
    log(&record);
    match &context.audit_sink {
        Some(sink) => written(sink, &record, sink.write_now(&record).await),
        None => Ok(()),
    }
}

/// Records the outcome of the irreversible step `reason` about `object`, once it is taken: its
/// evidence is its intent's as the sink holds it (named before anything went), completed by
/// `evidence`, and `tell` says it from that evidence; it is written to the sink alone, once, and waited for, then published as an
/// Event. Until the sink has it, the object waits (its finalizer kept) and says why in
/// `Stalled`; a crash before it is made good by [`conclude_interrupted`].
pub async fn conclude<K>(
    context: &Context,
    object: &K,
    reason: &str,
    evidence: Evidence,
    tell: impl FnOnce(&BTreeMap<String, String>) -> String,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()>,
{
    let mut record = record_of(
        object,
        EventType::Normal,
        reason,
        String::new(),
        named(&evidence),
        Step::Done,
    );
    if let Some(sink) = &context.audit_sink {
        let intent = sink.intent_of(&record).await;
        if let Some(intent) = written(sink, &record, intent)? {
            record.evidence.extend(intent.evidence);
        }
    }
    record.reasons = truncate(&tell(&record.evidence), 1024);
    write_outcome(context, object, record).await
}

/// Concludes every step the audit sink holds an intent for about `object` without its outcome:
/// those a crash interrupted after they were announced (the step itself taken or not: this is
/// called once nothing is left of what they destroy), each said by `tell` from its action and
/// evidence. Without a sink, there is nothing to read
/// back: the log has what it has.
pub async fn conclude_interrupted<K>(
    context: &Context,
    object: &K,
    tell: impl Fn(&str, &BTreeMap<String, String>) -> String,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()>,
{
    let Some(sink) = &context.audit_sink else {
        return Ok(());
    };
    let uid = object.meta().uid.clone().unwrap_or_default();
    let probe = record_of(
        object,
        EventType::Normal,
        "",
        String::new(),
        BTreeMap::new(),
        Step::Done,
    );
    let pending = written(sink, &probe, sink.unconcluded(&uid).await)?;
    for intent in pending {
        let record = Record {
            time: jiff::Timestamp::now().to_string(),
            reasons: truncate(&tell(&intent.action, &intent.evidence), 1024),
            recorder: super::hostname(),
            step: Step::Done,
            ..intent
        };
        write_outcome(context, object, record).await?;
    }
    Ok(())
}

/// Writes `record`, an outcome, to the log and the sink (waiting for it), then as an Event.
async fn write_outcome<K>(context: &Context, object: &K, record: Record) -> Result<(), Error>
where
    K: Resource<DynamicType = ()>,
{
    log(&record);
    if let Some(sink) = &context.audit_sink {
        written(sink, &record, sink.write_now(&record).await)?;
    }
    event(context, object, record).await;
    Ok(())
}

/// `answer`, the sink's to a step's record, as the step's error when it is one.
fn written<T>(sink: &AuditSink, record: &Record, answer: Result<T, String>) -> Result<T, Error> {
    answer.map_err(|reason| Error::AuditSink {
        sink: sink.describe(),
        step: format!("{} of {}", record.action, record.object),
        reason,
    })
}

/// Publishes `record` as an Event about `object`. A failure to record it is logged, not
/// retried: the status conditions and the audit record carry the same facts.
async fn event<K>(context: &Context, object: &K, record: Record)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_: match record.outcome.as_str() {
            "Warning" => EventType::Warning,
            _ => EventType::Normal,
        },
        reason: record.action.clone(),
        note: Some(record.reasons),
        action: record.action,
        secondary: None,
    };
    if let Err(e) = context
        .recorder
        .publish(&event, &object.object_ref(&()))
        .await
    {
        warn!(error = %e, reason = event.reason, "could not record an Event");
    }
}

/// `evidence` with its names as the record keeps them.
pub fn named(evidence: &Evidence) -> BTreeMap<String, String> {
    evidence
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// The audit record of a decision about `object`.
fn record_of<K>(
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
    evidence: BTreeMap<String, String>,
    step: Step,
) -> Record
where
    K: Resource<DynamicType = ()>,
{
    let meta = object.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    let key = match &meta.namespace {
        Some(namespace) => format!("{}/{namespace}/{name}", K::kind(&())),
        None => format!("{}/{name}", K::kind(&())),
    };
    Record {
        time: jiff::Timestamp::now().to_string(),
        object: key,
        uid: meta.uid.clone().unwrap_or_default(),
        action: reason.to_owned(),
        outcome: format!("{type_:?}"),
        reasons: truncate(&note, 1024),
        evidence,
        recorder: super::hostname(),
        step,
    }
}

/// Writes `record` to the log, with the stable fields the module's doc names.
fn log(record: &Record) {
    let evidence = match record.evidence.is_empty() {
        true => String::new(),
        false => serde_json::to_string(&record.evidence).expect("strings serialize"),
    };
    info!(
        target: "hygie::audit",
        audit_object = %record.object,
        audit_uid = record.uid,
        audit_action = record.action,
        audit_outcome = record.outcome,
        audit_reasons = %record.reasons,
        audit_evidence = %evidence,
        audit_step = ?record.step,
        "hygie-audit"
    );
}

pub fn normal() -> EventType {
    EventType::Normal
}

pub fn warning() -> EventType {
    EventType::Warning
}
