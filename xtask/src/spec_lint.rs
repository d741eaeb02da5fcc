//! `cargo xtask spec lint`: checks the fragment itself. It parses as OpenAPI 3.0; every
//! operation has an operationId and no two share one; every example validates against its
//! schema (request examples of form bodies are form fields, so strings); the SID schemas have
//! the right prefix pattern and length; the header comment names the upstream commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::example_schema::{self, Wire};
use crate::oas::{self, show};

/// The shared SID schemas and the prefix each must require.
pub const SID_SCHEMAS: [(&str, &str); 4] = [
    ("AccountSid", "AC"),
    ("CallSid", "CA"),
    ("MessageSid", "KX"),
    ("SubscriptionSid", "ZY"),
];

const FORM: &str = "application/x-www-form-urlencoded";

/// What the lint found.
#[derive(Debug, Default)]
pub struct Lint {
    /// One line per problem.
    pub problems: Vec<String>,
    pub operations: usize,
    pub examples: usize,
}

/// Lints the fragment at `path`. Returns the lines to print and the exit code: 0 clean,
/// 1 problems (one line each, then a count), 2 the file cannot be read.
pub fn run(path: &Path) -> (Vec<String>, u8) {
    let text = match oas::read(path) {
        Ok(text) => text,
        Err(e) => return (vec![e], 2),
    };
    let lint = lint(&text);
    if lint.problems.is_empty() {
        let line = format!(
            "lint passed: {} operations, {} examples checked",
            lint.operations, lint.examples
        );
        return (vec![line], 0);
    }
    let n = lint.problems.len();
    let mut lines = lint.problems;
    lines.push(format!(
        "{n} problem{} in the fragment",
        if n == 1 { "" } else { "s" }
    ));
    (lines, 1)
}

/// Lints the fragment's YAML text.
pub fn lint(text: &str) -> Lint {
    let mut lint = Lint::default();
    if header_commit(text).is_none() {
        lint.problems.push(
            "header comment: no upstream commit (a 40-hex commit after \"at commit\")".into(),
        );
    }
    let doc: Value = match serde_yaml_ng::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            lint.problems.push(format!("not valid YAML: {e}"));
            return lint;
        }
    };
    if let Err(e) = serde_yaml_ng::from_str::<openapiv3::OpenAPI>(text) {
        lint.problems
            .push(format!("not an OpenAPI 3.0 document: {e}"));
    }
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.0.") {
        lint.problems.push(format!(
            "openapi: {version:?} is not an OpenAPI 3.0 version"
        ));
    }
    operation_ids(&doc, &mut lint);
    sid_schemas(&doc, &mut lint.problems);
    Examples {
        doc: &doc,
        lint: &mut lint,
    }
    .all();
    lint
}

/// The upstream commit named in the header comment (`at commit <40 hex>`).
pub fn header_commit(text: &str) -> Option<String> {
    static AT_COMMIT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\bat commit\s+([0-9a-f]{40})\b").expect("a valid regular expression")
    });
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .collect();
    AT_COMMIT
        .captures(&header.join("\n"))
        .map(|c| c[1].to_owned())
}

fn operation_ids(doc: &Value, lint: &mut Lint) {
    let Ok(ops) = oas::operations(doc) else {
        lint.problems.push("no \"paths\" object".into());
        return;
    };
    lint.operations = ops.len();
    let mut by_id: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for op in &ops {
        match op.id() {
            Some(id) if !id.is_empty() => by_id.entry(id).or_default().push(op.route()),
            _ => lint
                .problems
                .push(format!("{}: no operationId", op.route())),
        }
    }
    for (id, routes) in by_id.into_iter().filter(|(_, routes)| routes.len() > 1) {
        lint.problems.push(format!(
            "operationId {id} is used by {} operations: {}",
            routes.len(),
            routes.join(", ")
        ));
    }
}

