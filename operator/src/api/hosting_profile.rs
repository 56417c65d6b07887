//! `HostingProfile`: where health data may live in this cluster. Cluster-scoped, written once
//! by the platform team, referenced by every Dataset and Workspace.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Toleration, apimachinery::pkg::apis::meta::v1::Condition};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Date;

/// Where health data may live: certified provider, country and regions, encrypted storage,
/// trusted registries and the network around workloads.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hygie.io",
    version = "v1alpha1",
    kind = "HostingProfile",
    shortname = "hp",
    category = "hygie",
    status = "HostingProfileStatus",
    printcolumn = r#"{"name": "Provider", "type": "string", "jsonPath": ".spec.provider"}"#,
    printcolumn = r#"{"name": "Country", "type": "string", "jsonPath": ".spec.residency.country"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Certified-Until", "type": "string", "jsonPath": ".status.certificationsExpireAt"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HostingProfileSpec {
    /// The cloud provider, which decides the storage and network facts Hygie relies on.
    pub provider: Provider,
    /// Certifications the platform team attests for this hosting; Hygie checks their dates.
    #[serde(default)]
    pub certifications: Vec<Certification>,
    /// Where the data physically is.
    pub residency: Residency,
    /// The encrypted storage every Hygie volume uses.
    pub storage: StorageProfile,
    /// Extra placement on the certified node pool.
    #[serde(default)]
    pub scheduling: Scheduling,
    /// Which images workloads may run.
    pub images: ImagePolicy,
    /// The network around workloads: DNS and who may reach workspaces.
    #[serde(default)]
    pub network: NetworkProfile,
    /// Who operates the hosting and which non-EEA laws can compel it, beyond what Hygie
    /// already knows of the provider. It may add exposure, never remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sovereignty: Option<Sovereignty>,
    /// The airlock: where reviewed outputs may go, and who reviews them by default. Without
    /// it nothing is ever exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<super::export::ExportPolicy>,
    /// Sessions through the gateway to this profile's workspaces and reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionLimits>,
}

/// Bounds of a session through the gateway, within the gateway's own: a profile may only
/// shorten them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionLimits {
    /// Seconds after which the gateway ends a session, whatever happens in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 86400))]
    pub max_seconds: Option<u32>,
    /// Seconds a workspace may go without a session before Hygie stops its workload (its
    /// volumes and keys stay); the next `hygie connect` starts it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 2592000))]
    pub idle_after_seconds: Option<u32>,
}

/// Cloud providers whose storage, regions and operator Hygie knows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Provider {
    #[serde(rename = "OVHcloud")]
    OvhCloud,
    Scaleway,
    Outscale,
    Orange,
    #[serde(rename = "S3NS")]
    S3ns,
    /// Any other Kubernetes, on premises included (Ceph, for example): it declares its own
    /// regions and operator.
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OvhCloud => "OVHcloud",
            Provider::Scaleway => "Scaleway",
            Provider::Outscale => "Outscale",
            Provider::Orange => "Orange",
            Provider::S3ns => "S3NS",
            Provider::Generic => "Generic",
        }
    }
}

/// Who operates the hosting, and the non-EEA laws with extraterritorial reach that the
/// operator or its suppliers are subject to: what decides whether a foreign authority can
/// compel it to hand the data over, wherever the disks are.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sovereignty {
    /// The entity that operates the service, as the contract names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<HostingOperator>,
    /// Non-EEA laws with extraterritorial reach the operator or its suppliers declare being
    /// subject to. Well-known values: `US-CLOUD-Act`, `US-FISA-702`, `US-EO-12333`,
    /// `CN-National-Intelligence-Law`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub extraterritorial_exposure: Vec<String>,
}

/// The entity that operates the hosting.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostingOperator {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// ISO 3166-1 alpha-2 code of the operator's registered seat.
    #[schemars(regex(pattern = "^[A-Z]{2}$"))]
    pub country: String,
    /// Whether a company or state outside the EEA controls the operator.
    #[serde(default, rename = "controlledFromOutsideEEA")]
    pub controlled_from_outside_eea: bool,
}

