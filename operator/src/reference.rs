//! The API reference of docs/reference.md, generated from the CRD schemas so that it cannot
//! go stale: every field with its type, whether it is required, its validation and its doc.

use std::fmt::Write;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};

/// The whole reference, one section per kind.
pub fn markdown(crds: &[CustomResourceDefinition]) -> String {
    let mut out = String::from(
        "# API reference: `hygie.io/v1alpha1`\n\n\
         Generated from the CRDs (`hygie crds`); a test fails when it differs from them.\n",
    );
    for crd in crds {
        let names = &crd.spec.names;
        let version = &crd.spec.versions[0];
        let _ = write!(
            out,
            "\n## {}\n\n`{}/{}`, {} scope, short names: {}.\n\n| field | type | required | description |\n|---|---|---|---|\n",
            names.kind,
            crd.spec.group,
            version.name,
            crd.spec.scope.to_lowercase(),
            names
                .short_names
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if let Some(schema) = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        {
            for section in ["spec", "status"] {
                if let Some(props) = schema.properties.as_ref().and_then(|p| p.get(section)) {
                    let required = schema
                        .required
                        .as_ref()
                        .is_some_and(|r| r.iter().any(|f| f == section));
                    rows(&mut out, section, props, required);
                }
            }
        }
    }
    out
}

fn rows(out: &mut String, path: &str, schema: &JSONSchemaProps, required: bool) {
    let _ = writeln!(
        out,
        "| `{path}` | {} | {} | {} |",
        type_of(schema),
        if required { "yes" } else { "" },
        describe(schema)
    );
    let (children, child_required, prefix) = match schema.items.as_ref() {
        Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(item)) => {
            (item.properties.clone(), item.required.clone(), format!("{path}[]"))
        }
        _ => (schema.properties.clone(), schema.required.clone(), path.to_owned()),
    };
    for (name, child) in children.unwrap_or_default() {
        let is_required = child_required.as_ref().is_some_and(|r| r.contains(&name));
        rows(out, &format!("{prefix}.{name}"), &child, is_required);
    }
}

fn type_of(schema: &JSONSchemaProps) -> String {
    let base = schema.type_.clone().unwrap_or_else(|| "object".into());
    match (base.as_str(), schema.format.as_deref()) {
        ("array", _) => {
            let item = match schema.items.as_ref() {
                Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(item)) => {
                    type_of(item)
                }
                _ => "object".into(),
            };
            format!("{item}[]")
        }
        ("object", _) if schema.additional_properties.is_some() && schema.properties.is_none() => {
            "map".into()
        }
        (_, Some(format)) => format!("{base} ({format})"),
        _ => base,
    }
}

fn describe(schema: &JSONSchemaProps) -> String {
    let mut parts: Vec<String> = schema
        .description
        .iter()
        .map(|d| d.replace('\n', " "))
        .collect();
    if let Some(values) = &schema.enum_ {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", v.0.as_str().unwrap_or_default()))
            .collect();
        parts.push(format!("One of {}.", values.join(", ")));
    }
    if let Some(default) = &schema.default {
        parts.push(format!("Default `{}`.", default.0));
    }
    if let Some(pattern) = &schema.pattern {
        parts.push(format!("Pattern `{pattern}`."));
    }
    if let (Some(min), Some(max)) = (schema.minimum, schema.maximum) {
        parts.push(format!("From {min} to {max}."));
    }
    for rule in schema.x_kubernetes_validations.iter().flatten() {
        parts.push(format!(
            "Rule: {}.",
            rule.message.as_deref().unwrap_or(&rule.rule)
        ));
    }
    parts.join(" ").replace('|', "\\|")
}
