//! `broadcast`: results in input order, partial failure, and the bound on requests in flight
//! as the server sees it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use twilio_call_messages::{CallSid, Client, Error, RetryPolicy};

use crate::common;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    total: AtomicUsize,
}

/// Answers 201 after 10 ms, echoing the call; calls whose SID ends in `0` are not active.
async fn server(gauge: Arc<Gauge>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let gauge = gauge.clone();
            tokio::spawn(async move {
                let Some((head, _)) = common::read_request(&mut stream).await else {
                    return;
                };
                let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
                gauge.max.fetch_max(now, Ordering::SeqCst);
                gauge.total.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                let call = head
                    .split("/calls/")
                    .nth(1)
                    .unwrap_or("")
                    .get(..34)
                    .unwrap_or("")
                    .to_owned();
                let call = format!("CA{}", &call[2..]);
                gauge.now.fetch_sub(1, Ordering::SeqCst);
                if call.ends_with('0') {
                    let body =
                        br#"{"code":21220,"message":"Call is not in-progress","status":400}"#;
                    common::answer(&mut stream, 400, "application/json", body).await;
                } else {
                    let body = json!({"account_sid": ACCOUNT, "call_sid": call, "sid": format!("KX{}", &call[2..])});
                    common::answer(
                        &mut stream,
                        201,
                        "application/json",
                        body.to_string().as_bytes(),
                    )
                    .await;
                }
            });
        }
    });
    addr
}

fn calls(n: usize) -> Vec<CallSid> {
    (0..n)
        .map(|i| format!("CA{i:032x}").parse().unwrap())
        .collect()
}

fn client(addr: SocketAddr) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(format!("http://{addr}"))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_keep_input_order_and_failures_stay_apart() {
    let gauge = Arc::new(Gauge::default());
    let client = client(server(gauge.clone()).await);
    let calls = calls(100);
    let results = client
        .broadcast(calls.clone(), &json!({"slide": 3}))
        .concurrency(8)
        .await
        .unwrap();

    assert_eq!(results.len(), 100);
    let mut keys = HashSet::new();
    for (index, (outcome, expected)) in results.iter().zip(&calls).enumerate() {
        assert_eq!(outcome.index, index);
        let call = outcome.call_sid.as_ref().unwrap();
        assert_eq!(call, expected, "input order");
        match &outcome.result {
            Ok(message) => {
                assert!(!call.as_str().ends_with('0'));
                assert_eq!(message.call_sid, *call);
                assert!(
                    keys.insert(message.idempotency_key.clone()),
                    "one key per call"
                );
            }
            Err(e) => {
                assert!(call.as_str().ends_with('0'), "{call}: {e}");
                assert!(matches!(e, Error::Api(api) if api.code == Some(21220)));
            }
        }
    }
    assert_eq!(
        results.iter().filter(|r| r.result.is_err()).count(),
        7,
        "calls 0x00, 0x10 … 0x60"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_sees_more_in_flight_than_the_bound() {
    for bound in [1, 4, 16] {
        let gauge = Arc::new(Gauge::default());
        let client = client(server(gauge.clone()).await);
        let results = client
            .broadcast(calls(64), &json!({}))
            .concurrency(bound)
            .retry_policy(RetryPolicy::none())
            .await
            .unwrap();
        assert_eq!(results.len(), 64);
        assert_eq!(
            gauge.total.load(Ordering::SeqCst),
            64,
            "one request per call"
        );
        let max = gauge.max.load(Ordering::SeqCst);
        assert!(max <= bound, "bound {bound}, server saw {max} at once");
        assert!(
            max >= bound.min(2),
            "bound {bound}: requests did overlap ({max})"
        );
    }
}

#[tokio::test]
async fn invalid_content_fails_the_whole_broadcast_before_sending() {
    let gauge = Arc::new(Gauge::default());
    let client = client(server(gauge.clone()).await);
    let err = client
        .broadcast(calls(3), &"x".repeat(10_001))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(gauge.total.load(Ordering::SeqCst), 0);
}
