//! NetworkPolicies: deny everything, then allow DNS, the profile's ingress source, the
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
use crate::api::{EgressRule, HostingProfile, hosting_profile::GatewayPeer};

/// The RFB port of a workspace's (or a review's) desktop, which only the gateway reaches.
pub const DESKTOP_PORT: i32 = 5900;

const COMPONENT: &str = "network-policy";

/// What the isolated pods may reach, and who may reach them.
pub struct Reach<'a> {
    /// Whether they resolve names through the cluster's DNS. A pod that reaches nothing has no
    /// name to resolve, and a DNS query is a way out.
    pub dns: bool,
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
        dns,
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
    if dns {
        policies.push(policy("allow-dns", allow_dns(profile)));
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

fn allow_dns(profile: &HostingProfile) -> NetworkPolicySpec {
    let dns = &profile.spec.network.dns;
    let namespace = BTreeMap::from([(
        "kubernetes.io/metadata.name".to_owned(),
        dns.namespace.clone(),
    )]);
    NetworkPolicySpec {
        policy_types: Some(vec!["Egress".into()]),
        egress: Some(vec![NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(selector(&namespace)),
                pod_selector: Some(selector(&dns.pod_labels)),
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
