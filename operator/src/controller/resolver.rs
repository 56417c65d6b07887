//! The names Hygie's resolver answers: every profile's `spec.network.resolver.names` that its
//! rules admit, written as a hosts file into the ConfigMap the resolver's pods mount (the
//! chart's `resolver`, whose CoreDNS reads it with the `hosts` plugin and forwards nothing).
//! The operator writes it after each profile's reconcile, from the cache of every profile, so
//! that the file is always the whole of what the profiles declare now; a deleted profile's
//! names go at the next reconcile of any profile.

use std::{str::FromStr, sync::Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

use super::{Context, error::Result};
use crate::{api::HostingProfile, build::labels, policy::resolver::served_names};

/// The key of the hosts file in the ConfigMap.
pub const HOSTS_KEY: &str = "hosts";

/// Where the operator writes the names: a ConfigMap, and what it last wrote there.
pub struct ResolverNames {
    namespace: String,
    name: String,
    written: Mutex<Option<String>>,
}

impl FromStr for ResolverNames {
    type Err = String;

    /// `<namespace>/<name>`.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                Ok(ResolverNames {
                    namespace: namespace.into(),
                    name: name.into(),
                    written: Mutex::new(None),
                })
            }
            _ => Err(format!(
                "`{text}` is not <namespace>/<name> of the resolver's names ConfigMap"
            )),
        }
    }
}

/// The hosts file of `profiles`: a line `address name` per name their rules admit, sorted.
pub fn hosts<'a>(profiles: impl IntoIterator<Item = &'a HostingProfile>) -> String {
    let mut lines: Vec<String> = profiles
        .into_iter()
        .flat_map(served_names)
        .map(|(name, address)| format!("{address} {name}"))
        .collect();
    lines.sort();
    lines.dedup();
    lines.into_iter().map(|line| line + "\n").collect()
}

/// Writes the names of every cached profile, when they differ from what was last written.
pub async fn publish(context: &Context) -> Result<()> {
    let Some(target) = &context.resolver_names else {
        return Ok(());
    };
    let profiles = context.profiles.state();
    let file = hosts(profiles.iter().map(|p| p.as_ref()));
    if target.written.lock().expect("not poisoned").as_deref() == Some(file.as_str()) {
        return Ok(());
    }
    let api: Api<ConfigMap> = Api::namespaced(context.client.clone(), &target.namespace);
    let config_map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": target.name,
            "labels": {labels::MANAGED_BY: labels::MANAGER, labels::COMPONENT: "resolver"},
        },
        "data": {HOSTS_KEY: file},
    });
    api.patch(
        &target.name,
        &PatchParams::apply(labels::MANAGER).force(),
        &Patch::Apply(config_map),
    )
    .await?;
    *target.written.lock().expect("not poisoned") = Some(file);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_file_holds_every_admitted_name_once() {
        let mut a = crate::fixtures::profile();
        a.spec.network.resolver = Some(
            serde_json::from_value(serde_json::json!({
                "address": "10.96.0.53",
                "names": [
                    {"name": "pypi.mirror.chu-exemple.fr", "address": "10.20.0.10"},
                    {"name": "elsewhere.chu-exemple.fr", "address": "10.99.0.1"},
                ],
            }))
            .unwrap(),
        );
        let b = a.clone();
        let none = crate::fixtures::profile();
        assert_eq!(
            hosts([&a, &b, &none]),
            "10.20.0.10 pypi.mirror.chu-exemple.fr\n",
            "an address outside the declared destinations is never served"
        );
        assert_eq!(hosts([&none]), "");
        assert!(
            "hygie-system/hygie-resolver-names"
                .parse::<ResolverNames>()
                .is_ok()
        );
        assert!("hygie-resolver-names".parse::<ResolverNames>().is_err());
    }
}
