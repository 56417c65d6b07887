use oci_spec::distribution::Reference;

use super::*;

const SHA256: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// What a parser read: registry, repository and digest.
type Read = Option<(String, String, Option<String>)>;

/// Both parsers' answers, side by side: the parts they read, or that they refuse.
fn both(text: &str) -> (Read, Read) {
    let ours = ImageReference::parse(text)
        .ok()
        .map(|r| (r.registry, r.repository, r.digest));
    let theirs = Reference::try_from(text).ok().map(|r| {
        (
            r.registry().to_owned(),
            r.repository().to_owned(),
            r.digest().map(str::to_owned),
        )
    });
    (ours, theirs)
}

fn agrees(text: &str) {
    let (ours, theirs) = both(text);
    if let Some((first, _)) = text.split_once('/')
        && first.chars().any(|c| c.is_ascii_uppercase())
        && theirs
            .as_ref()
            .is_some_and(|(registry, _, _)| registry != first)
    {
        // oci-spec reads `Registry/app` as Docker Hub's repository `Registry/app`; containerd
        // (distribution/reference's splitDockerDomain) pulls it from the host `Registry`, and
        // so Hygie reads it.
        assert_eq!(
            ours.map(|(registry, ..)| registry).as_deref(),
            Some(first),
            "{text:?}"
        );
        return;
    }
    assert_eq!(ours, theirs, "{text:?}");
}

#[test]
fn reads_the_references_oci_spec_reads() {
    for text in [
        "busybox",
        "busybox:latest",
        "library/busybox",
        "docker.io/busybox",
        "index.docker.io/busybox",
        "index.docker.io/team/busybox",
        "localhost/x",
        "localhost:5000/x:1",
        "test.com:tag",
        "test.com:5000",
        "test.com/repo:tag",
        "test:5000/repo",
        "test:5000/repo:tag",
        "registry.example.fr/research/jupyter",
        "registry.example.fr:5000/research/team/r:4.2-rc_1",
        "Registry.Example.FR/research/jupyter",
        "Registry/app",
        "A/b",
        "REGISTRY/team/app:1",
        "re-gistry.example.fr/a__b/c---d/e.f/g_h",
        "registry.example.fr/a___b",
        "registry.example.fr/a._b",
        "registry.example.fr/-a",
        "registry.example.fr/a-",
        "registry.example.fr/A",
        "-registry.example.fr/a",
        "registry-.example.fr/a",
        "registry..example.fr/a",
        "registry.example.fr:/a",
        "registry.example.fr:50a/a",
        "registry.example.fr/a:",
        "registry.example.fr/a:.tag",
        "registry.example.fr/a:_tag",
        "registry.example.fr/a:-tag",
        "registry.example.fr/a:tag:tag",
        "registry.example.fr/a/",
        "registry.example.fr//a",
        "/a",
        "a/",
        "a b",
        "@",
        ":",
        "a@",
        "a:@",
        "sha256:abc",
        &format!("a@{SHA256}"),
        &format!("a:1@{SHA256}"),
        &format!("registry.example.fr/research/jupyter@{SHA256}"),
        &format!("registry.example.fr/research/jupyter@{SHA256}@{SHA256}"),
        &format!("registry.example.fr/x@{}", SHA256.to_uppercase()),
        &format!("registry.example.fr/x@{}", &SHA256[..70]),
        &format!("registry.example.fr/x@{}0", SHA256),
        "registry.example.fr/x@sha384:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "registry.example.fr/x@sha512:0123456789abcdef0123456789abcdef",
        "registry.example.fr/x@md5:0123456789abcdef0123456789abcdef",
        "registry.example.fr/x@sha256+b64u:0123456789abcdef0123456789abcdef",
        "registry.example.fr/x@sha256-:0123456789abcdef0123456789abcdef",
        "registry.example.fr/x@1sha:0123456789abcdef0123456789abcdef",
        &format!("registry.example.fr/x:{}", "t".repeat(128)),
        &format!("registry.example.fr/x:{}", "t".repeat(129)),
        &"a".repeat(255),
        &"a".repeat(256),
        &"a".repeat(248),
        &"a".repeat(247),
        &format!("registry.example.fr/{}", "a".repeat(255)),
        &format!("registry.example.fr/{}", "a".repeat(256)),
    ] {
        agrees(text);
    }
}

