//! Each rule, passing and failing, on small objects.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::{
    api::{Classification, Date, dataset::DatasetPhase, hosting_profile::EncryptionType},
    fixtures::{dataset, inventory, luks_profile, now, profile, workspace},
};

/// The `rule field` pairs of the violations, for compact assertions.
fn found(violations: &[Violation]) -> Vec<String> {
    violations
        .iter()
        .map(|v| format!("{} {}", v.rule, v.field))
        .collect()
}

fn check(inventory: &Inventory, workspaces: &[Workspace]) -> Vec<String> {
    found(&check_all(inventory, workspaces, now()))
}

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

#[test]
fn the_fixtures_pass_every_rule() {
    assert_eq!(
        check(&inventory(profile(), vec![dataset()]), &[workspace()]),
        Vec::<String>::new()
    );
}

#[test]
fn violations_read_as_one_line_naming_rule_object_and_field() {
    let mut ws = workspace();
    ws.spec.egress[0].cidr = "0.0.0.0/0".into();
    let violations = check_all(&inventory(profile(), vec![dataset()]), &[ws], now());
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0]
            .to_string()
            .starts_with("HYG005 Workspace/research/study spec.egress[0].cidr: "),
        "{}",
        violations[0]
    );
    let mut p = profile();
    p.spec.residency.country = "US".into();
    assert!(
        check_profile(&p, now())[0]
            .to_string()
            .starts_with("HYG001 HostingProfile/hds-fr spec.residency.country: ")
    );
}

#[test]
fn hyg001_residency_in_the_eea_with_regions() {
    let mut p = profile();
    p.spec.provider = crate::api::hosting_profile::Provider::Generic;
    p.spec.residency.country = "NO".into();
    assert!(check_profile(&p, now()).is_empty(), "Norway is in the EEA");
    p.spec.residency.country = "CH".into();
    p.spec.residency.regions.clear();
    assert_eq!(
        found(&check_profile(&p, now())),
        [
            "HYG001 spec.residency.country",
            "HYG001 spec.residency.regions"
        ]
    );
}

#[test]
fn hyg002_health_data_needs_a_valid_hds_certification() {
    let mut p = profile();
    p.spec.certifications[0].valid_until = date("2026-11-30");
    let violations = check(&inventory(p.clone(), vec![dataset()]), &[workspace()]);
    assert!(
        violations.contains(&"HYG002 spec.hostingProfile".to_owned()),
        "{violations:?}"
    );
    assert_eq!(
        violations
            .iter()
            .filter(|v| v.starts_with("HYG002"))
            .count(),
        2,
        "dataset and workspace"
    );

    let mut open = dataset();
    open.spec.classification = Classification::Anonymised;
    p.spec.certifications.clear();
    let violations = check(&inventory(p, vec![open]), &[]);
    assert!(
        !violations.iter().any(|v| v.starts_with("HYG002")),
        "anonymised data needs no HDS: {violations:?}"
    );
}

#[test]
fn hyg002_a_certification_is_valid_through_its_last_day() {
    let mut p = profile();
    p.spec.certifications[0].valid_until = date("2026-12-01");
    assert!(profile::has_valid_hds(&p, at("2026-12-01T23:59:59Z")));
    assert!(!profile::has_valid_hds(&p, at("2026-12-02T00:00:00Z")));
}

#[test]
fn hyg003_health_data_needs_encryption_and_nodeluks_a_key() {
    let mut p = profile();
    p.spec.storage.encryption.kind = EncryptionType::None;
    let violations = check(&inventory(p.clone(), vec![dataset()]), &[]);
    assert_eq!(violations, ["HYG003 spec.hostingProfile"]);

    let mut open = dataset();
    open.spec.classification = Classification::Open;
    assert!(
        check(&inventory(p, vec![open]), &[]).is_empty(),
        "open data may be stored unencrypted"
    );

    let mut luks = luks_profile();
    assert!(check_profile(&luks, now()).is_empty());
    luks.spec.storage.encryption.passphrase_key = None;
    assert_eq!(
        found(&check_profile(&luks, now())),
        ["HYG003 spec.storage.encryption.passphraseKey"]
    );
    let mut beside_the_claims = luks_profile();
    beside_the_claims.spec.storage.encryption.secret_namespace = None;
    assert_eq!(
        found(&check_profile(&beside_the_claims, now())),
        ["HYG003 spec.storage.encryption.secretNamespace"]
    );
}

