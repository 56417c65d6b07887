//! `hygie connect`: a way in to a workspace's screen (or a review's) through the gateway. The
//! CLI opens a Session as the user of the kubeconfig (the admission policy refuses any other
//! name), holding only the digest of a secret it draws itself, and prints the gateway's
//! address with the secret in its fragment, which browsers never send to a server nor keep in
//! a log. The browser presents the secret once; the gateway asks the API server whether the
//! session's user may `connect`. The Session is owned by what it opens, when the user may read
//! it, so that it goes with it: the operator keeps every Session in view.

use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ObjectMeta, PostParams},
};

use super::{
    exit,
    export::{own_groups, whoami},
};
use crate::api::{
    ExportRequest, Session, Workspace,
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
    let owner = match args.review {
        false => owner::<Workspace>(&client, &namespace, &args.name).await,
        true => owner::<ExportRequest>(&client, &namespace, &args.name).await,
    };
    let session = Session {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", args.name)),
            namespace: Some(namespace.clone()),
            owner_references: owner.map(|o| vec![o]),
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
    let api: Api<Session> = Api::namespaced(client.clone(), &namespace);
    let created = api
        .create(&PostParams::default(), &session)
        .await
        .map_err(|e| format!("Session in {namespace}: {e}"))?;
    let name = created.metadata.name.unwrap_or_default();
    Ok(link(&args.gateway, &namespace, &name, &secret))
}

/// A reference to the object `name` of kind `K` as the Session's owner, if the user may read
/// it; without one the Session works the same, and stays after it.
async fn owner<K>(client: &Client, namespace: &str, name: &str) -> Option<OwnerReference>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let found = api.get_metadata_opt(name).await.ok().flatten()?;
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: found.name_any(),
        uid: found.uid()?,
        ..Default::default()
    })
}