fn sid_schemas(doc: &Value, problems: &mut Vec<String>) {
    for (name, prefix) in SID_SCHEMAS {
        let at = format!("components.schemas.{name}");
        let Some(schema) = doc.pointer(&format!("/components/schemas/{name}")) else {
            problems.push(format!("{at}: missing"));
            continue;
        };
        let expected = format!("^{prefix}[0-9a-fA-F]{{32}}$");
        let expectations = [
            ("type", Value::from("string")),
            ("pattern", Value::from(expected)),
            ("minLength", Value::from(34)),
            ("maxLength", Value::from(34)),
        ];
        for (key, want) in expectations {
            if schema.get(key) != Some(&want) {
                problems.push(format!(
                    "{at}: {key} is {}, expected {}",
                    show(schema.get(key)),
                    show(Some(&want))
                ));
            }
        }
    }
}

/// Finds every example (`example`, `examples.*.value` of media types and parameters, and
/// `example` of schemas) and validates it against its schema.
struct Examples<'a> {
    doc: &'a Value,
    lint: &'a mut Lint,
}

impl Examples<'_> {
    fn all(&mut self) {
        let doc = self.doc;
        for op in oas::operations(doc).unwrap_or_default() {
            let label = op.label();
            let params = [op.path_item.get("parameters"), op.op.get("parameters")];
            for param in params
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                .flatten()
            {
                // Referenced parameters, bodies and responses are checked where they are defined.
                if param.get("$ref").is_none() {
                    let name = show(param.get("name"));
                    self.holder(&format!("{label}: parameter {name}"), param, Wire::Json);
                }
            }
            if let Some(body) = op.op.get("requestBody").filter(|b| b.get("$ref").is_none()) {
                self.content(&format!("{label}: request"), body);
            }
            for (code, response) in op
                .op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if response.get("$ref").is_none() {
                    self.content(&format!("{label}: response {code}"), response);
                }
            }
        }
        let components = |kind: &str| {
            doc.pointer(&format!("/components/{kind}"))
                .and_then(Value::as_object)
        };
        for (name, param) in components("parameters").into_iter().flatten() {
            self.holder(&format!("components.parameters.{name}"), param, Wire::Json);
        }
        for kind in ["requestBodies", "responses"] {
            for (name, holder) in components(kind).into_iter().flatten() {
                self.content(&format!("components.{kind}.{name}"), holder);
            }
        }
        for (name, schema) in components("schemas").into_iter().flatten() {
            self.schema(&format!("components.schemas.{name}"), schema);
        }
    }

    /// A request body or response: the examples of each media type.
    fn content(&mut self, at: &str, holder: &Value) {
        for (media_type, media) in holder
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let wire = if media_type == FORM {
                Wire::Form
            } else {
                Wire::Json
            };
            self.holder(at, media, wire);
        }
    }

    /// A media type or a parameter: its `example`, its `examples`, and its schema's examples.
    fn holder(&mut self, at: &str, holder: &Value, wire: Wire) {
        let Some(schema) = holder.get("schema") else {
            return;
        };
        if let Some(example) = holder.get("example") {
            self.check(&format!("{at} example"), schema, example, wire);
        }
        for (name, example) in holder
            .get("examples")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            match oas::resolve(self.doc, example) {
                Ok(example) => {
                    if let Some(value) = example.get("value") {
                        self.check(&format!("{at} example {name}"), schema, value, wire);
                    }
                }
                Err(e) => self.lint.problems.push(format!("{at} example {name}: {e}")),
            }
        }
        self.schema(&format!("{at} schema"), schema);
    }

    /// The `example` of a schema and of the schemas inside it (not behind a `$ref`).
    fn schema(&mut self, at: &str, schema: &Value) {
        if schema.get("$ref").is_some() {
            return;
        }
        if let Some(example) = schema.get("example") {
            self.check(&format!("{at} example"), schema, example, Wire::Json);
        }
        for (name, property) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            self.schema(&format!("{at}.{name}"), property);
        }
        if let Some(items) = schema.get("items") {
            self.schema(&format!("{at}[]"), items);
        }
        for (i, member) in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.schema(&format!("{at}.allOf[{i}]"), member);
        }
    }

    fn check(&mut self, at: &str, schema: &Value, example: &Value, wire: Wire) {
        self.lint.examples += 1;
        for problem in example_schema::validate(self.doc, schema, example, wire) {
            self.lint.problems.push(format!("{at}: {problem}"));
        }
    }
}
