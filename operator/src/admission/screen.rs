//! Health data is seen through a screen: nobody but the platform team opens a shell in, attaches
//! to, forwards a port of, or proxies to the pod of a workspace that is not reached directly, or
//! to an export's review pod, whatever Role they hold (a namespace's `edit` and `admin` roles
//! hold all of these). The API server asks admission about every such connection (a `CONNECT`
//! on the subresource), so the policy holds whatever RBAC grants; logs and reads of the pod are
//! requests RBAC alone decides, which is why the operator never grants them for such a
//! workspace (the grants policy refuses it).
//!
//! The policy reads every Workspace of the namespace as its parameters: the API server
//! evaluates it once per workspace and refuses if any refuses, and a namespace with no
//! workspace is left alone. Until the Workspace kind is served (CRDs applied with the policies,
//! or removed), it cannot read them, and refuses every connection it matches: it fails closed.

use serde_json::{Value, json};

use super::{labels, walls};
use crate::build::{
    DIRECT_RESOURCES, REVIEW_SUFFIX,
    labels::{MANAGED_BY, MANAGER},
};

/// Name of the policy that keeps health data behind the screen.
pub const SCREEN_ONLY_POLICY: &str = "hygie-screen-only";
/// Name of the policy that keeps the operator from granting a right behind the screen.
pub const SCREEN_GRANTS_POLICY: &str = "hygie-operator-grants-screened";

/// The connections to a pod or a Service that reach its data without a screen.
const CONNECTIONS: [&str; 5] = [
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/proxy",
    "services/proxy",
];

/// Whether `param`, a Workspace, is reached directly: its status records `Direct`, every dataset
/// it mounts is in its lineage (one not recorded yet counts as a screen), and every dataset of
/// its lineage allowed it. Read by this policy and the one on the operator's grants.
pub fn reached_directly(param: &str) -> String {
    format!(
        "{param}.?status.?access.orValue('Screen') == 'Direct' \
         && {param}.spec.?datasets.orValue([]).all(d, {param}.?status.?lineage.orValue([]).exists(l, l.name == d.name)) \
         && {param}.?status.?lineage.orValue([]).all(l, l.?access.orValue('Screen') == 'Direct')"
    )
}

/// Refuses every connection behind the screen but the platform team's.
pub fn screen_only() -> (Value, Value) {
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": SCREEN_ONLY_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace"},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["*"],
                "operations": ["CONNECT"], "resources": CONNECTIONS,
            }]},
            "variables": [
                // A proxied name may carry a scheme and a port: `https:study:8888`.
                {"name": "names", "expression": "request.name.split(':')"},
                {"name": "workspace", "expression": "variables.names.exists(n, n == params.metadata.name + '-0' || n == params.metadata.name)"},
                {"name": "review", "expression": format!("variables.names.exists(n, n.endsWith('{REVIEW_SUFFIX}-0'))")},
                {"name": "direct", "expression": reached_directly("params")},
                walls::platform(),
            ],
            "validations": [
                {
                    "expression": "variables.platform || !variables.review",
                    "messageExpression": "request.resource.resource + '/' + request.subResource + ' ' + request.namespace + '/' + request.name + ': an export\\'s review pod is seen through the gateway\\'s screen only, by reviewers who count: `hygie connect --review` opens it'",
                    "reason": "Forbidden",
                },
                {
                    "expression": "variables.platform || !variables.workspace || variables.direct",
                    "messageExpression": "request.resource.resource + '/' + request.subResource + ' ' + request.namespace + '/' + request.name + ': workspace ' + params.metadata.name + ' holds data seen through a screen only; its members reach it with `hygie connect ' + params.metadata.name + '`'",
                    "reason": "Forbidden",
                },
            ],
        },
    });
    let mut binding = walls::binding(SCREEN_ONLY_POLICY, true);
    binding["spec"]["paramRef"] = json!({"selector": {}, "parameterNotFoundAction": "Allow"});
    (policy, binding)
}

/// The operator grants no right to the pod or the Service of a workspace that is not reached
/// directly, and none to a review pod, whatever its builders say: logs and reads of a pod are
/// decided by RBAC alone, which the screen-only policy cannot see.
pub fn operator_grants_nothing_behind_the_screen(operator: &str) -> (Value, Value) {
    let screened = format!(
        "object.rules.all(r, !r.resources.exists(x, x in {direct}) \
         || r.?resourceNames.orValue([]).all(n, !n.endsWith('{REVIEW_SUFFIX}-0') \
              && (variables.direct || (n != params.metadata.name + '-0' && n != params.metadata.name))))",
        direct = walls::quoted(&DIRECT_RESOURCES),
    );
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": SCREEN_GRANTS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace"},
            // Hygie's Roles only (the grants policy requires the label on every Role the operator
            // writes): while the Workspace kind is not served yet (CRDs and policies applied
            // together), the policy cannot read its parameters and refuses what it matches.
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["roles"],
                }],
                "objectSelector": {"matchLabels": {MANAGED_BY: MANAGER}},
            },
            "matchConditions": [{
                "name": "by-the-operator",
                "expression": format!("request.userInfo.username == '{operator}'"),
            }],
            "variables": [{"name": "direct", "expression": reached_directly("params")}],
            "validations": [{
                "expression": format!("!has(object.rules) || ({screened})"),
                "messageExpression": "'Role ' + object.metadata.namespace + '/' + object.metadata.name + ': workspace ' + params.metadata.name + ' is seen through a screen only (its status does not record Direct access): no right to its pod, its logs or its Service, and none to a review pod'",
                "reason": "Forbidden",
            }],
        },
    });
    let mut binding = walls::binding(SCREEN_GRANTS_POLICY, true);
    binding["spec"]["paramRef"] = json!({"selector": {}, "parameterNotFoundAction": "Allow"});
    (policy, binding)
}
