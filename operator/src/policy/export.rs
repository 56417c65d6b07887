//! The airlock's rules and its count of reviews.
//!
//! - HYG017: a profile's export destinations are in its residency regions, over HTTPS.
//! - HYG018: an export request names a workspace of its namespace and a destination its
//!   profile declares, and every dataset the workspace mounts allows export.
//! - HYG019: whoever must review can: a dataset (or the profile, for workspaces without
//!   datasets) that allows export lists enough reviewers for its required approvals.
//!
//! The count: a review counts when its reviewer is listed (by name, or by a group the API
//! server vouched for), is not the requester, is not a member of the workspace, and has not
//! reviewed this request already. One counted Reject ends the request; it is approved when every
//! panel (each mounted dataset's reviewers) has its required number of distinct approvals.

use std::collections::BTreeSet;

use kube::ResourceExt;

use super::{
    Findings, Inventory, Rule, Violation, identities,
    network::{check_egress, destinations},
    object_store, providers, quote,
    resources::check_size,
};
use crate::api::{
    Classification, Dataset, ExportRequest, ExportReview, HostingProfile, Workspace,
    export::{
        DEFAULT_REQUIRED_APPROVALS, DatasetExport, Decision, ExportPolicy,
        MAX_REVIEW_DEADLINE_SECONDS, ReviewRecord, Reviewer,
    },
    workspace::{Member, MemberKind},
};

/// HYG017 and HYG019 on a profile's airlock.
pub(crate) fn check_profile_exports(findings: &mut Findings, profile: &HostingProfile) {
    let Some(exports) = &profile.spec.exports else {
        return;
    };
    let regions = &profile.spec.residency.regions;
    if !exports.destinations.is_empty() && profile.spec.images.importer.is_none() {
        findings.add(
            Rule::ExportDestination,
            "spec.images.importer",
            "export destinations need the transfer image (rclone and a POSIX shell) that stages, shows and releases the files",
        );
    }
    let declared = destinations(&profile.spec.network.egress_destinations);
    for (i, destination) in exports.destinations.iter().enumerate() {
        let field = format!("spec.exports.destinations[{i}].s3");
        if !regions.contains(&destination.s3.region) {
            findings.add(
                Rule::ExportDestination,
                format!("{field}.region"),
                format!(
                    "`{}` is not one of the profile's residency regions ({}); outputs are released only where the data may live",
                    quote(&destination.s3.region),
                    regions.join(", ")
                ),
            );
        }
        check_store(
            findings,
            Rule::ExportDestination,
            &field,
            &destination.s3.endpoint,
            &destination.s3.bucket,
            &destination.s3.prefix,
        );
        let known = object_store::read_endpoint(&destination.s3.endpoint)
            .ok()
            .and_then(|e| e.known);
        if let Some(known) = known
            && !providers::lists(known.regions, &destination.s3.region)
        {
            findings.add(
                Rule::ExportDestination,
                format!("{field}.region"),
                format!(
                    "`{}` is not where {} keeps its data ({}): a store is in the region its endpoint serves",
                    quote(&destination.s3.region),
                    known.host,
                    known.regions.join(", ")
                ),
            );
        }
        check_egress(
            findings,
            &format!("{field}.egress"),
            &destination.s3.egress,
            Some(&declared),
        );
    }
    if let Some(limit) = &exports.max_total_size {
        check_size(findings, "spec.exports.maxTotalSize", limit);
    }
    if let Some(seconds) = exports.review_deadline_seconds
        && !(60..=MAX_REVIEW_DEADLINE_SECONDS).contains(&seconds)
    {
        findings.add(
            Rule::Resources,
            "spec.exports.reviewDeadlineSeconds",
            format!(
                "{seconds} is not between 60 and {MAX_REVIEW_DEADLINE_SECONDS} (90 days): a staged copy waits that long at most"
            ),
        );
    }
    check_panel(
        findings,
        "spec.exports",
        &exports.reviewers,
        exports.required_approvals,
    );
}

