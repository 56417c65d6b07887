//! Hygie's API and rendered objects on a real Kubernetes control plane (tests/controlplane):
//! the CRDs are served, their schema and CEL rules are enforced by the API server itself,
//! every rendered object is accepted (pods under Pod Security `restricted`), and owner
//! references garbage-collect children.

use std::time::Duration;

use hygie::{api::Workspace, bundle::Bundle, render::render};
use hygie_tests::{
    annotations,
    cluster::{
        TestNamespace, client, create_namespace, install_crds, kubeconfig, kubectl, kubectl_at,
        kubectl_ok, kubectl_with_input, wait_for,
    },
    files_in, golden_now,
    operator::install_chart_rbac,
    repo_root, reviews, valid_examples,
};
use k8s_openapi::{
    api::{
        apps::v1::StatefulSet,
        core::v1::{Pod, ServiceAccount},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{Api, Resource, ResourceExt, api::DeleteParams, runtime::conditions};

#[tokio::test]
async fn every_crd_is_established() {
    install_crds();
    let client = client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    for crd in hygie::api::crds() {
        let name = crd.name_any();
        wait_for(
            &crds,
            &name,
            "Established",
            Duration::from_secs(30),
            conditions::is_crd_established(),
        )
        .await;
        let served = crds.get(&name).await.unwrap();
        assert_eq!(served.spec.versions[0].name, "v1alpha1");
        let has_status = |crd: &CustomResourceDefinition| {
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some())
        };
        // Every kind but ExportReview, a record with nothing to report, has a status.
        assert_eq!(
            has_status(&served),
            name != "exportreviews.hygie.io",
            "{name}"
        );
    }
}

/// Applies `file` as the platform team, or, for an export request or review (alone in its
/// file), as the person it names: the API server admits those from their author only. The author gets the chart's
/// airlock role in the namespace first.
fn apply_as_its_author(file: &std::path::Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    let object = match documents.as_slice() {
        [one] => one.clone(),
        _ => serde_json::Value::Null,
    };
    let (author, role) = match object["kind"].as_str() {
        Some("ExportRequest") => (object["spec"]["requester"].as_str(), "researcher"),
        Some("ExportReview") => (object["spec"]["reviewer"].as_str(), "reviewer"),
        _ => (None, ""),
    };
    let path = file.to_str().unwrap();
    let Some(author) = author else {
        kubectl_ok(&["apply", "--server-side", "--validate=strict", "-f", path]);
        return;
    };
    install_chart_rbac();
    let namespace = object["metadata"]["namespace"].as_str().unwrap();
    let binding = format!("{author}-{role}");
    let clusterrole = format!("--clusterrole=hygie-{role}");
    let user = format!("--user={author}");
    let _ = kubectl(&[
        "create",
        "rolebinding",
        "-n",
        namespace,
        &binding,
        &clusterrole,
        &user,
    ]);
    let config = kubeconfig()
        .parent()
        .unwrap()
        .join(format!("users/{author}.kubeconfig"));
    // A review is of a request in review, bound to it as `hygie export approve` binds it.
    let created = match object["kind"].as_str() {
        Some("ExportReview") => {
            let request = object["spec"]["request"].as_str().unwrap();
            reviews::set_phase(namespace, request, "InReview");
            serde_json::to_string(&reviews::bound(object.clone())).unwrap()
        }
        _ => text.clone(),
    };
    // Created, not applied: a record is written once, and its author may not patch it.
    let out = kubectl_at(
        &config,
        &["create", "--validate=strict", "-f", "-"],
        Some(&created),
    );
    assert!(
        out.success || out.stderr.contains("AlreadyExists"),
        "{path} as {author}: {}",
        out.stderr
    );
}

/// Creates the namespaces the valid examples and the invalid ones use.
async fn example_namespaces(client: &kube::Client) {
    let mut namespaces = std::collections::BTreeSet::from(["research".to_owned()]);
    for dir in hygie_tests::valid_examples() {
        let bundle = hygie::bundle::Bundle::load(&[dir]).unwrap();
        namespaces.extend(bundle.inventory.datasets.keys().map(|(ns, _)| ns.clone()));
        namespaces.extend(
            bundle
                .workspaces
                .iter()
                .filter_map(|w| w.metadata.namespace.clone()),
        );
    }
    for namespace in namespaces {
        create_namespace(client, &namespace).await;
    }
}

#[tokio::test]
async fn every_valid_example_is_accepted_and_listed_with_its_columns() {
    install_crds();
    let client = client().await;
    example_namespaces(&client).await;
    for example in valid_examples() {
        for file in files_in(&example) {
            apply_as_its_author(&file);
        }
    }
    let table = kubectl_ok(&["get", "ws", "-A"]);
    let header = table.lines().next().unwrap();
    for column in [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "READY",
        "PROFILE",
        "EXPIRES",
        "AGE",
    ] {
        assert!(
            header.contains(column),
            "`kubectl get ws -A` shows {column}: {header}"
        );
    }
    assert!(
        table.contains("survival-study") && table.contains("ovh-gra"),
        "{table}"
    );
    let wide = kubectl_ok(&["get", "ws", "-A", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("ENDPOINT"), "{wide}");
    let profiles = kubectl_ok(&["get", "hp"]);
    for column in ["PROVIDER", "COUNTRY", "READY", "CERTIFIED-UNTIL"] {
        assert!(
            profiles.lines().next().unwrap().contains(column),
            "{profiles}"
        );
    }
    let all = kubectl_ok(&["get", "hygie", "-A"]);
    assert!(
        all.contains("dataset.hygie.io/cohort-2024")
            && all.contains("workspace.hygie.io/los-model"),
        "{all}"
    );
}

#[tokio::test]
async fn schema_and_cel_violations_are_rejected_by_the_api_server() {
    install_crds();
    let client = client().await;
    example_namespaces(&client).await;
    let dir = repo_root().join("tests/fixtures/malformed");
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let expected = annotations(&file, "server-expect");
        if expected.is_empty() {
            continue;
        }
        let out = kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            file.to_str().unwrap(),
        ]);
        assert!(
            !out.success,
            "{} was accepted:\n{}",
            file.display(),
            out.stdout
        );
        for expect in expected {
            assert!(
                out.stderr.contains(&expect),
                "{}: expected `{expect}` in:\n{}",
                file.display(),
                out.stderr
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 9,
        "only {checked} fixtures say what the API server answers"
    );
}

#[tokio::test]
async fn immutable_fields_cannot_change() {
    install_crds();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "immutable").await;
    let bundle = Bundle::load(&[repo_root().join("examples/ovhcloud")]).unwrap();
    let mut dataset = bundle.inventory.datasets.values().next().unwrap().clone();
    dataset.metadata.namespace = Some(namespace.name.clone());
    let yaml = serde_json::to_string(&dataset).unwrap();
    let created = kubectl_with_input(&["create", "-f", "-"], Some(&yaml));
    assert!(created.success, "{}", created.stderr);

    for (field, value, message) in [
        (
            "hostingProfile",
            "\"scw-par\"",
            "hostingProfile is immutable",
        ),
        ("classification", "\"Open\"", "classification is immutable"),
    ] {
        let patch = format!("{{\"spec\":{{\"{field}\":{value}}}}}");
        let out = kubectl(&[
            "-n",
            &namespace.name,
            "patch",
            "datasets.hygie.io",
            "cohort-2024",
            "--type=merge",
            "-p",
            &patch,
        ]);
        assert!(!out.success, "changing {field} was accepted");
        assert!(out.stderr.contains(message), "{}", out.stderr);
    }
    let resized = kubectl(&[
        "-n",
        &namespace.name,
        "patch",
        "datasets.hygie.io",
        "cohort-2024",
        "--type=merge",
        "-p",
        r#"{"spec":{"storage":{"size":"60Gi"}}}"#,
    ]);
    assert!(
        resized.success,
        "other fields can change: {}",
        resized.stderr
    );
}

