//! The handwritten side of the generated client: what every request carries (auth, user
//! agent, timeout) and how the generated client's outcomes become this crate's [`Error`].
//!
//! Each operation gets its own generated client whose `inner` is a [`CallContext`]; the
//! context remembers the response status and request id, which progenitor drops when a body
//! does not decode.

use std::fmt;
use std::future::Future;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing::Instrument as _;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::error::{ApiError, Error, InputError, RequestInfo};
use crate::generated;
use crate::retry::RetryPolicy;
use crate::sid::{AccountSid, CallSid};

// Header names as constants: parsing them from text on every request shows in profiles.
const API_VERSION: HeaderName = HeaderName::from_static("api-version");
const TWILIO_REQUEST_ID: HeaderName = HeaderName::from_static("twilio-request-id");

/// Longest body excerpt kept in an error.
const EXCERPT_CHARS: usize = 200;

/// The most bytes of a response body that are read. Twilio's answers to these operations are
/// a few hundred bytes; the cap keeps a broken or hostile server from exhausting memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Settings shared by every request of one [`Client`](crate::Client), behind one `Arc`.
pub struct Shared {
    pub(crate) base_url: String,
    pub(crate) account_sid: AccountSid,
    /// Basic credentials, built once and marked sensitive.
    pub(crate) authorization: HeaderValue,
    pub(crate) user_agent: HeaderValue,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) http: reqwest::Client,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("authorization", &"<redacted>")
            .field("user_agent", &self.user_agent)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The generated client's inner value for one operation.
#[derive(Debug)]
pub struct CallContext {
    shared: Arc<Shared>,
    /// This attempt's timeout: the client's, cut to what the total deadline leaves.
    timeout: Duration,
    response: Mutex<Option<ResponseMeta>>,
}

#[derive(Clone, Debug)]
struct ResponseMeta {
    status: StatusCode,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    /// The body was longer than [`MAX_RESPONSE_BYTES`] and was cut.
    truncated: bool,
}

impl Clone for CallContext {
    fn clone(&self) -> Self {
        CallContext::new(self.shared.clone(), self.timeout)
    }
}

impl CallContext {
    fn new(shared: Arc<Shared>, timeout: Duration) -> Self {
        CallContext {
            shared,
            timeout,
            response: Mutex::new(None),
        }
    }

    fn set_meta(&self, meta: ResponseMeta) {
        *self.response.lock().unwrap_or_else(PoisonError::into_inner) = Some(meta);
    }

