//! The receiving protocol without a web framework: [`Receiver::receive`] with the in-memory
//! store and tokio's paused clock (leases, waits and handlers take no real time). What a front
//! door adds (reading the body, converting requests) is tested through each door in
//! `tests/it/webhook_doors.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};

use super::*;

const TOKEN: &str = "test-auth-token";
const PUBLIC: &str = "https://hooks.example.com";
const SID: &str = "KXcccccccccccccccccccccccccccccccc";
const OTHER: &str = "KXdddddddddddddddddddddddddddddddd";
const WINDOW: Duration = Duration::from_secs(600);

/// The handler's calls: started, and answered with which status.
#[derive(Default)]
struct Calls {
    started: AtomicUsize,
    answered: Mutex<Vec<(String, u16)>>,
}

impl Calls {
    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
    fn answered(&self) -> Vec<(String, u16)> {
        self.answered.lock().unwrap().clone()
    }
}

fn receiver(dedup: Deduplication) -> Receiver {
    Receiver::new(WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC))
        .deduplicate(dedup)
}

/// A callback for message `sid` with `content` posted to `path`, signed as Twilio signs JSON.
fn request(path: &str, sid: &str, content: &serde_json::Value) -> http::Request<Vec<u8>> {
    let body = serde_json::json!({
        "ContentType": "application/json",
        "Content": content.to_string(),
        "SequenceNumber": "1",
        "CallSid": "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "Timestamp": "Wed, 18 Dec 2019 20:02:01 +0000",
        "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Sid": sid,
    })
    .to_string()
    .into_bytes();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let signature = SignatureValidator::new(TOKEN)
        .sign_request(&format!("{PUBLIC}{path}"), &headers, &body)
        .unwrap();
    headers.insert(
        "x-twilio-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    let mut request = http::Request::builder()
        .method("POST")
        .uri(path)
        .body(body)
        .unwrap();
    *request.headers_mut() = headers;
    request
}

/// Delivers through `receiver` to a handler driven by the content
/// `{"sleep_ms":N,"status":S,"panic":B}`; the answer's status and text.
async fn deliver(
    receiver: &Receiver,
    calls: &Arc<Calls>,
    path: &str,
    sid: &str,
    content: serde_json::Value,
) -> (u16, String) {
    let calls = calls.clone();
    let answer = receiver
        .receive(
            request(path, sid, &content),
            move |event: CallMessageEvent| async move {
                calls.started.fetch_add(1, Ordering::SeqCst);
                let content: serde_json::Value = event.content_as().unwrap();
                if let Some(ms) = content["sleep_ms"].as_u64() {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                assert!(
                    !content["panic"].as_bool().unwrap_or(false),
                    "the handler panics on purpose"
                );
                let status = content["status"].as_u64().unwrap_or(200) as u16;
                calls
                    .answered
                    .lock()
                    .unwrap()
                    .push((event.message_sid.to_string(), status));
                StatusCode::from_u16(status).unwrap()
            },
        )
        .await;
    (answer.status().as_u16(), answer.into_body())
}

fn ok() -> serde_json::Value {
    serde_json::json!({})
}

#[tokio::test(start_paused = true)]
async fn a_failed_answer_gives_the_claim_back_and_success_keeps_it() {
    let receiver = receiver(Deduplication::in_memory(WINDOW));
    let calls = Arc::new(Calls::default());
    let fail = serde_json::json!({"status": 500});
    assert_eq!(deliver(&receiver, &calls, "/a", SID, fail).await.0, 500);
    // Twilio's retry is handled.
    assert_eq!(deliver(&receiver, &calls, "/a", SID, ok()).await.0, 200);
    // Then it is done: answered 200 without the handler.
    let (status, text) = deliver(&receiver, &calls, "/a", SID, ok()).await;
    assert_eq!((status, text.contains("already accepted")), (200, true));
    assert_eq!(
        calls.answered(),
        vec![(SID.to_owned(), 500), (SID.to_owned(), 200)]
    );
    // Other 2xx answers count as success too; 4xx do not.
    let status = |s: u16| serde_json::json!({ "status": s });
    assert_eq!(
        deliver(&receiver, &calls, "/a", OTHER, status(404)).await.0,
        404
    );
    assert_eq!(
        deliver(&receiver, &calls, "/a", OTHER, status(204)).await.0,
        204
    );
    assert_eq!(deliver(&receiver, &calls, "/a", OTHER, ok()).await.0, 200);
    assert_eq!(calls.started(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_gives_the_claim_back() {
    let receiver = receiver(Deduplication::in_memory(WINDOW));
    let calls = Arc::new(Calls::default());
    let panicked = tokio::spawn({
        let (receiver, calls) = (receiver.clone(), calls.clone());
        async move {
            let panic = serde_json::json!({"panic": true});
            deliver(&receiver, &calls, "/a", SID, panic).await
        }
    })
    .await;
    assert!(
        panicked.unwrap_err().is_panic(),
        "the panic reaches the caller"
    );
    // The retry waits for the release (spawned as the handler's task unwound).
    assert_eq!(deliver(&receiver, &calls, "/a", SID, ok()).await.0, 200);
    assert_eq!(calls.answered(), vec![(SID.to_owned(), 200)]);
    assert_eq!(calls.started(), 2);
}

/// Twilio stops waiting (its read timeout) and the server drops the request's future: the
/// handler runs to completion in a task of its own and its 2xx marks the message done, so the
/// retry waits for it and gets 200 without the handler.
#[tokio::test(start_paused = true)]
async fn a_handler_whose_client_stopped_waiting_runs_to_completion_and_marks_it_done() {
    let receiver = receiver(Deduplication::in_memory(WINDOW));
    let calls = Arc::new(Calls::default());
    let slow = serde_json::json!({"sleep_ms": 20_000});
    let gave_up = tokio::time::timeout(
        Duration::from_secs(15),
        deliver(&receiver, &calls, "/a", SID, slow),
    )
    .await;
    assert!(gave_up.is_err(), "the client gave up");
    let (status, text) = deliver(&receiver, &calls, "/a", SID, ok()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(calls.started(), 1, "the retry did not run the handler");
    assert_eq!(calls.answered(), vec![(SID.to_owned(), 200)]);
}

#[tokio::test(start_paused = true)]
async fn concurrent_redeliveries_wait_for_the_first_and_do_not_run_the_handler() {
    // A lease much shorter than the handler: only the heartbeat keeps the claim.
    let receiver =
        receiver(Deduplication::in_memory(WINDOW).claim_lease(Duration::from_millis(150)));
    let calls = Arc::new(Calls::default());
    let deliveries: Vec<_> = (0..5)
        .map(|_| {
            let (receiver, calls) = (receiver.clone(), calls.clone());
            tokio::spawn(async move {
                let slow = serde_json::json!({"sleep_ms": 3_000});
                deliver(&receiver, &calls, "/a", SID, slow).await
            })
        })
        .collect();
    for delivery in deliveries {
        assert_eq!(delivery.await.unwrap().0, 200);
    }
    assert_eq!(calls.started(), 1, "one handler call for five deliveries");
}

#[tokio::test(start_paused = true)]
async fn a_redelivery_answers_409_when_the_wait_runs_out() {
    let receiver =
        receiver(Deduplication::in_memory(WINDOW).redelivery_wait(Duration::from_millis(200)));
    let calls = Arc::new(Calls::default());
    let first = tokio::spawn({
        let (receiver, calls) = (receiver.clone(), calls.clone());
        async move {
            let slow = serde_json::json!({"sleep_ms": 1_500});
            deliver(&receiver, &calls, "/a", SID, slow).await
        }
    });
    while calls.started() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = tokio::time::Instant::now();
    let (status, text) = deliver(&receiver, &calls, "/a", SID, ok()).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("still being handled"), "{text}");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(200),
        "the whole wait"
    );
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(calls.started(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dead_holders_claim_is_taken_over_when_its_lease_runs_out() {
    let store = Arc::new(MemoryDeliveryStore::default());
    let receiver = receiver(Deduplication::with_store(WINDOW, store.clone()));
    let calls = Arc::new(Calls::default());
    // A "replica" claims the message, then dies (never renews, completes or releases), with a
    // 400 ms lease.
    let key = redelivery::protocol::delivery_key(&SID.parse().unwrap(), "/a");
    let lease = Duration::from_millis(400);
    assert_eq!(
        store.claim(&key, "dead-replica", lease).await.unwrap(),
        Claim::Acquired
    );
    let started = tokio::time::Instant::now();
    let (status, text) = deliver(&receiver, &calls, "/a", SID, ok()).await;
    assert_eq!(status, 200, "{text}");
    let waited = started.elapsed();
    assert!(
        waited >= lease && waited < lease + Duration::from_millis(150),
        "taken over within a poll of the lease's end: {waited:?}"
    );
    assert_eq!(calls.answered(), vec![(SID.to_owned(), 200)]);
    // And the dead replica, were it to wake up, can no longer release or complete it.
    assert!(!store.release(&key, "dead-replica").await.unwrap());
    assert_eq!(store.claim(&key, "x", lease).await.unwrap(), Claim::Done);
}

#[tokio::test(start_paused = true)]
async fn the_key_is_the_sid_and_the_route() {
    let store = Arc::new(MemoryDeliveryStore::default());
    let receiver = receiver(Deduplication::with_store(WINDOW, store.clone()));
    let calls = Arc::new(Calls::default());
    for path in ["/a", "/b", "/a", "/b", "/a?x=1"] {
        assert_eq!(deliver(&receiver, &calls, path, SID, ok()).await.0, 200);
    }
    assert_eq!(calls.started(), 3, "once per path and query");
    // `<Sid>:<the first 16 hex digits of SHA-256(path and query)>`.
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(b"/a")[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        store
            .claim(&format!("{SID}:{hex}"), "x", Duration::from_secs(1))
            .await
            .unwrap(),
        Claim::Done
    );
}

#[tokio::test(start_paused = true)]
async fn without_deduplication_every_delivery_runs_the_handler() {
    let receiver =
        Receiver::new(WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC));
    let calls = Arc::new(Calls::default());
    for _ in 0..2 {
        assert_eq!(deliver(&receiver, &calls, "/a", SID, ok()).await.0, 200);
    }
    assert_eq!(calls.started(), 2);
}

#[tokio::test(start_paused = true)]
async fn refusals_come_before_the_claim() {
    let store = Arc::new(MemoryDeliveryStore::default());
    let receiver = receiver(Deduplication::with_store(WINDOW, store.clone()));
    let calls = Arc::new(Calls::default());
    // A wrong signature: 403, nothing claimed.
    let mut forged = request("/a", SID, &ok());
    forged
        .headers_mut()
        .insert("x-twilio-signature", HeaderValue::from_static("AAAA"));
    let answer = receiver
        .receive(forged, |_: CallMessageEvent| async { StatusCode::OK })
        .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    // Content that does not decode into the handler's type: 400, nothing claimed.
    #[cfg(any(feature = "tower", feature = "actix-web"))]
    {
        #[derive(serde::Deserialize)]
        struct Typed {
            #[allow(dead_code)]
            n: u32,
        }
        let answer = receiver
            .receive(
                request("/a", SID, &ok()),
                |_: VerifiedContent<Typed>| async { StatusCode::OK },
            )
            .await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert!(
            answer.body().contains("does not decode"),
            "{}",
            answer.body()
        );
    }
    assert!(store.is_empty(), "nothing claimed");
    assert_eq!(deliver(&receiver, &calls, "/a", SID, ok()).await.0, 200);
}

/// A store that is unreachable for its first `failures` operations, and while `down`.
#[derive(Default)]
struct Flaky {
    failures: AtomicUsize,
    down: AtomicBool,
    inner: MemoryDeliveryStore,
}

impl Flaky {
    fn fail(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError("connection refused".into()));
        }
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError("connection refused".into()));
        }
        Ok(())
    }
}

impl DeliveryStore for Flaky {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            self.fail()?;
            self.inner.claim(key, holder, lease).await
        })
    }
    fn renew<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.fail()?;
            self.inner.renew(key, holder, lease).await
        })
    }
    fn complete<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        window: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.fail()?;
            self.inner.complete(key, holder, window).await
        })
    }
    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.fail()?;
            self.inner.release(key, holder).await
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_down_for_longer_than_the_wait_is_503_and_a_short_outage_is_waited_out() {
    let store = Arc::new(Flaky {
        failures: AtomicUsize::new(usize::MAX),
        ..Flaky::default()
    });
    let receiver = receiver(
        Deduplication::with_store(WINDOW, store.clone()).redelivery_wait(Duration::from_secs(1)),
    );
    let calls = Arc::new(Calls::default());
    let started = tokio::time::Instant::now();
    let (status, text) = deliver(&receiver, &calls, "/a", SID, ok()).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert_eq!(started.elapsed(), Duration::from_secs(1), "the whole wait");
    assert_eq!(calls.started(), 0);
    // Down for two attempts only: waited out and handled.
    store.failures.store(2, Ordering::SeqCst);
    assert_eq!(deliver(&receiver, &calls, "/a", SID, ok()).await.0, 200);
    assert_eq!(calls.started(), 1);
    assert_eq!(deliver(&receiver, &calls, "/a", SID, ok()).await.0, 200);
    assert_eq!(calls.started(), 1, "done");
}

