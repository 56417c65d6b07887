//! Small, valid objects for unit tests, written as users write them: in YAML.

use crate::api::{
    Dataset, ExportRequest, ExportReview, HostingProfile, Workspace, export::staged_digest,
};
use crate::policy::Inventory;

pub const NOW: &str = "2026-12-01T00:00:00Z";

pub fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

pub fn profile() -> HostingProfile {
    parse(
        r#"
apiVersion: hygie.io/v1alpha1
kind: HostingProfile
metadata: {name: hds-fr}
spec:
  provider: OVHcloud
  certifications:
    - {type: HDS, reference: "HDS-1", validUntil: "2028-03-31"}
  residency: {country: FR, regions: [GRA7, GRA9]}
  storage:
    storageClassName: csi-cinder-high-speed-gen2-luks
    encryption: {type: ProviderManaged}
  images:
    allowedRegistries: ["registry.example.fr/research/"]
    importer: "registry.example.fr/research/rclone@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  network:
    ingressFrom:
      namespaceLabels: {kubernetes.io/metadata.name: ingress}
      podLabels: {app.kubernetes.io/name: ingress-nginx}
    egressDestinations: ["192.0.2.0/24", "10.20.0.0/24"]
"#,
    )
}

/// The same profile with NodeLUKS encryption, as on Scaleway.
pub fn luks_profile() -> HostingProfile {
    let mut profile = profile();
    profile.spec.storage.encryption = serde_json::from_value(serde_json::json!(
        {"type": "NodeLUKS", "passphraseKey": "encryptionPassphrase", "secretNamespace": "hygie-keys"}
    ))
    .unwrap();
    profile
}

pub fn dataset() -> Dataset {
    parse(
        r#"
apiVersion: hygie.io/v1alpha1
kind: Dataset
metadata: {name: cohort, namespace: research}
spec:
  hostingProfile: hds-fr
  classification: Pseudonymised
  legal: {controller: "CHU", purpose: "study", basis: "MR-004", validUntil: "2027-12-31"}
  storage: {size: 10Gi}
"#,
    )
}

pub fn workspace() -> Workspace {
    parse(
        r#"
apiVersion: hygie.io/v1alpha1
kind: Workspace
metadata: {name: study, namespace: research}
spec:
  hostingProfile: hds-fr
  members:
    - {kind: User, name: alice, role: Owner}
    - {kind: Group, name: analysts, role: Analyst}
  datasets:
    - {name: cohort, mountPath: /data/cohort}
  image: "registry.example.fr/research/jupyter@sha256:1111111111111111111111111111111111111111111111111111111111111111"
  resources:
    requests: {cpu: "1", memory: 4Gi}
    limits: {cpu: "2", memory: 8Gi}
  storage: {size: 5Gi}
  egress:
    - {cidr: 10.20.0.0/24, ports: [{port: 443}]}
  expiresAt: "2027-06-30T00:00:00Z"
"#,
    )
}

/// A profile named `p` whose spec is the given lines (provider, residency...) over minimal
/// storage and images.
pub fn profile_yaml(spec_lines: &str) -> HostingProfile {
    let spec: String = spec_lines
        .lines()
        .map(|line| format!("  {line}\n"))
        .collect();
    parse(&format!(
        "apiVersion: hygie.io/v1alpha1\nkind: HostingProfile\nmetadata: {{name: p}}\nspec:\n{spec}  storage: {{storageClassName: sc, encryption: {{type: ProviderManaged}}}}\n  images: {{allowedRegistries: [\"registry.example.fr/\"]}}\n"
    ))
}

/// `alice`'s request to take a table out of `study` to the profile's `results` destination.
pub fn export_request() -> ExportRequest {
    let mut request: ExportRequest = parse(
        r#"
apiVersion: hygie.io/v1alpha1
kind: ExportRequest
metadata: {name: table-1, namespace: research, uid: 5b0c7a1e-2f61-4e0b-9d43-0b1f6a9e2c11}
spec:
  workspace: study
  files: [tables/readmissions-by-age.csv]
  justification: "Aggregate table for the article, cells under 11 suppressed"
  outputs: [AggregateStatistics]
  destination: results
  requester: alice
status:
  phase: InReview
  reviewOpenedAt: "2027-01-04T09:00:00Z"
  stagedFiles:
    - {path: tables/readmissions-by-age.csv, size: 412, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
"#,
    );
    let status = request.status.as_mut().expect("a status");
    status.staged_digest = Some(staged_digest(&status.staged_files));
    request
}

/// `reviewer`'s decision on `table-1` as staged, declaring `groups`, made once it was in review.
pub fn export_review(reviewer: &str, groups: &[&str], approve: bool) -> ExportReview {
    let request = export_request();
    let decision = if approve { "Approve" } else { "Reject" };
    let uid = request.metadata.uid.unwrap_or_default();
    let digest = request
        .status
        .and_then(|s| s.staged_digest)
        .unwrap_or_default();
    parse(&format!(
        "apiVersion: hygie.io/v1alpha1\nkind: ExportReview\nmetadata: {{name: {reviewer}-on-table-1, namespace: research, creationTimestamp: \"2027-01-04T10:00:00Z\"}}\nspec: {{request: table-1, requestUID: {uid}, stagedDigest: \"{digest}\", reviewer: {reviewer}, reviewerGroups: {groups:?}, decision: {decision}, reason: \"checked the cell sizes\"}}\n"
    ))
}

pub fn inventory(profile: HostingProfile, datasets: Vec<Dataset>) -> Inventory {
    let mut inventory = Inventory::default();
    inventory.add_profile(profile);
    datasets.into_iter().for_each(|d| inventory.add_dataset(d));
    inventory
}

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_saphyr::from_str(yaml).unwrap()
}
