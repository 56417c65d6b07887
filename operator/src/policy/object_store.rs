//! Object stores, as an export destination or an import source names them: an endpoint read as a
//! URL by the `url` crate (the WHATWG parser browsers and curl-like clients agree with), a
//! bucket by S3's naming rules. A string check (`starts_with("https://")`) let through
//! `https://known-host@elsewhere` (the host is `elsewhere`), IP literals in any of their
//! spellings, and look-alike hosts in other scripts; an endpoint under a named provider's domain
//! must also be one of that provider's known endpoints, in a region it serves.

use url::{Host, Url};

use super::providers::{self, KnownEndpoint};

/// Why an endpoint is not one a release may go to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("is not a URL ({0})")]
    Unreadable(String),
    #[error("is reached over HTTPS only (https://)")]
    NotHttps,
    #[error(
        "is not written plainly as https://host[:port]: URL readers disagree on `https:host`, backslashes, blanks and control characters"
    )]
    NotPlain,
    #[error("names a user before its host (`user@host`): the host it reaches is `{0}`")]
    UserInfo(String),
    #[error("is an IP address: name the store by its host name, which its certificate proves")]
    IpLiteral,
    #[error("has a host name outside ASCII or in punycode (`xn--`): a look-alike of another host")]
    NotAscii,
    #[error("has a path, query or fragment: give the store's root, the bucket and prefix apart")]
    NotRoot,
    #[error(
        "is under {operator}'s domain but is not one of its object store endpoints in the EEA ({known})"
    )]
    UnknownProviderEndpoint {
        operator: &'static str,
        known: String,
    },
    #[error("is under {0}'s domain, a store whose operator is outside the EEA")]
    OutsideEea(&'static str),
}

/// What an endpoint resolves to, once read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    /// The provider's endpoint it is, when it is one.
    pub known: Option<&'static KnownEndpoint>,
}

/// Reads `endpoint` as an object store's root URL, refusing whatever could make it reach
/// another host than it seems to.
pub fn read_endpoint(endpoint: &str) -> Result<Endpoint, EndpointError> {
    if !endpoint.is_ascii() {
        return Err(EndpointError::NotAscii);
    }
    let url = Url::parse(endpoint).map_err(|e| EndpointError::Unreadable(e.to_string()))?;
    if url.scheme() != "https" {
        return Err(EndpointError::NotHttps);
    }
    // The WHATWG reader adds missing slashes, turns `\` into `/` and drops tabs and newlines;
    // the importer's and the release Job's readers (Go's net/url) do not, and could reach
    // another host than the one checked here.
    if !endpoint.starts_with("https://")
        || endpoint
            .chars()
            .any(|c| c == '\\' || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(EndpointError::NotPlain);
    }
    let host = match url.host() {
        Some(Host::Domain(host)) => host.to_ascii_lowercase(),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => return Err(EndpointError::IpLiteral),
        None => return Err(EndpointError::Unreadable("no host".into())),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::UserInfo(host));
    }
    if host.split('.').any(|label| label.starts_with("xn--")) {
        return Err(EndpointError::NotAscii);
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(EndpointError::NotRoot);
    }
    if let Some(operator) = providers::outside_eea_store(&host) {
        return Err(EndpointError::OutsideEea(operator));
    }
    let known = match providers::store_domain(&host) {
        None => None,
        Some((operator, endpoints)) => {
            Some(endpoints.iter().find(|e| e.host == host).ok_or_else(|| {
                EndpointError::UnknownProviderEndpoint {
                    operator,
                    known: endpoints
                        .iter()
                        .map(|e| e.host)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?)
        }
    };
    Ok(Endpoint { host, known })
}

/// Why a bucket name is not one S3 accepts, if it is not (the rules of general purpose buckets:
/// 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or a
/// digit, no `..`, not an IPv4 address, none of the reserved prefixes and suffixes).
pub fn why_not_a_bucket(bucket: &str) -> Option<&'static str> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&bucket.len()) {
        return Some("is not 3 to 63 characters long");
    }
    if !bucket.chars().all(allowed) {
        return Some("holds characters other than lowercase letters, digits, dots and hyphens");
    }
    if !edge(bucket.chars().next()) || !edge(bucket.chars().last()) {
        return Some("does not start and end with a letter or a digit");
    }
    if bucket.contains("..") || bucket.contains(".-") || bucket.contains("-.") {
        return Some("has an empty or hyphen-edged label");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("is an IP address");
    }
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"];
    let reserved_suffix = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    if reserved_prefix.iter().any(|p| bucket.starts_with(p))
        || reserved_suffix.iter().any(|s| bucket.ends_with(s))
    {
        return Some("starts or ends with a reserved affix (xn--, -s3alias, --ol-s3...)");
    }
    None
}

