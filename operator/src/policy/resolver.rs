//! HYG005, names: what Hygie's resolver may answer. A workspace of health data resolves only
//! the names its profile lists, each to one address the profile already declares as an egress
//! destination, so that a name is never a way to somewhere the network policies would not let
//! it go, and the resolver never has to ask anybody else.

use std::{collections::BTreeSet, net::IpAddr};

use ipnet::IpNet;

use super::{Findings, Rule, network::destinations, quote};
use crate::api::{HostingProfile, hosting_profile::ResolverProfile};

/// The longest name DNS carries, and its longest label.
const NAME_MAX: usize = 253;
const LABEL_MAX: usize = 63;

/// Checks the resolver of a profile whose declared destinations are `declared`.
pub(super) fn check_resolver(
    findings: &mut Findings,
    resolver: &ResolverProfile,
    declared: &[IpNet],
) {
    let path = "spec.network.resolver";
    if let Err(reason) = parse_address(&resolver.address) {
        findings.add(Rule::Egress, format!("{path}.address"), reason);
    }
    let mut seen = BTreeSet::new();
    for (i, declared_name) in resolver.names.iter().enumerate() {
        let field = format!("{path}.names[{i}]");
        if let Err(reason) = check_name(&declared_name.name) {
            findings.add(Rule::Egress, format!("{field}.name"), reason);
        } else if !seen.insert(declared_name.name.as_str()) {
            findings.add(
                Rule::Egress,
                format!("{field}.name"),
                format!("`{}` is listed twice", declared_name.name),
            );
        }
        match parse_address(&declared_name.address) {
            Err(reason) => findings.add(Rule::Egress, format!("{field}.address"), reason),
            Ok(address) if !declared.iter().any(|net| net.contains(&address)) => findings.add(
                Rule::Egress,
                format!("{field}.address"),
                format!(
                    "`{address}` is outside spec.network.egressDestinations: a name stands for an address workloads may reach, never for another"
                ),
            ),
            Ok(_) => {}
        }
    }
}

/// The names `profile`'s resolver may serve, with their addresses: each well formed, and within
/// the profile's declared destinations. A name that breaks a rule is never served, whatever
/// else the profile holds.
pub fn served_names(profile: &HostingProfile) -> Vec<(&str, IpAddr)> {
    let Some(resolver) = &profile.spec.network.resolver else {
        return Vec::new();
    };
    let declared = destinations(&profile.spec.network.egress_destinations);
    resolver
        .names
        .iter()
        .filter(|n| check_name(&n.name).is_ok())
        .filter_map(|n| Some((n.name.as_str(), parse_address(&n.address).ok()?)))
        .filter(|(_, address)| declared.iter().any(|net| net.contains(address)))
        .collect()
}

/// An address written as the API server and every resolver read it.
fn parse_address(text: &str) -> Result<IpAddr, String> {
    let address: IpAddr = text
        .parse()
        .map_err(|_| format!("`{}` is not an IP address", quote(text)))?;
    if address.to_string() != text || address.is_unspecified() || address.is_loopback() {
        return Err(format!(
            "`{}` is not a usable address: write it in its canonical form, never loopback or unspecified",
            quote(text)
        ));
    }
    Ok(address)
}

/// A fully qualified name of at least two labels, lowercase letters, digits and inner hyphens.
fn check_name(name: &str) -> Result<(), String> {
    let shown = quote(name);
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=LABEL_MAX).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > NAME_MAX || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(format!(
            "`{shown}` is not a fully qualified domain name: lowercase labels of letters, digits and inner hyphens, at least two, without a trailing dot"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::hosting_profile::DeclaredName;

    fn resolver(names: &[(&str, &str)]) -> ResolverProfile {
        serde_json::from_value(serde_json::json!({
            "address": "10.96.0.53",
            "names": names.iter().map(|(n, a)| serde_json::json!({"name": n, "address": a})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn fields(resolver: &ResolverProfile) -> Vec<String> {
        let declared = ["10.20.0.0/24".parse().unwrap()];
        let mut findings = Findings::for_object(&crate::fixtures::profile());
        check_resolver(&mut findings, resolver, &declared);
        findings.into_vec().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn names_stand_for_declared_addresses_only() {
        assert!(fields(&resolver(&[("pypi.mirror.chu-exemple.fr", "10.20.0.10")])).is_empty());
        assert_eq!(
            fields(&resolver(&[("pypi.mirror.chu-exemple.fr", "10.21.0.10")])),
            ["spec.network.resolver.names[0].address"]
        );
        assert_eq!(
            fields(&resolver(&[("mirror", "10.20.0.10")])),
            ["spec.network.resolver.names[0].name"]
        );
        for bad in [
            "Mirror.example.fr",
            "mirror.example.fr.",
            "-a.example.fr",
            "a..fr",
        ] {
            assert_eq!(
                fields(&resolver(&[(bad, "10.20.0.10")])),
                ["spec.network.resolver.names[0].name"],
                "{bad}"
            );
        }
        assert_eq!(
            fields(&resolver(&[
                ("a.example.fr", "10.20.0.10"),
                ("a.example.fr", "10.20.0.11")
            ])),
            ["spec.network.resolver.names[1].name"]
        );
        let mut loopback = resolver(&[]);
        loopback.address = "127.0.0.1".into();
        assert_eq!(fields(&loopback), ["spec.network.resolver.address"]);
        let name = DeclaredName {
            name: "a.example.fr".into(),
            address: "10.20.0.010".into(),
        };
        let mut odd = resolver(&[]);
        odd.names = vec![name];
        assert_eq!(fields(&odd), ["spec.network.resolver.names[0].address"]);
    }
}
