//! A desktop and the gateway, run here for the tests: TigerVNC's `Xvnc` with VNC
//! authentication and a known background colour, `hygie gateway` with a certificate made for
//! the run, a real browser (Chromium's headless shell) driven through its DevTools protocol,
//! and an RFB client of the tests' own that speaks to the gateway as a browser would.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use crate::{cluster::kubeconfig, operator::operator_binary};

/// The desktop's background, which a screenshot through the gateway must show.
pub const BACKGROUND: [u8; 3] = [0x12, 0xab, 0x34];

/// A folder for one test's files, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = crate::repo_root().join("target/desktop").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process killed when the test ends.
pub struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `Xvnc` on `display`, its RFB port `port` on every address, opened by `password` only.
pub fn desktop(dir: &Path, display: u16, port: u16, password: &str) -> Running {
    let file = dir.join("passwd");
    let mut vncpasswd = Command::new("vncpasswd")
        .arg("-f")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("vncpasswd runs (TigerVNC's tools; see .ci/run)");
    use std::io::Write as _;
    vncpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let obfuscated = vncpasswd.wait_with_output().unwrap().stdout;
    std::fs::write(&file, obfuscated).unwrap();
    let log = std::fs::File::create(dir.join("xvnc.log")).unwrap();
    let child = Command::new("Xvnc")
        .arg(format!(":{display}"))
        .args([
            "-rfbport",
            &port.to_string(),
            "-SecurityTypes",
            "VncAuth",
            "-geometry",
            "640x480",
            "-depth",
            "24",
        ])
        .arg("-PasswordFile")
        .arg(&file)
        .stderr(log)
        .spawn()
        .expect("Xvnc runs (TigerVNC; see .ci/run)");
    let running = Running(child);
    for _ in 0..50 {
        let colour = format!(
            "#{:02x}{:02x}{:02x}",
            BACKGROUND[0], BACKGROUND[1], BACKGROUND[2]
        );
        let set = Command::new("xsetroot")
            .args(["-display", &format!(":{display}"), "-solid", &colour])
            .stderr(Stdio::null())
            .status();
        if set.is_ok_and(|s| s.success()) {
            return running;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "Xvnc :{display} did not start: see {}",
        dir.join("xvnc.log").display()
    );
}

/// `kubectl port-forward` of `target` in `namespace` to 127.0.0.1:`port`, as the cluster's
/// administrator: the way in an ingress controller would give a browser, without one.
pub fn port_forward(namespace: &str, target: &str, port: u16, to: u16) -> Running {
    use std::io::BufRead as _;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["port-forward", "-n", namespace, target])
        .arg(format!("{port}:{to}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl runs");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("Forwarding from"),
        "kubectl port-forward {target}: {first:?}"
    );
    // It writes a line per connection: read them, or it fails on a closed pipe.
    std::thread::spawn(move || out.lines().map_while(Result::ok).for_each(drop));
    Running(child)
}

