//! HYG012: immunity from non-EEA law. Where the disks are says nothing of who can be compelled
//! to hand the data over: a profile is immune when its operator is seated in the EEA, is not
//! controlled from outside it and is subject to no extraterritorial law, or when it holds an
//! ANSSI SecNumCloud qualification, valid today, for every one of its regions.

use kube::ResourceExt;

use super::{
    Findings, Rule, certifications::declares_what_secnumcloud_excludes, eea::is_eea_member,
    providers,
};
use crate::api::{
    Dataset, HostingProfile,
    hosting_profile::{CertificationType, Provider},
};

/// HYG012 for an object that holds or mounts `datasets` on `profile`: a violation at
/// `spec.hostingProfile` when one of them requires immunity and the profile is exposed.
pub(crate) fn check_immunity(
    findings: &mut Findings,
    profile: &HostingProfile,
    datasets: &[&Dataset],
    now: jiff::Timestamp,
) {
    let needing: Vec<String> = datasets
        .iter()
        .filter(|d| d.requires_immunity())
        .map(|d| format!("`{}` ({:?})", d.name_any(), d.spec.classification))
        .collect();
    if needing.is_empty() {
        return;
    }
    let reasons = exposure(profile, now);
    if !reasons.is_empty() {
        findings.add(
            Rule::Immunity,
            "spec.hostingProfile",
            format!(
                "{}; Dataset {} requires immunity from non-EEA law",
                reasons.join("; "),
                needing.join(", ")
            ),
        );
    }
}

/// Why a profile is not immune, in sentences that name the law or the missing fact, or
/// nothing when it is.
pub fn exposure(profile: &HostingProfile, now: jiff::Timestamp) -> Vec<String> {
    let reasons = structural_exposure(profile);
    if reasons.is_empty() {
        return reasons;
    }
    match uncovered_by_secnumcloud(profile, now) {
        None => Vec::new(),
        Some(missing) => {
            let mut reasons = reasons;
            reasons.push(missing);
            reasons
        }
    }
}

/// The operator's seat, control and declared laws, from Hygie's facts and the profile's
/// declaration together.
fn structural_exposure(profile: &HostingProfile) -> Vec<String> {
    let name = profile.name_any();
    let spec = &profile.spec;
    let declared = spec.sovereignty.clone().unwrap_or_default();
    let known = providers::facts(spec.provider);
    let mut reasons = Vec::new();

    match (known, &declared.operator) {
        (None, None) => reasons.push(format!(
            "HostingProfile `{name}` ({}) does not say who operates it (spec.sovereignty.operator): an unknown operator is not immune",
            spec.provider.as_str()
        )),
        _ => {
            let seats = known.map(|k| (k.operator, k.seat)).into_iter().chain(
                declared
                    .operator
                    .as_ref()
                    .map(|o| (o.name.as_str(), o.country.as_str())),
            );
            for (operator, seat) in seats {
                if !is_eea_member(seat) {
                    reasons.push(format!(
                        "HostingProfile `{name}`'s operator `{operator}` is seated in {seat}, outside the EEA"
                    ));
                }
            }
            let controlled = known.is_some_and(|k| k.controlled_from_outside_eea)
                || declared
                    .operator
                    .as_ref()
                    .is_some_and(|o| o.controlled_from_outside_eea);
            if controlled {
                reasons.push(format!(
                    "HostingProfile `{name}`'s operator is controlled from outside the EEA"
                ));
            }
        }
    }
    if known.is_none() {
        for region in &spec.residency.regions {
            if let Some(cloud) = providers::foreign_cloud(region) {
                reasons.push(format!(
                    "HostingProfile `{name}`'s region `{region}` is a region of {}, seated in {} and exposed to {}, whoever the profile says operates it",
                    cloud.operator, cloud.seat, cloud.law
                ));
            }
        }
    }
    for (law, why) in known.map(|k| k.exposure).unwrap_or_default() {
        reasons.push(format!(
            "HostingProfile `{name}` runs on {}, exposed to {law}: {why}",
            spec.provider.as_str()
        ));
    }
    for law in &declared.extraterritorial_exposure {
        let already = known.is_some_and(|k| k.exposure.iter().any(|(l, _)| l == law));
        if !already {
            reasons.push(format!(
                "HostingProfile `{name}` declares exposure to {law}"
            ));
        }
    }
    reasons
}

