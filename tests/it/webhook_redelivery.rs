//! Redeliveries through the axum extractor and its `DeliveryLayer`, with the in-memory store:
//! the handler's answer settles the claim (2xx done; 500 or a panic give it back; a handler whose
//! client stopped waiting runs to completion and settles it), a redelivery waits for a claim in
//! progress, a dead holder's lease is taken over, a live holder takes its claim back after a store
//! outage longer than its lease, the route is part of the key, and a missing layer or a failing
//! store are answered loudly.
#![cfg(feature = "axum")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::post;
use http::{HeaderMap, HeaderValue};
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::reqwest;
use twilio_call_messages::webhook::axum::{DeliveryLayer, VerifiedCallMessage, WebhookConfig};
use twilio_call_messages::webhook::{
    Claim, DeliveryStore, MemoryDeliveryStore, StoreError, StoreFuture,
};

const TOKEN: &str = "test-auth-token";
const PUBLIC: &str = "https://hooks.example.com";
const SID: &str = "KXcccccccccccccccccccccccccccccccc";

/// What the handler does, chosen by the message content.
#[derive(Clone)]
struct AppState {
    webhook: Arc<WebhookConfig>,
    /// Handler calls that started / that answered.
    started: Arc<AtomicUsize>,
    answered: Arc<Mutex<Vec<(String, u16)>>>,
}

impl FromRef<AppState> for Arc<WebhookConfig> {
    fn from_ref(state: &AppState) -> Self {
        state.webhook.clone()
    }
}

/// Content `{"sleep_ms":N,"status":S,"panic":B}`.
async fn handler(
    State(state): State<AppState>,
    VerifiedCallMessage(event): VerifiedCallMessage,
) -> StatusCode {
    state.started.fetch_add(1, Ordering::SeqCst);
    let content: serde_json::Value = event.content_as().unwrap();
    if let Some(ms) = content["sleep_ms"].as_u64() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    assert!(
        !content["panic"].as_bool().unwrap_or(false),
        "the handler panics on purpose"
    );
    let status = content["status"].as_u64().unwrap_or(200) as u16;
    state
        .answered
        .lock()
        .unwrap()
        .push((event.message_sid.to_string(), status));
    StatusCode::from_u16(status).unwrap()
}

struct Server {
    local: String,
    state: AppState,
    http: reqwest::Client,
}

impl Server {
    async fn start(config: WebhookConfig, layer: bool) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState {
            webhook: Arc::new(config),
            started: Arc::default(),
            answered: Arc::default(),
        };
        let routes = Router::new()
            .route("/a", post(handler))
            .route("/b", post(handler));
        let app = if layer {
            routes.layer(DeliveryLayer::new())
        } else {
            routes
        }
        .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        #[cfg(feature = "rustls-ring")]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Server { local, state, http }
    }

    fn started(&self) -> usize {
        self.state.started.load(Ordering::SeqCst)
    }

    fn answered(&self) -> Vec<(String, u16)> {
        self.state.answered.lock().unwrap().clone()
    }

    /// Delivers message `sid` with `content` to `path` as Twilio would; the status and text,
    /// or `None` if the connection failed or the client gave up after `timeout`.
    async fn deliver(
        &self,
        path: &str,
        sid: &str,
        content: serde_json::Value,
        timeout: Duration,
    ) -> Option<(u16, String)> {
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
        let response = self
            .http
            .post(format!("{}{path}", self.local))
            .headers(headers)
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }
}

const PATIENT: Duration = Duration::from_secs(20);

fn config() -> WebhookConfig {
    WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC)
}

fn ok() -> serde_json::Value {
    serde_json::json!({})
}

#[tokio::test]
async fn a_failed_answer_gives_the_claim_back_and_success_keeps_it() {
    let server = Server::start(config().deduplicate(Duration::from_secs(600)), true).await;
    let fail = serde_json::json!({"status": 500});
    assert_eq!(
        server.deliver("/a", SID, fail, PATIENT).await.unwrap().0,
        500
    );
    // Twilio's retry: handled, without anyone calling `release`.
    assert_eq!(
        server.deliver("/a", SID, ok(), PATIENT).await.unwrap().0,
        200
    );
    // Then it is done: answered 200 without the handler.
    let (status, text) = server.deliver("/a", SID, ok(), PATIENT).await.unwrap();
    assert_eq!((status, text.contains("already accepted")), (200, true));
    assert_eq!(
        server.answered(),
        vec![(SID.to_owned(), 500), (SID.to_owned(), 200)]
    );
    // Other 2xx answers count as success too; 4xx do not.
    let other = "KXdddddddddddddddddddddddddddddddd";
    let status = |s: u16| serde_json::json!({ "status": s });
    assert_eq!(
        server
            .deliver("/a", other, status(404), PATIENT)
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        server
            .deliver("/a", other, status(204), PATIENT)
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        server.deliver("/a", other, ok(), PATIENT).await.unwrap().0,
        200
    );
    assert_eq!(server.started(), 4);
}

