//! Validating the fragment's examples with a real JSON Schema validator (the `jsonschema`
//! crate). OpenAPI 3.0's Schema Object is a dialect of JSON Schema draft 5 ("wright-00"), so
//! the schemas are first turned into JSON Schema draft 7, the nearest draft the validator
//! implements that keeps OpenAPI 3.0's rule that keywords beside a `$ref` are ignored:
//! - `nullable: true` becomes "null, or else the schema" (`if`/`then`/`else`, so that a wrong
//!   non-null value is reported by the schema's own keywords, not as a failed `anyOf`);
//! - draft 4's boolean `exclusiveMinimum`/`exclusiveMaximum` become draft 7's numbers.
//!
//! Formats are checked: the validator's own (`uri`, ...) and Twilio's `date-time-rfc-2822`.

use std::sync::LazyLock;

use jsonschema::Draft;
use regex::Regex;
use serde_json::{Map, Value};

use crate::oas;

/// How the example travels: as JSON, or as a form body whose fields are all strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Json,
    /// An `application/x-www-form-urlencoded` body: an object whose fields are strings, read
    /// as the type their schema declares.
    Form,
}

/// Validates `value` against `schema` (a schema of the OpenAPI document `doc`, possibly a
/// `$ref` into it). Returns one message per problem, each starting with the place in the value
/// (`date_created: ...`).
pub fn validate(doc: &Value, schema: &Value, value: &Value, wire: Wire) -> Vec<String> {
    let mut problems = Vec::new();
    let value = match wire {
        Wire::Json => value.clone(),
        Wire::Form => read_form(doc, schema, value, &mut problems),
    };
    // The schema, with the document's components beside it so that its `#/components/...`
    // references resolve.
    let mut root = match to_json_schema(schema) {
        Value::Object(root) => root,
        other => return vec![format!("the schema is not an object: {other}")],
    };
    if let Some(components) = doc.get("components") {
        root.insert("components".into(), to_json_schema(components));
    }
    let validator = match jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .with_format("date-time-rfc-2822", is_rfc2822)
        .build(&Value::Object(root))
    {
        Ok(validator) => validator,
        Err(e) => return vec![format!("the schema is not valid JSON Schema: {e}")],
    };
    problems.extend(validator.iter_errors(&value).map(|e| {
        let at = e
            .instance_path()
            .as_str()
            .trim_start_matches('/')
            .replace('/', ".");
        if at.is_empty() {
            e.to_string()
        } else {
            format!("{at}: {e}")
        }
    }));
    problems
}

/// A form body's fields are strings on the wire: each is read as the type its property's
/// schema declares (`"3"` as an integer), so the validator can check it. A field that is not a
/// string is a problem of its own and is left out.
fn read_form(doc: &Value, schema: &Value, value: &Value, problems: &mut Vec<String>) -> Value {
    let Value::Object(fields) = value else {
        return value.clone();
    };
    let properties = oas::flatten(doc, schema)
        .ok()
        .and_then(|s| s.get("properties").cloned())
        .unwrap_or(Value::Null);
    let mut read = Map::new();
    for (name, field) in fields {
        let Value::String(text) = field else {
            problems.push(format!("{name}: a form field is a string, found {field}"));
            continue;
        };
        let ty = properties
            .get(name)
            .and_then(|p| oas::flatten(doc, p).ok())
            .and_then(|p| p.get("type").and_then(Value::as_str).map(str::to_owned));
        let typed = match ty.as_deref() {
            Some("integer") => text.parse::<i64>().ok().map(Value::from),
            Some("number") => text.parse::<f64>().ok().map(Value::from),
            Some("boolean") => text.parse::<bool>().ok().map(Value::from),
            _ => Some(field.clone()),
        };
        match typed {
            Some(typed) => {
                read.insert(name.clone(), typed);
            }
            None => problems.push(format!(
                "{name}: {field} is not a form value of type {}",
                ty.unwrap_or_default()
            )),
        }
    }
    Value::Object(read)
}

/// Turns an OpenAPI 3.0 schema (or any tree holding schemas, such as `components`) into JSON
/// Schema draft 7. Objects are converted wherever they are: `nullable` and the boolean
/// exclusive bounds mean nothing else in an OpenAPI document.
pub fn to_json_schema(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        Value::Object(map) => {
            // Keywords beside a `$ref` are ignored in OpenAPI 3.0 (and in draft 7): `nullable`
            // there must not become an `if`.
            if map.contains_key("$ref") {
                return Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), to_json_schema(v)))
                        .collect(),
                );
            }
            let mut out = Map::new();
            let mut nullable = false;
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("nullable", Value::Bool(b)) => nullable = *b,
                    ("exclusiveMinimum" | "exclusiveMaximum", Value::Bool(_)) => {}
                    _ => {
                        out.insert(key.clone(), to_json_schema(v));
                    }
                }
            }
            for (flag, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if map.get(flag) == Some(&Value::Bool(true))
                    && let Some(limit) = out.remove(bound)
                {
                    out.insert(flag.into(), limit);
                }
            }
            if !nullable {
                return Value::Object(out);
            }
            let mut wrapped = Map::new();
            wrapped.insert("if".into(), serde_json::json!({"type": "null"}));
            wrapped.insert("then".into(), Value::Bool(true));
            wrapped.insert("else".into(), Value::Object(out));
            Value::Object(wrapped)
        }
        other => other.clone(),
    }
}

