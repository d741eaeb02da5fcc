//! Flow control against an account concurrency limit, on the local Twilio
//! (`twilio-call-messages-emulator`) with a limit of N requests in flight, each taking 40 ms
//! inside the account, 429 / 20429 beyond (twilio.com/docs/api/errors/20429): with default settings, a broadcast or a burst of plain
//! sends against a limit smaller than its concurrency loses nothing and sends nothing twice,
//! alone or beside other clients; an outage is not multiplied by retries. Wall times are
//! printed for comparison with the ideal; the goodput figures are `cargo bench --bench flow`'s.

use std::collections::HashSet;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use serde_json::json;
use twilio_call_messages::{BroadcastResults, CallSid, Client, Error, GaveUp, reqwest};
use twilio_call_messages_emulator::{CallStatus, Emulator, FaultKind, Faults};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// Calls in the one-broadcast test, and per client in the shared-account test.
const BROADCAST: usize = 800;
const SHARED: usize = 1000;

/// An account that serves `limit` requests at once, each for `latency`; `header`: answers
/// carry `Twilio-Concurrent-Requests`.
async fn account(limit: usize, latency: Duration, header: bool) -> Emulator {
    Emulator::builder()
        .account_sid(ACCOUNT.parse().unwrap())
        .auth_token("token")
        .concurrency_limit(limit)
        .latency(latency)
        .concurrency_header(header)
        .start()
        .await
        .unwrap()
}

/// The account of the flow-control goal (BENCHMARKS.md, "Flow control"): `limit` requests at
/// once, 40 ms each, no `Twilio-Concurrent-Requests` header.
async fn limited(limit: usize) -> Emulator {
    account(limit, Duration::from_millis(40), false).await
}

/// `n` in-progress calls of the emulator (a message needs an active call).
fn calls(server: &Emulator, n: usize, offset: usize) -> Vec<CallSid> {
    (offset..offset + n)
        .map(|i| {
            let sid: CallSid = format!("CA{i:032x}").parse().unwrap();
            if server.call(&sid).is_none() {
                server.add_call(sid, CallStatus::InProgress, None).unwrap();
            }
            sid
        })
        .collect()
}

fn client(server: &Emulator) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(server.base_url())
        .build()
        .unwrap()
}

/// Checks that every call was delivered with a key the stand-in served; returns how many.
fn reconcile(results: &BroadcastResults, served: &HashSet<String>) -> usize {
    for outcome in results {
        let call = outcome.call_sid.unwrap();
        let message = match &outcome.result {
            Ok(message) => message,
            Err(e) => panic!("{call}: {e}"),
        };
        assert_eq!(message.call_sid, call);
        assert!(
            served.contains(&message.idempotency_key),
            "{call}: delivered, so its key was served"
        );
    }
    results.len()
}