    fn meta(&self) -> Option<ResponseMeta> {
        self.response
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A generated client for one attempt of an operation, sharing the connection pool of
/// `shared`.
pub(crate) fn operation_client(shared: &Arc<Shared>, timeout: Duration) -> generated::Client {
    generated::Client::new_with_client(
        &shared.base_url,
        shared.http.clone(),
        CallContext::new(shared.clone(), timeout),
    )
}

impl ClientHooks<CallContext> for generated::Client {
    async fn exec(
        &self,
        mut request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let ctx = self.inner();
        let headers = request.headers_mut();
        // progenitor adds `api-version: <info.version>`; Twilio has no such header.
        headers.remove(API_VERSION);
        // Set on every request rather than as client defaults, so that a caller's own
        // `reqwest::Client` gets exactly the same treatment.
        headers.insert(AUTHORIZATION, ctx.shared.authorization.clone());
        headers.insert(USER_AGENT, ctx.shared.user_agent.clone());
        *request.timeout_mut() = Some(ctx.timeout);

        let response = self.client().execute(request).await?;
        // Recorded before the body is read, so a failure while reading keeps the status.
        let mut meta = ResponseMeta {
            status: response.status(),
            request_id: response
                .headers()
                .get(TWILIO_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            retry_after: response
                .headers()
                .get(RETRY_AFTER)
                .and_then(parse_retry_after),
            truncated: false,
        };
        // A declared length within the cap is enforced by hyper: the generated code may read
        // the body itself, with no copy here. Otherwise read at most the cap.
        if response
            .content_length()
            .is_some_and(|n| n <= MAX_RESPONSE_BYTES as u64)
        {
            ctx.set_meta(meta);
            return Ok(response);
        }
        ctx.set_meta(meta.clone());
        let (response, truncated) = read_capped(response).await?;
        if truncated {
            meta.truncated = true;
            ctx.set_meta(meta);
        }
        Ok(response)
    }
}

/// Runs `operation` inside `span`, or plainly when no subscriber wants the span (entering a
/// disabled span on every poll still shows in profiles).
pub(crate) async fn in_span<T>(span: tracing::Span, operation: impl Future<Output = T>) -> T {
    if span.is_disabled() {
        operation.await
    } else {
        operation.instrument(span).await
    }
}

/// The one span of an operation; `attempts`, `status` and `request_id` are recorded as they
/// become known. Message content is never recorded.
pub(crate) fn span(operation: &'static str, call: &CallSid) -> tracing::Span {
    tracing::debug_span!(
        "twilio_call_messages",
        operation,
        call_sid = %call,
        attempts = tracing::field::Empty,
        status = tracing::field::Empty,
        request_id = tracing::field::Empty,
    )
}

/// Turns the outcome of a generated call into this crate's result.
pub(crate) async fn finish<T>(
    api: &generated::Client,
    operation: &'static str,
    idempotency_key: Option<String>,
    result: Result<
        progenitor_client::ResponseValue<T>,
        generated::Error<generated::types::TwilioError>,
    >,
) -> Result<(T, RequestInfo), Error> {
    let meta = api.inner().meta();
    if let Some(meta) = &meta {
        let span = tracing::Span::current();
        span.record("status", meta.status.as_u16());
        if let Some(id) = &meta.request_id {
            span.record("request_id", id.as_str());
        }
    }
    let request = RequestInfo {
        operation,
        idempotency_key,
        request_id: meta.as_ref().and_then(|m| m.request_id.clone()),
        attempts: 1,
    };
    match result {
        Ok(value) => Ok((value.into_inner(), request)),
        Err(_) if meta.as_ref().is_some_and(|m| m.truncated) => {
            let status = meta.as_ref().map(|m| m.status).unwrap_or_default();
            let retry_after = meta.and_then(|m| m.retry_after);
            let reason = format!("the body is longer than the {MAX_RESPONSE_BYTES}-byte cap");
            Err(if status.is_success() {
                Error::Decode {
                    request,
                    status,
                    reason,
                    body_excerpt: String::new(),
                }
            } else {
                api_error(status, None, Some(reason), retry_after, request)
            })
        }
        Err(e) => Err(map_error(e, meta.as_ref(), request).await),
    }
}

async fn map_error(
    error: generated::Error<generated::types::TwilioError>,
    meta: Option<&ResponseMeta>,
    request: RequestInfo,
) -> Error {
    use progenitor_client::Error as G;
    let status = meta.map(|m| m.status);
    let retry_after = meta.and_then(|m| m.retry_after);
    match error {
        G::ErrorResponse(value) => {
            let status = value.status();
            api_error(status, Some(value.into_inner()), None, retry_after, request)
        }
        // A body that is not Twilio's error JSON (or a success body that does not decode).
        G::InvalidResponsePayload(bytes, e) => match status {
            Some(status) if !status.is_success() => {
                api_error(status, None, Some(excerpt(&bytes)), retry_after, request)
            }
            Some(status) => Error::Decode {
                request,
                status,
                reason: e.to_string(),
                body_excerpt: excerpt(&bytes),
            },
            // Unreachable in practice: a payload implies `exec` saw a response.
            None => Error::Decode {
                request,
                status: StatusCode::OK,
                reason: e.to_string(),
                body_excerpt: excerpt(&bytes),
            },
        },
        G::UnexpectedResponse(response) => {
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map(|b| excerpt(&b))
                .unwrap_or_default();
            if status.is_success() {
                Error::Decode {
                    request,
                    status,
                    reason: format!("unexpected success status {}", status.as_u16()),
                    body_excerpt: body,
                }
            } else {
                api_error(status, None, Some(body), retry_after, request)
            }
        }
        G::CommunicationError(e) if e.is_builder() => {
            Error::InvalidInput(InputError::Request(e.to_string()))
        }
        G::CommunicationError(e) | G::ResponseBodyError(e) | G::InvalidUpgrade(e) => {
            transport_error(e, status, request)
        }
        G::InvalidRequest(reason) | G::Custom(reason) => {
            Error::InvalidInput(InputError::Request(reason))
        }
    }
}

fn transport_error(e: reqwest::Error, status: Option<StatusCode>, request: RequestInfo) -> Error {
    if e.is_connect() {
        Error::Connect { request, source: e }
    } else if e.is_timeout() {
        Error::Timeout { request }
    } else {
        Error::Transport {
            request,
            status,
            source: e,
        }
    }
}

/// An error status with its raw body, decoded the way the generated client decodes it.
pub(crate) fn error_from_body(status: StatusCode, body: &[u8], request: RequestInfo) -> Error {
    match serde_json::from_slice::<generated::types::TwilioError>(body) {
        Ok(parsed) => api_error(status, Some(parsed), None, None, request),
        Err(_) => api_error(status, None, Some(excerpt(body)), None, request),
    }
}

fn api_error(
    status: StatusCode,
    body: Option<generated::types::TwilioError>,
    body_excerpt: Option<String>,
    retry_after: Option<Duration>,
    request: RequestInfo,
) -> Error {
    let body = body.unwrap_or_default();
    let message = body
        .message
        .or(body.detail)
        .or(body.title)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    Error::Api(Box::new(ApiError {
        status,
        code: body.code,
        message,
        more_info: body.more_info.or(body.type_),
        body_excerpt: body_excerpt.filter(|b| !b.is_empty()),
        retry_after,
        request,
    }))
}

/// Reads the whole body, at most [`MAX_RESPONSE_BYTES`] of it, into a response the generated
/// code can decode; says whether it was cut.
async fn read_capped(
    mut response: reqwest::Response,
) -> reqwest::Result<(reqwest::Response, bool)> {
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version());
    if let Some(headers) = builder.headers_mut() {
        *headers = std::mem::take(response.headers_mut());
    }
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    // Building from parts already validated by hyper cannot fail; fall back to an empty body.
    let rebuilt = builder.body(body).unwrap_or_default();
    Ok((reqwest::Response::from(rebuilt), truncated))
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The start of a body as printable text.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out.trim().to_owned()
}
