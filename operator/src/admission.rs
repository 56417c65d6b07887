//! Admission policies the API server enforces on Hygie's kinds, with identities it
//! authenticated itself (`request.userInfo`), not names somebody typed. They are
//! ValidatingAdmissionPolicies (GA in every Kubernetes Hygie supports): no webhook to run,
//! nothing to bypass by stopping the operator.

mod screen;
mod sessions;
mod walls;

use kube::CustomResourceExt;
use serde_json::{Value, json};

pub use screen::{SCREEN_GRANTS_POLICY, SCREEN_ONLY_POLICY};
pub use sessions::SESSION_IDENTITY_POLICY;
pub use walls::{ADMINISTER_VERB, CLAIMS_POLICY, LABELS_POLICY, NETWORK_POLICY, RIGHTS_POLICY};

use walls::quoted;

use crate::{
    api::Workspace,
    build::{
        CONNECT_VERB, DIRECT_RESOURCES,
        labels::{MANAGED_BY, MANAGER, OWNER_UID},
    },
};

/// Name of the policy that limits what workspace members may change.
pub const MEMBERS_POLICY: &str = "hygie-workspace-members";
/// Name of the policy that limits the access the operator may grant.
pub const GRANTS_POLICY: &str = "hygie-operator-grants";
/// Name of the policy that ties an export's requester and reviewers to who authenticated.
pub const EXPORT_IDENTITY_POLICY: &str = "hygie-export-identity";
/// Name of the policy that binds a review to the live request, in review, and its staged bytes.
pub const REVIEW_BINDING_POLICY: &str = "hygie-export-review-binding";
/// Name of the policy that keeps the record of a request once it is approved.
pub const EXPORT_RECORDS_POLICY: &str = "hygie-export-records";
/// The verb, on `exportrequests`, that lets the platform team delete a request once it is past
/// review (RBAC accepts any verb; `cluster-admin` holds them all).
pub const PURGE_VERB: &str = "purge";
/// The phases in which a researcher may still withdraw a request by deleting it.
const WITHDRAWABLE_PHASES: [&str; 3] = ["Submitted", "Staging", "InReview"];
/// Who deletes what a deleted namespace held: the namespace controller, under its own service
/// account or the controller manager's identity.
const NAMESPACE_CONTROLLERS: [&str; 2] = [
    "system:serviceaccount:kube-system:namespace-controller",
    "system:kube-controller-manager",
];

/// Name of the policy that keeps the operator from writing to an object it did not create.
pub const NEVER_ADOPTS_POLICY: &str = "hygie-operator-never-adopts";

/// The end of the never-adopts policy's refusal, by which the operator recognises it.
pub const NOT_ADOPTED: &str = "Hygie never takes over an object it did not create";

/// The operator's identity when installed as the chart installs it by default.
pub const DEFAULT_OPERATOR: &str = "system:serviceaccount:hygie-system:hygie";

/// What the operator may grant workspace members and reviewers, and nothing more: these
/// resources (and the direct ones, of a workspace reached directly), these verbs, always
/// limited by resource name.
const GRANTABLE_GROUPS: [&str; 2] = ["", "hygie.io"];
const GRANTABLE_RESOURCES: [&str; 2] = ["workspaces", "exportrequests"];
const GRANTABLE_VERBS: [&str; 5] = ["get", "create", "update", "patch", CONNECT_VERB];

/// The policies and their bindings, in the order they are applied, for an operator
/// authenticated as `operator` (a user name, or a Helm expression in the chart).
pub fn policies(operator: &str) -> Vec<Value> {
    let (members, members_binding) = members_may_only_suspend();
    let (grants, grants_binding) = operator_grants_only_member_access(operator);
    let (identity, identity_binding) = exports_name_who_authenticated();
    let (adoption, adoption_binding) = operator_never_adopts(operator);
    let (reviews, reviews_binding) = reviews_bound_to_the_request();
    let (records, records_binding) = records_kept_once_approved();
    let (claims, claims_binding) = walls::claims_stay_hygies(operator);
    let (labelled, labelled_binding) = walls::labels_stay_hygies(operator);
    let (network, network_binding) = walls::network_stays_closed(operator);
    let (rights, rights_binding) = walls::rights_stay_hygies(operator);
    let (sessions, sessions_binding) = sessions::sessions_name_who_authenticated();
    let (screen, screen_binding) = screen::screen_only();
    let (screened, screened_binding) = screen::operator_grants_nothing_behind_the_screen(operator);
    vec![
        members,
        members_binding,
        grants,
        grants_binding,
        identity,
        identity_binding,
        adoption,
        adoption_binding,
        reviews,
        reviews_binding,
        records,
        records_binding,
        claims,
        claims_binding,
        labelled,
        labelled_binding,
        network,
        network_binding,
        rights,
        rights_binding,
        sessions,
        sessions_binding,
        screen,
        screen_binding,
        screened,
        screened_binding,
    ]
}

