//! The airlock on the test control plane, as four people with certificates of their own:
//! alice (researchers), bob and carol (data-stewards), mallory (visitors). The API server, not
//! the operator, refuses a request or a review in someone else's name, a review that hides or
//! invents a group, any change to either once created, a review made before the request is in
//! review or of another request or other bytes than those staged, and the researcher's deletion
//! of a request once it is approved. No operator runs here: the platform team (the admin) moves
//! the request's status as the operator would.

use hygie::bundle::Bundle;
use hygie_tests::{
    cluster::{
        TestNamespace, apply_as_platform_team, client, install_crds, kubeconfig, kubectl_at,
        kubectl_ok, manifest,
    },
    operator::install_chart_rbac,
    repo_root, reviews,
    users::{airlock_roles, create_as, hygie_as, kubectl_as},
};
use serde_json::{Value, json};

/// A document of examples/airlock, moved into `namespace`.
fn example(file: &str, namespace: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples/airlock").join(file)).unwrap();
    let mut object: Value = serde_saphyr::from_str(&text).unwrap();
    object["metadata"]["namespace"] = json!(namespace);
    object
}

/// `reviewer`'s approval of `table-2` as it stands in `namespace`: its UID, its staged digest
/// and an owner reference to it, as `hygie export approve` writes them.
fn review(name: &str, reviewer: &str, groups: &[&str], namespace: &str) -> Value {
    reviews::bound(json!({
        "apiVersion": "hygie.io/v1alpha1", "kind": "ExportReview",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"request": "table-2", "reviewer": reviewer, "reviewerGroups": groups,
                 "decision": "Approve", "reason": "counts only"}
    }))
}

