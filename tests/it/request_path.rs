//! The one request path: every operation is spawnable, takes the same options, and reports in
//! one span of its own; broadcast takes any SIDs, JSON text, a key prefix, and streams.

use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::twilio_mock::TwilioMock;
use futures_util::StreamExt as _;
use httpmock::MockServer;
use serde_json::json;
use tokio::net::TcpListener;
use twilio_call_messages::{
    ApiKeySid, CallSid, Client, Error, InputError, RetryPolicy, SubscriptionSid,
};

use crate::common;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SUB: &str = "ZYcccccccccccccccccccccccccccccccc";
const CALLBACK: &str = "https://example.com/twilio/messages";

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

fn call(n: usize) -> CallSid {
    format!("CA{n:032x}").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_can_be_spawned() {
    let server = MockServer::start_async().await;
    server.mock_send_message(|_, then| {
        then.created();
    });
    server.mock_subscribe(|_, then| {
        then.created();
    });
    server.mock_unsubscribe(|_, then| {
        then.deleted();
    });
    let client = client(&server.base_url());

    // Each future owns a clone of the client: `'static + Send`, so `tokio::spawn` takes it.
    let send = tokio::spawn(client.send_message(CALL, &json!({"a": 1})).into_future());
    let json = tokio::spawn(client.send_message_json(CALL, "[1,2]").into_future());
    let subscribe = tokio::spawn(client.subscribe(CALL, CALLBACK).into_future());
    let unsubscribe = tokio::spawn(client.unsubscribe(CALL, SUB).into_future());
    let broadcast = tokio::spawn(
        client
            .broadcast([call(1), call(2)], &json!({}))
            .into_future(),
    );
    let broadcast_json = tokio::spawn(client.broadcast_json([call(3)], "{}").into_future());
    drop(client);

    assert_eq!(send.await.unwrap().unwrap().call_sid, CALL);
    json.await.unwrap().unwrap();
    assert_eq!(subscribe.await.unwrap().unwrap().call_sid, CALL);
    unsubscribe.await.unwrap().unwrap();
    assert!(
        broadcast
            .await
            .unwrap()
            .unwrap()
            .iter()
            .all(|r| r.result.is_ok())
    );
    assert_eq!(broadcast_json.await.unwrap().unwrap().len(), 1);
}

/// A server that accepts connections and never answers.
async fn stalling() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = common::read_request(&mut stream).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn every_operation_takes_a_per_attempt_timeout() {
    let addr = stalling().await;
    // The client's own timeout is long: only the per-operation one can end these quickly.
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(format!("http://{addr}"))
        .timeout(Duration::from_secs(120))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let short = Duration::from_millis(150);
    let mut broadcast = client
        .broadcast([CALL], &json!({}))
        .timeout(short)
        .await
        .unwrap();
    let results = vec![
        client
            .send_message(CALL, &json!({}))
            .timeout(short)
            .await
            .map(drop),
        client
            .subscribe(CALL, CALLBACK)
            .timeout(short)
            .await
            .map(drop),
        client.unsubscribe(CALL, SUB).timeout(short).await,
        broadcast.remove(0).result.map(drop),
    ];
    for result in results {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        // The timeout keeps reqwest's error as its source.
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
        assert_eq!(err.request().unwrap().attempts, 1);
    }

    let zero = client
        .send_message(CALL, &json!({}))
        .timeout(Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(zero, Error::InvalidInput(InputError::Request(_))));
}

#[tokio::test]
async fn every_operation_takes_a_retry_policy() {
    let server = MockServer::start_async().await;
    let sends = server.mock_send_message(|_, then| {
        then.error(503, 20500, "unavailable");
    });
    let subscribes = server.mock_subscribe(|_, then| {
        then.error(503, 20500, "unavailable");
    });
    let deletes = server.mock_unsubscribe(|_, then| {
        then.error(503, 20500, "unavailable");
    });
    let client = client(&server.base_url());
    let two = fast().max_attempts(2);

    let err = client
        .send_message(CALL, &json!({}))
        .retry_policy(two.clone())
        .await
        .unwrap_err();
    assert_eq!(err.request().unwrap().attempts, 2);
    let err = client
        .subscribe(CALL, CALLBACK)
        .retry_policy(two.clone())
        .await
        .unwrap_err();
    assert_eq!(err.request().unwrap().attempts, 2);
    let err = client
        .unsubscribe(CALL, SUB)
        .retry_policy(two.clone())
        .await
        .unwrap_err();
    assert_eq!(err.request().unwrap().attempts, 2);
    let results = client
        .broadcast([CALL], &json!({}))
        .retry_policy(RetryPolicy::none())
        .await
        .unwrap();
    assert_eq!(
        results[0]
            .result
            .as_ref()
            .unwrap_err()
            .request()
            .unwrap()
            .attempts,
        1
    );
    assert_eq!(sends.calls_async().await, 3);
    assert_eq!(subscribes.calls_async().await, 2);
    assert_eq!(deletes.calls_async().await, 2);

    // The client's policy (4 attempts) applies when none is given.
    let err = client.unsubscribe(CALL, SUB).await.unwrap_err();
    assert_eq!(err.request().unwrap().attempts, 4);
}

#[tokio::test]
async fn both_creates_take_an_idempotency_key() {
    let server = MockServer::start_async().await;
    let send = server.mock_send_message(|when, then| {
        when.idempotency_key("send-1");
        then.created();
    });
    let subscribe = server.mock_subscribe(|when, then| {
        when.idempotency_key("sub-1");
        then.created();
    });
    let client = client(&server.base_url());
    let message = client
        .send_message(CALL, &json!({}))
        .idempotency_key("send-1")
        .await
        .unwrap();
    assert_eq!(message.idempotency_key, "send-1");
    let subscription = client
        .subscribe(CALL, CALLBACK)
        .idempotency_key("sub-1")
        .await
        .unwrap();
    assert_eq!(subscription.idempotency_key, "sub-1");
    send.assert_async().await;
    subscribe.assert_async().await;

    let err = client
        .subscribe(CALL, CALLBACK)
        .idempotency_key("")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidInput(InputError::IdempotencyKey(_))
    ));
}

