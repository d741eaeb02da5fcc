//! The one error type of the crate. It tells apart what never left the process, what never
//! reached Twilio, what may have reached it, and what Twilio answered.

use std::fmt;

use reqwest::StatusCode;

use crate::model::{CallLeg, ClientLeg};
use crate::retry::classify::OutcomeKind;
use crate::sid::{CallSid, SidError};

/// Everything that can go wrong, from a bad SID to a 503 from a proxy. The request details are
/// boxed, so that a `Result<_, Error>` stays small.
///
/// Which variant tells whether the request reached Twilio:
///
/// | variant | sent? |
/// | --- | --- |
/// | [`Config`](Error::Config), [`InvalidInput`](Error::InvalidInput) | no: rejected before any request |
/// | [`Connect`](Error::Connect) | no: the connection was never established |
/// | [`Deadline`](Error::Deadline) | no: the deadline passed while it waited for a slot |
/// | [`Timeout`](Error::Timeout), [`Transport`](Error::Transport) | maybe: retry only with the same idempotency key |
/// | [`Api`](Error::Api) | yes, and refused (or a proxy answered for Twilio) |
/// | [`Decode`](Error::Decode) | yes; with a 2xx status Twilio **accepted** it |
/// | [`Leg`](Error::Leg) | no: no leg of the call has the Voice SDK client asked for (`.to_client()`) |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client's configuration is missing something or is malformed.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// `.to_client()` found no leg for the call's Voice SDK client (or could not read the call
    /// to look); nothing was sent. Says what was found.
    #[error(transparent)]
    Leg(Box<LegError>),
    /// The input was rejected before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(#[from] InputError),
    /// No connection could be made: the request was never sent.
    #[error("{request}: could not connect: {source}")]
    Connect {
        /// What was being done.
        request: Box<RequestInfo>,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The connection failed after the request may have been sent.
    #[error("{request}: connection failed, the request may have been processed: {source}")]
    Transport {
        /// What was being done.
        request: Box<RequestInfo>,
        /// The status line received before the failure, if any.
        status: Option<StatusCode>,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// No complete answer arrived in time: the request may have been processed.
    #[error("{request}: timed out, the request may have been processed")]
    Timeout {
        /// What was being done.
        request: Box<RequestInfo>,
        /// The underlying error (which timeout fired, as reqwest reports it).
        #[source]
        source: reqwest::Error,
    },
    /// The total deadline passed before the request could be sent: it waited for a slot under
    /// the client's concurrency limit the whole time. Nothing was sent.
    #[error("{request}: the total deadline passed while waiting to send; nothing was sent")]
    Deadline {
        /// What was being done.
        request: Box<RequestInfo>,
    },
    /// Twilio, or a proxy in front of it, answered with an error status.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The response status was received but its body could not be decoded. With a success
    /// status, Twilio **accepted** the request (the message was delivered): do not resend it.
    #[error("{request}: HTTP {status}, but the response body could not be decoded: {reason}")]
    Decode {
        /// What was being done.
        request: Box<RequestInfo>,
        /// The HTTP status of the response.
        status: StatusCode,
        /// Why decoding failed.
        reason: String,
        /// The start of the body, for diagnosis.
        body_excerpt: String,
    },
}

impl Error {
    /// The HTTP status of the response, when there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode { status, .. } => Some(*status),
            Error::Transport { status, .. } => *status,
            _ => None,
        }
    }

    /// Twilio's error code (e.g. `20404`), when the error body carried one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Api(e) => e.code,
            _ => None,
        }
    }

    /// Whether sending the same request again, with the same idempotency key, may succeed:
    /// connection failures, timeouts, 429 (never processed by Twilio) and 500/502/503/504.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retried()
    }

    /// Whether Twilio throttled the request (HTTP 429 or error 20429): the account had too many
    /// requests in flight, and Twilio did not process this one.
    pub fn is_throttled(&self) -> bool {
        self.kind().is_throttled()
    }

    /// The class of this failure, which the retry decision, the retry budget and the
    /// concurrency limiter all read (the table is in `src/retry/classify.rs`).
    pub(crate) fn kind(&self) -> OutcomeKind {
        match self {
            Error::Api(e) => OutcomeKind::of_answer(e.status, e.code),
            Error::Connect { .. } | Error::Timeout { .. } | Error::Transport { .. } => {
                OutcomeKind::Transient
            }
            Error::Deadline { .. } => OutcomeKind::NotSent,
            Error::Config(_) | Error::InvalidInput(_) | Error::Decode { .. } | Error::Leg(_) => {
                OutcomeKind::Permanent
            }
        }
    }

    /// Whether the request may have reached Twilio and been processed although no success
    /// was seen: timeouts, broken connections and 5xx answers (a 5xx may come from a proxy
    /// after Twilio acted).
    pub fn may_have_been_processed(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api(e) => e.status.is_server_error(),
            _ => false,
        }
    }

    /// Details of the request, for every error that happened after input was accepted.
    pub fn request(&self) -> Option<&RequestInfo> {
        match self {
            Error::Connect { request, .. }
            | Error::Transport { request, .. }
            | Error::Timeout { request, .. }
            | Error::Decode { request, .. }
            | Error::Deadline { request } => Some(request),
            Error::Api(e) => Some(&e.request),
            Error::Config(_) | Error::InvalidInput(_) | Error::Leg(_) => None,
        }
    }

    /// The idempotency key that was sent, so a caller can log it or retry with it.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.request()?.idempotency_key.as_deref()
    }

    /// Whether Twilio said the resource does not exist (HTTP 404 or Twilio code 20404), e.g. a
    /// subscription that was already deleted or whose call has ended.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api(e) if e.is_not_found())
    }

    /// How long the server asked to wait before retrying (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// The request details, for the orchestrator to complete when it gives up.
    pub(crate) fn request_mut(&mut self) -> Option<&mut RequestInfo> {
        match self {
            Error::Connect { request, .. }
            | Error::Transport { request, .. }
            | Error::Timeout { request, .. }
            | Error::Decode { request, .. }
            | Error::Deadline { request } => Some(request),
            Error::Api(e) => Some(&mut e.request),
            Error::Config(_) | Error::InvalidInput(_) | Error::Leg(_) => None,
        }
    }

    /// A short, low-cardinality name of what went wrong, for the span's `error.type`
    /// (OpenTelemetry: the status code for HTTP errors, else a class of failure).
    pub(crate) fn type_name(&self) -> &str {
        match self {
            Error::Config(_) => "config",
            Error::InvalidInput(_) => "invalid_input",
            Error::Connect { .. } => "connect",
            Error::Transport { .. } => "transport",
            Error::Timeout { .. } => "timeout",
            Error::Deadline { .. } => "deadline",
            Error::Api(e) => e.status.as_str(),
            Error::Decode { .. } => "decode",
            Error::Leg(_) => "client_leg",
        }
    }

    /// Twilio's request id (`Twilio-Request-Id` header), to quote to Twilio support.
    pub fn request_id(&self) -> Option<&str> {
        self.request()?.request_id.as_deref()
    }
}

