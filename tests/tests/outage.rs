//! The control plane failing under a running operator: etcd stopped for 30 s while the
//! operator brings up a hundred workspaces, then the API server restarted. The operator must
//! ride both out in the same process, converge every workspace with nothing made twice, keep
//! watching (a workspace created after the outage converges too), and say in its figures what
//! happened.

use std::time::{Duration, Instant};

use hygie::{
    api::{Workspace, workspace::WorkspacePhase},
    bundle::Bundle,
};
use hygie_tests::{
    cluster::{
        KEYS_NAMESPACE, TestNamespace, apply_as_platform_team, client, install_crds, manifest,
    },
    operator::{Operator, one_at_a_time},
    outage::{restart_api_server, stop_etcd_for},
    repo_root,
};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Secret};
use kube::{
    Api, ResourceExt,
    api::{ListParams, ObjectMeta},
};

/// Workspaces brought up across the outage: `HYGIE_OUTAGE_WORKSPACES`, 100 by default.
fn workspaces() -> usize {
    std::env::var("HYGIE_OUTAGE_WORKSPACES")
        .ok()
        .map(|n| n.parse().expect("HYGIE_OUTAGE_WORKSPACES: a number"))
        .unwrap_or(100)
}

/// The sum of the samples of `name` on a /metrics page.
fn total(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn the_operator_rides_out_an_etcd_stop_and_an_api_server_restart() {
    let _turn = one_at_a_time().await;
    install_crds();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "outage").await;
    let ns = namespace.name.clone();
    let mut bundle = Bundle::load(&[repo_root().join("tests/fixtures/e2e")]).unwrap();
    let mut profile = bundle.inventory.profiles.values().next().unwrap().clone();
    profile.metadata.name = Some(format!("outage-{ns}"));
    let mut dataset = bundle.inventory.datasets.values().next().unwrap().clone();
    dataset.metadata.namespace = Some(ns.clone());
    dataset.spec.hosting_profile = profile.name_any();
    let template = bundle.workspaces.remove(0);
    let workspace = |name: String| {
        let mut workspace = template.clone();
        workspace.metadata = ObjectMeta {
            name: Some(name),
            namespace: Some(ns.clone()),
            ..Default::default()
        };
        workspace.spec.hosting_profile = profile.name_any();
        manifest(&workspace)
    };
    let count = workspaces();
    let names: Vec<String> = (0..count).map(|i| format!("study-{i}")).collect();

    let mut operator = Operator::start("outage", "hygie-outage", 3600);
    let mut objects = vec![manifest(&profile), manifest(&dataset)];
    objects.extend(names.iter().cloned().map(workspace));
    let started = Instant::now();
    apply_as_platform_team(None, &objects);
    // Mid-work: etcd stops answering for 30 s, then the API server goes away and comes back.
    stop_etcd_for(Duration::from_secs(30));
    let away = restart_api_server();
    let late = "study-late".to_owned();
    apply_as_platform_team(None, &[workspace(late.clone())]);

    let api: Api<Workspace> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(300);
    let converged = loop {
        let provisioning = api
            .list(&ListParams::default())
            .await
            .map(|listed| {
                listed
                    .items
                    .iter()
                    .filter(|w| {
                        w.status.as_ref().and_then(|s| s.phase)
                            == Some(WorkspacePhase::Provisioning)
                    })
                    .count()
            })
            .unwrap_or(0);
        if provisioning == count + 1 {
            break started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{provisioning} of {} workspaces converged:\n{}",
            count + 1,
            operator.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(
        operator.running(),
        "the operator rode the outage out in the same process"
    );

    // Nothing made twice: one StatefulSet and three keys per workspace.
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        count + 1
    );
    let keys: Api<Secret> = Api::namespaced(client.clone(), KEYS_NAMESPACE);
    let prefix = format!("{ns}.study-");
    let workspace_keys = keys
        .list(&ListParams::default().labels("hygie.io/workspace"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|k| k.name_any().starts_with(&prefix))
        .count();
    assert_eq!(workspace_keys, 3 * (count + 1), "three keys per workspace");

    let page = operator.metrics();
    let errors = total(&page, "hygie_reconcile_errors_total");
    let reconciliations = total(&page, "hygie_reconciliations_total");
    assert!(
        errors >= 1.0,
        "the outage shows in the errors' figures:\n{page}"
    );
    println!(
        "outage: workspaces={} etcd_stopped_s=30 api_server_away_s={:.1} converged_s={:.1} reconciliations={reconciliations} errors={errors}",
        count + 1,
        away.as_secs_f64(),
        converged.as_secs_f64(),
    );
    assert!(operator.terminate(), "the operator stops on SIGTERM");
    let profiles: Api<hygie::api::HostingProfile> = Api::all(client.clone());
    let _ = profiles
        .delete(&profile.name_any(), &Default::default())
        .await;
}
