//! `hygie run`: the operator, with leader election so that two replicas are safe, metrics and
//! health endpoints, and a graceful stop on SIGTERM that hands the lease over at once.

use std::{net::SocketAddr, sync::Arc, sync::atomic::Ordering, time::Duration};

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{error, info, warn};

use super::exit;
use crate::{
    controller,
    sink::{AuditSink, SinkArgs},
    spool::Spool,
    telemetry::{self, LogFormat, Metrics},
};

/// How the operator runs.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Namespace of the leader-election Lease (default: this pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "hygie-leader")]
    pub lease_name: String,
    /// Seconds a leader holds the Lease without renewing it.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// Seconds between two reconciliations of an object when nothing changes; dates
    /// (expiry, certifications) are also re-evaluated at their exact time.
    #[arg(long, default_value_t = 3600)]
    pub resync_seconds: u64,
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// File of the key desktop passwords are derived from, shared with the gateway (at least
    /// 32 bytes); without it, no workspace gets a desktop credential.
    #[arg(long, env = "HYGIE_DESKTOP_KEY_FILE")]
    pub desktop_key_file: Option<std::path::PathBuf>,
    /// `<namespace>/<name>` of the ConfigMap Hygie's resolver reads the names it answers from
    /// (the chart's `resolver`); without it, no names are written.
    #[arg(long)]
    pub resolver_names: Option<String>,
    #[command(flatten)]
    pub sink: SinkArgs,
    /// Batches of audit records (up to 100 each) kept as ConfigMaps of the Lease's namespace
    /// while the audit store does not take them; beyond, they are dropped from the sink (not
    /// from the log) and counted. 0 keeps them in memory only, lost on a crash.
    #[arg(long, default_value_t = 100)]
    pub audit_spool_batches: usize,
}

pub fn run(args: RunArgs) -> u8 {
    telemetry::init_logs(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return exit::VIOLATIONS;
        }
    };
    match runtime.block_on(operate(args)) {
        Ok(()) => exit::OK,
        Err(message) => {
            error!("{message}");
            exit::VIOLATIONS
        }
    }
}

async fn operate(args: RunArgs) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no usable kubeconfig or in-cluster config: {e}"))?;
    let metrics = Arc::new(Metrics::default());
    let server = tokio::spawn(telemetry::serve(args.metrics_address, metrics.clone()));

    let desktop_key = match &args.desktop_key_file {
        Some(path) => Some(Arc::new(crate::gateway::credential::read_key(path)?)),
        None => {
            warn!(
                "no --desktop-key-file: workspaces get no desktop credential, and the gateway cannot open their screens"
            );
            None
        }
    };
    let resolver_names = args
        .resolver_names
        .as_deref()
        .map(str::parse::<controller::resolver::ResolverNames>)
        .transpose()?;
    let identity = controller::hostname();
    let spool = (args.audit_spool_batches > 0).then(|| {
        Spool::new(
            client.clone(),
            &args.lease_namespace,
            args.audit_spool_batches,
        )
    });
    let (sink, flush) = match AuditSink::start(&args.sink, &identity, spool, metrics.audit.clone())?
    {
        Some((sink, flush)) => (Some(sink), Some(flush)),
        None => (None, None),
    };
    let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration)
        .with_grace(args.lease_duration.div_ceil(3))
        .build()
        .await
        .map_err(|e| {
            format!(
                "cannot use Lease {}/{}: {e}",
                args.lease_namespace, args.lease_name
            )
        })?;
    let (mut leading, lease_task) = manager.watch().await;
    metrics.ready.store(true, Ordering::Relaxed);
    info!(identity, lease = %args.lease_name, "waiting to lead");

    let stop = shutdown_signal();
    tokio::pin!(stop);
    let outcome = loop {
        if *leading.borrow_and_update() {
            break Ok(true);
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break Err("the lease manager stopped".to_owned()) },
            () = &mut stop => break Ok(false),
        }
    };
    let result = match outcome {
        Ok(true) => {
            info!(identity, "leading: controllers start");
            tokio::select! {
                () = controller::run(client, metrics.clone(), Duration::from_secs(args.resync_seconds), sink, desktop_key, resolver_names) => Ok(()),
                () = lost(&mut leading) => Err("lost the lease: stopping so that only one replica acts".to_owned()),
                () = drained(&mut stop) => {
                    warn!("the controllers did not stop within {} s of the signal; stopping anyway", DRAIN.as_secs());
                    Ok(())
                }
            }
        }
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    if let Some(flush) = flush {
        flush.wait(DRAIN).await;
    }
    drop(leading);
    if let Ok(Ok(manager)) = lease_task.await {
        let _ = manager.release().await;
    }
    server.abort();
    info!("stopped");
    result
}

/// Resolves when this replica no longer holds the lease.
/// How long the controllers have, after the stop signal, to finish their reconciles.
const DRAIN: Duration = Duration::from_secs(10);

/// Resolves `DRAIN` after the stop signal: the controllers stop by themselves on it, and this
/// bounds how long a stuck watch or request can hold the process.
async fn drained(stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>) {
    stop.await;
    tokio::time::sleep(DRAIN).await;
}

async fn lost(leading: &mut tokio::sync::watch::Receiver<bool>) {
    while *leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}
