//! The hook side of the generated client: what every request carries (auth, user agent, this
//! attempt's timeout), what the hook records of each response, and how a generated outcome
//! becomes this crate's result or [`Error`].
//!
//! One generated client serves every request of a [`Client`](crate::Client). What differs per
//! attempt (its timeout in, the response's status and headers out) travels in a task-local
//! [`Attempt`] scoped around the generated call: no lock, no per-attempt client. The record
//! matters because progenitor drops the status when a body does not decode.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::error::{ApiError, Error, InputError, RequestInfo};
use crate::generated;

// Header names as constants: parsing them from text on every request shows in profiles.
const API_VERSION: HeaderName = HeaderName::from_static("api-version");
const TWILIO_REQUEST_ID: HeaderName = HeaderName::from_static("twilio-request-id");
const TWILIO_CONCURRENT_REQUESTS: HeaderName =
    HeaderName::from_static("twilio-concurrent-requests");

/// Longest body excerpt kept in an error.
const EXCERPT_CHARS: usize = 200;

/// The most bytes of a response body that are read. Twilio's answers to these operations are
/// a few hundred bytes; the cap keeps a broken or hostile server from exhausting memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What a failed generated call carries.
type GeneratedError = generated::Error<generated::types::TwilioError>;

/// The generated client's inner value: the headers every request carries.
#[derive(Clone)]
pub struct CallContext {
    /// Basic credentials, built once and marked sensitive.
    authorization: HeaderValue,
    user_agent: HeaderValue,
}

