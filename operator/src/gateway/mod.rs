//! `hygie gateway`: the only way to a workspace's screen, or a review's. It serves a browser
//! VNC client over HTTPS, admits a browser by a Session the API server tied to its user and a
//! SubjectAccessReview for `connect` (see [`admit`]), opens the desktop with a credential
//! derived per workspace ([`credential`]), and passes only what a screen needs between the two
//! ([`rfb`]): no clipboard out, paste in only up to the size it is told, no file, no other
//! channel. Each session is recorded in the audit log and sink.

pub mod admit;
pub mod credential;
pub mod handshake;
pub mod relay;
pub mod rfb;
pub mod server;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use kube::Client;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tracing::{error, info};

use crate::{
    cli::exit,
    sink::{AuditSink, SinkArgs},
    telemetry::{self, LogFormat},
};

/// How the gateway runs.
#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM file of the gateway's certificate chain.
    #[arg(
        long,
        env = "HYGIE_GATEWAY_TLS_CERT",
        default_value = "/var/run/secrets/hygie/tls/tls.crt"
    )]
    pub tls_cert: PathBuf,
    /// PEM file of its private key.
    #[arg(
        long,
        env = "HYGIE_GATEWAY_TLS_KEY",
        default_value = "/var/run/secrets/hygie/tls/tls.key"
    )]
    pub tls_key: PathBuf,
    /// Folder of the browser's page: noVNC and `index.html`.
    #[arg(
        long,
        env = "HYGIE_GATEWAY_WEB_ROOT",
        default_value = "/usr/share/hygie/gateway"
    )]
    pub web_root: PathBuf,
    /// File of the key the gateway and the operator derive desktop passwords from.
    #[arg(
        long,
        env = "HYGIE_DESKTOP_KEY_FILE",
        default_value = "/var/run/secrets/hygie/desktop/key"
    )]
    pub desktop_key_file: PathBuf,
    /// Longest text the browser may paste into a desktop at once; 0 allows no paste at all.
    /// Nothing is ever copied out.
    #[arg(long, default_value_t = 0)]
    pub paste_in_bytes: u64,
    /// Longest a session lasts, in seconds.
    #[arg(long, default_value_t = 8 * 3600)]
    pub max_session_seconds: u64,
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub sink: SinkArgs,
}

pub fn run(args: GatewayArgs) -> u8 {
    telemetry::init_logs(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return exit::VIOLATIONS;
        }
    };
    match runtime.block_on(gateway(args)) {
        Ok(()) => exit::OK,
        Err(message) => {
            error!("{message}");
            exit::VIOLATIONS
        }
    }
}

fn tls(args: &GatewayArgs) -> Result<tokio_rustls::TlsAcceptor, String> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&args.tls_cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("--tls-cert {}: {e}", args.tls_cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&args.tls_key)
        .map_err(|e| format!("--tls-key {}: {e}", args.tls_key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certificates, key)
    .map_err(|e| format!("--tls-cert and --tls-key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn gateway(args: GatewayArgs) -> Result<(), String> {
    let acceptor = tls(&args)?;
    let desktop_key = std::fs::read(&args.desktop_key_file).map_err(|e| {
        format!(
            "--desktop-key-file {}: {e}",
            args.desktop_key_file.display()
        )
    })?;
    if desktop_key.len() < 32 {
        return Err(format!(
            "--desktop-key-file {}: a key of at least 32 bytes",
            args.desktop_key_file.display()
        ));
    }
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no usable kubeconfig or in-cluster config: {e}"))?;
    let recorder = crate::controller::hostname();
    // The gateway's records wait in memory while the store is away: it holds no right on the
    // API server's objects but reading workspaces and asking who a user is.
    let (sink, flush) = match AuditSink::start(&args.sink, &recorder, None, Default::default())? {
        Some((sink, flush)) => (Some(sink), Some(flush)),
        None => (None, None),
    };
    let state = Arc::new(server::Gateway {
        client,
        desktop_key,
        paste_in: args.paste_in_bytes,
        longest: Duration::from_secs(args.max_session_seconds),
        sink,
        recorder,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    info!(address = %args.listen, "gateway listening");
    let app = server::router(state.clone(), args.web_root.clone());
    tokio::select! {
        () = server::serve(listener, acceptor, app) => {}
        _ = tokio::signal::ctrl_c() => info!("gateway stopping"),
    }
    drop(state);
    if let Some(flush) = flush {
        flush.wait(Duration::from_secs(10)).await;
    }
    Ok(())
}