#[tokio::test]
async fn broadcast_takes_any_sids_and_a_bad_one_is_its_own_error() {
    let server = MockServer::start_async().await;
    let sent = server.mock_send_message(|when, then| {
        when.content_json(r#"{"poll":42}"#);
        then.created();
    });
    let client = client(&server.base_url());
    let calls = vec![
        call(1).to_string(),
        "CAnot-a-sid".to_owned(),
        call(2).to_string(),
    ];
    let results = client
        .broadcast_json(&calls, r#"{"poll":42}"#)
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].call_sid, Some(call(1)));
    assert!(results[0].result.is_ok());
    assert_eq!(results[1].index, 1);
    assert_eq!(results[1].call_sid, None);
    assert!(matches!(
        results[1].result,
        Err(Error::InvalidInput(InputError::Sid(_)))
    ));
    assert!(results[2].result.is_ok());
    assert_eq!(sent.calls_async().await, 2, "nothing sent for the bad SID");

    let err = client
        .broadcast_json(&calls, "{not json")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidInput(InputError::ContentNotJson(_))
    ));
    assert_eq!(sent.calls_async().await, 2);
}

/// A stand-in of Twilio that, like Twilio, treats requests with the same `IdempotencyKey` as
/// one: a repeated key is answered as before and delivers nothing.
#[derive(Default)]
struct Ledger {
    /// Deliveries per call (must end at exactly 1 each).
    delivered: HashMap<String, usize>,
    /// Keys seen, with the call they were for.
    keys: HashMap<String, String>,
}

