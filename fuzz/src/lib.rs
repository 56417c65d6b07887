//! The fuzz targets: every input Hygie reads from someone else, each fed arbitrary bytes. A
//! target panics only when Hygie does, or when a property every answer must keep is broken:
//! a parser that accepts a text gives back the same thing when read again, and the screen's
//! filter says the same whether a stream arrives at once or cut anywhere.
//!
//! `cargo +nightly fuzz run <target> --features libfuzzer` (tests/fuzz/run.sh) explores them,
//! guided by coverage; `tests/corpora.rs` replays their corpora, `corpus/<target>/`, on stable
//! Rust in the test command, so that every input once found to crash stays a test.

use std::path::Path;

use hygie::{
    bundle::Bundle,
    bytes::whole_bytes,
    gateway::rfb::Screen,
    policy::{ImageReference, check_all, object_store, parse_cidr},
    render::render,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A fuzz target: arbitrary bytes in, a panic only on a fault.
pub type Target = fn(&[u8]);

/// The targets, by the name of their corpus.
pub const TARGETS: [(&str, Target); 6] = [
    ("bundle", bundle),
    ("cidr", cidr),
    ("image_reference", image_reference),
    ("endpoint", endpoint),
    ("quantity", quantity),
    ("rfb", rfb),
];

/// A file of manifests as `hygie check` and `hygie render` read it: decoded, checked against
/// every rule and rendered into the objects the operator would apply.
pub fn bundle(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(bundle) = Bundle::read(Path::new("fuzzed.yaml"), text) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_796_000_000).expect("a valid instant");
    let violations = check_all(&bundle.inventory, &bundle.workspaces, now);
    let rendered = render(&bundle, now);
    assert_eq!(
        rendered.violations.len(),
        violations.len(),
        "rendering judges as checking does"
    );
}

/// A CIDR of an egress rule or a profile's destinations: accepted only in its canonical form,
/// so the text accepted is the text the network gives back.
pub fn cidr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(net) = parse_cidr(text) {
        assert_eq!(
            net.to_string(),
            text,
            "a CIDR is accepted only as it is written back"
        );
    }
}

/// An image reference of a workspace or a profile's allowlist: what it names is read the same
/// from its canonical form.
pub fn image_reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = ImageReference::parse(text) else {
        return;
    };
    let mut canonical = format!("{}/{}", reference.registry(), reference.repository());
    if let Some(digest) = reference.digest() {
        canonical = format!("{canonical}@{digest}");
    }
    let again = ImageReference::parse(&canonical).expect("the canonical form is a reference");
    assert_eq!(
        again, reference,
        "{text} and {canonical} name different images"
    );
}

/// An object store's endpoint: a host is kept only from an `https://` root URL, lowercase.
pub fn endpoint(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(endpoint) = object_store::read_endpoint(text) {
        assert!(text.starts_with("https://"), "{text}");
        assert_eq!(endpoint.host, endpoint.host.to_ascii_lowercase(), "{text}");
        assert!(!endpoint.host.is_empty(), "{text}");
    }
}

/// A size (a volume's, an export's limit): a whole number of bytes above zero, within 8 PiB.
pub fn quantity(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = whole_bytes(&Quantity(text.to_owned())) {
        assert!(bytes > 0 && bytes <= 1 << 53, "{text}: {bytes}");
    }
}

/// The screen's filter of the browser's and the desktop's RFB streams, after a ServerInit made
/// of the first 24 bytes. The rest is cut where its first byte says; each direction must
/// forward the same bytes, and refuse or not, whether its stream comes at once or in pieces.
pub fn rfb(data: &[u8]) {
    let Some((init, rest)) = data.split_at_checked(24) else {
        return;
    };
    let Some((&cut, stream)) = rest.split_first() else {
        return;
    };
    let screen = || Screen::new(init, 1024);
    if screen().is_err() {
        return;
    }
    let pieces: Vec<&[u8]> = stream.chunks(usize::from(cut).max(1)).collect();
    for direction in [Screen::from_browser, Screen::from_desktop] {
        let whole = direction(&mut screen().expect("accepted once"), stream);
        let mut cut_screen = screen().expect("accepted once");
        let mut forwarded = Vec::new();
        let mut refused = false;
        for piece in &pieces {
            match direction(&mut cut_screen, piece) {
                Ok(filtered) => forwarded.extend(filtered.forward),
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        match whole {
            Ok(filtered) => {
                assert!(!refused, "refused only when cut");
                assert_eq!(forwarded, filtered.forward, "cutting changed what goes on");
            }
            Err(_) => assert!(refused, "refused only when whole"),
        }
    }
}
