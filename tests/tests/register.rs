//! The register of processing as a person reads it: its HTML page rendered by a real browser,
//! Chromium's headless shell, whose screenshot stays in target/register/ as the run's
//! artefact. What the browser shows is checked, not only what the page says: the marks on what
//! has ended are painted.

use std::{path::Path, process::Command};

use hygie_tests::{operator::operator_binary, repo_root};

const BROWSER: &str = "chromium-headless-shell";
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1600;

fn browser(args: &[&str]) -> std::process::Output {
    Command::new(BROWSER)
        .args(["--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{BROWSER} does not run ({e}): install it (see .ci/run)"))
}

/// How many pixels of the screenshot at `path` have the colour `rgb`.
fn pixels_of(path: &Path, rgb: [u8; 3]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = frame.color_type.samples();
    let bytes = &buffer[..frame.buffer_size()];
    let count = bytes
        .chunks_exact(channels)
        .filter(|p| p[..3] == rgb)
        .count();
    (frame.width, frame.height, count)
}

#[test]
fn the_register_renders_in_a_browser_with_what_has_ended_marked() {
    // The Scaleway example once its HDS certificate (until 2029-06-30) and its dataset's
    // authorisation (until 2028-09-30) have ended: rows the page must mark.
    let out = Command::new(operator_binary())
        .args([
            "report",
            "-o",
            "html",
            "--now",
            "2029-07-15T00:00:00Z",
            "-f",
        ])
        .arg(repo_root().join("examples/scaleway"))
        .output()
        .unwrap();
    let html = String::from_utf8(out.stdout).unwrap();
    let folder = repo_root().join("target/register");
    std::fs::create_dir_all(&folder).unwrap();
    let page = folder.join("register.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());

    // The browser reads the page as written: the same marked rows, every section.
    let dom = browser(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let marked = html.matches("<tr class=\"alert\">").count();
    assert!(
        marked >= 3,
        "the ended certificate, authorisation and rule: {marked}"
    );
    assert_eq!(dom.matches("<tr class=\"alert\">").count(), marked, "{dom}");
    for section in [
        "Where data may live",
        "Processing",
        "Exports",
        "Rule violations in force",
    ] {
        assert!(dom.contains(&format!("<h2>{section}</h2>")), "{section}");
    }

    // And paints it: the marks' background (#fdd) and the headers' (#eee) are on screen.
    let screenshot = folder.join("register.png");
    let shot = browser(&[
        &format!("--window-size={WIDTH},{HEIGHT}"),
        &format!("--screenshot={}", screenshot.display()),
        &url,
    ]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let (width, height, marks) = pixels_of(&screenshot, [0xff, 0xdd, 0xdd]);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    assert!(marks > 5_000, "the marked rows are painted: {marks} pixels");
    let (_, _, headers) = pixels_of(&screenshot, [0xee, 0xee, 0xee]);
    assert!(
        headers > 5_000,
        "the tables' headers are painted: {headers} pixels"
    );
}
