use std::process::ExitCode;

use clap::Parser;
use hygie::cli::{Cli, run};

/// jemalloc rather than the system allocator: with many threads and a steady churn of small
/// watch events, glibc's per-thread arenas keep far more memory than the operator uses.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    hygie::faults::arm();
    run(Cli::parse())
}
