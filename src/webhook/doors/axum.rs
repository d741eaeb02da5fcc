//! The axum front door (feature `axum`): the [`VerifiedCallMessage`] and [`VerifiedContent`]
//! extractors verify and parse a callback before your handler runs, and the [`DeliveryLayer`]
//! handles Twilio's redeliveries. Both convert requests and answers for the
//! [`Receiver`](crate::webhook::Receiver)'s protocol and nothing else: what happens when is
//! [there](crate::webhook::Receiver#the-protocol).
//!
//! The extractors read an [`Arc<WebhookConfig>`] from the router's state through [`FromRef`]:
//! use `Arc<WebhookConfig>` as the state, or implement `FromRef<YourState>` for it. The
//! [`DeliveryLayer`] holds its own [`Deduplication`]: redeliveries are handled on exactly the
//! routes it wraps, so deduplication cannot be configured and left unwired.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::{Router, routing::post};
//! use twilio_call_messages::SignatureValidator;
//! use twilio_call_messages::webhook::Deduplication;
//! use twilio_call_messages::webhook::axum::{DeliveryLayer, VerifiedCallMessage, WebhookConfig};
//!
//! async fn on_message(VerifiedCallMessage(event): VerifiedCallMessage) {
//!     println!("message {} of call {}", event.sequence_number, event.call_sid);
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_default();
//! // The URL Twilio calls, as seen from outside the proxy in front of this service.
//! let config = WebhookConfig::new(SignatureValidator::new(token)).public_base_url("https://example.com");
//! let app = Router::new()
//!     .route("/twilio/messages", post(on_message))
//!     // Answer Twilio's redeliveries without running the handler again.
//!     .layer(DeliveryLayer::new(Deduplication::in_memory(Duration::from_secs(600))))
//!     .with_state(Arc::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use ::axum::response::{IntoResponse, Response};

use super::common::{PendingClaim, extract, read_body};
use crate::webhook::FromEvent;
use crate::webhook::receiver::{Bounded, Incoming};
use crate::webhook::redelivery::protocol::in_own_task;
use crate::webhook::rejection::Rejection;
use crate::webhook::verify::CallbackHeaders;
pub use crate::webhook::{
    DEFAULT_BODY_LIMIT, DEFAULT_CLAIM_LEASE, DEFAULT_REDELIVERY_WAIT, Deduplication,
    MAX_CLOCK_SKEW, Rejection as WebhookRejection, VerifiedCallMessage, VerifiedContent,
    WebhookConfig,
};

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        // The inherent `Rejection::into_response`: one rendering for every door.
        let answer: http::Response<String> = Rejection::into_response(self);
        answer.into_response()
    }
}

impl<S> FromRequest<S> for VerifiedCallMessage
where
    S: Send + Sync,
    Arc<WebhookConfig>: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Rejection> {
        from_request(req, &Arc::<WebhookConfig>::from_ref(state)).await
    }
}

impl<S, T> FromRequest<S> for VerifiedContent<T>
where
    S: Send + Sync,
    Arc<WebhookConfig>: FromRef<S>,
    T: serde::de::DeserializeOwned + Send + 'static,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Rejection> {
        from_request(req, &Arc::<WebhookConfig>::from_ref(state)).await
    }
}

/// Steps 1-3 of the protocol: the body read within the limit, the URL before any `nest`
/// stripped it ([`OriginalUri`]), and the claim left for the [`DeliveryLayer`] if it wraps the
/// route.
async fn from_request<E: FromEvent>(req: Request, config: &WebhookConfig) -> Result<E, Rejection> {
    let (mut parts, body) = req.into_parts();
    let pending = parts.extensions.remove::<PendingClaim>();
    let uri = match parts.extensions.remove::<OriginalUri>() {
        Some(OriginalUri(original)) => original,
        None => std::mem::take(&mut parts.uri),
    };
    let headers = CallbackHeaders::of(&parts.headers);
    let body = read_body(config, &headers, body).await?;
    let request = Incoming::new(
        &parts.method,
        &uri,
        headers,
        Bounded::read_within_limit(&body),
    );
    extract(config, pending.as_ref(), &request).await
}

/// Handles Twilio's redeliveries on the routes it wraps (a tower
/// [`Layer`](tower_layer::Layer)), with its own [`Deduplication`]: the extractors claim the
/// message, the layer runs the rest of the route (the handler) in a task of its own while the
/// claim is renewed, and settles it from the handler's answer (steps 3-5 of
/// [the protocol](crate::webhook::Receiver#the-protocol)).
///
/// `Router::new().route(..).layer(DeliveryLayer::new(..)).with_state(..)`.
#[derive(Clone, Debug)]
pub struct DeliveryLayer {
    dedup: Arc<Deduplication>,
}

impl DeliveryLayer {
    /// The layer, with where and how long to keep claims.
    pub fn new(deduplication: Deduplication) -> Self {
        DeliveryLayer {
            dedup: Arc::new(deduplication),
        }
    }
}

impl<S> tower_layer::Layer<S> for DeliveryLayer {
    type Service = DeliveryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeliveryService {
            inner,
            dedup: self.dedup.clone(),
        }
    }
}

/// The service made by [`DeliveryLayer`].
#[derive(Clone, Debug)]
pub struct DeliveryService<S> {
    inner: S,
    dedup: Arc<Deduplication>,
}

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for DeliveryService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let pending = PendingClaim::new(&self.dedup);
        req.extensions_mut().insert(pending.clone());
        Box::pin(in_own_task(pending.around(self.inner.call(req))))
    }
}
