//! A flood of forged callbacks costs a counter, not a log line each: 10,000 callbacks signed
//! with the wrong token, through every front door (the receiver, the tower service, an axum
//! router and an actix-web app, each called in process on this thread), print nothing at the
//! default level (INFO) and are all counted in `WebhookConfig::refusals`; at DEBUG, each is one
//! line.
#![cfg(all(feature = "axum", feature = "actix-web"))]

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::webhook::tower::{CallbackService, Service as _};
use twilio_call_messages::webhook::{
    CallMessageEvent, Receiver, VerifiedCallMessage, WebhookConfig,
};

use crate::common;
use common::captured::Captured;

const PUBLIC: &str = "https://hooks.example.com";
const FORGED: usize = 10_000;

/// A well-formed callback whose signature is made with a token the receiver does not hold.
fn forged(n: usize) -> (HeaderMap, Vec<u8>) {
    let sid = format!("KX{n:032x}");
    let body = common::callback::event_json(&sid, "{}", "Wed, 18 Dec 2019 20:02:01 +0000");
    let forger = SignatureValidator::new("not-the-auth-token");
    let headers =
        common::callback::signed(&forger, &format!("{PUBLIC}/hook"), HeaderMap::new(), &body);
    (headers, body)
}

fn request<B>(n: usize, body: impl FnOnce(Vec<u8>) -> B) -> http::Request<B> {
    let (headers, bytes) = forged(n);
    let mut request = http::Request::post("/hook").body(body(bytes)).unwrap();
    *request.headers_mut() = headers;
    request
}

async fn never_called(_: CallMessageEvent) -> StatusCode {
    panic!("a forged callback reached the handler")
}

/// Sends `count` forged callbacks through each door, all with `config`; each answer is 403.
async fn flood(config: &WebhookConfig, count: usize) {
    let per_door = count / 4;
    let receiver = Receiver::new(config.clone());
    for n in 0..per_door {
        let answer = receiver.receive(request(n, |b| b), never_called).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    }
    let mut tower = CallbackService::new(receiver, never_called);
    for n in 0..per_door {
        let answer = tower
            .call(request(n, http_body_util::Full::<bytes::Bytes>::from))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    }
    let mut router = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|VerifiedCallMessage(event): VerifiedCallMessage| {
                never_called(event)
            }),
        )
        .with_state(Arc::new(config.clone()));
    for n in 0..per_door {
        let answer = router
            .call(request(n, axum::body::Body::from))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    }
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(config.clone()))
            .route(
                "/hook",
                actix_web::web::post().to(
                    |VerifiedCallMessage(event): VerifiedCallMessage| async {
                        never_called(event).await;
                        actix_web::HttpResponse::Ok().finish()
                    },
                ),
            ),
    )
    .await;
    for n in 0..per_door {
        let (headers, body) = forged(n);
        let mut test = actix_web::test::TestRequest::post().uri("/hook");
        for (name, value) in &headers {
            test = test.insert_header((name.as_str(), value.as_bytes()));
        }
        let answer = actix_web::test::call_service(&app, test.set_payload(body).to_request()).await;
        assert_eq!(answer.status().as_u16(), 403);
    }
}

fn config() -> WebhookConfig {
    WebhookConfig::new(SignatureValidator::new("the-auth-token")).public_base_url(PUBLIC)
}

#[test]
fn forged_callbacks_are_counted_not_logged() {
    for (level, count) in [(tracing::Level::INFO, FORGED), (tracing::Level::DEBUG, 8)] {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = common::captured::set_default(subscriber);
        let config = config();
        // actix-web's test server needs its runtime (tokio's current-thread, on this thread).
        actix_web::rt::System::new().block_on(flood(&config, count));
        let refusals = config.refusals();
        // Every one a signature refusal, and nothing else.
        assert_eq!(refusals.signature, count as u64, "{refusals:?}");
        assert_eq!(refusals.total(), count as u64, "{refusals:?}");
        let text = captured.text();
        let lines = text
            .lines()
            .filter(|l| l.contains("Twilio callback"))
            .count();
        match level {
            tracing::Level::INFO => assert_eq!(lines, 0, "{text}"),
            // Each refusal is logged once, by the door that made it.
            _ => assert_eq!(lines, count, "{text}"),
        }
    }
}