/// The desktop's clipboard (its CLIPBOARD selection), as `xclip` reads it.
pub fn clipboard(display: u16) -> String {
    let out = Command::new("xclip")
        .args([
            "-display",
            &format!(":{display}"),
            "-selection",
            "clipboard",
            "-o",
        ])
        .output()
        .expect("xclip runs (see .ci/run)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Puts `text` in the desktop's clipboard, as a program of the desktop copying would.
pub fn copy_in_desktop(display: u16, text: &str) -> Running {
    use std::io::Write as _;
    let mut child = Command::new("xclip")
        .args([
            "-display",
            &format!(":{display}"),
            "-selection",
            "clipboard",
            "-loops",
            "0",
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xclip runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    Running(child)
}

/// A certificate and key for 127.0.0.1, made with openssl for this run.
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=gateway",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null()));
    (cert, key)
}

/// The gateway's page as gateway/build.sh makes it, built once per run.
fn page() -> PathBuf {
    static PAGE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PAGE.get_or_init(|| {
        let out = crate::repo_root().join("target/gateway-web");
        run(Command::new("bash")
            .arg(crate::repo_root().join("gateway/build.sh"))
            .arg(&out));
        out
    })
    .clone()
}

/// `hygie gateway` on 127.0.0.1:`port`, with the control plane's kubeconfig and its page.
pub struct Gateway {
    _process: Running,
    log: PathBuf,
    pub certificate: PathBuf,
    pub url: String,
}

impl Gateway {
    pub fn start(dir: &Path, port: u16, key: &[u8], paste_in: u64) -> Gateway {
        let (certificate, tls_key) = certificate(dir);
        let key_file = dir.join("desktop.key");
        std::fs::write(&key_file, key).unwrap();
        let web = page();
        let log = dir.join("gateway.log");
        let child = Command::new(operator_binary())
            .args([
                "gateway",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "json",
            ])
            .args(["--paste-in-bytes", &paste_in.to_string()])
            .arg("--tls-cert")
            .arg(&certificate)
            .arg("--tls-key")
            .arg(&tls_key)
            .arg("--web-root")
            .arg(&web)
            .arg("--desktop-key-file")
            .arg(&key_file)
            .env("KUBECONFIG", kubeconfig())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Gateway {
            _process: Running(child),
            log,
            certificate,
            url: format!("https://127.0.0.1:{port}/"),
        };
        for _ in 0..50 {
            if gateway.log().contains("gateway listening") {
                return gateway;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the gateway did not start: {}", gateway.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The audit records the gateway logged for `session`, as JSON.
    pub fn records(&self, session: &str) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| {
                l["audit_object"]
                    .as_str()
                    .is_some_and(|o| o.ends_with(&format!("/{session}")))
            })
            .collect()
    }
}

/// The browser: Chromium's headless shell driven through its DevTools protocol, which waits as
/// long as asked before it takes a screenshot (its `--screenshot` flag does not wait for a
/// WebSocket).
pub struct Browser {
    _process: Running,
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    next: u64,
    /// What pages wrote to their console and the exceptions they threw.
    pub console: Vec<String>,
}

impl Browser {
    pub async fn start() -> Browser {
        let mut child = Command::new("chromium-headless-shell")
            .args([
                "--no-sandbox",
                "--disable-gpu",
                "--ignore-certificate-errors",
                "--window-size=800,600",
            ])
            .args(["--remote-debugging-port=0", "about:blank"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("chromium-headless-shell runs (see .ci/run)");
        // Its stderr is read to the end, not only to the line that says where its DevTools
        // listen: a browser whose stderr is closed fails to load pages.
        let stderr = child.stderr.take().unwrap();
        let (found, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let lines = std::io::BufReader::new(stderr).lines();
            for line in lines.map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(address.to_owned());
                }
            }
        });
        let address = listening
            .recv_timeout(Duration::from_secs(30))
            .expect("the browser says where its DevTools listen");
        let (host, _) = address.trim_start_matches("ws://").split_once('/').unwrap();
        let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
        let (socket, _) = tokio_tungstenite::client_async(address.as_str(), tcp)
            .await
            .unwrap();
        Browser {
            _process: Running(child),
            socket,
            next: 0,
            console: Vec::new(),
        }
    }

    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let mut message = json!({"id": self.next, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        loop {
            let Some(Ok(Message::Text(text))) = self.socket.next().await else {
                panic!("the browser's DevTools closed");
            };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if let Some("Runtime.consoleAPICalled" | "Runtime.exceptionThrown") =
                reply["method"].as_str()
            {
                self.console.push(reply["params"].to_string());
            }
            if reply["id"] == self.next {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Opens `url`, waits `wait`, and saves a screenshot to `path`; returns the page's title.
    pub async fn screenshot(&mut self, url: &str, wait: Duration, path: &Path) -> String {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        self.call(Some(&session), "Runtime.enable", json!({})).await;
        // A page in the background draws nothing until it is shown: show it, focused.
        self.call(
            None,
            "Target.activateTarget",
            json!({"targetId": target["targetId"]}),
        )
        .await;
        self.call(
            Some(&session),
            "Emulation.setFocusEmulationEnabled",
            json!({"enabled": true}),
        )
        .await;
        self.call(Some(&session), "Page.navigate", json!({"url": url}))
            .await;
        tokio::time::sleep(wait).await;
        let title = self
            .call(
                Some(&session),
                "Runtime.evaluate",
                json!({"expression": "document.title"}),
            )
            .await;
        let shot = self
            .call(
                Some(&session),
                "Page.captureScreenshot",
                json!({"format": "png"}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
        self.call(
            None,
            "Target.closeTarget",
            json!({"targetId": target["targetId"]}),
        )
        .await;
        title["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// How many pixels of the PNG at `path` have the colour `rgb`.
pub fn pixels_of(path: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = frame.color_type.samples();
    buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .filter(|p| p[..3] == rgb)
        .count()
}

/// The session and secret of a link `hygie connect` printed.
pub fn session_of(link: &str) -> (String, String, String) {
    let (_, fragment) = link.split_once('#').expect("a fragment");
    let mut parts = fragment.splitn(3, '/').map(str::to_owned);
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

/// An RFB client of the gateway, as the browser's noVNC is, over TLS trusting `certificate`.
pub struct RfbClient {
    socket:
        tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    pending: Vec<u8>,
}

impl RfbClient {
    /// Opens the session of `link` at the gateway on `port`; `Err` with the HTTP status if the
    /// gateway refuses it.
    pub async fn open(link: &str, port: u16, certificate: &Path) -> Result<RfbClient, String> {
        let (namespace, session, secret) = session_of(link);
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(certificate).unwrap();
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let url = format!("wss://127.0.0.1:{port}/session/{namespace}/{session}");
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("binary, hygie-secret.{secret}")).unwrap(),
        );
        let (socket, _) = tokio_tungstenite::client_async(request, tls)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = RfbClient {
            socket,
            pending: Vec::new(),
        };
        // The gateway's handshake: version, no security, ClientInit; then the ServerInit.
        let version = client.read(12).await;
        assert_eq!(version, b"RFB 003.008\n");
        client.send(b"RFB 003.008\n").await;
        assert_eq!(client.read(2).await, [1, 1], "one security type: None");
        client.send(&[1]).await;
        assert_eq!(client.read(4).await, [0, 0, 0, 0]);
        client.send(&[1]).await;
        let init = client.read(24).await;
        let name = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        client.read(name).await;
        Ok(client)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.socket
            .send(Message::binary(bytes.to_vec()))
            .await
            .unwrap();
    }

    async fn read(&mut self, length: usize) -> Vec<u8> {
        while self.pending.len() < length {
            match self.socket.next().await {
                Some(Ok(Message::Binary(bytes))) => self.pending.extend_from_slice(&bytes),
                other => panic!("the gateway closed: {other:?}"),
            }
        }
        let rest = self.pending.split_off(length);
        std::mem::replace(&mut self.pending, rest)
    }

    /// Every byte the gateway sends within `time`, and whether it closed the connection.
    pub async fn receive_for(&mut self, time: Duration) -> (Vec<u8>, bool) {
        let mut bytes = std::mem::take(&mut self.pending);
        let deadline = tokio::time::Instant::now() + time;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return (bytes, false),
                Ok(Some(Ok(Message::Binary(more)))) => bytes.extend_from_slice(&more),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(_) => return (bytes, true),
            }
        }
    }
}