/// A small generator (xorshift), so that the comparison covers what nobody thought to write.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn agrees_with_oci_spec_on_generated_references() {
    // Pieces of references, valid and not, joined at random: most results are near misses.
    let pieces = [
        "a",
        "b0",
        "z",
        "A",
        "9",
        "registry",
        "example",
        "fr",
        "localhost",
        ".",
        "..",
        "_",
        "__",
        "___",
        "-",
        "--",
        "/",
        "//",
        ":",
        "5000",
        "@",
        "sha256",
        "sha512",
        "+",
        "0123456789abcdef",
        "0123456789ABCDEF",
        "latest",
        "v1.2",
        " ",
        "é",
        "\n",
    ];
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for _ in 0..40_000 {
        let length = 1 + random.next() % 12;
        let text: String = (0..length).map(|_| random.pick(&pieces)).collect();
        let (ours, _) = both(&text);
        if text.is_ascii() {
            agrees(&text);
        } else {
            // Only a tag may hold other scripts' letters for oci-spec; never for this reader.
            assert_eq!(ours, None, "{text:?}");
        }
        accepted += usize::from(ours.is_some());
    }
    // The generator reaches both answers often enough for the comparison to mean something.
    assert!(accepted > 2_000, "{accepted} accepted");
}

#[test]
fn agrees_with_oci_spec_on_generated_well_formed_references() {
    let hosts = [
        "",
        "registry.example.fr/",
        "localhost:5000/",
        "Reg-1.example.fr:443/",
        "r/",
    ];
    let components = [
        "jupyter", "a", "r2", "a.b", "a_b", "a__b", "a---b", "team", "x-y.z",
    ];
    let tags = ["", ":latest", ":4.2-rc_1", ":_x", ":.x", ":x.y-z"];
    let digests = [
        "".to_owned(),
        format!("@{SHA256}"),
        format!("@{}", &SHA256[..40]),
        "@sha512:0123456789abcdef0123456789abcdef".to_owned(),
    ];
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let depth = 1 + random.next() % 3;
        let path: Vec<&str> = (0..depth).map(|_| random.pick(&components)).collect();
        let digest = &digests[(random.next() % digests.len() as u64) as usize];
        let text = format!(
            "{}{}{}{}",
            random.pick(&hosts),
            path.join("/"),
            random.pick(&tags),
            digest
        );
        agrees(&text);
    }
}

#[test]
fn a_tag_outside_ascii_is_refused_where_oci_spec_reads_it() {
    let text = format!("registry.example.fr/x:étude@{SHA256}");
    assert!(Reference::try_from(text.as_str()).is_ok());
    assert_eq!(ImageReference::parse(&text), Err(ParseError::InvalidFormat));
}

#[test]
fn says_why_a_reference_is_refused() {
    assert_eq!(ImageReference::parse(""), Err(ParseError::Empty));
    assert_eq!(
        ImageReference::parse("registry.example.fr/x@md5:0123456789abcdef0123456789abcdef"),
        Err(ParseError::DigestUnsupported)
    );
    assert_eq!(
        ImageReference::parse(&format!("registry.example.fr/x@{}", &SHA256[..50])),
        Err(ParseError::DigestInvalidLength)
    );
    assert_eq!(
        ImageReference::parse(&"a".repeat(250)),
        Err(ParseError::NameTooLong),
        "library/ counts"
    );
    assert_eq!(
        ImageReference::parse("registry.example.fr/../x").map(|_| ()),
        Err(ParseError::InvalidFormat)
    );
}

#[test]
fn a_first_component_with_an_uppercase_letter_is_the_registry() {
    let reference = ImageReference::parse("Registry/app:1").unwrap();
    assert_eq!(reference.registry(), "Registry");
    assert_eq!(reference.repository(), "app");
    assert_eq!(
        ImageReference::parse("registry/App"),
        Err(ParseError::InvalidFormat),
        "a repository is lowercase"
    );
}
