//! The callback Twilio posts to a subscription's `Callback` URL for each message a call's client
//! SDK sends. Its wire encoding is not documented (JSON object or form, sequence number as a
//! string or a number), so both are accepted, and unknown fields are ignored. Which one a body
//! is, is decided by the same rule as its signature ([`Body`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

use super::body::{self, Body, Field, FieldValue, NotAnObject, kind_of};
use super::params::form_params;
use crate::sid::{AccountSid, CallSid, MessageSid};

const CONTENT_TYPE: &str = "ContentType";
const CONTENT: &str = "Content";
const SEQUENCE_NUMBER: &str = "SequenceNumber";
const CALL_SID: &str = "CallSid";
const TIMESTAMP: &str = "Timestamp";
const ACCOUNT_SID: &str = "AccountSid";
const SID: &str = "Sid";

/// One message sent by a call's client SDK, as Twilio delivers it to your callback.
///
/// `Debug` shows the content's length, not the content: it is your users' data.
///
/// `Serialize` writes the event as Twilio sends it: Twilio's field names, every value a string
/// (`SequenceNumber` too, `Timestamp` in RFC 2822), so what one worker serializes another reads
/// back with `Deserialize` or [`CallMessageEvent::from_json`]. `Deserialize` accepts what
/// [`from_json`](Self::from_json) accepts: a sequence number as a string or a number, `Content`
/// as JSON text (or embedded JSON, kept as text), unknown fields ignored. Reading a request
/// Twilio sent is still [`parse`](Self::parse)'s job, after the signature is checked.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CallMessageEvent {
    /// `ContentType`: the media type of [`content`](Self::content) (`application/json` today).
    pub content_type: String,
    /// `Content`: the message as sent by the client SDK, as raw JSON text.
    #[serde(deserialize_with = "content_text")]
    #[cfg_attr(feature = "schemars", schemars(with = "ContentSchema"))]
    pub content: String,
    /// `SequenceNumber`: the order of the call's messages, from 0.
    #[serde(with = "sequence_number_text")]
    #[cfg_attr(feature = "schemars", schemars(with = "SequenceNumberSchema"))]
    pub sequence_number: u64,
    /// `CallSid`: the call the message was sent in.
    pub call_sid: CallSid,
    /// `AccountSid`: the account that owns the call.
    pub account_sid: AccountSid,
    /// `Sid`: the message's own SID (`KX…`).
    #[serde(rename = "Sid")]
    pub message_sid: MessageSid,
    /// `Timestamp`: when the message was sent (RFC 2822 on the wire).
    #[serde(with = "crate::date::rfc2822")]
    #[cfg_attr(feature = "schemars", schemars(with = "crate::date::Rfc2822DateTime"))]
    pub timestamp: OffsetDateTime,
}

impl fmt::Debug for CallMessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallMessageEvent")
            .field("content_type", &self.content_type)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("sequence_number", &self.sequence_number)
            .field("call_sid", &self.call_sid)
            .field("account_sid", &self.account_sid)
            .field("message_sid", &self.message_sid)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// Why a callback body is not a call message event. Values are never repeated in the message:
/// they are user data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The body is not a JSON object (or not JSON at all).
    #[error("the body is not a JSON object: {reason}")]
    NotJson {
        /// What the JSON parser said.
        reason: String,
    },
    /// The body's `Content-Type` is neither a form nor JSON (`application/json`).
    #[error("content type {content_type:?} is neither a form nor JSON")]
    ContentType {
        /// The `Content-Type` header (at most 64 characters of it).
        content_type: String,
    },
    /// A documented field is absent.
    #[error("field `{field}` is missing")]
    Missing {
        /// The field's name on the wire, e.g. `CallSid`.
        field: &'static str,
    },
    /// A documented field appears more than once.
    #[error("field `{field}` appears more than once")]
    Duplicate {
        /// The field's name on the wire.
        field: &'static str,
    },
    /// A documented field has a value of the wrong shape.
    #[error("field `{field}` is malformed: {reason}")]
    Invalid {
        /// The field's name on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl EventError {
    /// The wire name of the field at fault, if the error is about one field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            EventError::NotJson { .. } | EventError::ContentType { .. } => None,
            EventError::Missing { field }
            | EventError::Duplicate { field }
            | EventError::Invalid { field, .. } => Some(field),
        }
    }

    fn invalid(field: &'static str, reason: impl fmt::Display) -> Self {
        EventError::Invalid {
            field,
            reason: reason.to_string(),
        }
    }
}

