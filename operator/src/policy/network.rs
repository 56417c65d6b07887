//! HYG005: egress destinations. A NetworkPolicy allow rule is only as narrow as its CIDR, and
//! an address can reach the Internet under more spellings than `0.0.0.0/0`: IPv4-mapped IPv6
//! (`::ffff:0:0/96` is all of IPv4), NAT64 and 6to4 prefixes, many entries that add up to
//! the Internet. So the rule is stated in address space, not in spellings:
//!
//! - a CIDR is a network address without host bits and a plain decimal prefix, which the API
//!   server and every reader read the same way;
//! - translation, link-local (cloud metadata), loopback, multicast and reserved ranges are
//!   never a destination;
//! - every destination, private or public, lies within the networks the HostingProfile
//!   declares in `spec.network.egressDestinations`: a private network is not safer for being
//!   private (a cluster's pod network, an HTTP proxy on 3128, another tenant's database), so
//!   the platform team names each one, as it names a public one;
//! - a declared private network is at most a /16 (IPv4) or a /48 (IPv6), a declared public one
//!   at most a /24 or a /48: one service's routed block, never a provider's shared network;
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

/// Private address space: declared by a profile in networks of at most a /16 or a /48.
const PRIVATE: [&str; 5] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// The shortest prefix of a declared private destination, and the most address space all of a
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
    if net.to_string() != text {
        // `2001:DB8::/32` or `2001:0db8::/32`: the API server and other tools compare
        // addresses as text, and a gate must judge what they will read.
        return Err(format!(
            "`{shown}` is not written canonically: write it as {net}"
        ));
    }
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

