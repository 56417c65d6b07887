//! A desktop the gateway opens: a workspace's, or a review's. The image runs it; Hygie gives it
//! the port the gateway reaches and the password the gateway proves itself with, which the
//! operator derives from the target's UID under the key it shares with the gateway
//! (`gateway::credential`).

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{ContainerPort, EnvVar, Secret, SecretVolumeSource, Volume, VolumeMount},
};
use kube::api::ObjectMeta;

use super::{
    labels::{self, Owner},
    network::DESKTOP_PORT,
};

/// Where the desktop's credential is mounted.
pub const CREDENTIAL: &str = "/var/run/hygie/desktop";

/// The environment variable naming the password's file.
const PASSWORD_FILE: &str = "HYGIE_DESKTOP_PASSWORD_FILE";

/// The container port the desktop listens on (RFB).
pub fn port() -> ContainerPort {
    ContainerPort {
        name: Some("desktop".into()),
        container_port: DESKTOP_PORT,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// `HYGIE_DESKTOP_PASSWORD_FILE`, where the desktop reads the password it must require.
pub fn password_env() -> EnvVar {
    EnvVar {
        name: PASSWORD_FILE.into(),
        value: Some(format!("{CREDENTIAL}/password")),
        value_from: None,
    }
}

/// The credential of the desktop of `pod` (a StatefulSet's name), as a Secret in `<CREDENTIAL>/password`,
/// with the volume and the read-only mount that put it there. The desktop requires it
/// (TigerVNC's `vncpasswd -f < password > passwd; Xvnc -SecurityTypes VncAuth -PasswordFile
/// passwd`).
pub fn credential(
    pod: &str,
    namespace: &str,
    owner: Owner,
    password: &str,
) -> (Secret, Volume, VolumeMount) {
    let name = labels::desktop_secret_name(pod);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.into()),
            labels: Some(owner.labels("desktop")),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "password".to_owned(),
            ByteString(password.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let volume = Volume {
        name: "desktop".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(name),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mount = VolumeMount {
        name: "desktop".into(),
        mount_path: CREDENTIAL.into(),
        read_only: Some(true),
        ..Default::default()
    };
    (secret, volume, mount)
}
