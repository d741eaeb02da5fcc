//! `send_message` against a local server: the exact wire format, decoding, and every error.

use std::time::Duration;

use httpmock::MockServer;
use serde_json::json;
use twilio_call_messages::{CallSid, Client, Error, InputError, RetryPolicy};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "auth-token-s3cr3t";
const PATH: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/UserDefinedMessages.json";
const CREATED: &str = r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","call_sid":"CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":"Wed, 18 Dec 2019 20:02:01 +0000"}"#;

fn client(server: &MockServer) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(server.base_url())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("valid configuration")
}

/// `Basic base64(ACCOUNT:TOKEN)`, spelled out so the test does not share the SDK's encoder.
const BASIC: &str =
    "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTphdXRoLXRva2VuLXMzY3IzdA==";

#[tokio::test]
async fn sends_the_exact_wire_format() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method("POST")
                .path(PATH)
                .header("authorization", BASIC)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .header_prefix("user-agent", "twilio-call-messages/")
                .header_missing("api-version")
                // `Content` is the JSON text, percent-encoded once; then the key.
                .body("Content=%7B%22hello%22%3A%22world+%26+co%22%7D&IdempotencyKey=order-7");
            then.status(201)
                .header("content-type", "application/json")
                .body(CREATED);
        })
        .await;

    let message = client(&server)
        .send_message(CALL, &json!({"hello": "world & co"}))
        .idempotency_key("order-7")
        .await;
    mock.assert_async().await;
    let message = message.expect("201");
    assert_eq!(message.sid, "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(message.account_sid, ACCOUNT);
    assert_eq!(message.call_sid, CALL);
    assert_eq!(message.idempotency_key, "order-7");
    let date = message.date_created.expect("date_created");
    assert_eq!(
        date.unix_timestamp(),
        1_576_699_321,
        "Wed, 18 Dec 2019 20:02:01 +0000"
    );
}

#[tokio::test]
#[allow(clippy::needless_borrows_for_generic_args)] // `&CallSid` is the documented form
async fn generates_one_uuid_idempotency_key_and_returns_it() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method("POST")
                .path(PATH)
                .form_urlencoded_tuple_matches(
                    "^IdempotencyKey$",
                    "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                );
            then.status(201).body(CREATED);
        })
        .await;
    let client = client(&server);
    let call: CallSid = CALL.parse().unwrap();
    let first = client.send_message(&call, &json!(1)).await.unwrap();
    let second = client.send_message(&call, &json!(1)).await.unwrap();
    mock.assert_calls_async(2).await;
    assert_ne!(
        first.idempotency_key, second.idempotency_key,
        "one key per logical call"
    );
}

#[tokio::test]
async fn raw_json_text_is_sent_as_is() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.form_urlencoded_tuple("Content", "{ \"a\" : [1, 2] }");
            then.status(201).body(CREATED);
        })
        .await;
    client(&server)
        .send_message_json(CALL, "{ \"a\" : [1, 2] }")
        .await
        .unwrap();
    mock.assert_async().await;
}

#[tokio::test]
async fn api_key_credentials_authenticate_as_the_key() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            // base64("SKcccccccccccccccccccccccccccccccc:key-secret")
            when.path(PATH).header(
                "authorization",
                "Basic U0tjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjYzprZXktc2VjcmV0",
            );
            then.status(201).body(CREATED);
        })
        .await;
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .api_key("SKcccccccccccccccccccccccccccccccc", "key-secret")
        .base_url(server.base_url())
        .build()
        .unwrap();
    client.send_message(CALL, &json!({})).await.unwrap();
    mock.assert_async().await;
}

#[tokio::test]
async fn bad_input_is_rejected_before_any_request() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(201).body(CREATED);
        })
        .await;
    let client = client(&server);

    let bad_sid = client.send_message("CA123", &json!({})).await.unwrap_err();
    assert!(
        matches!(bad_sid, Error::InvalidInput(InputError::Sid(_))),
        "{bad_sid}"
    );
    assert!(
        bad_sid.to_string().contains("invalid call SID"),
        "{bad_sid}"
    );

    let not_json = client.send_message_json(CALL, "hello").await.unwrap_err();
    assert!(
        matches!(not_json, Error::InvalidInput(InputError::ContentNotJson(_))),
        "{not_json}"
    );

    let long = "x".repeat(10_000);
    let too_long = client.send_message(CALL, &long).await.unwrap_err();
    assert!(
        matches!(
            too_long,
            Error::InvalidInput(InputError::ContentTooLong {
                chars: 10_002,
                max: 10_000
            })
        ),
        "{too_long}"
    );

    let empty_key = client
        .send_message(CALL, &json!({}))
        .idempotency_key("")
        .await
        .unwrap_err();
    assert!(matches!(
        empty_key,
        Error::InvalidInput(InputError::IdempotencyKey(_))
    ));

    for e in [&bad_sid, &not_json, &too_long, &empty_key] {
        assert!(!e.is_retryable() && e.status().is_none() && e.request().is_none());
    }
    any.assert_calls_async(0).await;
}

