//! The other party: the call's client sends, Twilio delivers to every subscription, signed;
//! each delivery verified by the SDK's `SignatureValidator` and parsed as a
//! `CallMessageEvent`, as a user's service would.

use std::time::Duration;

use serde_json::{Value, json};
use twilio_call_messages::{CallMessageEvent, CallSid, SignatureValidator};
use twilio_call_messages_emulator::{
    CallStatus, CallbackBody, CallbackFaults, Emulator, EmulatorError, Signing,
};

use crate::common;

use common::{Receiver, verified};

async fn subscribe(e: &Emulator, call: &CallSid, callback: &str, method: Option<&str>) {
    let mut form = vec![("Callback", callback)];
    if let Some(m) = method {
        form.push(("Method", m));
    }
    let response = common::http()
        .post(format!(
            "{}/2010-04-01/Accounts/{}/Calls/{call}/UserDefinedMessageSubscriptions.json",
            e.base_url(),
            e.account_sid()
        ))
        .basic_auth(e.account_sid(), Some(e.auth_token()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// Every documented field, each a string, in a flat JSON object by default; signed with the
/// auth token over the URL and the sorted fields; `SequenceNumber` from 1 by default; every
/// subscription of the call gets every message; the fragment is neither sent nor signed.
#[tokio::test]
async fn deliveries_are_signed_and_complete() {
    let e = Emulator::start().await.unwrap();
    let (r1, r2) = (Receiver::start().await, Receiver::start().await);
    let call = e.create_call();
    subscribe(&e, &call, &r1.url("/hook?tenant=7#rc=2&ct=1000"), None).await;
    subscribe(&e, &call, &r2.url("/other"), None).await;
    let first = e.client_send(&call, json!({"answer": "yes"})).unwrap();
    let second = e.client_send(&call, json!({"answer": "no"})).unwrap();
    e.settled().await;

    let validator = SignatureValidator::new(e.auth_token());
    for receiver in [&r1, &r2] {
        let got = receiver.received();
        assert_eq!(got.len(), 2);
        let events: Vec<CallMessageEvent> = got
            .iter()
            .map(|r| verified(&validator, receiver, r))
            .collect();
        assert_eq!(events[0].message_sid, first);
        assert_eq!(events[1].message_sid, second);
        assert_eq!(
            (events[0].sequence_number, events[1].sequence_number),
            (1, 2)
        );
        assert_eq!(events[0].content, r#"{"answer":"yes"}"#);
        assert_eq!(events[0].content_type, "application/json");
        assert_eq!(events[0].call_sid, call);
        assert_eq!(&events[0].account_sid, e.account_sid());
        let body: Value = serde_json::from_slice(&got[0].body).unwrap();
        let object = body.as_object().unwrap();
        let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "AccountSid",
                "CallSid",
                "Content",
                "ContentType",
                "SequenceNumber",
                "Sid",
                "Timestamp"
            ]
        );
        assert!(object.values().all(Value::is_string), "{body}");
        assert_eq!(got[0].headers["content-type"], "application/json");
        assert!(got[0].headers.contains_key("i-twilio-idempotency-token"));
        assert_ne!(
            got[0].headers["i-twilio-idempotency-token"],
            got[1].headers["i-twilio-idempotency-token"],
            "one token per delivery"
        );
    }
    assert_eq!(
        r1.received()[0].uri,
        "/hook?tenant=7",
        "the fragment is not sent"
    );
    // A forged signature (another token) does not verify.
    let forger = SignatureValidator::new("another-token");
    let r = &r1.received()[0];
    assert!(forger.verify(&r1.url(&r.uri), &r.headers, &r.body).is_err());

    // The record of each attempt.
    let sent = e.client_messages(&call);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| m.deliveries.len() == 2));
    let d = &sent[0].deliveries[0];
    assert!(d.done && d.delivered);
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.attempts[0].status, Some(200));
    assert_eq!(d.attempts[0].url, r1.url("/hook?tenant=7"));
}