#[tokio::test]
async fn a_panicking_or_dropped_handler_gives_the_claim_back() {
    let server = Server::start(config().deduplicate(Duration::from_secs(600)), true).await;
    let panic = serde_json::json!({"panic": true});
    assert!(
        server.deliver("/a", SID, panic, PATIENT).await.is_none(),
        "the connection fails"
    );
    // The retry waits for the release (spawned when the handler's future was dropped).
    assert_eq!(
        server.deliver("/a", SID, ok(), PATIENT).await.unwrap().0,
        200
    );
    assert_eq!(server.answered(), vec![(SID.to_owned(), 200)]);

    assert_eq!(server.started(), 2);
}

/// Regression: Twilio stops waiting (its read timeout) and hyper drops the request's future.
/// The handler used to be dropped with it and its claim given back, although its side effects
/// (here, the work before its answer) were done: Twilio's retry then handled the message again
/// (the replica test's 102 duplicates under load). Now the handler runs to completion in a task
/// of its own, and its 2xx marks the message done: the retry waits for it and gets 200 without
/// the handler.
#[tokio::test]
async fn a_handler_whose_client_stopped_waiting_runs_to_completion_and_marks_it_done() {
    let server = Server::start(config().deduplicate(Duration::from_secs(600)), true).await;
    let slow = serde_json::json!({"sleep_ms": 1_500});
    assert!(
        server
            .deliver("/a", SID, slow, Duration::from_millis(300))
            .await
            .is_none(),
        "the client gave up"
    );
    let (status, text) = server.deliver("/a", SID, ok(), PATIENT).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(server.started(), 1, "the retry did not run the handler");
    assert_eq!(
        server.answered(),
        vec![(SID.to_owned(), 200)],
        "the first handler answered although nobody was listening any more"
    );
}

#[tokio::test]
async fn concurrent_redeliveries_wait_for_the_first_and_do_not_run_the_handler() {
    let server = Arc::new(
        Server::start(
            // A lease much shorter than the handler: only the heartbeat keeps the claim.
            config()
                .deduplicate(Duration::from_secs(600))
                .claim_lease(Duration::from_millis(150)),
            true,
        )
        .await,
    );
    let slow = serde_json::json!({"sleep_ms": 1_000});
    let deliveries: Vec<_> = (0..5)
        .map(|_| {
            let server = server.clone();
            let slow = slow.clone();
            tokio::spawn(async move { server.deliver("/a", SID, slow, PATIENT).await })
        })
        .collect();
    for delivery in deliveries {
        assert_eq!(delivery.await.unwrap().unwrap().0, 200);
    }
    assert_eq!(server.started(), 1, "one handler call for five deliveries");
}

#[tokio::test]
async fn a_redelivery_answers_409_when_the_wait_runs_out() {
    let server = Arc::new(
        Server::start(
            config()
                .deduplicate(Duration::from_secs(600))
                .redelivery_wait(Duration::from_millis(200)),
            true,
        )
        .await,
    );
    let first = {
        let server = server.clone();
        tokio::spawn(async move {
            let slow = serde_json::json!({"sleep_ms": 1_500});
            server.deliver("/a", SID, slow, PATIENT).await
        })
    };
    // Once the first delivery's handler runs, a second one waits 200 ms, then 409.
    while server.started() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, text) = server.deliver("/a", SID, ok(), PATIENT).await.unwrap();
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("still being handled"), "{text}");
    assert_eq!(first.await.unwrap().unwrap().0, 200);
    assert_eq!(server.started(), 1);
}

#[tokio::test]
async fn a_dead_holders_claim_is_taken_over_when_its_lease_runs_out() {
    let store = Arc::new(MemoryDeliveryStore::default());
    let server = Server::start(
        config().deduplicate_with(Duration::from_secs(600), store.clone()),
        true,
    )
    .await;
    // Deliver once so the key (Sid + route) is known: its claim is done; use another message
    // for the takeover, claimed by a "replica" that then dies (never renews, completes or
    // releases) with a 400 ms lease.
    assert_eq!(
        server.deliver("/a", SID, ok(), PATIENT).await.unwrap().0,
        200
    );
    let key = only_key(&store, SID);
    let other = "KXdddddddddddddddddddddddddddddddd";
    let other_key = key.replace(SID, other);
    assert_eq!(
        store
            .claim(&other_key, "dead-replica", Duration::from_millis(400))
            .await
            .unwrap(),
        Claim::Acquired
    );
    let (status, text) = server.deliver("/a", other, ok(), PATIENT).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        server.answered(),
        vec![(SID.to_owned(), 200), (other.to_owned(), 200)],
        "taken over and handled here"
    );
    // And the dead replica, were it to wake up, can no longer release or complete it.
    assert!(!store.release(&other_key, "dead-replica").await.unwrap());
    assert_eq!(
        store
            .claim(&other_key, "x", Duration::from_secs(1))
            .await
            .unwrap(),
        Claim::Done
    );
}

