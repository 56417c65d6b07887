//! What Hygie knows of each named provider: who operates it, from where, under which laws,
//! in which EEA regions its managed Kubernetes runs, and which of those regions carry an ANSSI
//! SecNumCloud qualification. The sources of each fact are in `docs/providers/` and
//! `docs/sovereignty.md`; a profile may add exposure to these facts, never remove it.

use crate::api::hosting_profile::Provider;

/// The facts Hygie holds about one provider.
#[derive(Debug)]
pub struct ProviderFacts {
    /// The operating entity.
    pub operator: &'static str,
    /// ISO 3166-1 alpha-2 code of its registered seat.
    pub seat: &'static str,
    /// Whether a company or state outside the EEA controls it.
    pub controlled_from_outside_eea: bool,
    /// Non-EEA laws with extraterritorial reach the operator or a supplier is subject to,
    /// each with the reason Hygie knows it.
    pub exposure: &'static [(&'static str, &'static str)],
    /// The provider's regions inside the EEA; its other regions are refused.
    pub eea_regions: &'static [&'static str],
    /// The member state each of those regions is in (ISO 3166-1 alpha-2), by the start of the
    /// region's name: a profile's country must be theirs.
    pub region_countries: &'static [(&'static str, &'static str)],
    /// The regions qualified SecNumCloud for the offer Hygie runs on.
    pub secnumcloud_regions: &'static [&'static str],
}

const OVHCLOUD: ProviderFacts = ProviderFacts {
    operator: "OVH Groupe SA",
    seat: "FR",
    controlled_from_outside_eea: false,
    exposure: &[],
    eea_regions: &[
        "GRA5",
        "GRA7",
        "GRA9",
        "GRA11",
        "SBG5",
        "SBG7",
        "EU-WEST-RBX",
        "DE1",
        "WAW1",
        "EU-WEST-PAR",
        "EU-SOUTH-MIL",
    ],
    // Gravelines, Strasbourg, Roubaix and Paris; Frankfurt (Limburg), Warsaw, Milan.
    region_countries: &[
        ("GRA", "FR"),
        ("SBG", "FR"),
        ("EU-WEST-RBX", "FR"),
        ("EU-WEST-PAR", "FR"),
        ("DE", "DE"),
        ("WAW", "PL"),
        ("EU-SOUTH-MIL", "IT"),
    ],
    // OVHcloud's SecNumCloud offers are Hosted Private Cloud and Bare Metal Pod, not its
    // Managed Kubernetes regions.
    secnumcloud_regions: &[],
};

const SCALEWAY: ProviderFacts = ProviderFacts {
    operator: "Scaleway SAS",
    seat: "FR",
    controlled_from_outside_eea: false,
    exposure: &[],
    eea_regions: &["fr-par", "nl-ams", "pl-waw", "it-mil"],
    region_countries: &[("fr-", "FR"), ("nl-", "NL"), ("pl-", "PL"), ("it-", "IT")],
    secnumcloud_regions: &[],
};

const OUTSCALE: ProviderFacts = ProviderFacts {
    operator: "3DS Outscale SAS",
    seat: "FR",
    controlled_from_outside_eea: false,
    exposure: &[],
    // us-east-2, us-west-1 and ap-northeast-1 are Outscale regions outside the EEA.
    eea_regions: &["eu-west-2", "cloudgouv-eu-west-1"],
    // Both in France (Île-de-France and the sovereign region).
    region_countries: &[("eu-west-2", "FR"), ("cloudgouv-eu-west-1", "FR")],
    secnumcloud_regions: &["eu-west-2", "cloudgouv-eu-west-1"],
};

const ORANGE: ProviderFacts = ProviderFacts {
    operator: "Orange SA (Orange Business)",
    seat: "FR",
    controlled_from_outside_eea: false,
    exposure: &[],
    eea_regions: &["eu-west-0"],
    region_countries: &[("eu-west-0", "FR")],
    secnumcloud_regions: &[],
};

const S3NS: ProviderFacts = ProviderFacts {
    operator: "S3NS SAS",
    seat: "FR",
    controlled_from_outside_eea: false,
    // The platform is Google Cloud technology, updated and assisted by Google LLC: only the
    // SecNumCloud qualification of PREMI3NS establishes immunity.
    exposure: &[(
        "US-CLOUD-Act",
        "its technology supplier Google LLC is a US company",
    )],
    eea_regions: &["u-france-east1"],
    region_countries: &[("u-france-", "FR")],
    secnumcloud_regions: &["u-france-east1"],
};

/// An object store endpoint of a provider, and the residency regions (as the provider's
/// Kubernetes regions are named) whose data it keeps.
#[derive(Debug, PartialEq, Eq)]
pub struct KnownEndpoint {
    pub host: &'static str,
    pub regions: &'static [&'static str],
}

