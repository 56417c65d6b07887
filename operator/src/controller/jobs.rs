//! Where a transfer Job stands, from its status and its pod's termination message: the Jobs
//! report what they did (a byte count, digests, or why they refused) there.

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api, Client,
    api::{ListParams, ObjectList},
};

use super::{error::Result, export::JobOutcome};

/// The outcome of the Job `name`; `Running` while it is not there yet or not finished.
pub async fn outcome(client: &Client, namespace: &str, name: &str) -> Result<JobOutcome> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let Some(job) = jobs.get_opt(name).await? else {
        return Ok(JobOutcome::Running);
    };
    let finished = |type_: &str| {
        job.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == type_ && c.status == "True")
    };
    let (complete, failed) = (finished("Complete"), finished("Failed"));
    if !complete && !failed {
        return Ok(JobOutcome::Running);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let listed = pods
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await?;
    Ok(match complete {
        true => JobOutcome::Succeeded(report(&listed, "Succeeded").unwrap_or_default()),
        false => JobOutcome::Failed(report(&listed, "Failed")),
    })
}

/// The termination message of the newest pod in `phase`.
fn report(pods: &ObjectList<Pod>, phase: &str) -> Option<String> {
    pods.items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase))
        .max_by_key(|p| p.metadata.creation_timestamp.clone())
        .into_iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
}
