//! An axum extractor that verifies Twilio's signature and parses the callback before your
//! handler runs (feature `axum`).
//!
//! The extractor reads an [`Arc<WebhookConfig>`] from the router's state through [`FromRef`]:
//! use `Arc<WebhookConfig>` as the state, or implement `FromRef<YourState>` for it.
//!
//! ```no_run
//! use std::sync::Arc;
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
//!     .public_base_url("https://example.com");
//! let app = Router::new()
//!     .route("/twilio/messages", post(on_message))
//!     .with_state(Arc::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::sync::Arc;

use ::axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use ::axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use ::axum::http::request::Parts;
use ::axum::http::{Method, StatusCode};
use ::axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use super::{CallMessageEvent, EventError, SIGNATURE_HEADER, SignatureValidator};

/// The default cap on a callback's body: a message is at most about 10 KB of JSON.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// What [`VerifiedCallMessage`] needs: the validator, the public URL and a body size cap.
///
/// `Debug` is safe to log: the validator redacts its tokens.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    validator: SignatureValidator,
    public_base_url: Option<String>,
    body_limit: usize,
}

impl WebhookConfig {
    /// A configuration that trusts the `Host` header and assumes `http` (fine for a service
    /// reached directly; behind a proxy or TLS terminator, set
    /// [`public_base_url`](Self::public_base_url)).
    pub fn new(validator: SignatureValidator) -> Self {
        WebhookConfig {
            validator,
            public_base_url: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// The scheme, host (and port, and path prefix if a proxy strips one) that Twilio calls,
    /// e.g. `https://example.com` or `https://example.com/app`. The request's path and query
    /// are appended to it to rebuild the URL Twilio signed.
    #[must_use]
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.public_base_url = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// The largest body accepted, in bytes (default [`DEFAULT_BODY_LIMIT`]); larger ones get 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The validator in use.
    pub fn validator(&self) -> &SignatureValidator {
        &self.validator
    }

    /// The URL Twilio requested, rebuilt from the public base URL (or `http://` + `Host`) and
    /// the request's original path and query (axum's [`OriginalUri`], so nesting is harmless).
    fn signed_url(&self, parts: &Parts) -> Option<String> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        match &self.public_base_url {
            Some(base) => Some(format!("{base}{path_and_query}")),
            None => {
                let host = parts
                    .headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| uri.authority().map(|a| a.as_str()))?;
                Some(format!("http://{host}{path_and_query}"))
            }
        }
    }
}

/// A call message whose signature has been verified; use it as a handler's last argument.
///
/// Rejects the request without running the handler: 403 when the `X-Twilio-Signature` header
/// is missing or wrong, 413 when the body exceeds the limit, 400 when a correctly signed body is
/// not a call message event. JSON bodies must be signed with the `bodySHA256` scheme; form
/// bodies (and `GET` callbacks, whose fields are in the query) with the form scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCallMessage(pub CallMessageEvent);

/// Why [`VerifiedCallMessage`] refused a request. Its response is the status and a short text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// There was no `X-Twilio-Signature` header.
    #[error("missing X-Twilio-Signature header")]
    MissingSignature,
    /// The signature does not match the URL and body for any configured token.
    #[error("invalid X-Twilio-Signature")]
    InvalidSignature,
    /// The request URL could not be rebuilt (no public base URL and no `Host` header).
    #[error("cannot verify the signature: the request URL is unknown")]
    UnknownUrl,
    /// The body is larger than the configured limit.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body could not be read.
    #[error("the body could not be read")]
    UnreadableBody,
    /// The body is correctly signed but is not a call message event.
    #[error("malformed call message event: {0}")]
    MalformedEvent(#[from] EventError),
}

impl WebhookRejection {
    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookRejection::MissingSignature
            | WebhookRejection::InvalidSignature
            | WebhookRejection::UnknownUrl => StatusCode::FORBIDDEN,
            WebhookRejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookRejection::UnreadableBody | WebhookRejection::MalformedEvent(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        // The text names the problem, never a token or the message content.
        tracing::warn!(status = self.status().as_u16(), reason = %self, "rejected a Twilio callback");
        (self.status(), self.to_string()).into_response()
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
        let (parts, body) = req.into_parts();

        let signature = parts
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or(WebhookRejection::MissingSignature)?
            .to_str()
            .map_err(|_| WebhookRejection::InvalidSignature)?
            .to_owned();
        let url = config
            .signed_url(&parts)
            .ok_or(WebhookRejection::UnknownUrl)?;

        // Refuse an announced oversized body before reading any of it.
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let limit = config.body_limit;
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

        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !config
            .validator
            .validate_request(&url, content_type, &body, &signature)
        {
            return Err(WebhookRejection::InvalidSignature);
        }

        let event = if body.is_empty() && matches!(parts.method, Method::GET | Method::HEAD) {
            // A subscription with `Method=GET`: the fields are in the (signed) query string.
            let query = parts.uri.query().unwrap_or("");
            CallMessageEvent::from_form(query.as_bytes())?
        } else {
            CallMessageEvent::parse(content_type, &body)?
        };
        Ok(VerifiedCallMessage(event))
    }
}
