//! The audit sink: every audit record Hygie writes to its log also goes, when configured, to an
//! S3 bucket with Object Lock, where it outlives the objects, the operator and the cluster.
//!
//! Records are batched (up to [`BATCH`] records or [`LINGER`]) into one JSON-lines object per
//! batch, under `<prefix><yyyy>/<mm>/<dd>/`, each uploaded once with `If-None-Match: *` (never
//! over another object) and a compliance-mode retention: until that date nobody, the bucket's
//! owner included, can overwrite or delete it. A batch the store does not take is kept in the
//! spool (`crate::spool`, in the API server) under its object's name and written from there
//! once the store is back, by this replica or another; without a spool (the gateway's sink) it
//! is retried from memory with a growing delay. Records beyond the queue's or the spool's bound
//! are dropped from the sink, counted and said so in the log, never from the log itself. Those
//! queued in memory (at most [`LINGER`] and one write's time) do not survive a crash.
//! `hygie report` reads them back.
//!
//! An irreversible step (a key destroyed, a volume deleted, files released) is not queued: its
//! intent is written first, alone, and the step waits until the store has it; its outcome is
//! written the same way once it is taken ([`AuditSink::write_now`]). Their objects' names are
//! derived from what the step destroys, not the time (`intents/…` and `outcomes/…` under the
//! prefix, the same name in each), so a record written again after a crash or a retry is the
//! same object, kept once, and the intents the store holds without an outcome are the steps a
//! crash interrupted ([`AuditSink::unconcluded`]): whoever comes next concludes them.

use std::{path::PathBuf, sync::Arc, time::Duration};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use md5::Digest;
use rusty_s3::{
    Bucket, Credentials, S3Action, UrlStyle,
    actions::{HeadObject, ListObjectsV2, PutObject},
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::{spool::Spool, telemetry::AuditMetrics};

/// Most records in one object.
const BATCH: usize = 100;
/// How long the first record of a batch waits for others.
const LINGER: Duration = Duration::from_secs(1);
/// Records waiting for the store, at most.
const QUEUE: usize = 10_000;
/// Longest wait between two tries of a refused batch, and between two drains of the spool.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the spool is looked at while it holds batches, or to find another replica's.
const DRAIN_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for the store to take (or give back) the record of an irreversible step; the
/// step waits for the next reconcile.
pub const WRITE_AHEAD_LIMIT: Duration = Duration::from_secs(10);

/// Why an object was not written.
enum Put {
    /// An object of that name is there already (`If-None-Match: *`).
    Exists,
    Failed(String),
}

/// Where the sink writes, as `hygie run` is told.
#[derive(clap::Args, Debug, Clone)]
pub struct SinkArgs {
    /// HTTPS endpoint of the object store of the audit sink; no sink without it.
    #[arg(long, env = "HYGIE_AUDIT_S3_ENDPOINT")]
    pub audit_s3_endpoint: Option<url::Url>,
    /// Bucket of the audit sink, created with Object Lock enabled.
    #[arg(long, env = "HYGIE_AUDIT_S3_BUCKET", default_value = "")]
    pub audit_s3_bucket: String,
    /// Key prefix of the audit records, such as `hygie/prod/`.
    #[arg(long, env = "HYGIE_AUDIT_S3_PREFIX", default_value = "")]
    pub audit_s3_prefix: String,
    #[arg(long, env = "HYGIE_AUDIT_S3_REGION", default_value = "us-east-1")]
    pub audit_s3_region: String,
    /// Days each record is kept in compliance mode: nobody can delete it before.
    #[arg(long, env = "HYGIE_AUDIT_S3_RETENTION_DAYS", default_value_t = 400)]
    pub audit_s3_retention_days: u32,
    /// Folder holding the files `accessKeyId` and `secretAccessKey` (a mounted Secret).
    #[arg(
        long,
        env = "HYGIE_AUDIT_S3_CREDENTIALS",
        default_value = "/var/run/secrets/hygie/audit"
    )]
    pub audit_s3_credentials: PathBuf,
    /// PEM file of the certificates the store's own is checked against, beside the system's.
    #[arg(long, env = "HYGIE_AUDIT_S3_CA_FILE")]
    pub audit_s3_ca_file: Option<PathBuf>,
}

