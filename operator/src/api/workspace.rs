//! `Workspace`: who works, on which datasets, with which tool, until when.

use k8s_openapi::apimachinery::pkg::{
    api::resource::Quantity,
    apis::meta::v1::{Condition, Time},
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::common::{Access, Classification, EgressRule, VolumeSize, quantity_schema};

/// The outbox's size when a workspace does not say.
pub const DEFAULT_OUTBOX_SIZE: &str = "1Gi";

/// A research workspace: who works, on which datasets, with which tool, until when.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hygie.io",
    version = "v1alpha1",
    kind = "Workspace",
    namespaced,
    shortname = "ws",
    category = "hygie",
    status = "WorkspaceStatus",
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Profile", "type": "string", "jsonPath": ".spec.hostingProfile"}"#,
    printcolumn = r#"{"name": "Expires", "type": "string", "jsonPath": ".spec.expiresAt"}"#,
    printcolumn = r#"{"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && !self.metadata.name.endsWith('-import')").message("metadata.name: a Workspace name is a DNS-1035 label of at most 52 characters (its StatefulSet's pods and labels derive from it) and does not end in -import (the suffix of dataset import objects)")
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// The HostingProfile the workspace runs on. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("hostingProfile is immutable"))]
    pub hosting_profile: String,
    /// People and groups who work here, with their role.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["kind", "name"]))]
    pub members: Vec<Member>,
    /// Datasets of the same namespace, each mounted read-only from the workspace's own copy.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub datasets: Vec<DatasetMount>,
    /// The tool image, pinned by digest.
    #[x_kube(validation = Rule::new("self.matches('@sha256:[0-9a-f]{64}$')").message("image must be pinned by digest (@sha256: and 64 hex digits)"))]
    pub image: String,
    /// Port the tool listens on, exposed by the workspace Service.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// CPU and memory requests and limits of the workspace pod.
    #[serde(default)]
    pub resources: WorkspaceResources,
    /// The encrypted home volume, mounted at /home/researcher.
    pub storage: VolumeSize,
    /// The encrypted outbox, mounted at /outbox: where files wait for an ExportRequest.
    /// `DEFAULT_OUTBOX_SIZE` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<VolumeSize>,
    /// Destinations the workspace may reach; by default nothing leaves but DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
    /// When the workspace stops by itself.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "far_future_is_never"
    )]
    pub expires_at: Option<Time>,
    /// Stop the workload now, keeping volumes and keys; false resumes it. The one field a
    /// workspace Owner may change (enforced by the API server, see the admission policy).
    #[serde(default)]
    pub suspend: bool,
}

fn default_port() -> i32 {
    8888
}

/// Reads `expiresAt` as the API server stores it. The API server accepts instants to the end
/// of year 9999, a little past the last one a timestamp holds here: such an instant reads as
/// that last one (in effect, never) instead of failing to decode, which would fail the whole
/// list of workspaces and stop every one of them from being reconciled or expired.
fn far_future_is_never<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Time>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    // The API server refuses a leap second (`:60`); so does Hygie, rather than read it as :59.
    let leap = text.get(17..19) == Some("60");
    match text.parse::<jiff::Timestamp>() {
        Ok(_) if leap => Err(serde::de::Error::custom(format!(
            "expiresAt `{}` names a leap second, which the API server refuses",
            crate::policy::quote(&text)
        ))),
        Ok(instant) => Ok(Some(Time(instant))),
        Err(_) if text.starts_with("9999-") => Ok(Some(Time(jiff::Timestamp::MAX))),
        Err(e) => Err(serde::de::Error::custom(format!(
            "expiresAt `{}` is not an RFC 3339 instant: {e}",
            crate::policy::quote(&text)
        ))),
    }
}

/// A person or group and what they may do.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub kind: MemberKind,
    /// User or group name as the cluster's authentication reports it. Never a `system:`
    /// identity: `system:authenticated` is every user, `system:unauthenticated` anyone.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("!self.startsWith('system:')").message("members are people and groups of the identity provider, never system: identities (system:authenticated is every user, system:unauthenticated anyone)"))]
    pub name: String,
    pub role: Role,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum MemberKind {
    User,
    Group,
}

/// What a member may do, each role including the ones below it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum Role {
    /// Sees the workspace and its logs.
    Viewer,
    /// Also reaches the tool.
    Analyst,
    /// Also changes the workspace (suspends it, for example) and opens a shell in it.
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Owner => "owner",
        }
    }
}

/// A dataset mounted into the workspace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetMount {
    /// Name of a Dataset in the workspace's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Absolute path of the read-only mount.
    #[schemars(regex(pattern = "^/[^:]*$"))]
    pub mount_path: String,
}

/// CPU and memory requests and limits; all four are required by rule HYG010.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<CpuMemory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<CpuMemory>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuMemory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub memory: Option<Quantity>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WorkspacePhase {
    Pending,
    Provisioning,
    Ready,
    Suspended,
    /// Nobody has had a session for the profile's `sessions.idleAfterSeconds`: the workload is
    /// stopped until the next `hygie connect`.
    Idle,
    Expired,
    Blocked,
}

/// What Hygie observed of the workspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<WorkspacePhase>,
    /// In-cluster address of the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Conditions, one per type; `Reconciling` and `Stalled` as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Every dataset the workspace has mounted, kept once it is unmounted: its home and outbox
    /// may still hold what was copied from it, so its export rules and panel still apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub lineage: Vec<Lineage>,
    /// How members reach the workspace: `Direct` only once every dataset of its lineage allows
    /// it. The admission policies read it: no right to the pod is granted or used otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// A dataset a workspace has mounted, as it was classified when last seen mounted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lineage {
    pub name: String,
    pub classification: Classification,
    /// How the dataset allowed members to reach its data; `Screen` when not recorded.
    #[serde(default)]
    pub access: Access,
}

impl Workspace {
    /// The names of every dataset this workspace mounts or has mounted, each once, those it
    /// mounts first.
    pub fn lineage(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.spec.datasets.iter().map(|m| m.name.as_str()).collect();
        let past = self.status.iter().flat_map(|s| &s.lineage);
        for entry in past {
            if !names.contains(&entry.name.as_str()) {
                names.push(&entry.name);
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expires_at(text: &str) -> Result<Option<Time>, String> {
        let json = serde_json::json!({
            "hostingProfile": "p", "image": "i", "storage": {"size": "1Gi"}, "expiresAt": text
        });
        serde_json::from_value::<WorkspaceSpec>(json)
            .map(|spec| spec.expires_at)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_expiry_past_the_last_representable_instant_reads_as_never() {
        let never = expires_at("9999-12-31T00:00:00Z").unwrap().unwrap();
        assert_eq!(never.0, jiff::Timestamp::MAX);
        let soon = expires_at("2027-06-30T00:00:00Z").unwrap().unwrap();
        assert!(
            expires_at("2026-12-31T23:59:60Z")
                .unwrap_err()
                .contains("leap second")
        );
        assert_eq!(soon.0.to_string(), "2027-06-30T00:00:00Z");
        let error = expires_at(&format!("tomorrow{}", "!".repeat(10_000))).unwrap_err();
        assert!(
            error.len() < 400,
            "the value is quoted, not echoed: {error}"
        );
    }
}
