//! HYG010: a workspace pod without limits can starve the certified node pool, and one whose
//! limits are below its requests is refused by the API server anyway; a volume of no bytes
//! is a mistake the provider's driver reports late and obscurely.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_quantity::ParsedQuantity;

use crate::bytes::whole_bytes;

use super::{Findings, Rule};
use crate::api::workspace::{CpuMemory, WorkspaceResources};

pub fn check_resources(findings: &mut Findings, resources: &WorkspaceResources) {
    for resource in ["cpu", "memory"] {
        let request = amount(findings, "requests", resources.requests.as_ref(), resource);
        let limit = amount(findings, "limits", resources.limits.as_ref(), resource);
        if let (Some((request_text, request)), Some((limit_text, limit))) = (request, limit)
            && limit < request
        {
            findings.add(
                Rule::Resources,
                format!("spec.resources.limits.{resource}"),
                format!("the {resource} limit {limit_text} is below the request {request_text}"),
            );
        }
    }
}

/// Whether the amount is a whole number of the unit the API server keeps: millicores for CPU,
/// bytes for memory.
fn is_whole(parsed: &ParsedQuantity, resource: &str) -> bool {
    let scale = if resource == "cpu" { 1000.0 } else { 1.0 };
    parsed
        .to_bytes_f64()
        .map(|value| value * scale)
        .is_some_and(|units| (units - units.round()).abs() < 1e-6)
}

/// Checks that a size is a whole number of bytes above zero.
pub fn check_size(findings: &mut Findings, field: &str, size: &Quantity) {
    if let Err(why) = whole_bytes(size) {
        findings.add(
            Rule::Resources,
            field,
            format!("`{}` {why}", super::quote(&size.0)),
        );
    }
}

/// Reads one amount, reporting it when missing or unparseable.
fn amount(
    findings: &mut Findings,
    section: &str,
    amounts: Option<&CpuMemory>,
    resource: &str,
) -> Option<(String, ParsedQuantity)> {
    let field = format!("spec.resources.{section}.{resource}");
    let quantity: Option<&Quantity> = amounts.and_then(|a| match resource {
        "cpu" => a.cpu.as_ref(),
        _ => a.memory.as_ref(),
    });
    let Some(quantity) = quantity else {
        let what = if section == "requests" {
            "request"
        } else {
            "limit"
        };
        findings.add(
            Rule::Resources,
            field,
            format!("a {resource} {what} is required"),
        );
        return None;
    };
    match ParsedQuantity::try_from(quantity) {
        Ok(parsed) if !is_whole(&parsed, resource) => {
            let unit = if resource == "cpu" {
                "millicore (1m)"
            } else {
                "byte"
            };
            findings.add(
                Rule::Resources,
                field,
                format!(
                    "`{}` is finer than a {unit}: the API server would round it, and the rule would judge another value than the one that runs",
                    super::quote(&quantity.0)
                ),
            );
            None
        }
        Ok(parsed) => Some((quantity.0.clone(), parsed)),
        Err(_) => {
            findings.add(
                Rule::Resources,
                field,
                format!("`{}` is not a Kubernetes quantity", quantity.0),
            );
            None
        }
    }
}
