//! The axum extractors as Twilio meets them, on 127.0.0.1: JSON signed as parameters, shared
//! keys, proxies (forwarded headers trusted or not), redelivered `Sid`s, old `Timestamp`s and
//! typed content.
#![cfg(feature = "axum")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::callback::{event_json, signed};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::post;
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::reqwest;
use twilio_call_messages::time::OffsetDateTime;
use twilio_call_messages::time::format_description::well_known::Rfc2822;
use twilio_call_messages::webhook::Deduplication;
use twilio_call_messages::webhook::axum::{
    DeliveryLayer, VerifiedCallMessage, VerifiedContent, WebhookConfig,
};

const TOKEN: &str = "test-auth-token";
const PATH: &str = "/twilio/messages";
const PUBLIC: &str = "https://hooks.example.com";

#[derive(Clone)]
struct AppState {
    webhook: Arc<WebhookConfig>,
    handled: Arc<Mutex<Vec<String>>>,
}

impl FromRef<AppState> for Arc<WebhookConfig> {
    fn from_ref(state: &AppState) -> Self {
        state.webhook.clone()
    }
}

async fn on_message(
    State(state): State<AppState>,
    VerifiedCallMessage(event): VerifiedCallMessage,
) -> &'static str {
    state.handled.lock().unwrap().push(event.content);
    "ok"
}

#[derive(Debug, Deserialize)]
struct Answer {
    question: u32,
    choice: String,
}

async fn on_answer(
    State(state): State<AppState>,
    VerifiedContent { event, content }: VerifiedContent<Answer>,
) -> String {
    state
        .handled
        .lock()
        .unwrap()
        .push(event.message_sid.to_string());
    format!("question {} choice {}", content.question, content.choice)
}

struct Server {
    local: String,
    state: AppState,
    http: reqwest::Client,
}

impl Server {
    async fn start(config: WebhookConfig) -> Server {
        Self::start_with(config, None).await
    }

    /// With a `DeliveryLayer` on the routes when `dedup` is given.
    async fn start_with(config: WebhookConfig, dedup: Option<Deduplication>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState {
            webhook: Arc::new(config),
            handled: Arc::default(),
        };
        let routes = Router::new()
            .route(PATH, post(on_message))
            .route("/typed", post(on_answer));
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

    fn handled(&self) -> Vec<String> {
        self.state.handled.lock().unwrap().clone()
    }

    /// Posts `body` to `path` on the local server with `headers`; status and text.
    async fn post(&self, path: &str, headers: HeaderMap, body: Vec<u8>) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.local))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

fn now_rfc2822(offset_secs: i64) -> String {
    (OffsetDateTime::now_utc() + twilio_call_messages::time::Duration::seconds(offset_secs))
        .format(&Rfc2822)
        .unwrap()
}

const SID: &str = "KXcccccccccccccccccccccccccccccccc";

fn header(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                http::HeaderName::from_static(n),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_json_callback_signed_as_parameters_reaches_the_handler() {
    let server =
        Server::start(WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC))
            .await;
    let body = event_json(SID, r#"{"k":1}"#, "Wed, 18 Dec 2019 20:02:01 +0000");
    let headers = signed(
        &SignatureValidator::new(TOKEN),
        &format!("{PUBLIC}{PATH}"),
        HeaderMap::new(),
        &body,
    );
    assert_eq!(server.post(PATH, headers, body).await.0, 200);
    // The handler gets exactly the fields that were signed.
    assert_eq!(server.handled(), vec![r#"{"k":1}"#.to_owned()]);
}

#[tokio::test]
async fn shared_keys_and_their_misconfiguration() {
    let with_key = SignatureValidator::new(TOKEN)
        .with_shared_key("webhooks_sharedkey_1", "shared-secret-value");
    let server = Server::start(WebhookConfig::new(with_key.clone()).public_base_url(PUBLIC)).await;
    let body = event_json(SID, "{}", "Wed, 18 Dec 2019 20:02:01 +0000");
    let url = format!("{PUBLIC}{PATH}");
    let settings = header(&[(
        "x-twilio-webhooks-signature-settings",
        "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
    )]);
    assert_eq!(
        server
            .post(
                PATH,
                signed(&with_key, &url, settings.clone(), &body),
                body.clone()
            )
            .await
            .0,
        200
    );

    // The same request at a service that holds no shared key: 500, naming the key id only.
    let token_only =
        Server::start(WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC))
            .await;
    let (status, text) = token_only
        .post(
            PATH,
            signed(&with_key, &url, settings.clone(), &body),
            body.clone(),
        )
        .await;
    assert_eq!(status, 500, "{text}");
    assert!(
        text.contains("webhooks_sharedkey_1") && !text.contains("shared-secret"),
        "{text}"
    );
    // An algorithm we do not implement: 403.
    let md5 = header(&[(
        "x-twilio-webhooks-signature-settings",
        "key=webhooks_sharedkey_1,algorithm=HMAC_MD5",
    )]);
    let mut h = signed(&with_key, &url, settings, &body);
    h.extend(md5);
    let (status, text) = server.post(PATH, h, body).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(server.handled().len(), 1);
}

#[tokio::test]
async fn forwarded_headers_trusted_and_not() {
    // This test's log lines: the server runs on this test's one thread (current_thread runtime).
    let logs = crate::common::captured::Captured::default();
    let writer = logs.clone();
    let _guard = crate::common::captured::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    let signer = SignatureValidator::new(TOKEN);
    let body = event_json(SID, "{}", "Wed, 18 Dec 2019 20:02:01 +0000");
    // Twilio called https://hooks.example.com; the proxy says so.
    let url = format!("{PUBLIC}{PATH}");
    let x_forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "hooks.example.com"),
    ];
    let forwarded = [(
        "forwarded",
        "for=192.0.2.1;proto=https;host=hooks.example.com",
    )];

    let trusting =
        Server::start(WebhookConfig::new(signer.clone()).trust_forwarded_headers(true)).await;
    for proxy in [&x_forwarded[..], &forwarded[..]] {
        let h = signed(&signer, &url, header(proxy), &body);
        assert_eq!(
            trusting.post(PATH, h, body.clone()).await.0,
            200,
            "{proxy:?}"
        );
    }
    // Proxy headers that do not make a URL: the service is misconfigured, 500.
    let h = signed(
        &signer,
        &url,
        header(&[("x-forwarded-proto", "gopher")]),
        &body,
    );
    assert_eq!(trusting.post(PATH, h, body.clone()).await.0, 500);
    assert_eq!(trusting.handled().len(), 2);

    // Not trusted (the default): the URL is http:// + Host, which Twilio did not sign; the
    // hint naming the setting is logged once however many requests fail.
    let untrusting = Server::start(WebhookConfig::new(signer.clone())).await;
    for _ in 0..3 {
        let h = signed(&signer, &url, header(&x_forwarded), &body);
        assert_eq!(untrusting.post(PATH, h, body.clone()).await.0, 403);
    }
    let text = logs.text();
    assert_eq!(
        text.matches("trust_forwarded_headers(true)").count(),
        1,
        "{text}"
    );
    // And a forged X-Forwarded-Host is of no use to a trusting service: still signed for the
    // real host only.
    let h = signed(
        &signer,
        &url,
        header(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ]),
        &body,
    );
    assert_eq!(trusting.post(PATH, h, body).await.0, 403);
}

