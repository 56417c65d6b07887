//! The walls around a workspace against whoever holds Kubernetes' usual rights in its namespace
//! (the `edit` and `admin` roles, a CI robot): they may not mount or copy a claim Hygie
//! manages, wear Hygie's labels, open a Hygie pod's network with a policy of their own
//! (policies are additive), or hand anybody rights in the namespace with a Role or RoleBinding
//! of their own (a binding of Kubernetes' `view` gives a workspace's logs, one of a member's
//! Role a way through the gateway). Who is trusted is the API server's answer, never a field: the
//! operator by its user name; the StatefulSet and Job controllers, which create pods only from
//! workloads these policies admitted; and the platform team, who holds the `administer` verb on
//! `hygie.io/workspaces` (RBAC accepts any verb; `cluster-admin` holds them all, `edit` and
//! `admin` do not).
//!
//! The claims and network policies read the claims Hygie manages in the namespace as their
//! parameters (selected by `app.kubernetes.io/managed-by: hygie`): the API server evaluates
//! them once per claim, so they hold in every namespace that has one and cost nothing in the
//! others.

use serde_json::{Value, json};

use super::labels;
use crate::build::labels::{
    COMPONENT, DATASET, EXPORT_REQUEST, INSTANCE, MANAGED_BY, MANAGER, WORKSPACE,
};

/// Name of the policy that keeps Hygie's claims Hygie's.
pub const CLAIMS_POLICY: &str = "hygie-claims-guarded";
/// Name of the policy that keeps Hygie's labels Hygie's.
pub const LABELS_POLICY: &str = "hygie-labels-guarded";
/// Name of the policy that keeps others' network policies off Hygie's pods.
pub const NETWORK_POLICY: &str = "hygie-network-guarded";
/// Name of the policy that keeps the rights in a namespace of Hygie's Hygie's to hand out.
pub const RIGHTS_POLICY: &str = "hygie-rights-guarded";
/// The verb of the platform team, whom the walls do not hold.
pub const ADMINISTER_VERB: &str = "administer";

/// Who creates pods from workloads: the StatefulSet and Job controllers under their own service
/// accounts, or the controller manager's identity when it runs without them.
const POD_CREATORS: [&str; 3] = [
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:kube-controller-manager",
];

/// The label keys a Hygie pod carries: Hygie's own and those its controllers add. A selector
/// that requires any other key selects no Hygie pod (and the labels policy keeps others from
/// adding keys to a Hygie pod).
const POD_LABEL_KEYS: [&str; 14] = [
    MANAGED_BY,
    INSTANCE,
    COMPONENT,
    WORKSPACE,
    DATASET,
    EXPORT_REQUEST,
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/job-completion-index",
    "controller-uid",
    "job-name",
];

pub(super) fn quoted(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", items.join(", "))
}

/// The workloads whose pod templates could mount a claim or wear labels, by API group.
const WORKLOADS: [(&str, &[&str]); 3] = [
    ("", &["pods", "replicationcontrollers"]),
    (
        "apps",
        &["deployments", "replicasets", "statefulsets", "daemonsets"],
    ),
    ("batch", &["jobs", "cronjobs"]),
];

fn workload_rules(operations: &[&str]) -> Vec<Value> {
    WORKLOADS
        .iter()
        .map(|(group, resources)| {
            json!({"apiGroups": [group], "apiVersions": ["*"], "operations": operations, "resources": resources})
        })
        .collect()
}

/// The variables every wall reads: the volumes and the labels of the pods a request makes (the
/// pod's own for a pod), whether it comes from the platform team, and whether it is a
/// controller creating or updating a pod.
fn common_variables() -> Vec<Value> {
    let of_template = |field: &str, empty: &str| {
        format!(
            "request.resource.resource == 'pods' ? object.{field}.orValue({empty}) \
             : request.resource.resource == 'cronjobs' ? object.spec.?jobTemplate.?spec.?template.{field}.orValue({empty}) \
             : object.spec.?template.{field}.orValue({empty})"
        )
    };
    vec![
        json!({"name": "volumes", "expression": of_template("?spec.?volumes", "[]")}),
        json!({"name": "podLabels", "expression": of_template("?metadata.?labels", "{}")}),
        platform(),
        json!({"name": "controller", "expression": format!(
            "request.resource.resource == 'pods' && request.userInfo.username in {}",
            quoted(&POD_CREATORS)
        )}),
    ]
}

/// Whether the request comes from the platform team: the API server's answer to whether its
/// author holds the `administer` verb on workspaces in the namespace.
pub(super) fn platform() -> Value {
    json!({"name": "platform", "expression": format!(
        "authorizer.group('hygie.io').resource('workspaces').namespace(request.namespace).check('{ADMINISTER_VERB}').allowed()"
    )})
}

fn by_anyone_but_the_operator(operator: &str) -> Value {
    json!([{"name": "not-the-operator", "expression": format!("request.userInfo.username != '{operator}'")}])
}