/// A review is a decision on one request and on the bytes it staged: the API server admits it
/// only while that request (its UID, not only its name) is in review, with the digest of what
/// it staged, and owned by it. A review of a request deleted and submitted again under the same
/// name, one made before the files were staged, or one on other bytes is refused; the operator
/// counts none of them either. The policy reads every ExportRequest of the review's namespace
/// as a parameter (the API server evaluates it once per request and refuses if any refuses), so
/// it holds without the operator; a review naming no live request passes here and never counts.
fn reviews_bound_to_the_request() -> (Value, Value) {
    let phase =
        "has(params.status) && has(params.status.phase) ? params.status.phase : 'Submitted'";
    let digest =
        "has(params.status) && has(params.status.stagedDigest) ? params.status.stagedDigest : ''";
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": REVIEW_BINDING_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "hygie.io/v1alpha1", "kind": "ExportRequest"},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["hygie.io"],
                "apiVersions": ["*"],
                "operations": ["CREATE"],
                "resources": ["exportreviews"],
            }]},
            "variables": [
                {"name": "reviewed", "expression": "params.metadata.name == object.spec.request"},
                {"name": "phase", "expression": phase},
                {"name": "digest", "expression": digest},
            ],
            "validations": [
                {
                    "expression": "!variables.reviewed || params.metadata.uid == object.spec.requestUID",
                    "messageExpression": "'ExportReview ' + object.metadata.namespace + '/' + object.metadata.name + ': spec.requestUID ' + object.spec.requestUID + ' is not the UID of ExportRequest ' + params.metadata.name + ' (' + params.metadata.uid + '): a review decides on one request, not on another of the same name'",
                    "reason": "Forbidden",
                },
                {
                    "expression": "!variables.reviewed || variables.phase == 'InReview'",
                    "messageExpression": "'ExportReview ' + object.metadata.namespace + '/' + object.metadata.name + ': ExportRequest ' + params.metadata.name + ' is ' + variables.phase + ', not InReview: a decision is recorded once its files are staged, on them'",
                    "reason": "Forbidden",
                },
                {
                    "expression": "!variables.reviewed || variables.digest == object.spec.stagedDigest",
                    "messageExpression": "'ExportReview ' + object.metadata.namespace + '/' + object.metadata.name + ': spec.stagedDigest is not the digest of what ExportRequest ' + params.metadata.name + ' staged (' + variables.digest + '): a review decides on the bytes it saw'",
                    "reason": "Forbidden",
                },
                {
                    "expression": "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, r.kind == 'ExportRequest' && r.name == object.spec.request && r.uid == object.spec.requestUID)",
                    "messageExpression": "'ExportReview ' + object.metadata.namespace + '/' + object.metadata.name + ': it must be owned by the ExportRequest it reviews (an ownerReference to ' + object.spec.request + ' with UID spec.requestUID), so that it goes with it'",
                    "reason": "Forbidden",
                },
            ],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": REVIEW_BINDING_POLICY, "labels": labels()},
        "spec": {
            "policyName": REVIEW_BINDING_POLICY,
            "validationActions": ["Deny"],
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Deny"},
        },
    });
    (policy, binding)
}

/// A researcher withdraws a request by deleting it, but only before it is approved: from then
/// on its object is the record of what left, and deleting it takes the `purge` verb on
/// `exportrequests`, which the platform team holds and researchers do not. The namespace
/// controller still empties a namespace being deleted.
fn records_kept_once_approved() -> (Value, Value) {
    let withdrawable: Vec<String> = WITHDRAWABLE_PHASES
        .iter()
        .map(|p| format!("'{p}'"))
        .collect();
    let controllers: Vec<String> = NAMESPACE_CONTROLLERS
        .iter()
        .map(|c| format!("'{c}'"))
        .collect();
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": EXPORT_RECORDS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["hygie.io"],
                "apiVersions": ["*"],
                "operations": ["DELETE"],
                "resources": ["exportrequests"],
            }]},
            "matchConditions": [{
                "name": "not-the-namespace-controller",
                "expression": format!("!(request.userInfo.username in [{}])", controllers.join(", ")),
            }],
            "variables": [{
                "name": "phase",
                "expression": "has(oldObject.status) && has(oldObject.status.phase) ? oldObject.status.phase : 'Submitted'",
            }],
            "validations": [{
                "expression": format!(
                    "variables.phase in [{}] || authorizer.group('hygie.io').resource('exportrequests').namespace(oldObject.metadata.namespace).name(oldObject.metadata.name).check('{PURGE_VERB}').allowed()",
                    withdrawable.join(", ")
                ),
                "messageExpression": format!("'ExportRequest ' + oldObject.metadata.namespace + '/' + oldObject.metadata.name + ' is ' + variables.phase + ': a request is withdrawn only before it is approved; from then on it is the record of the export, and deleting it takes the {PURGE_VERB} verb on exportrequests (the platform team)'"),
                "reason": "Forbidden",
            }],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": EXPORT_RECORDS_POLICY, "labels": labels()},
        "spec": {"policyName": EXPORT_RECORDS_POLICY, "validationActions": ["Deny"]},
    });
    (policy, binding)
}

