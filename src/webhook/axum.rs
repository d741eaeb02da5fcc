//! axum extractors that verify Twilio's signature and parse the callback before your handler
//! runs (feature `axum`): [`VerifiedCallMessage`] for the event, [`VerifiedContent`] for the
//! event with its content decoded into your own type.
//!
//! The extractors read an [`Arc<WebhookConfig>`] from the router's state through [`FromRef`]:
//! use `Arc<WebhookConfig>` as the state, or implement `FromRef<YourState>` for it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::{Router, routing::post};
//! use twilio_call_messages::SignatureValidator;
//! use twilio_call_messages::webhook::axum::{VerifiedCallMessage, WebhookConfig};
//!
//! async fn on_message(VerifiedCallMessage(event): VerifiedCallMessage) {
//!     println!("message {} of call {}", event.sequence_number, event.call_sid);
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_default();
//! let config = WebhookConfig::new(SignatureValidator::new(token))
//!     // The URL Twilio calls, as seen from outside the proxy in front of this service.
//!     .public_base_url("https://example.com")
//!     // Answer Twilio's redeliveries without running the handler again.
//!     .deduplicate(Duration::from_secs(600));
//! let app = Router::new()
//!     .route("/twilio/messages", post(on_message))
//!     .with_state(Arc::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use ::axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use ::axum::http::request::Parts;
use ::axum::http::{Method, StatusCode};
use ::axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::forwarded::{self, UrlError};
use super::{
    CallMessageEvent, DeliveryStore, EventError, MemoryDeliveryStore, SignatureError,
    SignatureValidator, StoreError,
};
use crate::sid::MessageSid;

