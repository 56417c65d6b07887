use super::*;
use crate::{
    api::export::staged_digest,
    fixtures::{self, export_review},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::{Digest, Sha256};

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

/// bob's and carol's approvals of `table-1`, as the fixture stages it.
fn two_approvals() -> Vec<ExportReview> {
    vec![
        export_review("bob", &[], true),
        export_review("carol", &[], true),
    ]
}

fn ignored(records: &[ReviewRecord]) -> Vec<Option<&str>> {
    records
        .iter()
        .map(|r| r.ignored_because.as_deref())
        .collect()
}

#[test]
fn approvals_of_an_earlier_request_of_the_same_name_do_not_count() {
    // table-1 was released, deleted and submitted again with other files: a new UID.
    let mut replayed = fixtures::export_request();
    replayed.metadata.uid = Some("0d1e2f30-4a5b-4c6d-8e9f-a0b1c2d3e4f5".into());
    let (verdict, records) = count(
        &replayed,
        &fixtures::workspace(),
        &panels(),
        &two_approvals(),
    );
    assert!(matches!(verdict, Verdict::Pending { .. }), "{verdict:?}");
    assert!(
        ignored(&records).iter().all(|why| why.is_some_and(
            |w| w.starts_with("it reviews another request of this name (UID 5b0c7a1e-")
        )),
        "{records:?}"
    );
}

#[test]
fn approvals_of_other_bytes_do_not_count() {
    let mut restaged = fixtures::export_request();
    let status = restaged.status.as_mut().unwrap();
    status.staged_files[0].size += 1;
    status.staged_digest = Some(staged_digest(&status.staged_files));
    let (verdict, records) = count(
        &restaged,
        &fixtures::workspace(),
        &panels(),
        &two_approvals(),
    );
    assert!(matches!(verdict, Verdict::Pending { .. }), "{verdict:?}");
    assert!(
        records[0]
            .ignored_because
            .as_deref()
            .is_some_and(|w| w.starts_with("it reviews other bytes (sha256:")),
        "{records:?}"
    );
}

#[test]
fn approvals_made_before_the_review_opened_do_not_count() {
    let mut early = two_approvals();
    early[1].metadata.creation_timestamp = Some(Time("2027-01-04T08:59:59Z".parse().unwrap()));
    let (verdict, records) = tally(&early);
    assert!(matches!(verdict, Verdict::Pending { .. }), "{verdict:?}");
    assert_eq!(
        ignored(&records),
        [None, Some("it was made before the request was in review")]
    );
    // A review in the very second the review opened counts (creation times are whole seconds).
    early[1].metadata.creation_timestamp = Some(Time("2027-01-04T09:00:00Z".parse().unwrap()));
    assert!(matches!(tally(&early).0, Verdict::Approved { .. }));
}

#[test]
fn nothing_counts_before_the_files_are_staged() {
    let mut staging = fixtures::export_request();
    let status = staging.status.as_mut().unwrap();
    status.phase = Some(crate::api::export::ExportPhase::Staging);
    status.staged_files.clear();
    status.staged_digest = None;
    status.review_opened_at = None;
    let (verdict, records) = count(
        &staging,
        &fixtures::workspace(),
        &panels(),
        &two_approvals(),
    );
    assert!(matches!(verdict, Verdict::Pending { .. }));
    assert_eq!(
        ignored(&records),
        [Some("the request had staged nothing yet: there was nothing to review"); 2]
    );
}

#[test]
fn a_review_that_did_not_count_leaves_its_reviewer_a_seat() {
    let mut reviews = two_approvals();
    let mut early = export_review("bob", &[], true);
    early.metadata.creation_timestamp = Some(Time("2027-01-04T08:00:00Z".parse().unwrap()));
    reviews.insert(0, early);
    let (verdict, records) = tally(&reviews);
    assert!(matches!(verdict, Verdict::Approved { .. }), "{records:?}");
}

#[test]
fn the_digest_is_of_the_files_sorted_by_path() {
    let file = |path: &str| crate::api::export::StagedFile {
        path: path.into(),
        size: 3,
        sha256: "ab".repeat(32),
    };
    let digest = staged_digest(&[file("b.csv"), file("a.csv")]);
    assert_eq!(digest, staged_digest(&[file("a.csv"), file("b.csv")]));
    assert_ne!(digest, staged_digest(&[file("a.csv")]));
    // What `jq -cj '.status.stagedFiles | sort_by(.path)' | sha256sum` computes.
    let json = r#"[{"path":"a.csv","size":3,"sha256":"ab"}]"#;
    let expected: String = Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut short = file("a.csv");
    short.sha256 = "ab".into();
    assert_eq!(staged_digest(&[short]), format!("sha256:{expected}"));
}

/// The fixture's profile with a destination, and its dataset reviewed by `reviewers`.
fn exporting(reviewers: serde_json::Value, required: Option<u32>) -> Inventory {
    let mut profile = fixtures::profile();
    profile.spec.exports = serde_json::from_value(serde_json::json!({
        "destinations": [{"name": "results", "s3": {
            "endpoint": "https://s3.gra.io.cloud.ovh.net", "bucket": "results", "region": "GRA9",
            "credentialsSecretRef": {"name": "s3"}}}]
    }))
    .unwrap();
    let mut dataset = fixtures::dataset();
    dataset.spec.export = serde_json::from_value(serde_json::json!({
        "reviewers": reviewers, "requiredApprovals": required
    }))
    .unwrap();
    fixtures::inventory(profile, vec![dataset])
}

fn panel_findings(workspace: &Workspace, inventory: &Inventory) -> Vec<String> {
    let mut findings = Findings::for_object(workspace);
    check_workspace_panels(&mut findings, workspace, inventory);
    findings.into_vec().iter().map(|v| v.to_string()).collect()
}

#[test]
fn a_panel_whose_reviewers_are_members_cannot_approve() {
    // alice is an Owner of the workspace: bob alone is independent, and two are required.
    let inventory = exporting(
        serde_json::json!([{"kind": "User", "name": "bob"}, {"kind": "User", "name": "alice"}]),
        Some(2),
    );
    let found = panel_findings(&fixtures::workspace(), &inventory);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("HYG019 Workspace/research/study spec.members: Dataset/cohort needs 2 approvals, but only 1 of its reviewers are not members"),
        "{found:#?}"
    );
    // The analysts group is a member: listing it as the second reviewer does not help.
    let inventory = exporting(
        serde_json::json!([{"kind": "User", "name": "bob"}, {"kind": "Group", "name": "analysts"}]),
        Some(2),
    );
    assert_eq!(panel_findings(&fixtures::workspace(), &inventory).len(), 1);
    let inventory = exporting(
        serde_json::json!([{"kind": "User", "name": "bob"}, {"kind": "User", "name": "carol"}]),
        Some(2),
    );
    assert!(panel_findings(&fixtures::workspace(), &inventory).is_empty());
}