/// The kinds of children the operator creates, by API group and resource.
const CHILD_RESOURCES: [(&str, &[&str]); 5] = [
    (
        "",
        &[
            "persistentvolumeclaims",
            "secrets",
            "serviceaccounts",
            "services",
        ],
    ),
    ("apps", &["statefulsets"]),
    ("batch", &["jobs"]),
    ("networking.k8s.io", &["networkpolicies"]),
    ("rbac.authorization.k8s.io", &["roles", "rolebindings"]),
];

/// Server-side apply creates an object that does not exist and patches one that does: applied
/// to an object of the same name that somebody else made (a NetworkPolicy with rules of its
/// own, a claim holding other data), it would take it over, and whatever it held that Hygie
/// does not set would stay. The API server refuses the operator any update of an object that
/// is not marked as the same owner's child (its `hygie.io/owner-uid` annotation, or, for
/// objects made before the annotation, its controller reference) before anything is written,
/// so the operator applies a new child in one request, without reading its name first.
fn operator_never_adopts(operator: &str) -> (Value, Value) {
    let rules: Vec<Value> = CHILD_RESOURCES
        .iter()
        .map(|(group, resources)| {
            json!({
                "apiGroups": [group],
                "apiVersions": ["*"],
                "operations": ["UPDATE"],
                "resources": resources,
            })
        })
        .collect();
    let annotation = format!("'{OWNER_UID}'");
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NEVER_ADOPTS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            "matchConditions": [{
                "name": "by-the-operator",
                "expression": format!("request.userInfo.username == '{operator}'"),
            }],
            "variables": [{
                "name": "owner",
                "expression": format!("has(object.metadata.annotations) && {annotation} in object.metadata.annotations ? object.metadata.annotations[{annotation}] : ''"),
            }],
            "validations": [{
                "expression": format!(
                    "variables.owner != '' && (has(oldObject.metadata.annotations) && {annotation} in oldObject.metadata.annotations \
                     ? oldObject.metadata.annotations[{annotation}] == variables.owner \
                     : has(oldObject.metadata.ownerReferences) && oldObject.metadata.ownerReferences.exists(r, \
                     has(r.controller) && r.controller && r.uid == variables.owner))"
                ),
                "messageExpression": format!("request.kind.kind + ' ' + object.metadata.namespace + '/' + object.metadata.name + ' exists and was not created by Hygie for this owner: {NOT_ADOPTED}'"),
                "reason": "Forbidden",
            }],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NEVER_ADOPTS_POLICY, "labels": labels()},
        "spec": {"policyName": NEVER_ADOPTS_POLICY, "validationActions": ["Deny"]},
    });
    (policy, binding)
}

