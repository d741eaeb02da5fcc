//! The actix-web 4 front door (feature `actix-web`): the [`VerifiedCallMessage`] and
//! [`VerifiedContent`] extractors verify and parse a callback before your handler runs, and the
//! [`Deliveries`] middleware handles Twilio's redeliveries. Both convert requests and answers
//! for the [`Receiver`](super::Receiver)'s protocol and nothing else: what happens when is
//! [there](super::Receiver#the-protocol).
//!
//! The extractors read the [`WebhookConfig`] from the application's data
//! (`App::app_data(web::Data::new(config))`; a missing one is answered 500, as actix-web's own
//! `Data` extractor does). The [`Deliveries`] middleware holds its own [`Deduplication`]:
//! redeliveries are handled on exactly the resources it wraps.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use twilio_call_messages::SignatureValidator;
//! use twilio_call_messages::webhook::actix::{Deliveries, VerifiedCallMessage};
//! use twilio_call_messages::webhook::{Deduplication, WebhookConfig};
//!
//! async fn on_message(VerifiedCallMessage(event): VerifiedCallMessage) -> HttpResponse {
//!     println!("message {} of call {}", event.sequence_number, event.call_sid);
//!     HttpResponse::Ok().finish()
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_default();
//! let config = web::Data::new(
//!     WebhookConfig::new(SignatureValidator::new(token)).public_base_url("https://example.com"),
//! );
//! // One store for every worker: each worker builds its own App.
//! let deliveries = Deliveries::new(Deduplication::in_memory(Duration::from_secs(600)));
//! HttpServer::new(move || {
//!     App::new().app_data(config.clone()).service(
//!         web::resource("/twilio/messages")
//!             .wrap(deliveries.clone())
//!             .route(web::post().to(on_message)),
//!     )
//! })
//! .bind(("127.0.0.1", 3000))?
//! .run()
//! .await
//! # }
//! ```

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt as _;

use super::delivery::{Slot, in_own_local_task};
use super::receiver::admit;
pub use super::{Deduplication, VerifiedCallMessage, VerifiedContent, WebhookConfig};
use super::{FromEvent, Rejection};

impl ResponseError for Rejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        status(self.status())
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let (code, text) = self.answer();
        HttpResponse::build(status(code))
            .content_type("text/plain; charset=utf-8")
            .body(text)
    }
}

/// actix-web's status type (`http` 0.2) from ours (`http` 1).
fn status(code: http::StatusCode) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(code.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
}

impl FromRequest for VerifiedCallMessage {
    type Error = Rejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Rejection>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Box::pin(extract(req.clone(), payload.take()))
    }
}

impl<T> FromRequest for VerifiedContent<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    type Error = Rejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Rejection>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Box::pin(extract(req.clone(), payload.take()))
    }
}

/// Steps 1-3 of the protocol: the request converted to `http` 1 types, the body read up to
/// the limit, and the claim left for the [`Deliveries`] middleware if it wraps the resource.
async fn extract<E: FromEvent>(req: HttpRequest, mut payload: Payload) -> Result<E, Rejection> {
    let config = match req.app_data::<web::Data<WebhookConfig>>() {
        Some(config) => config.clone().into_inner(),
        None => match req.app_data::<WebhookConfig>() {
            Some(config) => Arc::new(config.clone()),
            None => {
                return Err(Rejection::NotConfigured(
                    "add App::app_data(web::Data::new(WebhookConfig::new(..)))",
                ));
            }
        },
    };
    let mut headers = http::HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let method = http::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| Rejection::UnreadableBody)?;
    let uri: http::Uri = req
        .uri()
        .to_string()
        .parse()
        .map_err(|_| Rejection::UnreadableBody)?;
    config.refuse_announced(&headers)?;
    let limit = config.limit();
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Rejection::UnreadableBody)?;
        if body.len() + chunk.len() > limit {
            return Err(Rejection::BodyTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    let delivery = req.extensions().get::<Delivery>().cloned();
    let dedup = delivery.as_ref().map(|d| (&*d.dedup, &d.slot));
    admit(&config, dedup, &method, &uri, &headers, &body).await
}

/// What the middleware leaves for the extractor (a request extension).
#[derive(Clone)]
struct Delivery {
    dedup: Arc<Deduplication>,
    slot: Slot,
}

/// Handles Twilio's redeliveries on the resources (or the app) it wraps, with its own
/// [`Deduplication`]: the extractors claim the message, the middleware runs the handler in a
/// task of its own while the claim is renewed, and settles it from the handler's answer (steps
/// 3-5 of [the protocol](super::Receiver#the-protocol)). Clones share the store.
#[derive(Clone, Debug)]
pub struct Deliveries {
    dedup: Arc<Deduplication>,
}

impl Deliveries {
    /// The middleware, with where and how long to keep claims.
    pub fn new(deduplication: Deduplication) -> Self {
        Deliveries {
            dedup: Arc::new(deduplication),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Deliveries
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = DeliveriesService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DeliveriesService {
            service: Rc::new(service),
            dedup: self.dedup.clone(),
        }))
    }
}

/// The service made by [`Deliveries`].
#[derive(Debug)]
pub struct DeliveriesService<S> {
    service: Rc<S>,
    dedup: Arc<Deduplication>,
}

impl<S, B> Service<ServiceRequest> for DeliveriesService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, actix_web::Error>>>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), actix_web::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let slot = Slot::default();
        req.extensions_mut().insert(Delivery {
            dedup: self.dedup.clone(),
            slot: slot.clone(),
        });
        let handled = slot.run(self.service.call(req), |answer| {
            answer
                .as_ref()
                .is_ok_and(|response| response.status().is_success())
        });
        Box::pin(in_own_local_task(handled))
    }
}