#[tokio::test]
async fn the_api_server_ties_requests_and_reviews_to_who_authenticated() {
    install_crds();
    install_chart_rbac();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "airlock").await;
    let ns = namespace.name.as_str();

    // The platform team declares the study and gives each person their airlock role.
    let bundle = Bundle::load(&[repo_root().join("examples/airlock")]).unwrap();
    let mut objects: Vec<Value> = bundle.inventory.profiles.values().map(manifest).collect();
    for dataset in bundle.inventory.datasets.values() {
        let mut dataset = manifest(dataset);
        dataset["metadata"]["namespace"] = json!(ns);
        objects.push(dataset);
    }
    for workspace in &bundle.workspaces {
        let mut workspace = manifest(workspace);
        workspace["metadata"]["namespace"] = json!(ns);
        objects.push(workspace);
    }
    objects.extend(airlock_roles(
        ns,
        &[
            ("alice", "researcher"),
            // alice also reviews other studies' exports: her approval of her own must not count.
            ("alice", "reviewer"),
            ("mallory", "researcher"),
            ("bob", "reviewer"),
            ("carol", "reviewer"),
            ("mallory", "reviewer"),
        ],
    ));
    apply_as_platform_team(None, &objects);

    // A request in someone else's name is refused, with the policy's message.
    let request = example("request.yaml", ns);
    let out = create_as("mallory", ns, &request);
    assert!(!out.success, "mallory submitted alice's request");
    assert!(
        out.stderr.contains("hygie-export-identity")
            && out
                .stderr
                .contains("spec.requester must be the user submitting it, mallory, not alice"),
        "{}",
        out.stderr
    );
    // Nor may she pass as a member through a group she is not in.
    let mut claimed = request.clone();
    claimed["metadata"]["name"] = json!("claimed");
    claimed["spec"]["requester"] = json!("mallory");
    claimed["spec"]["requesterGroups"] = json!(["researchers"]);
    let out = create_as("mallory", ns, &claimed);
    assert!(!out.success, "mallory claimed the researchers' group");
    assert!(
        out.stderr.contains(
            "spec.requesterGroups may only name your groups as the API server knows them: [visitors]"
        ),
        "{}",
        out.stderr
    );
    let out = create_as("alice", ns, &request);
    assert!(out.success, "alice submits her own request: {}", out.stderr);

    // Once submitted, the request does not change, not even by the cluster's admin.
    let out = kubectl_at(
        &kubeconfig(),
        &[
            "patch",
            "-n",
            ns,
            "exportrequest",
            "table-2",
            "--type",
            "merge",
            "-p",
            r#"{"spec": {"destination": "elsewhere"}}"#,
        ],
        None,
    );
    assert!(
        !out.success,
        "even the admin cannot edit a submitted request"
    );
    assert!(out.stderr.contains("cannot change"), "{}", out.stderr);

    // A review before the files are staged is refused: its reviewer saw nothing.
    let out = create_as(
        "bob",
        ns,
        &review("bob-early", "bob", &["data-stewards"], ns),
    );
    assert!(!out.success, "bob approved before staging");
    assert!(
        out.stderr.contains("hygie-export-review-binding")
            && out
                .stderr
                .contains("ExportRequest table-2 is Submitted, not InReview"),
        "{}",
        out.stderr
    );
    reviews::set_phase(ns, "table-2", "InReview");

    // A review of another request of the same name, of other bytes, or not owned by the
    // request is refused.
    let mut stale = review("bob-stale", "bob", &["data-stewards"], ns);
    stale["spec"]["requestUID"] = json!("6f1d2c3b-8a4e-4f5d-9c6b-7e8f9a0b1c2d");
    stale["metadata"]["ownerReferences"][0]["uid"] = json!("6f1d2c3b-8a4e-4f5d-9c6b-7e8f9a0b1c2d");
    let out = create_as("bob", ns, &stale);
    assert!(!out.success, "bob reviewed an earlier table-2");
    assert!(
        out.stderr.contains("spec.requestUID 6f1d2c3b-8a4e-4f5d-9c6b-7e8f9a0b1c2d is not the UID of ExportRequest table-2"),
        "{}",
        out.stderr
    );
    let mut other_bytes = review("bob-other", "bob", &["data-stewards"], ns);
    other_bytes["spec"]["stagedDigest"] = json!(format!("sha256:{}", "1".repeat(64)));
    let out = create_as("bob", ns, &other_bytes);
    assert!(!out.success, "bob approved other bytes");
    assert!(
        out.stderr
            .contains("spec.stagedDigest is not the digest of what ExportRequest table-2 staged"),
        "{}",
        out.stderr
    );
    let mut unowned = review("bob-unowned", "bob", &["data-stewards"], ns);
    unowned["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let out = create_as("bob", ns, &unowned);
    assert!(!out.success, "a review not owned by its request");
    assert!(
        out.stderr
            .contains("it must be owned by the ExportRequest it reviews"),
        "{}",
        out.stderr
    );

    // A review in another reviewer's name is refused.
    let out = create_as(
        "bob",
        ns,
        &review("by-carol", "carol", &["data-stewards"], ns),
    );
    assert!(!out.success, "bob reviewed as carol");
    assert!(
        out.stderr
            .contains("spec.reviewer must be the user reviewing, bob, not carol"),
        "{}",
        out.stderr
    );
    // A review that hides a group of its author, or claims one they are not in, is refused.
    let out = create_as("bob", ns, &review("bob-hiding", "bob", &[], ns));
    assert!(!out.success, "bob hid his group");
    assert!(
        out.stderr
            .contains("must be exactly your groups as the API server knows them: [data-stewards]"),
        "{}",
        out.stderr
    );
    let out = create_as(
        "mallory",
        ns,
        &review("mallory-steward", "mallory", &["data-stewards"], ns),
    );
    assert!(!out.success, "mallory claimed a group she is not in");

    // Truthful reviews are admitted, and are then the unchangeable record of a decision. The
    // example is bound to the live request as the command line binds it.
    let out = create_as(
        "bob",
        ns,
        &reviews::bound(example("review-approve-1.yaml", ns)),
    );
    assert!(out.success, "bob's own review: {}", out.stderr);
    approve_as("carol", ns, "checked every cell");
    let out = kubectl_at(
        &kubeconfig(),
        &[
            "patch",
            "-n",
            ns,
            "exportreview",
            "table-2-bob",
            "--type",
            "merge",
            "-p",
            r#"{"spec": {"decision": "Reject"}}"#,
        ],
        None,
    );
    assert!(!out.success, "a recorded decision was changed");
    // The command line reviews as whoever the API server says the caller is, groups
    // included; the requester's own approval is admitted (it is truthful) but never counted.
    approve_as("alice", ns, "mine is fine");
    let shown = hygie_as("bob", &["export", "-n", ns, "show", "table-2"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("bob Approve (counted)"), "{shown}");
    assert!(shown.contains("carol Approve (counted)"), "{shown}");
    assert!(
        shown
            .contains("alice Approve (not counted: the requester cannot review their own request)"),
        "{shown}"
    );
    assert!(
        shown.contains("Count:         approved by bob, carol"),
        "{shown}"
    );
    let reviews = kubectl_ok(&["get", "exportreviews", "-n", ns, "-o", "name"]);
    assert_eq!(
        reviews.lines().collect::<Vec<_>>(),
        [
            "exportreview.hygie.io/table-2-alice",
            "exportreview.hygie.io/table-2-bob",
            "exportreview.hygie.io/table-2-carol"
        ]
    );

    // Once approved, the request is the record of the export: alice can no longer delete it;
    // the platform team (here the cluster's admin, who holds every verb, purge included) can,
    // and its reviews go with it.
    reviews::set_phase(ns, "table-2", "Released");
    let out = kubectl_as("alice", &["delete", "-n", ns, "exportrequest", "table-2"]);
    assert!(
        !out.success,
        "alice deleted the record of a released export"
    );
    assert!(
        out.stderr.contains("hygie-export-records")
            && out.stderr.contains(&format!(
                "ExportRequest {ns}/table-2 is Released: a request is withdrawn only before it is approved"
            )),
        "{}",
        out.stderr
    );
    kubectl_ok(&[
        "delete",
        "-n",
        ns,
        "exportrequest",
        "table-2",
        "--wait=true",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !kubectl_ok(&["get", "exportreviews", "-n", ns, "-o", "name"]).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reviews outlived their request"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `hygie export approve table-2` as `user`, which must succeed.
fn approve_as(user: &str, namespace: &str, reason: &str) {
    let args = [
        "export", "-n", namespace, "approve", "table-2", "--reason", reason,
    ];
    let out = hygie_as(user, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
