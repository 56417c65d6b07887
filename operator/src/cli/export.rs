//! `hygie export`: the airlock from a terminal (also `kubectl hygie export` when the binary is
//! installed as `kubectl-hygie`). Who requests and who reviews is asked of the API server
//! (a SelfSubjectReview), never typed: the admission policy would refuse any other name.

use std::fmt::Write as _;

use k8s_openapi::{
    api::authentication::v1::{SelfSubjectReview, UserInfo},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, ObjectMeta, PostParams},
};

use super::exit;
use crate::{
    api::{
        Dataset, ExportRequest, ExportReview, HostingProfile, Workspace,
        conditions::READY,
        export::{Decision, ExportPhase, ExportRequestSpec, ExportReviewSpec, OutputKind},
    },
    policy::{
        Inventory,
        export::{Verdict, count, in_submission_order, panels},
    },
};

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Namespace of the request; the kubeconfig's by default.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: ExportCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ExportCommand {
    /// Ask to take files out of a workspace's outbox, as yourself.
    Request {
        /// Name of the request.
        name: String,
        #[arg(long)]
        workspace: String,
        /// A file under the outbox, relative to it; repeat for several.
        #[arg(long = "file", required = true)]
        files: Vec<String>,
        #[arg(long)]
        justification: String,
        /// What the outputs are; repeat for several.
        #[arg(long = "output", value_parser = parse_output_kind, required = true)]
        outputs: Vec<OutputKind>,
        /// One of the profile's export destinations.
        #[arg(long)]
        destination: String,
    },
    /// List the requests of the namespace.
    List,
    /// Show a request: its files as staged, with their sha256, and its reviews as counted.
    Show { name: String },
    /// Approve a request, as yourself.
    Approve {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Reject a request, as yourself.
    Reject {
        name: String,
        #[arg(long)]
        reason: String,
    },
}

fn parse_output_kind(text: &str) -> Result<OutputKind, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| "one of AggregateStatistics, Model, Figure, Table, Code, Document".to_owned())
}

pub fn export(args: ExportArgs) -> u8 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(dispatch(args)) {
        Ok(text) => {
            print!("{text}");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::VIOLATIONS
        }
    }
}

async fn dispatch(args: ExportArgs) -> Result<String, String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no usable kubeconfig or in-cluster config: {e}"))?;
    let namespace = args
        .namespace
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let requests: Api<ExportRequest> = Api::namespaced(client.clone(), &namespace);
    match args.command {
        ExportCommand::Request {
            name,
            workspace,
            files,
            justification,
            outputs,
            destination,
        } => {
            let me = whoami(&client).await?;
            let requester_groups = own_groups(me.groups);
            let request = ExportRequest {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    ..Default::default()
                },
                spec: ExportRequestSpec {
                    workspace,
                    files,
                    justification,
                    outputs,
                    destination,
                    requester: me.username.unwrap_or_default(),
                    requester_groups,
                },
                status: None,
            };
            requests
                .create(&PostParams::default(), &request)
                .await
                .map_err(refused)?;
            Ok(format!("exportrequest {namespace}/{name} submitted\n"))
        }
        ExportCommand::List => {
            let list = requests
                .list(&ListParams::default())
                .await
                .map_err(refused)?;
            let mut text = "NAME\tWORKSPACE\tREQUESTER\tPHASE\tFILES\n".to_owned();
            for request in list {
                let phase = request
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    text,
                    "{}\t{}\t{}\t{phase}\t{}",
                    request.name_any(),
                    request.spec.workspace,
                    request.spec.requester,
                    request.spec.files.len()
                );
            }
            Ok(text)
        }
        ExportCommand::Show { name } => show(&client, &namespace, &name).await,
        ExportCommand::Approve { name, reason } => {
            review(&client, &namespace, &name, Decision::Approve, reason).await
        }
        ExportCommand::Reject { name, reason } => {
            review(&client, &namespace, &name, Decision::Reject, reason).await
        }
    }
}

/// Who the API server says the caller is.
pub(super) async fn whoami(client: &Client) -> Result<UserInfo, String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| format!("the API server did not say who you are: {e}"))?;
    review
        .status
        .and_then(|s| s.user_info)
        .ok_or_else(|| "the API server did not say who you are".to_owned())
}

/// The caller's groups as the API server knows them, but the `system:` ones every user has.
pub(super) fn own_groups(groups: Option<Vec<String>>) -> Vec<String> {
    groups
        .unwrap_or_default()
        .into_iter()
        .filter(|g| !g.starts_with("system:"))
        .collect()
}

