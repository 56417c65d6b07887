//! The register of processing (GDPR article 30), as a data protection officer or an HDS auditor
//! asks for it: per dataset its classification, legal basis and end date, where it is hosted and
//! by whom, its retention and the workspaces that process it, with their members, egress, expiry
//! and state; what left or asked to leave through the airlock, with its reviews and digests;
//! past decisions, deletions with their proof among them, read back from the audit sink; what
//! ends within 90 days;
//! every rule violation in force. A pure function of the
//! objects and of `now`, rendered as JSON (the schema is `Register`), Markdown, CSV or a
//! self-contained HTML page.

use std::fmt::Write;

use kube::ResourceExt;
use serde::Serialize;

use crate::{
    api::{
        Dataset, ExportRequest, HostingProfile, Workspace, export::ExportPhase,
        workspace::WorkspacePhase,
    },
    bundle::Bundle,
    policy::{
        Violation, check_all,
        export::{count, in_submission_order, panels},
        sovereignty::exposure,
    },
    sink::{Record, Step},
};

impl Register {
    /// Adds `records`, read from the audit sink, as the history, and the deletions among them:
    /// those done that name the claim whose key or volume went (an intent says what was about
    /// to go; a release names where files went, and nothing is deleted by it).
    pub fn with_history(mut self, records: Vec<Record>) -> Register {
        self.deletions = records
            .iter()
            .filter(|r| r.evidence.contains_key("claim") && r.step == Step::Done)
            .cloned()
            .collect();
        self.history = records;
        self
    }
}

/// How far ahead an end date is listed as coming.
const HORIZON_DAYS: i64 = 90;

/// The register, as `hygie report -o json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Register {
    /// The instant the register describes (RFC 3339).
    pub as_of: String,
    pub hosting: Vec<Hosting>,
    pub processing: Vec<Processing>,
    pub exports: Vec<Export>,
    /// Every decision read back from the audit sink (when one is read), oldest first: what
    /// happened to objects, whether or not they still exist.
    pub history: Vec<Record>,
    /// Those of `history` that destroyed a key or deleted a volume, with what proves it.
    pub deletions: Vec<Record>,
    /// End dates within 90 days, and those already past, soonest first.
    pub ending: Vec<Ending>,
    pub violations: Vec<Violation>,
}

/// Where data may live: one HostingProfile.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hosting {
    pub profile: String,
    pub provider: String,
    pub country: String,
    pub regions: Vec<String>,
    pub certifications: Vec<String>,
    /// Why the operator could be compelled by a non-EEA law; empty when it is immune.
    pub exposure: Vec<String>,
}

/// One dataset and the workspaces that process it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Processing {
    pub namespace: String,
    pub dataset: String,
    pub classification: String,
    pub controller: String,
    pub purpose: String,
    pub basis: String,
    pub valid_until: String,
    pub immunity_required: bool,
    pub profile: String,
    pub retention: String,
    /// `Expired` once the authorisation ended, else `Authorised`.
    pub state: String,
    pub workspaces: Vec<Use>,
}

/// A workspace that mounts the dataset.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Use {
    pub workspace: String,
    /// `Kind name (Role)` for each member.
    pub members: Vec<String>,
    /// `cidr:port/protocol` for each destination.
    pub egress: Vec<String>,
    pub expires_at: Option<String>,
    /// The phase Hygie reports, or what the spec and the date say (Suspended, Expired,
    /// Blocked when a rule is broken, Declared otherwise).
    pub state: String,
}

/// What asked to leave a workspace: one ExportRequest, as the airlock handled it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    pub namespace: String,
    pub request: String,
    pub workspace: String,
    pub requester: String,
    pub destination: String,
    /// What the requester declared the outputs to be.
    pub outputs: Vec<String>,
    /// The phase Hygie reports; `Submitted` before it reports one.
    pub phase: String,
    /// `reviewer Decision (counted)`, or `(not counted: why)`, per review in order.
    pub reviews: Vec<String>,
    /// `path sha256:<hex> (<size> bytes)` per staged file.
    pub files: Vec<String>,
    /// `url sha256:<hex>` per object released and read back.
    pub released: Vec<String>,
}

