//! serde on the public data types: what a service puts in its logs, queues and APIs comes back
//! equal. Results are the SDK's own shape (RFC 3339 dates, idempotency key and request id);
//! `CallMessageEvent` is Twilio's callback shape, so it re-serializes as Twilio sent it.

use std::time::Duration;

use httpmock::MockServer;
use serde_json::{Value, json};
use twilio_call_messages::{CallMessageEvent, CallbackMethod, Client, Message, Subscription};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MESSAGES: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/UserDefinedMessages.json";
const SUBSCRIPTIONS: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/UserDefinedMessageSubscriptions.json";
const SUBSCRIPTION_URI: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/UserDefinedMessageSubscriptions/ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json";

/// A callback body as Twilio documents it: every value a string.
const EVENT: &str = r#"{"ContentType":"application/json","Content":"{\"step\":2,\"text\":\"secret-user-data\"}","SequenceNumber":"1","CallSid":"CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","Timestamp":"Wed, 18 Dec 2019 20:02:01 +0000","AccountSid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;

fn client(server: &MockServer) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(server.base_url())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("valid configuration")
}

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    serde_json::from_str(&serde_json::to_string(value).expect("serializes")).expect("reads back")
}

#[tokio::test]
async fn a_sent_message_serializes_in_the_sdk_shape_and_reads_back() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method("POST").path(MESSAGES);
            then.status(201)
                .header("content-type", "application/json")
                .header("twilio-request-id", "RQ0123")
                .body(r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","call_sid":"CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":"Wed, 18 Dec 2019 21:02:01 +0100"}"#);
        })
        .await;
    let message = client(&server)
        .send_message(CALL, &json!({"text": "secret-user-data"}))
        .idempotency_key("order-7")
        .await
        .expect("201");

    let value = serde_json::to_value(&message).unwrap();
    assert_eq!(
        value,
        json!({
            "sid": "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "account_sid": ACCOUNT,
            "call_sid": CALL,
            // RFC 3339, offset kept as Twilio gave it.
            "date_created": "2019-12-18T21:02:01+01:00",
            "idempotency_key": "order-7",
            "request_id": "RQ0123",
        })
    );
    assert_eq!(round_trip(&message), message);
    assert!(!format!("{message:?}").contains("secret-user-data"));
}

#[tokio::test]
async fn a_subscription_serializes_in_the_sdk_shape_and_reads_back() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method("POST").path(SUBSCRIPTIONS);
            then.status(201)
                .header("content-type", "application/json")
                .body(format!(r#"{{"account_sid":"{ACCOUNT}","call_sid":"{CALL}","sid":"ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":"Wed, 18 Dec 2019 20:02:01 +0000","uri":"{SUBSCRIPTION_URI}"}}"#));
        })
        .await;
    let subscription = client(&server)
        .subscribe(CALL, "https://hooks.example.com/twilio")
        .method(CallbackMethod::Post)
        .idempotency_key("sub-1")
        .await
        .expect("201");

    let value = serde_json::to_value(&subscription).unwrap();
    assert_eq!(
        value,
        json!({
            "sid": "ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "account_sid": ACCOUNT,
            "call_sid": CALL,
            "date_created": "2019-12-18T20:02:01Z",
            "uri": SUBSCRIPTION_URI,
            "idempotency_key": "sub-1",
            "request_id": null,
        })
    );
    assert_eq!(round_trip(&subscription), subscription);
}