#[test]
fn hyg004_images_from_allowed_registries_pinned_by_digest() {
    let inv = inventory(profile(), vec![dataset()]);
    let mut ws = workspace();
    ws.spec.image = "registry.example.fr/research/jupyter:latest".into();
    assert_eq!(check(&inv, &[ws.clone()]), ["HYG004 spec.image"]);
    ws.spec.image = format!("docker.io/library/python@sha256:{}", "a".repeat(64));
    assert_eq!(check(&inv, &[ws.clone()]), ["HYG004 spec.image"]);
    ws.spec.image = format!(
        "registry.example.fr/research/jupyter@sha256:{}",
        "A".repeat(64)
    );
    assert_eq!(
        check(&inv, &[ws]),
        ["HYG004 spec.image"],
        "digests are lowercase hex"
    );

    let mut p = profile();
    p.spec.images.importer = Some("registry.example.fr/research/rclone:1.68".into());
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG004 spec.images.importer"]
    );
    let mut p = profile();
    p.spec.images.review = Some(format!(
        "registry.elsewhere.example/desktop@sha256:{}",
        "0".repeat(64)
    ));
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG004 spec.images.review"],
        "the review desktop comes from an allowed registry"
    );
}

#[test]
fn hyg005_egress_is_narrow_and_well_formed() {
    let mut declaring = profile();
    declaring.spec.network.egress_destinations = vec![
        "10.20.0.0/16".into(),
        "fd12:3456:789a::/48".into(),
        "192.0.2.0/24".into(),
    ];
    let inv = inventory(declaring, vec![dataset()]);
    let with = |cidr: &str, port: i32| {
        let mut ws = workspace();
        ws.spec.egress[0].cidr = cidr.into();
        ws.spec.egress[0].ports[0].port = port;
        check(&inv, &[ws])
    };
    assert!(
        with("10.20.0.0/16", 443).is_empty(),
        "a /16 is the widest private IPv4 network allowed"
    );
    assert!(with("fd12:3456:789a::/48", 443).is_empty());
    assert_eq!(with("10.0.0.0/8", 443), ["HYG005 spec.egress[0].cidr"]);
    assert_eq!(
        with("10.21.0.0/24", 443),
        ["HYG005 spec.egress[0].cidr"],
        "private, undeclared"
    );
    assert_eq!(
        with("2001:db8::/32", 443),
        ["HYG005 spec.egress[0].cidr"],
        "public, undeclared"
    );
    assert!(
        with("192.0.2.0/24", 443).is_empty(),
        "declared by the profile"
    );
    assert_eq!(with("::ffff:0:0/96", 443), ["HYG005 spec.egress[0].cidr"]);
    assert_eq!(with("::/0", 443), ["HYG005 spec.egress[0].cidr"]);
    assert_eq!(with("10.20.0.1/24", 443), ["HYG005 spec.egress[0].cidr"]);
    assert_eq!(with("intranet", 443), ["HYG005 spec.egress[0].cidr"]);
    assert_eq!(
        with("10.20.0.0/24", 0),
        ["HYG005 spec.egress[0].ports[0].port"]
    );
    assert_eq!(
        with("10.20.0.0/24", 65536),
        ["HYG005 spec.egress[0].ports[0].port"]
    );
}

#[test]
fn hyg005_applies_to_the_import_job_egress_too() {
    let mut ds = dataset();
    ds.spec.source = Some(
        serde_json::from_value(serde_json::json!({"s3": {
            "endpoint": "https://s3.example.fr", "bucket": "cohort-source",
            "credentialsSecretRef": {"name": "s3"},
            "egress": [{"cidr": "0.0.0.0/0", "ports": [{"port": 443}]}]
        }}))
        .unwrap(),
    );
    assert_eq!(
        check(&inventory(profile(), vec![ds]), &[]),
        ["HYG005 spec.source.s3.egress[0].cidr"]
    );
}

#[test]
fn hyg006_health_workspaces_expire_within_the_authorisation() {
    let inv = inventory(profile(), vec![dataset()]);
    let mut ws = workspace();
    ws.spec.expires_at = None;
    assert_eq!(check(&inv, &[ws.clone()]), ["HYG006 spec.expiresAt"]);
    ws.spec.expires_at = Some(Time(at("2028-01-01T00:00:00Z")));
    assert!(
        check(&inv, &[ws.clone()]).is_empty(),
        "the authorisation covers all of 2027-12-31"
    );
    ws.spec.expires_at = Some(Time(at("2028-01-01T00:00:01Z")));
    assert_eq!(check(&inv, &[ws.clone()]), ["HYG006 spec.expiresAt"]);

    let mut open = dataset();
    open.spec.classification = Classification::Open;
    ws.spec.expires_at = None;
    assert!(
        check(&inventory(profile(), vec![open]), &[ws]).is_empty(),
        "no expiry needed without health data"
    );
}

