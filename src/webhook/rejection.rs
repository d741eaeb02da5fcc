//! Why the [`Receiver`](super::Receiver) answered a callback without running the handler, and
//! with which status: one type for every front door, so that each answers alike.

use http::StatusCode;

use super::{EventError, SignatureError, StoreError};
use crate::sid::MessageSid;

/// Why a callback was answered without running the handler. Its [`status`](Self::status) is
/// the answer's; its text (`Display`) is the answer's body and never contains a secret or the
/// message content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
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
    /// The event's `Timestamp` is older than [`WebhookConfig::max_age`](super::WebhookConfig::max_age)
    /// (403).
    #[error("the event is {age_secs} s old, older than the configured maximum age")]
    Stale {
        /// Its age, in seconds.
        age_secs: u64,
    },
    /// The event's `Timestamp` is more than [`MAX_CLOCK_SKEW`](super::MAX_CLOCK_SKEW) in the
    /// future (403).
    #[error("the event's timestamp is in the future")]
    FromTheFuture,
    /// The message was already handled ([`Deduplication`](super::Deduplication)): answered 200
    /// so that Twilio stops redelivering, without running the handler.
    #[error("message {sid} was already accepted")]
    Duplicate {
        /// The message's `Sid`.
        sid: MessageSid,
    },
    /// The message is still being handled by another request (here or on another replica)
    /// after [`Deduplication::redelivery_wait`](super::Deduplication::redelivery_wait) (409, so
    /// that Twilio retries).
    #[error("message {sid} is still being handled by another request")]
    InProgress {
        /// The message's `Sid`.
        sid: MessageSid,
    },
    /// The delivery store failed, for all of
    /// [`Deduplication::redelivery_wait`](super::Deduplication::redelivery_wait) (503, so that
    /// Twilio retries).
    #[error(transparent)]
    Store(StoreError),
    /// The front door's configuration is missing from the application (500), e.g. no
    /// `WebhookConfig` in actix-web's `app_data`.
    #[error("the webhook configuration is missing: {0}")]
    NotConfigured(&'static str),
}

impl Rejection {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Signature(e) if e.is_misconfiguration() => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::Signature(_) | Rejection::Stale { .. } | Rejection::FromTheFuture => {
                StatusCode::FORBIDDEN
            }
            Rejection::UrlUnavailable { .. } | Rejection::NotConfigured(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Rejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnreadableBody
            | Rejection::MalformedEvent(_)
            | Rejection::MalformedContent { .. } => StatusCode::BAD_REQUEST,
            Rejection::Duplicate { .. } => StatusCode::OK,
            Rejection::InProgress { .. } => StatusCode::CONFLICT,
            Rejection::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Logs the rejection (info for a redelivery answered 200, error for the service's own
    /// faults, warn for the request's) and gives the answer's status and text: what every front
    /// door sends.
    pub(crate) fn answer(&self) -> (StatusCode, String) {
        let status = self.status();
        // The text names the problem, never a secret or the message content.
        if status == StatusCode::OK {
            tracing::info!(reason = %self, "answered a redelivered Twilio callback");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), reason = %self, "cannot accept a Twilio callback");
        } else {
            tracing::warn!(status = status.as_u16(), reason = %self, "rejected a Twilio callback");
        }
        (status, self.to_string())
    }

    /// The answer every front door sends: the [`status`](Self::status) and the text, as an `http`
    /// response (logged: info for a redelivery answered 200, error for the service's faults, warn
    /// for the request's).
    pub fn into_response(self) -> http::Response<String> {
        let (status, text) = self.answer();
        let mut response = http::Response::new(text);
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl From<SignatureError> for Rejection {
    fn from(e: SignatureError) -> Self {
        Rejection::Signature(e)
    }
}