#[test]
fn results_read_absent_optional_fields_as_none_and_reject_bad_values() {
    let minimal = json!({
        "sid": "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "account_sid": ACCOUNT,
        "call_sid": CALL,
        "idempotency_key": "k",
    });
    let message: Message = serde_json::from_value(minimal.clone()).unwrap();
    assert_eq!(
        (message.date_created, message.request_id.as_deref()),
        (None, None)
    );
    assert_eq!(
        serde_json::to_value(&message).unwrap()["date_created"],
        Value::Null
    );

    let reject = |patch: Value| {
        let mut value = minimal.clone();
        value
            .as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        serde_json::from_value::<Message>(value)
            .unwrap_err()
            .to_string()
    };
    // Twilio's RFC 2822 is not the results' format: one format, no guessing.
    // (`reject` fails the test if the value is accepted.)
    reject(json!({"date_created": "Wed, 18 Dec 2019 20:02:01 +0000"}));
    assert!(reject(json!({"sid": "ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})).contains("message SID"));
    let mut no_key = minimal.clone();
    no_key.as_object_mut().unwrap().remove("idempotency_key");
    assert!(serde_json::from_value::<Message>(no_key).is_err());

    let subscription: Subscription = serde_json::from_value(json!({
        "sid": "ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "account_sid": ACCOUNT,
        "call_sid": CALL,
        "idempotency_key": "k",
    }))
    .unwrap();
    assert_eq!(subscription.uri, None);
}

#[test]
fn an_event_re_serializes_exactly_as_twilio_sent_it() {
    let event = CallMessageEvent::parse(Some("application/json"), EVENT.as_bytes()).unwrap();
    let text = serde_json::to_string(&event).unwrap();
    let sent: Value = serde_json::from_str(EVENT).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), sent);
    // And back, by serde and by the webhook parser alike.
    assert_eq!(
        serde_json::from_str::<CallMessageEvent>(&text).unwrap(),
        event
    );
    assert_eq!(CallMessageEvent::from_json(text.as_bytes()).unwrap(), event);
    // serde reads Twilio's body itself the same way the webhook parser does.
    assert_eq!(
        serde_json::from_str::<CallMessageEvent>(EVENT).unwrap(),
        event
    );
    // A date with another offset is written back with that offset, as it came.
    let shifted = EVENT.replace("20:02:01 +0000", "21:02:01 +0100");
    let event2: CallMessageEvent = serde_json::from_str(&shifted).unwrap();
    assert_eq!(
        serde_json::to_value(&event2).unwrap()["Timestamp"],
        "Wed, 18 Dec 2019 21:02:01 +0100"
    );
}

#[test]
fn event_deserialize_agrees_with_the_webhook_parser() {
    let variants = [
        // The sequence number as a JSON number.
        EVENT.replace(r#""SequenceNumber":"1""#, r#""SequenceNumber":1"#),
        // Unknown fields are ignored.
        format!(
            r#"{},"ApiVersion":"2010-04-01"}}"#,
            &EVENT[..EVENT.len() - 1]
        ),
        // Content embedded as JSON is kept as its text.
        EVENT.replace(
            r#""Content":"{\"step\":2,\"text\":\"secret-user-data\"}""#,
            r#""Content":{"step":2,"text":"secret-user-data"}"#,
        ),
    ];
    for body in &variants {
        let by_parser = CallMessageEvent::from_json(body.as_bytes()).unwrap();
        let by_serde: CallMessageEvent = serde_json::from_str(body).unwrap();
        assert_eq!(by_serde, by_parser, "{body}");
    }
    let rejected = [
        EVENT.replace(r#""SequenceNumber":"1""#, r#""SequenceNumber":-1"#),
        EVENT.replace(r#""SequenceNumber":"1""#, r#""SequenceNumber":"one""#),
        EVENT.replace(r#""SequenceNumber":"1""#, r#""SequenceNumber":1.5"#),
        EVENT.replace(r#""CallSid":"CAbb"#, r#""CallSid":"CXbb"#),
        EVENT.replace("Wed, 18 Dec 2019 20:02:01 +0000", "2019-12-18T20:02:01Z"),
        EVENT.replace(
            r#""Content":"{\"step\":2,\"text\":\"secret-user-data\"}""#,
            r#""Content":null"#,
        ),
        EVENT.replace(r#","Sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa""#, ""),
    ];
    for body in &rejected {
        assert!(
            CallMessageEvent::from_json(body.as_bytes()).is_err(),
            "{body}"
        );
        let err = serde_json::from_str::<CallMessageEvent>(body).unwrap_err();
        assert!(!err.to_string().contains("secret-user-data"), "{err}");
    }
}

#[test]
fn event_reads_from_a_form_body_and_debug_hides_its_content() {
    let event: CallMessageEvent = serde_json::from_str(EVENT).unwrap();
    let form = serde_urlencoded::to_string(&event).unwrap();
    assert!(form.contains("SequenceNumber=1&"), "{form}");
    let by_serde: CallMessageEvent = serde_urlencoded::from_str(&form).unwrap();
    assert_eq!(by_serde, event);
    assert_eq!(CallMessageEvent::from_form(form.as_bytes()).unwrap(), event);
    let debug = format!("{by_serde:?}");
    assert!(!debug.contains("secret-user-data"), "{debug}");
}
