//! Who else reads a workspace's pod: the RoleBindings of its namespace that give somebody other
//! than the platform team the pod or its logs.
//!
//! A read never reaches admission (`GET pods/log` is RBAC's alone to decide), and a process in
//! the workspace that prints rows to its standard output, or writes them to its termination
//! message, hands them to whoever may read the pod: Kubernetes' `view`, `edit` and `admin` roles
//! all may. So a workspace seen through a screen runs only in a namespace where nobody but the
//! platform team reads pods. The rights wall (`hygie-rights-guarded`) refuses new bindings
//! there; this finds those made before it, or by the platform team for somebody else.
//! ClusterRoleBindings are the cluster administrators', who are trusted.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding, Subject},
};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};

use crate::admission::ADMINISTER_VERB;

/// One person (or group, or service account) who may read the workspace's pod, and the binding
/// that lets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub binding: String,
    pub subject: String,
}

impl std::fmt::Display for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoleBinding `{}` gives {}", self.binding, self.subject)
    }
}

/// Whether `rules` let their holder read `pod` of the core group, or its logs: `get`, `list` or
/// `watch` on pods (their status holds the termination message), `get` on `pods/log`.
pub fn read_the_pod(rules: &[PolicyRule], pod: &str) -> bool {
    let any = |list: &Option<Vec<String>>, wanted: &[&str]| {
        list.iter()
            .flatten()
            .any(|v| v == "*" || wanted.contains(&v.as_str()))
    };
    rules.iter().any(|rule| {
        let core = rule
            .api_groups
            .iter()
            .flatten()
            .any(|g| g.is_empty() || g == "*");
        let names = rule.resource_names.as_ref().filter(|n| !n.is_empty());
        let this_pod = names.is_none_or(|n| n.iter().any(|name| name == pod));
        let pods = any(&rule.resources, &["pods"])
            && any(&Some(rule.verbs.clone()), &["get", "list", "watch"]);
        let logs = any(&rule.resources, &["pods/log", "pods/*"])
            && any(&Some(rule.verbs.clone()), &["get"]);
        core && this_pod && (pods || logs)
    })
}

/// The subject as the API server names who holds it: a User's or a Group's name, a
/// ServiceAccount's `system:serviceaccount:` user with its groups.
fn identity(subject: &Subject, namespace: &str) -> (Option<String>, Vec<String>, String) {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            let of = subject.namespace.as_deref().unwrap_or(namespace);
            let user = format!("system:serviceaccount:{of}:{}", subject.name);
            let groups = vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{of}"),
            ];
            (
                Some(user.clone()),
                groups,
                format!("ServiceAccount `{of}/{}`", subject.name),
            )
        }
        "Group" => (
            None,
            vec![subject.name.clone()],
            format!("Group `{}`", subject.name),
        ),
        _ => (
            Some(subject.name.clone()),
            Vec::new(),
            format!("User `{}`", subject.name),
        ),
    }
}

/// Whether the API server says `subject` is the platform team in `namespace`: it may
/// `administer` workspaces there.
async fn is_platform_team(
    client: &Client,
    namespace: &str,
    subject: &Subject,
) -> Result<bool, kube::Error> {
    let (user, groups, _) = identity(subject, namespace);
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user,
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                group: Some("hygie.io".into()),
                resource: Some("workspaces".into()),
                verb: Some(ADMINISTER_VERB.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Everybody but the platform team who may read `pod` in `namespace`. Hygie's own bindings are
/// read like any other (an ownerReference is typed by whoever writes the binding): the Roles
/// Hygie writes never give a pod seen through a screen, and the admission policy bounding the
/// operator refuses them if they did.
pub async fn foreign_readers(
    client: &Client,
    namespace: &str,
    pod: &str,
) -> Result<Vec<Reader>, kube::Error> {
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    let mut rules_of: BTreeMap<(String, String), Vec<PolicyRule>> = BTreeMap::new();
    let mut readers = Vec::new();
    for binding in bindings {
        let role = (binding.role_ref.kind.clone(), binding.role_ref.name.clone());
        if !rules_of.contains_key(&role) {
            let rules = match role.0.as_str() {
                "ClusterRole" => cluster_roles.get_opt(&role.1).await?.and_then(|r| r.rules),
                _ => roles.get_opt(&role.1).await?.and_then(|r| r.rules),
            };
            rules_of.insert(role.clone(), rules.unwrap_or_default());
        }
        if !read_the_pod(&rules_of[&role], pod) {
            continue;
        }
        let name = binding.metadata.name.clone().unwrap_or_default();
        for subject in binding.subjects.iter().flatten() {
            if !is_platform_team(client, namespace, subject).await? {
                readers.push(Reader {
                    binding: name.clone(),
                    subject: identity(subject, namespace).2,
                });
            }
        }
    }
    Ok(readers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
        let owned = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
        PolicyRule {
            api_groups: owned(groups),
            resources: owned(resources),
            verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
            resource_names: (!names.is_empty())
                .then(|| names.iter().map(|s| (*s).to_owned()).collect()),
            non_resource_urls: None,
        }
    }

    #[test]
    fn reading_a_pod_is_its_logs_or_the_pod_itself() {
        let pod = "study-0";
        for (rules, reads, why) in [
            (
                vec![rule(&[""], &["pods/log"], &["get"], &[])],
                true,
                "view's logs",
            ),
            (
                vec![rule(&[""], &["pods"], &["list"], &[])],
                true,
                "termination messages",
            ),
            (
                vec![rule(&["*"], &["*"], &["*"], &[])],
                true,
                "cluster-admin's shape",
            ),
            (
                vec![rule(&[""], &["pods/*"], &["get"], &[])],
                true,
                "every subresource",
            ),
            (
                vec![rule(&[""], &["pods/log"], &["get"], &[pod])],
                true,
                "this pod by name",
            ),
            (
                vec![rule(&[""], &["pods/log"], &["get"], &["other-0"])],
                false,
                "another pod",
            ),
            (
                vec![rule(&["apps"], &["*"], &["*"], &[])],
                false,
                "another group",
            ),
            (
                vec![rule(&[""], &["configmaps"], &["get"], &[])],
                false,
                "configmaps",
            ),
            (
                vec![rule(&[""], &["pods"], &["delete"], &[])],
                false,
                "deleting reads nothing",
            ),
            (
                vec![rule(&[""], &["pods/exec"], &["create"], &[])],
                false,
                "exec, refused at admission",
            ),
        ] {
            assert_eq!(read_the_pod(&rules, pod), reads, "{why}");
        }
    }

    #[test]
    fn subjects_are_named_as_the_api_server_authenticates_them() {
        let subject = |kind: &str, name: &str, namespace: Option<&str>| Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.map(str::to_owned),
            api_group: None,
        };
        let (user, groups, shown) = identity(&subject("ServiceAccount", "ci", None), "study");
        assert_eq!(user.as_deref(), Some("system:serviceaccount:study:ci"));
        assert_eq!(
            groups,
            ["system:serviceaccounts", "system:serviceaccounts:study"]
        );
        assert_eq!(shown, "ServiceAccount `study/ci`");
        let (user, groups, _) = identity(&subject("Group", "statisticians", None), "study");
        assert_eq!((user, groups), (None, vec!["statisticians".to_owned()]));
        let (user, _, shown) = identity(&subject("User", "mallory", None), "study");
        assert_eq!(
            (user.as_deref(), shown.as_str()),
            (Some("mallory"), "User `mallory`")
        );
    }
}