/// A store outage longer than the lease lets the lease of a claim whose handler still runs run
/// out; the holder's heartbeat retries soon after a failure and takes its claim back, so a
/// delivery arriving after the outage waits for it and is answered without the handler.
#[tokio::test(start_paused = true)]
async fn a_holder_takes_its_claim_back_after_an_outage_longer_than_its_lease() {
    let store = Arc::new(Flaky::default());
    let receiver = receiver(
        Deduplication::with_store(WINDOW, store.clone())
            .claim_lease(Duration::from_millis(600))
            .redelivery_wait(Duration::from_secs(10)),
    );
    let calls = Arc::new(Calls::default());
    let first = tokio::spawn({
        let (receiver, calls) = (receiver.clone(), calls.clone());
        async move {
            let slow = serde_json::json!({"sleep_ms": 4_500});
            deliver(&receiver, &calls, "/a", SID, slow).await
        }
    });
    while calls.started() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Down for two and a half leases while the handler runs: the lease runs out in the store.
    store.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    store.down.store(false, Ordering::SeqCst);
    // The holder's heartbeat retries every 100 ms at most; this delivery comes 1.5 s later,
    // while the handler still runs (4.5 s).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, text) = deliver(&receiver, &calls, "/a", SID, ok()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(calls.started(), 1, "the handler ran once");
}

