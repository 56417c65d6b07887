//! The Jobs that move data: a dataset's import, an export's staging and its release. Each runs
//! the profile's transfer image (rclone and a POSIX shell) with a script of Hygie's, as hardened
//! as a workspace, and reports what it did in its termination message, where the controller
//! reads it.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement},
        core::v1::{
            Container, EnvVar, PodTemplateSpec, ResourceRequirements, SecretVolumeSource, Volume,
            VolumeMount,
        },
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::api::ObjectMeta;

use super::{labels::Owner, pod};
use crate::api::HostingProfile;

/// Where transfer Jobs read object store credentials: files, never environment.
pub const CREDENTIALS: &str = "/var/run/secrets/hygie/s3";

/// The exit code of a script that judged its input wrong (a missing file, a checksum that
/// differs): the Job fails at once, as retrying cannot change the verdict.
pub const VERDICT_EXIT_CODE: i32 = 42;

/// What a transfer container runs and sees.
pub struct Transfer<'a> {
    pub name: &'a str,
    pub image: &'a str,
    /// A `sh -c` script; `args` become its positional parameters.
    pub script: &'a str,
    pub args: Vec<String>,
    pub env: Vec<(&'static str, String)>,
    /// Volumes with where they are mounted and whether read-only.
    pub volumes: Vec<(Volume, &'static str, bool)>,
}

impl Transfer<'_> {
    /// The container, with its volume mounts; the volumes go in the pod.
    pub fn container(&self) -> (Container, Vec<Volume>) {
        let quantity = |q: &str| Quantity(q.into());
        let mut command = vec!["sh".into(), "-c".into(), self.script.into(), "sh".into()];
        command.extend(self.args.iter().cloned());
        let container = Container {
            name: self.name.into(),
            image: Some(self.image.into()),
            command: Some(command),
            env: (!self.env.is_empty()).then(|| {
                self.env
                    .iter()
                    .map(|(k, v)| EnvVar {
                        name: (*k).into(),
                        value: Some(v.clone()),
                        value_from: None,
                    })
                    .collect()
            }),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".into(), quantity("250m")),
                    ("memory".into(), quantity("256Mi")),
                ])),
                limits: Some(BTreeMap::from([
                    ("cpu".into(), quantity("1")),
                    ("memory".into(), quantity("1Gi")),
                ])),
                claims: None,
            }),
            volume_mounts: Some(
                self.volumes
                    .iter()
                    .map(|(volume, path, read_only)| VolumeMount {
                        name: volume.name.clone(),
                        mount_path: (*path).into(),
                        read_only: read_only.then_some(true),
                        ..Default::default()
                    })
                    .collect(),
            ),
            termination_message_policy: Some("File".into()),
            ..Default::default()
        };
        let volumes = self.volumes.iter().map(|(v, _, _)| v.clone()).collect();
        (container, volumes)
    }
}

/// The Job `name` running `transfer` once, under the ServiceAccount `service_account`.
pub fn job(
    name: &str,
    namespace: &str,
    owner: Owner,
    component: &str,
    service_account: &str,
    transfer: &Transfer,
    profile: &HostingProfile,
) -> Job {
    let (container, volumes) = transfer.container();
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(owner.labels(component)),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![k8s_openapi::api::batch::v1::PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: "In".into(),
                        values: vec![VERDICT_EXIT_CODE],
                    }),
                    on_pod_conditions: None,
                }],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(owner.labels(component)),
                    ..Default::default()
                }),
                spec: Some(pod::hardened_pod(
                    profile,
                    service_account,
                    vec![container],
                    volumes,
                    "Never",
                )),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The object store credentials Secret `secret`, mounted read-only at [`CREDENTIALS`].
pub fn credentials(secret: &str) -> (Volume, &'static str, bool) {
    let volume = Volume {
        name: "credentials".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            default_mode: Some(0o400),
            ..Default::default()
        }),
        ..Default::default()
    };
    (volume, CREDENTIALS, true)
}
