//! Parsing the callback Twilio posts for each call message: JSON and form bodies, string and
//! number sequence numbers, unknown fields, and every missing or malformed field.

use serde::Deserialize;
use serde_json::{Value, json};
use twilio_call_messages::{CallMessageEvent, EventError};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MESSAGE: &str = "KXcccccccccccccccccccccccccccccccc";
const TIMESTAMP: &str = "Wed, 18 Dec 2019 20:02:01 +0000";
const FIELDS: [&str; 7] = [
    "ContentType",
    "Content",
    "SequenceNumber",
    "CallSid",
    "Timestamp",
    "AccountSid",
    "Sid",
];

/// The documented example, with string values as in Twilio's docs.
fn sample() -> serde_json::Map<String, Value> {
    let value = json!({
        "ContentType": "application/json",
        "Content": "{\"question\":\"ready?\",\"step\":2}",
        "SequenceNumber": "3",
        "CallSid": CALL,
        "Timestamp": TIMESTAMP,
        "AccountSid": ACCOUNT,
        "Sid": MESSAGE,
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn json_body(map: &serde_json::Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(map).unwrap()
}

fn form_body(map: &serde_json::Map<String, Value>) -> Vec<u8> {
    let pairs: Vec<(&str, String)> = map
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    serde_urlencoded::to_string(pairs).unwrap().into_bytes()
}

fn check_sample(event: &CallMessageEvent) {
    assert_eq!(event.content_type, "application/json");
    assert_eq!(event.content, "{\"question\":\"ready?\",\"step\":2}");
    assert_eq!(event.sequence_number, 3);
    assert_eq!(event.call_sid, CALL);
    assert_eq!(event.account_sid, ACCOUNT);
    assert_eq!(event.message_sid, MESSAGE);
    assert_eq!(event.timestamp.unix_timestamp(), 1_576_699_321);
}

#[test]
fn parses_json_and_form_bodies() {
    let from_json = CallMessageEvent::from_json(&json_body(&sample())).unwrap();
    check_sample(&from_json);
    let from_form = CallMessageEvent::from_form(&form_body(&sample())).unwrap();
    check_sample(&from_form);
    assert_eq!(from_json, from_form);
}

#[test]
fn content_as_deserializes_the_message() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Step {
        question: String,
        step: u32,
    }
    let event = CallMessageEvent::from_json(&json_body(&sample())).unwrap();
    assert_eq!(
        event.content_as::<Step>().unwrap(),
        Step {
            question: "ready?".into(),
            step: 2
        }
    );
    assert_eq!(event.content_as::<Value>().unwrap()["step"], 2);
    assert!(event.content_as::<Vec<u8>>().is_err());
}

#[test]
fn sequence_number_as_string_or_number() {
    for (value, expected) in [
        (json!("0"), 0),
        (json!(0), 0),
        (json!("42"), 42),
        (json!(42), 42),
        (json!(u64::MAX), u64::MAX),
        (json!(u64::MAX.to_string()), u64::MAX),
    ] {
        let mut map = sample();
        map.insert("SequenceNumber".into(), value.clone());
        let event = CallMessageEvent::from_json(&json_body(&map)).unwrap();
        assert_eq!(event.sequence_number, expected, "{value}");
    }
    let mut map = sample();
    map.insert("SequenceNumber".into(), json!("17"));
    assert_eq!(
        CallMessageEvent::from_form(&form_body(&map))
            .unwrap()
            .sequence_number,
        17
    );
}

#[test]
fn malformed_sequence_numbers_are_rejected() {
    for value in [
        json!(-1),
        json!("-1"),
        json!(1.5),
        json!("one"),
        json!(""),
        json!(null),
        json!([1]),
        json!("18446744073709551616"),
    ] {
        let mut map = sample();
        map.insert("SequenceNumber".into(), value.clone());
        let err = CallMessageEvent::from_json(&json_body(&map)).unwrap_err();
        assert_eq!(err.field(), Some("SequenceNumber"), "{value}: {err}");
        assert!(
            matches!(err, EventError::Invalid { .. }),
            "{value}: {err:?}"
        );
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let mut map = sample();
    map.insert("ApiVersion".into(), json!("2010-04-01"));
    map.insert("Nested".into(), json!({"a": [1, 2]}));
    map.insert("Flag".into(), json!(true));
    check_sample(&CallMessageEvent::from_json(&json_body(&map)).unwrap());
    check_sample(&CallMessageEvent::from_form(&form_body(&map)).unwrap());
    let with_extra = [form_body(&sample()), b"&Extra=1&=&&novalue".to_vec()].concat();
    check_sample(&CallMessageEvent::from_form(&with_extra).unwrap());
}

#[test]
fn each_missing_field_is_named() {
    for field in FIELDS {
        let mut map = sample();
        map.remove(field);
        for (kind, result) in [
            ("json", CallMessageEvent::from_json(&json_body(&map))),
            ("form", CallMessageEvent::from_form(&form_body(&map))),
        ] {
            let err = result.unwrap_err();
            assert_eq!(err, EventError::Missing { field }, "{kind}");
            assert_eq!(err.to_string(), format!("field `{field}` is missing"));
        }
    }
}

#[test]
fn each_malformed_field_is_named() {
    let cases: [(&str, Value); 9] = [
        ("CallSid", json!("CA123")),
        ("CallSid", json!(ACCOUNT)),
        ("AccountSid", json!(CALL)),
        ("Sid", json!("ZYcccccccccccccccccccccccccccccccc")),
        ("Timestamp", json!("2019-12-18T20:02:01Z")),
        ("Timestamp", json!(1_576_699_321)),
        ("ContentType", json!(null)),
        ("Content", json!(null)),
        ("CallSid", json!(42)),
    ];
    for (field, value) in cases {
        let mut map = sample();
        map.insert(field.into(), value.clone());
        let err = CallMessageEvent::from_json(&json_body(&map)).unwrap_err();
        assert!(
            matches!(err, EventError::Invalid { field: f, .. } if f == field),
            "{field}={value}: {err:?}"
        );
        // The message names the field, never the value (it is user data).
        assert!(err.to_string().contains(field), "{err}");
        if let Some(text) = value.as_str() {
            assert!(!err.to_string().contains(text), "{err}");
        }
    }
}

#[test]
fn embedded_json_content_is_accepted() {
    let mut map = sample();
    map.insert("Content".into(), json!({"step": 2}));
    let event = CallMessageEvent::from_json(&json_body(&map)).unwrap();
    assert_eq!(event.content_as::<Value>().unwrap(), json!({"step": 2}));
}

#[test]
fn bodies_that_are_not_events() {
    for body in [
        &b""[..],
        b"null",
        b"[]",
        b"\"text\"",
        b"{",
        b"\xff\xfe",
        b"{\"a\":1}garbage",
    ] {
        let err = CallMessageEvent::from_json(body).unwrap_err();
        assert!(
            matches!(err, EventError::NotJson { .. }),
            "{body:?}: {err:?}"
        );
        assert_eq!(err.field(), None);
    }
    assert_eq!(
        CallMessageEvent::from_form(b"").unwrap_err(),
        EventError::Missing {
            field: "ContentType"
        }
    );
    assert!(CallMessageEvent::from_form(b"\xff\xfe%zz&&==").is_err());
}

/// `parse` reads a body by the rule its signature is checked with: a form (declared, or no
/// content type) or `application/json`; nothing is sniffed, and other types are refused.
#[test]
fn parse_reads_by_the_signature_rule() {
    let json = json_body(&sample());
    let form = form_body(&sample());
    for (content_type, body) in [
        (Some("application/json"), &json),
        (Some("application/json; charset=utf-8"), &json),
        (Some("Application/JSON"), &json),
        (Some("application/x-www-form-urlencoded"), &form),
        (
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            &form,
        ),
        (None, &form),
    ] {
        let event = CallMessageEvent::parse(content_type, body);
        check_sample(
            event
                .as_ref()
                .unwrap_or_else(|e| panic!("{content_type:?}: {e}")),
        );
    }
    for content_type in ["application/vnd.twilio+json", "text/plain", ""] {
        assert_eq!(
            CallMessageEvent::parse(Some(content_type), &json).unwrap_err(),
            EventError::ContentType {
                content_type: content_type.to_owned()
            }
        );
    }
    // JSON without a content type is read as a form, as its signature is: no event in it.
    assert!(matches!(
        CallMessageEvent::parse(None, &json),
        Err(EventError::Missing { .. })
    ));
    // A declared type is believed.
    assert!(CallMessageEvent::parse(Some("application/json"), &form).is_err());
    assert!(CallMessageEvent::parse(Some("application/x-www-form-urlencoded"), &json).is_err());
}

#[test]
fn debug_shows_content_length_only() {
    let event = CallMessageEvent::from_json(&json_body(&sample())).unwrap();
    let debug = format!("{event:?}");
    assert!(!debug.contains("ready?"), "{debug}");
    assert!(debug.contains(CALL), "{debug}");
    assert!(
        debug.contains(&format!("<{} bytes>", event.content.len())),
        "{debug}"
    );
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 8] = [
        b"",
        b"\0",
        b"{\"SequenceNumber\":1e400}",
        b"{\"Timestamp\":\"Wed, 99 Dec 2019 99:99:99 +9999\"}",
        b"%",
        b"Content=%F0%9F",
        b"{}{}",
        &[0xff; 64],
    ];
    for input in inputs {
        let _ = CallMessageEvent::from_json(input);
        let _ = CallMessageEvent::from_form(input);
        let _ = CallMessageEvent::parse(None, input);
    }
}