#[tokio::test]
async fn a_redelivered_sid_is_answered_200_without_the_handler() {
    let signer = SignatureValidator::new(TOKEN);
    let config = WebhookConfig::new(signer.clone()).public_base_url(PUBLIC);
    let dedup = Deduplication::in_memory(Duration::from_secs(600));
    let server = Server::start_with(config, Some(dedup)).await;
    let url = format!("{PUBLIC}{PATH}");
    let body = event_json(SID, r#"{"n":1}"#, "Wed, 18 Dec 2019 20:02:01 +0000");
    for _ in 0..3 {
        let h = signed(&signer, &url, HeaderMap::new(), &body);
        assert_eq!(server.post(PATH, h, body.clone()).await.0, 200);
    }
    assert_eq!(
        server.handled().len(),
        1,
        "the handler ran once for three deliveries"
    );
    // Another message is handled.
    let other = event_json(
        "KXdddddddddddddddddddddddddddddddd",
        r#"{"n":2}"#,
        "Wed, 18 Dec 2019 20:02:01 +0000",
    );
    let h = signed(&signer, &url, HeaderMap::new(), &other);
    assert_eq!(server.post(PATH, h, other).await.0, 200);
    assert_eq!(server.handled().len(), 2);
}

#[tokio::test]
async fn old_and_future_timestamps_are_refused_with_max_age() {
    let signer = SignatureValidator::new(TOKEN);
    let config = WebhookConfig::new(signer.clone())
        .public_base_url(PUBLIC)
        .max_age(Duration::from_secs(300));
    let server = Server::start(config).await;
    let url = format!("{PUBLIC}{PATH}");
    let cases = [
        (now_rfc2822(0), 200),
        (now_rfc2822(-240), 200),
        ("Wed, 18 Dec 2019 20:02:01 +0000".to_owned(), 403),
        (now_rfc2822(-400), 403),
        (now_rfc2822(30), 200),
        (now_rfc2822(600), 403),
    ];
    for (timestamp, expected) in &cases {
        let body = event_json(SID, "{}", timestamp);
        let h = signed(&signer, &url, HeaderMap::new(), &body);
        let (status, text) = server.post(PATH, h, body).await;
        assert_eq!(status, *expected, "{timestamp}: {text}");
    }
    assert_eq!(server.handled().len(), 3);
}

#[tokio::test]
async fn typed_content_is_decoded_or_refused_with_the_path() {
    let signer = SignatureValidator::new(TOKEN);
    let config = WebhookConfig::new(signer.clone()).public_base_url(PUBLIC);
    let dedup = Deduplication::in_memory(Duration::from_secs(600));
    let server = Server::start_with(config, Some(dedup)).await;
    let url = format!("{PUBLIC}/typed");

    // Content that does not decode: 400 naming the field, value not repeated, Sid not claimed.
    let bad = event_json(
        SID,
        r#"{"question":"private text","choice":"b"}"#,
        "Wed, 18 Dec 2019 20:02:01 +0000",
    );
    let (status, text) = server
        .post("/typed", signed(&signer, &url, HeaderMap::new(), &bad), bad)
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("question") && !text.contains("private text"),
        "{text}"
    );

    let good = event_json(
        SID,
        r#"{"question":3,"choice":"b"}"#,
        "Wed, 18 Dec 2019 20:02:01 +0000",
    );
    let (status, text) = server
        .post(
            "/typed",
            signed(&signer, &url, HeaderMap::new(), &good),
            good,
        )
        .await;
    assert_eq!((status, text.as_str()), (200, "question 3 choice b"));
    assert_eq!(server.handled(), vec![SID.to_owned()]);
}
