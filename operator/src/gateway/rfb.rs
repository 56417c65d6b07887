//! Screen-only RFB (RFC 6143) between a browser and a workspace's desktop, after both
//! handshakes: every message in each direction is framed, and only what shows a screen and
//! carries keys and pointer passes. Clipboard messages are dropped (the browser's paste in up
//! to a size the gateway is told, never the desktop's copy out); encodings are limited to
//! those the gateway can frame (the browser's SetEncodings is rewritten), so that nothing
//! travels inside a message the gateway does not understand; any other message closes the
//! connection, whatever the workspace image or the browser does.
//!
//! Written by hand: the RFB crates of the Rust ecosystem are clients or servers that decode
//! pixels; none frames a stream to filter it, which needs no decoding at all.

use bytes::BytesMut;
use thiserror::Error;

/// Encodings the gateway frames: Raw, CopyRect, ZRLE, and the pseudo-encodings Cursor,
/// DesktopSize and LastRect. Every other (Tight, Hextile, the extended clipboard, QEMU's and
/// VMware's extensions, continuous updates, fences) is taken out of the browser's list, so the
/// desktop never uses it.
pub const FRAMED_ENCODINGS: [i32; 6] = [RAW, COPY_RECT, ZRLE, CURSOR, DESKTOP_SIZE, LAST_RECT];

const RAW: i32 = 0;
const COPY_RECT: i32 = 1;
const ZRLE: i32 = 16;
const CURSOR: i32 = -239;
const DESKTOP_SIZE: i32 = -223;
const LAST_RECT: i32 = -224;

/// Why the gateway closed a connection.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("the browser sent a message of type {0}, which a screen does not need")]
    ClientMessage(u8),
    #[error("the desktop sent a message of type {0}, which a screen does not need")]
    ServerMessage(u8),
    #[error(
        "the desktop sent a rectangle in encoding {0}, which the browser did not get to ask for"
    )]
    Encoding(i32),
    #[error("the browser changed its pixel format once the screen was flowing")]
    LatePixelFormat,
    #[error("the pixel format has {0} bits per pixel; RFB allows 8, 16 or 32")]
    PixelFormat(u8),
}

/// What one chunk of a stream became: the bytes to send on, and how many clipboard messages
/// were dropped from it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    pub forward: Vec<u8>,
    pub clipboard_dropped: u32,
}

/// What a complete message header means: the bytes that replace it (the header itself, a
/// rewritten one, or nothing), and what becomes of the body that follows it.
struct Header {
    length: usize,
    emit: Vec<u8>,
    body: Body,
    clipboard_dropped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Forward(u64),
    Discard(u64),
}

/// A direction's grammar: reads one header from the start of `buffer`, or says it needs more.
trait Grammar {
    fn header(&mut self, buffer: &[u8]) -> Result<Option<Header>, Refusal>;
}

/// Frames a stream by its grammar: headers are read whole (they are small, the longest a list
/// of encodings), bodies pass through or are discarded as they come.
struct Framer<G> {
    grammar: G,
    buffer: BytesMut,
    body: Body,
}

impl<G: Grammar> Framer<G> {
    fn new(grammar: G) -> Self {
        Framer {
            grammar,
            buffer: BytesMut::new(),
            body: Body::Forward(0),
        }
    }

    fn feed(&mut self, input: &[u8]) -> Result<Filtered, Refusal> {
        self.buffer.extend_from_slice(input);
        let mut filtered = Filtered::default();
        loop {
            let (left, kept) = match &mut self.body {
                Body::Forward(left) => (left, true),
                Body::Discard(left) => (left, false),
            };
            if *left > 0 {
                if self.buffer.is_empty() {
                    return Ok(filtered);
                }
                let take = self
                    .buffer
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                let bytes = self.buffer.split_to(take);
                if kept {
                    filtered.forward.extend_from_slice(&bytes);
                }
                *left -= take as u64;
                continue;
            }
            let Some(header) = self.grammar.header(&self.buffer)? else {
                return Ok(filtered);
            };
            let _ = self.buffer.split_to(header.length);
            filtered.forward.extend_from_slice(&header.emit);
            filtered.clipboard_dropped += u32::from(header.clipboard_dropped);
            self.body = header.body;
        }
    }
}

fn u16_at(buffer: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buffer[at], buffer[at + 1]])
}

fn u32_at(buffer: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buffer[at], buffer[at + 1], buffer[at + 2], buffer[at + 3]])
}

/// The length of a cut-text message's text: a negative length is the extended clipboard's,
/// whose size is its absolute value.
fn cut_length(b: &[u8]) -> u64 {
    u64::from((u32_at(b, 4) as i32).unsigned_abs())
}

/// Bytes per pixel of a 16-byte RFB pixel format.
fn bytes_per_pixel(format: &[u8]) -> Result<u64, Refusal> {
    match format[0] {
        bits @ (8 | 16 | 32) => Ok(u64::from(bits / 8)),
        bits => Err(Refusal::PixelFormat(bits)),
    }
}

/// What the browser may send: its pixel format (before the screen flows), its encodings
/// (rewritten), requests for updates, keys, the pointer, and paste in up to `paste_in` bytes.
struct FromBrowser {
    paste_in: u64,
    bytes_per_pixel: u64,
    flowing: bool,
}

