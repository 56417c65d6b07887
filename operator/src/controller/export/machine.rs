//! The airlock's state machine, without a client: from a request's phase and what was observed
//! (the rules, the Jobs' reports, the reviews' count), the next phase and why.
//!
//! ```text
//! Submitted -> Staging -> InReview -> Approved -> Releasing -> Released
//!                 |           |                      |
//!                 v           v                      v
//!              Failed      Rejected               Failed
//! ```
//! Any phase before the end moves to Failed when a rule stops holding: nothing leaves a
//! workspace that breaks one. A request not approved by its review deadline is Expired.

use crate::{
    api::export::{
        ExportPhase::{self, Failed},
        ReleasedObject, StagedFile,
    },
    policy::export::Verdict,
};

/// What a Job reported, from its status and its pod's termination message.
#[derive(Clone, Debug, PartialEq)]
pub enum JobOutcome {
    Running,
    Succeeded(String),
    Failed(Option<String>),
}

/// What was observed, each part only where the phase needs it.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    /// The rules' verdict when one fails.
    pub refused: Option<String>,
    /// The review deadline, once passed.
    pub expired: Option<String>,
    pub files: &'a [String],
    pub stage: Option<JobOutcome>,
    pub staged: &'a [StagedFile],
    pub verdict: Option<Verdict>,
    pub release: Option<JobOutcome>,
    /// `s3://<bucket>/<key prefix>`, before each file's path.
    pub released_to: String,
}

/// A move to another phase.
#[derive(Debug, PartialEq)]
pub struct Transition {
    pub phase: ExportPhase,
    /// The Event's and the condition's reason.
    pub reason: &'static str,
    pub message: String,
    pub staged: Option<Vec<StagedFile>>,
    pub released: Option<Vec<ReleasedObject>>,
}

impl Transition {
    /// A move to Failed, for `reason`.
    pub fn failed(reason: &'static str, message: String) -> Self {
        Transition::to(Failed, reason, message)
    }

    fn to(phase: ExportPhase, reason: &'static str, message: impl Into<String>) -> Self {
        Transition {
            phase,
            reason,
            message: message.into(),
            staged: None,
            released: None,
        }
    }
}

/// Whether a request in `phase` is over: nothing of it remains but its record.
pub fn is_final(phase: ExportPhase) -> bool {
    matches!(
        phase,
        ExportPhase::Released
            | ExportPhase::Rejected
            | ExportPhase::Failed
            | ExportPhase::Cancelled
            | ExportPhase::Expired
    )
}

/// The next phase from `phase`, if any.
pub fn next(phase: ExportPhase, facts: &Facts) -> Option<Transition> {
    use ExportPhase::*;
    if is_final(phase) {
        return None;
    }
    if let Some(refused) = &facts.refused {
        return Some(Transition::to(Failed, "RulesViolated", refused.clone()));
    }
    if let (Some(deadline), Submitted | Staging | InReview) = (&facts.expired, phase) {
        return Some(Transition::to(Expired, "Expired", deadline.clone()));
    }
    match phase {
        Submitted => Some(Transition::to(
            Staging,
            "Staging",
            format!(
                "copying {} file(s) from a snapshot of the outbox",
                facts.files.len()
            ),
        )),
        Staging => match facts.stage.as_ref()? {
            JobOutcome::Running => None,
            JobOutcome::Succeeded(report) => Some(match staged_files(facts.files, report) {
                Ok(staged) => {
                    let bytes: i64 = staged.iter().map(|f| f.size).sum();
                    Transition {
                        staged: Some(staged),
                        ..Transition::to(
                            InReview,
                            "InReview",
                            format!(
                                "{} file(s), {bytes} bytes, staged; waiting for the reviewers",
                                facts.files.len()
                            ),
                        )
                    }
                }
                Err(why) => Transition::to(Failed, "StagingFailed", why),
            }),
            JobOutcome::Failed(report) => Some(Transition::to(
                Failed,
                "StagingFailed",
                failure(facts.files, report.as_deref(), "the staging Job failed"),
            )),
        },
        InReview => match facts.verdict.as_ref()? {
            Verdict::Pending { .. } => None,
            Verdict::Rejected { by, reason } => Some(Transition::to(
                Rejected,
                "Rejected",
                format!("rejected by {by}: {reason}"),
            )),
            Verdict::Approved { by } => Some(Transition::to(
                Approved,
                "Approved",
                format!("approved by {}", by.join(", ")),
            )),
        },
        Approved => Some(Transition::to(
            Releasing,
            "Releasing",
            format!("uploading to {}", facts.released_to),
        )),
        Releasing => match facts.release.as_ref()? {
            JobOutcome::Running => None,
            JobOutcome::Succeeded(report) => Some(
                match released_objects(facts.staged, report, &facts.released_to) {
                    Ok(released) => Transition {
                        released: Some(released),
                        ..Transition::to(
                            Released,
                            "Released",
                            format!(
                                "{} file(s) released to {}, each read back with the reviewed sha256",
                                facts.staged.len(),
                                facts.released_to
                            ),
                        )
                    },
                    Err(why) => Transition::to(Failed, "ReleaseFailed", why),
                },
            ),
            JobOutcome::Failed(report) => {
                let paths: Vec<String> = facts.staged.iter().map(|f| f.path.clone()).collect();
                Some(Transition::to(
                    Failed,
                    "ReleaseFailed",
                    failure(&paths, report.as_deref(), "the release Job failed"),
                ))
            }
        },
        Released | Rejected | Failed | Cancelled | Expired => None,
    }
}

