//! A Session names who opened it as the API server authenticated them: its `user` is the
//! request's user and its `groups` exactly their groups (but the `system:` ones every user
//! has), so the gateway's question to the API server ("may this user connect?") is about the
//! person who asked, never a name somebody typed.

use serde_json::{Value, json};

use super::labels;

/// Name of the policy that ties a session to who opened it.
pub const SESSION_IDENTITY_POLICY: &str = "hygie-session-identity";

pub fn sessions_name_who_authenticated() -> (Value, Value) {
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": SESSION_IDENTITY_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["hygie.io"], "apiVersions": ["*"],
                "operations": ["CREATE"], "resources": ["sessions"],
            }]},
            "variables": [
                {"name": "groups", "expression": "request.userInfo.?groups.orValue([]).filter(g, !g.startsWith('system:'))"},
                {"name": "declared", "expression": "object.spec.?groups.orValue([])"},
            ],
            "validations": [
                {
                    "expression": "object.spec.user == request.userInfo.username",
                    "messageExpression": "'Session ' + request.namespace + '/' + object.metadata.name + ': spec.user must be the user opening it, ' + request.userInfo.username + ', not ' + object.spec.user",
                    "reason": "Forbidden",
                },
                {
                    "expression": "variables.declared.all(g, g in variables.groups) && variables.groups.all(g, g in variables.declared)",
                    "messageExpression": "'Session ' + request.namespace + '/' + object.metadata.name + ': spec.groups must be exactly your groups as the API server knows them: [' + variables.groups.join(', ') + ']'",
                    "reason": "Forbidden",
                },
            ],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": SESSION_IDENTITY_POLICY, "labels": labels()},
        "spec": {"policyName": SESSION_IDENTITY_POLICY, "validationActions": ["Deny"]},
    });
    (policy, binding)
}
