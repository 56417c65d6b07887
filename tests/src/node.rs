//! What tests/node/up.sh leaves for the tests (image references and the S3 server's address,
//! in files of its state folder), and what the tests do in the probe's pods.

use crate::{cluster::kubectl, repo_root};

/// The content of `file` in tests/node/state, trimmed.
pub fn node_state(file: &str) -> String {
    let path = repo_root().join("tests/node/state").join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; start the node with tests/node/up.sh",
                path.display()
            )
        })
        .trim()
        .to_owned()
}

/// The probe image's reference: `HYGIE_NODE_PROBE_IMAGE` (the test command sets it from
/// up.sh's output), or the one up.sh recorded.
pub fn probe_image() -> String {
    match std::env::var_os("HYGIE_NODE_PROBE_IMAGE") {
        Some(image) => image.into_string().expect("a UTF-8 image reference"),
        None => node_state("probe.ref"),
    }
}

/// Runs `script` with sh in the first container of `pod`; returns its exit status and output.
pub fn exec(namespace: &str, pod: &str, script: &str) -> (bool, String) {
    let out = kubectl(&["exec", "-n", namespace, pod, "--", "sh", "-c", script]);
    (out.success, format!("{}{}", out.stdout, out.stderr))
}

/// What `from` gets back for an HTTP request to `address`, `host:port` (empty when nothing
/// answers).
pub fn fetch(namespace: &str, from: &str, address: &str) -> String {
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}");
    exec(namespace, from, &script).1
}