fn ideal(calls: usize, limit: usize) -> Duration {
    Duration::from_secs_f64(calls as f64 * 0.040 / limit as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_enforces_its_limit_and_speaks_twilio() {
    let server = account(2, Duration::from_millis(500), true).await;
    calls(&server, 1, 7);
    let http = reqwest::Client::new();
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{:032x}/UserDefinedMessages.json",
        server.base_url(),
        7
    );
    let send = |key: &'static str| {
        let request = http
            .post(&url)
            .basic_auth(ACCOUNT, Some("token"))
            .form(&[("Content", "{}"), ("IdempotencyKey", key)]);
        async move { request.send().await.unwrap() }
    };
    // Two are served (500 ms each); a third, sent once both arrived, is beyond the limit.
    let (a, b, c) = tokio::join!(send("k1"), send("k2"), async {
        while server.stats().requests < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        send("k3").await
    });
    assert_eq!(c.status(), 429);
    assert_eq!(c.headers()["twilio-concurrent-requests"], "2");
    let body: serde_json::Value = c.json().await.unwrap();
    assert_eq!(body["code"], 20429);
    assert_eq!(body["status"], 429);
    for response in [a, b] {
        assert_eq!(response.status(), 201);
        let concurrent = response.headers()["twilio-concurrent-requests"].clone();
        assert!(concurrent == "1" || concurrent == "2", "{concurrent:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["call_sid"], format!("CA{:032x}", 7));
    }
    // The same key again: the same message, counted as a replay, recorded once.
    let again = send("k1").await;
    assert_eq!(again.status(), 201);
    server
        .set_faults(Faults::none().with(FaultKind::Unavailable, 1.0))
        .unwrap();
    assert_eq!(send("k4").await.status(), 503);

    let counts = server.stats();
    assert_eq!(counts.requests, 5);
    assert_eq!(
        (counts.succeeded, counts.throttled, counts.faults),
        (3, 1, 1)
    );
    assert_eq!(counts.peak_in_flight, 2);
    assert_eq!(counts.replays, 1);
    assert_eq!(counts.messages, 2, "k1 and k2, once each");
    assert_eq!(server.succeeded_per_key()["k1"], 2);
}

/// One broadcast of 800 calls (8 times its default upper bound of 100 in flight) into an
/// account that serves 8 or 20 at once. 800, not more: the test checks that nothing is lost or
/// doubled, and at 40 ms a request the account alone needs 4 s for them at N = 8; the goodput
/// figures at scale are `cargo bench --bench flow`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broadcast_against_an_account_limit_loses_nothing() {
    for limit in [8, 20] {
        let server = limited(limit).await;
        let client = client(&server);
        let calls = calls(&server, BROADCAST, 0);
        let started = Instant::now();
        let results = client.broadcast(calls, &json!({"slide": 1})).await.unwrap();
        let elapsed = started.elapsed();
        let counts = server.stats();
        let served: HashSet<String> = server.succeeded_per_key().into_keys().collect();

        assert_eq!(reconcile(&results, &served), BROADCAST, "0 failed");
        assert!(counts.peak_in_flight <= limit, "{counts:?}");
        assert_eq!(counts.replays, 0, "no key served twice");
        assert_eq!(
            counts.succeeded as usize, BROADCAST,
            "every key served once"
        );
        assert_eq!(
            counts.messages as usize, BROADCAST,
            "every message recorded once"
        );
        assert_eq!(served.len(), BROADCAST);
        assert_eq!(counts.requests, counts.succeeded + counts.throttled);
        let stats = client.flow_stats();
        assert_eq!(stats.throttled, counts.throttled, "{stats:?}");
        assert_eq!((stats.in_flight, stats.waiting), (0, 0));
        eprintln!(
            "N = {limit}: {BROADCAST} calls, {} requests, {} throttled ({:.1}%), {elapsed:.2?} ({:.2}× the ideal), {stats:?}",
            counts.requests,
            counts.throttled,
            100.0 * counts.throttled as f64 / counts.requests as f64,
            elapsed.as_secs_f64() / ideal(BROADCAST, limit).as_secs_f64(),
        );
    }
}

/// A burst of plain sends, all spawned at once: they queue on the client's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_plain_sends_loses_nothing() {
    let server = limited(8).await;
    let client = client(&server);
    let calls = calls(&server, 600, 0);
    let started = Instant::now();
    let sends: Vec<_> = calls
        .into_iter()
        .map(|call| tokio::spawn(client.send_message(call, &json!({"n": 1})).into_future()))
        .collect();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    let counts = server.stats();
    assert_eq!(counts.succeeded, 600);
    assert_eq!(counts.replays, 0);
    assert_eq!(counts.messages, 600);
    assert!(counts.peak_in_flight <= 8, "{counts:?}");
    eprintln!(
        "burst of 600 sends, N = 8: {counts:?}, {:.2?} ({:.2}× the ideal)",
        started.elapsed(),
        started.elapsed().as_secs_f64() / ideal(600, 8).as_secs_f64()
    );
}

