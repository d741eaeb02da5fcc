//! Chaos: the local Twilio (`twilio-call-messages-emulator`), which remembers messages by
//! idempotency key as Twilio does, fails a seeded random 30% of requests in every way it knows
//! (resets, stalls, spurious 429s, proxies' 502/503 pages, an oversized page; and after it has
//! recorded the message: a 500, a reset, half an answer, a stall, a 504). 2,000 messages, 32 in
//! flight: every send ends in exactly one result, every `Ok` is recorded exactly once, and
//! nothing is recorded twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;
use twilio_call_messages::{CallSid, Client, RetryPolicy};
use twilio_call_messages_emulator::{CallStatus, Emulator, Faults};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MESSAGES: usize = 2_000;
const IN_FLIGHT: usize = 32;
const FAILURE_RATE: f64 = 0.30;
const SEED: u64 = 0x7411_0c4a;

async fn start() -> Emulator {
    let emulator = Emulator::builder()
        .account_sid(ACCOUNT.parse().unwrap())
        .auth_token("token")
        // Every kind at an equal share of 30%; a stall holds the connection for 2 s.
        .faults(
            Faults::none()
                .all_kinds(FAILURE_RATE)
                .seed(SEED)
                .stall(Duration::from_secs(2)),
        )
        .start()
        .await
        .unwrap();
    let call: CallSid = CALL.parse().unwrap();
    emulator
        .add_call(call, CallStatus::InProgress, None)
        .unwrap();
    emulator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_or_delivered_twice() {
    let emulator = start().await;
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(emulator.base_url())
        .timeout(Duration::from_millis(300))
        // 30% of attempts failing is an outage by the default budget's measure (500 tokens,
        // 10 a retry, refunded when it succeeds: a client stops retrying once about one retry
        // in seven fails again). This test is about exactly-once delivery through retries, so
        // the budget gets room for all of them.
        .retry_budget(Some(20_000))
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(12)
                .base_delay(Duration::from_millis(2))
                .max_delay(Duration::from_millis(50))
                .max_retry_after(Duration::from_millis(50))
                .total_deadline(Duration::from_secs(20)),
        )
        .build()
        .unwrap();

    let started = std::time::Instant::now();
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..MESSAGES {
        let (client, gate) = (client.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            (n, client.send_message(CALL, &json!({ "n": n })).await)
        });
    }
    let mut results = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (n, result) = joined.expect("no send panics");
        assert!(
            results.insert(n, result).is_none(),
            "message {n} ended twice"
        );
    }
    assert_eq!(
        results.len(),
        MESSAGES,
        "every send ends in exactly one result"
    );

    // What the emulator recorded: key -> (message SID, content), and how many times each
    // content was recorded (must never exceed 1).
    let mut by_key: HashMap<String, (String, String)> = HashMap::new();
    let mut recorded: HashMap<String, usize> = HashMap::new();
    for (_, message) in emulator.messages() {
        let content = message.content.to_string();
        *recorded.entry(content.clone()).or_default() += 1;
        if let Some(key) = message.idempotency_key {
            by_key.insert(key, (message.sid.to_string(), content));
        }
    }
    let (mut ok, mut failed, mut lost, mut retried) = (0, 0, 0, 0);
    for (n, result) in &results {
        let content = json!({ "n": n }).to_string();
        match result {
            Ok(message) => {
                ok += 1;
                match by_key.get(&message.idempotency_key) {
                    Some((sid, recorded))
                        if *sid == message.sid.as_str() && *recorded == content => {}
                    _ => lost += 1,
                }
            }
            Err(e) => {
                failed += 1;
                if e.request().is_some_and(|r| r.attempts > 1) {
                    retried += 1;
                }
                assert!(e.may_have_been_processed() || e.is_retryable(), "{e}");
            }
        }
    }
    let duplicates = recorded.values().filter(|&&count| count > 1).count();
    let stats = emulator.stats();
    println!(
        "chaos tally: {MESSAGES} sent, {ok} ok, {failed} failed ({retried} after retries), \
         {} recorded, {duplicates} duplicates, {lost} lost, {:.1?}; the emulator: {} requests, \
         {} faults, {} replays",
        by_key.len(),
        started.elapsed(),
        stats.requests,
        stats.faults,
        stats.replays,
    );
    // The faults did happen, after recording too (or the test proves nothing).
    assert!(
        stats.faults as f64 > 0.2 * stats.requests as f64,
        "{stats:?}"
    );
    assert!(stats.replays > 0, "{stats:?}");
    assert_eq!(duplicates, 0, "a message was recorded twice");
    assert_eq!(lost, 0, "an Ok was not recorded as returned");
    assert!(
        ok >= MESSAGES * 99 / 100,
        "retries should carry almost every message through"
    );
}