/// The airlock's names are the API server's: an ExportRequest's `requester` and an
/// ExportReview's `reviewer` are the user who creates it, a request's `requesterGroups` some of
/// that user's groups, a review's `reviewerGroups` exactly them (but the `system:` ones every
/// user has), and neither object changes afterwards. The operator decides by these fields, so
/// nobody can request or review in another's name, claim a group they are not in (to pass as a
/// member, or as a reviewer), or leave out a group that makes them a member of the workspace.
fn exports_name_who_authenticated() -> (Value, Value) {
    let created = |resource: &str| {
        format!("request.operation != 'CREATE' || request.resource.resource != '{resource}'")
    };
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": EXPORT_IDENTITY_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["hygie.io"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["exportrequests", "exportreviews"],
            }]},
            "variables": [
                {"name": "groups", "expression": "has(request.userInfo.groups) ? request.userInfo.groups.filter(g, !g.startsWith('system:')) : []"},
                {"name": "declared", "expression": "request.resource.resource == 'exportreviews' && has(object.spec.reviewerGroups) ? object.spec.reviewerGroups : []"},
                {"name": "claimed", "expression": "request.resource.resource == 'exportrequests' && has(object.spec.requesterGroups) ? object.spec.requesterGroups : []"},
            ],
            "validations": [
                {
                    "expression": format!("{} || object.spec.requester == request.userInfo.username", created("exportrequests")),
                    "messageExpression": "'ExportRequest ' + object.metadata.namespace + '/' + object.metadata.name + ': spec.requester must be the user submitting it, ' + request.userInfo.username + ', not ' + object.spec.requester",
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("{} || variables.claimed.all(g, g in variables.groups)", created("exportrequests")),
                    "messageExpression": "'ExportRequest ' + object.metadata.namespace + '/' + object.metadata.name + ': spec.requesterGroups may only name your groups as the API server knows them: [' + variables.groups.join(', ') + ']'",
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("{} || object.spec.reviewer == request.userInfo.username", created("exportreviews")),
                    "messageExpression": "'ExportReview ' + object.metadata.namespace + '/' + object.metadata.name + ': spec.reviewer must be the user reviewing, ' + request.userInfo.username + ', not ' + object.spec.reviewer",
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("{} || (variables.declared.all(g, g in variables.groups) && variables.groups.all(g, g in variables.declared))", created("exportreviews")),
                    "messageExpression": "'ExportReview ' + object.metadata.namespace + '/' + object.metadata.name + ': spec.reviewerGroups must be exactly your groups as the API server knows them: [' + variables.groups.join(', ') + ']'",
                    "reason": "Forbidden",
                },
                {
                    "expression": "request.operation != 'UPDATE' || object.spec == oldObject.spec",
                    "messageExpression": "request.kind.kind + ' ' + object.metadata.namespace + '/' + object.metadata.name + ': its spec cannot change once created; delete it and create another'",
                    "reason": "Forbidden",
                },
            ],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": EXPORT_IDENTITY_POLICY, "labels": labels()},
        "spec": {"policyName": EXPORT_IDENTITY_POLICY, "validationActions": ["Deny"]},
    });
    (policy, binding)
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

/// The operator holds `escalate` and `bind` on Roles instead of the members' rights themselves
/// (it never execs into a pod, it lets members do so): the API server then holds it to Roles of
/// the members' shape, every rule limited by resource name to the grantable resources and
/// verbs, and to RoleBindings of such a Role, of its own name, to people and groups.
fn operator_grants_only_member_access(operator: &str) -> (Value, Value) {
    let role = format!(
        "object.metadata.?labels.orValue({{}})[?'{managed_by}'].orValue('') == '{manager}' \
         && has(object.rules) && object.rules.all(r, {session} || has(r.resourceNames) && size(r.resourceNames) > 0 \
         && r.apiGroups.all(g, g in {groups}) && r.resources.all(x, x in {resources} || x in {direct}) \
         && r.verbs.all(v, v in {verbs}))",
        managed_by = MANAGED_BY,
        manager = MANAGER,
        session = "(r.apiGroups == ['hygie.io'] && r.resources == ['sessions'] && r.verbs == ['create'] && !has(r.resourceNames))",
        groups = quoted(&GRANTABLE_GROUPS),
        resources = quoted(&GRANTABLE_RESOURCES),
        direct = quoted(&DIRECT_RESOURCES),
        verbs = quoted(&GRANTABLE_VERBS),
    );
    let binding = "object.roleRef.kind == 'Role' && object.roleRef.name == object.metadata.name \
        && (!has(object.subjects) || object.subjects.all(s, (s.kind == 'User' || s.kind == 'Group') \
        && !s.name.startsWith('system:')))";
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": GRANTS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["rbac.authorization.k8s.io"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["roles", "rolebindings"],
            }]},
            "matchConditions": [{
                "name": "by-the-operator",
                "expression": format!("request.userInfo.username == '{operator}'"),
            }],
            "validations": [
                {
                    "expression": format!("request.resource.resource != 'roles' || ({role})"),
                    "messageExpression": "'Role ' + object.metadata.namespace + '/' + object.metadata.name + ': the operator may only write Roles labelled app.kubernetes.io/managed-by: hygie, and only grant members get, connect, update or patch of their workspace (and, reached directly, its pod, logs, exec, port-forward and Service proxy), reviewers connect to a request, limited by name, and both the creation of sessions'",
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("request.resource.resource != 'rolebindings' || ({binding})"),
                    "messageExpression": "'RoleBinding ' + object.metadata.namespace + '/' + object.metadata.name + ': the operator may only bind the Role of the same name to people and groups'",
                    "reason": "Forbidden",
                },
            ],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": GRANTS_POLICY, "labels": labels()},
        "spec": {"policyName": GRANTS_POLICY, "validationActions": ["Deny"]},
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
        let expression = policies(DEFAULT_OPERATOR)[0]["spec"]["validations"][0]["expression"]
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
        let member = policies(DEFAULT_OPERATOR)[0]["spec"]["variables"][0]["expression"]
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
