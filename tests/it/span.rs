//! The operation span: OpenTelemetry's HTTP client fields, recorded only into our own span.
//! One test function in its own binary: tracing caches per-callsite interest process-wide, so
//! subscribers set by tests running in parallel would disturb each other.

use std::future::IntoFuture;
use std::time::Duration;

use crate::twilio_mock::TwilioMock;
use httpmock::MockServer;
use serde_json::json;
use twilio_call_messages::{Client, RetryPolicy};

use crate::common;

use common::captured::Captured;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .base_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
}

fn client(base: &str) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(base)
        .retry_policy(fast())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn spans() {
    the_span_carries_opentelemetry_http_client_fields().await;
    nothing_is_recorded_into_a_span_that_is_not_ours().await;
}

fn subscriber(level: tracing::Level, captured: &Captured) -> impl tracing::Subscriber {
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish()
}

async fn the_span_carries_opentelemetry_http_client_fields() {
    let server = MockServer::start_async().await;
    let throttled = server.mock_send_message(|_, then| {
        then.error(503, 20500, "unavailable");
    });
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(tracing::Level::DEBUG, &captured));
    let client = client(&server.base_url());

    let err = client
        .send_message(CALL, &json!({}))
        .retry_policy(fast().max_attempts(2))
        .await
        .unwrap_err();
    assert_eq!(err.status().unwrap().as_u16(), 503);
    throttled.delete_async().await;
    server.mock_send_message(|_, then| {
        then.created();
    });
    client.send_message(CALL, &json!({})).await.unwrap();

    let logs = captured.text();
    let closes: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("twilio_call_messages{") && l.contains(": close "))
        .collect();
    assert_eq!(closes.len(), 2, "{logs}");
    let port = server.address().port();
    for line in &closes {
        for field in [
            "operation=\"CreateUserDefinedMessage\"",
            &format!("call_sid={CALL}"),
            "http.request.method=\"POST\"",
            "server.address=\"127.0.0.1\"",
            &format!(
                "url.full=\"http://127.0.0.1:{port}/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}/UserDefinedMessages.json\""
            ),
        ] {
            assert!(line.contains(field), "{field} missing in {line}");
        }
    }
    assert!(
        closes[0].contains("http.response.status_code=503"),
        "{}",
        closes[0]
    );
    assert!(
        closes[0].contains("http.request.resend_count=1"),
        "{}",
        closes[0]
    );
    assert!(closes[0].contains("error.type=\"503\""), "{}", closes[0]);
    assert!(
        closes[1].contains("http.response.status_code=201"),
        "{}",
        closes[1]
    );
    assert!(!closes[1].contains("error.type"), "{}", closes[1]);
    assert!(!closes[1].contains("resend_count"), "{}", closes[1]);
    assert!(!logs.contains("token"), "{logs}");
}

async fn nothing_is_recorded_into_a_span_that_is_not_ours() {
    let server = MockServer::start_async().await;
    server.mock_send_message(|_, then| {
        then.error(503, 20500, "unavailable");
    });
    let captured = Captured::default();
    // INFO: the caller's span is enabled, ours (DEBUG) is not.
    let _guard = tracing::subscriber::set_default(subscriber(tracing::Level::INFO, &captured));
    let client = client(&server.base_url());
    let empty = tracing::field::Empty;
    let caller = tracing::info_span!(
        "caller",
        status = empty,
        attempts = empty,
        request_id = empty,
        "http.response.status_code" = empty,
        "http.request.resend_count" = empty,
        "error.type" = empty,
        "twilio.request_id" = empty,
        "url.full" = empty,
    );
    let err = tracing::Instrument::instrument(
        client
            .send_message(CALL, &json!({}))
            .retry_policy(fast().max_attempts(2))
            .into_future(),
        caller.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.request().unwrap().attempts, 2);
    drop(caller);
    let logs = captured.text();
    let close = logs.lines().find(|l| l.contains("close")).expect(&logs);
    assert!(close.contains("caller"), "{close}");
    for field in [
        "status",
        "attempts",
        "request_id",
        "resend_count",
        "error.type",
        "url.full",
    ] {
        assert!(
            !close.contains(field),
            "{field} was recorded into the caller's span: {close}"
        );
    }
}