const fn endpoint(host: &'static str, regions: &'static [&'static str]) -> KnownEndpoint {
    KnownEndpoint { host, regions }
}

const GRA: &[&str] = &["GRA5", "GRA7", "GRA9", "GRA11"];
const SBG: &[&str] = &["SBG5", "SBG7"];

/// The providers' object store domains and, under each, every endpoint in the EEA: OVHcloud's
/// "Object Storage - Endpoints and geo-availability" (Standard `io` and High Performance `perf`
/// endpoints), Scaleway's "Object Storage regions", Outscale's OOS endpoints, Orange Flexible
/// Engine's OBS endpoint (docs/providers/). Any other host under these domains is not a store
/// in the EEA that Hygie knows: another region (OVHcloud's `bhs`, `uk`, `ca-east-tor`;
/// Outscale's `us-east-2`, `us-west-1`, `ap-northeast-1`) or a bucket's virtual host.
const STORE_DOMAINS: &[(&str, &str, &[KnownEndpoint])] = &[
    (
        "cloud.ovh.net",
        OVHCLOUD.operator,
        &[
            endpoint("s3.gra.io.cloud.ovh.net", GRA),
            endpoint("s3.gra.perf.cloud.ovh.net", GRA),
            endpoint("s3.sbg.io.cloud.ovh.net", SBG),
            endpoint("s3.sbg.perf.cloud.ovh.net", SBG),
            endpoint("s3.rbx.io.cloud.ovh.net", &["EU-WEST-RBX"]),
            endpoint("s3.de.io.cloud.ovh.net", &["DE1"]),
            endpoint("s3.waw.io.cloud.ovh.net", &["WAW1"]),
            endpoint("s3.eu-west-par.io.cloud.ovh.net", &["EU-WEST-PAR"]),
            endpoint("s3.eu-south-mil.io.cloud.ovh.net", &["EU-SOUTH-MIL"]),
        ],
    ),
    (
        "scw.cloud",
        SCALEWAY.operator,
        &[
            endpoint("s3.fr-par.scw.cloud", &["fr-par"]),
            endpoint("s3.nl-ams.scw.cloud", &["nl-ams"]),
            endpoint("s3.pl-waw.scw.cloud", &["pl-waw"]),
        ],
    ),
    (
        "outscale.com",
        OUTSCALE.operator,
        &[
            endpoint("oos.eu-west-2.outscale.com", &["eu-west-2"]),
            endpoint(
                "oos.cloudgouv-eu-west-1.outscale.com",
                &["cloudgouv-eu-west-1"],
            ),
        ],
    ),
    (
        "orange-business.com",
        ORANGE.operator,
        &[endpoint(
            "oss.eu-west-0.prod-cloud-ocb.orange-business.com",
            &["eu-west-0"],
        )],
    ),
];

/// Object store domains of operators seated or controlled outside the EEA, which health data
/// never goes to: OVHcloud's US entity, and the US hyperscalers' and storage vendors' stores.
const OUTSIDE_EEA_STORES: &[(&str, &str)] = &[
    ("ovh.us", "OVH US LLC"),
    ("amazonaws.com", "Amazon Web Services, Inc."),
    ("googleapis.com", "Google LLC"),
    ("windows.net", "Microsoft Corporation"),
    ("oraclecloud.com", "Oracle Corporation"),
    ("digitaloceanspaces.com", "DigitalOcean, LLC"),
    ("wasabisys.com", "Wasabi Technologies, LLC"),
    ("backblazeb2.com", "Backblaze, Inc."),
    ("cloudflarestorage.com", "Cloudflare, Inc."),
    ("aliyuncs.com", "Alibaba Cloud"),
];

fn under(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The operator and known endpoints of the provider whose store domain `host` is under.
pub fn store_domain(host: &str) -> Option<(&'static str, &'static [KnownEndpoint])> {
    STORE_DOMAINS
        .iter()
        .find(|(domain, _, _)| under(host, domain))
        .map(|(_, operator, endpoints)| (*operator, *endpoints))
}

/// The operator outside the EEA whose store domain `host` is under, if any.
pub fn outside_eea_store(host: &str) -> Option<&'static str> {
    OUTSIDE_EEA_STORES
        .iter()
        .find(|(domain, _)| under(host, domain))
        .map(|(_, operator)| *operator)
}

/// The facts of `provider`, or none for `Generic`, which declares its own.
pub fn facts(provider: Provider) -> Option<&'static ProviderFacts> {
    match provider {
        Provider::OvhCloud => Some(&OVHCLOUD),
        Provider::Scaleway => Some(&SCALEWAY),
        Provider::Outscale => Some(&OUTSCALE),
        Provider::Orange => Some(&ORANGE),
        Provider::S3ns => Some(&S3NS),
        Provider::Generic => None,
    }
}

/// The member state `region` of `facts` is in, if Hygie knows it.
pub fn country_of(facts: &ProviderFacts, region: &str) -> Option<&'static str> {
    let region = region.to_ascii_uppercase();
    facts
        .region_countries
        .iter()
        .find(|(start, _)| region.starts_with(&start.to_ascii_uppercase()))
        .map(|(_, country)| *country)
}

