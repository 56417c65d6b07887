//! Hygie turns declared health datasets and research workspaces into encrypted volumes,
//! default-deny network policies and hardened pods, pinned to certified French regions.
//!
//! Everything Hygie creates is computed by pure functions of the custom resources
//! ([`build`]), after the compliance rules ([`policy`]) pass. The offline commands and the
//! controllers call the very same functions.

pub mod admission;
pub mod api;
pub mod build;
pub mod bundle;
pub mod bytes;
pub mod cli;
pub mod controller;
pub mod faults;
#[cfg(test)]
mod fixtures;
pub mod gateway;
mod list_types;
pub mod policy;
pub mod reference;
pub mod render;
pub mod report;
pub mod sink;
pub mod spool;
pub mod telemetry;