/// Whether a record says what Hygie is about to do or what it did.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Step {
    /// About to be done, and written to the store before it is: an irreversible step.
    Intended,
    #[default]
    Done,
}

impl Step {
    fn is_done(&self) -> bool {
        *self == Step::Done
    }
}

/// One decision of Hygie's, as the audit log and the sink keep it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    /// When it was decided (RFC 3339).
    pub time: String,
    /// `Kind/namespace/name` of the object decided about.
    pub object: String,
    pub uid: String,
    /// What was done: the Event's reason.
    pub action: String,
    /// `Normal` or `Warning`.
    pub outcome: String,
    pub reasons: String,
    /// What exactly went, for a key destroyed or a volume deleted: names, UIDs and versions.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub evidence: std::collections::BTreeMap<String, String>,
    /// The operator replica that decided.
    pub recorder: String,
    /// `Intended` for the intent of an irreversible step, written before it; absent once done.
    #[serde(default, skip_serializing_if = "Step::is_done")]
    pub step: Step,
}

/// The sending end of the sink; cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    queue: mpsc::Sender<Record>,
    metrics: AuditMetrics,
    store: Arc<Store>,
    /// The steps' records this replica has seen in the store: a step tried again is not written
    /// again.
    written: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl AuditSink {
    /// Starts the sink described by `args`, if one is, keeping what the store does not take in
    /// `spool`; fails on a configuration that cannot work (no credentials, an unreadable CA
    /// file), so that the operator does not run without the sink it was told to write to.
    pub fn start(
        args: &SinkArgs,
        recorder: &str,
        spool: Option<Spool>,
        metrics: AuditMetrics,
    ) -> Result<Option<(AuditSink, Flush)>, String> {
        let Some(store) = Store::of(args, recorder)? else {
            return Ok(None);
        };
        let (queue, receiver) = mpsc::channel(QUEUE);
        let store = Arc::new(store);
        let writer = Writer {
            store: store.clone(),
            spool,
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(writer.run(receiver));
        info!(bucket = %args.audit_s3_bucket, "audit sink started");
        let written = Arc::default();
        Ok(Some((
            AuditSink {
                queue,
                metrics,
                store,
                written,
            },
            Flush(task),
        )))
    }

    /// Writes `record`, the intent or the outcome of an irreversible step, to the store now, and
    /// returns once the store has it (or already had it): the step (or what follows it) may then
    /// be taken. An error says why the store did not take it within [`WRITE_AHEAD_LIMIT`].
    pub async fn write_now(&self, record: &Record) -> Result<(), String> {
        let key = step_key(&self.store.prefix, record);
        if self.written.lock().expect("not poisoned").contains(&key) {
            return Ok(());
        }
        let body = serde_json::to_string(record).expect("a record serializes") + "\n";
        // Some stores refuse a write over a locked object as forbidden, not as a failed
        // precondition: whether the record is there is then asked of the store.
        self.store.put_new(&key, body).await?;
        self.written.lock().expect("not poisoned").insert(key);
        Ok(())
    }

    /// The intent the store holds for the step `record` concludes, if it holds one.
    pub async fn intent_of(&self, record: &Record) -> Result<Option<Record>, String> {
        let intent = Record {
            step: Step::Intended,
            ..record.clone()
        };
        let key = step_key(&self.store.prefix, &intent);
        let found = within_limit(self.store.read(&key)).await?;
        Ok(found.and_then(|records| records.into_iter().next()))
    }

    /// The intents the store holds for the object `uid` without their outcome: steps a crash (or
    /// a failure to write the outcome) interrupted once they were announced.
    pub async fn unconcluded(&self, uid: &str) -> Result<Vec<Record>, String> {
        let prefix = &self.store.prefix;
        let pending = async {
            let intents = self.store.keys(&format!("{prefix}intents/{uid}/")).await?;
            let outcomes = self.store.keys(&format!("{prefix}outcomes/{uid}/")).await?;
            let concluded: std::collections::HashSet<&str> = outcomes
                .iter()
                .filter_map(|k| k.rsplit('/').next())
                .collect();
            let mut records = Vec::new();
            for key in &intents {
                if concluded.contains(key.rsplit('/').next().unwrap_or_default()) {
                    continue;
                }
                records.extend(self.store.read(key).await?.unwrap_or_default());
            }
            Ok(records)
        };
        within_limit(pending).await
    }

    /// Where the sink writes, as a status message names it.
    pub fn describe(&self) -> String {
        format!(
            "bucket `{}` at {}",
            self.store.bucket.name(),
            self.store.bucket.base_url()
        )
    }

    /// Queues `record` for the store; never waits.
    pub fn record(&self, record: Record) {
        if let Err(e) = self.queue.try_send(record) {
            self.metrics.dropped.inc();
            error!(error = %e, "audit sink: record not queued (it stays in the log)");
        }
    }
}

/// `work`'s answer, or why there is none within [`WRITE_AHEAD_LIMIT`].
async fn within_limit<T>(work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(WRITE_AHEAD_LIMIT, work)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer from the store within {} s",
                WRITE_AHEAD_LIMIT.as_secs()
            ))
        })
}

