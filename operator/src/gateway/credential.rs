//! The gateway's credential at a workspace's desktop: a VNC password the operator and the
//! gateway both derive from a key they share (an HMAC of the workspace's UID), so the operator
//! gives it to the workspace in a Secret and the gateway needs no right to read Secrets. A pod
//! wearing the gateway's labels reaches the desktop's port but holds no password.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// VNC authentication uses the first eight bytes of a password (RFC 6143 7.2.2).
pub const PASSWORD_LENGTH: usize = 8;

/// Shortest key: 256 bits.
const KEY_LENGTH: usize = 32;

/// Reads the shared key from `path`, refusing one shorter than 256 bits.
pub fn read_key(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(path).map_err(|e| format!("desktop key {}: {e}", path.display()))?;
    match key.len() >= KEY_LENGTH {
        true => Ok(key),
        false => Err(format!(
            "desktop key {}: {} bytes; a key has at least {KEY_LENGTH}",
            path.display(),
            key.len()
        )),
    }
}

/// The desktop password of the workspace (or review pod) whose UID is `uid`.
pub fn desktop_password(key: &[u8], uid: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"hygie desktop\0");
    mac.update(uid.as_bytes());
    let digest = mac.finalize().into_bytes();
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    text[..PASSWORD_LENGTH].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_workspace_has_its_own_password_and_the_same_one_every_time() {
        let one = desktop_password(b"key", "uid-1");
        assert_eq!(one.len(), PASSWORD_LENGTH);
        assert_eq!(one, desktop_password(b"key", "uid-1"));
        assert_ne!(one, desktop_password(b"key", "uid-2"));
        assert_ne!(one, desktop_password(b"other key", "uid-1"));
    }
}