/// A table of the Markdown and HTML forms: its header and its rows.
type Table = (Vec<&'static str>, Vec<Vec<String>>);

/// An end date to act on.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ending {
    pub object: String,
    pub what: String,
    pub date: String,
    /// Negative once past.
    pub days_left: i64,
}

/// The register of `bundle` as of `now`.
pub fn register(bundle: &Bundle, now: jiff::Timestamp) -> Register {
    let inventory = &bundle.inventory;
    let violations = check_all(inventory, &bundle.workspaces, now);
    let hosting = inventory
        .profiles
        .values()
        .map(|p| hosting(p, now))
        .collect();
    let processing = inventory
        .datasets
        .values()
        .map(|d| processing(d, &bundle.workspaces, &violations, now))
        .collect();
    let exports = inventory
        .export_requests
        .iter()
        .map(|r| export(r, bundle))
        .collect();
    Register {
        as_of: now.to_string(),
        hosting,
        processing,
        exports,
        history: Vec::new(),
        deletions: Vec::new(),
        ending: ending(bundle, now),
        violations,
    }
}

fn hosting(profile: &HostingProfile, now: jiff::Timestamp) -> Hosting {
    let spec = &profile.spec;
    Hosting {
        profile: profile.name_any(),
        provider: spec.provider.as_str().into(),
        country: spec.residency.country.clone(),
        regions: spec.residency.regions.clone(),
        certifications: spec
            .certifications
            .iter()
            .map(|c| {
                format!(
                    "{} until {}{}",
                    c.kind.as_str(),
                    c.valid_until,
                    if c.valid_until.is_past(now) {
                        " (ended)"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
        exposure: exposure(profile, now),
    }
}

fn processing(
    dataset: &Dataset,
    workspaces: &[Workspace],
    violations: &[Violation],
    now: jiff::Timestamp,
) -> Processing {
    let namespace = dataset.namespace().unwrap_or_default();
    let name = dataset.name_any();
    let legal = &dataset.spec.legal;
    let uses = workspaces
        .iter()
        .filter(|w| {
            w.namespace().as_deref() == Some(namespace.as_str())
                && w.spec.datasets.iter().any(|m| m.name == name)
        })
        .map(|w| workspace_use(w, violations, now))
        .collect();
    Processing {
        namespace,
        dataset: name,
        classification: format!("{:?}", dataset.spec.classification),
        controller: legal.controller.clone(),
        purpose: legal.purpose.clone(),
        basis: legal.basis.clone(),
        valid_until: legal.valid_until.to_string(),
        immunity_required: dataset.requires_immunity(),
        profile: dataset.spec.hosting_profile.clone(),
        retention: format!("{:?}", dataset.spec.retention.on_delete),
        state: if dataset.is_expired(now) {
            "Expired"
        } else {
            "Authorised"
        }
        .into(),
        workspaces: uses,
    }
}

fn workspace_use(workspace: &Workspace, violations: &[Violation], now: jiff::Timestamp) -> Use {
    let spec = &workspace.spec;
    let key = crate::policy::ObjectKey::of(workspace);
    let reported = workspace.status.as_ref().and_then(|s| s.phase);
    let state = match reported {
        Some(phase) => format!("{phase:?}"),
        None if violations.iter().any(|v| v.object == key) => {
            format!("{:?}", WorkspacePhase::Blocked)
        }
        None if crate::build::is_expired(workspace, now) => {
            format!("{:?}", WorkspacePhase::Expired)
        }
        None if spec.suspend => format!("{:?}", WorkspacePhase::Suspended),
        None => "Declared".into(),
    };
    Use {
        workspace: workspace.name_any(),
        members: spec
            .members
            .iter()
            .map(|m| format!("{:?} {} ({:?})", m.kind, m.name, m.role))
            .collect(),
        egress: spec
            .egress
            .iter()
            .flat_map(|e| {
                e.ports
                    .iter()
                    .map(move |p| format!("{}:{}/{}", e.cidr, p.port, p.protocol.as_str()))
            })
            .collect(),
        expires_at: spec.expires_at.as_ref().map(|t| t.0.to_string()),
        state,
    }
}

/// One request, its reviews counted as the operator counts them (or as it recorded them, when
/// the workspace is gone).
fn export(request: &ExportRequest, bundle: &Bundle) -> Export {
    let namespace = request.namespace().unwrap_or_default();
    let spec = &request.spec;
    let status = request.status.clone().unwrap_or_default();
    let workspace = bundle.workspaces.iter().find(|w| {
        w.namespace().as_deref() == Some(namespace.as_str()) && w.name_any() == spec.workspace
    });
    let records = match workspace {
        Some(workspace) => {
            let mut reviews = bundle.reviews.clone();
            in_submission_order(&mut reviews);
            let panels = panels(workspace, &bundle.inventory);
            count(request, workspace, &panels, &reviews).1
        }
        None => status.reviews.clone(),
    };
    Export {
        namespace,
        request: request.name_any(),
        workspace: spec.workspace.clone(),
        requester: spec.requester.clone(),
        destination: spec.destination.clone(),
        outputs: spec.outputs.iter().map(|o| format!("{o:?}")).collect(),
        phase: format!("{:?}", status.phase.unwrap_or(ExportPhase::Submitted)),
        reviews: records
            .iter()
            .map(|r| match &r.ignored_because {
                None => format!("{} {:?} (counted)", r.reviewer, r.decision),
                Some(why) => format!("{} {:?} (not counted: {why})", r.reviewer, r.decision),
            })
            .collect(),
        files: status
            .staged_files
            .iter()
            .map(|f| format!("{} sha256:{} ({} bytes)", f.path, f.sha256, f.size))
            .collect(),
        released: status
            .released_objects
            .iter()
            .map(|o| format!("{} sha256:{}", o.url, o.sha256))
            .collect(),
    }
}

/// Certifications, authorisations and workspaces that end within the horizon or have ended.
fn ending(bundle: &Bundle, now: jiff::Timestamp) -> Vec<Ending> {
    let days_until = |end: jiff::Timestamp| end.duration_since(now).as_secs().div_euclid(86_400);
    let mut ending = Vec::new();
    for profile in bundle.inventory.profiles.values() {
        for c in &profile.spec.certifications {
            ending.push(Ending {
                object: format!("HostingProfile/{}", profile.name_any()),
                what: format!("{} certification {}", c.kind.as_str(), c.reference),
                date: c.valid_until.to_string(),
                days_left: days_until(c.valid_until.end()),
            });
        }
    }
    for dataset in bundle.inventory.datasets.values() {
        ending.push(Ending {
            object: crate::policy::ObjectKey::of(dataset).to_string(),
            what: format!("authorisation {}", dataset.spec.legal.basis),
            date: dataset.spec.legal.valid_until.to_string(),
            days_left: days_until(dataset.spec.legal.valid_until.end()),
        });
    }
    for workspace in &bundle.workspaces {
        if let Some(at) = &workspace.spec.expires_at {
            ending.push(Ending {
                object: crate::policy::ObjectKey::of(workspace).to_string(),
                what: "workspace expiry".into(),
                date: at.0.to_string(),
                days_left: days_until(at.0),
            });
        }
    }
    ending.retain(|e| e.days_left < HORIZON_DAYS);
    ending.sort_by_key(|e| e.days_left);
    ending
}

impl Register {
    /// Markdown, for a ticket or a wiki.
    pub fn markdown(&self) -> String {
        let mut out = format!("# Register of processing\n\nAs of {}.\n\n", self.as_of);
        for (title, table) in self.tables() {
            let _ = writeln!(out, "## {title}\n");
            let (header, rows) = table;
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
            for row in rows {
                let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out.push('\n');
        }
        out
    }

    /// CSV, one row per dataset and workspace that processes it (a dataset no workspace
    /// mounts has one row, its workspace columns empty).
    pub fn csv(&self) -> String {
        let (header, rows) = self.processing_rows();
        let line = |cells: &[String]| {
            cells
                .iter()
                .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut out = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        out.push('\n');
        for row in rows {
            out.push_str(&line(&row));
            out.push('\n');
        }
        out
    }

    /// One self-contained HTML page: the same tables, with what has ended or is blocked
    /// marked.
    pub fn html(&self) -> String {
        let escape = |text: &str| {
            text.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Register of processing</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #999;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#eee}tr.alert td{background:#fdd;font-weight:bold}</style></head><body>\n",
        );
        let _ = writeln!(
            out,
            "<h1>Register of processing</h1><p>As of {}.</p>",
            escape(&self.as_of)
        );
        for (title, (header, rows)) in self.tables() {
            let _ = writeln!(out, "<h2>{}</h2><table><tr>", escape(title));
            for h in &header {
                let _ = write!(out, "<th>{}</th>", escape(h));
            }
            out.push_str("</tr>\n");
            if rows.is_empty() {
                let _ = writeln!(
                    out,
                    "<tr><td colspan=\"{}\"><em>none</em></td></tr>",
                    header.len()
                );
            }
            for row in rows {
                let alert = row.iter().any(|c| {
                    ["Expired", "Blocked", "(ended)"]
                        .iter()
                        .any(|m| c.contains(m))
                        || c.starts_with('-')
                        || c.starts_with("HYG")
                });
                let _ = write!(out, "<tr{}>", if alert { " class=\"alert\"" } else { "" });
                for cell in row {
                    let _ = write!(out, "<td>{}</td>", escape(&cell));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        out.push_str("</body></html>\n");
        out
    }

    fn processing_rows(&self) -> Table {
        let header = vec![
            "namespace",
            "dataset",
            "classification",
            "controller",
            "purpose",
            "basis",
            "valid until",
            "state",
            "immunity required",
            "profile",
            "retention",
            "workspace",
            "members",
            "egress",
            "expires at",
            "workspace state",
        ];
        let mut rows = Vec::new();
        for p in &self.processing {
            let base = vec![
                p.namespace.clone(),
                p.dataset.clone(),
                p.classification.clone(),
                p.controller.clone(),
                p.purpose.clone(),
                p.basis.clone(),
                p.valid_until.clone(),
                p.state.clone(),
                p.immunity_required.to_string(),
                p.profile.clone(),
                p.retention.clone(),
            ];
            if p.workspaces.is_empty() {
                rows.push([base.clone(), vec![String::new(); 5]].concat());
            }
            for u in &p.workspaces {
                let tail = vec![
                    u.workspace.clone(),
                    u.members.join("; "),
                    u.egress.join("; "),
                    u.expires_at.clone().unwrap_or_default(),
                    u.state.clone(),
                ];
                rows.push([base.clone(), tail].concat());
            }
        }
        (header, rows)
    }

    /// The tables of the Markdown and HTML forms, with their titles.
    fn tables(&self) -> Vec<(&'static str, Table)> {
        let hosting = (
            vec![
                "profile",
                "provider",
                "country",
                "regions",
                "certifications",
                "exposure to non-EEA law",
            ],
            self.hosting
                .iter()
                .map(|h| {
                    vec![
                        h.profile.clone(),
                        h.provider.clone(),
                        h.country.clone(),
                        h.regions.join(", "),
                        h.certifications.join("; "),
                        if h.exposure.is_empty() {
                            "none: immune".into()
                        } else {
                            h.exposure.join("; ")
                        },
                    ]
                })
                .collect(),
        );
        let ending = (
            vec!["object", "what", "date", "days left"],
            self.ending
                .iter()
                .map(|e| {
                    vec![
                        e.object.clone(),
                        e.what.clone(),
                        e.date.clone(),
                        e.days_left.to_string(),
                    ]
                })
                .collect(),
        );
        let exports = (
            vec![
                "namespace",
                "request",
                "workspace",
                "requester",
                "destination",
                "outputs",
                "phase",
                "reviews",
                "files reviewed",
                "released",
            ],
            self.exports
                .iter()
                .map(|e| {
                    vec![
                        e.namespace.clone(),
                        e.request.clone(),
                        e.workspace.clone(),
                        e.requester.clone(),
                        e.destination.clone(),
                        e.outputs.join(", "),
                        e.phase.clone(),
                        e.reviews.join("; "),
                        e.files.join("; "),
                        e.released.join("; "),
                    ]
                })
                .collect(),
        );
        let deletions = (
            vec!["time", "object", "action", "what went", "recorded by"],
            self.deletions
                .iter()
                .map(|d| {
                    vec![
                        d.time.clone(),
                        d.object.clone(),
                        d.action.clone(),
                        d.evidence
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join("; "),
                        d.recorder.clone(),
                    ]
                })
                .collect(),
        );
        let history = (
            vec!["time", "object", "action", "outcome", "reasons"],
            self.history
                .iter()
                .map(|d| {
                    let action = match d.step {
                        Step::Intended => format!("{} (intended)", d.action),
                        Step::Done => d.action.clone(),
                    };
                    vec![
                        d.time.clone(),
                        d.object.clone(),
                        action,
                        d.outcome.clone(),
                        d.reasons.clone(),
                    ]
                })
                .collect(),
        );
        let violations = (
            vec!["rule", "object", "field", "what to do"],
            self.violations
                .iter()
                .map(|v| {
                    vec![
                        v.rule.id().to_string(),
                        v.object.to_string(),
                        v.field.clone(),
                        v.message.clone(),
                    ]
                })
                .collect(),
        );
        vec![
            ("Where data may live", hosting),
            ("Processing", self.processing_rows()),
            ("Exports", exports),
            ("Deletions, from the audit sink", deletions),
            ("History, from the audit sink", history),
            ("Ending within 90 days, or ended", ending),
            ("Rule violations in force", violations),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{dataset, now, profile, workspace};

    fn bundle() -> Bundle {
        let mut bundle = Bundle::default();
        bundle.inventory.add_profile(profile());
        bundle.inventory.add_dataset(dataset());
        bundle.workspaces.push(workspace());
        bundle
    }

    #[test]
    fn the_register_names_data_basis_host_users_and_dates() {
        let register = register(&bundle(), now());
        let p = &register.processing[0];
        assert_eq!(
            (
                p.dataset.as_str(),
                p.classification.as_str(),
                p.basis.as_str()
            ),
            ("cohort", "Pseudonymised", "MR-004")
        );
        assert!(p.immunity_required);
        assert_eq!(p.workspaces[0].workspace, "study");
        assert!(
            p.workspaces[0]
                .members
                .contains(&"User alice (Owner)".to_string())
        );
        assert_eq!(p.workspaces[0].egress, ["10.20.0.0/24:443/TCP"]);
        assert_eq!(register.hosting[0].exposure, Vec::<String>::new());
        assert!(register.violations.is_empty());
    }

    #[test]
    fn what_ends_soon_or_has_ended_is_listed_and_marked() {
        let at: jiff::Timestamp = "2027-12-15T00:00:00Z".parse().unwrap();
        let register = register(&bundle(), at);
        let dataset_end = register
            .ending
            .iter()
            .find(|e| e.what.starts_with("authorisation"))
            .unwrap();
        assert_eq!(
            (dataset_end.date.as_str(), dataset_end.days_left),
            ("2027-12-31", 17)
        );
        let workspace_end = register
            .ending
            .iter()
            .find(|e| e.what == "workspace expiry")
            .unwrap();
        assert!(workspace_end.days_left < 0, "ended in June");
        assert_eq!(register.processing[0].workspaces[0].state, "Expired");
        let html = register.html();
        assert!(
            html.contains("<tr class=\"alert\">"),
            "the ended are marked"
        );
        assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("<script"));
        let csv = register.csv();
        assert_eq!(
            csv.lines().count(),
            2,
            "a header and one dataset-workspace row"
        );
        assert!(register.markdown().contains("| cohort |"));
    }

    #[test]
    fn a_workspace_that_breaks_a_rule_is_blocked() {
        let mut bundle = bundle();
        bundle.workspaces[0].spec.egress[0].cidr = "0.0.0.0/0".into();
        let register = register(&bundle, now());
        assert_eq!(register.processing[0].workspaces[0].state, "Blocked");
        assert_eq!(register.violations[0].rule.id(), "HYG005");
    }

    #[test]
    fn exports_are_listed_with_their_reviews_and_digests() {
        use crate::fixtures::{export_request, export_review};
        const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let mut bundle = bundle();
        let mut request = export_request();
        let status = request.status.as_mut().unwrap();
        status.phase = Some(crate::api::export::ExportPhase::Released);
        status.released_objects = serde_json::from_value(serde_json::json!([
            {"url": "s3://out/research/table-1/tables/readmissions-by-age.csv", "sha256": SHA}
        ]))
        .unwrap();
        bundle.inventory.export_requests.push(request);
        bundle.reviews = vec![
            export_review("alice", &[], true),
            export_review("bob", &[], true),
        ];
        let register = register(&bundle, now());
        let export = &register.exports[0];
        assert_eq!(
            (export.request.as_str(), export.phase.as_str()),
            ("table-1", "Released")
        );
        assert_eq!(
            export.reviews,
            [
                "alice Approve (not counted: the requester cannot review their own request)",
                "bob Approve (not counted: not a listed reviewer of the workspace's datasets)"
            ]
        );
        assert_eq!(
            export.files,
            [format!(
                "tables/readmissions-by-age.csv sha256:{SHA} (412 bytes)"
            )]
        );
        assert!(register.markdown().contains("## Exports"));
        assert!(register.html().contains(&format!(
            "s3://out/research/table-1/tables/readmissions-by-age.csv sha256:{SHA}"
        )));
    }

    #[test]
    fn deletions_read_from_the_sink_are_listed_with_their_proof() {
        let record = |action: &str, evidence: &[(&str, &str)]| Record {
            time: "2026-11-30T17:00:00Z".into(),
            object: "Dataset/research/cohort".into(),
            uid: "u1".into(),
            action: action.into(),
            outcome: "Normal".into(),
            reasons: String::new(),
            evidence: evidence
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            recorder: "hygie-0".into(),
            step: Step::Done,
        };
        let key = [
            ("claim", "cohort-data"),
            ("keySecret", "cohort-data-luks"),
            ("keySecretUid", "k1"),
        ];
        let intent = Record {
            step: Step::Intended,
            ..record("Shredded", &key)
        };
        let release = [("destination", "s3://out/research/table-1/")];
        let register = register(&bundle(), now()).with_history(vec![
            record("KeyCreated", &[]),
            intent,
            record("Shredding", &key),
            record("Released", &release),
        ]);
        assert_eq!(register.history.len(), 4);
        assert_eq!(
            register.deletions.len(),
            1,
            "only what names the claim that went, once it went: a release deletes nothing"
        );
        assert!(
            register
                .markdown()
                .contains("| Dataset/research/cohort | Shredded (intended) |"),
            "the intent is in the history"
        );
        assert!(
            register
                .markdown()
                .contains("| Dataset/research/cohort | Shredding | claim=cohort-data; keySecret=cohort-data-luks; keySecretUid=k1 | hygie-0 |")
        );
    }

    #[test]
    fn text_from_manifests_is_escaped() {
        let mut bundle = bundle();
        let mut d = dataset();
        d.spec.legal.purpose = "<script>alert(1)</script> | \"quoted\"".into();
        bundle.inventory.add_dataset(d);
        let register = register(&bundle, now());
        assert!(!register.html().contains("<script>"));
        assert!(register.markdown().contains("\\|"));
        assert!(register.csv().contains("\"\"quoted\"\""));
    }
}
