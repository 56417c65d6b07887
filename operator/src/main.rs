use std::process::ExitCode;

use clap::Parser;
use hygie::cli::{Cli, run};

fn main() -> ExitCode {
    run(Cli::parse())
}