pub(super) fn binding(name: &str, params: bool) -> Value {
    let mut spec = json!({"policyName": name, "validationActions": ["Deny"]});
    if params {
        spec["paramRef"] = json!({
            "selector": {"matchLabels": {MANAGED_BY: MANAGER}},
            "parameterNotFoundAction": "Allow",
        });
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": labels()},
        "spec": spec,
    })
}

/// A claim Hygie manages is mounted by Hygie's workloads only, and copied by the operator only:
/// no pod or workload of anybody else's mounts it, no claim clones it, no snapshot takes it.
pub fn claims_stay_hygies(operator: &str) -> (Value, Value) {
    // A pod's volumes never change once it is created; a workload's template does.
    let mut rules = workload_rules(&["CREATE", "UPDATE"]);
    rules[0]["resources"] = json!(["replicationcontrollers"]);
    rules.push(json!({"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["pods"]}));
    rules.push(json!({"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["persistentvolumeclaims"]}));
    rules.push(json!({"apiGroups": ["snapshot.storage.k8s.io"], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["volumesnapshots"]}));
    let mut variables = vec![json!({"name": "claim", "expression": "params.metadata.name"})];
    variables.extend(common_variables());
    variables.push(json!({"name": "takes", "expression":
        "request.resource.resource == 'persistentvolumeclaims' \
           ? ((object.spec.?dataSource.?kind.orValue('') == 'PersistentVolumeClaim' && object.spec.?dataSource.?name.orValue('') == variables.claim) \
              || (object.spec.?dataSourceRef.?kind.orValue('') == 'PersistentVolumeClaim' && object.spec.?dataSourceRef.?name.orValue('') == variables.claim)) \
         : request.resource.resource == 'volumesnapshots' \
           ? object.spec.?source.?persistentVolumeClaimName.orValue('') == variables.claim \
         : variables.volumes.exists(v, v.?persistentVolumeClaim.?claimName.orValue('') == variables.claim)"}));
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": CLAIMS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "PersistentVolumeClaim"},
            "matchConstraints": {"resourceRules": rules},
            "matchConditions": by_anyone_but_the_operator(operator),
            "variables": variables,
            "validations": [{
                "expression": "!variables.takes || variables.controller || variables.platform",
                "messageExpression": "request.kind.kind + ' ' + request.namespace + '/' + object.metadata.name + ': ' + variables.claim + ' is a claim Hygie manages: only Hygie\\'s own workloads mount it, and only Hygie copies it'",
                "reason": "Forbidden",
            }],
        },
    });
    (policy, binding(CLAIMS_POLICY, true))
}

/// Hygie's labels are Hygie's: a workload wearing `app.kubernetes.io/managed-by: hygie` (or
/// whose pods would) is the operator's, a pod wearing it its controllers', so that nobody
/// inherits an import's or a release's egress or becomes a workspace Service's backend. Nobody
/// else changes the labels or the spec of what wears them (no label a foreign policy could
/// select, no other image, no ephemeral container).
pub fn labels_stay_hygies(operator: &str) -> (Value, Value) {
    let mut rules = workload_rules(&["CREATE", "UPDATE"]);
    // `kubectl debug`: an ephemeral container in a Hygie pod would run whatever it likes there.
    rules.push(json!({"apiGroups": [""], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["pods/ephemeralcontainers"]}));
    let mut variables = common_variables();
    variables.push(json!({"name": "wears", "expression": format!(
        "object.metadata.?labels.orValue({{}})[?'{MANAGED_BY}'].orValue('') == '{MANAGER}' \
         || variables.podLabels[?'{MANAGED_BY}'].orValue('') == '{MANAGER}'"
    )}));
    // An update that changes neither labels nor spec (finalizers, owner references, annotations
    // written by the garbage collector or a controller) changes nothing the walls guard.
    variables.push(json!({"name": "unchanged", "expression":
        "request.operation == 'UPDATE' && object.spec == oldObject.spec \
         && object.metadata.?labels.orValue({}) == oldObject.metadata.?labels.orValue({})"}));
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": LABELS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            "matchConditions": by_anyone_but_the_operator(operator),
            "variables": variables,
            "validations": [{
                "expression": "!variables.wears || variables.unchanged || variables.controller || variables.platform",
                "messageExpression": format!("request.kind.kind + ' ' + request.namespace + '/' + object.metadata.name + ': {MANAGED_BY}: {MANAGER} is worn by Hygie\\'s objects only, and their labels and spec are Hygie\\'s to change'"),
                "reason": "Forbidden",
            }],
        },
    });
    (policy, binding(LABELS_POLICY, false))
}

