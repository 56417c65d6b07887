//! Types shared by the three kinds: calendar dates, sizes, references and egress rules.

use std::{borrow::Cow, fmt, str::FromStr};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar date (`2027-03-31`), as written in certificates and legal authorisations.
///
/// A date is valid through its whole day: something "valid until 2027-03-31" is still valid at
/// 23:59:59 UTC that day and no longer at midnight that follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub jiff::civil::Date);

impl Date {
    /// The first instant at which this date is over (midnight UTC of the next day).
    pub fn end(self) -> jiff::Timestamp {
        let next = self.0.tomorrow().unwrap_or(self.0);
        next.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(jiff::Timestamp::MAX)
    }

    /// Whether the date is over at `now`.
    pub fn is_past(self, now: jiff::Timestamp) -> bool {
        now >= self.end()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the plain ISO form: "2027-3-31" or a date-time are refused, as the API server does.
        let shaped = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
        match s.parse::<jiff::civil::Date>() {
            Ok(date) if shaped => Ok(Date(date)),
            _ => Err(format!("`{s}` is not a date of the form YYYY-MM-DD")),
        }
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Date {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date"})
    }
}

/// Schema of a storage size: a Kubernetes quantity such as `50Gi`, checked by the API server.
pub fn size_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$",
        "description": "A storage size as a Kubernetes quantity, for example 50Gi."
    })
}

/// Schema of a CPU or memory amount: a Kubernetes quantity such as `500m`, `2` or `4Gi`.
pub fn quantity_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^[0-9]+(\\.[0-9]+)?(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$",
        "description": "A Kubernetes quantity, for example 500m, 2 or 4Gi."
    })
}

/// The size of a volume Hygie provisions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct VolumeSize {
    /// Requested capacity of the encrypted volume.
    #[schemars(schema_with = "size_schema")]
    pub size: Quantity,
}

/// A Secret in the same namespace as the object that names it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LocalSecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// A destination outside the pod that traffic may reach.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct EgressRule {
    /// Destination network in CIDR notation, for example `10.20.0.0/24`.
    pub cidr: String,
    /// Destination ports; empty means none is allowed.
    #[schemars(length(min = 1))]
    pub ports: Vec<EgressPort>,
}

/// One destination port of an egress rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct EgressPort {
    /// Port number, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Transport protocol.
    #[serde(default)]
    pub protocol: Protocol,
}

/// Transport protocols a NetworkPolicy can match.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// How members reach a workspace that holds a dataset's data.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Access {
    /// Through a screen only: the gateway's remote desktop, nothing to copy out. No member holds
    /// exec, attach, port-forward, proxy, logs or reads of the workspace's pods.
    #[default]
    Screen,
    /// Also directly (port-forward, proxy, logs, and exec for owners). Only for Anonymised or
    /// Open data, and only as the platform team sets it on the Dataset.
    Direct,
}

impl Access {
    /// `Direct` when every one of `accesses` is: a single dataset seen through a screen makes
    /// the whole workspace seen through a screen.
    pub fn of_all(accesses: impl IntoIterator<Item = Access>) -> Access {
        match accesses.into_iter().all(|a| a == Access::Direct) {
            true => Access::Direct,
            false => Access::Screen,
        }
    }
}

/// How sensitive a dataset is. The first two are health data under the French public health
/// code and need an HDS-certified host.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Classification {
    /// Directly identifies patients.
    Identifying,
    /// Identifiers replaced by pseudonyms; still personal health data.
    Pseudonymised,
    /// Irreversibly anonymised: no longer personal data.
    Anonymised,
    /// Public data.
    Open,
}

impl Classification {
    /// Whether the data is personal health data, which only an HDS-certified host may hold.
    pub fn is_health_data(self) -> bool {
        matches!(
            self,
            Classification::Identifying | Classification::Pseudonymised
        )
    }
}
