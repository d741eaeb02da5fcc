//! The tower front door (feature `tower`): [`CallbackService`], a [`Service`] that runs the
//! [`Receiver`]'s protocol around an async function of the event, for a service on hyper 1.x
//! (through hyper-util) or any tower-based stack. It reads the body (up to the limit) and hands
//! the request to [`Receiver::receive`]; everything else is [the protocol](Receiver#the-protocol).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use http::StatusCode;
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::server::conn::auto;
//! use hyper_util::service::TowerToHyperService;
//! use twilio_call_messages::SignatureValidator;
//! use twilio_call_messages::webhook::tower::CallbackService;
//! use twilio_call_messages::webhook::{CallMessageEvent, Deduplication, Receiver, WebhookConfig};
//!
//! async fn on_message(event: CallMessageEvent) -> StatusCode {
//!     println!("message {} of call {}", event.sequence_number, event.call_sid);
//!     StatusCode::OK
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_default();
//! let receiver = Receiver::new(
//!     WebhookConfig::new(SignatureValidator::new(token)).public_base_url("https://example.com"),
//! )
//! .deduplicate(Deduplication::in_memory(Duration::from_secs(600)));
//! let service = CallbackService::new(receiver, on_message);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     let service = TowerToHyperService::new(service.clone());
//!     tokio::spawn(async move {
//!         let _ = auto::Builder::new(TokioExecutor::new())
//!             .serve_connection(TokioIo::new(stream), service)
//!             .await;
//!     });
//! }
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use tower_service::Service;

use super::common::read_body;
use crate::webhook::receiver::{Bounded, Incoming};
use crate::webhook::verify::CallbackHeaders;
use crate::webhook::{Answer, FromEvent, Receiver};

/// A [`Service`] that answers Twilio's callbacks with `handler`, an async function of the
/// verified event (a [`CallMessageEvent`](crate::webhook::CallMessageEvent),
/// [`VerifiedContent<T>`](crate::webhook::VerifiedContent), ...) that answers a status
/// ([`Answer`]). Never fails: every refusal is an answer
/// ([`Rejection`](crate::webhook::Rejection)).
pub struct CallbackService<H, E> {
    receiver: Receiver,
    handler: H,
    input: PhantomData<fn() -> E>,
}

impl<H: Clone, E> Clone for CallbackService<H, E> {
    fn clone(&self) -> Self {
        CallbackService {
            receiver: self.receiver.clone(),
            handler: self.handler.clone(),
            input: PhantomData,
        }
    }
}

impl<H, E> fmt::Debug for CallbackService<H, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackService")
            .field("receiver", &self.receiver)
            .finish_non_exhaustive()
    }
}

impl<H, E> CallbackService<H, E> {
    /// The service: `receiver`'s protocol around `handler`.
    pub fn new<Fut>(receiver: impl Into<Receiver>, handler: H) -> Self
    where
        H: Fn(E) -> Fut,
        E: FromEvent,
        Fut: Future + Send + 'static,
        Fut::Output: Answer + Send + 'static,
    {
        CallbackService {
            receiver: receiver.into(),
            handler,
            input: PhantomData,
        }
    }
}

impl<B, H, E, Fut> Service<http::Request<B>> for CallbackService<H, E>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    H: Fn(E) -> Fut + Clone + Send + 'static,
    E: FromEvent,
    Fut: Future + Send + 'static,
    Fut::Output: Answer + Send + 'static,
{
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let receiver = self.receiver.clone();
        let handler = self.handler.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let headers = CallbackHeaders::of(&parts.headers);
            Ok(match read_body(receiver.config(), &headers, body).await {
                Ok(body) => {
                    let body = Bounded::read_within_limit(&body);
                    let request = Incoming::new(&parts.method, &parts.uri, headers, body);
                    receiver.run(request, handler).await
                }
                Err(rejection) => rejection.into_response(),
            })
        })
    }
}