/// The key the extractor uses for `sid` on `/a`: `<Sid>:<the first 16 hex digits of
/// SHA-256("/a")>` (the path and query it was posted to); checked against the store's one key.
fn only_key(store: &MemoryDeliveryStore, sid: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(b"/a");
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let key = format!("{sid}:{hex}");
    assert_eq!(store.len(), 1);
    key
}

#[tokio::test]
async fn the_same_message_posted_to_two_routes_is_handled_by_each() {
    let server = Server::start(config().deduplicate(Duration::from_secs(600)), true).await;
    for path in ["/a", "/b", "/a", "/b"] {
        assert_eq!(
            server.deliver(path, SID, ok(), PATIENT).await.unwrap().0,
            200
        );
    }
    assert_eq!(server.started(), 2);
}

#[tokio::test]
async fn deduplication_without_the_layer_fails_loudly_and_claims_nothing() {
    let store = Arc::new(MemoryDeliveryStore::default());
    let server = Server::start(
        config().deduplicate_with(Duration::from_secs(600), store.clone()),
        false,
    )
    .await;
    let (status, text) = server.deliver("/a", SID, ok(), PATIENT).await.unwrap();
    assert_eq!(status, 500);
    assert!(text.contains("DeliveryLayer"), "{text}");
    assert_eq!(server.started(), 0);
    assert!(store.is_empty(), "nothing claimed, nothing to lose");
    // Without deduplication the layer is not needed (the README's plain wiring).
    let plain = Server::start(config(), false).await;
    assert_eq!(
        plain.deliver("/a", SID, ok(), PATIENT).await.unwrap().0,
        200
    );
}

/// A store that is unreachable for its first `failures` operations, and while `down`.
struct Flaky {
    failures: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
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

#[tokio::test]
async fn a_store_down_for_longer_than_the_wait_is_503_and_a_short_outage_is_waited_out() {
    let store = Arc::new(Flaky {
        failures: AtomicUsize::new(usize::MAX),
        down: Default::default(),
        inner: MemoryDeliveryStore::default(),
    });
    let server = Server::start(
        config()
            .deduplicate_with(Duration::from_secs(600), store.clone())
            .redelivery_wait(Duration::from_secs(1)),
        true,
    )
    .await;
    let (status, text) = server.deliver("/a", SID, ok(), PATIENT).await.unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert_eq!(server.started(), 0);
    // Down for two attempts only (under 300 ms of the 1 s wait): waited out and handled.
    store.failures.store(2, Ordering::SeqCst);
    assert_eq!(
        server.deliver("/a", SID, ok(), PATIENT).await.unwrap().0,
        200
    );
    assert_eq!(server.started(), 1);
    assert_eq!(
        server.deliver("/a", SID, ok(), PATIENT).await.unwrap().0,
        200
    );
    assert_eq!(server.started(), 1, "done");
}

/// Regression: a store outage longer than the lease let the lease of a claim whose handler was
/// still running run out, and a delivery arriving after the outage took the claim over and ran
/// the handler a second time (the replica test, Redis down 6.2 s). Now the holder's heartbeat
/// retries soon after a failure and takes its claim back when the lease ran out: the later
/// delivery waits for it and is answered without the handler.
#[tokio::test]
async fn a_holder_takes_its_claim_back_after_an_outage_longer_than_its_lease() {
    let store = Arc::new(Flaky {
        failures: AtomicUsize::new(0),
        down: Default::default(),
        inner: MemoryDeliveryStore::default(),
    });
    let server = Arc::new(
        Server::start(
            config()
                .deduplicate_with(Duration::from_secs(600), store.clone())
                .claim_lease(Duration::from_millis(600))
                .redelivery_wait(Duration::from_secs(10)),
            true,
        )
        .await,
    );
    let first = tokio::spawn({
        let server = server.clone();
        async move {
            let slow = serde_json::json!({"sleep_ms": 4_500});
            server.deliver("/a", SID, slow, PATIENT).await
        }
    });
    while server.started() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Down for two and a half leases while the handler runs: the lease runs out in the store.
    store.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    store.down.store(false, Ordering::SeqCst);
    // The holder's heartbeat retries every 100 ms at most; this delivery comes 1.5 s later,
    // while the handler still runs (4.5 s).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, text) = server.deliver("/a", SID, ok(), PATIENT).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(first.await.unwrap().unwrap().0, 200);
    assert_eq!(server.started(), 1, "the handler ran once");
}