/// The default cap on a callback's body: a message is at most about 10 KB of JSON.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// How far in the future a `Timestamp` may be under [`WebhookConfig::max_age`] (clock skew).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// What the extractors need: the validator, how to rebuild the URL Twilio requested, a body
/// size cap, and the optional redelivery and replay defences.
///
/// `Debug` is safe to log: the validator redacts its secrets.
#[derive(Clone)]
pub struct WebhookConfig {
    validator: SignatureValidator,
    public_base_url: Option<String>,
    trust_forwarded_headers: bool,
    body_limit: usize,
    deduplicate: Option<(Duration, Arc<dyn DeliveryStore>)>,
    max_age: Option<Duration>,
    /// The hint about untrusted proxy headers is logged once, not on every forged request.
    hinted: Arc<AtomicBool>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("validator", &self.validator)
            .field("public_base_url", &self.public_base_url)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field("body_limit", &self.body_limit)
            .field(
                "deduplicate",
                &self.deduplicate.as_ref().map(|(window, _)| window),
            )
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl WebhookConfig {
    /// A configuration that rebuilds the URL from `http://` + the `Host` header (fine for a
    /// service reached directly; behind a proxy or TLS terminator, set
    /// [`public_base_url`](Self::public_base_url) or
    /// [`trust_forwarded_headers`](Self::trust_forwarded_headers)).
    pub fn new(validator: SignatureValidator) -> Self {
        WebhookConfig {
            validator,
            public_base_url: None,
            trust_forwarded_headers: false,
            body_limit: DEFAULT_BODY_LIMIT,
            deduplicate: None,
            max_age: None,
            hinted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The scheme, host (and port, and path prefix if a proxy strips one) that Twilio calls,
    /// e.g. `https://example.com` or `https://example.com/app`. The request's path and query
    /// are appended to it to rebuild the URL Twilio signed. Takes precedence over
    /// [`trust_forwarded_headers`](Self::trust_forwarded_headers).
    #[must_use]
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.public_base_url = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// Rebuild the URL from the proxy's `Forwarded` (RFC 7239) header, or else its
    /// `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Port` (first values), when no
    /// [`public_base_url`](Self::public_base_url) is set. Off by default: turn it on only behind
    /// a proxy that sets these headers and removes the client's, since anyone can send them.
    /// Headers that do not make a URL are a misconfiguration, answered with 500.
    #[must_use]
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.trust_forwarded_headers = trust;
        self
    }

    /// The largest body accepted, in bytes (default [`DEFAULT_BODY_LIMIT`]); larger ones get 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Answer a message `Sid` accepted within the last `window` with 200, without running the
    /// handler: Twilio redelivers a callback it thinks failed. Remembers `Sid`s in this
    /// process ([`MemoryDeliveryStore`], at most 100,000); several instances behind a load
    /// balancer need a shared store: [`deduplicate_with`](Self::deduplicate_with).
    ///
    /// The `Sid` is claimed before the handler runs (so two concurrent deliveries never both
    /// run it); a handler that fails should call [`release`](Self::release) so that Twilio's
    /// retry is handled.
    #[must_use]
    pub fn deduplicate(self, window: Duration) -> Self {
        self.deduplicate_with(window, Arc::new(MemoryDeliveryStore::default()))
    }

    /// [`deduplicate`](Self::deduplicate) with your own store (e.g. Redis, shared by every
    /// instance). A store that fails makes the extractor answer 503, so Twilio retries.
    #[must_use]
    pub fn deduplicate_with(mut self, window: Duration, store: Arc<dyn DeliveryStore>) -> Self {
        self.deduplicate = Some((window, store));
        self
    }

    /// Refuse (403) events whose signed `Timestamp` is older than `max_age`, or more than
    /// [`MAX_CLOCK_SKEW`] in the future: a captured request verifies forever, so this bounds
    /// how long it can be replayed. Leave room for Twilio's retries and clock skew.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The validator in use.
    pub fn validator(&self) -> &SignatureValidator {
        &self.validator
    }

    /// Forgets a claimed message `Sid` (with [`deduplicate`](Self::deduplicate)), so that
    /// Twilio's next delivery of it runs the handler: call it when handling failed. Does
    /// nothing without deduplication.
    pub async fn release(&self, sid: &MessageSid) -> Result<(), StoreError> {
        match &self.deduplicate {
            Some((_, store)) => store.release(sid.as_str()).await,
            None => Ok(()),
        }
    }

    /// The URL Twilio requested, rebuilt from the public base URL, trusted proxy headers or
    /// `http://` + `Host`, and the request's original path and query (axum's [`OriginalUri`],
    /// so nesting is harmless).
    fn signed_url(&self, parts: &Parts) -> Result<String, UrlError> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        match &self.public_base_url {
            Some(base) => Ok(format!("{base}{path_and_query}")),
            None => forwarded::request_url(
                &parts.headers,
                uri.authority().map(|a| a.as_str()),
                path_and_query,
                self.trust_forwarded_headers,
            ),
        }
    }

    /// Reads, verifies and parses a request: everything but the redelivery check.
    async fn verified_event(&self, req: Request) -> Result<CallMessageEvent, WebhookRejection> {
        let (parts, body) = req.into_parts();
        let url = self
            .signed_url(&parts)
            .map_err(|e| WebhookRejection::UrlUnavailable {
                reason: e.to_string(),
            })?;

        // Refuse an announced oversized body before reading any of it.
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let limit = self.body_limit;
        if announced.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(WebhookRejection::BodyTooLarge { limit });
        }
        let body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(WebhookRejection::BodyTooLarge { limit });
            }
            Err(_) => return Err(WebhookRejection::UnreadableBody),
        };

        if let Err(e) = self.validator.verify(&url, &parts.headers, &body) {
            self.hint_at_proxy_headers(&e, &parts);
            return Err(WebhookRejection::Signature(e));
        }

        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let event = if body.is_empty() && matches!(parts.method, Method::GET | Method::HEAD) {
            // A subscription with `Method=GET`: the fields are in the (signed) query string.
            let query = parts.uri.query().unwrap_or("");
            CallMessageEvent::from_form(query.as_bytes())?
        } else {
            CallMessageEvent::parse(content_type, &body)?
        };
        self.check_age(&event, OffsetDateTime::now_utc())?;
        Ok(event)
    }

    /// A failed signature with proxy headers that are not trusted and no base URL is most
    /// likely a proxy in front of the service: say which setting fixes it, once.
    fn hint_at_proxy_headers(&self, error: &SignatureError, parts: &Parts) {
        if *error == SignatureError::SignatureMismatch
            && self.public_base_url.is_none()
            && !self.trust_forwarded_headers
            && forwarded::has_forwarded_headers(&parts.headers)
            && !self.hinted.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "a Twilio signature did not match the URL rebuilt from the Host header, and the \
                 request came through a proxy (Forwarded/X-Forwarded-* headers present); set \
                 WebhookConfig::public_base_url, or WebhookConfig::trust_forwarded_headers(true) \
                 if the proxy sets those headers (logged once)"
            );
        }
    }

    fn check_age(
        &self,
        event: &CallMessageEvent,
        now: OffsetDateTime,
    ) -> Result<(), WebhookRejection> {
        let Some(max_age) = self.max_age else {
            return Ok(());
        };
        let age = now - event.timestamp;
        if age > max_age {
            return Err(WebhookRejection::Stale {
                age_secs: age.whole_seconds().max(0).unsigned_abs(),
            });
        }
        if -age > MAX_CLOCK_SKEW {
            return Err(WebhookRejection::FromTheFuture);
        }
        Ok(())
    }

    /// Claims the event's `Sid` (with deduplication): a repeat becomes a 200 rejection.
    async fn admit(&self, event: &CallMessageEvent) -> Result<(), WebhookRejection> {
        let Some((window, store)) = &self.deduplicate else {
            return Ok(());
        };
        match store.claim(event.message_sid.as_str(), *window).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(WebhookRejection::Duplicate {
                sid: event.message_sid,
            }),
            Err(e) => Err(WebhookRejection::Store(e)),
        }
    }
}