/// A certification the platform team attests, with its end date.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Certification {
    #[serde(rename = "type")]
    pub kind: CertificationType,
    /// Certificate or contract reference, for auditors.
    #[schemars(length(min = 1))]
    pub reference: String,
    /// Last day the certification is valid.
    pub valid_until: Date,
    /// The regions the certification covers; absent means all of the profile's regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CertificationType {
    /// Hébergeur de Données de Santé, required for personal health data in France.
    #[serde(rename = "HDS")]
    Hds,
    /// ANSSI SecNumCloud: adds immunity from non-EU law.
    SecNumCloud,
    #[serde(rename = "ISO27001")]
    Iso27001,
}

impl CertificationType {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificationType::Hds => "HDS",
            CertificationType::SecNumCloud => "SecNumCloud",
            CertificationType::Iso27001 => "ISO27001",
        }
    }
}

/// Where the data physically is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Residency {
    /// ISO 3166-1 alpha-2 country code of the data centres.
    #[schemars(regex(pattern = "^[A-Z]{2}$"))]
    pub country: String,
    /// Node label that carries the region: the well-known topology label, so that no other
    /// label can stand for a region.
    #[serde(default = "default_region_label")]
    #[schemars(extend("enum" = ["topology.kubernetes.io/region"]))]
    pub region_label: String,
    /// Allowed region values; every pod gets a required node affinity on them. For a named
    /// provider, each must be one of its EEA regions.
    #[schemars(length(min = 1))]
    pub regions: Vec<String>,
}

fn default_region_label() -> String {
    "topology.kubernetes.io/region".into()
}

/// The storage every Hygie volume uses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageProfile {
    /// StorageClass of the certified, encrypted volumes.
    #[schemars(length(min = 1))]
    pub storage_class_name: String,
    pub encryption: Encryption,
}

/// How volumes are encrypted at rest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'NodeLUKS' || has(self.passphraseKey)").message("NodeLUKS encryption needs passphraseKey, the key the CSI driver reads in the passphrase Secret").field_path(".passphraseKey"))]
#[x_kube(validation = Rule::new("self.type != 'NodeLUKS' || has(self.secretNamespace)").message("NodeLUKS encryption needs secretNamespace, where the passphrase Secrets live out of the studies' reach").field_path(".secretNamespace"))]
pub struct Encryption {
    #[serde(rename = "type")]
    pub kind: EncryptionType,
    /// NodeLUKS: suffix of the per-volume passphrase Secret, named
    /// `<pvc-namespace>.<pvc-name><secretSuffix>` in `secretNamespace`.
    #[serde(default = "default_secret_suffix")]
    pub secret_suffix: String,
    /// NodeLUKS: the namespace of the passphrase Secrets, which only the operator and the nodes
    /// read (the StorageClass names it as its fixed `node-stage-secret-namespace`). Never a
    /// study's namespace: there, Kubernetes' `edit` role reads every Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub secret_namespace: Option<String>,
    /// NodeLUKS: key of the passphrase in that Secret (Scaleway `encryptionPassphrase`, Outscale `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_key: Option<String>,
}

fn default_secret_suffix() -> String {
    "-luks".into()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EncryptionType {
    /// The provider encrypts and holds the keys (OVHcloud `*-luks` classes).
    ProviderManaged,
    /// The CSI driver opens LUKS on the node with a passphrase Hygie generates per volume.
    #[serde(rename = "NodeLUKS")]
    NodeLuks,
    /// No encryption: only for anonymised or open data.
    None,
}

/// Extra placement on the certified node pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the workloads' pods, as a Pod spells them: the API server would refuse a
    /// pod with another operator or effect, so the profile is refused first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(t, !has(t.operator) || t.operator in ['Exists', 'Equal'])").message("a toleration's operator is Exists or Equal, spelled so"))]
    #[x_kube(validation = Rule::new("self.all(t, !has(t.effect) || t.effect in ['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute'])").message("a toleration's effect is NoSchedule, PreferNoSchedule or NoExecute, spelled so"))]
    #[x_kube(validation = Rule::new("self.all(t, !has(t.operator) || t.operator != 'Exists' || !has(t.value) || t.value == '')").message("a toleration with operator Exists has no value"))]
    pub tolerations: Vec<Toleration>,
}

