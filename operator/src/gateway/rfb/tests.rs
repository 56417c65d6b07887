//! The screen-only filter on hand-made RFB streams, fed whole and byte by byte.

use super::*;

/// A ServerInit of a 4x2 screen at 32 bits per pixel, named "d".
fn server_init() -> Vec<u8> {
    let mut init = vec![
        0, 4, 0, 2, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
    ];
    init.extend_from_slice(&[0, 0, 0, 1, b'd']);
    init
}

fn screen(paste_in: u64) -> Screen {
    Screen::new(&server_init(), paste_in).unwrap()
}

fn cut_text(kind: u8, text: &[u8]) -> Vec<u8> {
    let mut message = vec![kind, 0, 0, 0];
    message.extend_from_slice(&(text.len() as u32).to_be_bytes());
    message.extend_from_slice(text);
    message
}

fn key(down: bool) -> Vec<u8> {
    vec![4, u8::from(down), 0, 0, 0, 0, 0, 0x61]
}

fn rectangle(w: u16, h: u16, encoding: i32) -> Vec<u8> {
    let mut header = vec![0, 0, 0, 0];
    header.extend_from_slice(&w.to_be_bytes());
    header.extend_from_slice(&h.to_be_bytes());
    header.extend_from_slice(&encoding.to_be_bytes());
    header
}

/// Feeds `input` byte by byte, as a slow network would.
fn trickle(feed: &mut dyn FnMut(&[u8]) -> Result<Filtered, Refusal>, input: &[u8]) -> Filtered {
    let mut all = Filtered::default();
    for byte in input {
        let part = feed(std::slice::from_ref(byte)).unwrap();
        all.forward.extend(part.forward);
        all.clipboard_dropped += part.clipboard_dropped;
    }
    all
}

#[test]
fn the_browser_s_clipboard_is_dropped_and_its_keys_pass() {
    let mut input = key(true);
    input.extend(cut_text(6, b"secret rows"));
    input.extend(key(false));
    let expected: Vec<u8> = [key(true), key(false)].concat();

    let filtered = screen(0).from_browser(&input).unwrap();
    assert_eq!(filtered.forward, expected);
    assert_eq!(filtered.clipboard_dropped, 1);
    let mut slow = screen(0);
    let trickled = trickle(&mut |b| slow.from_browser(b), &input);
    assert_eq!(trickled.forward, expected);
    assert_eq!(trickled.clipboard_dropped, 1);
}

#[test]
fn paste_in_passes_up_to_its_size_only() {
    let short = cut_text(6, b"ok");
    let filtered = screen(8).from_browser(&short).unwrap();
    assert_eq!(filtered.forward, short);
    assert_eq!(filtered.clipboard_dropped, 0);
    let long = cut_text(6, b"far too long");
    let filtered = screen(8).from_browser(&long).unwrap();
    assert!(filtered.forward.is_empty());
    assert_eq!(filtered.clipboard_dropped, 1);
}

#[test]
fn the_desktop_s_clipboard_never_reaches_the_browser() {
    let mut update = vec![0, 0, 0, 1];
    update.extend(rectangle(1, 1, RAW));
    update.extend([1, 2, 3, 4]);
    let mut input = cut_text(3, b"copied out");
    input.extend(&update);
    input.push(2); // the bell
    let expected: Vec<u8> = [update.clone(), vec![2]].concat();

    let filtered = screen(1 << 20).from_desktop(&input).unwrap();
    assert_eq!(filtered.forward, expected, "whatever paste-in allows");
    assert_eq!(filtered.clipboard_dropped, 1);
    let mut slow = screen(0);
    assert_eq!(
        trickle(&mut |b| slow.from_desktop(b), &input).forward,
        expected
    );
}

#[test]
fn encodings_the_gateway_cannot_frame_are_taken_out_of_the_browser_s_list() {
    // Tight, ZRLE, Raw, the extended clipboard, QEMU's keys, continuous updates.
    let asked: [i32; 6] = [7, 16, 0, -1_063_131_698, -258, -313];
    let mut message = vec![2, 0, 0, asked.len() as u8];
    for encoding in asked {
        message.extend(encoding.to_be_bytes());
    }
    let filtered = screen(0).from_browser(&message).unwrap();
    let mut expected = vec![2, 0, 0, 2];
    expected.extend(16i32.to_be_bytes());
    expected.extend(0i32.to_be_bytes());
    assert_eq!(filtered.forward, expected);
}

#[test]
fn a_rectangle_in_another_encoding_closes_the_connection() {
    let mut update = vec![0, 0, 0, 1];
    update.extend(rectangle(1, 1, 7));
    assert_eq!(
        screen(0).from_desktop(&update).err(),
        Some(Refusal::Encoding(7))
    );
}

#[test]
fn updates_are_framed_by_their_encodings_and_the_pixel_format() {
    let mut update = vec![0, 0, 0, 4];
    update.extend(rectangle(2, 1, RAW));
    update.extend([9; 8]);
    update.extend(rectangle(1, 1, COPY_RECT));
    update.extend([0, 1, 0, 1]);
    update.extend(rectangle(4, 2, ZRLE));
    update.extend(3u32.to_be_bytes());
    update.extend([7, 7, 7]);
    update.extend(rectangle(9, 2, CURSOR));
    update.extend([5; 9 * 2 * 4 + 2 * 2]);
    // A message after the update: if any body above were framed wrong, this would not parse.
    update.push(2);
    let filtered = screen(0).from_desktop(&update).unwrap();
    assert_eq!(filtered.forward, update);

    // At 8 bits per pixel, asked before the first request, Raw is a byte a pixel.
    let mut screen = screen(0);
    let mut format = vec![0, 0, 0, 0, 8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0];
    format.extend([3, 0, 0, 0, 0, 0, 0, 1, 0, 1]);
    screen.from_browser(&format).unwrap();
    let mut small = vec![0, 0, 0, 1];
    small.extend(rectangle(2, 1, RAW));
    small.extend([1, 2, 9]);
    assert_eq!(
        screen.from_desktop(&small).err(),
        Some(Refusal::ServerMessage(9)),
        "the third byte is read as a message: the rectangle was 2 bytes"
    );
}

#[test]
fn a_pixel_format_changed_once_the_screen_flows_closes_the_connection() {
    let mut input = vec![3, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    input.extend([0, 0, 0, 0, 8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0]);
    assert_eq!(
        screen(0).from_browser(&input).err(),
        Some(Refusal::LatePixelFormat)
    );
}

#[test]
fn a_message_a_screen_does_not_need_closes_the_connection() {
    // QEMU's client message, and xvp's server message.
    assert_eq!(
        screen(0).from_browser(&[255, 0]).err(),
        Some(Refusal::ClientMessage(255))
    );
    assert_eq!(
        screen(0).from_desktop(&[250, 0]).err(),
        Some(Refusal::ServerMessage(250))
    );
}
