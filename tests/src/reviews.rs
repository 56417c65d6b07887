//! Reviews as `hygie export approve` writes them, for tests that run no operator: the request's
//! status moved into review as the operator would move it, and a review bound to the live
//! request (its UID, its staged digest, an owner reference to it).

use serde_json::{Value, json};

use crate::cluster::kubectl_ok;

/// The staged file the tests' requests are moved into review with.
fn staged() -> Vec<hygie::api::export::StagedFile> {
    serde_json::from_value(json!([{
        "path": "tables/complications-by-hba1c.csv", "size": 38,
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    }]))
    .unwrap()
}

/// Moves `request`'s status to `phase`, with one staged file and its digest, as the operator
/// would (the admin writes it: no operator runs).
pub fn set_phase(namespace: &str, request: &str, phase: &str) {
    let files = staged();
    let patch = json!({"status": {
        "phase": phase,
        "stagedFiles": files,
        "stagedDigest": hygie::api::export::staged_digest(&files),
        "reviewOpenedAt": "2026-01-01T00:00:00Z",
    }});
    kubectl_ok(&[
        "patch",
        "-n",
        namespace,
        "exportrequest",
        request,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        &patch.to_string(),
    ]);
}

/// The UID of `request` and the digest of what it staged (a well-formed placeholder before it
/// staged anything).
pub fn live_request(namespace: &str, request: &str) -> (String, String) {
    let object: Value = serde_json::from_str(&kubectl_ok(&[
        "get",
        "-n",
        namespace,
        "exportrequest",
        request,
        "-o",
        "json",
    ]))
    .unwrap();
    let uid = object["metadata"]["uid"].as_str().unwrap().to_owned();
    let digest = object["status"]["stagedDigest"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sha256:{}", "0".repeat(64)));
    (uid, digest)
}

/// `review` bound to the request it names as it stands now.
pub fn bound(mut review: Value) -> Value {
    let namespace = review["metadata"]["namespace"].as_str().unwrap().to_owned();
    let request = review["spec"]["request"].as_str().unwrap().to_owned();
    let (uid, digest) = live_request(&namespace, &request);
    review["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "hygie.io/v1alpha1", "kind": "ExportRequest", "name": request, "uid": uid}
    ]);
    review["spec"]["requestUID"] = json!(uid);
    review["spec"]["stagedDigest"] = json!(digest);
    review
}