impl Grammar for FromBrowser {
    fn header(&mut self, b: &[u8]) -> Result<Option<Header>, Refusal> {
        let Some(&kind) = b.first() else {
            return Ok(None);
        };
        let whole = |length: usize| Header {
            length,
            emit: b[..length].to_vec(),
            body: Body::Forward(0),
            clipboard_dropped: false,
        };
        let header = match kind {
            0 if b.len() >= 20 => {
                if self.flowing {
                    return Err(Refusal::LatePixelFormat);
                }
                self.bytes_per_pixel = bytes_per_pixel(&b[4..20])?;
                whole(20)
            }
            2 if b.len() >= 4 => {
                let count = usize::from(u16_at(b, 2));
                if b.len() < 4 + 4 * count {
                    return Ok(None);
                }
                let kept: Vec<i32> = b[4..4 + 4 * count]
                    .chunks_exact(4)
                    .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .filter(|e| FRAMED_ENCODINGS.contains(e))
                    .collect();
                let mut emit = vec![2, 0];
                emit.extend_from_slice(&(kept.len() as u16).to_be_bytes());
                for encoding in kept {
                    emit.extend_from_slice(&encoding.to_be_bytes());
                }
                Header {
                    length: 4 + 4 * count,
                    emit,
                    body: Body::Forward(0),
                    clipboard_dropped: false,
                }
            }
            3 if b.len() >= 10 => {
                self.flowing = true;
                whole(10)
            }
            4 if b.len() >= 8 => whole(8),
            5 if b.len() >= 6 => whole(6),
            6 if b.len() >= 8 => {
                // A negative length is the extended clipboard's: never asked for, dropped.
                let length = cut_length(b);
                let pasted = (u32_at(b, 4) as i32) >= 0 && length <= self.paste_in;
                Header {
                    length: 8,
                    emit: if pasted { b[..8].to_vec() } else { Vec::new() },
                    body: if pasted {
                        Body::Forward(length)
                    } else {
                        Body::Discard(length)
                    },
                    clipboard_dropped: !pasted,
                }
            }
            0 | 2..=6 => return Ok(None),
            other => return Err(Refusal::ClientMessage(other)),
        };
        Ok(Some(header))
    }
}

/// What the desktop may send: screen updates in the framed encodings, colour maps and the
/// bell. Its clipboard never passes.
struct FromDesktop {
    bytes_per_pixel: u64,
    /// Rectangles left in the update being read; `None` between messages.
    rectangles: Option<u16>,
}

impl Grammar for FromDesktop {
    fn header(&mut self, b: &[u8]) -> Result<Option<Header>, Refusal> {
        let forward = |length: usize, body: u64| Header {
            length,
            emit: b[..length].to_vec(),
            body: Body::Forward(body),
            clipboard_dropped: false,
        };
        if let Some(left) = self.rectangles {
            if b.len() < 12 {
                return Ok(None);
            }
            let (width, height) = (u64::from(u16_at(b, 4)), u64::from(u16_at(b, 6)));
            let encoding = u32_at(b, 8) as i32;
            self.rectangles = match left {
                // LastRect ends an update announced with 0xFFFF rectangles.
                _ if encoding == LAST_RECT => None,
                0xFFFF => Some(0xFFFF),
                1 => None,
                n => Some(n - 1),
            };
            let pixels = width * height * self.bytes_per_pixel;
            return match encoding {
                RAW => Ok(Some(forward(12, pixels))),
                COPY_RECT => Ok(Some(forward(12, 4))),
                CURSOR => Ok(Some(forward(12, pixels + width.div_ceil(8) * height))),
                DESKTOP_SIZE | LAST_RECT => Ok(Some(forward(12, 0))),
                ZRLE if b.len() >= 16 => Ok(Some(forward(16, u64::from(u32_at(b, 12))))),
                ZRLE => {
                    // Not enough for its length yet: read this rectangle again.
                    self.rectangles = Some(left);
                    Ok(None)
                }
                other => Err(Refusal::Encoding(other)),
            };
        }
        let Some(&kind) = b.first() else {
            return Ok(None);
        };
        let header = match kind {
            0 if b.len() >= 4 => {
                let count = u16_at(b, 2);
                self.rectangles = (count > 0).then_some(count);
                forward(4, 0)
            }
            1 if b.len() >= 6 => forward(6, 6 * u64::from(u16_at(b, 4))),
            2 => forward(1, 0),
            3 if b.len() >= 8 => Header {
                length: 8,
                emit: Vec::new(),
                body: Body::Discard(cut_length(b)),
                clipboard_dropped: true,
            },
            0 | 1 | 3 => return Ok(None),
            other => return Err(Refusal::ServerMessage(other)),
        };
        Ok(Some(header))
    }
}

/// Both directions of one session, from the desktop's ServerInit on.
pub struct Screen {
    browser: Framer<FromBrowser>,
    desktop: Framer<FromDesktop>,
}

impl Screen {
    /// A screen whose desktop announced `server_init` (its first 20 bytes hold the size and the
    /// pixel format), letting the browser paste in up to `paste_in` bytes at a time.
    pub fn new(server_init: &[u8], paste_in: u64) -> Result<Screen, Refusal> {
        let bytes_per_pixel = bytes_per_pixel(&server_init[4..20])?;
        Ok(Screen {
            browser: Framer::new(FromBrowser {
                paste_in,
                bytes_per_pixel,
                flowing: false,
            }),
            desktop: Framer::new(FromDesktop {
                bytes_per_pixel,
                rectangles: None,
            }),
        })
    }

    /// What of the browser's bytes goes on to the desktop.
    pub fn from_browser(&mut self, input: &[u8]) -> Result<Filtered, Refusal> {
        let filtered = self.browser.feed(input)?;
        // The pixel format may change only before the first update request, so no update in
        // flight is framed by the old one.
        self.desktop.grammar.bytes_per_pixel = self.browser.grammar.bytes_per_pixel;
        Ok(filtered)
    }

    /// What of the desktop's bytes goes on to the browser.
    pub fn from_desktop(&mut self, input: &[u8]) -> Result<Filtered, Refusal> {
        self.desktop.feed(input)
    }
}

#[cfg(test)]
mod tests;