impl CallMessageEvent {
    /// Parses a JSON object body (whatever its `Content-Type`).
    pub fn from_json(body: &[u8]) -> Result<Self, EventError> {
        Self::from_body(Body::Json(body::json_fields(body)))
    }

    /// Parses an `application/x-www-form-urlencoded` body (or a `GET` request's query string).
    pub fn from_form(body: &[u8]) -> Result<Self, EventError> {
        Self::from_body(Body::Form(form_params(body)))
    }

    /// Parses a body by its `Content-Type`, by the rule its signature is checked with: a form
    /// (`application/x-www-form-urlencoded`, or no content type), or a JSON object
    /// (`application/json`); any other content type is [`EventError::ContentType`].
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, EventError> {
        Self::from_body(Body::read(content_type.map(str::as_bytes), body))
    }

    /// The event in a body already read (by the verifier, in the receiver).
    pub(crate) fn from_body(body: Body<'_>) -> Result<Self, EventError> {
        let fields = match body {
            Body::Empty => Vec::new(),
            Body::Form(params) => params
                .into_iter()
                .map(|(name, value)| (name, FieldValue::Text(value)))
                .collect(),
            Body::Json(Ok(fields)) => fields,
            Body::Json(Err(NotAnObject::Kind(kind))) => {
                return Err(EventError::NotJson {
                    reason: format!("expected an object, got {kind}"),
                });
            }
            Body::Json(Err(NotAnObject::Invalid(reason))) => {
                return Err(EventError::NotJson { reason });
            }
            Body::Other(content_type) => return Err(EventError::ContentType { content_type }),
        };
        Self::from_fields(fields)
    }

    /// Deserializes [`content`](Self::content) into your message type.
    pub fn content_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.content)
    }

    fn from_fields<'a>(mut fields: Vec<Field<'a>>) -> Result<Self, EventError> {
        let mut take = |field: &'static str| -> Result<FieldValue<'a>, EventError> {
            let mut found = None;
            for (name, value) in fields.iter_mut() {
                if name == field {
                    if found.is_some() {
                        return Err(EventError::Duplicate { field });
                    }
                    found = Some(std::mem::replace(value, FieldValue::Json(Value::Null)));
                }
            }
            found.ok_or(EventError::Missing { field })
        };
        Ok(CallMessageEvent {
            content_type: text(CONTENT_TYPE, take(CONTENT_TYPE)?)?.into_owned(),
            content: match take(CONTENT)? {
                FieldValue::Text(text) => text.into_owned(),
                // An undocumented but plausible encoding: the message embedded as JSON.
                FieldValue::Json(Value::Null) => {
                    return Err(EventError::invalid(CONTENT, "expected JSON text, got null"));
                }
                FieldValue::Json(value) => value.to_string(),
            },
            sequence_number: sequence_number(take(SEQUENCE_NUMBER)?)?,
            call_sid: text(CALL_SID, take(CALL_SID)?)?
                .parse()
                .map_err(|e| EventError::invalid(CALL_SID, e))?,
            account_sid: text(ACCOUNT_SID, take(ACCOUNT_SID)?)?
                .parse()
                .map_err(|e| EventError::invalid(ACCOUNT_SID, e))?,
            message_sid: text(SID, take(SID)?)?
                .parse()
                .map_err(|e| EventError::invalid(SID, e))?,
            timestamp: crate::date::parse(&text(TIMESTAMP, take(TIMESTAMP)?)?).map_err(|e| {
                EventError::invalid(TIMESTAMP, format_args!("expected an RFC 2822 date: {e}"))
            })?,
        })
    }
}

