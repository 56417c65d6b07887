//! `hygie report`: the register of processing, from manifests (`-f`, like `check`) or from the
//! cluster of the kubeconfig.

use std::{io::Write, path::PathBuf};

use clap::ValueEnum;
use kube::{Api, Client, api::ListParams};

use super::{exit, parse_now};
use crate::{
    api::{Dataset, ExportRequest, ExportReview, HostingProfile, Workspace},
    bundle::Bundle,
    report::register,
    sink::{Record, SinkArgs, read_records},
};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Files or directories of manifests (`-` for standard input); without them, the cluster of
    /// the kubeconfig.
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Evaluate dates as of this instant (RFC 3339) instead of now.
    #[arg(long, value_parser = parse_now)]
    pub now: Option<jiff::Timestamp>,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// The audit sink to read past decisions from (the same options as `hygie run`'s).
    #[command(flatten)]
    pub sink: SinkArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ReportFormat {
    Markdown,
    Json,
    Csv,
    Html,
}

pub fn report(args: ReportArgs) -> u8 {
    let bundle = if args.paths.is_empty() {
        from_cluster()
    } else {
        Bundle::load(&args.paths).map_err(|e| e.to_string())
    };
    let bundle = match bundle {
        Ok(bundle) => bundle,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::MALFORMED;
        }
    };
    let records = match read_sink(&args.sink) {
        Ok(records) => records,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::MALFORMED;
        }
    };
    let register =
        register(&bundle, args.now.unwrap_or_else(jiff::Timestamp::now)).with_history(records);
    let text = match args.format {
        ReportFormat::Markdown => register.markdown(),
        ReportFormat::Json => {
            let json = serde_json::to_string_pretty(&register).expect("the register serializes");
            format!("{json}\n")
        }
        ReportFormat::Csv => register.csv(),
        ReportFormat::Html => register.html(),
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    exit::OK
}

/// The records of the audit sink, when one is named.
fn read_sink(sink: &SinkArgs) -> Result<Vec<Record>, String> {
    if sink.audit_s3_endpoint.is_none() {
        return Ok(Vec::new());
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?
        .block_on(read_records(sink))
}

/// The Hygie objects of the cluster, as its API server holds them (with their status).
fn from_cluster() -> Result<Bundle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    runtime.block_on(async {
        let client = Client::try_default()
            .await
            .map_err(|e| format!("no usable kubeconfig or in-cluster config: {e}"))?;
        let all = ListParams::default();
        let failed = |e: kube::Error| format!("cannot list Hygie objects: {e}");
        let profiles = Api::<HostingProfile>::all(client.clone())
            .list(&all)
            .await
            .map_err(failed)?;
        let datasets = Api::<Dataset>::all(client.clone())
            .list(&all)
            .await
            .map_err(failed)?;
        let workspaces = Api::<Workspace>::all(client.clone())
            .list(&all)
            .await
            .map_err(failed)?;
        let requests = Api::<ExportRequest>::all(client.clone())
            .list(&all)
            .await
            .map_err(failed)?;
        let reviews = Api::<ExportReview>::all(client)
            .list(&all)
            .await
            .map_err(failed)?;
        let mut bundle = Bundle::default();
        profiles
            .into_iter()
            .for_each(|p| bundle.inventory.add_profile(p));
        datasets
            .into_iter()
            .for_each(|d| bundle.inventory.add_dataset(d));
        bundle.workspaces = workspaces.items;
        bundle.inventory.export_requests = requests.items;
        bundle.reviews = reviews.items;
        Ok(bundle)
    })
}
