//! Admission policies the API server enforces on Hygie's kinds, with identities it
//! authenticated itself (`request.userInfo`), not names somebody typed. They are
//! ValidatingAdmissionPolicies (GA in every Kubernetes Hygie supports): no webhook to run,
//! nothing to bypass by stopping the operator.

use kube::CustomResourceExt;
use serde_json::{Value, json};

use crate::api::Workspace;

/// Name of the policy that limits what workspace members may change.
pub const MEMBERS_POLICY: &str = "hygie-workspace-members";

/// The policies and their bindings, in the order they are applied.
pub fn policies() -> Vec<Value> {
    let (policy, binding) = members_may_only_suspend();
    vec![policy, binding]
}

/// A member of a workspace (by user name or by one of their groups) may update it, but change
/// nothing of its spec other than `suspend`: the datasets it mounts, who else is a member, its
/// egress, image and dates are the platform team's to decide.
fn members_may_only_suspend() -> (Value, Value) {
    let unchanged: Vec<String> = spec_fields()
        .into_iter()
        .filter(|field| field != "suspend")
        .map(|field| {
            format!(
                "(has(object.spec.{field}) == has(oldObject.spec.{field}) && (!has(object.spec.{field}) || object.spec.{field} == oldObject.spec.{field}))"
            )
        })
        .collect();
    let member = "has(oldObject.spec.members) && oldObject.spec.members.exists(m, \
        (m.kind == 'User' && m.name == request.userInfo.username) || \
        (m.kind == 'Group' && has(request.userInfo.groups) && m.name in request.userInfo.groups))";
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": MEMBERS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["hygie.io"],
                "apiVersions": ["*"],
                "operations": ["UPDATE"],
                "resources": ["workspaces"],
            }]},
            "variables": [{"name": "member", "expression": member}],
            "validations": [{
                "expression": format!("!variables.member || ({})", unchanged.join(" && ")),
                "messageExpression": "'Workspace ' + object.metadata.namespace + '/' + object.metadata.name + ': ' + request.userInfo.username + ' is a member of this workspace and may change only spec.suspend; any other change is the platform team\\'s'",
                "reason": "Forbidden",
            }],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": MEMBERS_POLICY, "labels": labels()},
        "spec": {"policyName": MEMBERS_POLICY, "validationActions": ["Deny"]},
    });
    (policy, binding)
}

/// The fields of a Workspace's spec, from its CRD schema: a field added later is protected
/// without anyone remembering to list it.
fn spec_fields() -> Vec<String> {
    let crd = serde_json::to_value(Workspace::crd()).expect("a CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        .as_object()
        .expect("the Workspace spec has properties")
        .keys()
        .cloned()
        .collect()
}

fn labels() -> Value {
    json!({"app.kubernetes.io/part-of": "hygie"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_field_but_suspend_is_frozen_for_members() {
        let expression = policies()[0]["spec"]["validations"][0]["expression"]
            .as_str()
            .unwrap()
            .to_owned();
        for field in spec_fields() {
            let frozen = expression.contains(&format!("object.spec.{field} == oldObject"));
            assert_eq!(frozen, field != "suspend", "{field}");
        }
        for field in ["datasets", "members", "egress", "image", "expiresAt"] {
            assert!(spec_fields().contains(&field.to_owned()), "{field}");
        }
    }

    #[test]
    fn membership_is_read_from_the_authenticated_request() {
        let member = policies()[0]["spec"]["variables"][0]["expression"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(member.contains("request.userInfo.username"));
        assert!(member.contains("request.userInfo.groups"));
        assert!(
            member.contains("oldObject.spec.members"),
            "not the new list"
        );
    }
}