/// Checks every egress entry under `path` (such as `spec.egress`); `declared` are the networks
/// the profile lets workloads reach, `None` when the profile is missing: HYG008 refuses the
/// object then, and its entries are not also refused for declarations nobody can read.
pub fn check_egress(
    findings: &mut Findings,
    path: &str,
    rules: &[EgressRule],
    declared: Option<&[IpNet]>,
) {
    let (mut v4_span, mut v6_span) = (0u128, 0u128);
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("{path}[{i}].cidr");
        match parse_cidr(&rule.cidr) {
            Err(reason) => findings.add(Rule::Egress, field, reason),
            Ok(net) => {
                let reason = match declared {
                    Some(declared) => refusal(&net, declared),
                    None => always_refused(&net),
                };
                if let Some(reason) = reason {
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

/// Why `net` may never be a workload's destination, whatever a profile declares.
fn always_refused(net: &IpNet) -> Option<String> {
    if net.prefix_len() == 0 {
        return Some(
            "opens egress to the whole Internet; list the networks the workload needs".into(),
        );
    }
    forbidden(net).map(|why| format!("reaches {why}: never an egress destination"))
}

/// Why `net` may not be a workload's destination, if it may not.
fn refusal(net: &IpNet, declared: &[IpNet]) -> Option<String> {
    if let Some(reason) = always_refused(net) {
        return Some(reason);
    }
    if declared.iter().any(|allowed| allowed.contains(net)) {
        return None;
    }
    let kind = if is_private(net) {
        "private address space"
    } else {
        "outside private address space"
    };
    Some(format!(
        "is {kind} and outside the HostingProfile's spec.network.egressDestinations; \
         the platform team declares every network workloads may reach, private ones too (a pod \
         network or a proxy shared by every tenant is private)"
    ))
}

/// The range `net` touches that is never a destination, if any.
fn forbidden(net: &IpNet) -> Option<&'static str> {
    FORBIDDEN
        .iter()
        .find(|(range, _)| overlaps(&range.parse().expect("a valid constant CIDR"), net))
        .map(|(_, why)| *why)
}

fn is_private(net: &IpNet) -> bool {
    nets(&PRIVATE).any(|private| private.contains(net))
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

/// Why a profile may not declare `net` as a destination, if it may not: the whole Internet,
/// a range never reached, a network that straddles private and public space, or one wider than
/// its floor (a /16 or /48 private, a /24 or /48 public).
fn declaration_refusal(net: &IpNet) -> Option<String> {
    if net.prefix_len() == 0 {
        return Some("is the whole Internet; declare the networks workloads need".into());
    }
    if let Some(why) = forbidden(net) {
        return Some(format!("reaches {why}: never an egress destination"));
    }
    let private = is_private(net);
    if !private && nets(&PRIVATE).any(|p| net.contains(&p)) {
        return Some(
            "spans private and public address space; declare each network on its own".into(),
        );
    }
    let floor = match (net, private) {
        (IpNet::V4(_), true) => IPV4_FLOOR,
        (IpNet::V6(_), true) => IPV6_FLOOR,
        (IpNet::V4(_), false) => PUBLIC_IPV4_FLOOR,
        (IpNet::V6(_), false) => PUBLIC_IPV6_FLOOR,
    };
    let what = match private {
        true => {
            "a private destination is one network of the platform's, never a whole private range"
        }
        false => {
            "a public destination is one service's routed block, never a provider's network its other tenants share"
        }
    };
    (net.prefix_len() < floor).then(|| format!("is wider than a /{floor}: {what}"))
}

/// Checks the destinations a profile declares: canonical, nothing always refused, none wider
/// than its floor.
pub fn check_destinations(findings: &mut Findings, path: &str, destinations: &[String]) {
    for (i, text) in destinations.iter().enumerate() {
        let field = format!("{path}[{i}]");
        match parse_cidr(text) {
            Err(reason) => findings.add(Rule::Egress, field, reason),
            Ok(net) => {
                if let Some(reason) = declaration_refusal(&net) {
                    findings.add(Rule::Egress, field, format!("`{net}` {reason}"));
                }
            }
        }
    }
}

/// The valid destinations of a profile, for the rules of its workloads.
pub fn destinations(destinations: &[String]) -> Vec<IpNet> {
    destinations
        .iter()
        .filter_map(|d| parse_cidr(d).ok())
        .filter(|net| declaration_refusal(net).is_none())
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
        for uncanonical in ["2001:DB8::/32", "2001:0db8::/32", "2001:db8:0:0::/64"] {
            let refused = parse_cidr(uncanonical).unwrap_err();
            assert!(refused.contains("not written canonically"), "{refused}");
        }
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
            "::ffff:0.0.0.0/96",
            "::ffff:8.8.8.8/128",
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
    fn private_and_public_networks_pass_only_when_declared() {
        assert_eq!(refused("10.20.0.0/24", &["10.20.0.0/16"]), None);
        assert_eq!(refused("fd12:3456::/48", &["fd12:3456::/48"]), None);
        let undeclared = refused("10.20.0.0/24", &[]).unwrap();
        assert!(
            undeclared.contains("private address space and outside"),
            "{undeclared}"
        );
        assert!(refused("10.21.0.0/24", &["10.20.0.0/16"]).is_some());
        assert!(
            refused("141.95.161.0/24", &[])
                .unwrap()
                .contains("egressDestinations")
        );
        assert_eq!(refused("141.95.161.0/24", &["141.95.161.0/24"]), None);
        assert!(refused("8.0.0.0/8", &["141.95.161.0/24"]).is_some());
    }

    #[test]
    fn a_profile_declares_narrow_networks_only() {
        let refused = |cidr: &str| declaration_refusal(&parse_cidr(cidr).unwrap());
        assert_eq!(refused("10.20.0.0/16"), None);
        assert_eq!(refused("fd12:3456::/48"), None);
        assert_eq!(refused("141.95.161.0/24"), None);
        assert!(refused("10.0.0.0/8").unwrap().contains("/16"));
        assert!(refused("fc00::/8").unwrap().contains("/48"));
        assert!(refused("141.95.0.0/16").unwrap().contains("/24"));
        assert!(refused("8.0.0.0/5").unwrap().contains("private and public"));
        assert!(refused("0.0.0.0/0").is_some());
        assert!(refused("169.254.0.0/24").unwrap().contains("metadata"));
        assert_eq!(
            destinations(&["10.0.0.0/8".into(), "10.20.0.0/24".into()]).len(),
            1
        );
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
        let declared: Vec<IpNet> = (0..5)
            .map(|i| format!("10.{i}.0.0/16").parse().unwrap())
            .collect();
        check_egress(&mut findings, "spec.egress", &rules[..1], Some(&declared));
        assert!(findings.into_vec().is_empty());
        let mut findings = Findings::for_object(&workspace);
        check_egress(&mut findings, "spec.egress", &rules, Some(&declared));
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