/// An object store's endpoint, bucket and key prefix, under `field` (`...s3`), for `rule`.
pub(crate) fn check_store(
    findings: &mut Findings,
    rule: Rule,
    field: &str,
    endpoint: &str,
    bucket: &str,
    prefix: &str,
) {
    if let Err(why) = object_store::read_endpoint(endpoint) {
        findings.add(
            rule,
            format!("{field}.endpoint"),
            format!("`{}` {why}", quote(endpoint)),
        );
    }
    if let Some(why) = object_store::why_not_a_bucket(bucket) {
        findings.add(
            rule,
            format!("{field}.bucket"),
            format!("`{}` {why}: not an S3 bucket name", quote(bucket)),
        );
    }
    if let Some(why) = object_store::why_not_a_prefix(prefix) {
        findings.add(
            rule,
            format!("{field}.prefix"),
            format!("`{}` {why}", quote(prefix)),
        );
    }
}

/// HYG019 on a dataset that allows export.
pub(crate) fn check_dataset_export(
    findings: &mut Findings,
    dataset: &Dataset,
    inventory: &Inventory,
) {
    if !allows_export(dataset) {
        return;
    }
    check_required_for_health_data(findings, dataset);
    let profile = inventory
        .profile(&dataset.spec.hosting_profile)
        .and_then(|p| p.spec.exports.as_ref());
    if let Some(own) = &dataset.spec.export
        && !own.reviewers.is_empty()
    {
        check_panel(
            findings,
            "spec.export",
            &own.reviewers,
            own.required_approvals,
        );
    } else if profile.is_some_and(|p| p.reviewers.is_empty()) {
        findings.add(
            Rule::Reviewers,
            "spec.export.reviewers",
            "exports from this dataset are allowed but nobody reviews them: list reviewers here or in the profile's spec.exports.reviewers",
        );
    }
}

