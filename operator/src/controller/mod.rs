//! The operator: one kube-runtime controller per kind, all calling the same rules and builders
//! as `hygie check` and `hygie render`. A reconcile fetches nothing it does not need (profiles,
//! datasets and workspaces come from watched stores), validates, builds, applies what changed,
//! prunes what is no longer desired, and writes status only when it changed.

mod adoption;
mod apply;
mod children;
mod dataset;
mod error;
mod events;
mod export;
mod idle;
mod jobs;
mod keys;
mod known;
mod profile;
mod readers;
pub mod resolver;
mod status;
mod workspace;

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, future};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::PersistentVolumeClaim};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{Action, Config},
        events::{Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::{info, warn};

use crate::{
    api::{Dataset, ExportRequest, ExportReview, HostingProfile, Session, Workspace},
    sink::AuditSink,
    telemetry::Metrics,
};
use apply::Applier;
use children::ChildCache;
pub use error::Error;

/// Field managers, one per controller.
const WORKSPACE_MANAGER: &str = "hygie-workspace-controller";
const DATASET_MANAGER: &str = "hygie-dataset-controller";
const EXPORT_MANAGER: &str = "hygie-export-controller";
/// The field managers that apply children.
const APPLIERS: [&str; 3] = [WORKSPACE_MANAGER, DATASET_MANAGER, EXPORT_MANAGER];
/// The field manager that scales a workload to zero when its rules stop holding.
const FAIL_CLOSED_MANAGER: &str = "hygie-fail-closed";

/// Finalizers, on the kinds whose deletion needs ordered work.
pub const WORKSPACE_FINALIZER: &str = "hygie.io/workspace-cleanup";
pub const DATASET_FINALIZER: &str = "hygie.io/dataset-retention";
pub const EXPORT_FINALIZER: &str = "hygie.io/export-shredding";

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub profiles: Store<HostingProfile>,
    /// Every Session: whether somebody has been in a workspace lately.
    pub sessions: Store<Session>,
    pub datasets: Store<Dataset>,
    pub workspaces: Store<Workspace>,
    /// The workspaces' StatefulSets, their replicas and status: whether the workload runs and
    /// is ready.
    pub statefulsets: Store<StatefulSet>,
    /// The workspaces' claims, their metadata and phase: whether the dataset copies are bound.
    pub claims: Store<PersistentVolumeClaim>,
    /// Every ExportReview, counted by the request it names.
    pub export_reviews: Store<ExportReview>,
    pub workspace_children: Applier,
    pub dataset_children: Applier,
    pub export_children: Applier,
    /// How often an object is reconciled when nothing happens, to re-evaluate dates.
    pub resync: Duration,
    /// Failures in a row, for the backoff of permanent errors.
    pub failures: Failures,
    /// Where audit records also go, when configured: storage that outlives the cluster.
    pub audit_sink: Option<AuditSink>,
    /// The key desktop passwords are derived from, shared with the gateway; without it,
    /// workspaces get no desktop credential and the gateway cannot open their screens.
    pub desktop_key: Option<Arc<Vec<u8>>>,
    /// Where the names Hygie's resolver answers are written, when the chart runs one.
    pub resolver_names: Option<resolver::ResolverNames>,
}

/// Buffer of the shared watch streams, per subscriber.
const SHARED_BUFFER: usize = 1024;

impl Context {
    /// Waits for the watched stores' first list: until then an absent workspace or review may
    /// only be unlisted, and a request refused for it would be refused wrongly, and a workspace
    /// whose sessions are not listed yet would pass for idle.
    async fn stores_listed(&self) -> Result<(), Error> {
        let ready = future::join5(
            self.profiles.wait_until_ready(),
            self.datasets.wait_until_ready(),
            self.workspaces.wait_until_ready(),
            self.export_reviews.wait_until_ready(),
            self.sessions.wait_until_ready(),
        );
        match tokio::time::timeout(CACHE_WAIT, ready).await {
            Ok((Ok(()), Ok(()), Ok(()), Ok(()), Ok(()))) => Ok(()),
            _ => Err(Error::Waiting("the first list of watched objects".into())),
        }
    }
}