async fn review(
    client: &Client,
    namespace: &str,
    request: &str,
    decision: Decision,
    reason: String,
) -> Result<String, String> {
    let me = whoami(client).await?;
    let reviewer = me.username.unwrap_or_default();
    let groups = own_groups(me.groups);
    let reviewed = Api::<ExportRequest>::namespaced(client.clone(), namespace)
        .get(request)
        .await
        .map_err(refused)?;
    let status = reviewed.status.clone().unwrap_or_default();
    let (Some(ExportPhase::InReview), Some(staged_digest)) = (status.phase, status.staged_digest)
    else {
        return Err(format!(
            "exportrequest {namespace}/{request} is not in review ({}): a decision is recorded on the staged files, while it is InReview",
            status
                .phase
                .map(|p| format!("{p:?}"))
                .unwrap_or_else(|| "not started".into())
        ));
    };
    let request_uid = reviewed.metadata.uid.clone().unwrap_or_default();
    let name = format!("{request}-{}", slug(&reviewer));
    let review = ExportReview {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            // The review goes with the request it decides on.
            owner_references: Some(vec![OwnerReference {
                api_version: "hygie.io/v1alpha1".into(),
                kind: "ExportRequest".into(),
                name: request.to_owned(),
                uid: request_uid.clone(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: ExportReviewSpec {
            request: request.to_owned(),
            request_uid,
            staged_digest,
            reviewer,
            reviewer_groups: groups,
            decision,
            reason,
        },
    };
    Api::<ExportReview>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &review)
        .await
        .map_err(refused)?;
    Ok(format!(
        "exportreview {namespace}/{name} recorded: {decision:?}\n"
    ))
}

/// A user name as a piece of an object name: lowercase letters, digits and '-'.
fn slug(name: &str) -> String {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug.trim_matches('-').chars().take(40).collect()
}

/// The request, its staged files and its reviews, counted as the operator counts them.
async fn show(client: &Client, namespace: &str, name: &str) -> Result<String, String> {
    let request = Api::<ExportRequest>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(refused)?;
    let workspace = Api::<Workspace>::namespaced(client.clone(), namespace)
        .get(&request.spec.workspace)
        .await
        .map_err(refused)?;
    let mut inventory = Inventory::default();
    if let Ok(profile) = Api::<HostingProfile>::all(client.clone())
        .get(&workspace.spec.hosting_profile)
        .await
    {
        inventory.add_profile(profile);
    }
    let datasets = Api::<Dataset>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(refused)?;
    datasets.into_iter().for_each(|d| inventory.add_dataset(d));
    let mut reviews = Api::<ExportReview>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(refused)?
        .items;
    in_submission_order(&mut reviews);
    let (verdict, records) = count(
        &request,
        &workspace,
        &panels(&workspace, &inventory),
        &reviews,
    );

    let spec = &request.spec;
    let mut text = String::new();
    let _ = writeln!(text, "Request:       {namespace}/{name}");
    let _ = writeln!(text, "Workspace:     {}", spec.workspace);
    let _ = writeln!(text, "Requester:     {}", spec.requester);
    let _ = writeln!(text, "Destination:   {}", spec.destination);
    let _ = writeln!(text, "Outputs:       {:?}", spec.outputs);
    let _ = writeln!(text, "Justification: {}", spec.justification);
    let staged = request
        .status
        .as_ref()
        .map(|s| s.staged_files.clone())
        .unwrap_or_default();
    text.push_str("Files:\n");
    for file in &spec.files {
        match staged.iter().find(|s| &s.path == file) {
            Some(s) => {
                let _ = writeln!(text, "  {file}  {} bytes  sha256:{}", s.size, s.sha256);
            }
            None => {
                let _ = writeln!(text, "  {file}  (not staged)");
            }
        }
    }
    text.push_str("Reviews:\n");
    for record in &records {
        let counted = match &record.ignored_because {
            None => "counted".to_owned(),
            Some(why) => format!("not counted: {why}"),
        };
        let _ = writeln!(
            text,
            "  {} {:?} ({counted}): {}",
            record.reviewer, record.decision, record.reason
        );
    }
    let verdict = match verdict {
        Verdict::Approved { by } => format!("approved by {}", by.join(", ")),
        Verdict::Rejected { by, reason } => format!("rejected by {by}: {reason}"),
        Verdict::Pending { missing } => format!("waiting: {}", missing.join("; ")),
    };
    let _ = writeln!(text, "Count:         {verdict}");
    let status = request.status.clone().unwrap_or_default();
    if let Some(phase) = status.phase {
        let why = status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let _ = writeln!(text, "Phase:         {phase:?}: {why}");
    }
    if !status.released_objects.is_empty() {
        text.push_str(
            "Released:
",
        );
        for object in &status.released_objects {
            let _ = writeln!(text, "  {}  sha256:{}", object.url, object.sha256);
        }
    }
    Ok(text)
}

/// The API server's refusal, with its message (an admission policy's says which rule).
fn refused(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    }
}
