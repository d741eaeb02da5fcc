//! The parameters a signature covers, and the text they add to the signed string.
//!
//! Twilio signs the URL followed by the request's parameters: names sorted, each name's
//! distinct values sorted, each written as `name` then `value` with no separator and no
//! encoding (twilio-python 9.13 `RequestValidator.compute_signature`, twilio-node 6.2
//! `getExpectedTwilioSignature`). The parameters are a form body's fields, or the top-level
//! fields of a JSON object body: twilio-node's `validateExpressRequest` signs whatever
//! `express.json()` or `express.urlencoded()` parsed, and Twilio's Voice SDK end-to-end relay
//! receives call-message callbacks that way.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::error::Unverifiable;

/// One parameter, borrowed from the body where it needed no decoding.
pub(crate) type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The fields of an `application/x-www-form-urlencoded` body (`+` is a space, invalid UTF-8 is
/// replaced, as every form parser the helper libraries rely on does).
pub(crate) fn form_params(body: &[u8]) -> Vec<Param<'_>> {
    url::form_urlencoded::parse(body).collect()
}

/// The top-level fields of a JSON object whose every value is a string. Anything else cannot be
/// covered by the parameter scheme without guessing how another language prints it (a number,
/// `null`, a nested object), so it is refused with the reason.
pub(crate) fn json_params(body: &[u8]) -> Result<Vec<Param<'_>>, Unverifiable> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    // The visitor leaves its reason here; serde's own error only says where parsing stopped.
    let mut refusal = None;
    let mut fields = deserializer
        .deserialize_any(FlatObject {
            refusal: &mut refusal,
        })
        .and_then(|fields| deserializer.end().map(|()| fields))
        .map_err(|_| refusal.take().unwrap_or(Unverifiable::NotJson))?;
    fields.sort_unstable();
    // JSON parsers keep the last of repeated names, so the first would be unsigned: refuse.
    if let Some(pair) = fields.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(Unverifiable::DuplicateField {
            field: super::error::bounded(&pair[0].0),
        });
    }
    Ok(fields)
}

/// The text the parameters add to the signed string.
pub(crate) fn canonical(mut params: Vec<Param<'_>>) -> Vec<u8> {
    // Sorting pairs orders names, then each name's values; dropping equal neighbours keeps
    // each distinct value once.
    params.sort_unstable();
    params.dedup();
    // `concat` sizes the one allocation itself: no length sum of our own to get wrong.
    params
        .iter()
        .flat_map(|(name, value)| [name.as_bytes(), value.as_bytes()])
        .collect::<Vec<&[u8]>>()
        .concat()
}

/// Visits a JSON object of strings; anything else is refused, with the reason left behind.
struct FlatObject<'r> {
    refusal: &'r mut Option<Unverifiable>,
}

impl FlatObject<'_> {
    fn refuse<E: de::Error>(self, reason: Unverifiable) -> E {
        let message = reason.to_string();
        *self.refusal = Some(reason);
        E::custom(message)
    }
    fn not_an_object<E: de::Error, T>(self, kind: &'static str) -> Result<T, E> {
        Err(self.refuse(Unverifiable::NotAnObject { kind }))
    }
}

impl<'de> Visitor<'de> for FlatObject<'_> {
    type Value = Vec<Param<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(name) = map.next_key_seed(Text)? {
            match map.next_value_seed(Value)? {
                Ok(value) => fields.push((name, value)),
                Err(kind) => {
                    return Err(self.refuse(Unverifiable::NonStringField {
                        field: super::error::bounded(&name),
                        kind,
                    }));
                }
            }
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

/// A field's value: its text, or the kind of JSON value it was instead (consumed whole).
struct Value;

impl<'de> DeserializeSeed<'de> for Value {
    type Value = Result<Cow<'de, str>, &'static str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Result<Cow<'de, str>, &'static str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(params: Vec<Param<'_>>) -> String {
        String::from_utf8(canonical(params)).unwrap()
    }

    #[test]
    fn canonical_sorts_and_dedupes() {
        let params = [("b", "2"), ("a", "z"), ("a", "y"), ("a", "z"), ("ab", "")]
            .map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)));
        assert_eq!(text(params.to_vec()), "ayazabb2");
    }

    #[test]
    fn form_fields_are_decoded() {
        let params = form_params(b"b=x+y&a=%7B%22k%22%3A1%7D&c");
        assert_eq!(text(params), r#"a{"k":1}bx yc"#);
    }

    #[test]
    fn flat_json_objects_become_parameters() {
        let body = br#" {"b":"2","a":"x\"y","c":""} "#;
        let params = json_params(body).unwrap();
        assert!(
            matches!(params[1].1, Cow::Borrowed(_)),
            "no copy without escapes"
        );
        assert_eq!(text(params), "ax\"yb2c");
        assert_eq!(json_params(b"{}").unwrap(), vec![]);
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
                json_params(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for not_json in [&b""[..], b"{", b"{\"a\":}", b"\xff"] {
            assert_eq!(json_params(not_json), Err(Unverifiable::NotJson));
        }
    }
}
