//! Who the gateway lets in, decided by the API server: the browser presents the secret of a
//! Session; the Session names the user who opened it (as the API server authenticated them,
//! by the admission policy `hygie-session-identity`); the gateway marks it opened (once: the
//! write carries the version it read, so a second browser, or a second gateway replica, loses)
//! and asks the API server by a SubjectAccessReview whether that user may `connect` to what it
//! names. A review is opened only to reviewers who can count: not the requester, and not a
//! member of the workspace the files come from.

use k8s_openapi::{
    api::{
        authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
        core::v1::Pod,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, PostParams},
};
use std::time::Duration;

use thiserror::Error;

use crate::{
    api::{
        ExportRequest, HostingProfile, Session, Workspace,
        session::{OPEN_WITHIN_SECONDS, SessionStatus, secret_digest},
        workspace::MemberKind,
    },
    build::{CONNECT_VERB, REVIEW_SUFFIX, labels},
};

/// Why a browser was not let in. The browser is told only that it was refused; the reason goes
/// to the log, the audit sink and the Session's status.
#[derive(Debug, Error)]
pub enum Refused {
    #[error("no such session")]
    NoSession,
    #[error("the secret is not the session's")]
    WrongSecret,
    #[error("the session was already opened")]
    AlreadyOpened,
    #[error("the session was not opened within {OPEN_WITHIN_SECONDS} s of its creation")]
    Expired,
    #[error("{user} may not connect to {target}, says the API server")]
    NotAllowed { user: String, target: String },
    #[error("{0} requested these files, and may not review them")]
    Requester(String),
    #[error("{0} is a member of workspace {1}, whose files these are, and may not review them")]
    Member(String, String),
    #[error("{0} has no ready pod with an address")]
    NoPod(String),
    #[error("the API server: {0}")]
    Api(#[from] kube::Error),
}

/// Where an admitted session goes, and whose it is.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub session: Session,
    pub user: String,
    pub groups: Vec<String>,
    /// `Workspace/<name>` or `ExportRequest/<name>`.
    pub target: String,
    /// UID of the workspace or export request: the desktop password is derived from it.
    pub target_uid: String,
    /// The HostingProfile of the workspace (of the files, for a review): its session limits.
    pub profile: String,
    pub pod_address: String,
}

/// Admits the browser holding `secret` into Session `namespace/name`, or says why not.
pub async fn admit(
    client: &Client,
    namespace: &str,
    name: &str,
    secret: &str,
    now: jiff::Timestamp,
) -> Result<Admitted, Refused> {
    let sessions: Api<Session> = Api::namespaced(client.clone(), namespace);
    let mut session = sessions.get_opt(name).await?.ok_or(Refused::NoSession)?;
    // Digests of 256-bit secrets: comparing them in variable time reveals nothing of a secret.
    if secret_digest(secret) != session.spec.secret_digest {
        return Err(Refused::WrongSecret);
    }
    if session
        .status
        .as_ref()
        .is_some_and(|s| s.opened_at.is_some())
    {
        return Err(Refused::AlreadyOpened);
    }
    let created = session.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if created.is_none_or(|c| now.duration_since(c).as_secs() > OPEN_WITHIN_SECONDS) {
        return Err(Refused::Expired);
    }
    // Once: the status write carries the version read, so only one opening wins.
    session.status = Some(SessionStatus {
        opened_at: Some(Time(now)),
        refused: None,
        ended_at: None,
    });
    session = sessions
        .replace_status(name, &PostParams::default(), &session)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => Refused::AlreadyOpened,
            other => Refused::Api(other),
        })?;

    let user = session.spec.user.clone();
    let groups = session.spec.groups.clone();
    let (resource, target_name) = match (&session.spec.workspace, &session.spec.review) {
        (Some(workspace), _) => ("workspaces", workspace.clone()),
        (None, Some(request)) => ("exportrequests", request.clone()),
        (None, None) => return Err(Refused::NoSession),
    };
    allowed(client, namespace, &user, &groups, resource, &target_name).await?;

    let (target, target_uid, pod, owner, profile) = match resource {
        "workspaces" => {
            let workspace: Api<Workspace> = Api::namespaced(client.clone(), namespace);
            let workspace = workspace.get(&target_name).await?;
            let uid = workspace.uid().unwrap_or_default();
            let pod = format!("{target_name}-0");
            (
                format!("Workspace/{target_name}"),
                uid,
                pod,
                labels::WORKSPACE,
                workspace.spec.hosting_profile,
            )
        }
        _ => {
            let requests: Api<ExportRequest> = Api::namespaced(client.clone(), namespace);
            let request = requests.get(&target_name).await?;
            let workspace = may_review(client, namespace, &request, &user, &groups).await?;
            let uid = request.uid().unwrap_or_default();
            let pod = format!("{target_name}{REVIEW_SUFFIX}-0");
            (
                format!("ExportRequest/{target_name}"),
                uid,
                pod,
                labels::EXPORT_REQUEST,
                workspace.spec.hosting_profile,
            )
        }
    };
    let pod_address = address(client, namespace, &pod, (owner, &target_name)).await?;
    Ok(Admitted {
        session,
        user,
        groups,
        target,
        target_uid,
        profile,
        pod_address,
    })
}

