//! A callback's body, read once: its kind decided by one content-type rule, its fields parsed
//! once, for the signature and for the event alike.
//!
//! # The rule
//!
//! | body | read as |
//! | --- | --- |
//! | empty | no fields (a `GET` subscription's fields are in the signed query string) |
//! | `Content-Type: application/x-www-form-urlencoded`, or no `Content-Type` | form fields |
//! | `Content-Type: application/json` | the top-level fields of a JSON object |
//! | any other `Content-Type` (`+json` types included) | nothing: no parameter signature covers it, and it is no event |
//!
//! Why: Twilio posts webhooks as forms, and documents that a call-message callback endpoint
//! "must be able to accept application/json"
//! (<https://www.twilio.com/docs/voice/api/userdefinedmessagesubscription-resource>). Twilio's own
//! receivers of these callbacks (twilio/twilio-voice.js `tests/relay/server.js`) read them with
//! Express's `json()` and `urlencoded()` parsers, which take `application/json` and
//! `application/x-www-form-urlencoded` only, and verify with twilio-node's
//! `validateExpressRequest`, which signs the fields those parsers produced. A body without a
//! `Content-Type` is read as a form, as every HTML form post and twilio-python's validator do;
//! a JSON text read that way yields fields no Twilio signature covers, so it fails closed. With
//! `bodySHA256` in the URL the signature covers the bytes, whatever they are; the event is then
//! read by the same rule.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use super::error::{Unverifiable, bounded};
use super::params::{Param, form_params};

/// A field's value as it arrived: form fields and JSON strings are text (borrowed from the body
/// when they needed no decoding), any other JSON value is kept whole.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldValue<'a> {
    Text(Cow<'a, str>),
    Json(serde_json::Value),
}

/// One field, in the order the body has it.
pub(crate) type Field<'a> = (Cow<'a, str>, FieldValue<'a>);

/// Why a body announced as JSON has no fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NotAnObject {
    /// Not valid JSON; what the parser said.
    Invalid(String),
    /// Valid JSON of another kind, e.g. `an array`.
    Kind(&'static str),
}

/// A callback's body as [the rule](self#the-rule) reads it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Body<'a> {
    /// No body.
    Empty,
    /// A form's fields.
    Form(Vec<Param<'a>>),
    /// A JSON object's top-level fields, or why the body is not one.
    Json(Result<Vec<Field<'a>>, NotAnObject>),
    /// A media type the rule does not read (at most 64 characters of the header).
    Other(String),
}

impl<'a> Body<'a> {
    /// Reads `body` by its `Content-Type` header (raw bytes, as the request carried them).
    pub(crate) fn read(content_type: Option<&[u8]>, body: &'a [u8]) -> Self {
        if body.is_empty() {
            return Body::Empty;
        }
        let Some(content_type) = content_type else {
            return Body::Form(form_params(body));
        };
        let content_type = String::from_utf8_lossy(content_type);
        if is_media_type(&content_type, "application/x-www-form-urlencoded") {
            Body::Form(form_params(body))
        } else if is_media_type(&content_type, "application/json") {
            Body::Json(json_fields(body))
        } else {
            Body::Other(bounded(&content_type))
        }
    }

    /// The parameters a signature over the URL and fields covers, borrowed from this reading:
    /// form fields, or a JSON object's fields when every value is a string.
    pub(crate) fn signed_params(&self) -> Result<Vec<Param<'_>>, Unverifiable> {
        match self {
            Body::Empty => Ok(Vec::new()),
            Body::Form(params) => Ok(params.iter().map(|(n, v)| (borrow(n), borrow(v))).collect()),
            Body::Json(Err(NotAnObject::Invalid(_))) => Err(Unverifiable::NotJson),
            Body::Json(Err(NotAnObject::Kind(kind))) => Err(Unverifiable::NotAnObject { kind }),
            Body::Json(Ok(fields)) => {
                let mut params = Vec::with_capacity(fields.len());
                for (name, value) in fields {
                    match value {
                        FieldValue::Text(text) => params.push((borrow(name), borrow(text))),
                        FieldValue::Json(value) => {
                            return Err(Unverifiable::NonStringField {
                                field: bounded(name),
                                kind: kind_of(value),
                            });
                        }
                    }
                }
                // JSON parsers keep one of repeated names, so the other would be unsigned.
                let mut names: Vec<&str> = params.iter().map(|(n, _)| &**n).collect();
                names.sort_unstable();
                if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
                    return Err(Unverifiable::DuplicateField {
                        field: bounded(pair[0]),
                    });
                }
                Ok(params)
            }
            Body::Other(content_type) => Err(Unverifiable::ContentType {
                content_type: content_type.clone(),
            }),
        }
    }
}

