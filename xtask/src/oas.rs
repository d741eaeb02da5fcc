//! Reading OpenAPI 3.0 documents as `serde_json::Value` trees: loading, local `$ref`s,
//! `allOf` flattening and the list of operations. Shared by `spec diff` and `spec lint`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

/// The HTTP methods a path item can hold, in the order the OpenAPI specification lists them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// How many `$ref`s in a row are followed before giving up (a cycle).
const MAX_REF_HOPS: usize = 32;

/// One operation of a document.
#[derive(Debug, Clone, Copy)]
pub struct Operation<'a> {
    pub path: &'a str,
    pub method: &'static str,
    pub path_item: &'a Value,
    pub op: &'a Value,
}

impl Operation<'_> {
    /// The operationId, if there is one.
    pub fn id(&self) -> Option<&str> {
        self.op.get("operationId").and_then(Value::as_str)
    }

    /// `POST /path`, for messages.
    pub fn route(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    /// The operationId, or the route when there is none.
    pub fn label(&self) -> String {
        self.id().map_or_else(|| self.route(), str::to_owned)
    }
}

/// Reads a file into a string; the error names the file.
pub fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Parses JSON text; the error names the file.
pub fn parse_json(text: &str, path: &Path) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

/// Parses YAML text into a JSON tree; the error names the file.
pub fn parse_yaml(text: &str, path: &Path) -> Result<Value, String> {
    serde_yaml_ng::from_str(text).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))
}

/// Every operation of the document, sorted by path, then method. Fails if there is no
/// `paths` object.
pub fn operations(doc: &Value) -> Result<Vec<Operation<'_>>, String> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("not an OpenAPI document: no \"paths\" object")?;
    let mut sorted: Vec<(&String, &Value)> = paths.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut ops = Vec::new();
    for (path, item) in sorted {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.push(Operation {
                    path,
                    method,
                    path_item: item,
                    op,
                });
            }
        }
    }
    Ok(ops)
}

/// Follows `$ref`s (local ones, `#/...`) until a value without `$ref`.
pub fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> Result<&'a Value, String> {
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("$ref {reference:?} is not local to the document"))?;
        value = doc
            .pointer(pointer)
            .ok_or_else(|| format!("$ref {reference:?} points at nothing"))?;
    }
    Err(format!(
        "more than {MAX_REF_HOPS} $refs in a row (a cycle?)"
    ))
}

/// A schema with its `$ref`s resolved and its `allOf` members merged in: properties are
/// united, `required` lists joined, and other keys kept from the first place they appear
/// (the schema itself first). `nullable: true` beside an `allOf` stays.
pub fn flatten(doc: &Value, schema: &Value) -> Result<Map<String, Value>, String> {
    flatten_at(doc, schema, 0)
}

fn flatten_at(doc: &Value, schema: &Value, depth: usize) -> Result<Map<String, Value>, String> {
    if depth > MAX_REF_HOPS {
        return Err("allOf nested too deeply (a cycle?)".into());
    }
    let schema = resolve(doc, schema)?;
    let mut out = schema
        .as_object()
        .ok_or("a schema is not an object")?
        .clone();
    let Some(Value::Array(members)) = out.remove("allOf") else {
        return Ok(out);
    };
    for member in &members {
        for (key, value) in flatten_at(doc, member, depth + 1)? {
            match (key.as_str(), out.get_mut(&key)) {
                ("properties", Some(Value::Object(props))) => {
                    if let Value::Object(more) = value {
                        for (name, prop) in more {
                            props.entry(name).or_insert(prop);
                        }
                    }
                }
                ("required", Some(Value::Array(names))) => {
                    if let Value::Array(more) = value {
                        for name in more {
                            if !names.contains(&name) {
                                names.push(name);
                            }
                        }
                    }
                }
                (_, Some(_)) => {}
                (_, None) => {
                    out.insert(key, value);
                }
            }
        }
    }
    Ok(out)
}

/// The names in a flattened schema's `required` list.
pub fn required(schema: &Map<String, Value>) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A value shown in a message: strings bare, lists as `[a, b]`, nothing as `none`.
pub fn show(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "none".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let items: Vec<String> = items.iter().map(|v| show(Some(v))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(other) => other.to_string(),
    }
}
