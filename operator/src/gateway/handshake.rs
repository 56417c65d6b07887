//! The two RFB handshakes the gateway makes (RFC 6143 7.1 to 7.3): with the browser, which the
//! gateway has already admitted, so it offers no authentication; with the desktop, to which it
//! proves itself by VNC authentication with the workspace's password. What the browser asked
//! of security never reaches the desktop, and the desktop's ServerInit is the only message of
//! the desktop's handshake the browser sees.

use des::{
    Des,
    cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray},
};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version the gateway speaks, on both sides.
pub const VERSION: &[u8; 12] = b"RFB 003.008\n";
const SECURITY_NONE: u8 = 1;
const SECURITY_VNC: u8 = 2;
/// Longest desktop name the gateway passes on.
const MAX_NAME: u32 = 1024;

#[derive(Debug, Error)]
pub enum HandshakeError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the desktop speaks {0:?}, not RFB 3.8")]
    Version(String),
    #[error("the desktop does not offer VNC authentication")]
    NoVncAuthentication,
    #[error("the desktop refused the gateway's password: {0}")]
    Refused(String),
    #[error("the desktop's name is {0} bytes long, more than {MAX_NAME}")]
    NameTooLong(u32),
    #[error("the browser speaks {0:?}, not RFB 3.8")]
    BrowserVersion(String),
    #[error("the browser chose security type {0}, which was not offered")]
    BrowserSecurity(u8),
}

/// The answer to a VNC authentication challenge: the challenge encrypted with DES, keyed by
/// the password's first eight bytes with each byte's bits reversed (as VNC has always done).
pub fn vnc_response(password: &[u8], challenge: &[u8; 16]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    let cipher = Des::new(GenericArray::from_slice(&key));
    let mut response = *challenge;
    for block in response.chunks_exact_mut(8) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    response
}

/// Opens the desktop: version, VNC authentication, a shared ClientInit. Returns its ServerInit.
pub async fn with_desktop<S>(desktop: &mut S, password: &str) -> Result<Vec<u8>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut version = [0u8; 12];
    desktop.read_exact(&mut version).await?;
    if &version != VERSION {
        return Err(HandshakeError::Version(
            String::from_utf8_lossy(&version).trim().to_owned(),
        ));
    }
    desktop.write_all(VERSION).await?;
    let count = desktop.read_u8().await?;
    if count == 0 {
        return Err(HandshakeError::Refused(reason(desktop).await?));
    }
    let mut types = vec![0u8; usize::from(count)];
    desktop.read_exact(&mut types).await?;
    if !types.contains(&SECURITY_VNC) {
        return Err(HandshakeError::NoVncAuthentication);
    }
    desktop.write_u8(SECURITY_VNC).await?;
    let mut challenge = [0u8; 16];
    desktop.read_exact(&mut challenge).await?;
    desktop
        .write_all(&vnc_response(password.as_bytes(), &challenge))
        .await?;
    if desktop.read_u32().await? != 0 {
        return Err(HandshakeError::Refused(reason(desktop).await?));
    }
    // Shared: a second session does not end the first.
    desktop.write_u8(1).await?;
    let mut init = vec![0u8; 24];
    desktop.read_exact(&mut init).await?;
    let name = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
    if name > MAX_NAME {
        return Err(HandshakeError::NameTooLong(name));
    }
    let mut text = vec![0u8; name as usize];
    desktop.read_exact(&mut text).await?;
    init.extend(text);
    Ok(init)
}

async fn reason<S: AsyncRead + Unpin>(desktop: &mut S) -> Result<String, HandshakeError> {
    let length = desktop.read_u32().await?.min(MAX_NAME);
    let mut text = vec![0u8; length as usize];
    desktop.read_exact(&mut text).await?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The browser's end of the connection, as the handshake reads and writes it (a WebSocket's
/// messages carry the bytes in chunks of any size).
pub(crate) trait Link {
    async fn read_exact(&mut self, length: usize) -> std::io::Result<Vec<u8>>;
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

/// Opens the browser's side: version, no authentication (the gateway admitted it already), and
/// its ClientInit, which is not passed on.
pub(crate) async fn with_browser<L: Link>(browser: &mut L) -> Result<(), HandshakeError> {
    browser.write_all(VERSION).await?;
    let version = browser.read_exact(VERSION.len()).await?;
    if version != VERSION {
        return Err(HandshakeError::BrowserVersion(
            String::from_utf8_lossy(&version).trim().to_owned(),
        ));
    }
    browser.write_all(&[1, SECURITY_NONE]).await?;
    let chosen = browser.read_exact(1).await?[0];
    if chosen != SECURITY_NONE {
        return Err(HandshakeError::BrowserSecurity(chosen));
    }
    browser.write_all(&0u32.to_be_bytes()).await?;
    let _shared = browser.read_exact(1).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A desktop that checks the response to its challenge as a VNC server does.
    async fn desktop(mut side: tokio::io::DuplexStream, password: &str) -> bool {
        side.write_all(VERSION).await.unwrap();
        let mut version = [0u8; 12];
        side.read_exact(&mut version).await.unwrap();
        side.write_all(&[1, SECURITY_VNC]).await.unwrap();
        assert_eq!(side.read_u8().await.unwrap(), SECURITY_VNC);
        let challenge = [7u8; 16];
        side.write_all(&challenge).await.unwrap();
        let mut response = [0u8; 16];
        side.read_exact(&mut response).await.unwrap();
        let ok = response == vnc_response(password.as_bytes(), &challenge);
        if !ok {
            side.write_u32(1).await.unwrap();
            side.write_u32(6).await.unwrap();
            side.write_all(b"denied").await.unwrap();
            return false;
        }
        side.write_u32(0).await.unwrap();
        assert_eq!(side.read_u8().await.unwrap(), 1, "shared");
        let mut init = vec![
            0, 4, 0, 2, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        ];
        init.extend([0, 0, 0, 1, b'd']);
        side.write_all(&init).await.unwrap();
        true
    }

    #[tokio::test]
    async fn the_gateway_opens_a_desktop_with_its_password_only() {
        let (mut gateway, side) = tokio::io::duplex(1024);
        let server = tokio::spawn(desktop(side, "pa55word"));
        let init = with_desktop(&mut gateway, "pa55word").await.unwrap();
        assert!(server.await.unwrap());
        assert_eq!(init.len(), 25);

        let (mut gateway, side) = tokio::io::duplex(1024);
        let server = tokio::spawn(desktop(side, "pa55word"));
        let refused = with_desktop(&mut gateway, "guessed!").await;
        assert!(!server.await.unwrap());
        assert!(matches!(refused, Err(HandshakeError::Refused(why)) if why == "denied"));
    }

    #[test]
    fn the_response_is_des_keyed_by_the_reversed_password() {
        // Reversing the bits of every byte of the key is what VNC servers expect: the same
        // challenge under a password and under its reversed bytes gives different responses.
        let challenge = [0u8; 16];
        let plain = vnc_response(b"password", &challenge);
        let reversed: Vec<u8> = b"password".iter().map(|b| b.reverse_bits()).collect();
        assert_ne!(plain, vnc_response(&reversed, &challenge));
        assert_eq!(
            plain[..8],
            plain[8..],
            "two identical blocks, encrypted alike"
        );
    }
}
