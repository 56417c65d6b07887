//! Member states of the European Economic Area, where HDS requirement 28 keeps health data.

/// ISO 3166-1 alpha-2 codes of the 27 EU member states plus Iceland, Liechtenstein and Norway.
const EEA: [&str; 30] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

pub fn is_eea_member(country: &str) -> bool {
    EEA.contains(&country)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eu_and_efta_members_are_in_non_members_are_not() {
        for c in ["FR", "DE", "NO", "IS", "LI"] {
            assert!(is_eea_member(c), "{c}");
        }
        for c in ["US", "GB", "CH", "fr", ""] {
            assert!(!is_eea_member(c), "{c}");
        }
    }
}
