//! Status faults with httpmock: exact attempt counts, the same idempotency key on every
//! attempt, `Retry-After`, non-retried 4xx, deletes that succeeded before a failure, redirects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use serde_json::json;
use twilio_call_messages::{Client, Error, GaveUp, RetryPolicy};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SUB: &str = "ZYcccccccccccccccccccccccccccccccc";
const BASE: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls/CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const CREATED: &str = r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","call_sid":"CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":"Wed, 18 Dec 2019 20:02:01 +0000"}"#;

fn messages() -> String {
    format!("{BASE}/UserDefinedMessages.json")
}

/// Retries without real waiting, so the tests stay fast.
fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .base_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
}

fn client(server: &MockServer, policy: RetryPolicy) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(server.base_url())
        .retry_policy(policy)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Records the `IdempotencyKey` of every request and answers `status` with `body`.
fn recording(
    keys: &Arc<Mutex<Vec<String>>>,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> impl Fn(&HttpMockRequest) -> HttpMockResponse + Send + Sync + 'static {
    let keys = keys.clone();
    move |req| {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(req.body_ref()).unwrap();
        let key = form
            .into_iter()
            .find(|(k, _)| k == "IdempotencyKey")
            .map(|(_, v)| v);
        keys.lock().unwrap().push(key.unwrap_or_default());
        let mut response = HttpMockResponse::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response.body(body).build()
    }
}

#[tokio::test]
async fn throttled_then_accepted_reuses_one_key() {
    let server = MockServer::start_async().await;
    let keys = Arc::new(Mutex::new(Vec::new()));
    let throttled = server
        .mock_async(|when, then| {
            when.path(messages());
            then.respond_with(recording(
                &keys,
                429,
                &[],
                r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
            ))
            .up_to_n_times(2);
        })
        .await;
    let accepted = server
        .mock_async(|when, then| {
            when.path(messages());
            then.respond_with(recording(&keys, 201, &[], CREATED));
        })
        .await;

    let message = client(&server, fast())
        .send_message(CALL, &json!({"a": 1}))
        .await
        .unwrap();
    throttled.assert_calls_async(2).await;
    accepted.assert_calls_async(1).await;
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| *k == message.idempotency_key),
        "{keys:?}"
    );
}

#[tokio::test]
async fn each_retryable_status_and_body_is_retried_to_the_limit() {
    let bodies: [(&str, &[(&str, &str)]); 3] = [
        (
            r#"{"code":20500,"message":"Internal Server Error","status":500}"#,
            &[("content-type", "application/json")],
        ),
        (
            "<html><h1>Bad Gateway</h1></html>",
            &[("content-type", "text/html")],
        ),
        ("", &[]),
    ];
    for status in [429u16, 500, 502, 503, 504] {
        for (body, headers) in bodies {
            let server = MockServer::start_async().await;
            let keys = Arc::new(Mutex::new(Vec::new()));
            let mock = server
                .mock_async(|when, then| {
                    when.path(messages());
                    then.respond_with(recording(&keys, status, headers, body));
                })
                .await;
            // Throttling does not spend attempts by default; here it does, to test the cap.
            let err = client(&server, fast().max_attempts(3).retry_throttled(false))
                .send_message(CALL, &json!({}))
                .idempotency_key("same-key")
                .await
                .unwrap_err();
            mock.assert_calls_async(3).await;
            assert_eq!(
                err.status().map(|s| s.as_u16()),
                Some(status),
                "{status} {body:?}"
            );
            assert_eq!(err.request().map(|r| r.attempts), Some(3));
            assert!(keys.lock().unwrap().iter().all(|k| k == "same-key"));
        }
    }
}

