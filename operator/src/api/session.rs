//! `Session`: one person's way in to a workspace's screen, or to a review's. `hygie connect`
//! creates it with the person's own credentials; the admission policy `hygie-session-identity`
//! refuses it unless `user` and `groups` are those the API server authenticated. It holds the
//! digest of a secret only the CLI knows, which the browser presents to the gateway once; the
//! gateway then asks the API server whether that user may `connect`, and records the session.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a session may wait for its browser after it is created: a link is for now.
pub const OPEN_WITHIN_SECONDS: i64 = 120;

/// A person's way in to a workspace's screen or a review's, used once.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hygie.io",
    version = "v1alpha1",
    kind = "Session",
    namespaced,
    shortname = "hsess",
    category = "hygie",
    status = "SessionStatus",
    printcolumn = r#"{"name": "Workspace", "type": "string", "jsonPath": ".spec.workspace"}"#,
    printcolumn = r#"{"name": "Review", "type": "string", "jsonPath": ".spec.review"}"#,
    printcolumn = r#"{"name": "User", "type": "string", "jsonPath": ".spec.user"}"#,
    printcolumn = r#"{"name": "Opened", "type": "date", "jsonPath": ".status.openedAt"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    validation = Rule::new("has(self.spec.workspace) != has(self.spec.review)").message("spec: a session opens either a workspace or a review (an ExportRequest's), not both")
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a Session cannot change: it is the record of who asked to come in"))]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    /// The workspace whose screen the session opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The ExportRequest whose review pod's screen the session opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    /// Who asked, as the API server authenticated them.
    #[schemars(length(min = 1))]
    pub user: String,
    /// Their groups, as the API server authenticated them.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `sha256:` and the hex digest of the one-time secret the browser presents.
    #[schemars(regex(pattern = "^sha256:[0-9a-f]{64}$"))]
    pub secret_digest: String,
}

/// What the gateway recorded of the session.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    /// When a browser presented the secret: it is never accepted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Time>,
    /// Why the gateway refused the session, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// When the session ended: the browser or the desktop closed, or its time was up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
}

/// The longest a session opened and never marked ended counts as going on: the longest any
/// profile lets one last. A gateway stopped in the middle of a session writes no end.
pub const LONGEST_UNENDED_SECONDS: i64 = 86_400;

/// The digest a Session holds of `secret`.
pub fn secret_digest(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