/// The staging report, `<size> <sha256>` per file in order, as staged files.
fn staged_files(files: &[String], report: &str) -> Result<Vec<StagedFile>, String> {
    let lines: Vec<&str> = report.lines().collect();
    if lines.len() != files.len() {
        return Err(format!(
            "the staging Job reported {} file(s) for {} requested",
            lines.len(),
            files.len()
        ));
    }
    files
        .iter()
        .zip(lines)
        .map(|(path, line)| {
            let parsed = line.split_once(' ').and_then(|(size, sha)| {
                let size = size.parse::<i64>().ok()?;
                is_sha256(sha).then(|| (size, sha.to_owned()))
            });
            let (size, sha256) = parsed
                .ok_or_else(|| format!("the staging Job's report is unreadable: {line:?}"))?;
            Ok(StagedFile {
                path: path.clone(),
                size,
                sha256,
            })
        })
        .collect()
}

/// The release report, the sha256 read back per file in order, checked against the staged
/// digests once more.
fn released_objects(
    staged: &[StagedFile],
    report: &str,
    released_to: &str,
) -> Result<Vec<ReleasedObject>, String> {
    let lines: Vec<&str> = report.lines().collect();
    if lines.len() != staged.len() {
        return Err(format!(
            "the release Job reported {} object(s) for {} staged",
            lines.len(),
            staged.len()
        ));
    }
    staged
        .iter()
        .zip(lines)
        .map(|(file, sha256)| match sha256 == file.sha256 {
            true => Ok(ReleasedObject {
                url: format!("{released_to}{}", file.path),
                sha256: sha256.to_owned(),
            }),
            false => Err(format!(
                "{}: the object read back has sha256 {sha256}, not the reviewed {}",
                file.path, file.sha256
            )),
        })
        .collect()
}

/// Why a Job failed, from its `error <index> <what>` report when it gave one.
fn failure(files: &[String], report: Option<&str>, otherwise: &str) -> String {
    let Some(report) = report else {
        return otherwise.to_owned();
    };
    let mut words = report.split_whitespace();
    let (Some("error"), Some(index), Some(what)) = (words.next(), words.next(), words.next())
    else {
        return otherwise.to_owned();
    };
    let path = index
        .parse::<usize>()
        .ok()
        .and_then(|i| files.get(i))
        .map(String::as_str)
        .unwrap_or("?");
    let why = match what {
        "missing" => "no such file in the outbox",
        "symlink" => "it is, or is reached through, a symbolic link; only regular files leave",
        "not-a-file" => "not a regular file (a directory, a device...): name files",
        "too-large" => "the files up to this one exceed the profile's exports.maxTotalSize",
        "staged-changed" => "the staged copy no longer has the reviewed sha256",
        "checksum-differs" => {
            "the object read back from the destination differs from the staged file"
        }
        _ => what,
    };
    format!("{path}: {why}")
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;