async fn keyed_stand_in(ledger: Arc<Mutex<Ledger>>, latency: Duration) -> String {
    use axum::body::Bytes;
    use axum::http::{StatusCode, Uri};
    let app = axum::Router::new().fallback(move |uri: Uri, body: Bytes| {
        let ledger = ledger.clone();
        async move {
            tokio::time::sleep(latency).await;
            let call = uri
                .path()
                .split('/')
                .skip_while(|s| *s != "Calls")
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap();
            let key = form.get("IdempotencyKey").cloned().unwrap_or_default();
            {
                let mut ledger = ledger.lock().unwrap();
                if let std::collections::hash_map::Entry::Vacant(entry) = ledger.keys.entry(key) {
                    entry.insert(call.clone());
                    *ledger.delivered.entry(call.clone()).or_default() += 1;
                }
            }
            let body = format!(
                r#"{{"account_sid":"{ACCOUNT}","call_sid":"{call}","sid":"KX{:032x}","date_created":"Wed, 18 Dec 2019 20:02:01 +0000"}}"#,
                call.len()
            );
            (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                body,
            )
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_rerun_after_a_crash_delivers_every_call_exactly_once() {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let base = keyed_stand_in(ledger.clone(), Duration::from_millis(5)).await;
    let client = client(&base);
    let calls: Vec<CallSid> = (0..200).map(call).collect();

    // First run: the process "dies" half-way (the stream is dropped with requests in flight).
    let mut first = client
        .broadcast(calls.clone(), &json!({"slide": 9}))
        .concurrency(16)
        .idempotency_key_prefix("deck-1-slide-9")
        .stream()
        .unwrap();
    for _ in 0..100 {
        first.next().await.unwrap().result.unwrap();
    }
    drop(first);
    let delivered_before = ledger.lock().unwrap().delivered.len();
    assert!((100..200).contains(&delivered_before), "{delivered_before}");

    // Second run, same prefix: everything completes, nothing is delivered twice.
    let results = client
        .broadcast(calls.clone(), &json!({"slide": 9}))
        .concurrency(16)
        .idempotency_key_prefix("deck-1-slide-9")
        .await
        .unwrap();
    for (result, call) in results.iter().zip(&calls) {
        let message = result.result.as_ref().unwrap();
        assert_eq!(message.idempotency_key, format!("deck-1-slide-9:{call}"));
    }
    let ledger = ledger.lock().unwrap();
    assert_eq!(ledger.delivered.len(), 200, "every call delivered");
    assert!(
        ledger.delivered.values().all(|&n| n == 1),
        "no call delivered twice"
    );
    for call in &calls {
        let key = format!("deck-1-slide-9:{call}");
        assert_eq!(ledger.keys.get(&key), Some(&call.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_yields_each_call_once_as_it_completes() {
    let server = MockServer::start_async().await;
    server.mock_send_message(|_, then| {
        then.created();
    });
    let client = client(&server.base_url());
    let seen = AtomicUsize::new(0);
    let mut indices = HashSet::new();
    let mut stream = client
        .broadcast((0..50).map(call), &json!({}))
        .concurrency(8)
        .stream()
        .unwrap();
    while let Some(result) = stream.next().await {
        seen.fetch_add(1, Ordering::Relaxed);
        assert_eq!(result.call_sid, Some(call(result.index)));
        assert!(result.result.is_ok());
        assert!(indices.insert(result.index), "index {} twice", result.index);
    }
    assert_eq!(seen.load(Ordering::Relaxed), 50);
    assert!(matches!(
        client
            .broadcast([CALL], &"x".repeat(10_001))
            .stream()
            .map(drop),
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn problem_documents_keep_instance_and_errors() {
    let server = MockServer::start_async().await;
    server.mock(|when, then| {
        when.any_request();
        then.status(400)
            .header("content-type", "application/problem+json")
            .body(
                r##"{"type":"https://www.twilio.com/docs/errors/21220","title":"Invalid call state","status":400,"code":21220,"instance":"/2010-04-01/Accounts/AC/Calls/CA","errors":[{"detail":"must be in-progress","pointer":"#/CallSid"}]}"##,
            );
    });
    let err = client(&server.base_url())
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    let Error::Api(api) = err else {
        panic!("{err:?}")
    };
    assert_eq!(api.code, Some(21220));
    assert_eq!(
        api.instance.as_deref(),
        Some("/2010-04-01/Accounts/AC/Calls/CA")
    );
    assert_eq!(api.errors.len(), 1);
    assert_eq!(api.errors[0]["pointer"], "#/CallSid");
}

#[test]
fn the_builder_takes_a_typed_api_key_sid() {
    let sid: ApiKeySid = "SKdddddddddddddddddddddddddddddddd".parse().unwrap();
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .api_key(sid, "secret")
        .build()
        .unwrap();
    assert!(!format!("{client:?}").contains("secret"));
    let err = Client::builder()
        .account_sid(ACCOUNT)
        .api_key("SKnope", "secret")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ref c) if c.setting == "api_key"),
        "{err:?}"
    );
    let _: SubscriptionSid = SUB.parse().unwrap();
}
