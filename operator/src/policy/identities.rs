//! People's and groups' names as the panels and the member lists hold them. Two listed names
//! that look alike (`bob` and `bоb`, with a Cyrillic о) would fill two seats of a panel that
//! needs two distinct people, so names are compared after Unicode normalisation (NFKC), a name
//! that mixes scripts is refused, and names whose confusable skeletons agree are one name
//! (Unicode Technical Standard #39, from the unicode-security crate, as rustc's lints use it).

use unicode_normalization::UnicodeNormalization;
use unicode_security::{MixedScript, skeleton};

/// A name in the form it is compared in: NFKC, so that what the identity provider sends and
/// what a spec lists compare equal however each was composed.
pub fn normalised(name: &str) -> String {
    name.nfkc().collect()
}

/// Whether two names are the same identity once normalised.
pub fn same(a: &str, b: &str) -> bool {
    a == b || normalised(a) == normalised(b)
}

/// What a name looks like: equal for names a reader cannot tell apart.
pub fn look(name: &str) -> String {
    skeleton(&normalised(name)).collect()
}

/// Why `name` cannot stand for one person or group, if it cannot: it mixes scripts, or holds
/// characters that show nothing (controls, format characters such as zero-width joiners).
pub fn why_ambiguous(name: &str) -> Option<&'static str> {
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Some("holds a control or invisible character");
    }
    if !normalised(name).is_single_script() {
        return Some(
            "mixes scripts (a look-alike of another name, such as a Cyrillic о in a Latin name)",
        );
    }
    None
}

/// Format characters that render as nothing (zero-width space, joiners, direction marks, the
/// byte-order mark, soft hyphen).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latin_name_with_a_cyrillic_letter_is_refused() {
        assert_eq!(why_ambiguous("bob"), None);
        assert_eq!(why_ambiguous("alice@chu-exemple.fr"), None);
        assert!(why_ambiguous("b\u{043e}b").is_some(), "Cyrillic о");
        assert!(why_ambiguous("bob\u{200B}").is_some(), "zero-width space");
    }

    #[test]
    fn names_of_one_script_other_than_latin_are_people_too() {
        assert_eq!(why_ambiguous("Σωκράτης"), None);
        assert_eq!(why_ambiguous("山田太郎"), None);
        assert_eq!(why_ambiguous("José"), None);
    }

    #[test]
    fn look_alikes_are_one_name() {
        // All Cyrillic, each letter a look-alike of the Latin one.
        assert_eq!(look("\u{0430}\u{0440}\u{0435}"), look("ape"));
        assert_eq!(look("ﬁona"), look("fiona"), "a ligature");
        assert_ne!(look("bob"), look("rob"));
    }

    #[test]
    fn names_are_compared_normalised() {
        assert!(same("Jos\u{0065}\u{0301}", "José"), "decomposed é");
        assert!(!same("bob", "b\u{043e}b"));
    }
}