/// A redelivery that met an outage holds off a fifth of the lease once the store answers, so
/// that a live holder whose lease ran out meanwhile takes its claim back first.
#[tokio::test(start_paused = true)]
async fn a_redelivery_after_an_outage_holds_off_a_fifth_of_the_lease() {
    let store = Arc::new(Flaky {
        failures: AtomicUsize::new(1),
        ..Flaky::default()
    });
    let lease = Duration::from_secs(5);
    let receiver = receiver(Deduplication::with_store(WINDOW, store.clone()).claim_lease(lease));
    let calls = Arc::new(Calls::default());
    let started = tokio::time::Instant::now();
    assert_eq!(deliver(&receiver, &calls, "/a", SID, ok()).await.0, 200);
    let waited = started.elapsed();
    assert!(
        waited >= lease / 5 && waited < lease / 5 + Duration::from_millis(150),
        "{waited:?}"
    );
}

#[test]
fn max_age_bounds_both_sides() {
    let event = |timestamp: &str| {
        let body = format!(
            r#"{{"ContentType":"application/json","Content":"{{}}","SequenceNumber":"1","CallSid":"CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","AccountSid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Timestamp":"{timestamp}"}}"#
        );
        CallMessageEvent::from_json(body.as_bytes()).unwrap()
    };
    let config = WebhookConfig::new(SignatureValidator::new("t")).max_age(Duration::from_secs(300));
    let e = event("Wed, 18 Dec 2019 20:02:01 +0000");
    let at = |s: i64| e.timestamp + time::Duration::seconds(s);
    assert!(config.check_age(&e, at(0)).is_ok());
    assert!(config.check_age(&e, at(300)).is_ok());
    assert!(matches!(
        config.check_age(&e, at(301)),
        Err(Rejection::Stale { age_secs: 301 })
    ));
    assert!(config.check_age(&e, at(-60)).is_ok());
    assert!(matches!(
        config.check_age(&e, at(-61)),
        Err(Rejection::FromTheFuture)
    ));
    let off = WebhookConfig::new(SignatureValidator::new("t"));
    assert!(off.check_age(&e, at(1_000_000)).is_ok());
}

