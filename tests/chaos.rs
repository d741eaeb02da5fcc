//! Chaos: a local stand-in of Twilio that remembers messages by idempotency key (as Twilio
//! does) and fails a seeded random 30% of requests in every way, including after it has
//! recorded the message. 2,000 messages, 32 in flight: every send ends in exactly one result,
//! every `Ok` is recorded exactly once, and nothing is recorded twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use twilio_call_messages::{Client, RetryPolicy};

mod common;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MESSAGES: usize = 2_000;
const IN_FLIGHT: usize = 32;
const FAILURE_RATE: f64 = 0.30;
const SEED: u64 = 0x7411_0c4a;

/// What the stand-in has accepted: idempotency key -> (message SID, content).
#[derive(Default)]
struct Ledger {
    by_key: HashMap<String, (String, String)>,
    /// How many times each content was recorded (must never exceed 1).
    recorded: HashMap<String, usize>,
}

struct StandIn {
    ledger: Mutex<Ledger>,
    rng: Mutex<fastrand::Rng>,
}

impl StandIn {
    /// Records the message unless its key was seen; answers the SID either way.
    fn record(&self, key: &str, content: &str) -> String {
        let mut ledger = self.ledger.lock().unwrap();
        if let Some((sid, _)) = ledger.by_key.get(key) {
            return sid.clone();
        }
        let sid = format!("KX{:032x}", ledger.by_key.len() + 1);
        ledger
            .by_key
            .insert(key.to_owned(), (sid.clone(), content.to_owned()));
        *ledger.recorded.entry(content.to_owned()).or_default() += 1;
        sid
    }

    fn roll(&self) -> (f64, u32) {
        let mut rng = self.rng.lock().unwrap();
        (rng.f64(), rng.u32(0..11))
    }
}

fn created(sid: &str) -> Vec<u8> {
    json!({"account_sid": ACCOUNT, "call_sid": CALL, "sid": sid, "date_created": "Wed, 18 Dec 2019 20:02:01 +0000"})
        .to_string()
        .into_bytes()
}

async fn handle(stand_in: Arc<StandIn>, mut stream: TcpStream) {
    let Some((_, body)) = common::read_request(&mut stream).await else {
        return;
    };
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let key = form.get("IdempotencyKey").cloned().unwrap_or_default();
    let content = form.get("Content").cloned().unwrap_or_default();

    let (chance, mode) = stand_in.roll();
    if chance >= FAILURE_RATE {
        let sid = stand_in.record(&key, &content);
        return common::answer(&mut stream, 201, "application/json", &created(&sid)).await;
    }
    match mode {
        // Failures before anything is recorded.
        0 => common::reset(stream),
        1 => {
            common::answer(
                &mut stream,
                429,
                "application/json",
                br#"{"code":20429,"message":"Too Many Requests","status":429}"#,
            )
            .await
        }
        2 => {
            common::answer(
                &mut stream,
                503,
                "text/html",
                b"<html>Service Unavailable</html>",
            )
            .await
        }
        3 => common::answer(&mut stream, 502, "text/plain", &[]).await,
        4 => tokio::time::sleep(Duration::from_secs(2)).await,
        5 => common::answer(&mut stream, 502, "text/html", &vec![b'x'; 1024 * 1024]).await,
        // Failures after the message was recorded: only the idempotency key saves the day.
        6 => {
            stand_in.record(&key, &content);
            common::answer(
                &mut stream,
                500,
                "application/json",
                br#"{"code":20500,"message":"Internal Server Error","status":500}"#,
            )
            .await;
        }
        7 => {
            stand_in.record(&key, &content);
            common::reset(stream);
        }
        8 => {
            let body = created(&stand_in.record(&key, &content));
            let _ = stream
                .write_all(common::head(201, "application/json", body.len()).as_bytes())
                .await;
            let _ = stream.write_all(&body[..body.len() / 2]).await;
            common::reset(stream);
        }
        9 => {
            stand_in.record(&key, &content);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        _ => {
            stand_in.record(&key, &content);
            common::answer(
                &mut stream,
                504,
                "text/html",
                b"<html>Gateway Timeout</html>",
            )
            .await;
        }
    }
}

async fn start(stand_in: Arc<StandIn>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stand_in.clone(), stream));
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_or_delivered_twice() {
    let stand_in = Arc::new(StandIn {
        ledger: Mutex::new(Ledger::default()),
        rng: Mutex::new(fastrand::Rng::with_seed(SEED)),
    });
    let addr = start(stand_in.clone()).await;
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(format!("http://{addr}"))
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

    let ledger = stand_in.ledger.lock().unwrap();
    let (mut ok, mut failed, mut lost, mut retried) = (0, 0, 0, 0);
    for (n, result) in &results {
        let content = json!({ "n": n }).to_string();
        match result {
            Ok(message) => {
                ok += 1;
                match ledger.by_key.get(&message.idempotency_key) {
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
    let duplicates = ledger.recorded.values().filter(|&&count| count > 1).count();
    println!(
        "chaos tally: {MESSAGES} sent, {ok} ok, {failed} failed ({retried} after retries), \
         {} recorded, {duplicates} duplicates, {lost} lost, {:.1?}",
        ledger.by_key.len(),
        started.elapsed()
    );
    assert_eq!(duplicates, 0, "a message was recorded twice");
    assert_eq!(lost, 0, "an Ok was not recorded as returned");
    assert!(
        ok >= MESSAGES * 99 / 100,
        "retries should carry almost every message through"
    );
}
