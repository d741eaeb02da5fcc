//! The emulator's success responses validate against Twilio's upstream description: the
//! unedited excerpt committed in `openapi/upstream/` (see its README for where it comes from),
//! the same file `cargo xtask spec diff` compares the fragment with.

use std::path::PathBuf;

use serde_json::Value;
use twilio_call_messages_emulator::Emulator;

use crate::common;

const MESSAGE: &str = "api.v2010.account.call.user_defined_message";
const SUBSCRIPTION: &str = "api.v2010.account.call.user_defined_message_subscription";

fn reference() -> Value {
    // Committed with the fragment (openapi/upstream/README.md says where it comes from): a
    // missing file is a broken checkout, never a skip.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../openapi/upstream/twilio_api_v2010.user_defined_messages.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("a valid JSON Schema")
}

fn assert_valid(spec: &Value, name: &str, body: &Value) {
    let schema = &spec["components"]["schemas"][name];
    assert!(schema.is_object(), "{name} is in the excerpt");
    let v = validator(schema);
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {body}: {errors:?}");
}

/// The operation's 201 example in the excerpt.
fn example(spec: &Value, path: &str) -> Value {
    spec["paths"][path]["post"]["responses"]["201"]["content"]["application/json"]["examples"]
        ["create"]["value"]
        .clone()
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn success_responses_validate_against_the_upstream_description() {
    let spec = reference();
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    let base = format!(
        "{}/2010-04-01/Accounts/{}/Calls/{call}",
        e.base_url(),
        e.account_sid()
    );
    let http = common::http();
    let post = |url: String, form: Vec<(&'static str, &'static str)>| {
        http.post(url)
            .basic_auth(e.account_sid(), Some(e.auth_token()))
            .header("accept", "application/json")
            .form(&form)
            .send()
    };

    let response = post(
        format!("{base}/UserDefinedMessages.json"),
        vec![("Content", r#"{"key":"value"}"#), ("IdempotencyKey", "1")],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    let message: Value = response.json().await.unwrap();
    assert_valid(&spec, MESSAGE, &message);
    let upstream = example(
        &spec,
        "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessages.json",
    );
    assert_valid(&spec, MESSAGE, &upstream);
    assert_eq!(
        keys(&message),
        keys(&upstream),
        "the example's fields, no more"
    );
    // The check can fail: a subscription SID where a message SID belongs does not validate.
    let mut wrong = message.clone();
    wrong["sid"] = Value::from(format!("ZY{}", &message["sid"].as_str().unwrap()[2..]));
    assert!(!validator(&spec["components"]["schemas"][MESSAGE]).is_valid(&wrong));

    let response = post(
        format!("{base}/UserDefinedMessageSubscriptions.json"),
        vec![("Callback", "https://example.com/hook"), ("Method", "POST")],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let subscription: Value = response.json().await.unwrap();
    assert_valid(&spec, SUBSCRIPTION, &subscription);
    let upstream = example(
        &spec,
        "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions.json",
    );
    assert_eq!(keys(&subscription), keys(&upstream));
    // `uri` is shaped as upstream's: the path of the resource, relative to api.twilio.com.
    let shape = |uri: &str| uri.replace(|c: char| c.is_ascii_hexdigit(), "h");
    assert_eq!(
        shape(subscription["uri"].as_str().unwrap()),
        shape(upstream["uri"].as_str().unwrap())
    );

    // DELETE: 204 as upstream declares, an empty body.
    assert!(
        spec["paths"]
            ["/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions/{Sid}.json"]
            ["delete"]["responses"]["204"]
            .is_object()
    );
    let response = http
        .delete(format!(
            "{}{}",
            e.base_url(),
            subscription["uri"].as_str().unwrap()
        ))
        .basic_auth(e.account_sid(), Some(e.auth_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
}

/// The reads of the Call and conference resources, against the excerpt of their operations.
fn calls_reference() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../openapi/upstream/twilio_api_v2010.calls_conferences.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema says it: the type or `null`.
fn json_schema(mut schema: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.get("nullable") == Some(&Value::Bool(true))
                    && let Some(Value::String(t)) = map.get("type").cloned()
                {
                    map.insert("type".into(), serde_json::json!([t, "null"]));
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}

/// The 200 schema of `path`'s GET, with the excerpt's components beside it for its `$ref`s.
fn read_validator(spec: &Value, path: &str) -> jsonschema::Validator {
    let mut schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]
        .clone();
    assert!(schema.is_object(), "{path} is in the excerpt");
    schema["components"] = spec["components"].clone();
    jsonschema::options()
        .should_validate_formats(true)
        // Upstream's own examples write `uri` fields as paths relative to api.twilio.com:
        // OpenAPI's `uri` there is a URI reference.
        .with_format("uri", |s: &str| {
            url::Url::parse("https://api.twilio.com")
                .and_then(|b| b.join(s))
                .is_ok()
        })
        .build(&json_schema(schema))
        .expect("a valid JSON Schema")
}

fn assert_read_valid(spec: &Value, path: &str, body: &Value) {
    let v = read_validator(spec, path);
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{path}: {body}: {errors:?}");
}

#[tokio::test]
async fn read_responses_validate_against_the_upstream_description() {
    use twilio_call_messages_emulator::Endpoint;
    let spec = calls_reference();
    let e = Emulator::start().await.unwrap();
    let dialled = e.dial(
        Endpoint::Client("alice".into()),
        Endpoint::Phone("+15005550009".into()),
    );
    let ringing = e.ringing_call(Endpoint::Phone("+15005550006".into()));
    let ended = e.create_call();
    e.set_call_status(&ended, twilio_call_messages_emulator::CallStatus::Completed)
        .unwrap();
    let conference = e.create_conference("room");
    let empty = e.create_conference("empty");
    let member = e
        .add_participant(&conference, Endpoint::Client("bob".into()))
        .unwrap();
    e.add_participant(&conference, Endpoint::Phone("+15005550009".into()))
        .unwrap();
    let gone = e.create_conference("gone");
    let left = e
        .add_participant(&gone, Endpoint::Client("carol".into()))
        .unwrap();
    e.set_call_status(&left, twilio_call_messages_emulator::CallStatus::Completed)
        .unwrap();

    let http = common::http();
    let account = format!("/2010-04-01/Accounts/{}", e.account_sid());
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", e.base_url());
        let (sid, token) = (e.account_sid().to_string(), e.auth_token().to_owned());
        async move {
            let response = http
                .get(url)
                .basic_auth(sid, Some(token))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(response.headers()["content-type"], "application/json");
            response.json::<Value>().await.unwrap()
        }
    };

    const CALL: &str = "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json";
    const CALLS: &str = "/2010-04-01/Accounts/{AccountSid}/Calls.json";
    const CONFERENCE: &str = "/2010-04-01/Accounts/{AccountSid}/Conferences/{Sid}.json";
    const PARTICIPANTS: &str =
        "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json";
    const PARTICIPANT: &str =
        "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json";
    let example = |path: &str, name: &str| {
        spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
            [name]["value"]
            .clone()
    };

    for sid in [
        dialled.parent,
        dialled.child.unwrap(),
        ringing,
        ended,
        member,
    ] {
        let body = get(format!("{account}/Calls/{sid}.json")).await;
        assert_read_valid(&spec, CALL, &body);
        assert_eq!(
            keys(&body),
            keys(&example(CALL, "fetch")),
            "upstream's fields"
        );
    }
    assert_read_valid(&spec, CALL, &example(CALL, "fetch"));
    let page = get(format!("{account}/Calls.json?PageSize=2")).await;
    assert_read_valid(&spec, CALLS, &page);
    assert!(page["next_page_uri"].is_string());
    let last = get(page["next_page_uri"].as_str().unwrap().to_owned()).await;
    assert_read_valid(&spec, CALLS, &last);
    assert_read_valid(&spec, CALLS, &example(CALLS, "readFullPage1"));
    let mut listed = keys(&page);
    listed.sort();
    assert_eq!(listed, keys(&example(CALLS, "readFullPage1")));

    for sid in [&conference, &empty, &gone] {
        let body = get(format!("{account}/Conferences/{sid}.json")).await;
        assert_read_valid(&spec, CONFERENCE, &body);
    }
    assert_read_valid(
        &spec,
        CONFERENCE,
        &example(CONFERENCE, "fetchValidMixerZone"),
    );
    let participants = get(format!(
        "{account}/Conferences/{conference}/Participants.json?PageSize=1"
    ))
    .await;
    assert_read_valid(&spec, PARTICIPANTS, &participants);
    assert_eq!(participants["participants"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys(&participants),
        keys(&example(PARTICIPANTS, "readFull"))
    );
    let body = get(format!(
        "{account}/Conferences/{conference}/Participants/{member}.json"
    ))
    .await;
    assert_read_valid(&spec, PARTICIPANT, &body);
    assert_eq!(keys(&body), keys(&example(PARTICIPANT, "fetch")));

    // The check can fail: a conference SID where a call SID belongs does not validate.
    let mut wrong = body.clone();
    wrong["call_sid"] = Value::from(conference.clone());
    assert!(!read_validator(&spec, PARTICIPANT).is_valid(&wrong));
}