/// The sink's writer, which ends once every [`AuditSink`] is dropped and the queue written.
pub struct Flush(tokio::task::JoinHandle<()>);

impl Flush {
    /// Waits, at most `limit`, for the queued records to be written.
    pub async fn wait(self, limit: Duration) {
        if tokio::time::timeout(limit, self.0).await.is_err() {
            error!(
                "audit sink: records still queued at exit are lost from the sink (not from the log)"
            );
        }
    }
}

type Https = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

struct Store {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    retention: jiff::SignedDuration,
    recorder: String,
    http: Https,
}

/// A client that trusts the system's roots (`SSL_CERT_FILE` included) and `ca_file`.
fn https_client(ca_file: Option<&std::path::Path>) -> Result<Https, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("audit sink: cannot read {}: {e}", path.display()))?;
        roots.add_parsable_certificates(certs);
    }
    if roots.is_empty() {
        return Err(
            "audit sink: no certificate to check the store's against: set --audit-s3-ca-file"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("audit sink: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The sink's writer: the batches of the queue to the store, or to the spool and from there to
/// the store.
struct Writer {
    store: Arc<Store>,
    spool: Option<Spool>,
    metrics: AuditMetrics,
}

impl Writer {
    /// Takes batches off the queue and writes each, and drains the spool, until every sender is
    /// gone and the queue is written.
    async fn run(self, mut queue: mpsc::Receiver<Record>) {
        let mut sequence: u64 = 0;
        let mut drain = tokio::time::interval(DRAIN_EVERY);
        loop {
            let first = tokio::select! {
                first = queue.recv() => first,
                _ = drain.tick() => {
                    self.drain().await;
                    continue;
                }
            };
            let Some(first) = first else {
                return;
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(record)) => batch.push(record),
                    _ => break,
                }
            }
            sequence += 1;
            let key = object_key(
                &self.store.prefix,
                jiff::Timestamp::now(),
                &self.store.recorder,
                sequence,
            );
            let body: String = batch
                .iter()
                .map(|r| serde_json::to_string(r).expect("a record serializes") + "\n")
                .collect();
            self.deliver(&key, body, batch.len()).await;
        }
    }

    /// Writes the batch `body` as the object `key`; if the store does not take it, keeps it in
    /// the spool, or without one tries again until the store takes it.
    async fn deliver(&self, key: &str, body: String, records: usize) {
        let mut delay = Duration::from_secs(1);
        loop {
            let Err(e) = self.store.put_new(key, body.clone()).await else {
                self.metrics.written.inc_by(records as u64);
                return;
            };
            self.metrics.failed_writes.inc();
            let Some(spool) = &self.spool else {
                warn!(error = %e, records, retry_in_s = delay.as_secs(), "audit sink: batch not written");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
                continue;
            };
            match spool.keep(key, &body).await {
                Ok(held) => {
                    self.metrics.spooled_batches.set(held as i64);
                    warn!(error = %e, records, spooled_batches = held, "audit sink: batch not written, kept in the spool");
                    return;
                }
                Err(crate::spool::NotKept::Full(held)) => {
                    self.metrics.dropped.inc_by(records as u64);
                    error!(error = %e, records, spooled_batches = held, "audit sink: batch not written and the spool is full: dropped from the sink (it stays in the log)");
                    return;
                }
                Err(refused) => {
                    warn!(error = %e, spool = %refused, records, retry_in_s = delay.as_secs(), "audit sink: batch neither written nor spooled");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Writes the spool's batches to the store, oldest first, each forgotten once the store has
    /// it; stops at the first the store does not take.
    async fn drain(&self) {
        let Some(spool) = &self.spool else {
            return;
        };
        let batches = match spool.batches().await {
            Ok(batches) => batches,
            Err(e) => {
                warn!(error = %e, "audit sink: cannot read the spool");
                return;
            }
        };
        let mut held = batches.len();
        for batch in batches {
            if let Err(e) = self.store.put_new(&batch.key, batch.body).await {
                self.metrics.failed_writes.inc();
                warn!(error = %e, spooled_batches = held, "audit sink: the store does not take the spool yet");
                break;
            }
            match spool.remove(&batch.name).await {
                Ok(()) => held -= 1,
                Err(e) => {
                    warn!(error = %e, batch = batch.name, "audit sink: a written batch stays in the spool")
                }
            }
            self.metrics.written.inc_by(batch.records as u64);
            info!(
                key = batch.key,
                records = batch.records,
                "audit sink: spooled batch written"
            );
        }
        self.metrics.spooled_batches.set(held as i64);
    }
}

impl Store {
    /// The store `args` describe, if they describe one.
    fn of(args: &SinkArgs, recorder: &str) -> Result<Option<Store>, String> {
        let Some(endpoint) = args.audit_s3_endpoint.clone() else {
            return Ok(None);
        };
        let read = |file: &str| {
            let path = args.audit_s3_credentials.join(file);
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("audit sink: cannot read {}: {e}", path.display()))
        };
        let credentials = Credentials::new(read("accessKeyId")?, read("secretAccessKey")?);
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            args.audit_s3_bucket.clone(),
            args.audit_s3_region.clone(),
        )
        .map_err(|e| format!("audit sink: {e}"))?;
        Ok(Some(Store {
            bucket,
            credentials,
            prefix: args.audit_s3_prefix.clone(),
            retention: jiff::SignedDuration::from_hours(
                24 * i64::from(args.audit_s3_retention_days),
            ),
            recorder: recorder.to_owned(),
            http: https_client(args.audit_s3_ca_file.as_deref())?,
        }))
    }

    /// Sends a signed request to `url`; returns the body of a success.
    async fn send(
        &self,
        request: hyper::http::request::Builder,
        body: Bytes,
        what: &str,
    ) -> Result<String, (hyper::StatusCode, String)> {
        let unsent = |e: String| (hyper::StatusCode::BAD_GATEWAY, format!("{what}: {e}"));
        let request = request
            .header("content-length", body.len())
            .body(Full::new(body))
            .map_err(|e| unsent(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| unsent(e.to_string()))?;
        let status = response.status();
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        match status.is_success() {
            true => Ok(text),
            false => Err((
                status,
                format!("{what}: HTTP {status}: {}", s3_error(&text)),
            )),
        }
    }

    /// Every record under the prefix, in time order (the steps' records are named by what they
    /// are, not when: they are put in their place by their time).
    async fn records(&self) -> Result<Vec<Record>, String> {
        let mut keys = self.keys(&self.prefix).await?;
        keys.sort();
        let mut records = Vec::new();
        for key in keys {
            records.extend(self.read(&key).await?.unwrap_or_default());
        }
        records.sort_by_key(|r: &Record| r.time.parse::<jiff::Timestamp>().ok());
        Ok(records)
    }

    /// The names of the objects under `prefix`.
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut list = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            list.with_prefix(prefix);
            if let Some(token) = &token {
                list.with_continuation_token(token.as_str());
            }
            let url = list.sign(Duration::from_secs(300));
            let text = self
                .send(hyper::Request::get(url.as_str()), Bytes::new(), "list")
                .await
                .map_err(|(_, e)| e)?;
            let page = ListObjectsV2::parse_response(&text).map_err(|e| e.to_string())?;
            keys.extend(page.contents.into_iter().map(|c| c.key));
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// The records of the object `key`, or `None` if there is no such object.
    async fn read(&self, key: &str) -> Result<Option<Vec<Record>>, String> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(300));
        let text = match self
            .send(hyper::Request::get(url.as_str()), Bytes::new(), key)
            .await
        {
            Ok(text) => text,
            Err((hyper::StatusCode::NOT_FOUND, _)) => return Ok(None),
            Err((_, e)) => return Err(e),
        };
        let records = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(|e| format!("{key}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Some(records))
    }

    /// Whether the object `key` is in the store.
    async fn exists(&self, key: &str) -> bool {
        let url = HeadObject::new(&self.bucket, Some(&self.credentials), key)
            .sign(Duration::from_secs(300));
        self.send(hyper::Request::head(url.as_str()), Bytes::new(), key)
            .await
            .is_ok()
    }

    /// Writes `body` as the new, locked object `key`, within [`WRITE_AHEAD_LIMIT`]; an object
    /// of that name is this batch, written already.
    async fn put_new(&self, key: &str, body: String) -> Result<(), String> {
        let written = async {
            match self.put_object(key, body).await {
                Ok(()) | Err(Put::Exists) => Ok(()),
                Err(Put::Failed(e)) => match self.exists(key).await {
                    true => Ok(()),
                    false => Err(e),
                },
            }
        };
        within_limit(written).await
    }

    /// Writes `body` as the new object `key`, locked in compliance mode, never over another.
    async fn put_object(&self, key: &str, body: String) -> Result<(), Put> {
        let now = jiff::Timestamp::now();
        let until = now
            .checked_add(self.retention)
            .map_err(|e| Put::Failed(e.to_string()))?
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let md5 =
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()));
        let headers = [
            ("content-md5", md5),
            ("if-none-match", "*".to_owned()),
            ("x-amz-object-lock-mode", "COMPLIANCE".to_owned()),
            ("x-amz-object-lock-retain-until-date", until),
        ];
        let mut action = PutObject::new(&self.bucket, Some(&self.credentials), key);
        for (name, value) in &headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(Duration::from_secs(300));
        let mut request = hyper::Request::put(url.as_str());
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        match self
            .send(request, Bytes::from(body), &format!("PUT {key}"))
            .await
        {
            Ok(_) => Ok(()),
            Err((hyper::StatusCode::PRECONDITION_FAILED, _)) => Err(Put::Exists),
            Err((_, e)) => Err(Put::Failed(e)),
        }
    }
}

/// Reads back every record of the sink `args` describe.
pub async fn read_records(args: &SinkArgs) -> Result<Vec<Record>, String> {
    match Store::of(args, "")? {
        Some(store) => store.records().await,
        None => Ok(Vec::new()),
    }
}

/// What an S3 error body says, in a line: its `Code` and `Message` when it has them (a status
/// message names them, not a page of XML), the body otherwise.
fn s3_error(body: &str) -> String {
    let element = |name: &str| {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&close)? + start;
        Some(&body[start..end])
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => body.trim().to_owned(),
    }
}

/// `<prefix>intents/<uid>/<action>-<digest>.jsonl` for the intent of a step,
/// `<prefix>outcomes/…` with the same name for its outcome: the digest of the object and of the
/// claim the step destroys, if it names one. One name per step, the same whoever writes it and
/// however often. The first write stands: written again after a crash (when less is left to
/// name), the intent is the one written before anything went.
fn step_key(prefix: &str, record: &Record) -> String {
    let claim = record.evidence.get("claim").map_or("", String::as_str);
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("{}\n{claim}", record.object));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let uid = match record.uid.as_str() {
        "" => "none",
        uid => uid,
    };
    let folder = match record.step {
        Step::Intended => "intents",
        Step::Done => "outcomes",
    };
    format!("{prefix}{folder}/{uid}/{}-{hex}.jsonl", record.action)
}