fn check_panel(findings: &mut Findings, at: &str, reviewers: &[Reviewer], required: Option<u32>) {
    let required = required.unwrap_or(DEFAULT_REQUIRED_APPROVALS);
    if required == 0 {
        findings.add(
            Rule::Reviewers,
            format!("{at}.requiredApprovals"),
            "at least one approval is required",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, reviewer) in reviewers.iter().enumerate() {
        if reviewer.name.starts_with("system:") {
            findings.add(
                Rule::Reviewers,
                format!("{at}.reviewers[{i}].name"),
                format!(
                    "`{}` is a system identity; reviewers are people and groups of your identity provider",
                    quote(&reviewer.name)
                ),
            );
        }
        if let Some(why) = identities::why_ambiguous(&reviewer.name) {
            findings.add(
                Rule::Reviewers,
                format!("{at}.reviewers[{i}].name"),
                format!("`{}` {why}", quote(&reviewer.name)),
            );
        }
        if !seen.insert((reviewer.kind, identities::look(&reviewer.name))) {
            findings.add(
                Rule::Reviewers,
                format!("{at}.reviewers[{i}]"),
                format!(
                    "`{}` is listed twice (or a name that looks the same)",
                    quote(&reviewer.name)
                ),
            );
        }
    }
    let users = seen
        .iter()
        .filter(|(kind, _)| *kind == MemberKind::User)
        .count();
    let groups = seen.len() - users;
    if !reviewers.is_empty() && groups == 0 && users < required as usize {
        findings.add(
            Rule::Reviewers,
            format!("{at}.reviewers"),
            format!(
                "{required} distinct approvals are required but only {users} reviewer(s) are listed: no request could ever be approved"
            ),
        );
    }
}

/// HYG019 on a dataset of personal health data: its panel counts at least
/// `DEFAULT_REQUIRED_APPROVALS` approvals, whatever it says.
fn check_required_for_health_data(findings: &mut Findings, dataset: &Dataset) {
    let asked = dataset
        .spec
        .export
        .as_ref()
        .and_then(|e| e.required_approvals);
    if let Some(asked) = asked
        && dataset.spec.classification.is_health_data()
        && asked < DEFAULT_REQUIRED_APPROVALS
    {
        findings.add(
            Rule::Reviewers,
            "spec.export.requiredApprovals",
            format!(
                "{:?} data is released on {DEFAULT_REQUIRED_APPROVALS} approvals at least, never {asked}",
                dataset.spec.classification
            ),
        );
    }
}

/// HYG019 on a workspace that may export: every panel its exports answer to can reach its
/// approvals with reviewers who are not members of the workspace (by name, or by a group it
/// lists), since a member's review never counts.
pub(crate) fn check_workspace_panels(
    findings: &mut Findings,
    workspace: &Workspace,
    inventory: &Inventory,
) {
    let namespace = workspace.namespace().unwrap_or_default();
    let exports = inventory
        .profile(&workspace.spec.hosting_profile)
        .and_then(|p| p.spec.exports.as_ref());
    let exportable = exports.is_some_and(|e| !e.destinations.is_empty())
        && workspace.lineage().into_iter().all(|name| {
            inventory
                .dataset(&namespace, name)
                .is_none_or(allows_export)
        });
    if !exportable {
        return;
    }
    let members = &workspace.spec.members;
    let is_member = |r: &Reviewer| {
        members
            .iter()
            .any(|m| m.kind == r.kind && identities::same(&m.name, &r.name))
    };
    for panel in panels(workspace, inventory) {
        if panel.reviewers.is_empty() {
            continue;
        }
        let independent: Vec<&Reviewer> =
            panel.reviewers.iter().filter(|r| !is_member(r)).collect();
        let groups = independent.iter().any(|r| r.kind == MemberKind::Group);
        let users: BTreeSet<String> = independent
            .iter()
            .filter(|r| r.kind == MemberKind::User)
            .map(|r| identities::look(&r.name))
            .collect();
        if !groups && users.len() < panel.required as usize {
            findings.add(
                Rule::Reviewers,
                "spec.members",
                format!(
                    "{} needs {} approvals, but only {} of its reviewers are not members of this workspace, and a member's review never counts: no export from it could be approved",
                    panel.of,
                    panel.required,
                    users.len()
                ),
            );
        }
    }
}

/// Longest ExportRequest name: its review StatefulSet, `<name>-review`, names its pods'
/// `controller-revision-hash` label with an 11-character hash, and a label is at most 63
/// characters.
pub const EXPORT_REQUEST_NAME_MAX: usize = 45;

/// HYG018: what a request names exists and allows export.
pub fn check_request(
    request: &ExportRequest,
    inventory: &Inventory,
    workspaces: &[Workspace],
) -> Vec<Violation> {
    let mut findings = Findings::for_object(request);
    let namespace = request.namespace().unwrap_or_default();
    if request.name_any().len() > EXPORT_REQUEST_NAME_MAX {
        findings.add(
            Rule::ExportAllowed,
            "metadata.name",
            format!(
                "an ExportRequest name is at most {EXPORT_REQUEST_NAME_MAX} characters: its review pod, `<name>-review-0`, and its Jobs are named after it"
            ),
        );
    }
    let workspace = workspaces.iter().find(|w| {
        w.namespace().as_deref() == Some(namespace.as_str())
            && w.name_any() == request.spec.workspace
    });
    let Some(workspace) = workspace else {
        findings.add(
            Rule::ExportAllowed,
            "spec.workspace",
            format!(
                "no Workspace `{}` in namespace `{namespace}`",
                quote(&request.spec.workspace)
            ),
        );
        return findings.into_vec();
    };
    let spec = &request.spec;
    let member = workspace.spec.members.iter().any(|m| match m.kind {
        MemberKind::User => m.name == spec.requester,
        MemberKind::Group => spec.requester_groups.contains(&m.name),
    });
    if !member {
        findings.add(
            Rule::ExportAllowed,
            "spec.requester",
            format!(
                "`{}` is not a member of Workspace `{}`, by name or by a group of spec.requesterGroups: only its members export its outputs",
                quote(&spec.requester),
                workspace.name_any()
            ),
        );
    }
    let exports = inventory
        .profile(&workspace.spec.hosting_profile)
        .and_then(|p| p.spec.exports.as_ref());
    let declared = exports
        .map(|e| {
            e.destinations
                .iter()
                .any(|d| d.name == request.spec.destination)
        })
        .unwrap_or(false);
    if !declared {
        findings.add(
            Rule::ExportAllowed,
            "spec.destination",
            format!(
                "`{}` is not an export destination of HostingProfile `{}`; only the profile's spec.exports.destinations are",
                quote(&request.spec.destination),
                workspace.spec.hosting_profile
            ),
        );
    }
    let mounted: Vec<&str> = workspace
        .spec
        .datasets
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    for name in workspace.lineage() {
        let verb = match mounted.contains(&name) {
            true => "mounts",
            false => "has mounted",
        };
        let Some(dataset) = inventory.dataset(&namespace, name) else {
            if verb == "has mounted" {
                findings.add(
                    Rule::ExportAllowed,
                    "spec.workspace",
                    format!(
                        "Workspace `{}` has mounted Dataset `{name}`, which no longer exists: its home and outbox may hold what came from it, whose export rules nobody can check now",
                        workspace.name_any()
                    ),
                );
            }
            continue;
        };
        if !allows_export(dataset) {
            findings.add(
                Rule::ExportAllowed,
                "spec.workspace",
                format!(
                    "Workspace `{}` {verb} Dataset `{name}`, which allows no export ({}); its owner may allow it with spec.export.allowed",
                    workspace.name_any(),
                    match dataset.spec.classification {
                        Classification::Identifying => "identifying data, by default",
                        _ => "spec.export.allowed is false",
                    }
                ),
            );
        }
    }
    findings.into_vec()
}

/// Whether outputs of workspaces mounting `dataset` may leave at all.
pub fn allows_export(dataset: &Dataset) -> bool {
    let by_default = dataset.spec.classification != Classification::Identifying;
    dataset
        .spec
        .export
        .as_ref()
        .and_then(|e| e.allowed)
        .unwrap_or(by_default)
}

/// Who must approve, and how many of them: a dataset's reviewers, or the profile's.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// What the panel answers for: `Dataset/<name>` or `HostingProfile/<name>`.
    pub of: String,
    pub reviewers: Vec<Reviewer>,
    pub required: u32,
}