/// Network policies are additive: one that selects a Hygie pod and allows anything would open
/// what Hygie's deny-all closes. In a namespace that holds a Hygie claim, a policy of anybody
/// but the operator that allows ingress or egress must select no Hygie pod: it requires a label
/// key Hygie pods never carry, or excludes `app.kubernetes.io/managed-by: hygie`. Deny-only
/// policies, which cannot widen anything, stay allowed.
pub fn network_stays_closed(operator: &str) -> (Value, Value) {
    let keys = quoted(&POD_LABEL_KEYS);
    let excludes = format!(
        "object.spec.podSelector.?matchLabels.orValue({{}}).exists(k, !(k in {keys}) || (k == '{MANAGED_BY}' && object.spec.podSelector.matchLabels[k] != '{MANAGER}')) \
         || object.spec.podSelector.?matchExpressions.orValue([]).exists(e, \
              (e.operator in ['In', 'Exists'] && !(e.key in {keys})) \
              || (e.key == '{MANAGED_BY}' && ((e.operator == 'In' && !('{MANAGER}' in e.values)) || (e.operator == 'NotIn' && '{MANAGER}' in e.values) || e.operator == 'DoesNotExist')))"
    );
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NETWORK_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "PersistentVolumeClaim"},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["networking.k8s.io"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["networkpolicies"],
            }]},
            "matchConditions": by_anyone_but_the_operator(operator),
            "variables": [
                {"name": "allows", "expression": "size(object.spec.?ingress.orValue([])) > 0 || size(object.spec.?egress.orValue([])) > 0"},
                {"name": "excludes", "expression": excludes},
                platform(),
            ],
            "validations": [{
                "expression": "!variables.allows || variables.excludes || variables.platform",
                "messageExpression": format!("'NetworkPolicy ' + request.namespace + '/' + object.metadata.name + ': it allows traffic and could select Hygie\\'s pods, whose network Hygie alone opens; select your own pods by a label of theirs, or exclude {MANAGED_BY}: {MANAGER}'"),
                "reason": "Forbidden",
            }],
        },
    });
    (policy, binding(NETWORK_POLICY, true))
}

/// The core resources whose rights reach a workspace's data, by RBAC's own spelling: its pods
/// (logs, exec, attach, port-forward, proxy, ephemeral containers, the termination message),
/// service proxies, claims and Secrets (the volumes' passphrases).
const GUARDED_CORE_RESOURCES: [&str; 5] = [
    "pods",
    "services/proxy",
    "services/*",
    "persistentvolumeclaims",
    "secrets",
];

/// In a namespace that holds a claim Hygie manages, rights are Hygie's to hand out (its
/// members' Roles) and the platform team's: nobody else writes a RoleBinding there, since a
/// binding's ClusterRole cannot be read at admission and Kubernetes' `view` alone gives every
/// pod's logs, while a binding of a member's Role lets its subjects through the gateway. And
/// nobody else writes a Role granting anything on pods, their subresources, service proxies,
/// claims, Secrets or `hygie.io` objects, so that a binding made before Hygie came, which
/// names a Role not yet written, stays empty. Roles for anything else stay allowed.
pub fn rights_stay_hygies(operator: &str) -> (Value, Value) {
    let guarded = quoted(&GUARDED_CORE_RESOURCES);
    let grants = format!(
        "object.?rules.orValue([]).exists(r, size(r.?verbs.orValue([])) > 0 && ( \
           r.?apiGroups.orValue([]).exists(g, g == '*' || g == 'hygie.io') \
           || (r.?apiGroups.orValue([]).exists(g, g == '') \
               && r.?resources.orValue([]).exists(x, x == '*' || x in {guarded} \
                    || x.startsWith('pods/') || x.startsWith('persistentvolumeclaims/') \
                    || x.startsWith('secrets/') || x.startsWith('*/')))))"
    );
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": RIGHTS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "PersistentVolumeClaim"},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["roles", "rolebindings"],
            }]},
            "matchConditions": by_anyone_but_the_operator(operator),
            "variables": [
                platform(),
                // A binding's role is immutable; what an update can change is who it binds.
                {"name": "rebinds", "expression": "request.operation == 'CREATE' || object.?subjects.orValue([]) != oldObject.?subjects.orValue([])"},
            ],
            "validations": [
                {
                    "expression": format!("request.resource.resource != 'roles' || variables.platform || !({grants})"),
                    "messageExpression": "'Role ' + request.namespace + '/' + object.metadata.name + ': in a namespace of Hygie\\'s, rights on pods (their logs, exec, port-forward, proxies), service proxies, claims, Secrets and hygie.io objects are granted by Hygie to its members and by the platform team only'",
                    "reason": "Forbidden",
                },
                {
                    "expression": "request.resource.resource != 'rolebindings' || variables.platform || !variables.rebinds",
                    "messageExpression": "'RoleBinding ' + request.namespace + '/' + object.metadata.name + ': in a namespace of Hygie\\'s, rights are bound by Hygie to its members and by the platform team only: a binding of Kubernetes\\' view gives every pod\\'s logs, one of a member\\'s Role a way through the gateway'",
                    "reason": "Forbidden",
                },
            ],
        },
    });
    (policy, binding(RIGHTS_POLICY, true))
}