#[tokio::test]
async fn rendered_objects_are_accepted_and_collected_with_their_owner() {
    install_crds();
    let client = client().await;
    example_namespaces(&client).await;
    kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        "examples/scaleway/hosting-profile.yaml",
    ]);
    let namespace = TestNamespace::create(&client, "rendered").await;

    // The Scaleway example, moved to this test's namespace.
    let mut bundle = Bundle::load(&[repo_root().join("examples/scaleway")]).unwrap();
    for dataset in bundle.inventory.datasets.values_mut() {
        dataset.metadata.namespace = Some(namespace.name.clone());
    }
    let datasets: Vec<_> = std::mem::take(&mut bundle.inventory.datasets)
        .into_values()
        .collect();
    datasets
        .into_iter()
        .for_each(|d| bundle.inventory.add_dataset(d));
    let mut workspace: Workspace = bundle.workspaces.pop().unwrap();
    workspace.metadata.namespace = Some(namespace.name.clone());
    bundle.workspaces.push(workspace.clone());

    let workspaces: Api<Workspace> = Api::namespaced(client.clone(), &namespace.name);
    let created = workspaces
        .create(&Default::default(), &workspace)
        .await
        .expect("the API server accepts the workspace");
    let owner = created
        .controller_owner_ref(&())
        .expect("a created object has a uid");

    let rendered = render(&bundle, golden_now());
    assert!(rendered.violations.is_empty(), "{:?}", rendered.violations);
    let children: Vec<_> = rendered
        .objects
        .into_iter()
        .filter(|o| {
            o.meta()
                .labels
                .as_ref()
                .is_some_and(|l| l.get("hygie.io/workspace") == Some(&workspace.name_any()))
        })
        .map(|mut child| {
            child.meta_mut().owner_references = Some(vec![owner.clone()]);
            child.to_json()
        })
        .collect();
    assert!(children.len() >= 10);
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": children});
    let applied = kubectl_with_input(
        &[
            "apply",
            "--server-side",
            "--field-manager=hygie-test",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(&list.to_string()),
    );
    assert!(
        applied.success,
        "the API server refuses a rendered object:\n{}",
        applied.stderr
    );

    // The StatefulSet controller creates the pod, and Pod Security `restricted` admits it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace.name);
    let pod_name = format!("{}-0", workspace.name_any());
    wait_for(
        &pods,
        &pod_name,
        "created by the StatefulSet controller",
        Duration::from_secs(60),
        |p: Option<&Pod>| p.is_some(),
    )
    .await;
    let pod = pods.get(&pod_name).await.unwrap();
    assert_eq!(
        pod.spec.unwrap().automount_service_account_token,
        Some(false)
    );

    // Deleting the owner garbage-collects its children.
    workspaces
        .delete(&workspace.name_any(), &DeleteParams::foreground())
        .await
        .unwrap();
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace.name);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace.name);
    wait_for(
        &statefulsets,
        &workspace.name_any(),
        "garbage-collected",
        Duration::from_secs(60),
        |o: Option<&StatefulSet>| o.is_none(),
    )
    .await;
    wait_for(
        &accounts,
        &workspace.name_any(),
        "garbage-collected",
        Duration::from_secs(60),
        |o: Option<&ServiceAccount>| o.is_none(),
    )
    .await;
}