/// Which images workloads may run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicy {
    /// Registry prefixes images must start with, such as `registry.example.fr/research/`.
    #[schemars(length(min = 1))]
    pub allowed_registries: Vec<String>,
    /// Image of the transfer Jobs (rclone and a POSIX shell), pinned by digest: dataset imports
    /// from S3, and the airlock's staging, review pod and release. Needed for S3 sources and
    /// export destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importer: Option<String>,
    /// Desktop image of the airlock's review pods, pinned by digest: reviewers see the staged
    /// files, read-only at `/staged`, on its screen through the gateway, and nothing else. It
    /// runs as a workspace's desktop does (docs/access.md). Without it a review pod holds the
    /// files and shows nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

/// The network around workloads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    #[serde(default)]
    pub dns: DnsEndpoint,
    /// Who may reach workspaces; absent means nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_from: Option<IngressSource>,
    /// The networks workloads may list as egress destinations, private or public: a package
    /// mirror, a database of the platform's, an object store dedicated to the platform. Nothing
    /// is reachable otherwise. A private network is at most a /16, a public one a /24 (a /48 of
    /// IPv6 for both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub egress_destinations: Vec<String>,
    /// The gateway's pods: the only ones that reach a workspace's desktop, and, for data seen
    /// through a screen, the only way in at all.
    #[serde(default)]
    pub gateway: GatewayPeer,
    /// Hygie's resolver, which gives the workspaces of health data the names listed here and
    /// nothing else; without it they resolve no name at all. The cluster's resolver, which
    /// forwards what it does not know to the Internet, is never theirs: a query is a way out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<ResolverProfile>,
}

/// Where Hygie's resolver answers (the chart's `resolver`), and the names it gives.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolverProfile {
    /// The resolver Service's cluster IP, the chart's `resolver.clusterIP`: the only
    /// nameserver of the workspaces' pods.
    pub address: String,
    /// Where the resolver's pods run: by default the chart's, in `hygie-system`.
    #[serde(default = "default_resolver_namespace")]
    pub namespace: String,
    #[serde(default = "default_resolver_pod_labels")]
    pub pod_labels: BTreeMap<String, String>,
    /// The names workspaces resolve, each to one address within `egressDestinations`: a
    /// package mirror, a database of the platform's. Every other name has no answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub names: Vec<DeclaredName>,
}

fn default_resolver_namespace() -> String {
    "hygie-system".into()
}

fn default_resolver_pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "hygie".into()),
        ("app.kubernetes.io/component".into(), "resolver".into()),
    ])
}

/// A name Hygie's resolver answers, with the address it stands for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeclaredName {
    /// A fully qualified domain name, lowercase, such as `pypi.mirror.chu-exemple.fr`.
    pub name: String,
    /// Its IPv4 or IPv6 address, within one of `egressDestinations`.
    pub address: String,
}

/// Where the gateway runs: its namespace and its pods' labels (the chart's by default).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayPeer {
    pub namespace: String,
    pub pod_labels: BTreeMap<String, String>,
}

impl Default for GatewayPeer {
    fn default() -> Self {
        GatewayPeer {
            namespace: "hygie-system".into(),
            pod_labels: BTreeMap::from([
                ("app.kubernetes.io/name".into(), "hygie".into()),
                ("app.kubernetes.io/component".into(), "gateway".into()),
            ]),
        }
    }
}

/// The cluster DNS pods workloads may query.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsEndpoint {
    pub namespace: String,
    pub pod_labels: BTreeMap<String, String>,
}

impl Default for DnsEndpoint {
    fn default() -> Self {
        DnsEndpoint {
            namespace: "kube-system".into(),
            pod_labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
        }
    }
}

/// Namespaces whose pods may open connections to workspaces (an ingress controller, say).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSource {
    /// The namespaces, by their labels (such as `kubernetes.io/metadata.name`).
    pub namespace_labels: BTreeMap<String, String>,
    /// The pods of those namespaces, by their labels: required, so that a workspace reached
    /// directly is reached by the ingress controller only, not by whatever else runs beside it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
}

/// What Hygie observed of the profile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostingProfileStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions, one per type; `Reconciling` and `Stalled` as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The earliest end date among the HDS certifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certifications_expire_at: Option<Date>,
}

impl HostingProfile {
    /// The end date of the HDS certification that lasts longest, if any.
    pub fn hds_valid_until(&self) -> Option<Date> {
        self.spec
            .certifications
            .iter()
            .filter(|c| c.kind == CertificationType::Hds)
            .map(|c| c.valid_until)
            .max()
    }
}
