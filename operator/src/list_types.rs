//! The API server's list semantics, which a JSON Schema validator does not know: an array the
//! CRD marks `x-kubernetes-list-type: set` holds each item once, and one marked `map` holds each
//! tuple of its `x-kubernetes-list-map-keys` once. The API server refuses a duplicate in either
//! (`Duplicate value`), so `check` reads the same marks from the same schema rather than
//! listing the fields by hand: a field marked later is covered without anyone remembering it.

use serde_json::Value;

/// Every duplicate the API server would refuse in `document` under `schema`, as
/// `path: reason`.
pub fn duplicates(schema: &Value, document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(schema, document, "", &mut found);
    found
}

fn walk(schema: &Value, value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties");
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (name, field) in fields {
                let child = properties.and_then(|p| p.get(name)).or(additional);
                if let Some(child) = child {
                    let at = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    walk(child, field, &at, found);
                }
            }
        }
        Value::Array(items) => {
            check_list(schema, items, path, found);
            if let Some(item) = schema.get("items") {
                for (i, value) in items.iter().enumerate() {
                    walk(item, value, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

fn check_list(schema: &Value, items: &[Value], path: &str, found: &mut Vec<String>) {
    let key_of = |item: &Value| -> Option<Value> {
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => Some(item.clone()),
            Some("map") => {
                let keys = schema.get("x-kubernetes-list-map-keys")?.as_array()?;
                Some(Value::Array(
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                        .collect(),
                ))
            }
            _ => None,
        }
    };
    let mut seen: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(key) = key_of(item) else { return };
        if seen.contains(&key) {
            let what = match &key {
                Value::Array(parts) => parts
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            found.push(format!(
                "{path}[{i}]: duplicate {what}: the list holds each {} once, and the API server refuses a duplicate",
                match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => "key",
                    _ => "value",
                }
            ));
        } else {
            seen.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"properties": {"spec": {"properties": {
            "files": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "destinations": {"type": "array", "x-kubernetes-list-type": "map",
                             "x-kubernetes-list-map-keys": ["name"],
                             "items": {"properties": {"name": {"type": "string"}}}},
            "free": {"type": "array", "items": {"type": "string"}}
        }}}})
    }

    #[test]
    fn duplicates_in_sets_and_maps_are_found_where_they_are() {
        let document = json!({"spec": {
            "files": ["a.csv", "b.csv", "a.csv"],
            "destinations": [{"name": "x", "bucket": "1"}, {"name": "x", "bucket": "2"}],
            "free": ["same", "same"]
        }});
        let found = duplicates(&schema(), &document);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with("spec.destinations[1]: duplicate \"x\""),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("spec.files[2]: duplicate \"a.csv\""),
            "{found:#?}"
        );
    }

    #[test]
    fn distinct_items_pass() {
        let document =
            json!({"spec": {"files": ["a", "b"], "destinations": [{"name": "x"}, {"name": "y"}]}});
        assert!(duplicates(&schema(), &document).is_empty());
    }
}
