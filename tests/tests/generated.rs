//! Generated files must be exactly what the code generates today: the CRDs (in crds/ and in
//! charts/hygie/crds/), the admission policies (in crds/ and in the chart's templates) and the
//! golden renders of every valid example.

use hygie::{
    bundle::Bundle,
    render::{render, yaml_stream},
};
use hygie_tests::{assert_file_matches, golden_now, repo_root, valid_examples};

#[test]
fn crds_match_the_rust_types() {
    let crds = hygie::api::crds();
    assert_eq!(crds.len(), 6);
    for crd in crds {
        let name = crd.metadata.name.clone().expect("CRDs are named");
        let yaml = yaml_stream(&[serde_json::to_value(&crd).unwrap()]);
        for folder in ["crds", "charts/hygie/crds"] {
            assert_file_matches(
                &repo_root().join(folder).join(format!("{name}.yaml")),
                &yaml,
            );
        }
    }
}

#[test]
fn admission_policies_match_the_code() {
    let yaml = yaml_stream(&hygie::admission::policies(
        hygie::admission::DEFAULT_OPERATOR,
    ));
    assert_file_matches(&repo_root().join(ADMISSION), &yaml);
    // The chart names its own ServiceAccount, whatever the release's name and namespace: a
    // placeholder, short enough that no line of the policy is folded, becomes the expression.
    let placeholder = "CHART-OPERATOR";
    let operator =
        r#"system:serviceaccount:{{ .Release.Namespace }}:{{ include "hygie.fullname" . }}"#;
    let templated =
        yaml_stream(&hygie::admission::policies(placeholder)).replace(placeholder, operator);
    let chart =
        format!("{{{{- if .Values.admissionPolicies.enabled }}}}\n{templated}{{{{- end }}}}\n");
    assert_file_matches(
        &repo_root().join("charts/hygie/templates/admission-policies.yaml"),
        &chart,
    );
}

/// Where the admission policies are generated, beside the CRDs they protect.
const ADMISSION: &str = "crds/hygie-admission-policies.yaml";

#[test]
fn crds_folder_holds_nothing_else() {
    let expected: Vec<String> = hygie::api::crds()
        .iter()
        .map(|c| format!("{}.yaml", c.metadata.name.as_deref().unwrap()))
        .chain([ADMISSION.trim_start_matches("crds/").to_owned()])
        .collect();
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        found, expected_sorted,
        "crds/ must hold one file per kind and the admission policies, nothing else"
    );
}

#[test]
fn golden_renders_match_the_examples() {
    let examples = valid_examples();
    assert!(examples.len() >= 3, "one bundle per provider at least");
    for example in examples {
        let bundle = Bundle::load(std::slice::from_ref(&example)).unwrap_or_else(|e| panic!("{e}"));
        let rendered = render(&bundle, golden_now());
        assert!(
            rendered.violations.is_empty(),
            "{}: {:?}",
            example.display(),
            rendered.violations
        );
        assert!(!rendered.objects.is_empty());
        let objects: Vec<_> = rendered.objects.iter().map(|o| o.to_json()).collect();
        let name = example.file_name().unwrap().to_string_lossy();
        assert_file_matches(
            &repo_root()
                .join("tests/golden")
                .join(format!("{name}.yaml")),
            &yaml_stream(&objects),
        );
    }
}

#[test]
fn the_api_reference_matches_the_crds() {
    let reference = hygie::reference::markdown(&hygie::api::crds());
    for field in [
        "spec.residency.country",
        "spec.egress[].cidr",
        "spec.legal.validUntil",
        "status.conditions",
    ] {
        assert!(
            reference.contains(&format!("`{field}`")),
            "{field} is documented"
        );
    }
    assert_file_matches(&repo_root().join("docs/reference.md"), &reference);
}