/// A cloud whose operator is controlled from outside the EEA, by the names of its EEA regions:
/// a Generic profile on one of them is that cloud, whoever it says operates it.
#[derive(Debug)]
pub struct ForeignCloud {
    pub operator: &'static str,
    pub seat: &'static str,
    pub law: &'static str,
    pub regions: &'static [&'static str],
}

/// The US hyperscalers' EEA regions, as their own region lists name them (AWS "Regions and
/// Availability Zones", Azure "Azure geographies", Google Cloud "Cloud locations", Oracle
/// "Regions and Availability Domains"): the CLOUD Act reaches their operators wherever the
/// disks are.
pub const FOREIGN_CLOUDS: &[ForeignCloud] = &[
    ForeignCloud {
        operator: "Amazon Web Services, Inc.",
        seat: "US",
        law: "US-CLOUD-Act",
        regions: &[
            "eu-west-1",
            "eu-west-3",
            "eu-central-1",
            "eu-south-1",
            "eu-south-2",
            "eu-north-1",
        ],
    },
    ForeignCloud {
        operator: "Microsoft Corporation",
        seat: "US",
        law: "US-CLOUD-Act",
        regions: &[
            "francecentral",
            "francesouth",
            "germanywestcentral",
            "germanynorth",
            "northeurope",
            "westeurope",
            "swedencentral",
            "italynorth",
            "polandcentral",
            "spaincentral",
            "norwayeast",
            "norwaywest",
        ],
    },
    ForeignCloud {
        operator: "Google LLC",
        seat: "US",
        law: "US-CLOUD-Act",
        regions: &[
            "europe-west1",
            "europe-west3",
            "europe-west4",
            "europe-west8",
            "europe-west9",
            "europe-west10",
            "europe-west12",
            "europe-north1",
            "europe-north2",
            "europe-central2",
            "europe-southwest1",
        ],
    },
    ForeignCloud {
        operator: "Oracle Corporation",
        seat: "US",
        law: "US-CLOUD-Act",
        regions: &[
            "eu-paris-1",
            "eu-marseille-1",
            "eu-frankfurt-1",
            "eu-amsterdam-1",
            "eu-milan-1",
            "eu-stockholm-1",
            "eu-madrid-1",
        ],
    },
];

/// The foreign cloud `region` belongs to, if it is one of theirs.
pub fn foreign_cloud(region: &str) -> Option<&'static ForeignCloud> {
    FOREIGN_CLOUDS.iter().find(|c| lists(c.regions, region))
}

/// Whether `region` is one of `regions`, ignoring case: providers spell their regions in
/// either case in their documentation and node labels.
pub fn lists(regions: &[&str], region: &str) -> bool {
    regions.iter().any(|r| r.eq_ignore_ascii_case(region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::eea::is_eea_member;

    #[test]
    fn every_named_provider_is_known_and_seated_in_the_eea() {
        for provider in [
            Provider::OvhCloud,
            Provider::Scaleway,
            Provider::Outscale,
            Provider::Orange,
            Provider::S3ns,
        ] {
            let facts = facts(provider).unwrap();
            assert!(is_eea_member(facts.seat), "{provider:?}");
            assert!(!facts.eea_regions.is_empty(), "{provider:?}");
            for region in facts.secnumcloud_regions {
                assert!(lists(facts.eea_regions, region), "{provider:?} {region}");
            }
            for region in facts.eea_regions {
                let country = country_of(facts, region);
                assert!(country.is_some_and(is_eea_member), "{provider:?} {region}");
            }
        }
        assert!(facts(Provider::Generic).is_none());
    }

    #[test]
    fn every_known_store_keeps_its_data_in_its_providers_eea_regions() {
        for (domain, operator, endpoints) in STORE_DOMAINS {
            let provider = [&OVHCLOUD, &SCALEWAY, &OUTSCALE, &ORANGE]
                .into_iter()
                .find(|p| p.operator == *operator)
                .unwrap();
            for endpoint in *endpoints {
                assert!(under(endpoint.host, domain), "{}", endpoint.host);
                for region in endpoint.regions {
                    assert!(
                        lists(provider.eea_regions, region),
                        "{} {region}",
                        endpoint.host
                    );
                }
            }
        }
        assert!(!under("evil-cloud.ovh.net", "cloud.ovh.net"));
    }

    #[test]
    fn regions_match_whatever_their_case() {
        assert!(lists(OVHCLOUD.eea_regions, "gra7"));
        assert!(!lists(OVHCLOUD.eea_regions, "BHS5"), "Canada");
        assert!(!lists(OVHCLOUD.eea_regions, "UK1"), "the United Kingdom");
        assert!(!lists(OUTSCALE.eea_regions, "us-east-2"));
    }
}