/// Runs the four controllers until a shutdown signal.
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    resync: Duration,
    audit_sink: Option<AuditSink>,
    desktop_key: Option<Arc<Vec<u8>>>,
    resolver_names: Option<resolver::ResolverNames>,
) {
    let (profiles, profile_writer) = reflector::store_shared::<HostingProfile>(SHARED_BUFFER);
    let (datasets, dataset_writer) = reflector::store_shared::<Dataset>(SHARED_BUFFER);
    let (workspaces, workspace_writer) = reflector::store_shared::<Workspace>(SHARED_BUFFER);
    let subscribe = "a shared store accepts subscribers";
    let profile_events = profile_writer.subscribe().expect(subscribe);
    let dataset_events = dataset_writer.subscribe().expect(subscribe);
    let workspace_events = workspace_writer.subscribe().expect(subscribe);
    let (profile_for_workspaces, profile_for_datasets) = (
        profile_writer.subscribe().expect(subscribe),
        profile_writer.subscribe().expect(subscribe),
    );
    let dataset_for_workspaces = dataset_writer.subscribe().expect(subscribe);
    let (export_requests, export_request_writer) =
        reflector::store_shared::<ExportRequest>(SHARED_BUFFER);
    let export_request_events = export_request_writer.subscribe().expect(subscribe);
    let (sessions, session_writer) = reflector::store_shared::<Session>(SHARED_BUFFER);
    let session_for_workspaces = session_writer.subscribe().expect(subscribe);
    let (export_reviews, export_review_writer) =
        reflector::store_shared::<ExportReview>(SHARED_BUFFER);
    let export_review_events = export_review_writer.subscribe().expect(subscribe);

    watch_shared(Api::<HostingProfile>::all(client.clone()), profile_writer);
    watch_shared(Api::<Dataset>::all(client.clone()), dataset_writer);
    watch_shared(Api::<Workspace>::all(client.clone()), workspace_writer);
    watch_shared(Api::<Session>::all(client.clone()), session_writer);
    watch_shared(
        Api::<ExportRequest>::all(client.clone()),
        export_request_writer,
    );
    watch_shared(
        Api::<ExportReview>::all(client.clone()),
        export_review_writer,
    );

    // A burst of child events (a workspace's dozen children being created) becomes one
    // reconcile rather than a dozen.
    let config = Config::default()
        .concurrency(8)
        .debounce(Duration::from_millis(500));
    let mut workspace_cache = ChildCache::default();
    let (workspace_controller, statefulsets, claims) = {
        let by_profile = workspaces.clone();
        let by_dataset = workspaces.clone();
        let controller = Controller::for_shared_stream(workspace_events, workspaces.clone())
            .with_config(config.clone())
            .watches_shared_stream(
                profile_for_workspaces,
                move |profile: Arc<HostingProfile>| {
                    let name = profile.name_any();
                    by_profile
                        .state()
                        .into_iter()
                        .filter(move |w| w.spec.hosting_profile == name)
                        .map(|w| ObjectRef::from_obj(&*w))
                },
            )
            // A new session wakes an idle workspace; an ended one starts its idle time.
            .watches_shared_stream(session_for_workspaces, |session: Arc<Session>| {
                let namespace = session.namespace().unwrap_or_default();
                (session.spec.workspace.as_ref())
                    .map(|workspace| ObjectRef::new(workspace).within(&namespace))
            })
            .watches_shared_stream(dataset_for_workspaces, move |dataset: Arc<Dataset>| {
                let (namespace, name) = (dataset.namespace(), dataset.name_any());
                by_dataset
                    .state()
                    .into_iter()
                    .filter(move |w| {
                        w.namespace() == namespace && w.spec.datasets.iter().any(|d| d.name == name)
                    })
                    .map(|w| ObjectRef::from_obj(&*w))
            });
        owns_workspace_children(controller, &mut workspace_cache, &client)
    };
    let mut dataset_cache = ChildCache::default();
    let dataset_controller = {
        let by_profile = datasets.clone();
        let controller = Controller::for_shared_stream(dataset_events, datasets.clone())
            .with_config(config.clone())
            .watches_shared_stream(profile_for_datasets, move |profile: Arc<HostingProfile>| {
                let name = profile.name_any();
                by_profile
                    .state()
                    .into_iter()
                    .filter(move |d| d.spec.hosting_profile == name)
                    .map(|d| ObjectRef::from_obj(&*d))
            });
        owns_dataset_children(controller, &mut dataset_cache, &client)
    };
    let mut export_cache = ChildCache::default();
    let export_controller = {
        let controller = Controller::for_shared_stream(export_request_events, export_requests)
            .with_config(config.clone())
            .watches_shared_stream(export_review_events, |review: Arc<ExportReview>| {
                let namespace = review.namespace().unwrap_or_default();
                Some(ObjectRef::new(&review.spec.request).within(&namespace))
            });
        owns_export_children(controller, &mut export_cache, &client)
    };
    let profile_controller =
        Controller::for_shared_stream(profile_events, profiles.clone()).with_config(config);

    let guard = Arc::new(adoption::AdoptionGuard::new(client.clone()));
    let context = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "hygie".into(),
                instance: Some(hostname()),
            },
        ),
        metrics,
        profiles,
        sessions,
        datasets,
        workspaces,
        statefulsets,
        claims,
        export_reviews,
        workspace_children: Applier::new(
            client.clone(),
            WORKSPACE_MANAGER,
            workspace_cache,
            guard.clone(),
        ),
        dataset_children: Applier::new(
            client.clone(),
            DATASET_MANAGER,
            dataset_cache,
            guard.clone(),
        ),
        export_children: Applier::new(client.clone(), EXPORT_MANAGER, export_cache, guard),
        resync,
        failures: Failures::default(),
        audit_sink,
        desktop_key,
        resolver_names,
    });

    info!("controllers starting");
    let workspaces = workspace_controller
        .shutdown_on_signal()
        .run(
            workspace::reconcile,
            error_policy::<Workspace>,
            context.clone(),
        )
        .for_each(|_| future::ready(()));
    let datasets = dataset_controller
        .shutdown_on_signal()
        .run(dataset::reconcile, error_policy::<Dataset>, context.clone())
        .for_each(|_| future::ready(()));
    let profiles = profile_controller
        .shutdown_on_signal()
        .run(
            profile::reconcile,
            error_policy::<HostingProfile>,
            context.clone(),
        )
        .for_each(|_| future::ready(()));
    let exports = export_controller
        .shutdown_on_signal()
        .run(
            export::reconcile,
            error_policy::<ExportRequest>,
            context.clone(),
        )
        .for_each(|_| future::ready(()));
    tokio::join!(workspaces, datasets, profiles, exports);
    info!("controllers stopped");
}

