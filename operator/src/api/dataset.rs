//! `Dataset`: a health data set, its legal frame, and the encrypted volume that holds it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Access, Classification, Date, EgressRule, LocalSecretReference, VolumeSize};

/// A health data set, its legal frame, and the encrypted volume that holds it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hygie.io",
    version = "v1alpha1",
    kind = "Dataset",
    namespaced,
    shortname = "dset",
    category = "hygie",
    status = "DatasetStatus",
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Classification", "type": "string", "jsonPath": ".spec.classification"}"#,
    printcolumn = r#"{"name": "Access", "type": "string", "jsonPath": ".spec.access", "priority": 1}"#,
    printcolumn = r#"{"name": "Profile", "type": "string", "jsonPath": ".spec.hostingProfile"}"#,
    printcolumn = r#"{"name": "Size", "type": "string", "jsonPath": ".spec.storage.size"}"#,
    printcolumn = r#"{"name": "Valid-Until", "type": "string", "jsonPath": ".spec.legal.validUntil"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    validation = Rule::new("!has(self.spec.access) || self.spec.access == 'Screen' || self.spec.classification in ['Anonymised', 'Open']").message("spec.access: Direct access is for Anonymised or Open data only; health data is seen through a screen"),
    validation = Rule::new("self.metadata.name.size() <= 56 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name: a Dataset name is a DNS-1123 label of at most 56 characters (its import Job, `<name>-import`, is a label too)")
)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSpec {
    /// The HostingProfile the data lives on. Immutable: moving data is a new Dataset.
    #[x_kube(validation = Rule::new("self == oldSelf").message("hostingProfile is immutable"))]
    pub hosting_profile: String,
    /// How sensitive the data is. Immutable: a reclassification is a new Dataset.
    #[x_kube(validation = Rule::new("self == oldSelf").message("classification is immutable"))]
    pub classification: Classification,
    /// How members reach a workspace that mounts this data: `Screen` (the default) through the
    /// gateway only, or `Direct`, for Anonymised or Open data, as the platform team decides.
    /// A workspace is reached directly only if every dataset it has ever mounted allows it.
    #[serde(default)]
    pub access: Access,
    /// The legal frame of the processing.
    pub legal: LegalFrame,
    /// Where the initial content comes from; absent means an empty volume to fill later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DatasetSource>,
    /// Size of the encrypted volume.
    pub storage: VolumeSize,
    /// What happens to the volume and its key when the Dataset is deleted.
    #[serde(default)]
    pub retention: Retention,
    /// Whether outputs of workspaces that mount this dataset may leave through the airlock,
    /// and who reviews them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<super::export::DatasetExport>,
}

/// The legal frame of the processing, as the data protection officer records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegalFrame {
    /// The data controller (responsable de traitement).
    #[schemars(length(min = 1))]
    pub controller: String,
    /// Why the data is processed.
    #[schemars(length(min = 1))]
    pub purpose: String,
    /// The authorisation or reference methodology, such as `CNIL MR-004`.
    #[schemars(length(min = 1))]
    pub basis: String,
    /// Last day of the authorisation; no workspace may outlive it.
    pub valid_until: Date,
    /// Whether the data may only be hosted by an operator that no non-EEA law can compel to
    /// hand it over. Defaults to `Required` for Identifying and Pseudonymised data and to
    /// `NotRequired` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immunity: Option<Immunity>,
}

/// Whether immunity from non-EEA extraterritorial law is required.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Immunity {
    Required,
    NotRequired,
}

/// Where the initial content of the volume comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.s3) && has(self.persistentVolumeClaim))").message("a dataset has at most one source: s3 or persistentVolumeClaim"))]
pub struct DatasetSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<ClaimSource>,
}

/// Objects copied once into the volume by an import Job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Source {
    /// HTTPS endpoint of the object store.
    #[schemars(regex(pattern = "^https://"))]
    pub endpoint: String,
    #[schemars(length(min = 1))]
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Secret with keys `accessKeyId` and `secretAccessKey`.
    pub credentials_secret_ref: LocalSecretReference,
    /// Where the import Job may connect: the object store's addresses. Nothing else leaves.
    #[schemars(length(min = 1))]
    pub egress: Vec<EgressRule>,
}

/// An existing claim in the same namespace, cloned into the dataset's own volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource {
    #[schemars(length(min = 1))]
    pub claim_name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    #[serde(default)]
    pub on_delete: OnDelete,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OnDelete {
    /// Keep the volume and its key when the Dataset goes.
    #[default]
    Retain,
    /// Delete the key first, making the volume unreadable, then the volume.
    Shred,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DatasetPhase {
    Pending,
    Importing,
    Ready,
    Failed,
    Expired,
}

/// What Hygie observed of the dataset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DatasetPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_name: Option<String>,
    /// The PersistentVolume behind the claim, recorded when the dataset is shredded: it is
    /// deleted with its disk, and the dataset is gone only once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_name: Option<String>,
    /// Bytes copied by the import Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_bytes: Option<i64>,
    /// Checksum of the imported content, as the import Job reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_checksum: Option<String>,
    /// Conditions, one per type; `Reconciling` and `Stalled` as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl Dataset {
    /// Whether the dataset holds personal health data.
    pub fn is_health_data(&self) -> bool {
        self.spec.classification.is_health_data()
    }

    /// Whether the data needs an operator immune from non-EEA law: as declared, or by default
    /// for health data.
    pub fn requires_immunity(&self) -> bool {
        match self.spec.legal.immunity {
            Some(immunity) => immunity == Immunity::Required,
            None => self.is_health_data(),
        }
    }

    /// Whether the dataset can no longer be processed at `now`: its authorisation has ended,
    /// or the operator already marked it Expired.
    pub fn is_expired(&self, now: jiff::Timestamp) -> bool {
        let marked = self.status.as_ref().and_then(|s| s.phase) == Some(DatasetPhase::Expired);
        marked || self.spec.legal.valid_until.is_past(now)
    }
}
