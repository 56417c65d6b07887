//! HYG009 beyond dates: a certification is a fact about a provider, not a field to fill in. An
//! HDS, SecNumCloud or ISO 27001 certificate runs three years, so none is valid further ahead; a
//! certification covers the regions it lists (an empty list covers none); Hygie refuses a
//! SecNumCloud qualification a named provider does not hold for a region, and one declared
//! beside the non-EEA control, seat or extraterritorial law that the qualification excludes.

use super::{Findings, Rule, eea::is_eea_member, providers, quote};
use crate::api::{
    HostingProfile,
    hosting_profile::{Certification, CertificationType},
};

/// How long a certificate of any of these kinds runs, in years: HDS (decree 2018-137, article
/// R.1111-11 of the public health code), SecNumCloud (ANSSI qualifications) and ISO/IEC 27001.
pub const CERTIFICATE_YEARS: i16 = 3;

pub(crate) fn check_certifications(
    findings: &mut Findings,
    profile: &HostingProfile,
    now: jiff::Timestamp,
) {
    let spec = &profile.spec;
    let latest = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().years(CERTIFICATE_YEARS))
        .ok();
    let known = providers::facts(spec.provider);
    let contradicted = declares_what_secnumcloud_excludes(profile);
    for (i, certification) in spec.certifications.iter().enumerate() {
        let field = format!("spec.certifications[{i}]");
        let kind = certification.kind.as_str();
        if latest.is_some_and(|latest| certification.valid_until.0 > latest) {
            findings.add(
                Rule::CertificationDates,
                format!("{field}.validUntil"),
                format!(
                    "{kind} certificate `{}` is said valid until {}, more than {CERTIFICATE_YEARS} years from today: a certificate runs {CERTIFICATE_YEARS} years, write its real end date",
                    quote(&certification.reference),
                    certification.valid_until
                ),
            );
        }
        if certification.regions.as_ref().is_some_and(Vec::is_empty) {
            findings.add(
                Rule::CertificationDates,
                format!("{field}.regions"),
                format!(
                    "an empty list covers no region: list the regions the {kind} certificate names, or leave the field out when it covers all of the profile's"
                ),
            );
        }
        if certification.kind != CertificationType::SecNumCloud {
            continue;
        }
        if let Some(why) = &contradicted {
            findings.add(
                Rule::CertificationDates,
                field.clone(),
                format!(
                    "SecNumCloud excludes what this profile declares ({why}): the qualification does not count"
                ),
            );
        }
        if let Some(facts) = known {
            for region in covered(certification, &spec.residency.regions) {
                if !providers::lists(facts.secnumcloud_regions, region) {
                    findings.add(
                        Rule::CertificationDates,
                        field.clone(),
                        format!(
                            "{} holds no SecNumCloud qualification for `{}` (Hygie knows {})",
                            spec.provider.as_str(),
                            quote(region),
                            match facts.secnumcloud_regions {
                                [] => "none of its regions".to_owned(),
                                regions => regions.join(", "),
                            }
                        ),
                    );
                }
            }
        }
    }
}

/// The regions `certification` covers among `regions`: those it lists, or all of them when it
/// lists none.
pub fn covered<'a>(certification: &'a Certification, regions: &'a [String]) -> Vec<&'a str> {
    regions
        .iter()
        .map(String::as_str)
        .filter(|region| {
            certification
                .regions
                .as_ref()
                .is_none_or(|listed| listed.iter().any(|r| r.eq_ignore_ascii_case(region)))
        })
        .collect()
}

/// What the profile declares of its operator that a SecNumCloud qualification excludes: control
/// or a seat outside the EEA, or a law with extraterritorial reach.
pub fn declares_what_secnumcloud_excludes(profile: &HostingProfile) -> Option<String> {
    let declared = profile.spec.sovereignty.as_ref()?;
    let mut what = Vec::new();
    if let Some(operator) = &declared.operator {
        if operator.controlled_from_outside_eea {
            what.push("control from outside the EEA".to_owned());
        }
        if !is_eea_member(&operator.country) {
            what.push(format!("a seat in {}", operator.country));
        }
    }
    if !declared.extraterritorial_exposure.is_empty() {
        what.push(format!(
            "exposure to {}",
            declared.extraterritorial_exposure.join(", ")
        ));
    }
    (!what.is_empty()).then(|| what.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixtures::profile_yaml, policy::Findings};

    fn now() -> jiff::Timestamp {
        "2027-01-15T12:00:00Z".parse().unwrap()
    }

    fn findings(provider: &str, regions: &str, extra: &str) -> Vec<String> {
        let profile = profile_yaml(&format!(
            "provider: {provider}\nresidency: {{country: FR, regions: {regions}}}\n{extra}"
        ));
        let mut findings = Findings::for_object(&profile);
        check_certifications(&mut findings, &profile, now());
        findings
            .into_vec()
            .iter()
            .map(|v| v.message.clone())
            .collect()
    }

    #[test]
    fn a_certificate_runs_three_years() {
        let cert = |until: &str| {
            format!("certifications: [{{type: HDS, reference: r, validUntil: \"{until}\"}}]")
        };
        assert!(findings("Scaleway", "[fr-par]", &cert("2030-01-15")).is_empty());
        let found = findings("Scaleway", "[fr-par]", &cert("9999-12-31"));
        assert!(
            found[0].contains("more than 3 years from today"),
            "{found:?}"
        );
    }

    #[test]
    fn an_empty_list_of_regions_covers_none() {
        let found = findings(
            "Scaleway",
            "[fr-par]",
            "certifications: [{type: HDS, reference: r, validUntil: \"2028-01-01\", regions: []}]",
        );
        assert!(
            found[0].starts_with("an empty list covers no region"),
            "{found:?}"
        );
    }

    #[test]
    fn a_qualification_the_provider_does_not_hold_is_refused() {
        let found = findings(
            "OVHcloud",
            "[GRA9]",
            "certifications: [{type: SecNumCloud, reference: r, validUntil: \"2028-01-01\"}]",
        );
        assert_eq!(
            found,
            [
                "OVHcloud holds no SecNumCloud qualification for `GRA9` (Hygie knows none of its regions)"
            ]
        );
        let held = findings(
            "Outscale",
            "[eu-west-2]",
            "certifications: [{type: SecNumCloud, reference: r, validUntil: \"2028-01-01\"}]",
        );
        assert!(held.is_empty(), "{held:?}");
    }

    #[test]
    fn secnumcloud_beside_us_control_is_a_contradiction() {
        let found = findings(
            "Generic",
            "[paris-1]",
            "certifications: [{type: SecNumCloud, reference: r, validUntil: \"2028-01-01\"}]\n\
             sovereignty: {operator: {name: X, country: FR, controlledFromOutsideEEA: true}, extraterritorialExposure: [US-CLOUD-Act]}",
        );
        assert!(
            found[0].starts_with("SecNumCloud excludes what this profile declares (control from outside the EEA, exposure to US-CLOUD-Act)"),
            "{found:?}"
        );
    }
}