fn panel_of(dataset: &Dataset, profile: Option<&ExportPolicy>) -> Panel {
    let own = dataset.spec.export.clone().unwrap_or_default();
    let DatasetExport {
        reviewers,
        required_approvals,
        ..
    } = own;
    let (reviewers, required) = match (reviewers.is_empty(), profile) {
        (false, _) => (reviewers, required_approvals),
        (true, Some(profile)) => (
            profile.reviewers.clone(),
            required_approvals.or(profile.required_approvals),
        ),
        (true, None) => (Vec::new(), required_approvals),
    };
    let required = required.unwrap_or(DEFAULT_REQUIRED_APPROVALS);
    let floor = match dataset.spec.classification.is_health_data() {
        true => DEFAULT_REQUIRED_APPROVALS,
        false => 1,
    };
    Panel {
        of: format!("Dataset/{}", dataset.name_any()),
        reviewers,
        required: required.max(floor),
    }
}

/// The panels a request from `workspace` must satisfy: one per dataset it mounts or has
/// mounted (its lineage), or the profile's own for a workspace that never mounted any.
pub fn panels(workspace: &Workspace, inventory: &Inventory) -> Vec<Panel> {
    let profile_name = &workspace.spec.hosting_profile;
    let exports = inventory
        .profile(profile_name)
        .and_then(|p| p.spec.exports.as_ref());
    let namespace = workspace.namespace().unwrap_or_default();
    let datasets: Vec<Panel> = workspace
        .lineage()
        .into_iter()
        .filter_map(|name| inventory.dataset(&namespace, name))
        .map(|d| panel_of(d, exports))
        .collect();
    if !datasets.is_empty() {
        return datasets;
    }
    vec![Panel {
        of: format!("HostingProfile/{profile_name}"),
        reviewers: exports.map(|e| e.reviewers.clone()).unwrap_or_default(),
        required: exports
            .and_then(|e| e.required_approvals)
            .unwrap_or(DEFAULT_REQUIRED_APPROVALS),
    }]
}

/// Where the reviews of a request stand.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not enough approvals yet: `missing` says which panel waits for how many more.
    Pending {
        missing: Vec<String>,
    },
    Approved {
        by: Vec<String>,
    },
    Rejected {
        by: String,
        reason: String,
    },
}

/// Puts `reviews` in the order they are counted: as submitted (creation time, then name).
pub fn in_submission_order(reviews: &mut [ExportReview]) {
    reviews.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, a.name_any())
            .cmp(&(&b.metadata.creation_timestamp, b.name_any()))
    });
}

