//! Why a reconcile did not finish. Invalid input is not here: it becomes a condition and an
//! Event and waits for a change. These are the cases worth retrying.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("{0} is still being deleted")]
    StillDeleting(String),

    #[error("still used by {0}")]
    InUse(String),

    #[error("waiting for {0}")]
    Waiting(String),

    #[error("{0}: Hygie never adopts or changes another object's child; rename or remove it")]
    NotOurs(String),

    /// The key Secret of a claim that exists was deleted. A new key would not open the volume
    /// (a LUKS volume opens only with the passphrase it was formatted with), so none is made.
    #[error(
        "the passphrase Secret {secret} of the existing claim {claim} is gone: a new key would not open that volume, so Hygie makes none; restore the Secret from your key backup"
    )]
    KeyLost { secret: String, claim: String },

    /// The intent of an irreversible step could not be written to the audit sink: the step
    /// waits, for its proof would be missing for ever.
    #[error(
        "the audit sink ({sink}) did not take the record of {step}, which waits for it: {reason}"
    )]
    AuditSink {
        sink: String,
        step: String,
        reason: String,
    },

    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an error is: what decides whether it is waited for, retried soon,
/// backed off or said in the `Stalled` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Conflict,
    Forbidden,
    Invalid,
    Api,
    Deleting,
    InUse,
    Waiting,
    NotOurs,
    KeyLost,
    AuditSink,
    Finalizer,
}

impl Category {
    /// A short, stable name, used as a metric label and in the log.
    pub fn label(self) -> &'static str {
        match self {
            Category::Conflict => "conflict",
            Category::Forbidden => "forbidden",
            Category::Invalid => "invalid",
            Category::Api => "api",
            Category::Deleting => "deleting",
            Category::InUse => "in_use",
            Category::Waiting => "waiting",
            Category::NotOurs => "not_ours",
            Category::KeyLost => "key_lost",
            Category::AuditSink => "audit_sink",
            Category::Finalizer => "finalizer",
        }
    }
}

impl Error {
    /// What kind of failure this is, out of the finalizer's wrapping.
    pub fn category(&self) -> Category {
        match self.cause() {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => Category::Conflict,
            Error::Kube(kube::Error::Api(status)) if status.code == 403 => Category::Forbidden,
            Error::Kube(kube::Error::Api(status)) if status.code == 422 => Category::Invalid,
            Error::Kube(_) => Category::Api,
            Error::StillDeleting(_) => Category::Deleting,
            Error::InUse(_) => Category::InUse,
            Error::Waiting(_) => Category::Waiting,
            Error::NotOurs(_) => Category::NotOurs,
            Error::KeyLost { .. } => Category::KeyLost,
            Error::AuditSink { .. } => Category::AuditSink,
            Error::Finalizer(_) => Category::Finalizer,
        }
    }

    /// Whether this is an expected wait (a key, a deletion, a user of the dataset), not a
    /// failure: it is retried without being counted as an error.
    pub fn is_wait(&self) -> bool {
        matches!(
            self.category(),
            Category::Waiting | Category::Deleting | Category::InUse
        )
    }

    /// Whether trying again cannot help until something changes: the API server refused the
    /// request as invalid or forbidden, the object belongs to another owner, or a volume's key
    /// is gone. The object is marked Stalled and retried with a growing delay.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.category(),
            Category::Invalid | Category::Forbidden | Category::NotOurs | Category::KeyLost
        )
    }

    /// Whether the object says in its `Stalled` condition that it cannot converge: a permanent
    /// error, or an irreversible step waiting for the audit sink (retried every 10 s, as the
    /// sink may be back at any moment).
    pub fn stalls(&self) -> bool {
        self.is_permanent() || self.category() == Category::AuditSink
    }

    /// The error itself, out of the finalizer's wrapping of an apply or a cleanup.
    fn cause(&self) -> &Error {
        match self {
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.cause(),
                _ => self,
            },
            _ => self,
        }
    }

    /// The reason of the `Stalled` condition an error sets.
    pub fn reason(&self) -> &'static str {
        match self.category() {
            Category::Invalid => "RefusedAsInvalid",
            Category::Forbidden => "Forbidden",
            Category::NotOurs => "NameTakenByAnotherObject",
            Category::KeyLost => "KeyLost",
            Category::AuditSink => "AuditSinkUnavailable",
            _ => "Failed",
        }
    }

    /// How long to wait before trying again.
    pub fn retry_after(&self) -> Duration {
        match self.category() {
            Category::Deleting | Category::Waiting => Duration::from_secs(2),
            Category::InUse => Duration::from_secs(30),
            _ => Duration::from_secs(10),
        }
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(error: kube::runtime::finalizer::Error<Error>) -> Self {
        Error::Finalizer(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleanup_waiting_for_the_audit_sink_stalls_and_is_tried_again_soon() {
        let waiting = Error::AuditSink {
            sink: "bucket `audit`".into(),
            step: "Shredded of Dataset/chu/cohort".into(),
            reason: "HTTP 404 Not Found: NoSuchBucket".into(),
        };
        let wrapped = Error::from(kube::runtime::finalizer::Error::CleanupFailed(waiting));
        assert!(wrapped.stalls(), "said in the Stalled condition");
        assert!(!wrapped.is_permanent(), "not backed off to ten minutes");
        assert_eq!(wrapped.reason(), "AuditSinkUnavailable");
        assert_eq!(
            wrapped.category().label(),
            "audit_sink",
            "the metric's label"
        );
        assert_eq!(wrapped.retry_after(), Duration::from_secs(10));
        assert!(
            wrapped
                .to_string()
                .contains("Shredded of Dataset/chu/cohort")
        );
        let deleting = Error::from(kube::runtime::finalizer::Error::CleanupFailed(
            Error::StillDeleting("cohort-data".into()),
        ));
        assert!(!deleting.stalls() && deleting.is_wait());
    }
}