/// A call message whose signature has been verified; use it as a handler's last argument.
///
/// Rejects the request without running the handler (see [`WebhookRejection::status`]): 403
/// when the signature is missing or wrong or the body cannot be covered by it, 500 when the
/// service is misconfigured (URL cannot be rebuilt, shared key not configured), 413 when the
/// body exceeds the limit, 400 when a correctly signed body is not a call message event; and,
/// when enabled, 403 for a stale `Timestamp` and 200 for a redelivered `Sid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCallMessage(pub CallMessageEvent);

/// A verified call message with its content already decoded into your type `T`; answers 400,
/// naming the path of the field at fault, when the content does not decode.
///
/// ```no_run
/// use serde::Deserialize;
/// use twilio_call_messages::webhook::axum::VerifiedContent;
///
/// #[derive(Deserialize)]
/// struct Answer {
///     question: u32,
///     choice: String,
/// }
///
/// async fn on_answer(VerifiedContent { event, content }: VerifiedContent<Answer>) {
///     println!("call {} answered {} with {}", event.call_sid, content.question, content.choice);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedContent<T> {
    /// The event, with the raw JSON text still in `event.content`.
    pub event: CallMessageEvent,
    /// `event.content` decoded.
    pub content: T,
}

/// Why an extractor refused a request. Its response is the status and a short text that never
/// contains a secret or the message content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The signature did not verify (403), or the service lacks the shared key the request
    /// names (500).
    #[error(transparent)]
    Signature(SignatureError),
    /// The URL Twilio requested could not be rebuilt (500): no `Host` header, or trusted proxy
    /// headers that do not make a URL.
    #[error("cannot verify the signature: the request URL cannot be rebuilt: {reason}")]
    UrlUnavailable {
        /// What is missing or malformed.
        reason: String,
    },
    /// The body is larger than the configured limit (413).
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body could not be read (400).
    #[error("the body could not be read")]
    UnreadableBody,
    /// The body is correctly signed but is not a call message event (400).
    #[error("malformed call message event: {0}")]
    MalformedEvent(#[from] EventError),
    /// The event's content does not decode into the handler's type (400).
    #[error("the message content does not decode at `{path}`: {reason}")]
    MalformedContent {
        /// Where in the content, e.g. `answers[2].choice` (`.` for the whole).
        path: String,
        /// What kind of problem (the content's values are not repeated).
        reason: &'static str,
    },
    /// The event's `Timestamp` is older than [`WebhookConfig::max_age`] (403).
    #[error("the event is {age_secs} s old, older than the configured maximum age")]
    Stale {
        /// Its age, in seconds.
        age_secs: u64,
    },
    /// The event's `Timestamp` is more than [`MAX_CLOCK_SKEW`] in the future (403).
    #[error("the event's timestamp is in the future")]
    FromTheFuture,
    /// The message `Sid` was already accepted ([`WebhookConfig::deduplicate`]): answered 200 so
    /// that Twilio stops redelivering, without running the handler.
    #[error("message {sid} was already accepted")]
    Duplicate {
        /// The message's `Sid`.
        sid: MessageSid,
    },
    /// The delivery store failed (503, so that Twilio retries).
    #[error(transparent)]
    Store(StoreError),
}

