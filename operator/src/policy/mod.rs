//! The compliance rules HYG0xx. Each rule reads the custom resources (and `now`, for dates)
//! and returns violations; nothing here fixes input or talks to a cluster. `hygie check`,
//! `hygie render` and the controllers all call these functions.

mod certifications;
mod dataset;
mod eea;
pub mod export;
mod identities;
mod image_reference;
mod images;
mod mounts;
mod names;
mod network;
pub mod object_store;
mod profile;
pub mod providers;
pub mod resolver;
mod resources;
pub mod sovereignty;
mod workspace;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use kube::{Resource, ResourceExt};
use serde::Serialize;

use crate::api::{Dataset, ExportRequest, HostingProfile, Workspace};

pub use dataset::check_dataset;
pub use image_reference::ImageReference;
pub use network::parse_cidr;
pub use profile::check_profile;
pub use workspace::check_workspace;

/// A compliance rule. Ids are never reused: a retired rule keeps its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Rule {
    #[serde(rename = "HYG001")]
    Residency,
    #[serde(rename = "HYG002")]
    HdsCertified,
    #[serde(rename = "HYG003")]
    Encryption,
    #[serde(rename = "HYG004")]
    TrustedImage,
    #[serde(rename = "HYG005")]
    Egress,
    #[serde(rename = "HYG006")]
    Expiry,
    #[serde(rename = "HYG007")]
    DatasetBinding,
    #[serde(rename = "HYG008")]
    ProfileExists,
    #[serde(rename = "HYG009")]
    CertificationDates,
    #[serde(rename = "HYG010")]
    Resources,
    #[serde(rename = "HYG011")]
    Importer,
    #[serde(rename = "HYG012")]
    Immunity,
    #[serde(rename = "HYG013")]
    Members,
    #[serde(rename = "HYG014")]
    Names,
    #[serde(rename = "HYG015")]
    Ingress,
    #[serde(rename = "HYG016")]
    Provenance,
    #[serde(rename = "HYG017")]
    ExportDestination,
    #[serde(rename = "HYG018")]
    ExportAllowed,
    #[serde(rename = "HYG019")]
    Reviewers,
    #[serde(rename = "HYG020")]
    Readers,
}

impl Rule {
    pub const ALL: [Rule; 20] = [
        Rule::Residency,
        Rule::HdsCertified,
        Rule::Encryption,
        Rule::TrustedImage,
        Rule::Egress,
        Rule::Expiry,
        Rule::DatasetBinding,
        Rule::ProfileExists,
        Rule::CertificationDates,
        Rule::Resources,
        Rule::Importer,
        Rule::Immunity,
        Rule::Members,
        Rule::Names,
        Rule::Ingress,
        Rule::Provenance,
        Rule::ExportDestination,
        Rule::ExportAllowed,
        Rule::Reviewers,
        Rule::Readers,
    ];

