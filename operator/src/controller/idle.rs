//! Idle workspaces: one nobody has had a session in for its profile's `idleAfterSeconds` stops
//! its workload, keeping its volumes and keys, and starts again when somebody runs `hygie
//! connect` (a new Session). What counts is the Sessions of the workspace, as the gateway
//! marks them: a session keeps it awake from its creation to its end, one opened and never
//! marked ended (a gateway stopped in the middle) for at most the longest a session may last.

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::{
    HostingProfile, Session, Workspace,
    session::{LONGEST_UNENDED_SECONDS, OPEN_WITHIN_SECONDS},
};

/// Whether a workspace may run now, as far as sessions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakefulness {
    /// Its profile stops no workspace for idleness.
    Unbounded,
    /// It runs, and becomes idle at `until` unless a session comes.
    Awake { until: Timestamp },
    /// Nobody has been in since `since`: its workload stops.
    Idle { since: Timestamp },
}

impl Wakefulness {
    pub fn is_idle(self) -> bool {
        matches!(self, Wakefulness::Idle { .. })
    }

    /// When this changes by the passing of time alone.
    pub fn deadline(self) -> Option<Timestamp> {
        match self {
            Wakefulness::Awake { until } => Some(until),
            _ => None,
        }
    }
}

/// Until when `session` keeps its workspace awake, seen at `now`.
fn awake_until(session: &Session, now: Timestamp) -> Timestamp {
    let status = session.status.as_ref();
    let created = session
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let within = |from: Timestamp, seconds: i64| {
        let end = from + SignedDuration::from_secs(seconds);
        if end > now { now } else { end }
    };
    match (
        status.and_then(|s| s.ended_at.as_ref()),
        status.and_then(|s| s.opened_at.as_ref()),
        status.and_then(|s| s.refused.as_ref()),
    ) {
        (Some(ended), _, _) => ended.0,
        (None, Some(opened), _) => within(opened.0, LONGEST_UNENDED_SECONDS),
        (None, None, Some(_)) => created,
        // A link not opened yet may still be: its workspace starts for it.
        (None, None, None) => within(created, OPEN_WITHIN_SECONDS),
    }
}

/// The seconds without a session after which `profile` stops a workspace, if it does: only
/// then are the Sessions read.
pub fn idle_after(profile: &HostingProfile) -> Option<u32> {
    profile
        .spec
        .sessions
        .as_ref()
        .and_then(|s| s.idle_after_seconds)
}

/// How `workspace`, stopped after `idle_after` seconds without a session, stands at `now`,
/// given every Session of the cluster.
pub fn wakefulness<'a>(
    workspace: &Workspace,
    idle_after: u32,
    sessions: impl IntoIterator<Item = &'a Session>,
    now: Timestamp,
) -> Wakefulness {
    let (namespace, name) = (workspace.namespace(), workspace.name_any());
    let created = workspace
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let last = sessions
        .into_iter()
        .filter(|s| s.namespace() == namespace && s.spec.workspace.as_deref() == Some(&name))
        .map(|s| awake_until(s, now))
        .fold(created, Timestamp::max);
    let until = last + SignedDuration::from_secs(i64::from(idle_after));
    match until > now {
        true => Wakefulness::Awake { until },
        false => Wakefulness::Idle { since: last },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn session(created: &str, status: serde_json::Value) -> Session {
        let mut session: Session = serde_json::from_value(serde_json::json!({
            "apiVersion": "hygie.io/v1alpha1", "kind": "Session",
            "metadata": {"name": "s", "namespace": "research", "creationTimestamp": created},
            "spec": {"workspace": "study", "user": "alice", "secretDigest": format!("sha256:{}", "0".repeat(64))},
        }))
        .unwrap();
        session.status = serde_json::from_value(status).unwrap();
        session
    }

    #[test]
    fn a_workspace_nobody_entered_for_its_idle_time_is_idle_and_a_new_session_wakes_it() {
        let mut workspace = crate::fixtures::workspace();
        workspace.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at("2026-01-01T08:00:00Z")),
        );
        let hour = 3600;
        let now = at("2026-01-01T12:00:00Z");
        let mut profile = crate::fixtures::profile();
        assert_eq!(
            idle_after(&profile),
            None,
            "no idle time unless the profile sets one"
        );
        profile.spec.sessions = Some(crate::api::hosting_profile::SessionLimits {
            max_seconds: None,
            idle_after_seconds: Some(hour),
        });
        assert_eq!(idle_after(&profile), Some(hour));
        assert_eq!(
            wakefulness(&workspace, hour, [], now),
            Wakefulness::Idle {
                since: at("2026-01-01T08:00:00Z")
            },
            "never entered: idle an hour after its creation"
        );
        let ended = session(
            "2026-01-01T10:00:00Z",
            serde_json::json!({"openedAt": "2026-01-01T10:00:05Z", "endedAt": "2026-01-01T11:30:00Z"}),
        );
        assert_eq!(
            wakefulness(&workspace, hour, [&ended], now),
            Wakefulness::Awake {
                until: at("2026-01-01T12:30:00Z")
            },
            "an hour after the last session ended"
        );
        let ongoing = session(
            "2026-01-01T09:00:00Z",
            serde_json::json!({"openedAt": "2026-01-01T09:00:05Z"}),
        );
        assert_eq!(
            wakefulness(&workspace, hour, [&ongoing], now),
            Wakefulness::Awake {
                until: at("2026-01-01T13:00:00Z")
            },
            "a session going on keeps it awake"
        );
        let waking = session("2026-01-01T11:59:30Z", serde_json::json!(null));
        assert!(!wakefulness(&workspace, hour, [&waking], now).is_idle());
        let refused = session("2026-01-01T10:00:00Z", serde_json::json!({"refused": "no"}));
        assert!(wakefulness(&workspace, hour, [&refused], now).is_idle());
        let mut elsewhere = ended.clone();
        elsewhere.spec.workspace = Some("other".into());
        assert!(wakefulness(&workspace, hour, [&elsewhere], now).is_idle());
        // A gateway stopped mid-session: the session counts for a day at most.
        let stale = session(
            "2025-12-30T10:00:00Z",
            serde_json::json!({"openedAt": "2025-12-30T10:00:00Z"}),
        );
        assert!(wakefulness(&workspace, hour, [&stale], now).is_idle());
    }
}