#[test]
fn hyg007_datasets_exist_share_the_profile_and_are_not_expired() {
    let mut ws = workspace();
    ws.spec.datasets[0].name = "other".into();
    assert_eq!(
        check(&inventory(profile(), vec![dataset()]), &[ws]),
        ["HYG007 spec.datasets[0].name"]
    );

    let mut elsewhere = dataset();
    elsewhere.metadata.namespace = Some("another-team".into());
    assert_eq!(
        check(&inventory(profile(), vec![elsewhere]), &[workspace()]),
        ["HYG007 spec.datasets[0].name"],
        "datasets are only seen in the workspace's namespace"
    );

    let mut other_profile = profile();
    other_profile.metadata.name = Some("other".into());
    let mut moved = dataset();
    moved.spec.hosting_profile = "other".into();
    let mut inv = inventory(profile(), vec![moved]);
    inv.add_profile(other_profile);
    assert_eq!(
        check(&inv, &[workspace()]),
        ["HYG007 spec.datasets[0].name"]
    );

    let mut expired = dataset();
    expired.status = Some(crate::api::dataset::DatasetStatus {
        phase: Some(DatasetPhase::Expired),
        ..Default::default()
    });
    assert_eq!(
        check(&inventory(profile(), vec![expired]), &[workspace()]),
        ["HYG007 spec.datasets[0].name"]
    );

    let mut lapsed = dataset();
    lapsed.spec.legal.valid_until = date("2026-11-30");
    let violations = check(&inventory(profile(), vec![lapsed]), &[workspace()]);
    assert!(
        violations.contains(&"HYG007 spec.datasets[0].name".to_owned()),
        "{violations:?}"
    );
}

#[test]
fn hyg008_the_profile_exists() {
    let inv = inventory(profile(), vec![]);
    let mut ds = dataset();
    ds.spec.hosting_profile = "nowhere".into();
    let mut ws = workspace();
    ws.spec.hosting_profile = "nowhere".into();
    ws.spec.datasets.clear();
    let mut inv = inv;
    inv.add_dataset(ds);
    assert_eq!(
        check(&inv, &[ws]),
        ["HYG008 spec.hostingProfile", "HYG008 spec.hostingProfile"]
    );
}

#[test]
fn hyg009_certifications_past_their_date() {
    let mut p = profile();
    p.spec.certifications[0].valid_until = date("2026-11-30");
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG009 spec.certifications[0].validUntil"]
    );
    p.spec.certifications[0].valid_until = date("2026-12-01");
    assert!(check_profile(&p, now()).is_empty(), "valid on its last day");
}

#[test]
fn hyg010_requests_and_limits() {
    let inv = inventory(profile(), vec![dataset()]);
    let mut ws = workspace();
    ws.spec.resources.limits = None;
    assert_eq!(
        check(&inv, &[ws.clone()]),
        [
            "HYG010 spec.resources.limits.cpu",
            "HYG010 spec.resources.limits.memory"
        ]
    );
    let mut ws = workspace();
    let limits = ws.spec.resources.limits.as_mut().unwrap();
    limits.cpu = Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
        "500m".into(),
    ));
    assert_eq!(
        check(&inv, &[ws.clone()]),
        ["HYG010 spec.resources.limits.cpu"]
    );
    ws.spec.resources.limits.as_mut().unwrap().cpu = Some(
        k8s_openapi::apimachinery::pkg::api::resource::Quantity("1000m".into()),
    );
    assert!(check(&inv, &[ws]).is_empty(), "1000m equals 1");
}

#[test]
fn hyg011_s3_imports_need_a_trusted_importer() {
    let mut ds = dataset();
    ds.spec.source = Some(
        serde_json::from_value(serde_json::json!({"s3": {
            "endpoint": "https://s3.example.fr", "bucket": "cohort-source",
            "credentialsSecretRef": {"name": "s3"},
            "egress": [{"cidr": "192.0.2.0/24", "ports": [{"port": 443}]}]
        }}))
        .unwrap(),
    );
    assert!(check(&inventory(profile(), vec![ds.clone()]), &[]).is_empty());
    let mut p = profile();
    p.spec.images.importer = None;
    assert_eq!(
        check(&inventory(p, vec![ds]), &[]),
        ["HYG011 spec.source.s3"]
    );
}

#[test]
fn every_rule_has_a_distinct_id_and_a_summary() {
    let ids: std::collections::BTreeSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), Rule::ALL.len());
    for rule in Rule::ALL {
        assert_eq!(serde_json::to_value(rule).unwrap(), rule.id());
        assert!(!rule.summary().is_empty());
    }
}

