//! The bundled examples: valid ones pass every rule and render hardened workloads; each invalid
//! one fails with the rule and field it is named for; malformed input is refused with a reason.

use hygie::{
    api::HostingProfile,
    build::Child,
    bundle::Bundle,
    policy::{Rule, check_all},
    render::render,
};
use hygie_tests::{
    annotations, golden_now, invalid_examples, pod_security, repo_root, valid_examples,
};
use kube::ResourceExt;

fn load(path: &std::path::Path) -> Bundle {
    Bundle::load(&[path.to_owned()]).unwrap_or_else(|e| panic!("{e}"))
}

/// An invalid example as the operator may meet it in a cluster: admitted before its CRD
/// carried the CEL rule that now refuses it. Such examples say `# admission: refused`: the API
/// server and `hygie check` refuse them as malformed, and the rule still catches them.
fn load_as_admitted_earlier(dir: &std::path::Path) -> Bundle {
    let error = Bundle::load(&[dir.to_owned()])
        .expect_err("the CRD's CEL rules refuse it")
        .to_string();
    let mut bundle = Bundle::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        for document in documents {
            match document["kind"].as_str() {
                Some("HostingProfile") => bundle
                    .inventory
                    .add_profile(serde_json::from_value(document).unwrap()),
                Some("Dataset") => bundle
                    .inventory
                    .add_dataset(serde_json::from_value(document).unwrap()),
                Some("Workspace") => bundle
                    .workspaces
                    .push(serde_json::from_value(document).unwrap()),
                other => panic!("{}: kind {other:?}", dir.display()),
            }
        }
    }
    let fields: Vec<String> = annotations(dir, "expect")
        .iter()
        .filter_map(|e| e.rsplit(' ').next().map(str::to_owned))
        .collect();
    assert!(
        fields.iter().any(|f| error.contains(f.as_str())),
        "{}: `{error}` names one of {fields:?}",
        dir.display()
    );
    bundle
}

/// The example's objects, however they are refused.
fn load_invalid(dir: &std::path::Path) -> Bundle {
    if annotations(dir, "admission")
        .iter()
        .any(|a| a.starts_with("refused"))
    {
        load_as_admitted_earlier(dir)
    } else {
        load(dir)
    }
}

#[test]
fn every_rule_has_an_invalid_example() {
    let dirs: Vec<String> = invalid_examples()
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // A rule on what only the cluster holds has its proof in the operator's tests instead.
    for rule in Rule::ALL.into_iter().filter(|r| !r.reads_the_cluster()) {
        assert!(
            dirs.iter().any(|d| d.starts_with(rule.id())),
            "no examples/invalid bundle for {rule}"
        );
    }
}

#[test]
fn each_invalid_example_fails_with_its_rule_and_field() {
    for dir in invalid_examples() {
        let bundle = load_invalid(&dir);
        let lines: Vec<String> = check_all(&bundle.inventory, &bundle.workspaces, golden_now())
            .iter()
            .map(|v| v.to_string())
            .collect();
        let expected = annotations(&dir, "expect");
        assert!(
            !expected.is_empty(),
            "{} says what it expects",
            dir.display()
        );
        for expect in expected {
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("{expect}:"))),
                "{}: expected `{expect}`, got {lines:#?}",
                dir.display()
            );
        }
        let named_rule = &dir.file_name().unwrap().to_string_lossy()[..6];
        assert!(
            lines.iter().all(|l| l.starts_with(named_rule)),
            "{}: only {named_rule} fails, got {lines:#?}",
            dir.display()
        );
    }
}

#[test]
fn invalid_examples_render_nothing_for_what_breaks_the_rules() {
    for dir in invalid_examples() {
        let rendered = render(&load_invalid(&dir), golden_now());
        assert!(!rendered.violations.is_empty());
        for violation in &rendered.violations {
            let owner = violation.object.name.as_str();
            let leaked = rendered.objects.iter().any(|o| {
                o.meta()
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.values().any(|v| v == owner))
            });
            assert!(
                !leaked,
                "{}: {} was rendered despite {violation}",
                dir.display(),
                violation.object
            );
        }
    }
}

#[test]
fn valid_examples_pass_every_rule() {
    for dir in valid_examples() {
        let bundle = load(&dir);
        let violations = check_all(&bundle.inventory, &bundle.workspaces, golden_now());
        assert!(violations.is_empty(), "{}: {violations:#?}", dir.display());
    }
}

#[test]
fn every_rendered_pod_is_hardened() {
    let mut pods = 0;
    for dir in valid_examples() {
        let bundle = load(&dir);
        let profile: &HostingProfile = bundle
            .inventory
            .profiles
            .values()
            .next()
            .expect("a profile per bundle");
        for child in render(&bundle, golden_now()).objects {
            let (owner, spec, workload) = match &child {
                Child::StatefulSet(s) => (
                    format!("StatefulSet/{}", s.name_any()),
                    s.spec.as_ref().and_then(|s| s.template.spec.clone()),
                    pod_security::Workload::LongRunning,
                ),
                Child::Job(j) => (
                    format!("Job/{}", j.name_any()),
                    j.spec.as_ref().and_then(|s| s.template.spec.clone()),
                    pod_security::Workload::RunToCompletion,
                ),
                _ => continue,
            };
            let spec = spec.unwrap_or_else(|| panic!("{owner} has a pod template"));
            let breaches = pod_security::breaches(&owner, &spec, profile, workload);
            assert!(breaches.is_empty(), "{}: {breaches:#?}", dir.display());
            pods += 1;
        }
    }
    assert!(
        pods >= 4,
        "the examples render workspaces and an import Job, found {pods} pods"
    );
}

#[test]
fn malformed_fixtures_are_refused_with_their_reason() {
    let dir = repo_root().join("tests/fixtures/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for file in files {
        let expected = annotations(&file, "expect");
        let error = Bundle::load(std::slice::from_ref(&file))
            .expect_err(&file.display().to_string())
            .to_string();
        assert!(error.starts_with(&file.display().to_string()), "{error}");
        for expect in expected {
            assert!(
                error.contains(&expect),
                "{}: expected `{expect}` in `{error}`",
                file.display()
            );
        }
    }
}