/// What a request was: operation, idempotency key and Twilio's request id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The operation, by its OpenAPI operationId (e.g. `CreateUserDefinedMessage`).
    pub operation: &'static str,
    /// The `IdempotencyKey` form field that was sent, if the operation has one.
    pub idempotency_key: Option<String>,
    /// The `Twilio-Request-Id` response header, when a response arrived and carried one.
    pub request_id: Option<String>,
    /// How many attempts were made (retries included).
    pub attempts: u32,
    /// Why no further attempt was made, when the error was one a retry could have fixed.
    pub gave_up: Option<GaveUp>,
}

impl RequestInfo {
    /// One attempt of `operation`, with Twilio's request id if a response carried one; the
    /// orchestrator [completes](Self::complete) it when the call is over.
    pub(crate) fn new(operation: &'static str, request_id: Option<String>) -> Self {
        RequestInfo {
            operation,
            idempotency_key: None,
            request_id,
            attempts: 1,
            gave_up: None,
        }
    }

    /// What only the whole call knows: the key every attempt carried and the attempts made.
    pub(crate) fn complete(&mut self, idempotency_key: Option<String>, attempts: u32) {
        self.idempotency_key = idempotency_key;
        self.attempts = attempts;
    }
}

/// Why a retryable failure was not retried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GaveUp {
    /// The retry policy's attempts were all used.
    Attempts,
    /// The next wait (the server's `Retry-After`, or the backoff) would end past the total
    /// deadline.
    Deadline {
        /// The wait that was due.
        wait: std::time::Duration,
        /// What was left of the deadline.
        remaining: std::time::Duration,
    },
    /// The client's retry budget is spent: so many requests are failing that retrying them
    /// would multiply the load on a service in trouble.
    RetryBudget,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GaveUp::Attempts => f.write_str("no attempts left"),
            GaveUp::Deadline { wait, remaining } => write!(
                f,
                "the next try was due in {:.1} s but only {:.1} s of the deadline remained",
                wait.as_secs_f64(),
                remaining.as_secs_f64()
            ),
            GaveUp::RetryBudget => f.write_str("the client's retry budget is spent"),
        }
    }
}

