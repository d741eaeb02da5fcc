//! The `schemars` feature: the SIDs' schemas are exact, every public data type's schema accepts
//! the values it serializes, and the types cannot drift from what Twilio describes: each result
//! type carries every response property of its operation in `openapi/call-messages.yaml`, and
//! `CallMessageEvent` every callback field in `openapi/call-message-event.json`, with compatible
//! types. When `cargo xtask spec diff` reports a new response property and it is added to the
//! fragment, `results_cover_the_fragment` fails until the public type carries it too.
#![cfg(feature = "schemars")]

use std::collections::BTreeSet;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};
use twilio_call_messages::{
    AccountSid, ApiKeySid, CallMessageEvent, CallSid, CallbackMethod, Message, MessageSid, SidKind,
    Subscription, SubscriptionSid,
};

const FRAGMENT: &str = include_str!("../../openapi/call-messages.yaml");
const CALLBACK: &str = include_str!("../../openapi/call-message-event.json");

/// Fields the SDK's results add to Twilio's: the request's, not the resource's, and the client
/// a `.to_client()` request reached.
const SDK_FIELDS: [&str; 3] = ["idempotency_key", "request_id", "client_identity"];

/// Formats that differ on purpose between Twilio's response and the SDK's serialized result:
/// results carry RFC 3339 dates (see `Message`'s docs), Twilio writes RFC 2822.
const RESULT_FORMATS: [(&str, &str); 1] = [("date-time-rfc-2822", "date-time")];

const EVENT: &str = r#"{"ContentType":"application/json","Content":"{\"k\":1}","SequenceNumber":"0","CallSid":"CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Timestamp":"Wed, 18 Dec 2019 20:02:01 +0000","AccountSid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;

fn schema<T: JsonSchema>(serialize: bool) -> Value {
    let settings = SchemaSettings::default();
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// The validator a service would use on the schema (JSON Schema 2020-12, formats checked).
fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("a valid JSON Schema")
}