fn owns_workspace_children(
    controller: Controller<Workspace>,
    cache: &mut ChildCache,
    client: &Client,
) -> (
    Controller<Workspace>,
    Store<StatefulSet>,
    Store<PersistentVolumeClaim>,
) {
    use k8s_openapi::api::{core::v1::*, networking::v1::NetworkPolicy, rbac::v1::*};
    let label = crate::build::labels::WORKSPACE;
    let controller = cache.own::<ServiceAccount, _>(controller, client, label);
    let controller = cache.own::<NetworkPolicy, _>(controller, client, label);
    let controller = cache.own::<Role, _>(controller, client, label);
    let controller = cache.own::<RoleBinding, _>(controller, client, label);
    let controller = cache.own::<Secret, _>(controller, client, label);
    // Only the metadata and the phase of a claim are read.
    let phase_only = |claim: &mut PersistentVolumeClaim| {
        children::keep_identity_only(claim);
        claim.spec = None;
        let phase = claim.status.as_ref().and_then(|s| s.phase.clone());
        claim.status = Some(PersistentVolumeClaimStatus {
            phase,
            ..Default::default()
        });
    };
    let (controller, claims) =
        cache.own_whole::<PersistentVolumeClaim, _>(controller, client, label, phase_only);
    let controller = cache.own::<Service, _>(controller, client, label);
    // Only the metadata, the replica count and the status of a StatefulSet are read.
    let status_only = |statefulset: &mut StatefulSet| {
        children::keep_identity_only(statefulset);
        let replicas = statefulset.spec.as_ref().and_then(|s| s.replicas);
        statefulset.spec = Some(k8s_openapi::api::apps::v1::StatefulSetSpec {
            replicas,
            ..Default::default()
        });
    };
    let (controller, statefulsets) =
        cache.own_whole::<StatefulSet, _>(controller, client, label, status_only);
    (controller, statefulsets, claims)
}

fn owns_dataset_children(
    controller: Controller<Dataset>,
    cache: &mut ChildCache,
    client: &Client,
) -> Controller<Dataset> {
    use k8s_openapi::api::{batch::v1::Job, core::v1::*, networking::v1::NetworkPolicy};
    let label = crate::build::labels::DATASET;
    let controller = cache.own::<ServiceAccount, _>(controller, client, label);
    let controller = cache.own::<NetworkPolicy, _>(controller, client, label);
    let controller = cache.own::<Secret, _>(controller, client, label);
    let controller = cache.own::<PersistentVolumeClaim, _>(controller, client, label);
    cache.own::<Job, _>(controller, client, label)
}