impl fmt::Display for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.operation)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        if let Some(reason) = &self.gave_up {
            write!(f, " (not retried: {reason})")?;
        }
        Ok(())
    }
}

/// An error status answered by Twilio or by a proxy in front of it.
///
/// Both of Twilio's error bodies decode: the classic `code`/`message`/`more_info`/`status`
/// one and RFC 9457 problem documents. A body that is not JSON (an HTML page from a proxy,
/// or nothing) still gives the status and a short excerpt.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Twilio's error code, e.g. `20404` (not found) or `21220` (call not active).
    pub code: Option<i64>,
    /// Twilio's message, or the problem document's `title`/`detail`, or the status text.
    pub message: String,
    /// The documentation link (`more_info`, or the problem document's `type`).
    pub more_info: Option<String>,
    /// The problem document's `instance`: a URI for this occurrence, if Twilio sent one.
    pub instance: Option<String>,
    /// The problem document's `errors`: one object per invalid parameter, as Twilio sent them.
    pub errors: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The start of a body that was not a Twilio error document, if any.
    pub body_excerpt: Option<String>,
    /// The `Retry-After` the server sent (seconds or an HTTP date), if any.
    pub retry_after: Option<std::time::Duration>,
    /// What the request was.
    pub request: RequestInfo,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: HTTP {}", self.request, self.status.as_u16())?;
        if let Some(code) = self.code {
            write!(f, ", Twilio error {code}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(link) = &self.more_info {
            write!(f, " ({link})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Whether Twilio said the resource does not exist (HTTP 404 or code 20404).
    pub fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND || self.code == Some(20404)
    }
}

/// A problem with the client's configuration, naming the setting (or environment variable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The builder setting or environment variable at fault, e.g. `TWILIO_ACCOUNT_SID`.
    pub setting: String,
    /// What is wrong with it (never its value: it may be a secret).
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// Input rejected before any request was made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A SID is malformed.
    #[error(transparent)]
    Sid(#[from] SidError),
    /// The message content could not be serialized to JSON.
    #[error("message content cannot be serialized to JSON: {0}")]
    ContentNotSerializable(String),
    /// The message content is not valid JSON text.
    #[error("message content is not valid JSON: {0}")]
    ContentNotJson(String),
    /// The message content is longer than Twilio accepts (error 32703).
    #[error("message content is {chars} characters long; Twilio accepts at most {max}")]
    ContentTooLong {
        /// The length of the JSON text, in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The idempotency key is unusable.
    #[error("idempotency key: {0}")]
    IdempotencyKey(&'static str),
    /// The subscription's callback URL breaks one of Twilio's rules.
    #[error("callback URL: {0}")]
    CallbackUrl(String),
    /// The HTTP request could not be built from otherwise valid input.
    #[error("the request could not be built: {0}")]
    Request(String),
}

impl From<SidError> for Error {
    fn from(e: SidError) -> Self {
        Error::InvalidInput(InputError::Sid(e))
    }
}

/// One error of each kind, for the unit tests of the rules that read them (retry, budget,
/// classification).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn request() -> Box<RequestInfo> {
        Box::new(RequestInfo::new("Op", None))
    }

    /// An answer with `status`, Twilio error `code` and `Retry-After`.
    pub(crate) fn api_with(
        status: u16,
        code: Option<i64>,
        retry_after: Option<std::time::Duration>,
    ) -> Error {
        Error::Api(Box::new(ApiError {
            status: StatusCode::from_u16(status).unwrap(),
            code,
            message: String::new(),
            more_info: None,
            body_excerpt: None,
            retry_after,
            instance: None,
            errors: Vec::new(),
            request: *request(),
        }))
    }

    /// An answer with `status` and Twilio error `code`.
    pub(crate) fn api(status: u16, code: Option<i64>) -> Error {
        api_with(status, code, None)
    }

    /// Any reqwest error stands in for the source: only the variant matters to the rules.
    pub(crate) fn source() -> reqwest::Error {
        reqwest::Client::new().get("not a url").build().unwrap_err()
    }

    pub(crate) fn timeout() -> Error {
        Error::Timeout {
            request: request(),
            source: source(),
        }
    }

    pub(crate) fn connect() -> Error {
        Error::Connect {
            request: request(),
            source: source(),
        }
    }

    /// A connection that broke after the request was sent.
    pub(crate) fn broken_after_sending() -> Error {
        Error::Transport {
            request: request(),
            status: None,
            source: source(),
        }
    }
}

/// Why no leg could be chosen for a call's Voice SDK client. Nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegError {
    /// No leg of the call has a Voice SDK client (e.g. a phone on both sides, or the client's
    /// leg not dialled yet).
    #[error("call {call}: no leg has a Voice SDK client (found: {})", legs(found))]
    NoClient {
        /// The call given.
        call: CallSid,
        /// Its legs, as Twilio described them.
        found: Vec<CallLeg>,
    },
    /// Clients are on more than one leg (a client-to-client call): say which one with
    /// `.to_client_named(identity)`.
    #[error(
        "call {call}: Voice SDK clients on more than one leg ({}); name one with .to_client_named(..)",
        identities(clients)
    )]
    SeveralClients {
        /// The call given.
        call: CallSid,
        /// The clients found, parent first.
        clients: Vec<ClientLeg>,
    },
    /// No leg has a client of this identity.
    #[error(
        "call {call}: no leg has the Voice SDK client {identity:?} (clients found: {})",
        identities(clients)
    )]
    NoSuchClient {
        /// The call given.
        call: CallSid,
        /// The identity asked for.
        identity: String,
        /// The clients found.
        clients: Vec<ClientLeg>,
    },
    /// Twilio has no such call (404 when reading it).
    #[error("call {call} was not found: {source}")]
    CallNotFound {
        /// The call asked for.
        call: CallSid,
        /// Twilio's answer.
        source: Box<Error>,
    },
    /// The credentials may not read calls (401 or 403 when reading them, e.g. an API key
    /// restricted to call messages): give the client credentials that may, or name the leg
    /// yourself.
    #[error(
        "the credentials may not read call {call}, so its client's leg cannot be found: {source}"
    )]
    NotPermitted {
        /// The call asked for.
        call: CallSid,
        /// Twilio's answer.
        source: Box<Error>,
    },
}

fn legs(found: &[CallLeg]) -> String {
    if found.is_empty() {
        return "no legs".to_owned();
    }
    found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn identities(clients: &[ClientLeg]) -> String {
    clients
        .iter()
        .map(|c| format!("{:?} on {}", c.identity, c.call_sid))
        .collect::<Vec<_>>()
        .join(", ")
}
