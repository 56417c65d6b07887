//! One session: the browser's WebSocket on one side, the desktop's RFB port on the other, and
//! the screen-only filter between them, until either side closes, the filter refuses a
//! message, or the session's time is up.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    handshake::{self, Link},
    rfb::Screen,
};

/// What a session carried, for its audit record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Bytes from the browser that reached the desktop.
    pub to_desktop: u64,
    /// Bytes from the desktop that reached the browser.
    pub to_browser: u64,
    /// Clipboard messages dropped, both ways.
    pub clipboard_dropped: u32,
    /// Why it ended.
    pub ended_by: String,
}

/// The browser's WebSocket, read as a stream of bytes during the handshake.
struct Browser {
    socket: WebSocket,
    pending: Vec<u8>,
}

impl Link for Browser {
    async fn read_exact(&mut self, length: usize) -> std::io::Result<Vec<u8>> {
        while self.pending.len() < length {
            match self.socket.recv().await {
                Some(Ok(Message::Binary(bytes))) => self.pending.extend_from_slice(&bytes),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(_) | Message::Close(_))) | None => {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let rest = self.pending.split_off(length);
        Ok(std::mem::replace(&mut self.pending, rest))
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.socket
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .map_err(std::io::Error::other)
    }
}

/// Runs the session to its end.
pub async fn relay(
    socket: WebSocket,
    mut desktop: TcpStream,
    password: &str,
    paste_in: u64,
    longest: Duration,
) -> Figures {
    let mut browser = Browser {
        socket,
        pending: Vec::new(),
    };
    let mut figures = Figures::default();
    let screen = async {
        handshake::with_browser(&mut browser)
            .await
            .map_err(|e| format!("with the browser: {e}"))?;
        let init = handshake::with_desktop(&mut desktop, password)
            .await
            .map_err(|e| format!("with the desktop: {e}"))?;
        browser.write_all(&init).await.map_err(|e| e.to_string())?;
        Screen::new(&init, paste_in).map_err(|e| e.to_string())
    };
    let mut screen = match screen.await {
        Ok(screen) => screen,
        Err(e) => {
            figures.ended_by = format!("handshake: {e}");
            return figures;
        }
    };
    let deadline = tokio::time::sleep(longest);
    tokio::pin!(deadline);
    let mut buffer = vec![0u8; 64 * 1024];
    let early = std::mem::take(&mut browser.pending);
    let mut from_browser = Some(early);
    figures.ended_by = loop {
        if let Some(bytes) = from_browser.take() {
            match screen.from_browser(&bytes) {
                Ok(filtered) => {
                    figures.clipboard_dropped += filtered.clipboard_dropped;
                    figures.to_desktop += filtered.forward.len() as u64;
                    if desktop.write_all(&filtered.forward).await.is_err() {
                        break "the desktop closed".into();
                    }
                }
                Err(refusal) => break format!("refused: {refusal}"),
            }
        }
        tokio::select! {
            message = browser.socket.recv() => match message {
                Some(Ok(Message::Binary(bytes))) => from_browser = Some(bytes.to_vec()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(_))) => break "refused: the browser sent text".into(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "the browser closed".into(),
            },
            read = desktop.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break "the desktop closed".into(),
                Ok(n) => match screen.from_desktop(&buffer[..n]) {
                    Ok(filtered) => {
                        figures.clipboard_dropped += filtered.clipboard_dropped;
                        figures.to_browser += filtered.forward.len() as u64;
                        if !filtered.forward.is_empty()
                            && browser.socket.send(Message::Binary(filtered.forward.into())).await.is_err()
                        {
                            break "the browser closed".into();
                        }
                    }
                    Err(refusal) => break format!("refused: {refusal}"),
                },
            },
            () = &mut deadline => break format!("the session reached its longest, {} s", longest.as_secs()),
        }
    };
    let _ = browser.socket.send(Message::Close(None)).await;
    let _ = desktop.shutdown().await;
    figures
}
