//! What an ExportRequest becomes, stage by stage.
//!
//! - Staging: a snapshot of the workspace's outbox (a clone of its claim, taken once, so that
//!   what the researcher changes afterwards changes nothing), a new encrypted claim with a key of
//!   its own that no workspace ever mounts, and a Job that copies the listed files from the
//!   first to the second and reports each one's size and sha256.
//! - Review: the staged claim, mounted read-only in a pod that only the request's reviewers see,
//!   on its desktop through the gateway (the profile's `images.review`); it has no egress, and
//!   only the gateway's pods reach its desktop.
//! - Release: the staged claim and a Job that uploads each file, reads it back from the
//!   destination and compares its sha256 with the staged one; its only egress is the store.
//!
//! Every other pod runs the profile's transfer image, as hardened as a workspace, behind a
//! default-deny network policy. Once the request ends nothing is desired, and the controller
//! shreds what remains: the staged claim's key first.

use k8s_openapi::{
    api::{
        apps::v1::{StatefulSet, StatefulSetSpec},
        core::v1::{PodTemplateSpec, Probe, TCPSocketAction, Volume, VolumeMount},
        rbac::v1::{Role, RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::{
        api::resource::Quantity, apis::meta::v1::LabelSelector, util::intstr::IntOrString,
    },
};
use kube::{ResourceExt, api::ObjectMeta};

use super::{
    Child, access, desktop,
    labels::{Owner, outbox_claim_name},
    network, pod,
    storage::{Origin, encrypted_volume},
    transfer::{self, Transfer},
};
use crate::{
    api::{
        ExportRequest, HostingProfile, Workspace,
        export::{ExportDestination, Reviewer, StagedFile},
        workspace::MemberKind,
    },
    bytes::whole_bytes,
};

/// The stage whose children are wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportStage {
    Staging,
    Review,
    Release,
}

const STAGED: &str = "/staged";
const SNAPSHOT: &str = "/snapshot";

/// Checks each listed file of the snapshot, then copies them all into the staged claim and
/// reports `<size> <sha256>` per file, in order. A file that is missing, reached through a
/// symbolic link, not a regular file, or beyond the size limit ends it with
/// `error <index> <what>` and the verdict exit code.
const STAGE_SCRIPT: &str = r#"set -eu
report=/dev/termination-log
verdict() { printf 'error %s %s' "$1" "$2" > "$report"; exit 42; }
i=0
total=0
for f in "$@"; do
  src="/snapshot/$f"
  [ -e "$src" ] || [ -L "$src" ] || verdict "$i" missing
  [ "$(realpath "$src" 2>/dev/null || true)" = "$src" ] || verdict "$i" symlink
  [ -f "$src" ] || verdict "$i" not-a-file
  total=$((total + $(stat -c %s "$src")))
  [ -z "$MAX_BYTES" ] || [ "$total" -le "$MAX_BYTES" ] || verdict "$i" too-large
  i=$((i + 1))
done
: > /tmp/report
for f in "$@"; do
  dst="/staged/files/$f"
  mkdir -p "$(dirname "$dst")"
  cp "/snapshot/$f" "$dst"
  printf '%s %s\n' "$(stat -c %s "$dst")" "$(sha256sum "$dst" | cut -d' ' -f1)" >> /tmp/report
done
cat /tmp/report > "$report"
"#;

/// Takes `<sha256> <path>` pairs: checks each staged file still has the reviewed digest,
/// uploads it (never over a different object), reads it back and compares digests, then
/// reports the digest read back per file, in order.
const RELEASE_SCRIPT: &str = r#"set -euo pipefail
report=/dev/termination-log
verdict() { printf 'error %s %s' "$1" "$2" > "$report"; exit 42; }
export RCLONE_CONFIG=/tmp/rclone.conf
export RCLONE_S3_ACCESS_KEY_ID="$(cat /var/run/secrets/hygie/s3/accessKeyId)"
export RCLONE_S3_SECRET_ACCESS_KEY="$(cat /var/run/secrets/hygie/s3/secretAccessKey)"
s3() { rclone "$@" --s3-provider Other --s3-endpoint "$ENDPOINT" --s3-region "$REGION" --s3-no-check-bucket; }
: > /tmp/report
i=0
while [ "$#" -gt 0 ]; do
  sha="$1"; f="$2"; shift 2
  src="/staged/files/$f"
  [ "$(sha256sum "$src" | cut -d' ' -f1)" = "$sha" ] || verdict "$i" staged-changed
  s3 copyto --immutable "$src" ":s3:$BUCKET/$KEY_PREFIX$f"
  got="$(s3 cat ":s3:$BUCKET/$KEY_PREFIX$f" | sha256sum | cut -d' ' -f1)"
  [ "$got" = "$sha" ] || verdict "$i" checksum-differs
  echo "$got" >> /tmp/report
  i=$((i + 1))
done
cat /tmp/report > "$report"
"#;

/// What the export children are built from.
pub struct ExportInputs<'a> {
    pub request: &'a ExportRequest,
    pub workspace: &'a Workspace,
    pub profile: &'a HostingProfile,
    /// Everyone who may review it: they, and only they, may enter the review pod.
    pub reviewers: &'a [Reviewer],
    /// The destination, for the release.
    pub destination: Option<&'a ExportDestination>,
    /// The files as staged, for the release.
    pub staged: &'a [StagedFile],
    /// The review desktop's password, when the operator shares the gateway's key.
    pub desktop_password: Option<&'a str>,
}

