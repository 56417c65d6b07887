use super::*;
use ExportPhase::*;

const SHA_A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8146d44c2c0e5a7bb8f6a7c1d";
const SHA_B: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";

fn files() -> Vec<String> {
    vec!["tables/t2.csv".into(), "figure.png".into()]
}

fn staged() -> Vec<StagedFile> {
    vec![
        StagedFile {
            path: "tables/t2.csv".into(),
            size: 1,
            sha256: SHA_A.into(),
        },
        StagedFile {
            path: "figure.png".into(),
            size: 1,
            sha256: SHA_B.into(),
        },
    ]
}

fn phase_after(phase: ExportPhase, facts: &Facts) -> Option<ExportPhase> {
    next(phase, facts).map(|t| t.phase)
}

#[test]
fn a_new_request_is_staged_then_reviewed_with_the_reported_digests() {
    let files = files();
    let facts = Facts {
        files: &files,
        ..Facts::default()
    };
    assert_eq!(phase_after(Submitted, &facts), Some(Staging));

    let running = Facts {
        stage: Some(JobOutcome::Running),
        ..facts
    };
    assert_eq!(
        next(Staging, &running),
        None,
        "nothing moves while it copies"
    );

    let report = format!("1 {SHA_A}\n1 {SHA_B}\n");
    let done = Facts {
        files: &files,
        stage: Some(JobOutcome::Succeeded(report)),
        ..Facts::default()
    };
    let moved = next(Staging, &done).unwrap();
    assert_eq!(moved.phase, InReview);
    assert_eq!(moved.staged, Some(staged()));
}

#[test]
fn a_report_that_does_not_match_the_request_fails_it() {
    let files = files();
    for report in [
        format!("1 {SHA_A}\n"),
        format!("1 {SHA_A}\nx {SHA_B}\n"),
        format!("1 {SHA_A}\n1 nothex\n"),
    ] {
        let facts = Facts {
            files: &files,
            stage: Some(JobOutcome::Succeeded(report.clone())),
            ..Facts::default()
        };
        assert_eq!(phase_after(Staging, &facts), Some(Failed), "{report:?}");
    }
}

#[test]
fn a_refused_file_fails_the_request_naming_it_and_why() {
    let files = files();
    let cases = [
        (
            "error 1 symlink",
            "figure.png: it is, or is reached through, a symbolic link",
        ),
        (
            "error 0 missing",
            "tables/t2.csv: no such file in the outbox",
        ),
        ("error 0 not-a-file", "tables/t2.csv: not a regular file"),
        (
            "error 1 too-large",
            "figure.png: the files up to this one exceed",
        ),
    ];
    for (report, said) in cases {
        let facts = Facts {
            files: &files,
            stage: Some(JobOutcome::Failed(Some(report.into()))),
            ..Facts::default()
        };
        let moved = next(Staging, &facts).unwrap();
        assert_eq!((moved.phase, moved.reason), (Failed, "StagingFailed"));
        assert!(
            moved.message.starts_with(said),
            "{report}: {}",
            moved.message
        );
    }
    let silent = Facts {
        files: &files,
        stage: Some(JobOutcome::Failed(None)),
        ..Facts::default()
    };
    assert_eq!(
        next(Staging, &silent).unwrap().message,
        "the staging Job failed"
    );
}

#[test]
fn reviews_decide_only_in_review() {
    let pending = Facts {
        verdict: Some(Verdict::Pending {
            missing: vec!["Dataset/d needs 1 more".into()],
        }),
        ..Facts::default()
    };
    assert_eq!(next(InReview, &pending), None);
    let rejected = Facts {
        verdict: Some(Verdict::Rejected {
            by: "bob".into(),
            reason: "cells under 11".into(),
        }),
        ..Facts::default()
    };
    let moved = next(InReview, &rejected).unwrap();
    assert_eq!(moved.phase, Rejected);
    assert_eq!(moved.message, "rejected by bob: cells under 11");
    let approved = Facts {
        verdict: Some(Verdict::Approved {
            by: vec!["bob".into(), "carol".into()],
        }),
        ..Facts::default()
    };
    assert_eq!(phase_after(InReview, &approved), Some(Approved));
    assert_eq!(
        phase_after(Staging, &approved),
        None,
        "approvals before staging ends release nothing"
    );
    assert_eq!(phase_after(Approved, &Facts::default()), Some(Releasing));
}

#[test]
fn a_release_is_released_only_when_every_object_read_back_has_the_reviewed_digest() {
    let staged = staged();
    let good = Facts {
        staged: &staged,
        release: Some(JobOutcome::Succeeded(format!("{SHA_A}\n{SHA_B}\n"))),
        released_to: "s3://out/ns/r/".into(),
        ..Facts::default()
    };
    let moved = next(Releasing, &good).unwrap();
    assert_eq!(moved.phase, Released);
    let released = moved.released.unwrap();
    assert_eq!(released[0].url, "s3://out/ns/r/tables/t2.csv");
    assert_eq!(released[1].sha256, SHA_B);

    let swapped = Facts {
        staged: &staged,
        release: Some(JobOutcome::Succeeded(format!("{SHA_B}\n{SHA_A}\n"))),
        ..Facts::default()
    };
    let moved = next(Releasing, &swapped).unwrap();
    assert_eq!((moved.phase, moved.reason), (Failed, "ReleaseFailed"));
    assert!(
        moved.message.contains("not the reviewed"),
        "{}",
        moved.message
    );

    let refused = Facts {
        staged: &staged,
        release: Some(JobOutcome::Failed(Some("error 1 checksum-differs".into()))),
        ..Facts::default()
    };
    let moved = next(Releasing, &refused).unwrap();
    assert!(
        moved
            .message
            .starts_with("figure.png: the object read back")
    );
}

#[test]
fn a_rule_that_stops_holding_fails_any_request_under_way_and_none_that_ended() {
    let refused = Facts {
        refused: Some("HYG018 ...".into()),
        ..Facts::default()
    };
    for phase in [Submitted, Staging, InReview, Approved, Releasing] {
        assert_eq!(phase_after(phase, &refused), Some(Failed), "{phase:?}");
    }
    for phase in [Released, Rejected, Failed, Cancelled, Expired] {
        assert!(is_final(phase));
        assert_eq!(next(phase, &refused), None, "{phase:?}");
    }
}

#[test]
fn a_request_not_approved_by_its_deadline_expires_and_one_approved_goes_on() {
    let late = Facts {
        expired: Some("not approved within 2592000 s of its submission".into()),
        ..Facts::default()
    };
    for phase in [Submitted, Staging, InReview] {
        let moved = next(phase, &late).unwrap();
        assert_eq!(
            (moved.phase, moved.reason),
            (Expired, "Expired"),
            "{phase:?}"
        );
    }
    assert_eq!(
        phase_after(Approved, &late),
        Some(Releasing),
        "an approved request is released"
    );
    assert_eq!(next(Releasing, &late), None);
}
