//! NetworkPolicies: deny everything, then allow a resolver, the profile's ingress source, the
//! gateway to the desktop's port, and each listed egress destination. Nothing else.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::networking::v1::{
        IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
        NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::api::ObjectMeta;

use super::labels::Owner;
use crate::api::{
    EgressRule, HostingProfile,
    hosting_profile::{GatewayPeer, ResolverProfile},
};

/// The RFB port of a workspace's (or a review's) desktop, which only the gateway reaches.
pub const DESKTOP_PORT: i32 = 5900;

const COMPONENT: &str = "network-policy";

/// The resolver pods may query. A DNS query is a way out wherever the resolver forwards (the
/// cluster's forwards to the Internet), and a pod that reaches nothing has no name to resolve.
#[derive(Clone, Copy)]
pub enum Names<'a> {
    /// No resolver at all.
    None,
    /// The cluster's (the profile's `dns`): for pods that hold no health data, and for Hygie's
    /// own Jobs, which run the platform's importer and need the stores' names.
    Cluster,
    /// Hygie's, which answers the profile's names and nothing else, and forwards nothing.
    Hygie(&'a ResolverProfile),
}

/// What the isolated pods may reach, and who may reach them.
pub struct Reach<'a> {
    pub names: Names<'a>,
    /// The port the profile's ingress source may connect to.
    pub ingress_port: Option<i32>,
    /// The gateway, which alone may connect to the desktop's port.
    pub desktop_from: Option<&'a GatewayPeer>,
    pub egress: &'a [EgressRule],
}

/// The policies around the pods selected by `pods`, named after `prefix`.
pub fn isolation(
    prefix: &str,
    namespace: &str,
    owner: Owner,
    pods: &BTreeMap<String, String>,
    profile: &HostingProfile,
    reach: Reach,
) -> Vec<NetworkPolicy> {
    let Reach {
        names,
        ingress_port,
        desktop_from,
        egress,
    } = reach;
    let policy = |suffix: &str, spec: NetworkPolicySpec| NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{suffix}")),
            namespace: Some(namespace.into()),
            labels: Some(owner.labels(COMPONENT)),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(pods)),
            ..spec
        }),
    };

    let mut policies = vec![policy(
        "deny-all",
        NetworkPolicySpec {
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ..Default::default()
        },
    )];
    let resolver = match names {
        Names::None => None,
        Names::Cluster => Some((
            &profile.spec.network.dns.namespace,
            &profile.spec.network.dns.pod_labels,
        )),
        Names::Hygie(resolver) => Some((&resolver.namespace, &resolver.pod_labels)),
    };
    if let Some((namespace, pod_labels)) = resolver {
        policies.push(policy("allow-dns", allow_dns(namespace, pod_labels)));
    }
    let ingress_from = profile.spec.network.ingress_from.as_ref();
    if let (Some(port), Some(source)) = (ingress_port, ingress_from) {
        policies.push(policy(
            "allow-ingress",
            NetworkPolicySpec {
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(selector(&source.namespace_labels)),
                        pod_selector: (!source.pod_labels.is_empty())
                            .then(|| selector(&source.pod_labels)),
                        ip_block: None,
                    }]),
                    ports: Some(vec![port_of(port, "TCP")]),
                }]),
                ..Default::default()
            },
        ));
    }
    if let Some(gateway) = desktop_from {
        let namespace = BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            gateway.namespace.clone(),
        )]);
        policies.push(policy(
            "allow-desktop",
            NetworkPolicySpec {
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(selector(&namespace)),
                        pod_selector: Some(selector(&gateway.pod_labels)),
                        ip_block: None,
                    }]),
                    ports: Some(vec![port_of(DESKTOP_PORT, "TCP")]),
                }]),
                ..Default::default()
            },
        ));
    }
    for (i, rule) in egress.iter().enumerate() {
        policies.push(policy(
            &format!("egress-{i}"),
            NetworkPolicySpec {
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: rule.cidr.clone(),
                            except: None,
                        }),
                        ..Default::default()
                    }]),
                    ports: Some(
                        rule.ports
                            .iter()
                            .map(|p| port_of(p.port, p.protocol.as_str()))
                            .collect(),
                    ),
                }]),
                ..Default::default()
            },
        ));
    }
    policies
}

fn allow_dns(namespace: &str, pod_labels: &BTreeMap<String, String>) -> NetworkPolicySpec {
    let namespace = BTreeMap::from([(
        "kubernetes.io/metadata.name".to_owned(),
        namespace.to_owned(),
    )]);
    NetworkPolicySpec {
        policy_types: Some(vec!["Egress".into()]),
        egress: Some(vec![NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(selector(&namespace)),
                pod_selector: Some(selector(pod_labels)),
                ip_block: None,
            }]),
            ports: Some(vec![port_of(53, "UDP"), port_of(53, "TCP")]),
        }]),
        ..Default::default()
    }
}

fn selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    }
}

fn port_of(port: i32, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some(protocol.into()),
        end_port: None,
    }
}