/// None when a SecNumCloud qualification valid at `now` covers every region of the profile;
/// otherwise what is missing.
fn uncovered_by_secnumcloud(profile: &HostingProfile, now: jiff::Timestamp) -> Option<String> {
    let spec = &profile.spec;
    if let Some(excluded) = declares_what_secnumcloud_excludes(profile) {
        return Some(format!(
            "a SecNumCloud qualification cannot stand beside what it declares ({excluded})"
        ));
    }
    if spec
        .residency
        .regions
        .iter()
        .any(|r| providers::foreign_cloud(r).is_some())
    {
        return Some("no SecNumCloud qualification covers a US hyperscaler's region".into());
    }
    let known = providers::facts(spec.provider);
    let covers = |region: &str| {
        let qualified_offer = known.is_none_or(|k| providers::lists(k.secnumcloud_regions, region));
        qualified_offer
            && spec.certifications.iter().any(|c| {
                c.kind == CertificationType::SecNumCloud
                    && !c.valid_until.is_past(now)
                    && c.regions.as_ref().is_none_or(|regions| {
                        regions.iter().any(|r| r.eq_ignore_ascii_case(region))
                    })
            })
    };
    let missing: Vec<&str> = spec
        .residency
        .regions
        .iter()
        .map(String::as_str)
        .filter(|r| !covers(r))
        .collect();
    if missing.is_empty() && !spec.residency.regions.is_empty() {
        return None;
    }
    let has_any = spec
        .certifications
        .iter()
        .any(|c| c.kind == CertificationType::SecNumCloud);
    let hint = match (has_any, spec.provider) {
        (false, _) => {
            "it holds no SecNumCloud qualification, which would make it immune".to_owned()
        }
        (true, Provider::Generic) => format!(
            "no SecNumCloud qualification valid today covers its region(s) {}",
            missing.join(", ")
        ),
        (true, provider) => format!(
            "no SecNumCloud qualification valid today covers its region(s) {} (Hygie knows {} SecNumCloud regions: {})",
            missing.join(", "),
            provider.as_str(),
            known
                .map(|k| k.secnumcloud_regions.join(", "))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "none".into())
        ),
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::profile_yaml;

    fn now() -> jiff::Timestamp {
        "2027-01-15T12:00:00Z".parse().unwrap()
    }

    fn profile(provider: &str, regions: &str, extra: &str) -> HostingProfile {
        profile_yaml(&format!(
            "provider: {provider}\nresidency: {{country: FR, regions: {regions}}}\n{extra}"
        ))
    }

    #[test]
    fn a_known_eea_operator_without_exposure_is_immune() {
        assert!(exposure(&profile("Scaleway", "[fr-par]", ""), now()).is_empty());
        assert!(exposure(&profile("OVHcloud", "[GRA7]", ""), now()).is_empty());
    }

    #[test]
    fn an_unknown_generic_operator_is_exposed() {
        let reasons = exposure(&profile("Generic", "[paris-1]", ""), now());
        assert!(
            reasons[0].contains("does not say who operates it"),
            "{reasons:?}"
        );
    }

    #[test]
    fn a_us_operator_is_exposed_whatever_its_regions() {
        let reasons = exposure(
            &profile(
                "Generic",
                "[eu-west-3]",
                "sovereignty: {operator: {name: Hyperscaler Inc, country: US, controlledFromOutsideEEA: true}, extraterritorialExposure: [US-CLOUD-Act]}",
            ),
            now(),
        );
        let text = reasons.join("; ");
        assert!(text.contains("seated in US"), "{text}");
        assert!(text.contains("controlled from outside the EEA"), "{text}");
        assert!(text.contains("declares exposure to US-CLOUD-Act"), "{text}");
        assert!(
            text.contains("region `eu-west-3` is a region of Amazon Web Services, Inc."),
            "{text}"
        );
        assert!(text.contains("SecNumCloud"), "{text}");
    }

    #[test]
    fn a_declaration_adds_exposure_to_a_known_provider_never_removes_it() {
        let added = exposure(
            &profile(
                "Scaleway",
                "[fr-par]",
                "sovereignty: {extraterritorialExposure: [US-FISA-702]}",
            ),
            now(),
        );
        assert!(added[0].contains("US-FISA-702"), "{added:?}");
        let removed = exposure(
            &profile(
                "S3NS",
                "[u-france-east1]",
                "sovereignty: {operator: {name: S3NS, country: FR}, extraterritorialExposure: []}",
            ),
            now(),
        );
        assert!(removed[0].contains("US-CLOUD-Act"), "{removed:?}");
    }

    #[test]
    fn secnumcloud_valid_for_every_region_makes_an_exposed_profile_immune() {
        let valid =
            "certifications: [{type: SecNumCloud, reference: q, validUntil: \"2027-12-31\"}]";
        assert!(exposure(&profile("S3NS", "[u-france-east1]", valid), now()).is_empty());

        let expired =
            "certifications: [{type: SecNumCloud, reference: q, validUntil: \"2026-12-31\"}]";
        let reasons = exposure(&profile("S3NS", "[u-france-east1]", expired), now());
        assert!(
            reasons.last().unwrap().contains("u-france-east1"),
            "{reasons:?}"
        );

        // An operator nobody named is exposed, and a qualification of one region covers that one.
        let partial = "certifications: [{type: SecNumCloud, reference: q, validUntil: \"2027-12-31\", regions: [a]}]";
        let reasons = exposure(&profile("Generic", "[a, b]", partial), now());
        assert!(
            reasons.last().unwrap().contains("region(s) b"),
            "{reasons:?}"
        );
        assert!(exposure(&profile("Generic", "[a]", partial), now()).is_empty());
    }

    #[test]
    fn secnumcloud_counts_only_where_the_provider_holds_it() {
        let claimed =
            "certifications: [{type: SecNumCloud, reference: q, validUntil: \"2027-12-31\"}]";
        let reasons = exposure(&profile("S3NS", "[u-france-east2]", claimed), now());
        assert!(
            reasons
                .last()
                .unwrap()
                .contains("Hygie knows S3NS SecNumCloud regions: u-france-east1"),
            "{reasons:?}"
        );
        // Declared beside the US law it excludes, a qualification counts nowhere.
        let contradicted =
            format!("sovereignty: {{extraterritorialExposure: [US-CLOUD-Act]}}\n{claimed}");
        let reasons = exposure(&profile("OVHcloud", "[GRA7]", &contradicted), now());
        assert!(
            reasons
                .last()
                .unwrap()
                .contains("cannot stand beside what it declares"),
            "{reasons:?}"
        );
    }
}