#[cfg(any(feature = "tower", feature = "actix-web"))]
#[test]
fn content_errors_name_the_path_not_the_value() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        choice: u32,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        answers: Vec<Inner>,
    }
    let err =
        receiver::decode_content::<Outer>(r#"{"answers":[{"choice":1},{"choice":"secret text"}]}"#)
            .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("answers[1].choice"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    let trailing = receiver::decode_content::<Inner>(r#"{"choice":1} x"#).unwrap_err();
    assert!(matches!(
        trailing,
        Rejection::MalformedContent {
            reason: "not valid JSON",
            ..
        }
    ));
}

#[test]
fn every_rejection_has_its_status() {
    let sid: crate::sid::MessageSid = SID.parse().unwrap();
    let cases = [
        (Rejection::Signature(SignatureError::SignatureMismatch), 403),
        (
            Rejection::Signature(SignatureError::UnknownKey { key_id: "k".into() }),
            500,
        ),
        (Rejection::UrlUnavailable { reason: "x".into() }, 500),
        (Rejection::BodyTooLarge { limit: 1 }, 413),
        (Rejection::UnreadableBody, 400),
        (
            Rejection::MalformedContent {
                path: ".".into(),
                reason: "x",
            },
            400,
        ),
        (Rejection::Stale { age_secs: 1 }, 403),
        (Rejection::FromTheFuture, 403),
        (Rejection::Duplicate { sid }, 200),
        (Rejection::InProgress { sid }, 409),
        (Rejection::Store(StoreError("x".into())), 503),
        (Rejection::NotConfigured("x"), 500),
    ];
    for (rejection, status) in cases {
        assert_eq!(rejection.status().as_u16(), status, "{rejection:?}");
        let response = rejection.into_response();
        assert_eq!(response.status().as_u16(), status);
    }
}