/// Three clients (as three processes would) broadcasting 1,000 calls each at once into one
/// account that serves 20: none coordinates with the others, none loses a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_share_one_account() {
    let server = limited(20).await;
    let started = Instant::now();
    let runs = (0..3).map(|i| {
        let client = client(&server);
        let calls = calls(&server, SHARED, i * SHARED);
        async move {
            let results = client.broadcast(calls, &json!({"slide": 2})).await.unwrap();
            (results, client.flow_stats(), started.elapsed())
        }
    });
    let all = futures_util::future::join_all(runs).await;
    let counts = server.stats();
    let served: HashSet<String> = server.succeeded_per_key().into_keys().collect();
    for (results, _, _) in &all {
        assert_eq!(reconcile(results, &served), SHARED, "0 failed");
    }
    // Equal work at equal shares finishes together; a client that took most of the account
    // would finish in about a third of the others' time.
    let finished: Vec<Duration> = all.iter().map(|(_, _, at)| *at).collect();
    let (first, last) = (
        finished.iter().min().unwrap(),
        finished.iter().max().unwrap(),
    );
    assert!(
        first.as_secs_f64() >= 0.5 * last.as_secs_f64(),
        "unfair shares: finished at {finished:?}"
    );
    assert!(counts.peak_in_flight <= 20, "{counts:?}");
    assert_eq!(counts.replays, 0);
    assert_eq!(counts.succeeded as usize, 3 * SHARED);
    assert_eq!(counts.messages as usize, 3 * SHARED);
    let limits: Vec<_> = all.iter().map(|(_, stats, _)| stats.limit).collect();
    eprintln!(
        "3 clients × {SHARED} calls, N = 20: {counts:?}, limits at the end {limits:?}, finished at {finished:?}, {:.2?} ({:.2}× the ideal)",
        started.elapsed(),
        started.elapsed().as_secs_f64() / ideal(3 * SHARED, 20).as_secs_f64()
    );
}

/// Every request 503: once the retry budget is spent, each call costs one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_not_multiplied_by_retries() {
    let server = limited(64).await;
    server
        .set_faults(Faults::none().with(FaultKind::Unavailable, 1.0))
        .unwrap();
    let client = client(&server);
    let results = client
        .broadcast(calls(&server, 2000, 0), &json!({"slide": 3}))
        .await
        .unwrap();
    let mut budget_spent = 0;
    for outcome in &results {
        let e = outcome.result.as_ref().unwrap_err();
        assert_eq!(e.status().map(|s| s.as_u16()), Some(503), "{e}");
        if e.request().unwrap().gave_up == Some(GaveUp::RetryBudget) {
            budget_spent += 1;
            assert!(e.to_string().contains("retry budget"), "{e}");
        }
    }
    let counts = server.stats();
    assert_eq!(counts.succeeded, 0);
    assert_eq!(counts.messages, 0);
    assert!(
        counts.requests <= 2200,
        "at most 1.1 requests per call: {counts:?}"
    );
    assert!(budget_spent > 1000, "{budget_spent}");
    assert_eq!(client.flow_stats().retry_tokens, Some(0));
    eprintln!("outage, 2,000 calls: {counts:?}, {budget_spent} stopped by the budget");
}

/// A `Retry-After` longer than what remains of the deadline stops at once, and says so.
#[tokio::test]
async fn a_retry_after_past_the_deadline_stops_at_once() {
    let server = httpmock::MockServer::start_async().await;
    server.mock(|when, then| {
        when.any_request();
        then.status(429)
            .header("retry-after", "120")
            .header("content-type", "application/json")
            .body(r#"{"code":20429,"message":"Too Many Requests","status":429}"#);
    });
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(server.base_url())
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client
        .send_message(
            CallSid::try_from(format!("CA{:032x}", 0)).unwrap(),
            &json!({}),
        )
        .await
        .unwrap_err();
    assert!(err.is_throttled(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        matches!(
            err.request().unwrap().gave_up,
            Some(GaveUp::Deadline { wait, .. }) if wait == Duration::from_secs(120)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not retried"), "{err}");
    assert!(matches!(err, Error::Api(_)));
}