fn owns_export_children(
    controller: Controller<ExportRequest>,
    cache: &mut ChildCache,
    client: &Client,
) -> Controller<ExportRequest> {
    use k8s_openapi::api::{
        apps::v1::StatefulSet, batch::v1::Job, core::v1::*, networking::v1::NetworkPolicy,
        rbac::v1::*,
    };
    let label = crate::build::labels::EXPORT_REQUEST;
    let controller = cache.own::<ServiceAccount, _>(controller, client, label);
    let controller = cache.own::<NetworkPolicy, _>(controller, client, label);
    let controller = cache.own::<Role, _>(controller, client, label);
    let controller = cache.own::<RoleBinding, _>(controller, client, label);
    let controller = cache.own::<Secret, _>(controller, client, label);
    let controller = cache.own::<PersistentVolumeClaim, _>(controller, client, label);
    let controller = cache.own::<StatefulSet, _>(controller, client, label);
    cache.own::<Job, _>(controller, client, label)
}

/// Keeps `writer`'s store current from a watch of `api`, in the background. The stores feed
/// the controllers and the reconcilers' lookups.
fn watch_shared<K>(api: Api<K>, writer: reflector::store::Writer<K>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(children::forget_managed_fields)
        .reflect_shared(writer)
        .map(log_watch_error);
    tokio::spawn(stream.for_each(|_| future::ready(())));
}

fn log_watch_error<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(e) = result {
        warn!(error = %e, "watch error, retrying");
    }
}

fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    context: Arc<Context>,
) -> Action {
    let kind = K::kind(&());
    if error.is_wait() {
        info!(kind = %kind, error = %error, "not yet");
        return Action::requeue(error.retry_after());
    }
    context.metrics.failed(&kind, error.category().label());
    let failures = context.failures.record(&key_of(&*object));
    let delay = match error.is_permanent() {
        true => backoff(failures),
        false => error.retry_after(),
    };
    warn!(kind = %kind, namespace = object.meta().namespace.as_deref().unwrap_or(""), name = %object.meta().name.as_deref().unwrap_or(""), category = error.category().label(), error = %error, retry_in_s = delay.as_secs(), "reconcile failed");
    Action::requeue(delay)
}

/// 10 s, doubling with each failure in a row, at most 10 minutes: a refusal that only a change
/// can lift is not retried every 10 s.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(6);
    Duration::from_secs(10 << doublings).min(Duration::from_secs(600))
}

/// `Kind/namespace/name` of an object, as failures are counted.
fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// Failures in a row, per object; a reconcile that succeeds forgets them.
#[derive(Default)]
pub struct Failures(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl Failures {
    fn record(&self, key: &str) -> u32 {
        let mut counts = self.0.lock().expect("not poisoned");
        let count = counts.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }

    fn forget<K: Resource<DynamicType = ()>>(&self, object: &K) {
        self.0.lock().expect("not poisoned").remove(&key_of(object));
    }
}

/// How long a reconcile waits for the child caches' first list.
const CACHE_WAIT: Duration = Duration::from_secs(30);

/// Waits for `children`'s caches to hold their first list: until then an absent child may
/// only be unlisted, and a cleanup or a prune concluding from it would be wrong.
async fn children_listed(children: &Applier) -> Result<(), Error> {
    match children.cache.wait_until_ready(CACHE_WAIT).await {
        true => Ok(()),
        false => Err(Error::Waiting("the first list of child objects".into())),
    }
}

/// After a reconcile: a success forgets past failures; an error that stalls is said in the
/// object's status as `Stalled` by `stall`.
async fn settle<K, F>(object: &K, context: &Context, result: &Result<Action, Error>, stall: F)
where
    K: Resource<DynamicType = ()>,
    F: std::future::Future<Output = Result<bool, Error>>,
{
    match result {
        Ok(_) => context.failures.forget(object),
        Err(error) if error.stalls() => {
            if let Err(e) = stall.await {
                warn!(error = %e, "the Stalled condition could not be written");
            }
        }
        Err(_) => {}
    }
}

/// The UID of an object read from the API server.
fn uid<K: Resource>(object: &K) -> String {
    object.meta().uid.clone().unwrap_or_default()
}

/// This replica's name: the pod name in a cluster, the host name elsewhere.
pub fn hostname() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "hygie".into())
}

/// The requeue that wakes a reconcile at `at` (if sooner than the resync), never sooner than a
/// second from now.
pub(crate) fn requeue_at(
    at: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    resync: Duration,
) -> Action {
    let until = at
        .map(|at| at.duration_since(now))
        .and_then(|d| Duration::try_from(d).ok())
        .map(|d| d.max(Duration::from_secs(1)))
        .unwrap_or(resync);
    Action::requeue(until.min(resync))
}
