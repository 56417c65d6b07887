//! Who may do what in a workspace: a token-less ServiceAccount for the pod, and for members a
//! Role per role in use, limited by resource name to this workspace's objects, with its
//! RoleBinding. Nothing cluster-wide.

use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{PolicyRule, Role as RbacRole, RoleBinding, RoleRef, Subject},
};
use kube::api::ObjectMeta;

use super::labels::Owner;
use crate::api::workspace::{Member, MemberKind, Role};

/// A ServiceAccount that never receives an API token: workloads have no business with the API.
pub fn service_account(name: &str, namespace: &str, owner: Owner) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(name, namespace, owner),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

/// One Role and one RoleBinding per role that has members, named `<workspace>-<role>`.
pub fn member_access(
    workspace: &str,
    namespace: &str,
    pod: &str,
    members: &[Member],
) -> Vec<(RbacRole, RoleBinding)> {
    let owner = Owner::Workspace(workspace);
    Role::ALL
        .into_iter()
        .filter_map(|role| {
            let subjects: Vec<Subject> = members
                .iter()
                .filter(|m| m.role == role)
                .map(subject)
                .collect();
            if subjects.is_empty() {
                return None;
            }
            let name = format!("{workspace}-{}", role.as_str());
            let rbac_role = RbacRole {
                metadata: meta(&name, namespace, owner),
                rules: Some(rules(role, workspace, pod)),
            };
            let binding = RoleBinding {
                metadata: meta(&name, namespace, owner),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name,
                },
                subjects: Some(subjects),
            };
            Some((rbac_role, binding))
        })
        .collect()
}

/// What each role may do; each role includes the ones below it.
fn rules(role: Role, workspace: &str, pod: &str) -> Vec<PolicyRule> {
    let rule = |group: &str, resource: &str, name: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        resource_names: Some(vec![name.into()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        non_resource_urls: None,
    };
    let mut rules = vec![
        rule("hygie.io", "workspaces", workspace, &["get"]),
        rule("", "pods", pod, &["get"]),
        rule("", "pods/log", pod, &["get"]),
    ];
    if role >= Role::Analyst {
        rules.push(rule("", "pods/portforward", pod, &["create"]));
        rules.push(rule("", "services/proxy", workspace, &["get", "create"]));
    }
    if role >= Role::Owner {
        rules.push(rule(
            "hygie.io",
            "workspaces",
            workspace,
            &["update", "patch"],
        ));
        rules.push(rule("", "pods/exec", pod, &["create"]));
    }
    rules
}

/// Every rule any member role holds, for the admission policy that bounds what the operator
/// may grant.
pub fn access_rules_of_every_role() -> Vec<PolicyRule> {
    Role::ALL
        .into_iter()
        .flat_map(|role| rules(role, "workspace", "workspace-0"))
        .collect()
}

fn subject(member: &Member) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: match member.kind {
            MemberKind::User => "User".into(),
            MemberKind::Group => "Group".into(),
        },
        name: member.name.clone(),
        namespace: None,
    }
}

fn meta(name: &str, namespace: &str, owner: Owner) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(owner.labels("access")),
        ..Default::default()
    }
}
