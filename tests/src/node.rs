//! What tests/node/up.sh leaves for the tests: image references and the S3 server's address,
//! in files of its state folder.

use crate::repo_root;

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
