//! Logs, metrics and health endpoints of the operator.
//!
//! Logs are JSON lines by default (one per event, with the reconciled object's key from the
//! span); metrics are OpenMetrics on /metrics; /healthz says the process is alive and /readyz
//! that it is serving (as leader or as a standby ready to take over).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// How logs are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Json,
    Text,
}

/// Sets up `tracing`, filtered by RUST_LOG (default: info).
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub kind: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificationLabels {
    pub profile: String,
    pub certification: String,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<KindLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    objects: Family<PhaseLabels, Gauge>,
    certification_expiry: Family<CertificationLabels, Gauge>,
    phases: Mutex<HashMap<(String, String), String>>,
    pub ready: AtomicBool,
    pub audit: AuditMetrics,
}

/// What became of the audit records the sink queued: written to the store, kept in the spool
/// while it does not take them, or dropped from the sink (never from the log).
#[derive(Clone, Default)]
pub struct AuditMetrics {
    pub written: Counter,
    pub dropped: Counter,
    pub failed_writes: Counter,
    pub spooled_batches: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hygie");
        let reconciliations = Family::<KindLabels, Counter>::default();
        registry.register(
            "reconciliations",
            "Reconciliations run, by kind",
            reconciliations.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by kind and error category",
            errors.clone(),
        );
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            duration.clone(),
        );
        let objects = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "objects",
            "Hygie objects by kind and phase",
            objects.clone(),
        );
        let certification_expiry = Family::<CertificationLabels, Gauge>::default();
        registry.register(
            "certification_expiry_timestamp_seconds",
            "When a hosting profile's certification ends (Unix time); subtract time() for the seconds left",
            certification_expiry.clone(),
        );
        let audit = AuditMetrics::default();
        registry.register(
            "audit_records_written",
            "Audit records the store took",
            audit.written.clone(),
        );
        registry.register(
            "audit_records_dropped",
            "Audit records dropped from the sink (a full queue or spool): they are only in the log",
            audit.dropped.clone(),
        );
        registry.register(
            "audit_write_failures",
            "Writes of a batch of audit records the store did not take",
            audit.failed_writes.clone(),
        );
        registry.register(
            "audit_spooled_batches",
            "Batches of audit records kept in the spool until the store takes them",
            audit.spooled_batches.clone(),
        );
        Metrics {
            audit,
            registry,
            reconciliations,
            errors,
            duration,
            objects,
            certification_expiry,
            phases: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// Counts one reconciliation of `kind` that took `elapsed`.
    pub fn reconciled(&self, kind: &str, elapsed: Duration) {
        let labels = KindLabels {
            kind: kind.to_owned(),
        };
        self.reconciliations.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn failed(&self, kind: &str, category: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.into(),
                category: category.into(),
            })
            .inc();
    }

    /// Records the phase of one object (None when it is gone) and updates the counts.
    pub fn phase(&self, kind: &str, key: &str, phase: Option<&str>) {
        let mut phases = self.phases.lock().expect("not poisoned");
        let slot = (kind.to_owned(), key.to_owned());
        let previous = match phase {
            Some(phase) => phases.insert(slot, phase.to_owned()),
            None => phases.remove(&slot),
        };
        if previous.as_deref() == phase {
            return;
        }
        let gauge = |phase: &str| {
            self.objects
                .get_or_create(&PhaseLabels {
                    kind: kind.into(),
                    phase: phase.into(),
                })
                .clone()
        };
        if let Some(previous) = previous {
            gauge(&previous).dec();
        }
        if let Some(phase) = phase {
            gauge(phase).inc();
        }
    }

    pub fn certification_expiry(&self, profile: &str, certification: &str, end: jiff::Timestamp) {
        let labels = CertificationLabels {
            profile: profile.into(),
            certification: certification.into(),
        };
        self.certification_expiry
            .get_or_create(&labels)
            .set(end.as_second());
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Serves /metrics, /healthz and /readyz until the process ends.
pub async fn serve(address: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(address).await?;
    axum::serve(listener, app).await
}

async fn metrics_page(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

async fn readiness(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    match metrics.ready.load(Ordering::Relaxed) {
        true => (StatusCode::OK, "ready"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_counted_once_per_object() {
        let metrics = Metrics::default();
        metrics.phase("Workspace", "a/b", Some("Ready"));
        metrics.phase("Workspace", "a/b", Some("Ready"));
        metrics.phase("Workspace", "a/c", Some("Ready"));
        metrics.phase("Workspace", "a/b", Some("Suspended"));
        let text = metrics.encode();
        assert!(
            text.contains(r#"hygie_objects{kind="Workspace",phase="Ready"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hygie_objects{kind="Workspace",phase="Suspended"} 1"#),
            "{text}"
        );
        metrics.phase("Workspace", "a/b", None);
        assert!(
            metrics
                .encode()
                .contains(r#"hygie_objects{kind="Workspace",phase="Suspended"} 0"#)
        );
    }

    #[test]
    fn reconciliations_errors_and_durations_are_exposed() {
        let metrics = Metrics::default();
        metrics.reconciled("Dataset", Duration::from_millis(30));
        metrics.failed("Dataset", "api");
        metrics.certification_expiry("ovh-gra", "HDS", "2027-04-01T00:00:00Z".parse().unwrap());
        let text = metrics.encode();
        assert!(
            text.contains(r#"hygie_reconciliations_total{kind="Dataset"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hygie_reconcile_errors_total{kind="Dataset",category="api"} 1"#),
            "{text}"
        );
        // tests/bench/bench.py reads the p99 from these lines.
        assert!(
            text.contains(r#"hygie_reconcile_duration_seconds_bucket{le="0.05",kind="Dataset"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"hygie_certification_expiry_timestamp_seconds{profile="ovh-gra",certification="HDS"} 1806537600"#), "{text}");
    }
}
