//! What a Workspace becomes: its isolation, its volumes and keys, its hardened workload, its
//! Service, and its members' access.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{StatefulSet, StatefulSetSpec},
        core::v1::{
            Container, ContainerPort, EnvVar, PodTemplateSpec, Probe, Service, ServicePort,
            ServiceSpec, TCPSocketAction, VolumeMount,
        },
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::{ResourceExt, api::ObjectMeta};

use super::{
    Child, access, desktop,
    export::outbox_size,
    labels::{self, Owner},
    network::{self, Names},
    pod,
    storage::{Origin, encrypted_volume},
};
use crate::api::{Access, Dataset, HostingProfile, Workspace};

/// Where the home volume is mounted.
pub const HOME: &str = "/home/researcher";
/// Where the outbox is mounted: what an ExportRequest names is under it.
pub const OUTBOX: &str = "/outbox";
const WORKLOAD: &str = "workload";

/// Which resolver the workspace queries. When it mounts health data, or has mounted it (its
/// home and outbox may hold copies), never the cluster's: every managed cluster's resolver
/// forwards what it does not know to the Internet, so a query is a way out (a DNS tunnel
/// carries any data to a server of the attacker's). It gets Hygie's resolver, which answers its
/// profile's names only, when the profile has one, and none otherwise; its egress is by address.
fn names<'a>(
    workspace: &Workspace,
    datasets: &[&Dataset],
    profile: &'a HostingProfile,
) -> Names<'a> {
    let mounted = datasets.iter().any(|d| d.is_health_data());
    let past = workspace
        .status
        .iter()
        .flat_map(|s| &s.lineage)
        .any(|l| l.classification.is_health_data());
    match (mounted || past, &profile.spec.network.resolver) {
        (false, _) => Names::Cluster,
        (true, Some(resolver)) => Names::Hygie(resolver),
        (true, None) => Names::None,
    }
}

/// How members reach the workspace: directly only if every dataset it mounts and has mounted
/// allows it, and its status already records `Direct` (the admission policies read that
/// record, so a direct right follows it and never precedes it).
pub fn member_access(workspace: &Workspace, datasets: &[&Dataset]) -> Access {
    let status = workspace.status.as_ref();
    let recorded = status.and_then(|s| s.access).unwrap_or_default();
    let past = status.iter().flat_map(|s| &s.lineage).map(|l| l.access);
    let now = datasets.iter().map(|d| d.spec.access);
    Access::of_all(now.chain(past).chain([recorded]))
}