#[tokio::test]
async fn answers_that_are_not_transient_are_not_retried() {
    for status in [400u16, 401, 403, 404, 409, 501] {
        let server = MockServer::start_async().await;
        let mock = server
            .mock_async(|when, then| {
                when.path(messages());
                then.status(status)
                    .body(format!(r#"{{"code":1,"message":"m","status":{status}}}"#));
            })
            .await;
        let err = client(&server, fast())
            .send_message(CALL, &json!({}))
            .await
            .unwrap_err();
        mock.assert_calls_async(1).await;
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(err.request().map(|r| r.attempts), Some(1));
    }
}

#[tokio::test]
async fn retry_after_is_honoured_and_none_turns_retries_off() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path(messages());
            then.status(429).header("retry-after", "1").body("{}");
        })
        .await;
    let started = std::time::Instant::now();
    let err = client(&server, fast().max_attempts(2).retry_throttled(false))
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    mock.assert_calls_async(2).await;
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(err.request().unwrap().gave_up, Some(GaveUp::Attempts));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );

    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path(messages());
            then.status(503);
        })
        .await;
    let _ = client(&server, RetryPolicy::none())
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    mock.assert_calls_async(1).await;

    // A per-call policy overrides the client's.
    let _ = client(&server, fast())
        .send_message(CALL, &json!({}))
        .retry_policy(RetryPolicy::none())
        .await
        .unwrap_err();
    mock.assert_calls_async(2).await;
}

#[tokio::test]
async fn a_throttled_request_keeps_trying_until_the_deadline_without_spending_attempts() {
    let server = MockServer::start_async().await;
    let keys = Arc::new(Mutex::new(Vec::new()));
    let throttled = server
        .mock_async(|when, then| {
            when.path(messages());
            then.respond_with(recording(
                &keys,
                429,
                &[("content-type", "application/json")],
                r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
            ));
        })
        .await;
    let policy = fast()
        .max_attempts(2)
        .total_deadline(Duration::from_millis(400));
    let err = client(&server, policy)
        .send_message(CALL, &json!({}))
        .idempotency_key("throttled-key")
        .await
        .unwrap_err();
    let calls = throttled.calls_async().await;
    assert!(calls > 2, "429s do not spend the 2 attempts: {calls} calls");
    assert!(err.is_throttled() && err.code() == Some(20429), "{err:?}");
    assert_eq!(err.request().unwrap().attempts as usize, calls);
    assert!(
        matches!(
            err.request().unwrap().gave_up,
            Some(GaveUp::Deadline { .. })
        ),
        "{err:?}"
    );
    assert!(keys.lock().unwrap().iter().all(|k| k == "throttled-key"));

    // Once Twilio has room, the same key goes through.
    throttled.delete_async().await;
    server
        .mock_async(|when, then| {
            when.path(messages());
            then.status(201).body(CREATED);
        })
        .await;
    let client = client(&server, fast());
    client.send_message(CALL, &json!({})).await.unwrap();
    assert_eq!(client.flow_stats().throttled, 0, "a fresh client");
}

#[tokio::test]
async fn the_total_deadline_bounds_the_whole_call() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(messages());
            then.status(201).body(CREATED).delay(Duration::from_secs(5));
        })
        .await;
    let policy = fast()
        .max_attempts(100)
        .total_deadline(Duration::from_millis(600));
    let started = std::time::Instant::now();
    let err = client(&server, policy)
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_delete_that_may_have_succeeded_and_then_finds_nothing_is_ok() {
    let server = MockServer::start_async().await;
    let path = format!("{BASE}/UserDefinedMessageSubscriptions/{SUB}.json");
    let failed = server
        .mock_async(|when, then| {
            when.method("DELETE").path(&path);
            then.status(502).body("<html>proxy</html>").up_to_n_times(1);
        })
        .await;
    let gone = server
        .mock_async(|when, then| {
            when.method("DELETE").path(&path);
            then.status(404)
                .body(r#"{"code":20404,"message":"not found","status":404}"#);
        })
        .await;
    client(&server, fast())
        .unsubscribe(CALL, SUB)
        .await
        .unwrap();
    failed.assert_calls_async(1).await;
    gone.assert_calls_async(1).await;

    // Without an earlier attempt that may have deleted it, not found stays an error.
    let err = client(&server, fast())
        .unsubscribe(CALL, SUB)
        .await
        .unwrap_err();
    assert!(err.is_not_found());
}

#[tokio::test]
async fn redirects_are_not_followed_so_credentials_stay_home() {
    let elsewhere = MockServer::start_async().await;
    let stolen = elsewhere
        .mock_async(|when, then| {
            when.any_request();
            then.status(201).body(CREATED);
        })
        .await;
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path(messages());
            then.status(307)
                .header("location", elsewhere.url(messages()));
        })
        .await;
    let err = client(&server, fast())
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(307), "{err:?}");
    stolen.assert_calls_async(0).await;
}