/// A field's text, borrowed from the reading.
fn borrow(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

/// Whether a `Content-Type` value names `media_type` (parameters and case ignored).
pub(crate) fn is_media_type(content_type: &str, media_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(media_type)
}

/// What kind of JSON value `value` is, as the errors name it.
pub(crate) fn kind_of(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The top-level fields of a JSON object, every one kept (repeated names too: whoever reads
/// them decides), strings borrowed when they had no escapes.
pub(crate) fn json_fields(body: &[u8]) -> Result<Vec<Field<'_>>, NotAnObject> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    // The visitor leaves the kind here; serde's own error only says where parsing stopped.
    let mut kind = None;
    deserializer
        .deserialize_any(Object { kind: &mut kind })
        .and_then(|fields| deserializer.end().map(|()| fields))
        .map_err(|e| match kind {
            Some(kind) => NotAnObject::Kind(kind),
            None => NotAnObject::Invalid(e.to_string()),
        })
}

/// Visits a JSON object; anything else is refused, with its kind left behind.
struct Object<'r> {
    kind: &'r mut Option<&'static str>,
}

impl Object<'_> {
    fn not_an_object<E: de::Error, T>(self, kind: &'static str) -> Result<T, E> {
        *self.kind = Some(kind);
        Err(E::custom(format_args!("{kind}, not an object")))
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = Vec<Field<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(name) = map.next_key_seed(Text)? {
            fields.push((name, map.next_value_seed(Value)?));
        }
        Ok(fields)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        self.not_an_object("an array")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        self.not_an_object("a string")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        self.not_an_object("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        self.not_an_object("a number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        self.not_an_object("a number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.not_an_object("a number")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.not_an_object("null")
    }
}

/// A string, borrowed when it had no escapes. (`serde_json` reading a slice only ever calls
/// `visit_borrowed_str` or `visit_str`, so there is no `visit_string`: serde's default would
/// copy, and a method no input reaches only hides mutants no test can catch.)
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A field's value: its text, or the JSON value it is instead.
struct Value;

impl<'de> DeserializeSeed<'de> for Value {
    type Value = FieldValue<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = FieldValue<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(FieldValue::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(FieldValue::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(FieldValue::Json(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(FieldValue::Json(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(FieldValue::Json(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(FieldValue::Json(v.into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FieldValue::Json(serde_json::Value::Null))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(FieldValue::Json(value))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(FieldValue::Json(value))
    }
}

#[cfg(test)]
mod tests {
    use super::super::params::canonical;
    use super::*;

    fn json(body: &[u8]) -> Body<'_> {
        Body::read(Some(b"application/json"), body)
    }

    fn text(body: &Body<'_>) -> String {
        String::from_utf8(canonical(body.signed_params().unwrap())).unwrap()
    }

    #[test]
    fn the_content_type_decides_by_one_rule() {
        let form = b"a=1";
        assert!(matches!(Body::read(None, form), Body::Form(_)));
        assert!(matches!(
            Body::read(
                Some(b"Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
                form
            ),
            Body::Form(_)
        ));
        assert!(matches!(
            Body::read(Some(b"application/json; charset=utf-8"), b"{}"),
            Body::Json(Ok(_))
        ));
        // No sniffing: without a JSON content type, JSON text is a (useless) form.
        assert!(matches!(Body::read(None, b"{}"), Body::Form(_)));
        assert_eq!(
            Body::read(Some(b"application/vnd.twilio+json"), b"{}"),
            Body::Other("application/vnd.twilio+json".into())
        );
        assert_eq!(Body::read(Some(b"text/plain"), b""), Body::Empty);
    }

    #[test]
    fn flat_json_objects_become_parameters() {
        let body = json(br#" {"b":"2","a":"x\"y","c":""} "#);
        let Body::Json(Ok(fields)) = &body else {
            panic!("{body:?}")
        };
        assert!(
            matches!(fields[0].1, FieldValue::Text(Cow::Borrowed(_))),
            "no copy without escapes"
        );
        assert_eq!(text(&body), "ax\"yb2c");
        assert_eq!(json(b"{}").signed_params().unwrap(), vec![]);
    }

    #[test]
    fn other_values_are_kept_for_the_event() {
        let body = json(br#"{"n":1,"o":{"k":[1,"2"]},"z":null}"#);
        assert_eq!(
            body,
            Body::Json(Ok(vec![
                ("n".into(), FieldValue::Json(1.into())),
                (
                    "o".into(),
                    FieldValue::Json(serde_json::json!({"k": [1, "2"]}))
                ),
                ("z".into(), FieldValue::Json(serde_json::Value::Null)),
            ]))
        );
    }

    #[test]
    fn json_this_scheme_cannot_cover_is_refused_with_the_reason() {
        let cases: [(&[u8], Unverifiable); 9] = [
            (
                br#"{"a":"1","n":1}"#,
                Unverifiable::NonStringField {
                    field: "n".into(),
                    kind: "a number",
                },
            ),
            (
                br#"{"x":null}"#,
                Unverifiable::NonStringField {
                    field: "x".into(),
                    kind: "null",
                },
            ),
            (
                br#"{"x":true}"#,
                Unverifiable::NonStringField {
                    field: "x".into(),
                    kind: "a boolean",
                },
            ),
            (
                br#"{"x":{"y":"z"}}"#,
                Unverifiable::NonStringField {
                    field: "x".into(),
                    kind: "an object",
                },
            ),
            (
                br#"{"x":["1"]}"#,
                Unverifiable::NonStringField {
                    field: "x".into(),
                    kind: "an array",
                },
            ),
            (br#"["a"]"#, Unverifiable::NotAnObject { kind: "an array" }),
            (br#""a""#, Unverifiable::NotAnObject { kind: "a string" }),
            (
                br#"{"a":"1","a":"2"}"#,
                Unverifiable::DuplicateField { field: "a".into() },
            ),
            (br#"{"a":"1"} x"#, Unverifiable::NotJson),
        ];
        for (body, expected) in cases {
            assert_eq!(
                json(body).signed_params(),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for not_json in [&b"{"[..], b"{\"a\":}", b"\xff"] {
            assert_eq!(json(not_json).signed_params(), Err(Unverifiable::NotJson));
        }
        assert_eq!(
            Body::read(Some(b"text/plain"), b"x").signed_params(),
            Err(Unverifiable::ContentType {
                content_type: "text/plain".into()
            })
        );
    }
}
