//! Why the [`Receiver`](super::Receiver) answered a callback without running the handler, and
//! with which status: one type for every front door, so that each answers alike; and the
//! counts of refusals a service reads ([`Refusals`]).
//!
//! Computing an answer has no side effect. A refusal is logged once, where the protocol makes
//! it ([`RefusalCounter::refused`]): at `debug` when the request is at fault (or is a
//! redelivery), at `error` when the service is (its configuration, its store). Whoever sends
//! forged requests then costs the service a counter, not a log line each; axum logs its own
//! extractors' rejections at `trace` for the same reason.

use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;

use crate::sid::MessageSid;
use crate::webhook::redelivery::StoreError;
use crate::webhook::verify::{EventError, SignatureError};

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

    /// The answer's status and text: what every front door sends.
    pub(crate) fn answer(&self) -> (StatusCode, String) {
        // The text names the problem, never a secret or the message content.
        (self.status(), self.to_string())
    }

    /// The answer every front door sends: the [`status`](Self::status) and the text, as an `http`
    /// response (`text/plain`).
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

    /// Which count of [`Refusals`] this is.
    fn kind(&self) -> Kind {
        match self {
            Rejection::Signature(e) if e.is_misconfiguration() => Kind::Misconfigured,
            Rejection::UrlUnavailable { .. } | Rejection::NotConfigured(_) => Kind::Misconfigured,
            Rejection::Signature(_) => Kind::Signature,
            Rejection::BodyTooLarge { .. } => Kind::TooLarge,
            Rejection::UnreadableBody
            | Rejection::MalformedEvent(_)
            | Rejection::MalformedContent { .. } => Kind::Malformed,
            Rejection::Stale { .. } | Rejection::FromTheFuture => Kind::Stale,
            Rejection::Duplicate { .. } => Kind::Duplicate,
            Rejection::InProgress { .. } => Kind::InProgress,
            Rejection::Store(_) => Kind::StoreUnavailable,
        }
    }
}

/// How many callbacks a receiver answered without running the handler, by reason, since it was
/// configured: a snapshot from [`WebhookConfig::refusals`](super::WebhookConfig::refusals)
/// (shared by the configuration's clones, so by every door and worker built from it).
/// Refusals are logged only at `debug` (the service's own faults at `error`): read these to
/// watch for forged or malformed traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusals {
    /// Signatures missing, wrong, or over a body they cannot cover (403).
    pub signature: u64,
    /// Signed bodies that are not call message events, or whose content does not decode into
    /// the handler's type, or could not be read (400).
    pub malformed: u64,
    /// Bodies over the limit (413).
    pub too_large: u64,
    /// Events outside the replay window (403).
    pub stale: u64,
    /// Redeliveries of messages already handled (answered 200).
    pub duplicates: u64,
    /// Redeliveries of messages still being handled elsewhere after the wait (409).
    pub in_progress: u64,
    /// Requests the delivery store could not answer for (503).
    pub store_unavailable: u64,
    /// Requests the service's configuration could not check: an unknown shared key, a URL
    /// that cannot be rebuilt (500).
    pub misconfigured: u64,
}

impl Refusals {
    /// Every refusal, whatever its reason.
    pub fn total(&self) -> u64 {
        self.signature
            + self.malformed
            + self.too_large
            + self.stale
            + self.duplicates
            + self.in_progress
            + self.store_unavailable
            + self.misconfigured
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Signature,
    Malformed,
    TooLarge,
    Stale,
    Duplicate,
    InProgress,
    StoreUnavailable,
    Misconfigured,
}

/// The counts behind [`Refusals`], one relaxed atomic add per refusal.
#[derive(Debug, Default)]
pub(crate) struct RefusalCounter([AtomicU64; 8]);

impl RefusalCounter {
    /// Counts `rejection` and logs it, once: `debug` for the request's faults and
    /// redeliveries, `error` for the service's own.
    pub(crate) fn refused(&self, rejection: Rejection) -> Rejection {
        self.0[rejection.kind() as usize].fetch_add(1, Ordering::Relaxed);
        let status = rejection.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), reason = %rejection, "cannot accept a Twilio callback");
        } else {
            tracing::debug!(status = status.as_u16(), reason = %rejection, "answered a Twilio callback without the handler");
        }
        rejection
    }

    pub(crate) fn snapshot(&self) -> Refusals {
        let count = |kind: Kind| self.0[kind as usize].load(Ordering::Relaxed);
        Refusals {
            signature: count(Kind::Signature),
            malformed: count(Kind::Malformed),
            too_large: count(Kind::TooLarge),
            stale: count(Kind::Stale),
            duplicates: count(Kind::Duplicate),
            in_progress: count(Kind::InProgress),
            store_unavailable: count(Kind::StoreUnavailable),
            misconfigured: count(Kind::Misconfigured),
        }
    }
}

impl From<SignatureError> for Rejection {
    fn from(e: SignatureError) -> Self {
        Rejection::Signature(e)
    }
}
