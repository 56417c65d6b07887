//! Conditions and status writes. A status is written only when something other than
//! timestamps changed: a condition keeps its lastTransitionTime while its status stays the
//! same, so an unchanged status compares equal and is not written. It is written by
//! server-side apply, as one field manager: a field or condition no longer observed is
//! removed, not left behind by a merge.
//!
//! Besides each kind's own conditions, the ones GitOps tools read (kstatus): `Reconciling`
//! while Hygie works toward the spec, `Stalled` when it cannot get there without a change.
//! Both are present only while True, as kstatus expects of abnormal-true conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

use super::error::Result;

/// A condition as the reconciler sees it; times are filled in by [`merge`].
pub struct Observed {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Observed {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Observed {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// The new conditions, keeping each one's lastTransitionTime unless its status flipped.
pub fn merge(
    old: &[Condition],
    observed: Vec<Observed>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Vec<Condition> {
    observed
        .into_iter()
        .map(|o| {
            let status = if o.status { "True" } else { "False" }.to_owned();
            let previous = old.iter().find(|c| c.type_ == o.type_);
            let last_transition_time = match previous {
                Some(previous) if previous.status == status => {
                    previous.last_transition_time.clone()
                }
                _ => Time(now),
            };
            Condition {
                type_: o.type_.to_owned(),
                status,
                reason: o.reason.to_owned(),
                message: truncate(&o.message, 32 * 1024),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The field manager of every status Hygie writes.
const STATUS_MANAGER: &str = "hygie-status";

/// kstatus: Hygie is working toward the spec.
pub const RECONCILING: &str = "Reconciling";
/// kstatus: Hygie cannot reach the spec without a change to it or to what it refers to.
pub const STALLED: &str = "Stalled";

/// Writes `status` unless it equals `current`. Returns whether it wrote.
pub async fn write<K, S>(api: &Api<K>, object: &K, current: Option<&S>, status: S) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(&status) {
        return Ok(false);
    }
    let patch = Patch::Apply(serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    }));
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(STATUS_MANAGER).force(),
        &patch,
    )
    .await?;
    Ok(true)
}

/// At most `limit` bytes of `text`, cut at a character boundary.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_flips() {
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: jiff::Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let first = merge(
            &[],
            vec![Observed::new("Ready", true, "Ready", "ok")],
            Some(1),
            t0,
        );
        let same = merge(
            &first,
            vec![Observed::new("Ready", true, "Ready", "ok")],
            Some(1),
            t1,
        );
        assert_eq!(first, same, "nothing but time passed: nothing to write");
        let flipped = merge(
            &same,
            vec![Observed::new("Ready", false, "Suspended", "suspended")],
            Some(2),
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, Time(t1));
        assert_eq!(flipped[0].observed_generation, Some(2));
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("héllo", 100), "héllo");
        let cut = truncate(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with("..."), "{cut}");
    }
}
