//! Condition types and reasons, shared by the controllers and the docs.
//! Reasons are CamelCase, as Kubernetes API conventions ask.

pub const READY: &str = "Ready";
pub const COMPLIANT: &str = "Compliant";
pub const ENCRYPTED: &str = "Encrypted";
pub const CERTIFICATIONS_VALID: &str = "CertificationsValid";
pub const DATASETS_BOUND: &str = "DatasetsBound";
pub const NETWORK_ISOLATED: &str = "NetworkIsolated";
pub const STORAGE_ENCRYPTED: &str = "StorageEncrypted";

/// Reason of `Compliant=False`: one or more HYG rules failed.
pub const RULES_VIOLATED: &str = "RulesViolated";
/// Reason of `Compliant=True`.
pub const ALL_RULES_PASS: &str = "AllRulesPass";