#[test]
fn hyg001_a_toleration_of_every_taint_is_refused() {
    let mut p = profile();
    p.spec.scheduling.tolerations = vec![
        serde_json::from_value(serde_json::json!({"operator": "Exists"})).unwrap(),
        serde_json::from_value(serde_json::json!(
            {"key": "dedicated", "operator": "Equal", "value": "health-data", "effect": "NoSchedule"}
        ))
        .unwrap(),
    ];
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG001 spec.scheduling.tolerations[0]"]
    );
}

#[test]
fn hyg001_regions_of_a_named_provider_are_its_eea_regions() {
    let mut p = profile();
    p.spec.residency.regions = vec!["GRA9".into(), "BHS5".into()];
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG001 spec.residency.regions[1]"]
    );
}

#[test]
fn hyg010_volumes_have_a_size() {
    let inv = inventory(profile(), vec![dataset()]);
    let mut ws = workspace();
    ws.spec.storage.size = k8s_openapi::apimachinery::pkg::api::resource::Quantity("0".into());
    assert_eq!(check(&inv, &[ws]), ["HYG010 spec.storage.size"]);
}

#[test]
fn hyg015_ingress_from_every_namespace_or_every_pod_is_refused() {
    let mut p = profile();
    p.spec
        .network
        .ingress_from
        .as_mut()
        .unwrap()
        .namespace_labels
        .clear();
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG015 spec.network.ingressFrom.namespaceLabels"]
    );
    let mut p = profile();
    p.spec
        .network
        .ingress_from
        .as_mut()
        .unwrap()
        .pod_labels
        .clear();
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG015 spec.network.ingressFrom.podLabels"]
    );
    let mut p = profile();
    p.spec.network.dns.pod_labels.clear();
    assert_eq!(
        found(&check_profile(&p, now())),
        ["HYG015 spec.network.dns.podLabels"]
    );
}

#[test]
fn hyg016_a_dataset_is_never_cloned_from_a_managed_claim() {
    let mut ds = dataset();
    ds.spec.source = Some(
        serde_json::from_value(serde_json::json!(
            {"persistentVolumeClaim": {"claimName": "study-home"}}
        ))
        .unwrap(),
    );
    let mut inv = inventory(profile(), vec![ds.clone()]);
    assert!(check(&inv, &[]).is_empty(), "an outside claim is a source");
    inv.managed_claims
        .insert(("research".into(), "study-home".into()));
    assert_eq!(
        check(&inv, &[]),
        ["HYG016 spec.source.persistentVolumeClaim.claimName"]
    );
}

#[test]
fn hyg010_amounts_the_api_server_would_round_are_refused() {
    let inv = inventory(profile(), vec![dataset()]);
    let with = |cpu: &str, memory: &str| {
        let mut ws = workspace();
        let requests = ws.spec.resources.requests.as_mut().unwrap();
        requests.cpu = Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            cpu.into(),
        ));
        requests.memory = Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            memory.into(),
        ));
        check(&inv, &[ws])
    };
    assert!(with("0.5", "1.5Gi").is_empty());
    assert!(with("250m", "0.5Ki").is_empty());
    assert_eq!(
        with("1.0005", "4Gi"),
        ["HYG010 spec.resources.requests.cpu"]
    );
    assert_eq!(with("0.5m", "4Gi"), ["HYG010 spec.resources.requests.cpu"]);
    assert_eq!(with("1", "0.5"), ["HYG010 spec.resources.requests.memory"]);
}

#[test]
fn hyg012_only_data_requiring_immunity_needs_an_immune_host() {
    let mut exposed = profile();
    exposed.spec.sovereignty = Some(
        serde_json::from_value(serde_json::json!({"extraterritorialExposure": ["US-CLOUD-Act"]}))
            .unwrap(),
    );
    let pseudonymised = inventory(exposed.clone(), vec![dataset()]);
    assert_eq!(
        check(&pseudonymised, &[workspace()]),
        ["HYG012 spec.hostingProfile", "HYG012 spec.hostingProfile"],
        "the dataset and the workspace that mounts it"
    );
    let message = check_all(&pseudonymised, &[], now())[0].message.clone();
    assert!(
        message.contains("declares exposure to US-CLOUD-Act")
            && message.contains("Dataset `cohort` (Pseudonymised) requires immunity"),
        "{message}"
    );

    let mut open = dataset();
    open.spec.classification = crate::api::Classification::Open;
    assert!(check(&inventory(exposed.clone(), vec![open]), &[workspace()]).is_empty());

    let mut waived = dataset();
    waived.spec.legal.immunity = Some(crate::api::dataset::Immunity::NotRequired);
    assert!(check(&inventory(exposed, vec![waived]), &[workspace()]).is_empty());
}
