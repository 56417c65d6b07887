//! The airlock: `ExportRequest` asks to take files out of a workspace, `ExportReview` is one
//! reviewer's decision on it. Who asked and who reviewed are the users the API server
//! authenticated (the admission policy `hygie-export-identity` refuses any other name), and
//! neither object changes once created. A review is bound to one request and to the bytes its
//! reviewer saw: it names the request's UID and the digest of what was staged, and the API
//! server refuses it unless both are the live request's and the request is in review
//! (`hygie-export-review-binding`).

use k8s_openapi::apimachinery::pkg::{
    api::resource::Quantity,
    apis::meta::v1::{Condition, Time},
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    common::{EgressRule, LocalSecretReference, quantity_schema},
    workspace::MemberKind,
};

/// Most files in one request: their sizes and digests travel back in a termination message of
/// at most 4096 bytes.
pub const MAX_FILES: usize = 40;

/// How long a request may wait for its approvals when the profile does not say: 30 days.
pub const DEFAULT_REVIEW_DEADLINE_SECONDS: i64 = 30 * 24 * 3600;

/// Longest review deadline a profile may set: 90 days. A staged copy is kept, encrypted, for as
/// long as its request waits; beyond a quarter the study should submit again.
pub const MAX_REVIEW_DEADLINE_SECONDS: i64 = 90 * 24 * 3600;

/// How many distinct reviewers must approve when nobody says otherwise, and the fewest any panel
/// on personal health data (Identifying or Pseudonymised) counts, whatever a spec says.
pub const DEFAULT_REQUIRED_APPROVALS: u32 = 2;

/// A HostingProfile's airlock: the destinations, and the reviewers of datasets that name none.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportPolicy {
    /// Where approved outputs may be released; nothing else is a destination.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub destinations: Vec<ExportDestination>,
    /// Reviewers of exports from workspaces whose datasets name none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<Reviewer>,
    /// Distinct approvals needed when a dataset does not say; at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub required_approvals: Option<u32>,
    /// Largest total size of one request's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub max_total_size: Option<Quantity>,
    /// Seconds after its submission within which a request must be approved, or it expires
    /// and what it staged is shredded: from 60 to `MAX_REVIEW_DEADLINE_SECONDS` (90 days),
    /// `DEFAULT_REVIEW_DEADLINE_SECONDS` (30 days) when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = MAX_REVIEW_DEADLINE_SECONDS))]
    pub review_deadline_seconds: Option<i64>,
}

/// An object store outputs may be released to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportDestination {
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    pub s3: S3Destination,
}

/// A bucket, in a region the residency rules allow.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Destination {
    /// HTTPS endpoint of the object store.
    #[schemars(regex(pattern = "^https://"))]
    pub endpoint: String,
    #[schemars(length(min = 1))]
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// The store's region: one of the profile's residency regions.
    #[schemars(length(min = 1))]
    pub region: String,
    /// Secret, in the request's namespace, with keys `accessKeyId` and `secretAccessKey`.
    pub credentials_secret_ref: LocalSecretReference,
    /// Where the release Job may connect to reach the store: the only egress it gets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
}

/// A Dataset's airlock settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetExport {
    /// Whether outputs of workspaces mounting it may leave. Defaults to false for
    /// `Identifying` data and true otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// Who reviews those outputs; the profile's reviewers when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<Reviewer>,
    /// Distinct approvals needed; the profile's, or 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub required_approvals: Option<u32>,
}

/// A person, or a group of people, as the cluster's authentication names them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reviewer {
    pub kind: MemberKind,
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("!self.startsWith('system:')").message("reviewers are people and groups of the identity provider, never system: identities"))]
    pub name: String,
}

/// A request to take files out of a workspace, to a destination its HostingProfile declares.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hygie.io",
    version = "v1alpha1",
    kind = "ExportRequest",
    namespaced,
    shortname = "exr",
    category = "hygie",
    status = "ExportRequestStatus",
    printcolumn = r#"{"name": "Workspace", "type": "string", "jsonPath": ".spec.workspace"}"#,
    printcolumn = r#"{"name": "Requester", "type": "string", "jsonPath": ".spec.requester"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Destination", "type": "string", "jsonPath": ".spec.destination", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an ExportRequest cannot change once submitted: delete it (before approval) and submit a new one"))]