/// `<prefix><yyyy>/<mm>/<dd>/<yyyymmddThhmmss.nnnnnnnnnZ>-<recorder>-<sequence>.jsonl`: one
/// name per batch, in time order when listed.
fn object_key(prefix: &str, at: jiff::Timestamp, recorder: &str, sequence: u64) -> String {
    let day = at.strftime("%Y/%m/%d");
    let instant = at.strftime("%Y%m%dT%H%M%S.%fZ");
    format!("{prefix}{day}/{instant}-{recorder}-{sequence:08}.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_named_by_day_then_instant_recorder_and_sequence() {
        let at: jiff::Timestamp = "2026-11-30T17:05:09.123456789Z".parse().unwrap();
        assert_eq!(
            object_key("hygie/prod/", at, "hygie-7d9f-x2", 42),
            "hygie/prod/2026/11/30/20261130T170509.123456789Z-hygie-7d9f-x2-00000042.jsonl"
        );
    }

    #[test]
    fn an_s3_error_is_said_by_its_code_and_message() {
        let body = "<?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist.</Message><BucketName>a</BucketName></Error>";
        assert_eq!(
            s3_error(body),
            "NoSuchBucket: The specified bucket does not exist."
        );
        assert_eq!(s3_error(" bad gateway \n"), "bad gateway");
    }

    #[test]
    fn a_step_is_named_by_what_it_is_so_that_writing_it_again_is_the_same_object() {
        let record = Record {
            time: "2026-11-30T17:05:09Z".into(),
            object: "Dataset/chu/cohort".into(),
            uid: "4b1c".into(),
            action: "Shredded".into(),
            outcome: "Normal".into(),
            reasons: "the key first, then the volume".into(),
            evidence: [("keySecret".to_owned(), "cohort-key".to_owned())].into(),
            recorder: "hygie-0".into(),
            step: Step::Intended,
        };
        let key = step_key("hygie/", &record);
        assert!(key.starts_with("hygie/intents/4b1c/Shredded-"), "{key}");
        let later = Record {
            time: "2026-11-30T18:00:00Z".into(),
            recorder: "hygie-1".into(),
            reasons: "retried".into(),
            ..record.clone()
        };
        assert_eq!(step_key("hygie/", &later), key, "the same step, retried");
        let fewer = Record {
            evidence: [("claim".to_owned(), "cohort-data".to_owned())].into(),
            ..record.clone()
        };
        let with_key = Record {
            evidence: [
                ("claim".to_owned(), "cohort-data".to_owned()),
                ("keySecret".to_owned(), "cohort-key".to_owned()),
            ]
            .into(),
            ..record.clone()
        };
        assert_eq!(
            step_key("hygie/", &fewer),
            step_key("hygie/", &with_key),
            "the same claim's destruction, once its key is gone"
        );
        assert_ne!(step_key("hygie/", &fewer), key, "another claim");
        let outcome = Record {
            step: Step::Done,
            ..record.clone()
        };
        assert_eq!(
            step_key("hygie/", &outcome),
            key.replace("/intents/", "/outcomes/"),
            "an outcome is named as its intent, in its own folder"
        );
        let line = serde_json::to_string(&record).unwrap();
        assert!(line.contains(r#""step":"Intended""#), "{line}");
        let done = serde_json::to_string(&Record {
            step: Step::Done,
            ..record
        })
        .unwrap();
        assert!(
            !done.contains("step"),
            "records written before steps existed read the same"
        );
    }

    #[tokio::test]
    async fn no_sink_is_started_without_an_endpoint_and_none_without_its_credentials() {
        let mut args = SinkArgs {
            audit_s3_endpoint: None,
            audit_s3_bucket: "audit".into(),
            audit_s3_prefix: String::new(),
            audit_s3_region: "fr-par".into(),
            audit_s3_retention_days: 1,
            audit_s3_credentials: "/nonexistent".into(),
            audit_s3_ca_file: None,
        };
        let metrics = AuditMetrics::default();
        assert!(
            AuditSink::start(&args, "r", None, metrics.clone())
                .unwrap()
                .is_none()
        );
        args.audit_s3_endpoint = Some("https://s3.example.fr".parse().unwrap());
        let refused = AuditSink::start(&args, "r", None, metrics).err().unwrap();
        assert!(refused.contains("/nonexistent/accessKeyId"), "{refused}");
    }
}