fn text<'a>(field: &'static str, raw: FieldValue<'a>) -> Result<Cow<'a, str>, EventError> {
    match raw {
        FieldValue::Text(text) => Ok(text),
        FieldValue::Json(value) => Err(EventError::invalid(
            field,
            format_args!("expected a string, got {}", kind_of(&value)),
        )),
    }
}

fn sequence_number(raw: FieldValue<'_>) -> Result<u64, EventError> {
    let parsed = match &raw {
        FieldValue::Text(text) => text.trim().parse::<u64>().ok(),
        FieldValue::Json(Value::Number(n)) => n.as_u64(),
        FieldValue::Json(_) => None,
    };
    parsed.ok_or_else(|| EventError::invalid(SEQUENCE_NUMBER, "expected a non-negative integer"))
}

/// serde for `Content`: JSON text, or (as in [`CallMessageEvent::from_json`]) a JSON value kept
/// as its text.
fn content_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match <Value as serde::Deserialize>::deserialize(d)? {
        Value::String(text) => Ok(text),
        Value::Null => Err(serde::de::Error::custom("expected JSON text, got null")),
        value => Ok(value.to_string()),
    }
}

/// serde for `SequenceNumber`: written as text, as Twilio documents it (its docs' example and
/// its Voice SDK end-to-end tests show `"0"`, `"1"`); read from text or a number, as in
/// [`CallMessageEvent::from_json`].
mod sequence_number_text {
    use std::fmt;

    pub(super) fn serialize<S: serde::Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(n)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Visitor)
    }

    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer, as text or a number")
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::custom("expected a non-negative integer"))
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
            text.trim()
                .parse()
                .map_err(|_| E::custom("expected a non-negative integer"))
        }
    }
}

/// The schema of `Content`: a string holding a JSON document.
#[cfg(feature = "schemars")]
enum ContentSchema {}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for ContentSchema {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JsonText".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "contentMediaType": "application/json"})
    }
}

/// The schema of `SequenceNumber`: digits as text when serialized; when deserialized, a
/// number is accepted too.
#[cfg(feature = "schemars")]
enum SequenceNumberSchema {}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for SequenceNumberSchema {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SequenceNumber".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        if generator.contract().is_serialize() {
            schemars::json_schema!({"type": "string", "pattern": "^[0-9]+$"})
        } else {
            schemars::json_schema!({
                "type": ["string", "integer"],
                "pattern": "^[0-9]+$",
                "minimum": 0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"ContentType":"application/json","Content":"{\"k\":1}","SequenceNumber":"0","CallSid":"CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Timestamp":"Wed, 18 Dec 2019 20:02:01 +0000","AccountSid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;

    #[test]
    fn debug_hides_content() {
        let event = CallMessageEvent::from_json(JSON.as_bytes()).unwrap();
        let debug = format!("{event:?}");
        assert!(debug.contains("<7 bytes>"), "{debug}");
        assert!(!debug.contains("\"k\""), "{debug}");
    }

    #[test]
    fn duplicate_form_fields_are_rejected() {
        let body =
            "ContentType=application%2Fjson&Content=%7B%7D&SequenceNumber=1&SequenceNumber=2";
        let err = CallMessageEvent::from_form(body.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            EventError::Duplicate {
                field: SEQUENCE_NUMBER
            }
        );
        assert_eq!(err.field(), Some(SEQUENCE_NUMBER));
    }

    #[test]
    fn embedded_json_content_is_kept_as_text() {
        let body = JSON.replace(r#""{\"k\":1}""#, r#"{"k":1}"#);
        let event = CallMessageEvent::from_json(body.as_bytes()).unwrap();
        assert_eq!(event.content, r#"{"k":1}"#);
    }
}
