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

/// Runs `script` with sh in the first container of `pod`; returns its exit status and output
/// (its standard output, then its standard error), without kubectl's own log lines.
pub fn exec(namespace: &str, pod: &str, script: &str) -> (bool, String) {
    let out = kubectl(&["exec", "-n", namespace, pod, "--", "sh", "-c", script]);
    let said: String = out
        .stderr
        .lines()
        .filter(|line| !is_kubectl_log(line))
        .map(|line| format!("{line}\n"))
        .collect();
    (out.success, format!("{}{said}", out.stdout))
}

/// Whether `line` is one of kubectl's own log lines (klog's header: a severity letter, the
/// date as MMDD, the time, the thread and `file:line]`), such as the `Unknown stream id`
/// kubectl's websocket client logs now and then, not something the command wrote.
fn is_kubectl_log(line: &str) -> bool {
    let mut chars = line.chars();
    let severity = chars
        .next()
        .is_some_and(|c| matches!(c, 'I' | 'W' | 'E' | 'F'));
    let date: String = chars.by_ref().take(4).collect();
    severity
        && date.len() == 4
        && date.bytes().all(|b| b.is_ascii_digit())
        && chars.next() == Some(' ')
        && line
            .split_once("] ")
            .is_some_and(|(header, _)| header.contains(".go:"))
}

/// What `from` gets back for an HTTP request to `address`, `host:port` (empty when nothing
/// answers).
pub fn fetch(namespace: &str, from: &str, address: &str) -> String {
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}");
    exec(namespace, from, &script).1
}

/// `curl` signed for the outside's S3 server, with `args`; returns the HTTP status and body.
pub fn s3(args: &[&str]) -> (String, String) {
    let user = format!("{}:{}", node_state("s3.access"), node_state("s3.secret"));
    let ca = repo_root().join("tests/node/state/s3-ca.crt");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--aws-sigv4", "aws:amz:fr-par:s3", "--user", &user])
        .arg("--cacert")
        .arg(&ca)
        .args([
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.to_owned(), body.to_owned())
}

/// Creates `bucket` on the outside's S3 server with Object Lock enabled, as an audit sink's.
pub fn create_locked_bucket(bucket: &str) {
    let url = format!("{}/{bucket}", node_state("s3.endpoint"));
    let (code, body) = s3(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-bucket-object-lock-enabled: true",
        &url,
    ]);
    assert_eq!(code, "200", "{body}");
}

/// The keys of `bucket` and the records they hold, in key order.
pub fn audit_records(bucket: &str) -> (Vec<String>, String) {
    let url = format!("{}/{bucket}", node_state("s3.endpoint"));
    let (code, listing) = s3(&[&url]);
    assert_eq!(code, "200", "{listing}");
    let keys: Vec<String> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split_once("</Key>").map(|(key, _)| key.to_owned()))
        .collect();
    let mut records = String::new();
    for key in &keys {
        assert!(key.ends_with(".jsonl"), "{key}");
        let (code, body) = s3(&[&format!("{url}/{key}")]);
        assert_eq!(code, "200", "{body}");
        records.push_str(&body);
    }
    (keys, records)
}

#[cfg(test)]
mod tests {
    use super::is_kubectl_log;

    #[test]
    fn kubectl_s_own_log_lines_are_told_from_the_command_s() {
        assert!(is_kubectl_log(
            "E1204 04:02:24.207390    7844 websocket.go:296] Unknown stream id 1, discarding message"
        ));
        for said in [
            "sh: can't create /data/x: Read-only file system",
            "E1204",
            "patient,readmitted",
            "I1234 is not a klog line] without its file",
        ] {
            assert!(!is_kubectl_log(said), "{said}");
        }
    }
}
