//! Credentials and message content never appear in any `Debug`, `Display`, error or
//! `tracing` event of a run that exercises success, API errors, retries and bad input.

use std::time::Duration;

use crate::twilio_mock::TwilioMock;
use httpmock::MockServer;
use twilio_call_messages::{Client, RetryPolicy};

use crate::common;

use common::captured::Captured;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "TOKEN-c0ffee-never-print";
const API_SECRET: &str = "SECRET-d00d-never-print";
const CONTENT_MARKER: &str = "PRIVATE-user-data-4242";

#[tokio::test(flavor = "current_thread")]
async fn secrets_and_content_never_reach_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start_async().await;
    server.mock_send_message(|when, then| {
        when.idempotency_key("ok");
        then.created();
    });
    server.mock_send_message(|when, then| {
        when.idempotency_key("throttled");
        then.error(429, 20429, "Too Many Requests");
    });
    server.mock_send_message(|_, then| {
        then.error(401, 20003, "Authenticate");
    });
    let token_client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(server.base_url())
        // Throttled requests retry until the deadline: keep it short.
        .retry_policy(
            RetryPolicy::default()
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(20))
                .total_deadline(Duration::from_millis(300)),
        )
        .build()
        .unwrap();
    let key_client = Client::builder()
        .account_sid(ACCOUNT)
        .api_key("SKcccccccccccccccccccccccccccccccc", API_SECRET)
        .base_url(server.base_url())
        .build()
        .unwrap();
    let content = serde_json::json!({ "secret": CONTENT_MARKER });

    let mut printed = vec![format!("{token_client:?}"), format!("{key_client:?}")];
    let ok = token_client
        .send_message(CALL, &content)
        .idempotency_key("ok")
        .await
        .unwrap();
    printed.push(format!("{ok:?}"));
    for (client, key) in [(&token_client, "throttled"), (&key_client, "denied")] {
        let err = client
            .send_message(CALL, &content)
            .idempotency_key(key)
            .await
            .unwrap_err();
        printed.push(format!("{err:?}"));
        printed.push(format!("{err}"));
    }
    let too_long = token_client
        .send_message(CALL, &"x".repeat(20_000))
        .await
        .unwrap_err();
    printed.push(format!("{too_long:?} {too_long}"));
    printed.push(format!("{:?}", token_client.send_message(CALL, &content)));
    let bad_config = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(format!("{TOKEN}\n"))
        .build();
    printed.push(format!("{bad_config:?}"));

    let logs = captured.text();
    assert!(
        logs.contains("CreateUserDefinedMessage"),
        "the span was captured:\n{logs}"
    );
    assert!(logs.contains("retrying"), "retries were logged:\n{logs}");
    printed.push(logs);

    let encoded_token = "QUNhYWFh"; // base64 of "ACaaaa…", the start of the Basic credentials
    for text in &printed {
        for secret in [TOKEN, API_SECRET, CONTENT_MARKER, encoded_token] {
            assert!(!text.contains(secret), "{secret} leaked in:\n{text}");
        }
    }
}
