//! The axum front door (feature `axum`): the [`VerifiedCallMessage`] and [`VerifiedContent`]
//! extractors verify and parse a callback before your handler runs, and the [`DeliveryLayer`]
//! handles Twilio's redeliveries. Both convert requests and answers for the
//! [`Receiver`](super::Receiver)'s protocol and nothing else: what happens when is
//! [there](super::Receiver#the-protocol).
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
use http::Uri;

use super::delivery::{Slot, in_own_task};
use super::receiver::admit;
use super::tower::read_body;
pub use super::{
    DEFAULT_BODY_LIMIT, DEFAULT_CLAIM_LEASE, DEFAULT_REDELIVERY_WAIT, Deduplication,
    MAX_CLOCK_SKEW, Rejection as WebhookRejection, VerifiedCallMessage, VerifiedContent,
    WebhookConfig,
};
use super::{FromEvent, Rejection};

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, text) = self.answer();
        (status, text).into_response()
    }
}

impl<S> FromRequest<S> for VerifiedCallMessage
where
    S: Send + Sync,
    Arc<WebhookConfig>: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Rejection> {
        extract(req, &Arc::<WebhookConfig>::from_ref(state)).await
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
        extract(req, &Arc::<WebhookConfig>::from_ref(state)).await
    }
}

/// Steps 1-3 of the protocol: the body read up to the limit, the URL before any `nest`
/// stripped it ([`OriginalUri`]), and the claim left for the [`DeliveryLayer`] if it wraps the
/// route.
async fn extract<E: FromEvent>(req: Request, config: &WebhookConfig) -> Result<E, Rejection> {
    let uri: Uri = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().clone(), |original| original.0.clone());
    let delivery = req.extensions().get::<Delivery>().cloned();
    let (parts, body) = req.into_parts();
    config.refuse_announced(&parts.headers)?;
    let body = read_body(body, config.limit()).await?;
    let dedup = delivery.as_ref().map(|d| (&*d.dedup, &d.slot));
    admit(config, dedup, &parts.method, &uri, &parts.headers, &body).await
}

/// What the layer leaves for the extractor (a request extension).
#[derive(Clone)]
struct Delivery {
    dedup: Arc<Deduplication>,
    slot: Slot,
}

/// Handles Twilio's redeliveries on the routes it wraps (a tower
/// [`Layer`](tower_layer::Layer)), with its own [`Deduplication`]: the extractors claim the
/// message, the layer runs the rest of the route (the handler) in a task of its own while the
/// claim is renewed, and settles it from the handler's answer (steps 3-5 of
/// [the protocol](super::Receiver#the-protocol)).
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
        let slot = Slot::default();
        req.extensions_mut().insert(Delivery {
            dedup: self.dedup.clone(),
            slot: slot.clone(),
        });
        let handled = slot.run(self.inner.call(req), |answer| {
            answer
                .as_ref()
                .is_ok_and(|response| response.status().is_success())
        });
        Box::pin(in_own_task(handled))
    }
}