impl CallContext {
    /// The `User-Agent` every request carries (it holds no secret).
    pub(crate) fn user_agent(&self) -> &HeaderValue {
        &self.user_agent
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("authorization", &"<redacted>")
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// The generated client for `base_url`, over `http`'s connection pool.
pub(crate) fn api_client(
    base_url: &str,
    http: reqwest::Client,
    authorization: HeaderValue,
    user_agent: HeaderValue,
) -> generated::Client {
    generated::Client::new_with_client(
        base_url,
        http,
        CallContext {
            authorization,
            user_agent,
        },
    )
}

/// What the hook saw of a response.
#[derive(Clone, Debug)]
pub(crate) struct ResponseMeta {
    pub(crate) status: StatusCode,
    pub(crate) request_id: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    /// `Twilio-Concurrent-Requests`: the account's requests in flight, as Twilio counts them.
    pub(crate) concurrent_requests: Option<u32>,
    /// The body was longer than [`MAX_RESPONSE_BYTES`] and was cut.
    truncated: bool,
}

impl ResponseMeta {
    fn of(response: &reqwest::Response) -> Self {
        let header = |name| response.headers().get(name);
        ResponseMeta {
            status: response.status(),
            request_id: header(TWILIO_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            retry_after: header(RETRY_AFTER).and_then(parse_retry_after),
            concurrent_requests: header(TWILIO_CONCURRENT_REQUESTS)
                .and_then(|v| v.to_str().ok()?.trim().parse().ok()),
            truncated: false,
        }
    }
}

/// One attempt's side of the hook: its timeout in, what the response said out.
struct Attempt {
    timeout: Duration,
    /// Copy the request URL out (only when a span will record it).
    want_url: bool,
    url: Option<String>,
    response: Option<ResponseMeta>,
}

tokio::task_local! {
    // Boxed: the task-local is swapped in and out of the thread on every poll, so it should
    // be one pointer, not the whole record.
    static ATTEMPT: Box<RefCell<Attempt>>;
}

/// The outcome of one attempt.
pub(crate) struct Attempted<T> {
    pub(crate) result: Result<T, Error>,
    /// What the hook saw of the response, if one arrived.
    pub(crate) response: Option<ResponseMeta>,
    /// The request URL, when asked for.
    pub(crate) url: Option<String>,
}

/// Runs one generated call of `operation` (made by `call`) with `timeout`, and turns its
/// outcome into this crate's result. Errors carry the operation and request id; the
/// orchestrator adds the idempotency key and the attempt count when it gives up.
///
/// Not an `async fn`, and the call is made inside: an `async fn` keeps its arguments beside
/// what it awaits, and the generated future is the largest part of a request's state.
pub(crate) fn attempt<T, F, Fut>(
    operation: &'static str,
    timeout: Duration,
    want_url: bool,
    call: F,
) -> impl Future<Output = Attempted<T>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<progenitor_client::ResponseValue<T>, GeneratedError>>,
{
    let context = Box::new(RefCell::new(Attempt {
        timeout,
        want_url,
        url: None,
        response: None,
    }));
    ATTEMPT.scope(context, async move {
        let result = call().await;
        let (response, url) = ATTEMPT.with(|a| {
            let mut a = a.borrow_mut();
            (a.response.take(), a.url.take())
        });
        let result = match result {
            Ok(value) => Ok(value.into_inner()),
            Err(e) => Err(error_of(e, operation, response.as_ref()).await),
        };
        Attempted {
            result,
            response,
            url,
        }
    })
}

/// Called inside the hook: this attempt's timeout (`None` only outside [`attempt`], which
/// every request goes through), and the URL copied out when it is wanted.
fn attempt_settings(request: &reqwest::Request) -> Option<Duration> {
    ATTEMPT
        .try_with(|a| {
            let mut a = a.borrow_mut();
            if a.want_url {
                a.url = Some(request.url().as_str().to_owned());
            }
            a.timeout
        })
        .ok()
}

/// Keeps what the hook saw of the response in this attempt's task-local, for [`attempt`].
fn keep_response_meta(meta: ResponseMeta) {
    let _ = ATTEMPT.try_with(|a| a.borrow_mut().response = Some(meta));
}

impl ClientHooks<CallContext> for generated::Client {
    async fn exec(
        &self,
        mut request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let ctx = self.inner();
        let timeout = attempt_settings(&request);
        let headers = request.headers_mut();
        // progenitor adds `api-version: <info.version>`; Twilio has no such header.
        headers.remove(API_VERSION);
        // Set on every request rather than as client defaults, so that a caller's own
        // `reqwest::Client` gets exactly the same treatment.
        headers.insert(AUTHORIZATION, ctx.authorization.clone());
        headers.insert(USER_AGENT, ctx.user_agent.clone());
        if let Some(timeout) = timeout {
            *request.timeout_mut() = Some(timeout);
        }

        let response = self.client().execute(request).await?;
        // Recorded before the body is read, so a failure while reading keeps the status.
        let meta = ResponseMeta::of(&response);
        // A declared length within the cap is enforced by hyper: the generated code may read
        // the body itself, with no copy here. Otherwise read at most the cap.
        if response
            .content_length()
            .is_some_and(|n| n <= MAX_RESPONSE_BYTES as u64)
        {
            keep_response_meta(meta);
            return Ok(response);
        }
        keep_response_meta(meta);
        let (response, truncated) = read_capped(response).await?;
        if truncated {
            let _ = ATTEMPT.try_with(|a| {
                if let Some(meta) = &mut a.borrow_mut().response {
                    meta.truncated = true;
                }
            });
        }
        Ok(response)
    }
}

/// A failed generated call as this crate's error.
async fn error_of(
    error: GeneratedError,
    operation: &'static str,
    meta: Option<&ResponseMeta>,
) -> Error {
    // Key and attempts are the orchestrator's to complete.
    let request = RequestInfo::new(operation, meta.and_then(|m| m.request_id.clone()));
    match meta {
        Some(meta) if meta.truncated => {
            let reason = format!("the body is longer than the {MAX_RESPONSE_BYTES}-byte cap");
            if meta.status.is_success() {
                Error::Decode {
                    request: request.into(),
                    status: meta.status,
                    reason,
                    body_excerpt: String::new(),
                }
            } else {
                api_error(meta.status, None, Some(reason), meta.retry_after, request)
            }
        }
        _ => map_error(error, meta, request).await,
    }
}

async fn map_error(
    error: GeneratedError,
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
                request: request.into(),
                status,
                reason: e.to_string(),
                body_excerpt: excerpt(&bytes),
            },
            // Unreachable in practice: a payload implies `exec` saw a response.
            None => Error::Decode {
                request: request.into(),
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
                    request: request.into(),
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
        Error::Connect {
            request: request.into(),
            source: e,
        }
    } else if e.is_timeout() {
        Error::Timeout {
            request: request.into(),
            source: e,
        }
    } else {
        Error::Transport {
            request: request.into(),
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
        instance: body.instance,
        errors: body.errors.unwrap_or_default(),
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