/// Asks the API server whether `user` of `groups` may `connect` to the named object.
async fn allowed(
    client: &Client,
    namespace: &str,
    user: &str,
    groups: &[String],
    resource: &str,
    name: &str,
) -> Result<(), Refused> {
    let review = SubjectAccessReview {
        metadata: ObjectMeta::default(),
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(groups.to_vec()),
            resource_attributes: Some(ResourceAttributes {
                group: Some("hygie.io".into()),
                resource: Some(resource.into()),
                verb: Some(CONNECT_VERB.into()),
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    match answer.status.is_some_and(|s| s.allowed) {
        true => Ok(()),
        false => Err(Refused::NotAllowed {
            user: user.to_owned(),
            target: format!("{resource}/{name}"),
        }),
    }
}

/// A reviewer who can count: not the requester, not a member of the workspace, which it
/// returns.
async fn may_review(
    client: &Client,
    namespace: &str,
    request: &ExportRequest,
    user: &str,
    groups: &[String],
) -> Result<Workspace, Refused> {
    if request.spec.requester == user {
        return Err(Refused::Requester(user.to_owned()));
    }
    let workspaces: Api<Workspace> = Api::namespaced(client.clone(), namespace);
    let workspace = workspaces.get(&request.spec.workspace).await?;
    let member = workspace.spec.members.iter().any(|m| match m.kind {
        MemberKind::User => m.name == user,
        MemberKind::Group => groups.contains(&m.name),
    });
    match member {
        true => Err(Refused::Member(user.to_owned(), workspace.name_any())),
        false => Ok(workspace),
    }
}

/// Marks `session` ended now, so that its workspace's idle time starts. The status is written
/// over the version read, and read again on a conflict.
pub async fn mark_ended(client: &Client, session: &Session) -> Result<(), kube::Error> {
    let namespace = session.namespace().unwrap_or_default();
    let sessions: Api<Session> = Api::namespaced(client.clone(), &namespace);
    let name = session.name_any();
    let mut last = None;
    for _ in 0..3 {
        let mut current = sessions.get(&name).await?;
        let status = current.status.get_or_insert_with(SessionStatus::default);
        status.ended_at = Some(Time(jiff::Timestamp::now()));
        match sessions
            .replace_status(&name, &PostParams::default(), &current)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                last = Some(kube::Error::Api(status));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("three conflicts"))
}

/// How long a session to a workspace of `profile` may last: the gateway's longest, or the
/// profile's if shorter. A profile that cannot be read shortens nothing but is no reason to
/// refuse: the gateway's bound still holds.
pub async fn longest(client: &Client, profile: &str, gateway: Duration) -> Duration {
    let profiles: Api<HostingProfile> = Api::all(client.clone());
    let of_profile = match profiles.get_opt(profile).await {
        Ok(found) => found
            .and_then(|p| p.spec.sessions)
            .and_then(|s| s.max_seconds)
            .map(|s| Duration::from_secs(u64::from(s))),
        Err(e) => {
            tracing::warn!(profile, error = %e, "cannot read the profile's session limits");
            None
        }
    };
    of_profile.map_or(gateway, |p| p.min(gateway))
}

/// How long the gateway waits for the pod of a workspace that is starting: one the session
/// has just woken from idleness.
const WAKING: Duration = Duration::from_secs(90);

/// The address of the pod Hygie runs for the target, once it is ready (waiting for it up to
/// [`WAKING`]): a pod of that name that does not wear Hygie's labels for it (which the
/// admission policy `hygie-labels-guarded` keeps for pods of Hygie's workloads) is never
/// connected to.
async fn address(
    client: &Client,
    namespace: &str,
    pod: &str,
    owner: (&str, &str),
) -> Result<String, Refused> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + WAKING;
    loop {
        let found = pods.get_opt(pod).await?;
        let hygies = found.as_ref().is_some_and(|p| {
            let labels = p.labels();
            labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER)
                && labels.get(owner.0).map(String::as_str) == Some(owner.1)
        });
        let status = found.filter(|_| hygies).and_then(|p| p.status);
        let ready = status.as_ref().is_some_and(|s| {
            (s.conditions.iter().flatten()).any(|c| c.type_ == "Ready" && c.status == "True")
        });
        match status.and_then(|s| s.pod_ip) {
            Some(ip) if ready => return Ok(ip),
            _ if tokio::time::Instant::now() >= deadline => {
                return Err(Refused::NoPod(pod.to_owned()));
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}