/// Found by the `retry_state` fuzz target: with `retry_throttled(false)` a throttled attempt
/// "counts like any other", so `max_attempts` caps throttled and failed attempts together.
/// They were counted apart, and a 503, a 429 and a 503 made three attempts of two.
#[tokio::test]
async fn without_retry_throttled_max_attempts_counts_throttled_attempts_too() {
    let server = MockServer::start_async().await;
    let statuses = [503u16, 429, 503, 201];
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    server
        .mock_async(|when, then| {
            when.path(messages());
            then.respond_with(move |_: &HttpMockRequest| {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let status = statuses[n.min(statuses.len() - 1)];
                let body = if status == 201 { CREATED } else { "{}" };
                HttpMockResponse::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(body)
                    .build()
            });
        })
        .await;
    let policy = fast().max_attempts(2).retry_throttled(false);
    let err = client(&server, policy)
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429), "{err:?}");
    let request = err.request().unwrap();
    assert_eq!(
        (request.attempts, request.gave_up),
        (2, Some(GaveUp::Attempts))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]

    /// Each setter sets its own figure and keeps the others, whatever the order: the wait
    /// `decide` gives is full-jitter exponential backoff from `base_delay` capped at
    /// `max_delay`, or the server's `Retry-After` capped at `max_retry_after`, within
    /// `max_attempts` attempts.
    #[test]
    fn setters_set_what_decide_uses(
        base_ms in 1u64..1_000,
        max_ms in 1u64..5_000,
        max_retry_after_ms in 1u64..20_000,
        retry_after_ms in proptest::option::of(0u64..30_000),
        attempt in 1u32..8,
        jitter in 0.0f64..1.0,
        reversed in proptest::prelude::any::<bool>(),
    ) {
        use twilio_call_messages::Decision;
        use twilio_call_messages::__private::api_error_with_retry_after;
        let ms = Duration::from_millis;
        let policy = if reversed {
            RetryPolicy::default()
                .max_retry_after(ms(max_retry_after_ms))
                .max_delay(ms(max_ms))
                .base_delay(ms(base_ms))
                .total_deadline(Duration::from_secs(3_600))
                .max_attempts(8)
        } else {
            RetryPolicy::default()
                .max_attempts(8)
                .total_deadline(Duration::from_secs(3_600))
                .base_delay(ms(base_ms))
                .max_delay(ms(max_ms))
                .max_retry_after(ms(max_retry_after_ms))
        };
        let error = api_error_with_retry_after(503, b"", retry_after_ms.map(ms));
        let expected = match retry_after_ms {
            Some(after) => ms(after.min(max_retry_after_ms)),
            None => ms((base_ms << (attempt - 1)).min(max_ms)).mul_f64(jitter),
        };
        proptest::prop_assert_eq!(
            policy.decide(attempt, &error, Duration::ZERO, jitter),
            Decision::RetryAfter(expected)
        );
        // The eighth attempt was the last.
        proptest::prop_assert_eq!(policy.decide(8, &error, Duration::ZERO, jitter), Decision::Stop);
    }
}