/// A form body, when asked; `SequenceNumber` from 0, when asked.
#[tokio::test]
async fn form_bodies_and_sequence_from_zero() {
    let e = Emulator::builder()
        .callback_body(CallbackBody::Form)
        .sequence_start(0)
        .start()
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/form"), None).await;
    e.client_send(&call, json!([1, 2])).unwrap();
    e.settled().await;
    let got = receiver.received();
    assert_eq!(
        got[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let event = verified(&SignatureValidator::new(e.auth_token()), &receiver, &got[0]);
    assert_eq!(event.sequence_number, 0);
    assert_eq!(event.content, "[1,2]");
}

/// `Method=GET`: the fields in the query string, the URL alone signed (ASSUMPTION).
#[tokio::test]
async fn get_subscriptions_carry_the_fields_in_the_query() {
    let e = Emulator::start().await.unwrap();
    let receiver = Receiver::start().await;
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/get?x=1"), Some("GET")).await;
    e.client_send(&call, json!({"via": "get"})).unwrap();
    e.settled().await;
    let got = receiver.received();
    assert_eq!(got[0].method, "GET");
    assert!(got[0].body.is_empty());
    assert!(got[0].uri.starts_with("/get?x=1&"));
    let event = verified(&SignatureValidator::new(e.auth_token()), &receiver, &got[0]);
    assert_eq!(event.content, r#"{"via":"get"}"#);
}

/// `bodySHA256`: the URL carries the body's hash and alone is signed.
#[tokio::test]
async fn body_sha256_signing() {
    let e = Emulator::builder()
        .signing(Signing::BodySha256)
        .start()
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/hashed"), None).await;
    e.client_send(&call, json!({"h": 1})).unwrap();
    e.settled().await;
    let r = &receiver.received()[0];
    assert!(r.uri.starts_with("/hashed?bodySHA256="), "{}", r.uri);
    let validator = SignatureValidator::new(e.auth_token());
    verified(&validator, &receiver, r);
    let url = receiver.url(&r.uri);
    let signature = r.headers["x-twilio-signature"].to_str().unwrap();
    assert!(validator.validate_json(&url, &r.body, signature));
    assert!(!validator.validate_json(&url, b"{\"tampered\":1}", signature));
}

/// A shared key: HMAC-SHA256 with its secret and the settings header; the auth token alone
/// does not verify it.
#[tokio::test]
async fn shared_key_signing() {
    let e = Emulator::builder()
        .signing(Signing::SharedKey {
            id: "webhooks_sharedkey_test".into(),
            secret: "shared-secret".into(),
        })
        .start()
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/shared"), None).await;
    e.client_send(&call, json!({"k": 1})).unwrap();
    e.settled().await;
    let r = &receiver.received()[0];
    assert_eq!(
        r.headers["x-twilio-webhooks-signature-settings"],
        "key=webhooks_sharedkey_test,algorithm=HMAC_SHA256"
    );
    let with_key = SignatureValidator::new(e.auth_token())
        .with_shared_key("webhooks_sharedkey_test", "shared-secret");
    verified(&with_key, &receiver, r);
    let url = receiver.url(&r.uri);
    assert!(
        SignatureValidator::new(e.auth_token())
            .verify(&url, &r.headers, &r.body)
            .is_err()
    );
}

/// A non-2xx answer is retried (`rc` 1 by default) with the same
/// `I-Twilio-Idempotency-Token`; `rc` from the fragment; a delivery that runs out of tries
/// is recorded as not delivered.
#[tokio::test]
async fn retries_follow_the_connection_overrides() {
    let e = Emulator::start().await.unwrap();
    let receiver = Receiver::start().await;
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/retry"), None).await;
    receiver.answer(&[500]);
    e.client_send(&call, json!({"n": 1})).unwrap();
    e.settled().await;
    let got = receiver.received();
    assert_eq!(got.len(), 2, "one retry by default");
    assert_eq!(
        got[0].headers["i-twilio-idempotency-token"],
        got[1].headers["i-twilio-idempotency-token"]
    );
    assert_eq!(got[0].body, got[1].body);
    let d = &e.client_messages(&call)[0].deliveries[0];
    assert_eq!(
        d.attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(500), Some(200)]
    );
    assert!(d.delivered);

    // rc=3: four tries; all fail.
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/many#rc=3"), None).await;
    receiver.answer(&[503, 503, 503, 503]);
    e.client_send(&call, json!({"n": 2})).unwrap();
    e.settled().await;
    let d = &e.client_messages(&call)[0].deliveries[0];
    assert_eq!(d.attempts.len(), 4);
    assert!(d.done && !d.delivered);
    assert!(d.attempts[0].error.as_deref().unwrap().contains("32711"));

    // rc=0 and a read timeout (rt) shorter than the receiver's answer.
    let slow = Receiver::start().await;
    slow.delay(Duration::from_millis(800));
    let call = e.create_call();
    subscribe(&e, &call, &slow.url("/slow#rt=150&rc=0"), None).await;
    e.client_send(&call, json!({"n": 3})).unwrap();
    e.settled().await;
    let d = &e.client_messages(&call)[0].deliveries[0];
    assert_eq!(d.attempts.len(), 1);
    assert!(!d.delivered);
    assert!(d.attempts[0].status.is_none());

    // rp=5xx: a 4xx is not retried.
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/policy#rp=5xx"), None).await;
    receiver.answer(&[404]);
    e.client_send(&call, json!({"n": 4})).unwrap();
    e.settled().await;
    assert_eq!(e.client_messages(&call)[0].deliveries[0].attempts.len(), 1);
}

/// Callback faults: a dropped first attempt (the retry delivers), a duplicate (same `Sid`,
/// same token), messages out of order.
#[tokio::test]
async fn callback_faults() {
    let e = Emulator::builder()
        .callback_faults(CallbackFaults {
            drop_first: 1.0,
            duplicate: 1.0,
            ..CallbackFaults::default()
        })
        .start()
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let call = e.create_call();
    subscribe(&e, &call, &receiver.url("/faults"), None).await;
    let sid = e.client_send(&call, json!({"d": 1})).unwrap();
    e.settled().await;
    let got = receiver.received();
    assert_eq!(got.len(), 2, "dropped once, delivered, then duplicated");
    let validator = SignatureValidator::new(e.auth_token());
    for r in &got {
        assert_eq!(verified(&validator, &receiver, r).message_sid, sid);
    }
    assert_eq!(
        got[0].headers["i-twilio-idempotency-token"],
        got[1].headers["i-twilio-idempotency-token"]
    );
    let attempts = &e.client_messages(&call)[0].deliveries[0].attempts;
    assert_eq!(attempts.len(), 3);
    assert!(attempts[0].dropped && !attempts[2].dropped);
    assert!(attempts[2].duplicate);
    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    // Reordering: the first message is held back until the second has gone.
    e.set_callback_faults(CallbackFaults {
        reorder: 1.0,
        ..CallbackFaults::default()
    })
    .unwrap();
    let call = e.create_call();
    let reordered = Receiver::start().await;
    subscribe(&e, &call, &reordered.url("/order"), None).await;
    e.client_send(&call, json!({"n": 1})).unwrap();
    e.client_send(&call, json!({"n": 2})).unwrap();
    e.settled().await;
    let order: Vec<u64> = reordered
        .received()
        .iter()
        .map(|r| verified(&validator, &reordered, r).sequence_number)
        .collect();
    assert_eq!(order, [2, 1]);
}

/// The client cannot send into an unknown or ended call, nor more than 10,000 characters
/// (twilio-voice.js 31212); a call without subscriptions delivers nothing.
#[tokio::test]
async fn client_send_rules() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    let unknown: CallSid = format!("CA{:032x}", 3).parse().unwrap();
    assert!(matches!(
        e.client_send(&unknown, json!({})),
        Err(EmulatorError::UnknownCall(_))
    ));
    assert!(matches!(
        e.client_send(&call, json!("x".repeat(10_000))),
        Err(EmulatorError::ContentTooLong(10_002))
    ));
    e.client_send(&call, json!({"nobody": "listens"})).unwrap();
    e.settled().await;
    assert!(e.client_messages(&call)[0].deliveries.is_empty());
    e.set_call_status(&call, CallStatus::Completed).unwrap();
    assert_eq!(
        e.client_send(&call, json!({})),
        Err(EmulatorError::CallNotActive(CallStatus::Completed))
    );
}
