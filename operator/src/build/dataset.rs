//! What a Dataset becomes: its encrypted volume (and key) and, for an S3 source, an import Job
//! as hardened as a workspace, behind network policies that only let it reach the object store.

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

use super::{
    Child, access,
    labels::{self, Owner},
    network, pod,
    storage::{Origin, encrypted_volume},
    transfer::{self, Transfer},
};
use crate::api::{Dataset, HostingProfile, dataset::S3Source};

const IMPORT: &str = "import";

/// Copies the objects into /data, then reports the byte count and a checksum of the content
/// as the container's termination message, where the controller reads them.
const IMPORT_SCRIPT: &str = r#"set -eu
export RCLONE_CONFIG=/tmp/rclone.conf
export RCLONE_S3_ACCESS_KEY_ID="$(cat /var/run/secrets/hygie/s3/accessKeyId)"
export RCLONE_S3_SECRET_ACCESS_KEY="$(cat /var/run/secrets/hygie/s3/secretAccessKey)"
rclone copy ":s3:${BUCKET}/${PREFIX}" /data --s3-provider Other --s3-endpoint "${ENDPOINT}" --s3-region "${REGION}" --checksum
bytes="$(rclone size --json /data | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p')"
sum="$(cd /data && find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1)"
printf '{"bytes":%s,"sha256":"%s"}' "${bytes}" "${sum}" > /dev/termination-log
"#;

/// Every object of `dataset`, in the order they can be applied.
pub fn dataset_children(dataset: &Dataset, profile: &HostingProfile) -> Vec<Child> {
    let name = dataset.name_any();
    let namespace = dataset.namespace().unwrap_or_default();
    let owner = Owner::Dataset(&name);
    let claim_name = labels::dataset_claim_name(&name);
    let source = dataset.spec.source.as_ref();

    let origin = match source.and_then(|s| s.persistent_volume_claim.as_ref()) {
        Some(claim) => Origin::CloneOf(&claim.claim_name),
        None => Origin::Empty,
    };
    let (secret, claim) = encrypted_volume(
        &claim_name,
        &namespace,
        owner,
        "data",
        &dataset.spec.storage.size,
        profile,
        origin,
    );
    let mut children: Vec<Child> = secret.map(Child::Secret).into_iter().collect();
    children.push(Child::PersistentVolumeClaim(claim));

    if let (Some(s3), Some(image)) = (
        source.and_then(|s| s.s3.as_ref()),
        &profile.spec.images.importer,
    ) {
        let import = labels::import_name(&name);
        let pods = owner.pod_selector(IMPORT);
        children.push(Child::ServiceAccount(access::service_account(
            &import, &namespace, owner,
        )));
        children.extend(
            network::isolation(
                &import,
                &namespace,
                owner,
                &pods,
                profile,
                network::Reach {
                    desktop_from: None,
                    names: network::Names::Cluster,
                    ingress_port: None,
                    egress: &s3.egress,
                },
            )
            .into_iter()
            .map(Child::NetworkPolicy),
        );
        children.push(Child::Job(import_job(
            &import,
            &namespace,
            owner,
            &claim_name,
            s3,
            image,
            profile,
        )));
    }
    children
}

fn import_job(
    name: &str,
    namespace: &str,
    owner: Owner,
    claim: &str,
    s3: &S3Source,
    image: &str,
    profile: &HostingProfile,
) -> Job {
    let transfer = Transfer {
        name: IMPORT,
        image,
        script: IMPORT_SCRIPT,
        args: Vec::new(),
        env: vec![
            ("ENDPOINT", s3.endpoint.clone()),
            ("BUCKET", s3.bucket.clone()),
            ("PREFIX", s3.prefix.clone()),
            ("REGION", s3.region.clone().unwrap_or_default()),
        ],
        volumes: vec![
            (pod::claim_volume("data", claim, false), "/data", false),
            transfer::credentials(&s3.credentials_secret_ref.name),
        ],
    };
    transfer::job(name, namespace, owner, IMPORT, name, &transfer, profile)
}
