//! `subscribe` / `unsubscribe` against a local server, and the `mock` helpers for all three
//! operations.

use crate::twilio_mock::{DATE_CREATED, REQUEST_ID, TwilioMock};
use httpmock::MockServer;
use twilio_call_messages::{
    AccountSid, CallSid, CallbackMethod, Client, Error, InputError, SubscriptionSid,
};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SUB: &str = "ZYcccccccccccccccccccccccccccccccc";
const TOKEN: &str = "auth-token";
const BASE: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(server.base_url())
        .build()
        .unwrap()
}

#[tokio::test]
async fn subscribe_sends_the_exact_form_and_decodes_the_subscription() {
    let server = MockServer::start_async().await;
    let created = format!(
        r#"{{"account_sid":"{ACCOUNT}","call_sid":"{CALL}","sid":"{SUB}","date_created":"{DATE_CREATED}","uri":"{BASE}/UserDefinedMessageSubscriptions/{SUB}.json"}}"#
    );
    let without_method = server
        .mock_async(|when, then| {
            when.method("POST")
                .path(format!("{BASE}/UserDefinedMessageSubscriptions.json"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(
                    "Callback=https%3A%2F%2Fhooks.example.com%2Ftwilio%3Fsvc%3D1&IdempotencyKey=k1",
                );
            then.status(201)
                .header("twilio-request-id", REQUEST_ID)
                .body(&created);
        })
        .await;
    let with_method = server
        .mock_async(|when, then| {
            when.path(format!("{BASE}/UserDefinedMessageSubscriptions.json"))
                .body("Callback=https%3A%2F%2Fhooks.example.com%2Ftwilio%3Fsvc%3D1&IdempotencyKey=k2&Method=GET");
            then.status(201).body(&created);
        })
        .await;
    let client = client(&server);

    let sub = client
        .subscribe(CALL, "https://hooks.example.com/twilio?svc=1")
        .idempotency_key("k1")
        .await
        .unwrap();
    assert_eq!(sub.sid, SUB);
    assert_eq!(sub.account_sid, ACCOUNT);
    assert_eq!(sub.call_sid, CALL);
    assert_eq!(sub.date_created.unwrap().unix_timestamp(), 1_576_699_321);
    assert_eq!(
        sub.uri.as_deref(),
        Some(format!("{BASE}/UserDefinedMessageSubscriptions/{SUB}.json").as_str())
    );
    assert_eq!(
        (sub.idempotency_key.as_str(), sub.request_id.as_deref()),
        ("k1", Some(REQUEST_ID))
    );

    client
        .subscribe(CALL, "https://hooks.example.com/twilio?svc=1")
        .method(CallbackMethod::Get)
        .idempotency_key("k2")
        .await
        .unwrap();
    without_method.assert_async().await;
    with_method.assert_async().await;
}

#[tokio::test]
async fn unsubscribe_is_ok_on_204_and_a_typed_not_found_on_404() {
    let server = MockServer::start_async().await;
    let path = format!("{BASE}/UserDefinedMessageSubscriptions/{SUB}.json");
    let deleted = server
        .mock_async(|when, then| {
            when.method("DELETE")
                .path(&path)
                .header_missing("content-type");
            then.status(204);
        })
        .await;
    let client = client(&server);
    let sid: SubscriptionSid = SUB.parse().unwrap();
    client.unsubscribe(CALL, sid).await.unwrap();
    deleted.assert_async().await;

    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method("DELETE").path(&path);
            then.status(404).body(r#"{"code":20404,"message":"The requested resource was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}"#);
        })
        .await;
    let err = self::client(&server)
        .unsubscribe(CALL, SUB)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(
        (err.status().map(|s| s.as_u16()), err.code()),
        (Some(404), Some(20404))
    );
    assert_eq!(err.idempotency_key(), None, "DELETE has no idempotency key");
}

#[tokio::test]
async fn bad_callback_urls_and_sids_send_nothing() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(201);
        })
        .await;
    let client = client(&server);
    for (url, reason) in [
        ("not a url", "not an absolute URL"),
        ("ftp://example.com/x", "http or https"),
        ("https://bad_host.example.com/x", "underscore"),
        ("https://me:pw@example.com/x", "credentials"),
    ] {
        let err = client.subscribe(CALL, url).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(InputError::CallbackUrl(r)) if r.contains(reason)),
            "{url}: {err}"
        );
    }
    let err = client
        .subscribe("CAnope", "https://example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(InputError::Sid(_))));
    let err = client
        .unsubscribe(CALL, "KXcccccccccccccccccccccccccccccccc")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid subscription SID"),
        "{err}"
    );
    any.assert_calls_async(0).await;
}

#[tokio::test]
async fn mock_helpers_cover_all_three_operations() {
    let server = MockServer::start_async().await;
    let account: AccountSid = ACCOUNT.parse().unwrap();
    let call: CallSid = CALL.parse().unwrap();
    let sub: SubscriptionSid = SUB.parse().unwrap();

    let send = server.mock_send_message(|when, then| {
        when.auth_token(&account, TOKEN)
            .call_sid(&call)
            .content(&serde_json::json!({"b": [1, 2], "a": "x"}));
        then.created();
    });
    let subscribe = server.mock_subscribe(|when, then| {
        when.auth_token(&account, TOKEN)
            .callback("https://example.com/hook")
            .method(None);
        then.created_with_sid(&sub);
    });
    let unsubscribe = server.mock_unsubscribe(|when, then| {
        when.auth_token(&account, TOKEN).subscription_sid(&sub);
        then.deleted();
    });
    let gone = server.mock_unsubscribe(|when, then| {
        when.subscription_sid(&"ZYdddddddddddddddddddddddddddddddd".parse().unwrap());
        then.not_found();
    });
    let client = client(&server);

    // Key order differs from the expectation: the helper compares JSON values.
    let first = client
        .send_message_json(call, r#"{"a":"x","b":[1,2]}"#)
        .idempotency_key("same")
        .await
        .unwrap();
    let again = client
        .send_message_json(call, r#"{"a":"x","b":[1,2]}"#)
        .idempotency_key("same")
        .await
        .unwrap();
    assert_eq!(first.sid, again.sid, "same key, same SID, as Twilio does");
    assert!(
        client
            .send_message(call, &serde_json::json!({"a": "y"}))
            .await
            .unwrap_err()
            .status()
            .is_some()
    );

    let created = client
        .subscribe(call, "https://example.com/hook")
        .await
        .unwrap();
    assert_eq!(created.sid, sub);
    assert_eq!(created.call_sid, call);
    client.unsubscribe(call, created.sid).await.unwrap();
    let err = client
        .unsubscribe(call, "ZYdddddddddddddddddddddddddddddddd")
        .await
        .unwrap_err();
    assert!(
        err.is_not_found() && err.request_id() == Some(REQUEST_ID),
        "{err:?}"
    );

    send.assert_calls_async(2).await;
    subscribe.assert_async().await;
    unsubscribe.assert_async().await;
    gone.assert_async().await;
}

#[tokio::test]
async fn mock_error_answers_are_twilio_shaped() {
    let server = MockServer::start_async().await;
    server.mock_send_message(|_, then| {
        then.error(400, 21220, "Call is not in-progress. Cannot send message.");
    });
    let err = client(&server).send_message(CALL, &1).await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((api.status.as_u16(), api.code), (400, Some(21220)));
    assert_eq!(
        api.more_info.as_deref(),
        Some("https://www.twilio.com/docs/errors/21220")
    );
}
