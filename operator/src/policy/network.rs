//! HYG005: egress destinations. A NetworkPolicy allow rule is only as narrow as its CIDR, and
//! an address can reach the Internet under more spellings than `0.0.0.0/0`: IPv4-mapped IPv6
//! (`::ffff:0:0/96` is all of IPv4), NAT64 and 6to4 prefixes, many entries that add up to
//! the Internet. So the rule is stated in address space, not in spellings:
//!
//! - a CIDR is a network address without host bits and a plain decimal prefix, which the API
//!   server and every reader read the same way;
//! - translation, link-local (cloud metadata), loopback, multicast and reserved ranges are
//!   never a destination;
//! - private address space (RFC 1918, 100.64.0.0/10, fc00::/7) may be reached in networks of
//!   at most a /16 (IPv4) or a /48 (IPv6);
//! - anything else (the public Internet) only within the destinations the HostingProfile
//!   declares in `spec.network.egressDestinations`;
//! - a workload's entries together span at most a /16 of IPv4 and a /48 of IPv6.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Findings, Rule, quote};
use crate::api::EgressRule;

/// Ranges no egress entry may touch, with the reason a reader understands.
const FORBIDDEN: [(&str, &str); 17] = [
    ("0.0.0.0/8", "the unspecified network"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local, where cloud metadata services answer",
    ),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved and broadcast"),
    (
        "::/96",
        "IPv4-compatible IPv6, which reaches IPv4 addresses",
    ),
    (
        "::ffff:0:0/96",
        "IPv4-mapped IPv6, which is all of IPv4 under another spelling",
    ),
    ("64:ff9b::/96", "NAT64, which reaches IPv4 addresses"),
    (
        "64:ff9b:1::/48",
        "local NAT64, which reaches IPv4 addresses",
    ),
    ("2001::/32", "Teredo, which tunnels to IPv4 addresses"),
    ("2002::/16", "6to4, which tunnels to IPv4 addresses"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("::1/128", "loopback"),
    (
        "fd00:ec2::254/128",
        "a cloud metadata service (AWS, over IPv6)",
    ),
    ("100.100.100.200/32", "a cloud metadata service (Alibaba)"),
];

/// Private address space, reachable in narrow networks without the profile's say.
const PRIVATE: [&str; 5] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// The shortest prefix of a private destination, and the most address space all of a
/// workload's entries may span, per family: a /16 of IPv4, a /48 of IPv6.
const IPV4_FLOOR: u8 = 16;
const IPV6_FLOOR: u8 = 48;

fn nets<'a>(list: &'a [&'a str]) -> impl Iterator<Item = IpNet> + 'a {
    list.iter()
        .map(|n| n.parse().expect("a valid constant CIDR"))
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// Parses a CIDR written exactly as its canonical form: `10.20.0.0/24`, not `10.20.0.1/24`,
/// `10.20.0.0/024` or `2001:DB8::/32`.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let shown = quote(text);
    let (address, prefix) = text.split_once('/').ok_or_else(|| {
        format!("`{shown}` is not a CIDR: write it as address/prefix, such as 10.20.0.0/24")
    })?;
    let address: IpAddr = address.parse().map_err(|_| {
        format!(
            "`{shown}` is not a CIDR: `{}` is not an IP address",
            quote(address)
        )
    })?;
    let width = if address.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = Some(prefix)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| *p == "0" || !p.starts_with('0'))
        .and_then(|p| p.parse().ok())
        .filter(|p| *p <= width)
        .ok_or_else(|| {
            format!("`{shown}` is not a CIDR: the prefix must be a number from 0 to {width}, without sign or leading zero")
        })?;
    let net = IpNet::new(address, prefix).expect("the prefix fits the address");
    if net.trunc() != net {
        return Err(format!(
            "`{shown}` has host bits set: the network is {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// DNS: no egress rule may open it, whatever the address.
const DNS_PORT: i32 = 53;

/// Checks every egress entry under `path` (such as `spec.egress`); `public` are the networks
/// outside private address space the profile lets workloads reach.
pub fn check_egress(findings: &mut Findings, path: &str, rules: &[EgressRule], public: &[IpNet]) {
    let (mut v4_span, mut v6_span) = (0u128, 0u128);
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("{path}[{i}].cidr");
        match parse_cidr(&rule.cidr) {
            Err(reason) => findings.add(Rule::Egress, field, reason),
            Ok(net) => {
                if let Some(reason) = refusal(&net, public) {
                    findings.add(Rule::Egress, field, format!("`{net}` {reason}"));
                    continue;
                }
                let span = 1u128
                    .checked_shl(u32::from(net.max_prefix_len() - net.prefix_len()))
                    .unwrap_or(u128::MAX);
                match net {
                    IpNet::V4(_) => v4_span = v4_span.saturating_add(span),
                    IpNet::V6(_) => v6_span = v6_span.saturating_add(span),
                }
            }
        }
        for (j, port) in rule.ports.iter().enumerate() {
            if !(1..=65535).contains(&port.port) {
                findings.add(
                    Rule::Egress,
                    format!("{path}[{i}].ports[{j}].port"),
                    format!("port {} is outside 1-65535", port.port),
                );
            } else if port.port == DNS_PORT {
                findings.add(
                    Rule::Egress,
                    format!("{path}[{i}].ports[{j}].port"),
                    "port 53 is DNS: a resolver that answers for the Internet carries any data out in its queries (a DNS tunnel); a workspace of health data resolves no names",
                );
            }
        }
        if rule.ports.is_empty() {
            findings.add(
                Rule::Egress,
                format!("{path}[{i}].ports"),
                "an egress entry needs at least one port; an entry without ports would allow them all",
            );
        }
    }
    if v4_span > 1 << (32 - IPV4_FLOOR) || v6_span > 1 << (128 - IPV6_FLOOR) {
        findings.add(
            Rule::Egress,
            path,
            format!("the entries together span more than a /{IPV4_FLOOR} of IPv4 or a /{IPV6_FLOOR} of IPv6; list the networks the workload needs"),
        );
    }
}

/// Why `net` may not be a destination, if it may not.
fn refusal(net: &IpNet, public: &[IpNet]) -> Option<String> {
    if net.prefix_len() == 0 {
        return Some(
            "opens egress to the whole Internet; list the networks the workload needs".into(),
        );
    }
    if let Some((_, why)) = FORBIDDEN
        .iter()
        .find(|(range, _)| overlaps(&range.parse().expect("a valid constant CIDR"), net))
    {
        return Some(format!("reaches {why}: never an egress destination"));
    }
    if nets(&PRIVATE).any(|private| private.contains(net)) {
        let floor = match net {
            IpNet::V4(_) => IPV4_FLOOR,
            IpNet::V6(_) => IPV6_FLOOR,
        };
        return (net.prefix_len() < floor)
            .then(|| format!("is wider than a /{floor}; list narrower networks"));
    }
    if public.iter().any(|allowed| allowed.contains(net)) {
        return None;
    }
    Some(
        "is outside private address space and outside the HostingProfile's spec.network.egressDestinations; \
         the platform team declares the public destinations workloads may reach"
            .into(),
    )
}

/// HYG005: a workload's egress reaches none of the airlock's own stores (`stores`, each named
/// for the reader: an export destination, a dataset's import source). An object store takes
/// uploads to any bucket with whatever keys the uploader holds, so a workspace reaching the
/// store its outputs are released to could upload its data there itself, with keys of its own.
pub fn check_no_shared_store(
    findings: &mut Findings,
    path: &str,
    rules: &[EgressRule],
    stores: &[(String, &EgressRule)],
) {
    for (i, rule) in rules.iter().enumerate() {
        let Ok(net) = parse_cidr(&rule.cidr) else {
            continue;
        };
        let shared = stores
            .iter()
            .find(|(_, store)| parse_cidr(&store.cidr).is_ok_and(|store| overlaps(&store, &net)));
        if let Some((what, store)) = shared {
            findings.add(
                Rule::Egress,
                format!("{path}[{i}].cidr"),
                format!(
                    "`{net}` overlaps {what} ({}): an object store takes uploads to any bucket with whatever keys the uploader holds, so only the airlock's Jobs reach it",
                    store.cidr
                ),
            );
        }
    }
}

/// The widest public destination a profile may declare, per family: a /24 of IPv4 (the
/// smallest block routed on the Internet, so one service's range rather than a provider's
/// whole network shared by its tenants) and a /48 of IPv6 (one site's allocation).
const PUBLIC_IPV4_FLOOR: u8 = 24;
const PUBLIC_IPV6_FLOOR: u8 = 48;

/// Checks the public destinations a profile declares: canonical, nothing always refused, and
/// none wider than one routed block.
pub fn check_destinations(findings: &mut Findings, path: &str, destinations: &[String]) {
    for (i, text) in destinations.iter().enumerate() {
        let field = format!("{path}[{i}]");
        match parse_cidr(text) {
            Err(reason) => findings.add(Rule::Egress, field, reason),
            Ok(net) => {
                let floor = match net {
                    IpNet::V4(_) => PUBLIC_IPV4_FLOOR,
                    IpNet::V6(_) => PUBLIC_IPV6_FLOOR,
                };
                let private = nets(&PRIVATE).any(|private| overlaps(&private, &net));
                if let Some(reason) = refusal(&net, &[net]) {
                    findings.add(Rule::Egress, field, format!("`{net}` {reason}"));
                } else if !private && net.prefix_len() < floor {
                    findings.add(
                        Rule::Egress,
                        field,
                        format!(
                            "`{net}` is wider than a /{floor}: a public destination is one service's routed block, never a provider's network its other tenants share"
                        ),
                    );
                }
            }
        }
    }
}

/// The valid public destinations of a profile, for the rules of its workloads.
pub fn destinations(destinations: &[String]) -> Vec<IpNet> {
    destinations
        .iter()
        .filter_map(|d| parse_cidr(d).ok())
        .filter(|net| refusal(net, &[*net]).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_cidrs_parse() {
        assert_eq!(parse_cidr("10.20.0.0/24").unwrap().prefix_len(), 24);
        assert_eq!(parse_cidr("192.0.2.7/32").unwrap().prefix_len(), 32);
        assert_eq!(parse_cidr("2001:db8::/32").unwrap().prefix_len(), 32);
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().prefix_len(), 0);
        assert_eq!(parse_cidr("::/0").unwrap().prefix_len(), 0);
    }

    #[test]
    fn spellings_the_api_server_refuses_or_reads_otherwise_are_refused() {
        for text in [
            "10.20.0.0",
            "10.20.0.300/24",
            "10.20.0.0/33",
            "10.20.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/ 8",
        ] {
            assert!(parse_cidr(text).is_err(), "{text}");
        }
        let host_bits = parse_cidr("10.20.0.1/24").unwrap_err();
        assert!(host_bits.contains("10.20.0.0/24"), "{host_bits}");
        let v6 = parse_cidr("2001:db8::1/64").unwrap_err();
        assert!(v6.contains("2001:db8::/64"), "{v6}");
        let long = parse_cidr(&"9".repeat(100_000)).unwrap_err();
        assert!(long.len() < 300, "a long value is not echoed whole");
    }

    fn refused(cidr: &str, public: &[&str]) -> Option<String> {
        let public: Vec<IpNet> = public.iter().map(|p| p.parse().unwrap()).collect();
        refusal(&parse_cidr(cidr).unwrap(), &public)
    }

    #[test]
    fn every_other_spelling_of_the_internet_is_refused() {
        for cidr in [
            "::ffff:0:0/96",
            "::ffff:808:808/128",
            "64:ff9b::/96",
            "64:ff9b:1::/48",
            "2002::/16",
            "2001::/32",
            "::/96",
            "169.254.169.254/32",
            "fe80::/10",
            "127.0.0.1/32",
            "224.0.0.0/4",
            "255.255.255.255/32",
            "fd00:ec2::254/128",
            "0.0.0.0/1",
        ] {
            assert!(refused(cidr, &["0.0.0.0/1"]).is_some(), "{cidr}");
        }
    }

    #[test]
    fn private_networks_pass_within_the_floor_public_ones_only_when_declared() {
        assert_eq!(refused("10.20.0.0/24", &[]), None);
        assert_eq!(refused("fd12:3456::/48", &[]), None);
        assert!(refused("10.0.0.0/8", &[]).unwrap().contains("/16"));
        assert!(refused("fc00::/8", &[]).unwrap().contains("/48"));
        assert!(
            refused("141.95.161.0/24", &[])
                .unwrap()
                .contains("egressDestinations")
        );
        assert_eq!(refused("141.95.161.0/24", &["141.95.0.0/16"]), None);
        assert!(refused("8.0.0.0/8", &["141.95.0.0/16"]).is_some());
    }

    #[test]
    fn many_narrow_entries_may_not_add_up_to_a_wide_network() {
        let rules: Vec<EgressRule> = (0..5)
            .map(|i| {
                serde_json::from_value(serde_json::json!(
                    {"cidr": format!("10.{i}.0.0/16"), "ports": [{"port": 443}]}
                ))
                .unwrap()
            })
            .collect();
        let workspace = crate::fixtures::workspace();
        let mut findings = Findings::for_object(&workspace);
        check_egress(&mut findings, "spec.egress", &rules[..1], &[]);
        assert!(findings.into_vec().is_empty());
        let mut findings = Findings::for_object(&workspace);
        check_egress(&mut findings, "spec.egress", &rules, &[]);
        let found = findings.into_vec();
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("together span"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn egress_to_an_airlock_store_is_refused_by_overlap() {
        let rule = |cidr: &str| EgressRule {
            cidr: cidr.into(),
            ports: vec![],
        };
        let store = rule("141.95.161.0/24");
        let stores = [("export destination `publications`".to_owned(), &store)];
        let object = crate::fixtures::workspace();
        for (cidr, refused) in [
            ("141.95.161.7/32", true),
            ("141.95.0.0/16", true),
            ("141.95.162.0/24", false),
        ] {
            let mut findings = Findings::for_object(&object);
            check_no_shared_store(&mut findings, "spec.egress", &[rule(cidr)], &stores);
            assert_eq!(!findings.into_vec().is_empty(), refused, "{cidr}");
        }
    }
}