impl WebhookRejection {
    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookRejection::Signature(e) if e.is_misconfiguration() => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            WebhookRejection::Signature(_)
            | WebhookRejection::Stale { .. }
            | WebhookRejection::FromTheFuture => StatusCode::FORBIDDEN,
            WebhookRejection::UrlUnavailable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            WebhookRejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookRejection::UnreadableBody
            | WebhookRejection::MalformedEvent(_)
            | WebhookRejection::MalformedContent { .. } => StatusCode::BAD_REQUEST,
            WebhookRejection::Duplicate { .. } => StatusCode::OK,
            WebhookRejection::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        // The text names the problem, never a secret or the message content.
        if status == StatusCode::OK {
            tracing::info!(reason = %self, "answered a redelivered Twilio callback");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), reason = %self, "cannot verify a Twilio callback");
        } else {
            tracing::warn!(status = status.as_u16(), reason = %self, "rejected a Twilio callback");
        }
        (status, self.to_string()).into_response()
    }
}

impl From<SignatureError> for WebhookRejection {
    fn from(e: SignatureError) -> Self {
        WebhookRejection::Signature(e)
    }
}

impl<S> FromRequest<S> for VerifiedCallMessage
where
    S: Send + Sync,
    Arc<WebhookConfig>: FromRef<S>,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = Arc::<WebhookConfig>::from_ref(state);
        let event = config.verified_event(req).await?;
        config.admit(&event).await?;
        Ok(VerifiedCallMessage(event))
    }
}

impl<S, T> FromRequest<S> for VerifiedContent<T>
where
    S: Send + Sync,
    Arc<WebhookConfig>: FromRef<S>,
    T: DeserializeOwned + Send,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = Arc::<WebhookConfig>::from_ref(state);
        let event = config.verified_event(req).await?;
        // Decoded before the `Sid` is claimed: a 400 must not swallow Twilio's retry.
        let content = decode_content(&event.content)?;
        config.admit(&event).await?;
        Ok(VerifiedContent { event, content })
    }
}

fn decode_content<T: DeserializeOwned>(content: &str) -> Result<T, WebhookRejection> {
    use serde_json::error::Category;
    let rejection = |path: String, e: &serde_json::Error| {
        let reason = match e.classify() {
            Category::Data => "a value does not match the expected type",
            Category::Syntax => "not valid JSON",
            Category::Eof => "the JSON is truncated",
            Category::Io => "the content could not be read",
        };
        // Paths name fields (and map keys) of the content: bounded, as they come from outside.
        let path = path.chars().take(200).collect();
        WebhookRejection::MalformedContent { path, reason }
    };
    let mut deserializer = serde_json::Deserializer::from_str(content);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| rejection(e.path().to_string(), e.inner()))?;
    // Text after the value (serde_json::from_str refuses it too).
    deserializer
        .end()
        .map_err(|e| rejection(".".to_owned(), &e))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(timestamp: &str) -> CallMessageEvent {
        let body = format!(
            r#"{{"ContentType":"application/json","Content":"{{}}","SequenceNumber":"1","CallSid":"CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","AccountSid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Timestamp":"{timestamp}"}}"#
        );
        CallMessageEvent::from_json(body.as_bytes()).unwrap()
    }

    #[test]
    fn max_age_bounds_both_sides() {
        let config =
            WebhookConfig::new(SignatureValidator::new("t")).max_age(Duration::from_secs(300));
        let e = event("Wed, 18 Dec 2019 20:02:01 +0000");
        let at = |s: i64| e.timestamp + time::Duration::seconds(s);
        assert!(config.check_age(&e, at(0)).is_ok());
        assert!(config.check_age(&e, at(300)).is_ok());
        assert!(matches!(
            config.check_age(&e, at(301)),
            Err(WebhookRejection::Stale { age_secs: 301 })
        ));
        assert!(config.check_age(&e, at(-60)).is_ok());
        assert!(matches!(
            config.check_age(&e, at(-61)),
            Err(WebhookRejection::FromTheFuture)
        ));
        let off = WebhookConfig::new(SignatureValidator::new("t"));
        assert!(off.check_age(&e, at(1_000_000)).is_ok());
    }

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
        let err = decode_content::<Outer>(r#"{"answers":[{"choice":1},{"choice":"secret text"}]}"#)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("answers[1].choice"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let trailing = decode_content::<Inner>(r#"{"choice":1} x"#).unwrap_err();
        assert!(matches!(
            trailing,
            WebhookRejection::MalformedContent {
                reason: "not valid JSON",
                ..
            }
        ));
    }
}
