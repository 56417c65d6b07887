//! The gateway's HTTPS server: the browser's page (noVNC and the page that starts it, from a
//! directory of the image) and one WebSocket per session, at `/session/<namespace>/<name>`,
//! whose secret the page offers as a WebSocket subprotocol (`hygie-secret.<secret>`), so that
//! it never appears in a URL the server logs. Each session, admitted or refused, is an audit
//! record in the log and the sink.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{ConnectInfo, Path, State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use kube::Client;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower_http::services::ServeDir;
use tracing::{info, warn};

use super::{admit, credential::desktop_password, relay};
use crate::{
    build::DESKTOP_PORT,
    sink::{AuditSink, Record, Step},
};

/// The subprotocol prefix that carries a session's secret.
pub const SECRET_PROTOCOL: &str = "hygie-secret.";
/// The subprotocol the gateway answers with: the stream is binary RFB.
const BINARY: &str = "binary";

/// What every session shares.
pub struct Gateway {
    pub client: Client,
    pub desktop_key: Vec<u8>,
    pub paste_in: u64,
    pub longest: Duration,
    pub sink: Option<AuditSink>,
    pub recorder: String,
}

pub fn router(gateway: Arc<Gateway>, web_root: PathBuf) -> Router {
    Router::new()
        .route("/session/{namespace}/{name}", get(session))
        .route("/healthz", get(|| async { "ok" }))
        .fallback_service(ServeDir::new(web_root))
        .with_state(gateway)
}

/// The secret a browser offers among its WebSocket subprotocols.
fn offered_secret(headers: &HeaderMap) -> Option<String> {
    let offered = headers.get("sec-websocket-protocol")?.to_str().ok()?;
    offered
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(SECRET_PROTOCOL))
        .map(str::to_owned)
}

async fn session(
    State(gateway): State<Arc<Gateway>>,
    Path((namespace, name)): Path<(String, String)>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let object = format!("Session/{namespace}/{name}");
    let secret = offered_secret(&headers).unwrap_or_default();
    let now = jiff::Timestamp::now();
    let admitted = match admit::admit(&gateway.client, &namespace, &name, &secret, now).await {
        Ok(admitted) => admitted,
        Err(refused) => {
            let evidence = BTreeMap::from([("source".to_owned(), source.to_string())]);
            record(
                &gateway,
                &object,
                "",
                "SessionRefused",
                "Warning",
                &refused.to_string(),
                evidence,
            );
            return StatusCode::FORBIDDEN.into_response();
        }
    };
    let address = format!("{}:{DESKTOP_PORT}", admitted.pod_address);
    let desktop =
        match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&address)).await {
            Ok(Ok(desktop)) => {
                let _ = desktop.set_nodelay(true);
                desktop
            }
            Ok(Err(_)) | Err(_) => {
                let why = format!(
                    "{}: its desktop at {address} does not answer",
                    admitted.target
                );
                record(
                    &gateway,
                    &object,
                    "",
                    "SessionRefused",
                    "Warning",
                    &why,
                    BTreeMap::new(),
                );
                return StatusCode::BAD_GATEWAY.into_response();
            }
        };
    let uid = admitted.session.metadata.uid.clone().unwrap_or_default();
    let longest = admit::longest(&gateway.client, &admitted.profile, gateway.longest).await;
    let mut evidence = BTreeMap::from([
        ("longestSeconds".to_owned(), longest.as_secs().to_string()),
        ("user".to_owned(), admitted.user.clone()),
        ("groups".to_owned(), admitted.groups.join(",")),
        ("target".to_owned(), admitted.target.clone()),
        ("source".to_owned(), source.to_string()),
    ]);
    let note = format!(
        "{} opened {} through the gateway",
        admitted.user, admitted.target
    );
    record(
        &gateway,
        &object,
        &uid,
        "SessionOpened",
        "Normal",
        &note,
        evidence.clone(),
    );
    let password = desktop_password(&gateway.desktop_key, &admitted.target_uid);
    upgrade
        .protocols([BINARY])
        .on_upgrade(move |socket| async move {
            let figures = relay::relay(socket, desktop, &password, gateway.paste_in, longest).await;
            evidence.insert("bytesToDesktop".into(), figures.to_desktop.to_string());
            evidence.insert("bytesToBrowser".into(), figures.to_browser.to_string());
            evidence.insert(
                "clipboardDropped".into(),
                figures.clipboard_dropped.to_string(),
            );
            evidence.insert("opened".into(), now.to_string());
            let note = format!(
                "{} left {}: {}",
                admitted.user, admitted.target, figures.ended_by
            );
            record(
                &gateway,
                &object,
                &uid,
                "SessionEnded",
                "Normal",
                &note,
                evidence,
            );
            if let Err(e) = admit::mark_ended(&gateway.client, &admitted.session).await {
                warn!(session = %object, error = %e, "cannot mark the session ended: its workspace stays awake a day at most");
            }
        })
}

/// Writes an audit record to the log and, when there is one, the sink.
fn record(
    gateway: &Gateway,
    object: &str,
    uid: &str,
    action: &str,
    outcome: &str,
    reasons: &str,
    evidence: BTreeMap<String, String>,
) {
    let evidence_json = serde_json::to_string(&evidence).unwrap_or_default();
    match outcome {
        "Warning" => {
            warn!(target: "hygie::audit", audit_object = object, audit_uid = uid, audit_action = action, audit_outcome = outcome, audit_reasons = reasons, audit_evidence = %evidence_json, "hygie-audit")
        }
        _ => {
            info!(target: "hygie::audit", audit_object = object, audit_uid = uid, audit_action = action, audit_outcome = outcome, audit_reasons = reasons, audit_evidence = %evidence_json, "hygie-audit")
        }
    }
    if let Some(sink) = &gateway.sink {
        sink.record(Record {
            time: jiff::Timestamp::now().to_string(),
            object: object.to_owned(),
            uid: uid.to_owned(),
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            reasons: reasons.to_owned(),
            evidence,
            recorder: gateway.recorder.clone(),
            step: Step::Done,
        });
    }
}

/// Accepts TLS connections on `listener` and serves `app` on each, one task per connection
/// (a slow handshake holds up nobody else).
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let Ok((tcp, source)) = listener.accept().await else {
            continue;
        };
        // A screen is many small writes (a WebSocket frame's header, then its payload): no
        // waiting for an acknowledgement before each.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
            let Ok(Ok(tls)) = handshake.await else {
                return;
            };
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request.extensions_mut().insert(ConnectInfo(source));
                    tower::ServiceExt::oneshot(app.clone(), request)
                },
            );
            let io = hyper_util::rt::TokioIo::new(tls);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades();
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "gateway connection ended");
            }
        });
    }
}
