//! The commands that need no cluster. Results go to stdout, diagnostics to stderr.

use std::io::Write;

use serde_json::{Value, json};

use super::{CheckFormat, Input, RenderFormat, exit};
use crate::{
    api,
    bundle::Bundle,
    policy::{Violation, check_all},
    render::{render as render_bundle, yaml_stream},
};

pub fn check(input: &Input, format: CheckFormat) -> u8 {
    let Some(bundle) = load(input) else {
        return exit::MALFORMED;
    };
    let violations = &check_all(&bundle.inventory, &bundle.workspaces, now(input));
    match format {
        CheckFormat::Text => {
            let mut out = String::new();
            for violation in violations {
                out.push_str(&format!("{violation}\n"));
            }
            print(&out);
        }
        CheckFormat::Json => print(&format!("{}\n", violations_json(violations))),
    }
    if violations.is_empty() {
        exit::OK
    } else {
        exit::VIOLATIONS
    }
}

pub fn render(input: &Input, format: RenderFormat) -> u8 {
    let Some(bundle) = load(input) else {
        return exit::MALFORMED;
    };
    let rendered = render_bundle(&bundle, now(input));
    for violation in &rendered.violations {
        eprintln!("{violation}");
    }
    for (key, reason) in &rendered.skipped {
        eprintln!("{key}: {reason}");
    }
    let objects: Vec<Value> = rendered.objects.iter().map(|o| o.to_json()).collect();
    match format {
        RenderFormat::Yaml => print(&yaml_stream(&objects)),
        RenderFormat::Json => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&list).expect("JSON values serialize")
            ));
        }
    }
    if rendered.violations.is_empty() {
        exit::OK
    } else {
        exit::VIOLATIONS
    }
}

pub fn crds() -> u8 {
    let crds: Vec<Value> = api::crds()
        .iter()
        .map(|crd| serde_json::to_value(crd).expect("CRDs serialize to JSON"))
        .chain(crate::admission::policies(
            crate::admission::DEFAULT_OPERATOR,
        ))
        .collect();
    print(&yaml_stream(&crds));
    exit::OK
}

fn violations_json(violations: &[Violation]) -> String {
    serde_json::to_string_pretty(&json!({ "violations": violations }))
        .expect("violations serialize")
}

fn load(input: &Input) -> Option<Bundle> {
    Bundle::load(&input.paths)
        .inspect_err(|e| eprintln!("error: {e}"))
        .ok()
}

fn now(input: &Input) -> jiff::Timestamp {
    input.now.unwrap_or_else(jiff::Timestamp::now)
}

/// Writes to stdout, ignoring a closed pipe (`hygie render | head` is not an error).
fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
