//! The `hygie` command line: offline `check`, `render` and `crds`, `report`, `export` (the
//! airlock), and `run`, the operator.

mod connect;
mod export;
mod offline;
mod operator;
mod report;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes shared by the offline commands.
pub mod exit {
    pub const OK: u8 = 0;
    /// A rule is violated: the input is well formed but not acceptable.
    pub const VIOLATIONS: u8 = 1;
    /// The input cannot be read: a file, YAML, kind or field error.
    pub const MALFORMED: u8 = 2;
}

#[derive(Parser, Debug)]
#[command(
    name = "hygie",
    version,
    about = "Sovereign health-data platforms on Kubernetes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check Hygie objects against the compliance rules; exit 1 on any violation.
    Check {
        #[command(flatten)]
        input: Input,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
    },
    /// Print the Kubernetes objects Hygie would create for the given objects.
    Render {
        #[command(flatten)]
        input: Input,
        /// Output format: a YAML stream, or a JSON v1 List.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = RenderFormat::Yaml)]
        format: RenderFormat,
    },
    /// Print the register of processing: datasets, their legal frame, host and users, what
    /// ends soon, the rules broken; from manifests (-f) or the cluster of the kubeconfig.
    Report(report::ReportArgs),
    /// Print the CustomResourceDefinitions of the hygie.io API and the admission policies
    /// that go with them.
    Crds,
    /// The airlock: request an export, list and show requests, approve or reject one; always
    /// as the user the API server authenticates.
    Export(export::ExportArgs),
    /// Open a workspace's screen (or, with --review, an export's review) in the browser,
    /// through the gateway, as the user the API server authenticates.
    Connect(connect::ConnectArgs),
    /// Run the gateway: the browser's only way to a workspace's screen.
    Gateway(crate::gateway::GatewayArgs),
    /// Run the operator against the cluster of the kubeconfig or the pod's service account.
    Run(operator::RunArgs),
}

#[derive(clap::Args, Debug)]
pub struct Input {
    /// Files or directories of YAML manifests (directories are read recursively); `-` reads
    /// standard input, such as what `kustomize build` or `helm template` writes.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Evaluate dates as of this instant (RFC 3339) instead of now.
    #[arg(long, value_parser = parse_now)]
    pub now: Option<jiff::Timestamp>,
}

fn parse_now(text: &str) -> Result<jiff::Timestamp, String> {
    text.parse()
        .map_err(|e| format!("not an RFC 3339 instant such as 2027-01-31T12:00:00Z: {e}"))
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RenderFormat {
    Yaml,
    Json,
}

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Check { input, format } => offline::check(&input, format),
        Command::Render { input, format } => offline::render(&input, format),
        Command::Report(args) => report::report(args),
        Command::Crds => offline::crds(),
        Command::Export(args) => export::export(args),
        Command::Connect(args) => connect::connect(args),
        Command::Gateway(args) => crate::gateway::run(args),
        Command::Run(args) => operator::run(args),
    };
    ExitCode::from(code)
}