#[test]
fn personal_health_data_is_released_on_two_approvals_whatever_a_spec_says() {
    let inventory = exporting(
        serde_json::json!([{"kind": "User", "name": "bob"}]),
        Some(1),
    );
    let dataset = inventory.dataset("research", "cohort").unwrap();
    assert_eq!(panel_of(dataset, None).required, 2);
    let mut findings = Findings::for_object(dataset);
    check_dataset_export(&mut findings, dataset, &inventory);
    let found: Vec<String> = findings.into_vec().iter().map(|v| v.to_string()).collect();
    assert!(
        found.iter().any(|f| f.starts_with(
            "HYG019 Dataset/research/cohort spec.export.requiredApprovals: Pseudonymised data is released on 2 approvals at least, never 1"
        )),
        "{found:#?}"
    );
    let mut open = dataset.clone();
    open.spec.classification = Classification::Open;
    assert_eq!(panel_of(&open, None).required, 1);
}

#[test]
fn look_alike_reviewers_fill_one_seat() {
    let mut findings = Findings::for_object(&fixtures::dataset());
    let reviewer = |name: &str| Reviewer {
        kind: MemberKind::User,
        name: name.into(),
    };
    check_panel(
        &mut findings,
        "spec.export",
        &[reviewer("bob"), reviewer("b\u{043e}b")],
        Some(2),
    );
    let found: Vec<String> = findings.into_vec().iter().map(|v| v.to_string()).collect();
    assert!(
        found
            .iter()
            .any(|f| f.contains("spec.export.reviewers[1].name: `bоb` mixes scripts")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.contains("2 distinct approvals are required but only 1 reviewer(s)")),
        "{found:#?}"
    );
}

#[test]
fn a_dataset_once_mounted_still_rules_the_exports() {
    // study mounted the identifying registry, then unmounted it: what it copied may be in the
    // home or the outbox, so the registry's rules and panel still apply.
    let mut workspace = fixtures::workspace();
    workspace.status = serde_json::from_value(serde_json::json!({
        "lineage": [{"name": "registry", "classification": "Identifying"}]
    }))
    .unwrap();
    let mut registry = fixtures::dataset();
    registry.metadata.name = Some("registry".into());
    registry.spec.classification = Classification::Identifying;
    let inventory = fixtures::inventory(fixtures::profile(), vec![fixtures::dataset(), registry]);
    let refusals: Vec<String> = check_request(
        &fixtures::export_request(),
        &inventory,
        std::slice::from_ref(&workspace),
    )
    .iter()
    .map(|v| v.message.clone())
    .collect();
    assert!(
        refusals.iter().any(|m| m.starts_with(
            "Workspace `study` has mounted Dataset `registry`, which allows no export"
        )),
        "{refusals:#?}"
    );
    let of: Vec<String> = super::panels(&workspace, &inventory)
        .into_iter()
        .map(|p| p.of)
        .collect();
    assert_eq!(of, ["Dataset/cohort", "Dataset/registry"]);

    // Gone from the cluster, it still forbids every export: nobody can check its rules.
    let inventory = fixtures::inventory(fixtures::profile(), vec![fixtures::dataset()]);
    let refusals: Vec<String> =
        check_request(&fixtures::export_request(), &inventory, &[workspace])
            .iter()
            .map(|v| v.message.clone())
            .collect();
    assert!(
        refusals
            .iter()
            .any(|m| m.contains("which no longer exists")),
        "{refusals:#?}"
    );
}