/// Why an object key prefix could reach outside its place, if it could: a leading `/`, or an
/// empty, `.` or `..` segment.
pub fn why_not_a_prefix(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return None;
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.starts_with('/')
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("is not a relative key prefix: no leading /, no empty, . or .. segment");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_endpoint_reads_as_itself() {
        let endpoint = read_endpoint("https://s3.gra.io.cloud.ovh.net").unwrap();
        assert_eq!(endpoint.host, "s3.gra.io.cloud.ovh.net");
        assert!(endpoint.known.unwrap().regions.contains(&"GRA9"));
        let own = read_endpoint("https://rgw.chu-exemple.fr:8443/").unwrap();
        assert_eq!((own.host.as_str(), own.known), ("rgw.chu-exemple.fr", None));
    }

    #[test]
    fn what_hides_another_host_is_refused() {
        let refused = |e: &str| read_endpoint(e).unwrap_err();
        assert_eq!(
            refused("https://s3.gra.io.cloud.ovh.net@elsewhere.example"),
            EndpointError::UserInfo("elsewhere.example".into())
        );
        assert_eq!(refused("https://198.51.100.7"), EndpointError::IpLiteral);
        assert_eq!(
            refused("https://0x7f.1"),
            EndpointError::IpLiteral,
            "IPv4 in hex"
        );
        assert_eq!(refused("https://[2001:db8::1]"), EndpointError::IpLiteral);
        assert_eq!(
            refused("https://s3.gra.io.cl\u{043e}ud.ovh.net"),
            EndpointError::NotAscii,
            "a Cyrillic о"
        );
        assert_eq!(
            refused("https://xn--s3-gra-io-cloud-ovh-net.example"),
            EndpointError::NotAscii
        );
        assert_eq!(
            refused("http://s3.gra.io.cloud.ovh.net"),
            EndpointError::NotHttps
        );
        for unplain in [
            "https:s3.gra.io.cloud.ovh.net",
            "https:/s3.gra.io.cloud.ovh.net",
            "https://s3.gra.io.cloud.ovh.net\\",
            "https://s3.gra.io.cl\toud.ovh.net",
            "HTTPS://s3.gra.io.cloud.ovh.net",
        ] {
            assert_eq!(refused(unplain), EndpointError::NotPlain, "{unplain:?}");
        }
        assert_eq!(
            refused("https://s3.gra.io.cloud.ovh.net/other-bucket"),
            EndpointError::NotRoot
        );
    }

    #[test]
    fn a_provider_domain_holds_only_its_known_endpoints() {
        assert!(
            matches!(
                read_endpoint("https://s3.bhs.io.cloud.ovh.net"),
                Err(EndpointError::UnknownProviderEndpoint {
                    operator: "OVH Groupe SA",
                    ..
                })
            ),
            "Canada"
        );
        assert!(
            matches!(
                read_endpoint("https://attacker.s3.gra.io.cloud.ovh.net"),
                Err(EndpointError::UnknownProviderEndpoint { .. })
            ),
            "a bucket's own host is not the endpoint"
        );
        assert_eq!(
            read_endpoint("https://s3.us-east-va.io.cloud.ovh.us"),
            Err(EndpointError::OutsideEea("OVH US LLC"))
        );
        assert_eq!(
            read_endpoint("https://s3.eu-west-3.amazonaws.com"),
            Err(EndpointError::OutsideEea("Amazon Web Services, Inc."))
        );
    }

    #[test]
    fn bucket_names_follow_s3s_rules() {
        assert_eq!(why_not_a_bucket("chu-publications"), None);
        assert_eq!(why_not_a_bucket("results.2027"), None);
        for bad in [
            "a/../b",
            "ab",
            "Results",
            "-results",
            "a..b",
            "192.168.1.1",
            "xn--bucket",
            "b-s3alias",
        ] {
            assert!(why_not_a_bucket(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn prefixes_stay_where_they_are() {
        assert_eq!(why_not_a_prefix(""), None);
        assert_eq!(why_not_a_prefix("cardio/2027/"), None);
        for bad in ["/root", "a//b", "../up", "a/./b"] {
            assert!(why_not_a_prefix(bad).is_some(), "{bad}");
        }
    }
}
