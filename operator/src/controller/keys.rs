//! NodeLUKS passphrases: 256 random bits from the operating system's CSPRNG, one per volume,
//! written once into an immutable Secret before the claim it opens. The material never
//! leaves this module but in the Secret's data: it is not logged, and `Passphrase` prints as
//! a placeholder.

use std::{collections::BTreeMap, fmt};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::api::ObjectMeta;

use super::{
    error::{Error, Result},
    events::Evidence,
};

/// Key material for one volume.
pub struct Passphrase(Vec<u8>);

impl Passphrase {
    /// 32 bytes from the OS CSPRNG, written as 64 lowercase hex digits so that every CSI driver
    /// and cryptsetup read it the same way.
    pub fn generate() -> Result<Passphrase> {
        let mut bits = [0u8; 32];
        getrandom::fill(&mut bits)
            .map_err(|e| Error::Waiting(format!("the OS random source ({e})")))?;
        let hex = bits
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes();
        Ok(Passphrase(hex))
    }

    /// The passphrase stored under `key` in `secret`, to open a clone with its source's key.
    pub fn read(secret: &Secret, key: &str) -> Option<Passphrase> {
        secret
            .data
            .as_ref()?
            .get(key)
            .map(|b| Passphrase(b.0.clone()))
    }

    /// `secret` with this passphrase under `key`.
    pub fn into_secret(self, mut secret: Secret, key: &str) -> Secret {
        secret.data = Some(BTreeMap::from([(key.to_owned(), ByteString(self.0))]));
        secret
    }
}

/// What names the key Secrets a step destroys, for its record: each Secret's namespace, name,
/// UID and resourceVersion as they were, in that order, joined when there are several (a
/// volume opened by keys in both places, during a move).
pub fn key_evidence<'a>(evidence: &mut Evidence, keys: impl IntoIterator<Item = &'a ObjectMeta>) {
    let keys: Vec<&ObjectMeta> = keys.into_iter().collect();
    if keys.is_empty() {
        return;
    }
    let field = |read: fn(&ObjectMeta) -> Option<&String>| {
        keys.iter()
            .map(|k| read(k).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ")
    };
    evidence.insert("keySecret", field(|k| k.name.as_ref()));
    evidence.insert("keySecretNamespace", field(|k| k.namespace.as_ref()));
    evidence.insert("keySecretUid", field(|k| k.uid.as_ref()));
    evidence.insert(
        "keySecretResourceVersion",
        field(|k| k.resource_version.as_ref()),
    );
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_are_256_random_bits_in_hex_and_never_printed() {
        let a = Passphrase::generate().unwrap();
        let b = Passphrase::generate().unwrap();
        assert_eq!(a.0.len(), 64);
        assert!(a.0.iter().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.0, b.0);
        assert_eq!(format!("{a:?}"), "Passphrase(<redacted>)");
        let secret = a.into_secret(Secret::default(), "key");
        let copied = Passphrase::read(&secret, "key").unwrap();
        assert_eq!(copied.0.len(), 64);
        assert!(Passphrase::read(&secret, "other").is_none());
    }
}