#[tokio::test]
async fn classic_twilio_errors_decode() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(PATH);
            then.status(400)
                .header("content-type", "application/json")
                .header("twilio-request-id", "RQ11111111111111111111111111111111")
                .body(r#"{"code":21220,"message":"Call is not in-progress. Cannot send message.","more_info":"https://www.twilio.com/docs/errors/21220","status":400}"#);
        })
        .await;
    let err = client(&server)
        .send_message(CALL, &json!({}))
        .idempotency_key("k1")
        .await
        .unwrap_err();
    let Error::Api(api) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(api.status.as_u16(), 400);
    assert_eq!(api.code, Some(21220));
    assert_eq!(api.message, "Call is not in-progress. Cannot send message.");
    assert_eq!(
        api.more_info.as_deref(),
        Some("https://www.twilio.com/docs/errors/21220")
    );
    assert_eq!(err.code(), Some(21220));
    assert_eq!(err.request_id(), Some("RQ11111111111111111111111111111111"));
    assert_eq!(err.idempotency_key(), Some("k1"));
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "CreateUserDefinedMessage (request RQ11111111111111111111111111111111): HTTP 400, \
         Twilio error 21220: Call is not in-progress. Cannot send message. \
         (https://www.twilio.com/docs/errors/21220)"
    );
}

#[tokio::test]
async fn problem_documents_decode() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(PATH);
            then.status(429)
                .header("content-type", "application/problem+json")
                .body(r#"{"type":"https://www.twilio.com/docs/errors/20429","title":"Too Many Requests","status":429,"code":20429,"detail":"Rate limit exceeded","instance":"/x"}"#);
        })
        .await;
    // A throttled request is retried until the total deadline: a short one, so the test
    // checks the decoded 429 without waiting out the default 60 s.
    let err = client(&server)
        .send_message(CALL, &json!({}))
        .retry_policy(RetryPolicy::default().total_deadline(Duration::from_millis(500)))
        .await
        .unwrap_err();
    let Error::Api(api) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!((api.status.as_u16(), api.code), (429, Some(20429)));
    assert_eq!(api.message, "Rate limit exceeded");
    assert_eq!(
        api.more_info.as_deref(),
        Some("https://www.twilio.com/docs/errors/20429")
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn html_and_empty_error_bodies_keep_their_status() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(PATH)
                .form_urlencoded_tuple("IdempotencyKey", "html");
            then.status(502)
                .header("content-type", "text/html")
                .body("<html><body><h1>502 Bad Gateway</h1></body></html>");
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path(PATH)
                .form_urlencoded_tuple("IdempotencyKey", "empty");
            then.status(401);
        })
        .await;
    let client = client(&server);

    let html = client
        .send_message(CALL, &json!({}))
        .idempotency_key("html")
        .await
        .unwrap_err();
    assert_eq!(html.status().map(|s| s.as_u16()), Some(502), "{html:?}");
    let Error::Api(api) = &html else {
        panic!("{html:?}")
    };
    assert_eq!(api.message, "Bad Gateway");
    assert_eq!(
        api.body_excerpt.as_deref(),
        Some("<html><body><h1>502 Bad Gateway</h1></body></html>")
    );
    assert!(html.is_retryable());

    let empty = client
        .send_message(CALL, &json!({}))
        .idempotency_key("empty")
        .await
        .unwrap_err();
    assert_eq!(empty.status().map(|s| s.as_u16()), Some(401), "{empty:?}");
    let Error::Api(api) = &empty else {
        panic!("{empty:?}")
    };
    assert_eq!(
        (api.code, api.message.as_str(), api.body_excerpt.as_deref()),
        (None, "Unauthorized", None)
    );
    assert!(!empty.is_retryable());
}

#[tokio::test]
async fn an_undecodable_success_says_the_message_was_accepted() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(PATH);
            then.status(201).body(r#"{"sid":"not-a-sid"}"#);
        })
        .await;
    let err = client(&server)
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    let Error::Decode { status, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.as_u16(), 201);
    assert!(
        reason.contains("field `sid`") && reason.contains("do not resend the message"),
        "{reason}"
    );
    assert!(!err.is_retryable());

    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(PATH);
            then.status(201).body("<html>");
        })
        .await;
    let err = client(&server)
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { status, body_excerpt, .. } if status.as_u16() == 201 && body_excerpt == "<html>"),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_connections_are_never_sent() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let err = client.send_message(CALL, &json!({})).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.idempotency_key().is_some());
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(PATH);
            then.status(201).body(CREATED).delay(Duration::from_secs(3));
        })
        .await;
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(server.base_url())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.send_message(CALL, &json!({})).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn secrets_never_print() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(PATH);
            then.status(401)
                .body(r#"{"code":20003,"message":"Authenticate","status":401}"#);
        })
        .await;
    let client = client(&server);
    let err = client.send_message(CALL, &json!({})).await.unwrap_err();
    let key_client = Client::builder()
        .account_sid(ACCOUNT)
        .api_key("SKcccccccccccccccccccccccccccccccc", "key-s3cr3t")
        .build()
        .unwrap();
    let builder = Client::builder().account_sid(ACCOUNT).auth_token(TOKEN);
    let printed = [
        format!("{client:?}"),
        format!("{key_client:?}"),
        format!("{builder:?}"),
        format!("{err:?}"),
        format!("{err}"),
        format!("{:?}", client.send_message(CALL, &json!({}))),
    ];
    for text in printed {
        assert!(!text.contains("s3cr3t"), "secret in {text}");
        assert!(!text.contains("QUNhYWFh"), "encoded credentials in {text}");
    }
}