fn errors(schema: &Value, value: &Value) -> Vec<String> {
    validator(schema)
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

// ---- SIDs ----

fn check_sid<T>(kind: SidKind)
where
    T: JsonSchema + std::str::FromStr,
{
    let prefix = kind.prefix();
    let schema = schema::<T>(false);
    let def = &schema;
    assert_eq!(def["type"], "string");
    assert_eq!(def["pattern"], format!("^{prefix}[0-9a-fA-F]{{32}}$"));
    assert_eq!(
        (def["minLength"].as_u64(), def["maxLength"].as_u64()),
        (Some(34), Some(34))
    );
    // The schema accepts exactly what parsing accepts.
    let hex = "0123456789abcdefABCDEF0123456789";
    let inputs = [
        format!("{prefix}{hex}"),
        format!("{prefix}{}", "a".repeat(32)),
        format!("{prefix}{}", "a".repeat(31)),
        format!("{prefix}{}", "a".repeat(33)),
        format!("XX{hex}"),
        format!("{}{hex}", prefix.to_lowercase()),
        format!("{prefix}{}g", &hex[..31]),
        format!("{prefix}{}é", &hex[..31]),
        format!(" {prefix}{}", &hex[..31]),
        String::new(),
    ];
    let validator = validator(&schema);
    for input in inputs {
        assert_eq!(
            validator.is_valid(&json!(input)),
            input.parse::<T>().is_ok(),
            "{input:?} as {}",
            T::schema_name()
        );
    }
}

#[test]
fn sid_schemas_accept_exactly_what_parsing_accepts() {
    check_sid::<AccountSid>(SidKind::Account);
    check_sid::<CallSid>(SidKind::Call);
    check_sid::<MessageSid>(SidKind::Message);
    check_sid::<SubscriptionSid>(SidKind::Subscription);
    check_sid::<ApiKeySid>(SidKind::ApiKey);
}

#[test]
fn a_sid_in_a_service_type_is_one_shared_definition() {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Transfer {
        from: CallSid,
        to: CallSid,
    }
    let schema = schema::<Transfer>(false);
    assert_eq!(schema["properties"]["from"]["$ref"], "#/$defs/CallSid");
    assert_eq!(schema["properties"]["to"]["$ref"], "#/$defs/CallSid");
    let ok =
        json!({"from": format!("CA{}", "a".repeat(32)), "to": format!("CA{}", "b".repeat(32))});
    assert_eq!(errors(&schema, &ok), Vec::<String>::new());
    let bad = json!({"from": format!("KX{}", "a".repeat(32)), "to": "CA1"});
    assert_eq!(
        errors(&schema, &bad).len(),
        3,
        "{:?}",
        errors(&schema, &bad)
    );
}

// ---- values against their own schemas ----

fn message() -> Message {
    serde_json::from_value(json!({
        "sid": "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "call_sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "date_created": "2019-12-18T20:02:01Z",
        "idempotency_key": "k-1",
        "request_id": "RQ1",
    }))
    .expect("a message")
}

#[test]
fn serialized_values_match_their_schemas() {
    let message = message();
    let mut undated = message.clone();
    undated.date_created = None;
    for value in [&message, &undated] {
        let json = serde_json::to_value(value).unwrap();
        assert_eq!(
            errors(&schema::<Message>(true), &json),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(&schema::<Message>(false), &json),
            Vec::<String>::new()
        );
    }
    let subscription: Subscription = serde_json::from_value(json!({
        "sid": "ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "call_sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "date_created": "2019-12-18T20:02:01+01:00",
        "uri": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/UserDefinedMessageSubscriptions/ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json",
        "idempotency_key": "k-2",
        "request_id": null,
    }))
    .unwrap();
    let json = serde_json::to_value(&subscription).unwrap();
    assert_eq!(
        errors(&schema::<Subscription>(true), &json),
        Vec::<String>::new()
    );

    let event: CallMessageEvent = serde_json::from_str(EVENT).unwrap();
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(
        errors(&schema::<CallMessageEvent>(true), &json),
        Vec::<String>::new()
    );

    let method = validator(&schema::<CallbackMethod>(true));
    for m in [CallbackMethod::Get, CallbackMethod::Post] {
        assert!(method.is_valid(&serde_json::to_value(m).unwrap()));
    }
    for other in [json!("post"), json!("PUT"), json!(""), json!(1)] {
        assert!(!method.is_valid(&other), "{other}");
    }
}

#[test]
fn schemas_reject_what_deserialization_rejects() {
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let with = |field: &str, value: Value| {
        let mut event = event.clone();
        event[field] = value;
        event
    };
    let deserialize = schema::<CallMessageEvent>(false);
    let serialize = schema::<CallMessageEvent>(true);
    // A number is read (the Deserialize contract allows it) but never written.
    let numbered = with("SequenceNumber", json!(3));
    assert_eq!(errors(&deserialize, &numbered), Vec::<String>::new());
    assert!(serde_json::from_value::<CallMessageEvent>(numbered.clone()).is_ok());
    assert_eq!(errors(&serialize, &numbered).len(), 1);
    for bad in [
        with("Timestamp", json!("2019-12-18T20:02:01Z")),
        with("SequenceNumber", json!(-1)),
        with("SequenceNumber", json!("one")),
        with("CallSid", json!("CA1")),
        with("Sid", json!("ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    ] {
        assert!(
            serde_json::from_value::<CallMessageEvent>(bad.clone()).is_err(),
            "{bad}"
        );
        assert!(!validator(&deserialize).is_valid(&bad), "{bad}");
    }

    let message = serde_json::to_value(message()).unwrap();
    let mut rfc2822 = message.clone();
    rfc2822["date_created"] = json!("Wed, 18 Dec 2019 20:02:01 +0000");
    assert!(serde_json::from_value::<Message>(rfc2822.clone()).is_err());
    assert_eq!(errors(&schema::<Message>(false), &rfc2822).len(), 1);
}

// ---- drift: the public types against Twilio's descriptions ----

/// The JSON types a (sub)schema allows, through `$ref` (into `defs`), `allOf` and OpenAPI 3.0's
/// `nullable`; `None` when it does not say.
fn types(root: &Value, schema: &Value) -> Option<BTreeSet<String>> {
    let schema = resolve(root, schema);
    let mut found = match &schema["type"] {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    };
    if let Some(members) = schema["allOf"].as_array() {
        for member in members {
            if let Some(member) = types(root, member) {
                found = Some(match found {
                    Some(f) => f.intersection(&member).cloned().collect(),
                    None => member,
                });
            }
        }
    }
    if schema["nullable"] == true
        && let Some(found) = found.as_mut()
    {
        found.insert("null".into());
    }
    found
}

/// The `format` a (sub)schema gives, through `$ref` and `allOf`.
fn format(root: &Value, schema: &Value) -> Option<String> {
    let schema = resolve(root, schema);
    schema["format"].as_str().map(str::to_owned).or_else(|| {
        schema["allOf"]
            .as_array()?
            .iter()
            .find_map(|member| format(root, member))
    })
}

fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(reference) = schema["$ref"].as_str() {
        let pointer = reference.strip_prefix('#').expect("a local $ref");
        schema = root.pointer(pointer).expect("the $ref points at a schema");
    }
    schema
}

/// How a public type must relate to Twilio's description of the same payload.
#[derive(Clone, Copy)]
enum Direction {
    /// The SDK writes it: what it writes must be something Twilio's description allows.
    Writes,
    /// The SDK reads it: it must accept everything Twilio's description allows.
    Reads,
}

/// Compares the properties of `twilio` (a schema inside `twilio_root`) with those of `ours` (a
/// root schema). One line per problem.
fn compare(
    twilio_root: &Value,
    twilio: &Value,
    ours: &Value,
    direction: Direction,
    allowed_formats: &[(&str, &str)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let twilio = resolve(twilio_root, twilio);
    let Some(properties) = twilio["properties"].as_object() else {
        return vec!["Twilio's schema has no properties".into()];
    };
    for (name, theirs) in properties {
        let Some(mine) = ours["properties"].get(name) else {
            problems.push(format!("{name}: missing from the public type"));
            continue;
        };
        let (t, m) = (types(twilio_root, theirs), types(ours, mine));
        let (Some(t), Some(m)) = (t.clone(), m.clone()) else {
            problems.push(format!("{name}: no type on one side ({t:?}, {m:?})"));
            continue;
        };
        let (narrow, wide, what) = match direction {
            Direction::Writes => (&m, &t, "writes"),
            Direction::Reads => (&t, &m, "reads"),
        };
        // `integer` is a `number`; nothing else widens.
        let covered =
            |ty: &String| wide.contains(ty) || (ty == "integer" && wide.contains("number"));
        if !narrow.iter().all(covered) {
            problems.push(format!(
                "{name}: Twilio's type is {t:?}, the public type {what} {m:?}"
            ));
        }
        let (tf, mf) = (format(twilio_root, theirs), format(ours, mine));
        let same = tf == mf
            || allowed_formats
                .iter()
                .any(|(a, b)| tf.as_deref() == Some(*a) && mf.as_deref() == Some(*b));
        if !same {
            problems.push(format!(
                "{name}: Twilio's format is {tf:?}, the public type's {mf:?}"
            ));
        }
    }
    problems
}

fn fragment(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("the fragment is YAML")
}

/// The 201 response schema of an operation of the fragment.
fn response_schema<'a>(doc: &'a Value, operation_id: &str) -> &'a Value {
    doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .flat_map(|item| item.as_object().into_iter().flat_map(|ops| ops.values()))
        .find(|op| op["operationId"] == operation_id)
        .map(|op| &op["responses"]["201"]["content"]["application/json"]["schema"])
        .unwrap_or_else(|| panic!("{operation_id} is in the fragment"))
}

/// Compares both result types with the fragment's text; also names any property of a result
/// type that is neither Twilio's nor one of the SDK's own.
fn results_against(fragment_text: &str) -> Vec<String> {
    let doc = fragment(fragment_text);
    let mut problems = Vec::new();
    for (operation, ours) in [
        ("CreateUserDefinedMessage", schema::<Message>(true)),
        (
            "CreateUserDefinedMessageSubscription",
            schema::<Subscription>(true),
        ),
    ] {
        let twilio = response_schema(&doc, operation);
        for problem in compare(&doc, twilio, &ours, Direction::Writes, &RESULT_FORMATS) {
            problems.push(format!("{operation}: {problem}"));
        }
        let twilio_names = resolve(&doc, twilio)["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for name in ours["properties"].as_object().unwrap().keys() {
            if !twilio_names.contains_key(name) && !SDK_FIELDS.contains(&name.as_str()) {
                problems.push(format!("{operation}: {name}: not in Twilio's response"));
            }
        }
    }
    problems
}

#[test]
fn results_cover_the_fragment() {
    assert_eq!(results_against(FRAGMENT), Vec::<String>::new());
}

#[test]
fn the_drift_check_bites() {
    // Twilio adds a response property.
    let added = FRAGMENT.replace(
        "        uri:\n          type: string\n          nullable: true\n",
        "        uri:\n          type: string\n          nullable: true\n        status:\n          type: string\n          nullable: true\n",
    );
    assert_ne!(added, FRAGMENT);
    assert_eq!(
        results_against(&added),
        ["CreateUserDefinedMessageSubscription: status: missing from the public type"]
    );
    // Twilio changes a property's type.
    let retyped = FRAGMENT.replacen(
        "        call_sid:\n          type: string\n",
        "        call_sid:\n          type: integer\n",
        1,
    );
    assert_ne!(retyped, FRAGMENT);
    assert_eq!(
        results_against(&retyped),
        [
            r#"CreateUserDefinedMessage: call_sid: Twilio's type is {"integer", "null"}, the public type writes {"string"}"#
        ]
    );
    // Twilio renames one: the old name is reported as well as the new.
    let renamed = FRAGMENT.replacen("        date_created:\n", "        created_at:\n", 1);
    assert_eq!(
        results_against(&renamed),
        [
            "CreateUserDefinedMessage: created_at: missing from the public type",
            "CreateUserDefinedMessage: date_created: not in Twilio's response",
        ]
    );
    // A date format the SDK does not deliberately convert.
    let unix = FRAGMENT.replace("format: date-time-rfc-2822", "format: unix-time");
    assert_eq!(
        results_against(&unix).len(),
        2,
        "{:?}",
        results_against(&unix)
    );
}

fn event_against(documented: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (direction, ours) in [
        (Direction::Writes, schema::<CallMessageEvent>(true)),
        (Direction::Reads, schema::<CallMessageEvent>(false)),
    ] {
        problems.extend(compare(documented, documented, &ours, direction, &[]));
    }
    problems
}

#[test]
fn call_message_event_covers_the_documented_callback() {
    let documented: Value = serde_json::from_str(CALLBACK).expect("valid JSON");
    assert_eq!(event_against(&documented), Vec::<String>::new());
    // Twilio's example reads into the type, validates against its schema, and writes back
    // unchanged.
    let read = schema::<CallMessageEvent>(false);
    for example in documented["examples"].as_array().expect("examples") {
        assert_eq!(errors(&read, example), Vec::<String>::new());
        let event: CallMessageEvent = serde_json::from_value(example.clone()).expect("reads");
        assert_eq!(&serde_json::to_value(&event).unwrap(), example);
    }

    let mut more = documented.clone();
    more["properties"]["CallStatus"] = json!({"type": "string"});
    assert_eq!(
        event_against(&more),
        [
            "CallStatus: missing from the public type",
            "CallStatus: missing from the public type"
        ]
    );
    let mut numbered = documented.clone();
    numbered["properties"]["SequenceNumber"] = json!({"type": "integer"});
    assert_eq!(
        event_against(&numbered),
        [r#"SequenceNumber: Twilio's type is {"integer"}, the public type writes {"string"}"#]
    );
}
