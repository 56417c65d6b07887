//! The `hygie` binary as a pipeline runs it: exit codes, stdout and stderr.

use std::{path::PathBuf, process::Command};

const NOW: &str = "2026-12-01T00:00:00Z";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn hygie(args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_hygie"))
        .args(args)
        .current_dir(repo(""))
        .output()
        .expect("the hygie binary runs");
    Outcome {
        code: output
            .status
            .code()
            .expect("exits normally, never by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn assert_no_panic(outcome: &Outcome) {
    assert!(
        !outcome.stderr.contains("panicked") && !outcome.stderr.contains("RUST_BACKTRACE"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn check_passes_the_provider_examples() {
    let out = hygie(&[
        "check",
        "-f",
        "examples/ovhcloud",
        "examples/scaleway",
        "examples/outscale",
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "");
}

#[test]
fn check_prints_one_line_per_violation_and_exits_1() {
    let out = hygie(&[
        "check",
        "-f",
        "examples/invalid/HYG005-egress-to-internet",
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with("HYG005 Workspace/research/study spec.egress[1].cidr: "),
        "{}",
        lines[0]
    );
}

#[test]
fn check_names_cluster_scoped_objects_without_namespace() {
    let out = hygie(&[
        "check",
        "-f",
        "examples/invalid/HYG001-outside-eea",
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("HYG001 HostingProfile/hds-fr spec.residency.country: "),
        "{}",
        out.stdout
    );
}

#[test]
fn check_json_is_machine_readable() {
    let out = hygie(&[
        "check",
        "-o",
        "json",
        "-f",
        "examples/invalid/HYG010-limits-below-requests",
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    let violations = report["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 2);
    assert_eq!(violations[0]["rule"], "HYG010");
    assert_eq!(violations[0]["object"], "Workspace/research/study");
    assert_eq!(violations[0]["field"], "spec.resources.requests.cpu");
    assert!(
        violations[0]["message"]
            .as_str()
            .unwrap()
            .contains("cpu request")
    );

    let clean = hygie(&[
        "check",
        "-o",
        "json",
        "-f",
        "examples/ovhcloud",
        "--now",
        NOW,
    ]);
    assert_eq!(clean.code, 0);
    let report: serde_json::Value = serde_json::from_str(&clean.stdout).unwrap();
    assert_eq!(report["violations"], serde_json::json!([]));
}

#[test]
fn now_decides_expiry() {
    let before = hygie(&[
        "check",
        "-f",
        "examples/ovhcloud",
        "--now",
        "2028-12-31T23:00:00Z",
    ]);
    assert_eq!(before.code, 0, "{}", before.stdout);
    let after = hygie(&[
        "check",
        "-f",
        "examples/ovhcloud",
        "--now",
        "2029-01-01T00:00:00Z",
    ]);
    assert_eq!(after.code, 1);
    assert!(
        after
            .stdout
            .contains("HYG007 Workspace/oncology/survival-study spec.datasets[0].name"),
        "{}",
        after.stdout
    );

    let bad = hygie(&["check", "-f", "examples/ovhcloud", "--now", "tomorrow"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
}

#[test]
fn malformed_input_exits_2_with_file_document_and_reason() {
    let out = hygie(&["check", "-f", "tests/fixtures/malformed/unknown-field.yaml"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim(),
        "error: tests/fixtures/malformed/unknown-field.yaml document 1: Workspace/research/study: unknown field `spec.egres`"
    );
    assert_eq!(out.stdout, "");
    for fixture in std::fs::read_dir(repo("tests/fixtures/malformed")).unwrap() {
        let path = fixture.unwrap().path();
        for command in ["check", "render"] {
            let out = hygie(&[command, "-f", path.to_str().unwrap()]);
            assert_eq!(out.code, 2, "{command} {}: {}", path.display(), out.stderr);
            assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
            assert_no_panic(&out);
        }
    }
}

#[test]
fn only_regular_files_are_read() {
    let dir = std::env::temp_dir().join(format!("hygie-special-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zero = dir.join("zero.yaml");
    let _ = std::fs::remove_file(&zero);
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = dir.join("fifo.yaml");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for special in [&zero, &fifo] {
        let out = hygie(&["check", "-f", special.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_generated_manifest_of_ten_thousand_workspaces_is_read_in_one_file() {
    let fixture = std::fs::read_to_string(repo("tests/fixtures/e2e/bundle.yaml")).unwrap();
    let documents: Vec<&str> = fixture.split("\n---\n").collect();
    let (profile, dataset, workspace) = (documents[0], documents[1], documents[2]);
    let mut manifest = String::from(profile);
    for i in 0..10_000 {
        let dataset = dataset.replace("name: cohort", &format!("name: cohort-{i}"));
        let workspace = workspace
            .replace("name: study", &format!("name: study-{i}"))
            .replace("{name: cohort,", &format!("{{name: cohort-{i},"));
        manifest.push_str(&format!("\n---\n{dataset}\n---\n{workspace}"));
    }
    let path = std::env::temp_dir().join(format!("hygie-generated-{}.yaml", std::process::id()));
    std::fs::write(&path, manifest).unwrap();
    let out = hygie(&["check", "-f", path.to_str().unwrap(), "--now", NOW]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn an_alias_bomb_is_refused() {
    let mut bomb = String::from(
        "apiVersion: hygie.io/v1alpha1\nkind: HostingProfile\nmetadata: {name: bomb}\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        bomb.push_str(&format!("x{level}: &a{level} [{items}]\n"));
    }
    let path = std::env::temp_dir().join(format!("hygie-bomb-{}.yaml", std::process::id()));
    std::fs::write(&path, bomb).unwrap();
    let out = hygie(&["check", "-f", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("hygie-bomb"),
        "names the file: {}",
        out.stderr
    );
    assert_no_panic(&out);
}

#[test]
fn missing_files_and_empty_arguments_are_errors() {
    let out = hygie(&["check", "-f", "no/such/dir"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("no/such/dir: no such file or directory"),
        "{}",
        out.stderr
    );
    let out = hygie(&["check"]);
    assert_eq!(out.code, 2, "clap refuses a missing -f");
    assert_no_panic(&out);
}

#[test]
fn render_prints_a_yaml_stream_of_the_objects() {
    let out = hygie(&["render", "-f", "examples/scaleway", "--now", NOW]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let golden = std::fs::read_to_string(repo("tests/golden/scaleway.yaml")).unwrap();
    assert_eq!(out.stdout, golden, "render and the golden file agree");
    assert!(out.stdout.starts_with("---\n"));
}

#[test]
fn render_json_is_a_v1_list() {
    let out = hygie(&[
        "render",
        "-o",
        "json",
        "-f",
        "examples/outscale",
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 0);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"StatefulSet") && kinds.contains(&"NetworkPolicy"),
        "{kinds:?}"
    );
}

#[test]
fn render_skips_what_breaks_a_rule_says_why_and_exits_1() {
    let out = hygie(&[
        "render",
        "-f",
        "examples/invalid/HYG006-outlives-authorisation",
        "--now",
        NOW,
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("HYG006 Workspace/research/study spec.expiresAt"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Workspace/research/study: not rendered"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("kind: StatefulSet"),
        "nothing of the workspace is rendered"
    );
    assert!(
        out.stdout.contains("name: cohort-data"),
        "the compliant dataset still renders"
    );
}

#[test]
fn crds_prints_every_definition_and_the_admission_policies() {
    let out = hygie(&["crds"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout.matches("kind: CustomResourceDefinition").count(),
        6
    );
    assert_eq!(
        out.stdout
            .matches("kind: ValidatingAdmissionPolicyBinding")
            .count(),
        13
    );
    assert!(out.stdout.contains("name: hygie-screen-only"));
    for name in [
        "hostingprofiles.hygie.io",
        "datasets.hygie.io",
        "workspaces.hygie.io",
        "exportrequests.hygie.io",
        "exportreviews.hygie.io",
        "sessions.hygie.io",
        "hygie-admission-policies",
    ] {
        let file = std::fs::read_to_string(repo(&format!("crds/{name}.yaml"))).unwrap();
        assert!(out.stdout.contains(&file), "{name} printed as in crds/");
    }
}

#[test]
fn report_prints_the_register_in_each_format() {
    let dirs = [
        "examples/scaleway",
        "examples/invalid/HYG012-operator-under-us-law",
    ];
    let run = |format: &str| {
        let mut args = vec!["report", "--now", NOW, "-o", format, "-f"];
        args.extend(dirs);
        let out = hygie(&args);
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);
        out.stdout
    };
    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    let processing = json["processing"].as_array().unwrap();
    let registry = processing
        .iter()
        .find(|p| p["dataset"] == "heart-failure-registry")
        .unwrap();
    assert_eq!(registry["classification"], "Identifying");
    assert_eq!(registry["workspaces"][0]["workspace"], "los-model");
    assert_eq!(json["violations"][0]["rule"], "HYG012");
    assert!(run("markdown").contains("## Rule violations in force"));
    let csv = run("csv");
    assert!(csv.starts_with("\"namespace\",\"dataset\""));
    assert_eq!(csv.lines().count(), 1 + processing.len());
    let html = run("html");
    assert!(html.contains("<tr class=\"alert\">") && html.ends_with("</html>\n"));
}

/// `hygie` with `input` on its standard input.
fn hygie_reading(args: &[&str], input: &str) -> Outcome {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hygie"))
        .args(args)
        .current_dir(repo(""))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the hygie binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Outcome {
        code: output.status.code().expect("exits normally"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn a_dash_reads_standard_input_as_a_pipeline_writes_it() {
    // What `kustomize build` writes: the documents of several files, one stream.
    let mut stream = String::new();
    for file in std::fs::read_dir(repo("examples/scaleway")).unwrap() {
        stream.push_str("---\n");
        stream.push_str(&std::fs::read_to_string(file.unwrap().path()).unwrap());
    }
    let out = hygie_reading(&["check", "--now", NOW, "-f", "-"], &stream);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let invalid = std::fs::read_to_string(repo(
        "examples/invalid/HYG010-limits-below-requests/bundle.yaml",
    ))
    .unwrap();
    let out = hygie_reading(&["check", "--now", NOW, "-f", "-"], &invalid);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("HYG010 Workspace/research/study spec.resources.requests.cpu"),
        "{}",
        out.stdout
    );
    let out = hygie_reading(&["check", "-f", "-"], "kind: [");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: standard input: not valid YAML"),
        "{}",
        out.stderr
    );
}
