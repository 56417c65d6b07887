//! Who may do what in a workspace: a token-less ServiceAccount for the pod, and for members a
//! Role per role in use, limited by resource name to this workspace's objects, with its
//! RoleBinding. Nothing cluster-wide.
//!
//! Every member may `connect` to the workspace: a verb of Hygie's own on `hygie.io/workspaces`
//! (RBAC accepts any verb) that only the gateway asks the API server about, and `create` the
//! sessions `hygie connect` opens with. Rights to the pod itself (reads, logs, port-forward,
//! proxy, exec) are granted only to a workspace reached directly, which only Anonymised or
//! Open data allow: anything else is seen through a screen.

use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{PolicyRule, Role as RbacRole, RoleBinding, RoleRef, Subject},
};
use kube::api::ObjectMeta;

use super::labels::Owner;
use crate::api::{
    Access,
    workspace::{Member, MemberKind, Role},
};

/// The verb, on `hygie.io/workspaces` and `hygie.io/exportrequests`, that lets a person through
/// the gateway to the workspace's (or the review's) screen.
pub const CONNECT_VERB: &str = "connect";

/// The resources of a pod and its Service that reach its data directly, which only a workspace
/// reached directly grants.
pub const DIRECT_RESOURCES: [&str; 5] = [
    "pods",
    "pods/log",
    "pods/portforward",
    "pods/exec",
    "services/proxy",
];

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
    access: Access,
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
                rules: Some(rules(role, workspace, pod, access)),
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

/// The right to open sessions, with which `hygie connect` asks the gateway in (RBAC cannot limit
/// a creation by name; the gateway asks the API server whether the session's user may
/// `connect` to what it names).
pub fn open_sessions() -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec!["hygie.io".into()]),
        resources: Some(vec!["sessions".into()]),
        verbs: vec!["create".into()],
        resource_names: None,
        non_resource_urls: None,
    }
}

/// A rule on one named object.
pub fn named_rule(group: &str, resource: &str, name: &str, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        resource_names: Some(vec![name.into()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        non_resource_urls: None,
    }
}

/// What each role may do; each role includes the ones below it.
fn rules(role: Role, workspace: &str, pod: &str, access: Access) -> Vec<PolicyRule> {
    let rule = named_rule;
    let mut rules = vec![
        rule("hygie.io", "workspaces", workspace, &["get", CONNECT_VERB]),
        open_sessions(),
    ];
    let direct = access == Access::Direct;
    if direct {
        rules.push(rule("", "pods", pod, &["get"]));
        rules.push(rule("", "pods/log", pod, &["get"]));
    }
    if direct && role >= Role::Analyst {
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
    }
    if direct && role >= Role::Owner {
        rules.push(rule("", "pods/exec", pod, &["create"]));
    }
    rules
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
