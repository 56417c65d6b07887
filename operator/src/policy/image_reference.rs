//! Image references, read by the distribution grammar as `oci-client`'s `Reference` (the
//! `oci-spec` type it re-exports) reads them, and as container runtimes resolve them: a bare
//! name is on Docker Hub, under `library/` if it has a single component.
//!
//! `oci-spec` matches the grammar with one regular expression whose tag class (every Unicode
//! word character, up to 128 of them) compiles to more than 20 MiB, held for the life of the
//! process: half the operator's memory at a hundred workspaces. The grammar is small and
//! without ambiguity once split at `@` and at the last `:` before it, so it is read here by
//! hand, and the tests hold it to `oci-spec`'s answers on generated references. One
//! difference, on purpose: a tag is ASCII, as in the Go grammar container runtimes use, where
//! `oci-spec` also accepts other scripts' letters; such a tag is refused.

use std::fmt;

/// The longest repository name, after normalisation.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The longest tag.
const TAG_LENGTH_MAX: usize = 128;
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const OFFICIAL_IMAGES: &str = "library";

/// An image reference: where it is pulled from, and whether it is pinned.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageReference {
    registry: String,
    repository: String,
    digest: Option<String>,
}

/// Why a text is not an image reference.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    InvalidFormat,
    NameTooLong,
    DigestInvalidLength,
    DigestUnsupported,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "repository name must have at least one component",
            ParseError::InvalidFormat => "invalid reference format",
            ParseError::NameTooLong => "repository name must not be more than 255 characters",
            ParseError::DigestInvalidLength => "invalid checksum digest length",
            ParseError::DigestUnsupported => "unsupported digest algorithm",
        })
    }
}

impl ImageReference {
    pub fn parse(text: &str) -> Result<ImageReference, ParseError> {
        if text.is_empty() {
            return Err(ParseError::Empty);
        }
        let (named, digest) = match text.split_once('@') {
            Some((named, digest)) if is_digest(digest) => (named, Some(digest)),
            Some(_) => return Err(ParseError::InvalidFormat),
            None => (text, None),
        };
        // A tag follows the last `:` unless a `/` does (then that `:` is a registry's port).
        let name = match named.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => {
                if !is_tag(tag) {
                    return Err(ParseError::InvalidFormat);
                }
                name
            }
            _ => named,
        };
        if !is_name(name) {
            return Err(ParseError::InvalidFormat);
        }
        let (registry, repository) = split_registry(name);
        if repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ParseError::NameTooLong);
        }
        if let Some(digest) = digest {
            let (algorithm, hex) = digest.split_once(':').expect("checked by is_digest");
            let expected = match algorithm {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return Err(ParseError::DigestUnsupported),
            };
            if hex.len() != expected {
                return Err(ParseError::DigestInvalidLength);
            }
        }
        Ok(ImageReference {
            registry,
            repository,
            digest: digest.map(str::to_owned),
        })
    }

    /// The registry's host, with its port if any: `docker.io` for a bare name.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository within the registry, `library/<name>` for a bare single name.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `<algorithm>:<hex>`, if the reference is pinned.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

/// `[domain "/"] path-component ("/" path-component)*`: the first component may be read as
/// either, whichever makes the whole a name.
fn is_name(name: &str) -> bool {
    let mut components = name.split('/');
    let first = components.next().unwrap_or_default();
    let rest: Vec<&str> = components.collect();
    rest.iter().all(|c| is_path_component(c))
        && (is_path_component(first) || (!rest.is_empty() && is_domain(first)))
}

/// Lowercase letters and digits, in runs separated by one `.`, one `_`, `__`, or any number
/// of `-`; starts and ends with a letter or digit.
fn is_path_component(component: &str) -> bool {
    let alphanumeric = |c: &char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut separator = String::new();
    let mut chars = component.chars().peekable();
    if !chars.peek().is_some_and(alphanumeric) {
        return false;
    }
    for c in chars {
        if alphanumeric(&c) {
            let allowed = matches!(separator.as_str(), "" | "." | "_" | "__")
                || separator.bytes().all(|b| b == b'-');
            if !allowed {
                return false;
            }
            separator.clear();
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
        } else {
            return false;
        }
    }
    separator.is_empty()
}

/// Host components (letters of either case, digits, inner `-`) joined by `.`, then an
/// optional `:port`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let host_component = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    host.split('.').all(host_component)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A word character, then up to 127 word characters, `.` or `-`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex`, the algorithm's components (a letter, then letters and digits) joined by
/// one of `-_+.`, and at least 32 hexadecimal digits.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let component = |c: &str| {
        c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && c.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    algorithm.split(['-', '_', '+', '.']).all(component)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where a name is pulled from: its first component if that looks like a host (a `.` or a
/// `:`, or `localhost`), Docker Hub otherwise, as container runtimes resolve it.
fn split_registry(name: &str) -> (String, String) {
    let (mut registry, mut repository) = match name.split_once('/') {
        Some((first, rest))
            // A first component with an uppercase letter is a host too (`Registry/app` is
            // pulled from `Registry`): it cannot be a repository's.
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    if registry == DOCKER_HUB_LEGACY {
        registry = DOCKER_HUB.to_owned();
    }
    if registry == DOCKER_HUB && !repository.contains('/') {
        repository = format!("{OFFICIAL_IMAGES}/{repository}");
    }
    (registry, repository)
}

#[cfg(test)]
mod tests;
