//! Rules on a HostingProfile alone: residency in the EEA regions of its provider (HYG001), encryption settings (HYG003),
//! the importer image (HYG004) and certification dates (HYG009).

use super::{
    Findings, Rule, Violation,
    certifications::{check_certifications, covered},
    eea::is_eea_member,
    images::{check_image, check_prefixes},
    network::{check_destinations, destinations},
    providers,
    resolver::check_resolver,
};
use crate::api::{
    HostingProfile,
    hosting_profile::{CertificationType, EncryptionType},
};

pub fn check_profile(profile: &HostingProfile, now: jiff::Timestamp) -> Vec<Violation> {
    let mut findings = Findings::for_object(profile);
    let spec = &profile.spec;

    let country = &spec.residency.country;
    if !is_eea_member(country) {
        findings.add(
            Rule::Residency,
            "spec.residency.country",
            format!("`{country}` is not a member state of the European Economic Area; health data must stay in the EEA"),
        );
    }
    if spec.residency.regions.is_empty() {
        findings.add(
            Rule::Residency,
            "spec.residency.regions",
            "list the certified regions: every pod is pinned to them by node affinity",
        );
    }

    if let Some(facts) = providers::facts(spec.provider) {
        for (i, region) in spec.residency.regions.iter().enumerate() {
            if !providers::lists(facts.eea_regions, region) {
                findings.add(
                    Rule::Residency,
                    format!("spec.residency.regions[{i}]"),
                    format!(
                        "`{region}` is not an EEA region of {}; Hygie knows {}",
                        spec.provider.as_str(),
                        facts.eea_regions.join(", ")
                    ),
                );
            } else if let Some(actual) = providers::country_of(facts, region)
                && actual != country
            {
                findings.add(
                    Rule::Residency,
                    format!("spec.residency.regions[{i}]"),
                    format!(
                        "`{region}` is in {actual}, not in {country} as spec.residency.country says: the country is where the regions are"
                    ),
                );
            }
        }
    }

    for (i, toleration) in spec.scheduling.tolerations.iter().enumerate() {
        let wildcard = toleration.operator.as_deref() == Some("Exists")
            && toleration.key.as_deref().is_none_or(str::is_empty);
        if wildcard {
            findings.add(
                Rule::Residency,
                format!("spec.scheduling.tolerations[{i}]"),
                "operator Exists without a key tolerates every taint, those that keep other workloads off the certified nodes and health data off the others; name the taint",
            );
        }
    }
    if spec.network.dns.pod_labels.is_empty() {
        findings.add(
            Rule::Ingress,
            "spec.network.dns.podLabels",
            "an empty selector lets workloads reach every pod of the DNS namespace on port 53; select the DNS pods, such as k8s-app: kube-dns",
        );
    }
    if let Some(ingress) = &spec.network.ingress_from {
        if ingress.namespace_labels.is_empty() {
            findings.add(
                Rule::Ingress,
                "spec.network.ingressFrom.namespaceLabels",
                "an empty selector is every namespace; name the ingress controller's namespace by a label, such as kubernetes.io/metadata.name",
            );
        }
        if ingress.pod_labels.is_empty() {
            findings.add(
                Rule::Ingress,
                "spec.network.ingressFrom.podLabels",
                "without a pod selector every pod of those namespaces reaches the workspaces reached directly, and the tool's own login is all that is left; select the ingress controller's pods, such as app.kubernetes.io/name: ingress-nginx",
            );
        }
    }

    check_destinations(
        &mut findings,
        "spec.network.egressDestinations",
        &spec.network.egress_destinations,
    );
    if let Some(resolver) = &spec.network.resolver {
        let declared = destinations(&spec.network.egress_destinations);
        check_resolver(&mut findings, resolver, &declared);
    }

    let encryption = &spec.storage.encryption;
    let needed_by_nodeluks = [
        (
            "spec.storage.encryption.passphraseKey",
            &encryption.passphrase_key,
            "NodeLUKS needs the key the CSI driver reads in the passphrase Secret (Scaleway: encryptionPassphrase, Outscale: key)",
        ),
        (
            "spec.storage.encryption.secretNamespace",
            &encryption.secret_namespace,
            "NodeLUKS passphrases need a namespace of their own, which only the operator and the nodes read: beside the claims, the namespace's edit role reads them",
        ),
    ];
    for (field, value, why) in needed_by_nodeluks {
        if encryption.kind == EncryptionType::NodeLuks && value.as_deref().is_none_or(str::is_empty)
        {
            findings.add(Rule::Encryption, field, why);
        }
    }

    check_prefixes(
        &mut findings,
        "spec.images.allowedRegistries",
        &spec.images.allowed_registries,
    );
    let images = [
        ("spec.images.importer", &spec.images.importer),
        ("spec.images.review", &spec.images.review),
    ];
    for (field, image) in images {
        if let Some(image) = image {
            check_image(&mut findings, field, image, &spec.images.allowed_registries);
        }
    }

    for (i, certification) in spec.certifications.iter().enumerate() {
        if certification.valid_until.is_past(now) {
            findings.add(
                Rule::CertificationDates,
                format!("spec.certifications[{i}].validUntil"),
                format!(
                    "the {} certification `{}` ended on {}; the profile is not Ready until it is renewed",
                    certification.kind.as_str(),
                    certification.reference,
                    certification.valid_until
                ),
            );
        }
    }
    check_certifications(&mut findings, profile, now);
    super::export::check_profile_exports(&mut findings, profile);
    findings.into_vec()
}

/// Whether HDS certifications valid at `now` cover every one of the profile's regions (a
/// certification covers the regions it lists, or all when it lists none).
pub fn has_valid_hds(profile: &HostingProfile, now: jiff::Timestamp) -> bool {
    let spec = &profile.spec;
    let regions = &spec.residency.regions;
    !regions.is_empty()
        && regions.iter().all(|region| {
            spec.certifications.iter().any(|c| {
                c.kind == CertificationType::Hds
                    && !c.valid_until.is_past(now)
                    && !covered(c, std::slice::from_ref(region)).is_empty()
            })
        })
}
