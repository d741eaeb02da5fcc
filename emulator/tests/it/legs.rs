//! A Voice SDK client call's two legs, the rules the client applies to what it sends, its
//! text posted byte for byte, and reset.

use serde_json::json;
use twilio_call_messages::{CallSid, Client};
use twilio_call_messages_emulator::{
    CLIENT_MESSAGES_PER_SECOND, CallStatus, ClientLeg, Emulator, EmulatorError,
};

use crate::common::Receiver;

fn client(e: &Emulator) -> Client {
    Client::builder()
        .account_sid(e.account_sid().as_str())
        .auth_token(e.auth_token())
        .base_url(e.base_url())
        .build()
        .unwrap()
}

/// Outgoing: the client is on the parent leg; incoming: on the child leg (Voice SDK "Call
/// Message Events"). REST answers 201 on either leg; the client receives only what is
/// addressed to its own leg and drops the rest with the reason (twilio-voice.js
/// `lib/twilio/call.ts`).
#[tokio::test]
async fn the_client_receives_only_on_its_own_leg() {
    let e = Emulator::start().await.unwrap();
    let sdk = client(&e);
    for leg in [ClientLeg::Outgoing, ClientLeg::Incoming] {
        let call = e.create_client_call(leg);
        let (mine, other) = match leg {
            ClientLeg::Outgoing => (call.parent, call.child),
            _ => (call.child, call.parent),
        };
        assert_eq!(call.client, mine);
        assert_eq!(
            e.call(&call.child).unwrap().parent_call_sid,
            Some(call.parent)
        );
        sdk.send_message(mine, &json!({"to": "mine"}))
            .await
            .unwrap();
        sdk.send_message(other, &json!({"to": "other"}))
            .await
            .unwrap();
        let received = e.client_received(&mine);
        assert_eq!(received.len(), 1, "{leg:?}");
        assert_eq!(received[0].content, json!({"to": "mine"}));
        assert!(e.client_received(&other).is_empty(), "{leg:?}");
        let dropped = e.dropped_messages(&other);
        assert_eq!(dropped.len(), 1, "{leg:?}");
        assert_eq!(dropped[0].client_call_sid, mine);
        assert!(
            dropped[0]
                .reason
                .contains("drops a message whose call SID is not its own")
        );
        assert!(dropped[0].reason.contains(mine.as_str()));
    }
}

/// What the client sends carries its leg's SID, reaches the subscriptions of that leg, and
/// its `Content` is the client's text byte for byte.
#[tokio::test]
async fn the_client_sends_from_its_leg_with_its_own_text() {
    let e = Emulator::start().await.unwrap();
    let receiver = Receiver::start().await;
    let call = e.create_client_call(ClientLeg::Incoming);
    client(&e)
        .subscribe(call.child, &format!("{}/hook", receiver.base))
        .await
        .unwrap();
    let text = r#"{ "zeta": 1, "alpha": [2, 1] }"#;
    // Sent through the other leg's SID: the client is still the one that sends.
    e.client_send_text(&call.parent, text).unwrap();
    e.settled().await;
    let sent = e.client_messages(&call.child);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].call_sid, call.child);
    assert_eq!(sent[0].content_text, text);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["Content"], text, "the text, not a re-serialization");
    assert_eq!(body["CallSid"], call.child.as_str());
}

/// The Voice SDK's own refusals: 31212 over 10 KB, 31210 another type (control API), 31211
/// while ringing, 31206 beyond the rate (the figure is an assumption); nothing is posted.
#[tokio::test]
async fn the_client_refuses_as_the_voice_sdk_does() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    let long = format!("\"{}\"", "x".repeat(10_000));
    let refused = e.client_send_text(&call, &long).unwrap_err();
    assert_eq!(refused.code(), Some(31212));
    assert!(matches!(
        e.client_send_text(&call, "{not json"),
        Err(EmulatorError::ContentNotJson(_))
    ));
    e.set_call_status(&call, CallStatus::Ringing).unwrap();
    assert_eq!(
        e.client_send(&call, json!({})),
        Err(EmulatorError::CallNotConnected)
    );
    e.set_call_status(&call, CallStatus::InProgress).unwrap();
    for n in 0..CLIENT_MESSAGES_PER_SECOND {
        e.client_send(&call, json!({ "n": n })).unwrap();
    }
    let too_fast = e.client_send(&call, json!({})).unwrap_err();
    assert_eq!(too_fast, EmulatorError::RateExceeded);
    assert_eq!(too_fast.code(), Some(31206));
    assert_eq!(e.client_messages(&call).len(), CLIENT_MESSAGES_PER_SECOND);

    // Through the control API: the refusal is its answer, with the code.
    let http = crate::common::http();
    let other = e.create_call();
    let url = format!("{}/emulator/calls/{other}/client-messages", e.base_url());
    let answer = http
        .post(&url)
        .json(&json!({"content": {}, "message_type": "custom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["code"], 31210, "{body}");
    // Both ways of giving the content keep the text.
    let raw = r#"{"content": {"b" : 1, "a": 2}}"#;
    let answer = http
        .post(&url)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let answer = http
        .post(&url)
        .json(&json!({"content_text": "[3, 2,1]"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let texts: Vec<String> = e
        .client_messages(&other)
        .into_iter()
        .map(|m| m.content_text)
        .collect();
    assert_eq!(texts, [r#"{"b" : 1, "a": 2}"#, "[3, 2,1]"]);
}

/// Reset forgets calls, messages, subscriptions, attempts and counters, cancels deliveries
/// under way, and keeps the account, token and port: two runs against one emulator.
#[tokio::test]
async fn reset_clears_everything_between_two_runs() {
    let e = Emulator::builder()
        .concurrency_limit(5)
        .start()
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    // A receiver that never answers in time keeps a delivery under way.
    receiver.delay(std::time::Duration::from_secs(30));
    let sdk = client(&e);
    let call = e.create_call();
    sdk.subscribe(call, &format!("{}/slow", receiver.base))
        .await
        .unwrap();
    sdk.send_message(call, &json!({"run": 1})).await.unwrap();
    e.client_send(&call, json!({"run": 1})).unwrap();
    e.set_concurrency_limit(Some(1));
    let (account, token, base) = (
        *e.account_sid(),
        e.auth_token().to_owned(),
        e.base_url().to_owned(),
    );

    let http = crate::common::http();
    let answer = http
        .post(format!("{base}/emulator/reset"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    tokio::time::timeout(std::time::Duration::from_secs(2), e.settled())
        .await
        .expect("the delivery under way was cancelled");
    assert!(e.calls().is_empty());
    assert!(e.call(&call).is_none());
    assert!(e.messages().is_empty());
    assert_eq!(e.stats(), Default::default());
    assert!(e.requests_per_key().is_empty());
    assert_eq!(
        (*e.account_sid(), e.auth_token(), e.base_url()),
        (account, token.as_str(), base.as_str())
    );

    // The second run starts from nothing, with the limit the emulator started with.
    let second = e.create_call();
    for _ in 0..3 {
        sdk.send_message(second, &json!({"run": 2})).await.unwrap();
    }
    assert_eq!(e.client_received(&second).len(), 3);
    assert_eq!(e.stats().messages, 3);
    let unknown: CallSid = call;
    assert!(e.client_received(&unknown).is_empty());
}