/// The names of a request's objects.
/// The suffix of an export request's review StatefulSet: a workspace of that name would share
/// its pod's name, `<request>-review-0`, and its members the Roles that name that pod.
pub const REVIEW_SUFFIX: &str = "-review";

pub struct ExportNames {
    pub snapshot: String,
    pub staged: String,
    pub stage: String,
    pub review: String,
    pub release: String,
}

impl ExportNames {
    pub fn of(request: &str) -> Self {
        ExportNames {
            snapshot: format!("{request}-snapshot"),
            staged: format!("{request}-staged"),
            stage: format!("{request}-stage"),
            review: format!("{request}{REVIEW_SUFFIX}"),
            release: format!("{request}-release"),
        }
    }
}

/// Where a request's files are written in the destination's bucket:
/// `<prefix>/<namespace>/<request>/`.
pub fn release_key_prefix(prefix: &str, namespace: &str, request: &str) -> String {
    let prefix = prefix.trim_matches('/');
    match prefix.is_empty() {
        true => format!("{namespace}/{request}/"),
        false => format!("{prefix}/{namespace}/{request}/"),
    }
}

/// Every object the request needs at `stage`, in the order they can be applied.
pub fn export_children(inputs: &ExportInputs, stage: ExportStage) -> Vec<Child> {
    let request = inputs.request;
    let name = request.name_any();
    let namespace = request.namespace().unwrap_or_default();
    let owner = Owner::ExportRequest(&name);
    let names = ExportNames::of(&name);
    let profile = inputs.profile;
    let size = outbox_size(inputs.workspace);
    let image = profile.spec.images.importer.as_deref().unwrap_or_default();

    // Reviewers see the staged files on a desktop when the profile names its image and the
    // gateway can open it; the gateway's pods then reach its port, and nobody else.
    let review_desktop = match (stage, &profile.spec.images.review, inputs.desktop_password) {
        (ExportStage::Review, Some(image), Some(password)) => Some((image.as_str(), password)),
        _ => None,
    };
    let egress = match (stage, inputs.destination) {
        (ExportStage::Release, Some(destination)) => destination.s3.egress.clone(),
        _ => Vec::new(),
    };
    let mut children = vec![Child::ServiceAccount(access::service_account(
        &name, &namespace, owner,
    ))];
    children.extend(
        network::isolation(
            &name,
            &namespace,
            owner,
            &owner.selector(),
            profile,
            network::Reach {
                desktop_from: review_desktop.map(|_| &profile.spec.network.gateway),
                names: match egress.is_empty() {
                    true => network::Names::None,
                    false => network::Names::Cluster,
                },
                ingress_port: None,
                egress: &egress,
            },
        )
        .into_iter()
        .map(Child::NetworkPolicy),
    );
    let mut volume = |claim: &str, component: &str, origin: Origin| {
        let (secret, claim) =
            encrypted_volume(claim, &namespace, owner, component, &size, profile, origin);
        children.extend(secret.map(Child::Secret));
        children.push(Child::PersistentVolumeClaim(claim));
    };
    let outbox = outbox_claim_name(&request.spec.workspace);
    if stage == ExportStage::Staging {
        volume(&names.snapshot, "snapshot", Origin::CloneOf(&outbox));
    }
    volume(&names.staged, "staged", Origin::Empty);

    let staged = pod::claim_volume("staged", &names.staged, stage != ExportStage::Staging);
    match stage {
        ExportStage::Staging => {
            let transfer = Transfer {
                name: "stage",
                image,
                script: STAGE_SCRIPT,
                args: request.spec.files.clone(),
                env: vec![("MAX_BYTES", max_bytes(profile))],
                volumes: vec![
                    (
                        pod::claim_volume("snapshot", &names.snapshot, true),
                        SNAPSHOT,
                        true,
                    ),
                    (staged, STAGED, false),
                ],
            };
            let job = transfer::job(
                &names.stage,
                &namespace,
                owner,
                "stage",
                &name,
                &transfer,
                profile,
            );
            children.push(Child::Job(job));
        }
        ExportStage::Review => {
            let desktop = review_desktop.map(|(image, password)| {
                let (secret, volume, mount) =
                    desktop::credential(&names.review, &namespace, owner, password);
                children.push(Child::Secret(secret));
                ReviewDesktop {
                    image,
                    volume,
                    mount,
                }
            });
            children.push(Child::StatefulSet(review_pod(
                &names, &namespace, owner, &name, image, staged, desktop, profile,
            )));
            if let Some((role, binding)) = reviewer_access(&name, &names, &namespace, owner, inputs)
            {
                children.push(Child::Role(role));
                children.push(Child::RoleBinding(binding));
            }
        }
        ExportStage::Release => {
            if let Some(destination) = inputs.destination {
                let transfer = release_transfer(inputs, destination, image, staged);
                let job = transfer::job(
                    &names.release,
                    &namespace,
                    owner,
                    "release",
                    &name,
                    &transfer,
                    profile,
                );
                children.push(Child::Job(job));
            }
        }
    }
    children
}

