//! A small validator for the part of JSON Schema (as OpenAPI 3.0 spells it) that the fragment
//! uses: `type`, `properties`, `required`, `enum`, `pattern`, `minLength`/`maxLength`,
//! `nullable`, `allOf`, `items`, local `$ref`s and `format: date-time-rfc-2822`. Other
//! keywords and formats are not checked. As in JSON Schema, properties a schema does not
//! declare are allowed.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::oas;

/// How the example travels: as JSON, or as a form body whose fields are all strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Json,
    /// An `application/x-www-form-urlencoded` body: an object whose fields are strings, read
    /// as the type their schema declares.
    Form,
}

/// Validates `value` against `schema` (which may be a `$ref` into `doc`). Returns one message
/// per problem, each starting with the place in the value (`date_created: ...`).
pub fn validate(doc: &Value, schema: &Value, value: &Value, wire: Wire) -> Vec<String> {
    let mut v = Validator {
        doc,
        errors: Vec::new(),
    };
    let encoding = if wire == Wire::Form {
        Encoding::FormBody
    } else {
        Encoding::Json
    };
    v.check(schema, value, "", encoding);
    v.errors
}

/// How the value being checked is encoded on the wire.
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Json,
    FormBody,
    FormField,
}

struct Validator<'a> {
    doc: &'a Value,
    errors: Vec<String>,
}

impl Validator<'_> {
    fn err(&mut self, at: &str, message: String) {
        self.errors.push(if at.is_empty() {
            message
        } else {
            format!("{at}: {message}")
        });
    }

    fn check(&mut self, schema: &Value, value: &Value, at: &str, encoding: Encoding) {
        let schema = match oas::resolve(self.doc, schema) {
            Ok(s) => s,
            Err(e) => return self.err(at, e),
        };
        let Some(s) = schema.as_object() else {
            return self.err(at, "the schema is not an object".into());
        };

        // A form field is a string on the wire: read it as the type its schema declares.
        let read;
        let value = if encoding == Encoding::FormField {
            let Value::String(text) = value else {
                return self.err(at, format!("a form field is a string, found {value}"));
            };
            let ty = oas::flatten(self.doc, schema)
                .ok()
                .and_then(|f| f.get("type").cloned());
            read = match ty.as_ref().and_then(Value::as_str) {
                Some("integer") => text.parse::<i64>().ok().map(Value::from),
                Some("number") => text.parse::<f64>().ok().map(Value::from),
                Some("boolean") => text.parse::<bool>().ok().map(Value::from),
                _ => Some(value.clone()),
            };
            match &read {
                Some(v) => v,
                None => {
                    return self.err(
                        at,
                        format!(
                            "{value} is not a form value of type {}",
                            oas::show(ty.as_ref())
                        ),
                    );
                }
            }
        } else {
            value
        };
        let encoding = if encoding == Encoding::FormField {
            Encoding::Json
        } else {
            encoding
        };

        let ty = s.get("type").and_then(Value::as_str);
        if value.is_null() {
            if s.get("nullable") == Some(&Value::Bool(true)) {
                return;
            }
            if ty.is_some() {
                return self.err(at, "null, but the schema is not nullable".into());
            }
        }
        if let Some(Value::Array(members)) = s.get("allOf") {
            for member in members {
                self.check(member, value, at, encoding);
            }
        }
        if let Some(ty) = ty
            && !has_type(value, ty)
        {
            return self.err(at, format!("expected type {ty}, found {value}"));
        }
        if let Some(Value::Array(options)) = s.get("enum")
            && !options.contains(value)
        {
            self.err(
                at,
                format!("{value} is not one of {}", oas::show(s.get("enum"))),
            );
        }
        match value {
            Value::String(text) => self.string(s, text, at),
            Value::Object(map) => {
                let child = if encoding == Encoding::FormBody {
                    Encoding::FormField
                } else {
                    Encoding::Json
                };
                if let Some(Value::Object(props)) = s.get("properties") {
                    for (name, sub) in props {
                        if let Some(v) = map.get(name) {
                            self.check(sub, v, &join(at, name), child);
                        }
                    }
                }
                for name in s
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = name.as_str().filter(|n| !map.contains_key(*n)) {
                        self.err(at, format!("missing required property {name}"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}[{i}]"), Encoding::Json);
                    }
                }
            }
            _ => {}
        }
    }

    fn string(&mut self, s: &serde_json::Map<String, Value>, text: &str, at: &str) {
        let chars = text.chars().count() as u64;
        if let Some(min) = s
            .get("minLength")
            .and_then(Value::as_u64)
            .filter(|min| chars < *min)
        {
            self.err(at, format!("{text:?} is shorter than minLength {min}"));
        }
        if let Some(max) = s
            .get("maxLength")
            .and_then(Value::as_u64)
            .filter(|max| chars > *max)
        {
            self.err(at, format!("{text:?} is longer than maxLength {max}"));
        }
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
            match Regex::new(pattern) {
                Ok(re) if !re.is_match(text) => {
                    self.err(at, format!("{text:?} does not match pattern {pattern}"))
                }
                Ok(_) => {}
                Err(e) => self.err(
                    at,
                    format!("pattern {pattern} is not a valid regular expression: {e}"),
                ),
            }
        }
        if s.get("format").and_then(Value::as_str) == Some("date-time-rfc-2822")
            && !is_rfc2822(text)
        {
            self.err(at, format!("{text:?} is not an RFC 2822 date-time (like \"Wed, 18 Dec 2019 20:02:01 +0000\")"));
        }
    }
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    }
}

/// The shape of an RFC 2822 date-time: optional day of week, day, month, year, time with
/// optional seconds, numeric zone (`Wed, 18 Dec 2019 20:02:01 +0000`).
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
    fn checks_the_subset() {
        let doc = json!({"components": {"schemas": {
            "Sid": {"type": "string", "pattern": "^AC[0-9a-f]{32}$", "minLength": 34, "maxLength": 34},
            "Date": {"type": "string", "format": "date-time-rfc-2822"},
        }}});
        let schema = json!({
            "type": "object",
            "required": ["sid", "n"],
            "properties": {
                "sid": {"$ref": "#/components/schemas/Sid"},
                "n": {"type": "integer"},
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
        let bad = json!({"sid": "AC1", "m": "PUT", "d": "yesterday", "e": null, "list": [1]});
        assert_eq!(
            validate(&doc, &schema, &bad, Wire::Json),
            [
                "d: \"yesterday\" is not an RFC 2822 date-time (like \"Wed, 18 Dec 2019 20:02:01 +0000\")",
                "e: null, but the schema is not nullable",
                "list[0]: expected type boolean, found 1",
                "m: \"PUT\" is not one of [GET, POST]",
                "sid: \"AC1\" is shorter than minLength 34",
                "sid: \"AC1\" does not match pattern ^AC[0-9a-f]{32}$",
                "missing required property n",
            ]
        );
    }

    #[test]
    fn form_fields_are_strings() {
        let doc = json!({});
        let schema = json!({"type": "object", "properties": {
            "Content": {"type": "string"}, "Count": {"type": "integer"}, "Flag": {"type": "boolean"}
        }});
        let ok = json!({"Content": "{}", "Count": "3", "Flag": "true"});
        assert_eq!(
            validate(&doc, &schema, &ok, Wire::Form),
            Vec::<String>::new()
        );
        let bad = json!({"Content": 1, "Count": "three"});
        assert_eq!(
            validate(&doc, &schema, &bad, Wire::Form),
            [
                "Content: a form field is a string, found 1",
                "Count: \"three\" is not a form value of type integer"
            ]
        );
    }
}