/// Counts `reviews` (of any request; those of others are skipped) in the order given, which
/// should be their creation order, for `request` from `workspace` under `panels`.
pub fn count(
    request: &ExportRequest,
    workspace: &Workspace,
    panels: &[Panel],
    reviews: &[ExportReview],
) -> (Verdict, Vec<ReviewRecord>) {
    let mut records = Vec::new();
    let mut approvers: Vec<&ExportReview> = Vec::new();
    let mut seen = BTreeSet::new();
    for review in reviews
        .iter()
        .filter(|r| r.spec.request == request.name_any())
    {
        let ignored = not_of_these_bytes(review, request)
            .or_else(|| why_not_counted(review, request, &workspace.spec.members, panels, &seen));
        if ignored.is_none() {
            seen.insert(identities::normalised(&review.spec.reviewer));
        }
        records.push(ReviewRecord {
            name: review.name_any(),
            reviewer: review.spec.reviewer.clone(),
            decision: review.spec.decision,
            reason: review.spec.reason.clone(),
            counted: ignored.is_none(),
            ignored_because: ignored.clone(),
            at: review.metadata.creation_timestamp.clone(),
        });
        if ignored.is_some() {
            continue;
        }
        match review.spec.decision {
            Decision::Reject => {
                let verdict = Verdict::Rejected {
                    by: review.spec.reviewer.clone(),
                    reason: review.spec.reason.clone(),
                };
                return (verdict, records);
            }
            Decision::Approve => approvers.push(review),
        }
    }
    let missing: Vec<String> = panels
        .iter()
        .filter_map(|panel| {
            let have = approvers.iter().filter(|r| listed(r, panel)).count();
            (have < panel.required as usize)
                .then(|| format!("{} needs {} more", panel.of, panel.required as usize - have))
        })
        .collect();
    let verdict = if missing.is_empty() {
        Verdict::Approved {
            by: approvers.iter().map(|r| r.spec.reviewer.clone()).collect(),
        }
    } else {
        Verdict::Pending { missing }
    };
    (verdict, records)
}

/// Why `review` is not a decision on this very request and the bytes it staged, if it is not:
/// it names another request of the same name (an earlier one, deleted), other bytes than those
/// staged, or it was made before the request was in review, when nobody could have seen them.
fn not_of_these_bytes(review: &ExportReview, request: &ExportRequest) -> Option<String> {
    let uid = request.metadata.uid.as_deref().unwrap_or_default();
    if review.spec.request_uid != uid {
        return Some(format!(
            "it reviews another request of this name (UID {}), not this one",
            review.spec.request_uid
        ));
    }
    let status = request.status.as_ref();
    let Some(digest) = status.and_then(|s| s.staged_digest.as_deref()) else {
        return Some("the request had staged nothing yet: there was nothing to review".into());
    };
    if review.spec.staged_digest != digest {
        return Some(format!(
            "it reviews other bytes ({}) than those staged ({digest})",
            review.spec.staged_digest
        ));
    }
    let opened = status.and_then(|s| s.review_opened_at.as_ref());
    let made = review.metadata.creation_timestamp.as_ref();
    match (opened, made) {
        (Some(opened), Some(made)) if made.0 >= opened.0 => None,
        _ => Some("it was made before the request was in review".into()),
    }
}

fn why_not_counted(
    review: &ExportReview,
    request: &ExportRequest,
    members: &[Member],
    panels: &[Panel],
    seen: &BTreeSet<String>,
) -> Option<String> {
    let reviewer = &review.spec.reviewer;
    if identities::same(reviewer, &request.spec.requester) {
        return Some("the requester cannot review their own request".into());
    }
    if is_member(review, members) {
        return Some("a member of the workspace cannot review its exports".into());
    }
    if !panels.iter().any(|panel| listed(review, panel)) {
        return Some("not a listed reviewer of the workspace's datasets".into());
    }
    if seen.contains(&identities::normalised(reviewer)) {
        return Some("this reviewer has already reviewed the request".into());
    }
    None
}

/// Whether the review's author is among `panel`'s reviewers, by name or by a group.
fn listed(review: &ExportReview, panel: &Panel) -> bool {
    panel
        .reviewers
        .iter()
        .any(|r| matches(r.kind, &r.name, review))
}

fn is_member(review: &ExportReview, members: &[Member]) -> bool {
    members.iter().any(|m| matches(m.kind, &m.name, review))
}

fn matches(kind: MemberKind, name: &str, review: &ExportReview) -> bool {
    match kind {
        MemberKind::User => identities::same(&review.spec.reviewer, name),
        MemberKind::Group => review
            .spec
            .reviewer_groups
            .iter()
            .any(|g| identities::same(g, name)),
    }
}

#[cfg(test)]
mod tests;