/// The outbox's size: the snapshot is a clone of it, and the staged claim holds at most all of
/// it.
pub fn outbox_size(workspace: &Workspace) -> Quantity {
    workspace
        .spec
        .outbox
        .as_ref()
        .map(|o| o.size.clone())
        .unwrap_or_else(|| Quantity(crate::api::workspace::DEFAULT_OUTBOX_SIZE.into()))
}

/// The profile's limit on a request's total size in bytes, empty for none. A limit that does not
/// read as a whole number of bytes (which HYG010 refuses) lets nothing through: one byte.
fn max_bytes(profile: &HostingProfile) -> String {
    let limit = profile
        .spec
        .exports
        .as_ref()
        .and_then(|e| e.max_total_size.as_ref());
    match limit {
        None => String::new(),
        Some(limit) => whole_bytes(limit).unwrap_or(1).to_string(),
    }
}

fn release_transfer<'a>(
    inputs: &ExportInputs,
    destination: &ExportDestination,
    image: &'a str,
    staged: Volume,
) -> Transfer<'a> {
    let request = inputs.request;
    let s3 = &destination.s3;
    let key_prefix = release_key_prefix(
        &s3.prefix,
        &request.namespace().unwrap_or_default(),
        &request.name_any(),
    );
    Transfer {
        name: "release",
        image,
        script: RELEASE_SCRIPT,
        args: inputs
            .staged
            .iter()
            .flat_map(|f| [f.sha256.clone(), f.path.clone()])
            .collect(),
        env: vec![
            ("ENDPOINT", s3.endpoint.clone()),
            ("BUCKET", s3.bucket.clone()),
            ("KEY_PREFIX", key_prefix),
            ("REGION", s3.region.clone()),
        ],
        volumes: vec![
            (staged, STAGED, true),
            transfer::credentials(&s3.credentials_secret_ref.name),
        ],
    }
}

