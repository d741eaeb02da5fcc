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
