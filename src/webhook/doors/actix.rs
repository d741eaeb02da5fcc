//! The actix-web 4 front door (feature `actix-web`): the [`VerifiedCallMessage`] and
//! [`VerifiedContent`] extractors verify and parse a callback before your handler runs, and the
//! [`Deliveries`] middleware handles Twilio's redeliveries. Both convert requests and answers
//! for the [`Receiver`](crate::webhook::Receiver)'s protocol and nothing else: what happens when is
//! [there](crate::webhook::Receiver#the-protocol).
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

use super::common::{PendingClaim, extract, read_stream};
use crate::webhook::FromEvent;
use crate::webhook::receiver::{Bounded, Incoming, is_get};
use crate::webhook::redelivery::protocol::in_own_local_task;
use crate::webhook::rejection::Rejection;
use crate::webhook::verify::CallbackHeaders;
pub use crate::webhook::{Deduplication, VerifiedCallMessage, VerifiedContent, WebhookConfig};

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
        Box::pin(from_request(req.clone(), payload.take()))
    }
}

impl<T> FromRequest for VerifiedContent<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    type Error = Rejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Rejection>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Box::pin(from_request(req.clone(), payload.take()))
    }
}

/// Steps 1-3 of the protocol: the request read as it is (actix-web's own header map and URI,
/// not copied into `http` 1 types), the body read within the limit, and the claim left for the
/// [`Deliveries`] middleware if it wraps the resource.
async fn from_request<E: FromEvent>(req: HttpRequest, payload: Payload) -> Result<E, Rejection> {
    let config = match req.app_data::<web::Data<WebhookConfig>>() {
        Some(config) => config.clone().into_inner(),
        None => match req.app_data::<WebhookConfig>() {
            Some(config) => Arc::new(config.clone()),
            None => {
                let missing = Rejection::NotConfigured(
                    "add App::app_data(web::Data::new(WebhookConfig::new(..)))",
                );
                // No configuration to count it in: the service's own fault, logged as such.
                tracing::error!(reason = %missing, "cannot accept a Twilio callback");
                return Err(missing);
            }
        },
    };
    let headers = CallbackHeaders::read(|name| req.headers().get(name).map(|v| v.as_bytes()));
    let body = read_stream(&config, &headers, payload).await?;
    let uri = req.uri();
    let request = Incoming {
        get: is_get(req.method().as_str()),
        path_and_query: uri.path_and_query().map_or("/", |pq| pq.as_str()),
        authority: uri.authority().map(|a| a.as_str()),
        headers,
        body: Bounded::read_within_limit(&body),
    };
    let pending = req.extensions().get::<PendingClaim>().cloned();
    extract(&config, pending.as_ref(), &request).await
}

/// Handles Twilio's redeliveries on the resources (or the app) it wraps, with its own
/// [`Deduplication`]: the extractors claim the message, the middleware runs the handler in a
/// task of its own while the claim is renewed, and settles it from the handler's answer (steps
/// 3-5 of [the protocol](crate::webhook::Receiver#the-protocol)). Clones share the store.
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
        let pending = PendingClaim::new(&self.dedup);
        req.extensions_mut().insert(pending.clone());
        Box::pin(in_own_local_task(pending.around(self.service.call(req))))
    }
}
