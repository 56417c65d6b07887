//! The people of the test control plane, each with a client certificate of their own (issued
//! by tests/controlplane/up.sh): alice (researchers), bob, carol and dave (data-stewards),
//! mallory (visitors). What they do goes through the API server's authentication, as theirs.

use std::path::PathBuf;

use serde_json::Value;

use crate::{
    cluster::{Kubectl, kubeconfig, kubectl_at},
    operator::operator_binary,
};

/// The kubeconfig of `user`.
pub fn user_kubeconfig(user: &str) -> PathBuf {
    kubeconfig()
        .parent()
        .unwrap()
        .join(format!("users/{user}.kubeconfig"))
}

/// kubectl with `args`, authenticated as `user`.
pub fn kubectl_as(user: &str, args: &[&str]) -> Kubectl {
    kubectl_at(&user_kubeconfig(user), args, None)
}

/// Creates `object` in `namespace` with kubectl, authenticated as `user`.
pub fn create_as(user: &str, namespace: &str, object: &Value) -> Kubectl {
    kubectl_at(
        &user_kubeconfig(user),
        &["create", "-n", namespace, "-f", "-"],
        Some(&object.to_string()),
    )
}

/// Runs the `hygie` binary with `user`'s kubeconfig.
pub fn hygie_as(user: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(operator_binary())
        .args(args)
        .env("KUBECONFIG", user_kubeconfig(user))
        .output()
        .expect("the hygie binary runs")
}

/// RoleBindings in `namespace` of each person to the chart's `hygie-<role>` ClusterRole.
pub fn airlock_roles(namespace: &str, people: &[(&str, &str)]) -> Vec<Value> {
    people
        .iter()
        .map(|(person, role)| {
            serde_json::json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": format!("{person}-{role}"), "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("hygie-{role}")},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": person}]
            })
        })
        .collect()
}