    /// The stable id, such as `HYG005`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Residency => "HYG001",
            Rule::HdsCertified => "HYG002",
            Rule::Encryption => "HYG003",
            Rule::TrustedImage => "HYG004",
            Rule::Egress => "HYG005",
            Rule::Expiry => "HYG006",
            Rule::DatasetBinding => "HYG007",
            Rule::ProfileExists => "HYG008",
            Rule::CertificationDates => "HYG009",
            Rule::Resources => "HYG010",
            Rule::Importer => "HYG011",
            Rule::Immunity => "HYG012",
            Rule::Members => "HYG013",
            Rule::Names => "HYG014",
            Rule::Ingress => "HYG015",
            Rule::Provenance => "HYG016",
            Rule::ExportDestination => "HYG017",
            Rule::ExportAllowed => "HYG018",
            Rule::Reviewers => "HYG019",
            Rule::Readers => "HYG020",
        }
    }

    /// Whether the rule reads what only the cluster holds (the namespace's RoleBindings), not
    /// the declared objects: `hygie check` cannot see it, and the operator checks it at each
    /// reconcile.
    pub fn reads_the_cluster(self) -> bool {
        matches!(self, Rule::Readers)
    }

    /// One line on what the rule demands, as in the rules table of the README.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::Residency => {
                "residency.country is an EEA member state; regions are non-empty and, for a named provider, among its EEA regions; no toleration tolerates every taint"
            }
            Rule::HdsCertified => {
                "Identifying or Pseudonymised data needs a profile with an HDS certification valid today"
            }
            Rule::Encryption => {
                "health data needs storage encryption (ProviderManaged or NodeLUKS); NodeLUKS needs passphraseKey"
            }
            Rule::TrustedImage => {
                "images come from an allowed registry prefix and are pinned by digest (@sha256: and 64 hex)"
            }
            Rule::Egress => {
                "egress entries are canonical CIDRs: private networks of at most a /16 (IPv4) or /48 (IPv6), public ones only within the profile's egressDestinations, never translation, link-local, metadata, loopback or multicast ranges, at most a /16 and a /48 in all; ports 1-65535"
            }
            Rule::Expiry => {
                "a workspace on health data has expiresAt, not after any of its datasets' legal.validUntil"
            }
            Rule::DatasetBinding => {
                "referenced datasets exist in the same namespace, use the same hostingProfile, are not Expired, are listed once and mounted at plain paths of their own (not over the home or /tmp)"
            }
            Rule::ProfileExists => "the referenced HostingProfile exists",
            Rule::CertificationDates => {
                "certifications are within their validUntil date; a certification past it makes the profile not Ready"
            }
            Rule::Resources => {
                "requests and limits are set for cpu and memory, limits >= requests, and volume sizes are above zero"
            }
            Rule::Importer => {
                "a dataset with an s3 source needs the profile's images.importer, pinned by digest and from an allowed registry"
            }
            Rule::Immunity => {
                "data requiring immunity (by default Identifying and Pseudonymised) is hosted by an operator seated in and controlled from the EEA with no extraterritorial exposure, or under SecNumCloud valid today for all regions"
            }
            Rule::Members => {
                "members are listed once, and are never system: users or groups (system:authenticated is every user)"
            }
            Rule::Ingress => {
                "the profile's network selectors are not empty: ingressFrom names its namespaces and its pods by labels, dns selects the DNS pods"
            }
            Rule::Provenance => {
                "a dataset's persistentVolumeClaim source is not a claim Hygie manages (another dataset's volume, a workspace's home or copy)"
            }
            Rule::ExportDestination => {
                "a profile's export destinations are in its residency regions and reached over HTTPS"
            }
            Rule::ExportAllowed => {
                "an export request names a workspace of its namespace and a destination of its profile, and every dataset the workspace mounts allows export (Identifying data only when its owner says so)"
            }
            Rule::Reviewers => {
                "a dataset (or profile) that allows export lists its reviewers once each, never system: identities, enough for its requiredApprovals (default 2, at least 1)"
            }
            Rule::Readers => {
                "a workspace seen through a screen runs only where nobody but the platform team reads its pod or its logs: no RoleBinding of its namespace gives anybody else `get` on pods/log or `get`/`list`/`watch` on pods (checked in the cluster)"
            }
            Rule::Names => {
                "names leave every derived name valid: a Workspace is a DNS-1035 label of at most 52 characters not ending in -import, a Dataset a DNS-1123 label of at most 56"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn of<K: Resource<DynamicType = ()>>(object: &K) -> Self {
        ObjectKey {
            kind: K::kind(&()).into_owned(),
            namespace: object.namespace(),
            name: object.name_any(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One broken rule: which, where, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: Rule,
    pub object: ObjectKey,
    /// Path of the offending field, such as `spec.egress[1].cidr`.
    pub field: String,
    /// A sentence a platform engineer can act on.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}: {}",
            self.rule, self.object, self.field, self.message
        )
    }
}

/// Collects the violations of one object, so that rules only say what is wrong and where.
pub(crate) struct Findings {
    object: ObjectKey,
    violations: Vec<Violation>,
}

impl Findings {
    pub(crate) fn for_object<K: Resource<DynamicType = ()>>(object: &K) -> Self {
        Findings {
            object: ObjectKey::of(object),
            violations: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, rule: Rule, field: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation {
            rule,
            object: self.object.clone(),
            field: field.into(),
            message: message.into(),
        });
    }

    pub(crate) fn into_vec(self) -> Vec<Violation> {
        self.violations
    }
}

/// The objects rules look up by reference: profiles by name, datasets by namespace and name.
/// The offline commands fill it from files, the controllers from the cluster.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub profiles: BTreeMap<String, HostingProfile>,
    pub datasets: BTreeMap<(String, String), Dataset>,
    /// Claims Hygie manages, by namespace and name: what a dataset may not be cloned from.
    pub managed_claims: BTreeSet<(String, String)>,
    /// Export requests, checked against the workspaces they name.
    pub export_requests: Vec<ExportRequest>,
}

impl Inventory {
    pub fn profile(&self, name: &str) -> Option<&HostingProfile> {
        self.profiles.get(name)
    }

    pub fn dataset(&self, namespace: &str, name: &str) -> Option<&Dataset> {
        self.datasets.get(&(namespace.to_owned(), name.to_owned()))
    }

    pub fn add_profile(&mut self, profile: HostingProfile) {
        self.profiles.insert(profile.name_any(), profile);
    }

    pub fn add_dataset(&mut self, dataset: Dataset) {
        let key = (dataset.namespace().unwrap_or_default(), dataset.name_any());
        self.datasets.insert(key, dataset);
    }
}

/// Every violation of a whole bundle: profiles, datasets, workspaces and export requests, in
/// that order.
pub fn check_all(
    inventory: &Inventory,
    workspaces: &[Workspace],
    now: jiff::Timestamp,
) -> Vec<Violation> {
    let profiles = inventory
        .profiles
        .values()
        .flat_map(|p| check_profile(p, now));
    let datasets = inventory
        .datasets
        .values()
        .flat_map(|d| check_dataset(d, inventory, now));
    let exports = inventory
        .export_requests
        .iter()
        .flat_map(|r| export::check_request(r, inventory, workspaces));
    let workspaces = workspaces
        .iter()
        .flat_map(|w| check_workspace(w, inventory, now));
    profiles
        .chain(datasets)
        .chain(workspaces)
        .chain(exports)
        .collect()
}

/// Violations as one message, for a condition or an Event.
pub fn summary(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// At most a few dozen characters of a value, for messages: a crafted 50 MB value is not
/// echoed whole into a log line, an Event or a terminal.
pub fn quote(value: &str) -> String {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes)", &value[..end], value.len()),
    }
}

#[cfg(test)]
mod tests;
