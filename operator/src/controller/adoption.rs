//! Whether the API server keeps the operator from taking over an object it did not create:
//! the never-adopts admission policy (see [`crate::admission`]), installed as this operator
//! expects and bound to deny. While it is, a new child is applied in one request, and an
//! object of that name made by somebody else is refused by the API server before anything is
//! written. While it is not (the chart installed without its admission policies, the policy
//! changed or removed), the operator reads each new child's name before applying it, as it
//! must then decide alone. The answer is read again after [`RECHECK`], so that a policy
//! removed while the operator runs stops being relied on within that time.

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    authentication::v1::SelfSubjectReview,
};
use kube::{Api, Client, api::PostParams};
use serde_json::Value;

use crate::admission::{NEVER_ADOPTS_POLICY, policies};

/// How long an answer is trusted before it is read again.
pub const RECHECK: Duration = Duration::from_secs(60);

pub struct AdoptionGuard {
    client: Client,
    /// The operator's user name as the API server authenticates it, read once.
    identity: tokio::sync::OnceCell<String>,
    /// The last answer and when it was read. Held while it is read again, so that the
    /// reconciles waiting on it make one read between them.
    answer: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl AdoptionGuard {
    pub fn new(client: Client) -> Self {
        AdoptionGuard {
            client,
            identity: tokio::sync::OnceCell::new(),
            answer: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether the API server currently refuses the operator any update of an object that is
    /// not its owner's child. Any doubt (a read that fails included) answers no.
    pub async fn enforced(&self) -> bool {
        let mut last = self.answer.lock().await;
        if let Some((at, answer)) = *last
            && at.elapsed() < RECHECK
        {
            return answer;
        }
        let answer = self.read().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the never-adopts admission policy");
            false
        });
        let previous = last
            .replace((Instant::now(), answer))
            .map(|(_, before)| before);
        if previous != Some(answer) {
            if answer {
                tracing::info!(
                    policy = NEVER_ADOPTS_POLICY,
                    "the API server refuses the operator any object it did not create: new children are applied without reading their names first"
                );
            } else {
                tracing::warn!(
                    policy = NEVER_ADOPTS_POLICY,
                    "the never-adopts admission policy is not installed as this operator expects: each new child's name is read before it is applied"
                );
            }
        }
        answer
    }

    async fn read(&self) -> Result<bool, kube::Error> {
        let identity = self
            .identity
            .get_or_try_init(|| who_am_i(&self.client))
            .await?;
        let policy = Api::<ValidatingAdmissionPolicy>::all(self.client.clone())
            .get_opt(NEVER_ADOPTS_POLICY)
            .await?;
        let binding = Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone())
            .get_opt(NEVER_ADOPTS_POLICY)
            .await?;
        Ok(match (policy, binding) {
            (Some(policy), Some(binding)) => {
                as_expected(
                    &serde_json::to_value(policy.spec).map_err(kube::Error::SerdeError)?,
                    identity,
                ) && binding.spec.is_some_and(|spec| {
                    spec.policy_name.as_deref() == Some(NEVER_ADOPTS_POLICY)
                        && spec.match_resources.is_none()
                        && spec.param_ref.is_none()
                        && spec
                            .validation_actions
                            .is_some_and(|actions| actions.iter().any(|a| a == "Deny"))
                })
            }
            _ => false,
        })
    }
}

/// Whether an installed policy's spec is the one this operator, authenticated as `identity`,
/// generates: same rules, same condition on who writes, same validation. Fields the API server
/// fills in with their defaults are compared as defaults.
pub fn as_expected(installed: &Value, identity: &str) -> bool {
    let expected = policies(identity)
        .into_iter()
        .find(|p| {
            p["kind"] == "ValidatingAdmissionPolicy" && p["metadata"]["name"] == NEVER_ADOPTS_POLICY
        })
        .expect("the never-adopts policy is generated");
    let spec = &expected["spec"];
    let rules = |constraints: &Value| -> Vec<Value> {
        constraints["resourceRules"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                serde_json::json!([
                    r["apiGroups"],
                    r["operations"],
                    r["resources"],
                    r.get("resourceNames")
                ])
            })
            .collect()
    };
    let selector_is_empty = |key: &str| {
        installed["matchConstraints"]
            .get(key)
            .is_none_or(|s| s.as_object().is_some_and(|o| o.is_empty()))
    };
    installed["failurePolicy"] == spec["failurePolicy"]
        && installed["matchConditions"] == spec["matchConditions"]
        && installed["variables"] == spec["variables"]
        && installed["validations"] == spec["validations"]
        && rules(&installed["matchConstraints"]) == rules(&spec["matchConstraints"])
        && selector_is_empty("namespaceSelector")
        && selector_is_empty("objectSelector")
        && installed["matchConstraints"]
            .get("excludeResourceRules")
            .is_none()
        && installed.get("paramKind").is_none()
}

/// The operator's user name, as the API server authenticated it.
async fn who_am_i(client: &Client) -> Result<String, kube::Error> {
    let review: SelfSubjectReview = Api::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    Ok(review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::DEFAULT_OPERATOR;

    fn generated() -> Value {
        policies(DEFAULT_OPERATOR)
            .into_iter()
            .find(|p| p["metadata"]["name"] == NEVER_ADOPTS_POLICY)
            .unwrap()["spec"]
            .clone()
    }

    #[test]
    fn the_policy_as_installed_with_the_api_servers_defaults_is_relied_on() {
        let mut installed = generated();
        installed["matchConstraints"]["matchPolicy"] = "Equivalent".into();
        installed["matchConstraints"]["namespaceSelector"] = serde_json::json!({});
        installed["matchConstraints"]["objectSelector"] = serde_json::json!({});
        for rule in installed["matchConstraints"]["resourceRules"]
            .as_array_mut()
            .unwrap()
        {
            rule["scope"] = "*".into();
        }
        assert!(as_expected(&installed, DEFAULT_OPERATOR));
    }

    #[test]
    fn a_policy_for_another_identity_or_narrowed_is_not() {
        assert!(!as_expected(
            &generated(),
            "system:serviceaccount:other:hygie"
        ));
        let mut fewer = generated();
        fewer["matchConstraints"]["resourceRules"]
            .as_array_mut()
            .unwrap()
            .pop();
        assert!(!as_expected(&fewer, DEFAULT_OPERATOR));
        let mut selected = generated();
        selected["matchConstraints"]["objectSelector"] =
            serde_json::json!({"matchLabels": {"checked": "yes"}});
        assert!(!as_expected(&selected, DEFAULT_OPERATOR));
        let mut warned = generated();
        warned["failurePolicy"] = "Ignore".into();
        assert!(!as_expected(&warned, DEFAULT_OPERATOR));
        let mut loosened = generated();
        loosened["validations"][0]["expression"] = "true".into();
        assert!(!as_expected(&loosened, DEFAULT_OPERATOR));
    }
}
