//! HYG004: trusted images. An image is read by the distribution grammar, as a container
//! runtime reads it (the registry a bare name resolves to included), then matched against the
//! profile's registry prefixes on host and path boundaries: `registry.example.fr/research/`
//! allows `registry.example.fr/research/jupyter`, never `registry.example.fr/research-evil/x`
//! nor `registry.example.fr.evil.example/research/x`.

use super::{Findings, Rule, image_reference::ImageReference, quote};

/// A registry prefix: a host (with its port, if any) and a repository path, possibly empty.
struct Prefix {
    host: String,
    path: String,
}

impl Prefix {
    fn parse(text: &str) -> Result<Prefix, String> {
        let trimmed = text.trim_end_matches('/');
        let (host, path) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let host_like = host.contains('.') || host.contains(':') || host == "localhost";
        if host.is_empty() || !host_like {
            return Err(format!(
                "`{}` does not start with a registry host such as registry.example.fr/",
                quote(text)
            ));
        }
        // The path must itself be a valid repository path of that registry.
        if !path.is_empty() && ImageReference::parse(&format!("{host}/{path}")).is_err() {
            return Err(format!("`{}` is not a registry path", quote(text)));
        }
        Ok(Prefix {
            host: host.to_ascii_lowercase(),
            path: path.to_owned(),
        })
    }

    fn allows(&self, reference: &ImageReference) -> bool {
        let repository = reference.repository();
        reference.registry().eq_ignore_ascii_case(&self.host)
            && (self.path.is_empty()
                || repository == self.path
                || repository.starts_with(&format!("{}/", self.path)))
    }
}

/// Checks the profile's registry prefixes: none empty, each a host and a path.
pub fn check_prefixes(findings: &mut Findings, field: &str, allowed: &[String]) {
    for (i, prefix) in allowed.iter().enumerate() {
        if let Err(reason) = Prefix::parse(prefix) {
            findings.add(
                Rule::TrustedImage,
                format!("{field}[{i}]"),
                format!("{reason}: an allowed registry names a host, and a path within it"),
            );
        }
    }
}

/// Why `image` may not run under `allowed`, if it may not.
pub fn untrusted(image: &str, allowed: &[String]) -> Vec<String> {
    let shown = quote(image);
    let reference = match ImageReference::parse(image) {
        Ok(reference) => reference,
        Err(e) => {
            return vec![format!(
                "image `{shown}` is not a valid image reference: {e}"
            )];
        }
    };
    let mut reasons = Vec::new();
    let pinned = reference.digest().is_some_and(|digest| {
        digest.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    });
    let prefixes: Vec<Prefix> = allowed
        .iter()
        .filter_map(|p| Prefix::parse(p).ok())
        .collect();
    if !prefixes.iter().any(|p| p.allows(&reference)) {
        reasons.push(format!(
            "image `{shown}` (registry {}, repository {}) is not from an allowed registry; the hosting profile allows {}",
            reference.registry(),
            reference.repository(),
            allowed
                .iter()
                .map(|p| format!("`{}`", quote(p)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !pinned {
        reasons.push(format!(
            "image `{shown}` is not pinned by digest; use `name@sha256:<64 hex digits>`"
        ));
    }
    reasons
}

/// Adds a HYG004 violation at `field` for each reason `image` may not run.
pub fn check_image(findings: &mut Findings, field: &str, image: &str, allowed: &[String]) {
    for reason in untrusted(image, allowed) {
        findings.add(Rule::TrustedImage, field, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn trusted(image: &str, allowed: &[&str]) -> bool {
        let allowed: Vec<String> = allowed.iter().map(|p| (*p).to_owned()).collect();
        untrusted(image, &allowed).is_empty()
    }

    #[test]
    fn prefixes_match_on_host_and_path_boundaries() {
        let allowed = ["registry.example.fr/research/"];
        assert!(trusted(
            &format!("registry.example.fr/research/jupyter{DIGEST}"),
            &allowed
        ));
        assert!(trusted(
            &format!("registry.example.fr/research/team/r:4{DIGEST}"),
            &allowed
        ));
        assert!(!trusted(
            &format!("registry.example.fr/research-evil/x{DIGEST}"),
            &allowed
        ));
        assert!(!trusted(
            &format!("registry.example.fr.evil.example/research/x{DIGEST}"),
            &allowed
        ));
        assert!(!trusted(
            &format!("evil.example/registry.example.fr/research/x{DIGEST}"),
            &allowed
        ));
        assert!(trusted(
            &format!("registry.example.fr:5000/x{DIGEST}"),
            &["registry.example.fr:5000"]
        ));
        assert!(!trusted(&format!("jupyter{DIGEST}"), &allowed), "docker.io");
    }

    #[test]
    fn references_outside_the_grammar_are_refused() {
        let allowed = ["registry.example.fr/research/"];
        for image in [
            format!("registry.example.fr/research/../x{DIGEST}"),
            format!("registry.example.fr/research/ju pyter{DIGEST}"),
            format!("registry.example.fr/research/jupyter{DIGEST}{DIGEST}"),
            "registry.example.fr/research/jupyter:latest".to_owned(),
            format!("registry.example.fr/research/Jupyter{DIGEST}"),
        ] {
            assert!(!trusted(&image, &allowed), "{image}");
        }
    }

    #[test]
    fn an_empty_or_hostless_prefix_is_refused() {
        for prefix in ["", "/", "research/", "jupyter"] {
            assert!(Prefix::parse(prefix).is_err(), "{prefix:?}");
            assert!(!trusted(
                &format!("registry.example.fr/research/jupyter{DIGEST}"),
                &[prefix]
            ));
        }
    }
}