/// Every object of `workspace`, in the order they can be applied: identities and isolation
/// first, then keys before the volumes they open, then the workload and its Service.
///
/// `datasets` are the workspace's datasets in the order of `spec.datasets`. The workload has no
/// replica when the workspace is suspended or expired at `now`; volumes and keys stay.
///
/// `desktop_password` is the workspace's desktop credential, which the operator derives from
/// the key it shares with the gateway; without it the workspace gets none. `awake` is false
/// when nobody has had a session in it for its profile's idle time: its workload stops too.
pub fn workspace_children(
    workspace: &Workspace,
    profile: &HostingProfile,
    datasets: &[&Dataset],
    desktop_password: Option<&str>,
    awake: bool,
    now: jiff::Timestamp,
) -> Vec<Child> {
    let name = workspace.name_any();
    let namespace = workspace.namespace().unwrap_or_default();
    let owner = Owner::Workspace(&name);
    let spec = &workspace.spec;
    let pods = owner.pod_selector(WORKLOAD);
    let pod_name = format!("{name}-0");

    let mut children = vec![Child::ServiceAccount(access::service_account(
        &name, &namespace, owner,
    ))];
    let reach = member_access(workspace, datasets);
    children.extend(
        network::isolation(
            &name,
            &namespace,
            owner,
            &pods,
            profile,
            network::Reach {
                names: names(workspace, datasets, profile),
                // Seen through a screen, the tool is reached through the gateway's desktop only.
                ingress_port: (reach == Access::Direct).then_some(spec.port),
                desktop_from: Some(&profile.spec.network.gateway),
                egress: &spec.egress,
            },
        )
        .into_iter()
        .map(Child::NetworkPolicy),
    );
    for (role, binding) in access::member_access(&name, &namespace, &pod_name, &spec.members, reach)
    {
        children.push(Child::Role(role));
        children.push(Child::RoleBinding(binding));
    }

    let home = labels::home_claim_name(&name);
    let (secret, claim) = encrypted_volume(
        &home,
        &namespace,
        owner,
        "home",
        &spec.storage.size,
        profile,
        Origin::Empty,
    );
    children.extend(secret.map(Child::Secret));
    children.push(Child::PersistentVolumeClaim(claim));

    let outbox = labels::outbox_claim_name(&name);
    let (secret, claim) = encrypted_volume(
        &outbox,
        &namespace,
        owner,
        "outbox",
        &outbox_size(workspace),
        profile,
        Origin::Empty,
    );
    children.extend(secret.map(Child::Secret));
    children.push(Child::PersistentVolumeClaim(claim));

    let mut volumes = vec![
        pod::claim_volume("home", &home, false),
        pod::claim_volume("outbox", &outbox, false),
    ];
    let mut mounts = vec![
        VolumeMount {
            name: "home".into(),
            mount_path: HOME.into(),
            ..Default::default()
        },
        VolumeMount {
            name: "outbox".into(),
            mount_path: OUTBOX.into(),
            ..Default::default()
        },
    ];
    for (i, (mount, dataset)) in spec.datasets.iter().zip(datasets).enumerate() {
        let source = labels::dataset_claim_name(&dataset.name_any());
        let copy = labels::dataset_copy_claim_name(&name, &mount.name);
        let (secret, claim) = encrypted_volume(
            &copy,
            &namespace,
            owner,
            "dataset-copy",
            &dataset.spec.storage.size,
            profile,
            Origin::CloneOf(&source),
        );
        children.extend(secret.map(Child::Secret));
        children.push(Child::PersistentVolumeClaim(claim));
        let volume = format!("dataset-{i}");
        volumes.push(pod::claim_volume(&volume, &copy, true));
        mounts.push(VolumeMount {
            name: volume,
            mount_path: mount.mount_path.clone(),
            read_only: Some(true),
            ..Default::default()
        });
    }

    if let Some(password) = desktop_password {
        let (secret, volume, mount) = desktop::credential(&name, &namespace, owner, password);
        volumes.push(volume);
        mounts.push(mount);
        children.push(Child::Secret(secret));
    }

    let running = awake && !spec.suspend && !is_expired(workspace, now);
    let tool = tool_container(workspace, mounts);
    let mut pod_spec = pod::hardened_pod(profile, &name, vec![tool], volumes, "Always");
    match names(workspace, datasets, profile) {
        Names::Cluster => {}
        Names::Hygie(resolver) => pod::with_resolver(&mut pod_spec, &resolver.address),
        Names::None => pod::without_resolver(&mut pod_spec),
    }
    children.push(Child::StatefulSet(StatefulSet {
        metadata: meta(&name, &namespace, owner),
        spec: Some(StatefulSetSpec {
            replicas: Some(i32::from(running)),
            service_name: Some(name.clone()),
            selector: LabelSelector {
                match_labels: Some(pods.clone()),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(owner.labels(WORKLOAD)),
                    ..Default::default()
                }),
                spec: Some(pod_spec),
            },
            ..Default::default()
        }),
        status: None,
    }));
    children.push(Child::Service(Service {
        metadata: meta(&name, &namespace, owner),
        spec: Some(ServiceSpec {
            // Headless: it governs the StatefulSet and reaches its one pod without spending a
            // cluster IP per workspace.
            cluster_ip: Some("None".into()),
            selector: Some(pods),
            ports: Some(vec![ServicePort {
                name: Some("tool".into()),
                port: spec.port,
                target_port: Some(IntOrString::String("tool".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }));
    children
}

/// Whether `workspace` has reached its `expiresAt` at `now`.
pub fn is_expired(workspace: &Workspace, now: jiff::Timestamp) -> bool {
    workspace
        .spec
        .expires_at
        .as_ref()
        .is_some_and(|t| t.0 <= now)
}

fn tool_container(workspace: &Workspace, volume_mounts: Vec<VolumeMount>) -> Container {
    let spec = &workspace.spec;
    let probe = |initial_delay, period| Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("tool".into()),
            host: None,
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        ..Default::default()
    };
    let requests = spec.resources.requests.clone().unwrap_or_default();
    let limits = spec.resources.limits.clone().unwrap_or_default();
    let resources = |list: crate::api::workspace::CpuMemory| -> BTreeMap<_, _> {
        [("cpu", list.cpu), ("memory", list.memory)]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect()
    };
    Container {
        name: "tool".into(),
        image: Some(spec.image.clone()),
        ports: Some(vec![
            ContainerPort {
                name: Some("tool".into()),
                container_port: spec.port,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            desktop::port(),
        ]),
        env: Some(vec![
            EnvVar {
                name: "HOME".into(),
                value: Some(HOME.into()),
                value_from: None,
            },
            desktop::password_env(),
        ]),
        resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
            requests: Some(resources(requests)),
            limits: Some(resources(limits)),
            claims: None,
        }),
        liveness_probe: Some(probe(30, 20)),
        readiness_probe: Some(probe(5, 10)),
        volume_mounts: Some(volume_mounts),
        ..Default::default()
    }
}

fn meta(name: &str, namespace: &str, owner: Owner) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(owner.labels(WORKLOAD)),
        ..Default::default()
    }
}
