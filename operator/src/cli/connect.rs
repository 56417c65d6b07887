//! `hygie connect`: a way in to a workspace's screen (or a review's) through the gateway. The
//! CLI opens a Session as the user of the kubeconfig (the admission policy refuses any other
//! name), holding only the digest of a secret it draws itself, and prints the gateway's
//! address with the secret in its fragment, which browsers never send to a server nor keep in
//! a log. The browser presents the secret once; the gateway asks the API server whether the
//! session's user may `connect`.

use base64::Engine as _;
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};

use super::{
    exit,
    export::{own_groups, whoami},
};
use crate::api::{
    Session,
    session::{SessionSpec, secret_digest},
};

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The workspace whose screen to open; with `--review`, the ExportRequest whose review to
    /// open.
    pub name: String,
    /// Namespace of the workspace; the kubeconfig's by default.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Open the review of an ExportRequest, as one of its reviewers.
    #[arg(long)]
    pub review: bool,
    /// The gateway's address, as the platform team publishes it.
    #[arg(long, env = "HYGIE_GATEWAY")]
    pub gateway: url::Url,
}

pub fn connect(args: ConnectArgs) -> u8 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(open(args)) {
        Ok(link) => {
            println!("{link}");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::VIOLATIONS
        }
    }
}

/// A secret of 256 bits from the operating system's generator, URL-safe.
fn draw_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random secret could be drawn: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The address the browser opens: the gateway's page, told the session and its secret in the
/// fragment.
pub fn link(gateway: &url::Url, namespace: &str, session: &str, secret: &str) -> url::Url {
    let mut link = gateway.clone();
    link.set_fragment(Some(&format!("{namespace}/{session}/{secret}")));
    link
}

async fn open(args: ConnectArgs) -> Result<url::Url, String> {
    if args.gateway.scheme() != "https" {
        return Err(format!(
            "--gateway {}: the gateway is reached over https only",
            args.gateway
        ));
    }
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no usable kubeconfig or in-cluster config: {e}"))?;
    let namespace = args
        .namespace
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let me = whoami(&client).await?;
    let secret = draw_secret()?;
    let (workspace, review) = match args.review {
        false => (Some(args.name.clone()), None),
        true => (None, Some(args.name.clone())),
    };
    let session = Session {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", args.name)),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        spec: SessionSpec {
            workspace,
            review,
            user: me.username.unwrap_or_default(),
            groups: own_groups(me.groups),
            secret_digest: secret_digest(&secret),
        },
        status: None,
    };
    let api: Api<Session> = Api::namespaced(client, &namespace);
    let created = api
        .create(&PostParams::default(), &session)
        .await
        .map_err(|e| format!("Session in {namespace}: {e}"))?;
    let name = created.metadata.name.unwrap_or_default();
    Ok(link(&args.gateway, &namespace, &name, &secret))
}
