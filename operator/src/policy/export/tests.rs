use super::*;
use crate::fixtures::{self, export_review};

/// The dataset `cohort` reviewed by bob, carol and the group `dpo-office`, two approvals.
fn panels() -> Vec<Panel> {
    vec![Panel {
        of: "Dataset/cohort".into(),
        reviewers: vec![
            Reviewer {
                kind: MemberKind::User,
                name: "bob".into(),
            },
            Reviewer {
                kind: MemberKind::User,
                name: "carol".into(),
            },
            Reviewer {
                kind: MemberKind::Group,
                name: "dpo-office".into(),
            },
        ],
        required: 2,
    }]
}

fn tally(reviews: &[ExportReview]) -> (Verdict, Vec<ReviewRecord>) {
    count(
        &fixtures::export_request(),
        &fixtures::workspace(),
        &panels(),
        reviews,
    )
}

#[test]
fn two_distinct_listed_reviewers_approve() {
    let (verdict, records) = tally(&[
        export_review("bob", &[], true),
        export_review("carol", &[], true),
    ]);
    assert_eq!(
        verdict,
        Verdict::Approved {
            by: vec!["bob".into(), "carol".into()]
        }
    );
    assert!(records.iter().all(|r| r.counted));
}

#[test]
fn one_approval_is_not_enough() {
    let (verdict, _) = tally(&[export_review("bob", &[], true)]);
    assert_eq!(
        verdict,
        Verdict::Pending {
            missing: vec!["Dataset/cohort needs 1 more".into()]
        }
    );
}

#[test]
fn the_requester_cannot_approve_their_own_request() {
    let (verdict, records) = tally(&[
        export_review("alice", &[], true),
        export_review("bob", &[], true),
    ]);
    assert!(matches!(verdict, Verdict::Pending { .. }));
    assert_eq!(
        records[0].ignored_because.as_deref(),
        Some("the requester cannot review their own request")
    );
}

#[test]
fn a_member_cannot_approve_even_when_listed() {
    // `analysts` is a member group of the workspace; dave is also in the reviewers' group.
    let (verdict, records) = tally(&[
        export_review("dave", &["dpo-office", "analysts"], true),
        export_review("bob", &[], true),
    ]);
    assert!(matches!(verdict, Verdict::Pending { .. }));
    assert_eq!(
        records[0].ignored_because.as_deref(),
        Some("a member of the workspace cannot review its exports")
    );
}

#[test]
fn a_group_the_api_server_vouched_for_makes_a_reviewer() {
    let (verdict, _) = tally(&[
        export_review("erin", &["dpo-office"], true),
        export_review("bob", &[], true),
    ]);
    assert_eq!(
        verdict,
        Verdict::Approved {
            by: vec!["erin".into(), "bob".into()]
        }
    );
}

#[test]
fn an_unlisted_user_and_a_second_review_do_not_count() {
    let (verdict, records) = tally(&[
        export_review("mallory", &[], true),
        export_review("bob", &[], true),
        export_review("bob", &[], true),
    ]);
    assert!(matches!(verdict, Verdict::Pending { .. }));
    let ignored: Vec<_> = records
        .iter()
        .map(|r| r.ignored_because.as_deref())
        .collect();
    assert_eq!(
        ignored,
        [
            Some("not a listed reviewer of the workspace's datasets"),
            None,
            Some("this reviewer has already reviewed the request"),
        ]
    );
}

#[test]
fn one_counted_reject_ends_the_request_and_an_uncounted_one_does_not() {
    let (verdict, _) = tally(&[
        export_review("mallory", &[], false),
        export_review("bob", &[], true),
        export_review("carol", &[], false),
        export_review("erin", &["dpo-office"], true),
    ]);
    assert_eq!(
        verdict,
        Verdict::Rejected {
            by: "carol".into(),
            reason: "checked the cell sizes".into()
        }
    );
}

#[test]
fn every_mounted_dataset_must_be_satisfied() {
    let mut panels = panels();
    panels.push(Panel {
        of: "Dataset/imaging".into(),
        reviewers: vec![Reviewer {
            kind: MemberKind::User,
            name: "frank".into(),
        }],
        required: 1,
    });
    let reviews = [
        export_review("bob", &[], true),
        export_review("carol", &[], true),
    ];
    let (verdict, _) = count(
        &fixtures::export_request(),
        &fixtures::workspace(),
        &panels,
        &reviews,
    );
    assert_eq!(
        verdict,
        Verdict::Pending {
            missing: vec!["Dataset/imaging needs 1 more".into()]
        }
    );
}

#[test]
fn identifying_data_allows_no_export_unless_its_owner_says_so() {
    let mut dataset = fixtures::dataset();
    assert!(
        allows_export(&dataset),
        "pseudonymised data may be exported by default"
    );
    dataset.spec.classification = Classification::Identifying;
    assert!(!allows_export(&dataset));
    dataset.spec.export = Some(DatasetExport {
        allowed: Some(true),
        ..Default::default()
    });
    assert!(allows_export(&dataset));
}

#[test]
fn a_panel_that_can_never_approve_is_refused() {
    let mut findings = Findings::for_object(&fixtures::dataset());
    let bob = Reviewer {
        kind: MemberKind::User,
        name: "bob".into(),
    };
    check_panel(&mut findings, "spec.export", &[bob.clone(), bob], Some(2));
    let messages: Vec<String> = findings.into_vec().iter().map(|v| v.to_string()).collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].starts_with(
        "HYG019 Dataset/research/cohort spec.export.reviewers[1]: `bob` is listed twice"
    ));
    assert!(
        messages[1].contains("2 distinct approvals are required but only 1 reviewer(s) are listed")
    );
}

#[test]
fn only_a_member_of_the_workspace_requests_an_export_by_name_or_by_a_vouched_group() {
    let inventory = fixtures::inventory(fixtures::profile(), vec![fixtures::dataset()]);
    let workspaces = [fixtures::workspace()];
    let refusals = |request: &ExportRequest| -> Vec<String> {
        check_request(request, &inventory, &workspaces)
            .iter()
            .filter(|v| v.field == "spec.requester")
            .map(|v| v.message.clone())
            .collect()
    };
    let mut request = fixtures::export_request();
    assert!(refusals(&request).is_empty(), "alice is an Owner");
    request.spec.requester = "mallory".into();
    let refused = refusals(&request);
    assert_eq!(refused.len(), 1);
    assert!(refused[0].starts_with("`mallory` is not a member of Workspace `study`"));
    request.spec.requester_groups = vec!["analysts".into()];
    assert!(
        refusals(&request).is_empty(),
        "a member through the group analysts"
    );
}
