//! HYG005: egress destinations. A NetworkPolicy allow rule is only as narrow as its CIDR,
//! so the rule refuses the whole Internet and anything wider than a /8.

use std::net::IpAddr;

use super::{Findings, Rule};
use crate::api::EgressRule;

/// The shortest prefix an egress CIDR may have.
const SHORTEST_PREFIX: u8 = 8;

/// A parsed CIDR: network address and prefix length.
#[derive(Debug, PartialEq, Eq)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

/// Parses `address/prefix`, refusing host bits and prefixes longer than the address.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (address, prefix) = text.split_once('/').ok_or_else(|| {
        format!("`{text}` is not a CIDR: write it as address/prefix, such as 10.20.0.0/24")
    })?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("`{text}` is not a CIDR: `{address}` is not an IP address"))?;
    let width: u8 = if address.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= width)
        .ok_or_else(|| format!("`{text}` is not a CIDR: the prefix must be 0 to {width}"))?;
    let bits = match address {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    };
    let host_bits = bits.checked_shl(u32::from(prefix)).unwrap_or(0);
    if prefix < 128 && host_bits != 0 {
        let network = bits & !(u128::MAX >> prefix);
        let network = match address {
            IpAddr::V4(_) => IpAddr::from(((network >> 96) as u32).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(network.to_be_bytes()),
        };
        return Err(format!(
            "`{text}` has host bits set: the network is {network}/{prefix}"
        ));
    }
    Ok(Cidr { address, prefix })
}

/// Checks every egress entry under `path` (such as `spec.egress`).
pub fn check_egress(findings: &mut Findings, path: &str, rules: &[EgressRule]) {
    for (i, rule) in rules.iter().enumerate() {
        match parse_cidr(&rule.cidr) {
            Err(reason) => findings.add(Rule::Egress, format!("{path}[{i}].cidr"), reason),
            Ok(cidr) if cidr.prefix == 0 => findings.add(
                Rule::Egress,
                format!("{path}[{i}].cidr"),
                format!(
                    "`{}` opens egress to the whole Internet; list the networks the workload needs",
                    rule.cidr
                ),
            ),
            Ok(cidr) if cidr.prefix < SHORTEST_PREFIX => findings.add(
                Rule::Egress,
                format!("{path}[{i}].cidr"),
                format!(
                    "`{}` is wider than a /{SHORTEST_PREFIX}; list narrower networks",
                    rule.cidr
                ),
            ),
            Ok(_) => {}
        }
        for (j, port) in rule.ports.iter().enumerate() {
            if !(1..=65535).contains(&port.port) {
                findings.add(
                    Rule::Egress,
                    format!("{path}[{i}].ports[{j}].port"),
                    format!("port {} is outside 1-65535", port.port),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_cidrs_parse() {
        assert_eq!(parse_cidr("10.20.0.0/24").unwrap().prefix, 24);
        assert_eq!(parse_cidr("192.0.2.7/32").unwrap().prefix, 32);
        assert_eq!(parse_cidr("2001:db8::/32").unwrap().prefix, 32);
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().prefix, 0);
        assert_eq!(parse_cidr("::/0").unwrap().prefix, 0);
    }

    #[test]
    fn malformed_cidrs_say_why() {
        assert!(
            parse_cidr("10.20.0.0")
                .unwrap_err()
                .contains("address/prefix")
        );
        assert!(
            parse_cidr("10.20.0.300/24")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(parse_cidr("10.20.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(parse_cidr("10.20.0.0/-1").unwrap_err().contains("0 to 32"));
        let host_bits = parse_cidr("10.20.0.1/24").unwrap_err();
        assert!(host_bits.contains("10.20.0.0/24"), "{host_bits}");
        let v6 = parse_cidr("2001:db8::1/64").unwrap_err();
        assert!(v6.contains("2001:db8::/64"), "{v6}");
    }
}