/// Twilio's `date-time-rfc-2822` format: the shape of an RFC 2822 date-time, optional day of
/// week, day, month, year, time with optional seconds, numeric zone
/// (`Wed, 18 Dec 2019 20:02:01 +0000`).
pub fn is_rfc2822(text: &str) -> bool {
    static SHAPE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?",
            r"(0?[1-9]|[12][0-9]|3[01]) ",
            r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ",
            r"[0-9]{4} ",
            r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::(?:[0-5][0-9]|60))? ",
            r"[+-](?:[01][0-9]|2[0-3])[0-5][0-9]$",
        ))
        .expect("a valid regular expression")
    });
    SHAPE.is_match(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rfc2822_shapes() {
        assert!(is_rfc2822("Wed, 18 Dec 2019 20:02:01 +0000"));
        assert!(is_rfc2822("18 Dec 2019 20:02 -0530"));
        assert!(!is_rfc2822("2019-12-18T20:02:01Z"));
        assert!(!is_rfc2822("Wed, 32 Dec 2019 20:02:01 +0000"));
        assert!(!is_rfc2822("Wed, 18 Dec 2019 24:02:01 +0000"));
        assert!(!is_rfc2822("Wed, 18 Dec 2019 20:02:01"));
    }

    #[test]
    fn converts_openapi_keywords() {
        assert_eq!(
            to_json_schema(&json!({"type": "string", "nullable": true, "enum": ["a"]})),
            json!({"if": {"type": "null"}, "then": true, "else": {"type": "string", "enum": ["a"]}})
        );
        assert_eq!(
            to_json_schema(
                &json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true,
                "maximum": 9, "exclusiveMaximum": false})
            ),
            json!({"type": "integer", "exclusiveMinimum": 0, "maximum": 9})
        );
        // Beside a `$ref`, `nullable` is ignored, as OpenAPI 3.0 says.
        assert_eq!(
            to_json_schema(&json!({"$ref": "#/x", "nullable": true})),
            json!({"$ref": "#/x", "nullable": true})
        );
        assert_eq!(
            to_json_schema(&json!({"properties": {"a": {"type": "string", "nullable": false}}})),
            json!({"properties": {"a": {"type": "string"}}})
        );
    }

    #[test]
    fn checks_examples() {
        let doc = json!({"components": {"schemas": {
            "Sid": {"type": "string", "pattern": "^AC[0-9a-f]{32}$", "minLength": 34, "maxLength": 34},
            "Date": {"type": "string", "format": "date-time-rfc-2822"},
        }}});
        let schema = json!({
            "type": "object",
            "required": ["sid", "n"],
            "properties": {
                "sid": {"$ref": "#/components/schemas/Sid"},
                "n": {"type": "integer", "minimum": 1, "exclusiveMinimum": true},
                "m": {"type": "string", "enum": ["GET", "POST"]},
                "d": {"allOf": [{"$ref": "#/components/schemas/Date"}], "nullable": true},
                "e": {"type": "string"},
                "list": {"type": "array", "items": {"type": "boolean"}},
            }
        });
        let ok = json!({"sid": format!("AC{}", "a".repeat(32)), "n": 3, "m": "GET", "d": null, "list": [true]});
        assert_eq!(
            validate(&doc, &schema, &ok, Wire::Json),
            Vec::<String>::new()
        );
        let bad =
            json!({"sid": "AC1", "n": 1, "m": "PUT", "d": "yesterday", "e": null, "list": [1]});
        let mut problems = validate(&doc, &schema, &bad, Wire::Json);
        problems.sort();
        assert_eq!(
            problems,
            [
                "d: \"yesterday\" is not a \"date-time-rfc-2822\"",
                "e: null is not of type \"string\"",
                "list.0: 1 is not of type \"boolean\"",
                "m: \"PUT\" is not one of \"GET\" or \"POST\"",
                "n: 1 is less than or equal to the minimum of 1",
                "sid: \"AC1\" does not match \"^AC[0-9a-f]{32}$\"",
                "sid: \"AC1\" is shorter than 34 characters",
            ]
        );
        let missing = validate(&doc, &schema, &json!({"n": 2}), Wire::Json);
        assert_eq!(missing, ["\"sid\" is a required property"]);
    }

    #[test]
    fn form_fields_are_strings() {
        let doc = json!({});
        let schema = json!({"type": "object", "properties": {
            "Content": {"type": "string"}, "Count": {"type": "integer", "maximum": 5}, "Flag": {"type": "boolean"}
        }});
        let ok = json!({"Content": "{}", "Count": "3", "Flag": "true"});
        assert_eq!(
            validate(&doc, &schema, &ok, Wire::Form),
            Vec::<String>::new()
        );
        let bad = json!({"Content": 1, "Count": "three", "Flag": "yes"});
        assert_eq!(
            validate(&doc, &schema, &bad, Wire::Form),
            [
                "Content: a form field is a string, found 1",
                "Count: \"three\" is not a form value of type integer",
                "Flag: \"yes\" is not a form value of type boolean",
            ]
        );
        // Read as its type, the value is then checked by the schema.
        assert_eq!(
            validate(&doc, &schema, &json!({"Count": "7"}), Wire::Form),
            ["Count: 7 is greater than the maximum of 5"]
        );
    }
}
