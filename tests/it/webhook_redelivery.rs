//! Redeliveries through the axum front door (its extractor and `DeliveryLayer`) on 127.0.0.1,
//! with the in-memory store: the handler's answer settles the claim (2xx done; 500 or a panic
//! give it back; a handler whose client stopped waiting, so that hyper dropped the request, runs
//! to completion and settles it), redeliveries wait for a claim in progress, the route is part of
//! the key, and without the layer nothing is deduplicated. The rest of the claim protocol is
//! tested without a framework, under a paused clock (`src/webhook/protocol_tests.rs`).
#![cfg(feature = "axum")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::callback::{event_json, signed};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::post;
use http::HeaderMap;
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::reqwest;
use twilio_call_messages::webhook::Deduplication;
use twilio_call_messages::webhook::axum::{DeliveryLayer, VerifiedCallMessage, WebhookConfig};

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
    async fn start(dedup: Option<Deduplication>) -> Server {
        let config = config();
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
        let app = match dedup {
            Some(dedup) => routes.layer(DeliveryLayer::new(dedup)),
            None => routes,
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
        let body = event_json(sid, &content.to_string(), "Wed, 18 Dec 2019 20:02:01 +0000");
        let headers = signed(
            &SignatureValidator::new(TOKEN),
            &format!("{PUBLIC}{path}"),
            HeaderMap::new(),
            &body,
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
const WINDOW: Duration = Duration::from_secs(600);

fn config() -> WebhookConfig {
    WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC)
}

fn ok() -> serde_json::Value {
    serde_json::json!({})
}

#[tokio::test]
async fn a_failed_answer_gives_the_claim_back_and_success_keeps_it() {
    let server = Server::start(Some(Deduplication::in_memory(WINDOW))).await;
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
    let server = Server::start(Some(Deduplication::in_memory(WINDOW))).await;
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
    let server = Server::start(Some(Deduplication::in_memory(WINDOW))).await;
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
        // A lease much shorter than the handler: only the heartbeat keeps the claim.
        Server::start(Some(
            Deduplication::in_memory(WINDOW).claim_lease(Duration::from_millis(150)),
        ))
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
async fn the_same_message_posted_to_two_routes_is_handled_by_each() {
    let server = Server::start(Some(Deduplication::in_memory(WINDOW))).await;
    for path in ["/a", "/b", "/a", "/b"] {
        assert_eq!(
            server.deliver(path, SID, ok(), PATIENT).await.unwrap().0,
            200
        );
    }
    assert_eq!(server.started(), 2);
}

/// Deduplication is the layer's: a router without it handles every delivery (it cannot be
/// configured and left unwired, as it once could, answering 500 to every callback).
#[tokio::test]
async fn without_the_layer_every_delivery_is_handled() {
    let plain = Server::start(None).await;
    for _ in 0..2 {
        assert_eq!(
            plain.deliver("/a", SID, ok(), PATIENT).await.unwrap().0,
            200
        );
    }
    assert_eq!(plain.started(), 2);
}