#[serde(rename_all = "camelCase")]
pub struct ExportRequestSpec {
    /// The Workspace of the same namespace whose outbox holds the files.
    #[schemars(length(min = 1))]
    pub workspace: String,
    /// Paths of files under the workspace's outbox (`/outbox`), relative to it; at most
    /// `MAX_FILES` (bundle more into an archive).
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[schemars(length(min = 1, max = MAX_FILES), inner(length(min = 1, max = 1024)))]
    #[x_kube(validation = Rule::new("self.all(p, !p.startsWith('/') && !p.endsWith('/') && p.split('/').all(s, s != '' && s != '.' && s != '..'))").message("files are relative paths under the outbox: no leading or trailing /, no empty, . or .. segment"))]
    pub files: Vec<String>,
    /// Why these outputs must leave, for the reviewers and the record.
    #[schemars(length(min = 1, max = 4096))]
    pub justification: String,
    /// What the requester declares the outputs to be.
    #[schemars(length(min = 1))]
    pub outputs: Vec<OutputKind>,
    /// Name of one of the HostingProfile's export destinations.
    #[schemars(length(min = 1))]
    pub destination: String,
    /// The user submitting the request: the admission policy makes the API server refuse any
    /// name but the one it authenticated. Only a member of the workspace may export from it.
    #[schemars(length(min = 1))]
    pub requester: String,
    /// Groups of the requester that make them a member of the workspace: the admission policy
    /// makes the API server refuse any group they are not in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requester_groups: Vec<String>,
}

/// What an output is, as its requester declares it. Only non-personal data may leave
/// (European Health Data Space regulation, art. 73(2)).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OutputKind {
    AggregateStatistics,
    Model,
    Figure,
    Table,
    Code,
    Document,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ExportPhase>,
    /// The files as staged: what reviewers see and what is released, byte for byte.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staged_files: Vec<StagedFile>,
    /// `sha256:` and the hex sha256 of `stagedFiles` as compact JSON sorted by path
    /// (`jq -cj '.status.stagedFiles | sort_by(.path)' | sha256sum`): what a review names to
    /// approve exactly these bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_digest: Option<String>,
    /// When the request entered review: a review made before never counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_opened_at: Option<Time>,
    /// Every review received, counted or not, with why it was not counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<ReviewRecord>,
    /// The objects written to the destination, each read back and its sha256 compared with
    /// the staged one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released_objects: Vec<ReleasedObject>,
    /// Conditions, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Where a request stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExportPhase {
    Submitted,
    Staging,
    InReview,
    Approved,
    Rejected,
    Releasing,
    Released,
    Failed,
    Cancelled,
    Expired,
}

/// A file copied out of the outbox, as reviewed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StagedFile {
    pub path: String,
    pub size: i64,
    /// Hex sha256 of the staged bytes.
    pub sha256: String,
}

/// The digest a review names: `sha256:` and the hex sha256 of `files` as compact JSON, sorted by
/// path, each with its path, size and sha256 in that order.
pub fn staged_digest(files: &[StagedFile]) -> String {
    let mut sorted: Vec<&StagedFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let json = serde_json::to_vec(&sorted).expect("staged files serialize");
    let hash = Sha256::digest(&json);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An object as released, read back from the destination.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedObject {
    /// `s3://<bucket>/<key>`.
    pub url: String,
    /// Hex sha256 of the bytes read back, equal to the staged file's.
    pub sha256: String,
}

/// A review as the operator counted it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRecord {
    /// The ExportReview.
    pub name: String,
    pub reviewer: String,
    pub decision: Decision,
    pub reason: String,
    /// Whether it counts; when not, `ignoredBecause` says why.
    pub counted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_because: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
}

/// One reviewer's decision on an ExportRequest of the same namespace, while it is in review, on
/// the bytes it staged. It is owned by the request (an owner reference the API server requires),
/// so it goes with it; its record stays in the request's Events and the audit sink.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hygie.io",
    version = "v1alpha1",
    kind = "ExportReview",
    namespaced,
    shortname = "exrv",
    category = "hygie",
    printcolumn = r#"{"name": "Request", "type": "string", "jsonPath": ".spec.request"}"#,
    printcolumn = r#"{"name": "Reviewer", "type": "string", "jsonPath": ".spec.reviewer"}"#,
    printcolumn = r#"{"name": "Decision", "type": "string", "jsonPath": ".spec.decision"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an ExportReview cannot change: it is the record of a decision"))]
#[serde(rename_all = "camelCase")]
pub struct ExportReviewSpec {
    /// Name of the ExportRequest.
    #[schemars(length(min = 1))]
    pub request: String,
    /// UID of the ExportRequest reviewed: a review counts for that very request only, never for
    /// another submitted later under the same name.
    #[serde(rename = "requestUID")]
    #[schemars(length(min = 1, max = 36))]
    pub request_uid: String,
    /// The request's `status.stagedDigest` when its reviewer saw the staged files: a review
    /// counts for those bytes only.
    #[schemars(regex(pattern = "^sha256:[0-9a-f]{64}$"))]
    pub staged_digest: String,
    /// The reviewing user: the admission policy makes the API server refuse any name but the
    /// one it authenticated.
    #[schemars(length(min = 1))]
    pub reviewer: String,
    /// Groups of the reviewer that make them a listed reviewer: the admission policy makes the
    /// API server refuse any group the user is not in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewer_groups: Vec<String>,
    pub decision: Decision,
    /// Why, in the reviewer's words; required for both decisions.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new("self.matches('[^[:space:]]')").message("a review states its reason"))]
    pub reason: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Decision {
    Approve,
    Reject,
}