/// The desktop reviewers see the staged files on: the profile's image, running its own command,
/// and the credential the gateway proves itself with.
struct ReviewDesktop<'a> {
    image: &'a str,
    volume: Volume,
    mount: VolumeMount,
}

/// One pod, `<request>-review-0`, with the staged files read-only at /staged: a desktop for the
/// reviewers when there is one, otherwise nothing to do but hold them.
#[allow(clippy::too_many_arguments)]
fn review_pod(
    names: &ExportNames,
    namespace: &str,
    owner: Owner,
    service_account: &str,
    image: &str,
    staged: Volume,
    desktop: Option<ReviewDesktop>,
    profile: &HostingProfile,
) -> StatefulSet {
    let transfer = Transfer {
        name: "review",
        image,
        script: "exec sleep 2147483647",
        args: Vec::new(),
        env: Vec::new(),
        volumes: vec![(staged, STAGED, true)],
    };
    let (mut container, mut volumes) = transfer.container();
    if let Some(desktop) = desktop {
        container.image = Some(desktop.image.into());
        container.command = None;
        container.ports = Some(vec![desktop::port()]);
        container.env = Some(vec![desktop::password_env()]);
        container.readiness_probe = Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("desktop".into()),
                host: None,
            }),
            period_seconds: Some(5),
            ..Default::default()
        });
        container
            .volume_mounts
            .get_or_insert_default()
            .push(desktop.mount);
        volumes.push(desktop.volume);
    }
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(names.review.clone()),
            namespace: Some(namespace.into()),
            labels: Some(owner.labels("review")),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(names.review.clone()),
            selector: LabelSelector {
                match_labels: Some(owner.pod_selector("review")),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(owner.labels("review")),
                    ..Default::default()
                }),
                spec: Some(pod::hardened_pod(
                    profile,
                    service_account,
                    vec![container],
                    volumes,
                    "Always",
                )),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The reviewers' right to see the staged files: through the gateway's screen on the review
/// pod, never the pod itself (one reviewer copying them out before the second approves would
/// make the two-person rule a one-person rule).
fn reviewer_access(
    request: &str,
    names: &ExportNames,
    namespace: &str,
    owner: Owner,
    inputs: &ExportInputs,
) -> Option<(Role, RoleBinding)> {
    if inputs.reviewers.is_empty() {
        return None;
    }
    let meta = ObjectMeta {
        name: Some(names.review.clone()),
        namespace: Some(namespace.into()),
        labels: Some(owner.labels("access")),
        ..Default::default()
    };
    let role = Role {
        metadata: meta.clone(),
        rules: Some(vec![
            access::named_rule(
                "hygie.io",
                "exportrequests",
                request,
                &[access::CONNECT_VERB],
            ),
            access::open_sessions(),
        ]),
    };
    let subjects = inputs
        .reviewers
        .iter()
        .map(|r| Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: match r.kind {
                MemberKind::User => "User".into(),
                MemberKind::Group => "Group".into(),
            },
            name: r.name.clone(),
            namespace: None,
        })
        .collect();
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: names.review.clone(),
        },
        subjects: Some(subjects),
    };
    Some((role, binding))
}

#[cfg(test)]
mod tests;
