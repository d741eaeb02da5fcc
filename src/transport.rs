//! The hook side of the generated client: what every request carries (auth, user agent, this
//! attempt's timeout), what the hook records of each response, and how a generated outcome
//! becomes this crate's result or [`Error`].
//!
//! Each attempt has a generated client of its own ([`Endpoint::attempt`]): the connection
//! pool and the headers are shared, and the client's inner value ([`CallContext`]) carries this
//! attempt's timeout in and what the hook saw of the response out. The record matters because
//! progenitor drops the status when a body does not decode. (A task-local scoped around the
//! generated call did the same before; swapping it on every poll cost more than the per-attempt
//! client does.) Finished clients go back to the endpoint and are reused, so an attempt
//! allocates nothing for its client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
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

/// The most finished per-attempt clients kept for reuse: more than a client has in flight
/// at once by default (the concurrency limit's maximum is 100).
const SPARE_CLIENTS: usize = 128;

/// Where a client's requests go and what every one of them carries; built once per client.
pub(crate) struct Endpoint {
    base_url: String,
    http: reqwest::Client,
    headers: Arc<CallHeaders>,
    /// Finished per-attempt clients: building one costs a `String` and two reference counts.
    /// Boxed, so that a request's future holds a pointer rather than the 160-byte client.
    #[expect(
        clippy::vec_box,
        reason = "the clients leave the list, and move, as boxes"
    )]
    spare: Mutex<Vec<Box<generated::Client>>>,
}

/// The headers every request carries, and the pool's own default timeout.
struct CallHeaders {
    /// Basic credentials, built once and marked sensitive.
    authorization: HeaderValue,
    user_agent: HeaderValue,
    /// The timeout the `reqwest::Client` applies when a request sets none (known only for the
    /// client this crate built).
    http_timeout: Option<Duration>,
}

impl Endpoint {
    /// Requests to `base_url` over `http`'s connection pool; `http_timeout` is the request
    /// timeout `http` applies by default, if known.
    pub(crate) fn new(
        base_url: &str,
        http: reqwest::Client,
        http_timeout: Option<Duration>,
        authorization: HeaderValue,
        user_agent: HeaderValue,
    ) -> Self {
        Endpoint {
            base_url: base_url.to_owned(),
            http,
            headers: Arc::new(CallHeaders {
                authorization,
                user_agent,
                http_timeout,
            }),
            spare: Mutex::new(Vec::new()),
        }
    }

    /// The base URL, e.g. `https://api.twilio.com`.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The `User-Agent` every request carries (it holds no secret).
    pub(crate) fn user_agent(&self) -> &HeaderValue {
        &self.headers.user_agent
    }

    /// The generated client for one attempt: `timeout` for its request, and the request URL
    /// copied out if `want_url` (only when a span will record it).
    pub(crate) fn attempt(&self, timeout: Duration, want_url: bool) -> Box<generated::Client> {
        let spare = self.spare().pop();
        let mut api =
            spare.unwrap_or_else(|| Box::new(self.client(CallContext::new(&self.headers))));
        api.inner.timeout = Some(timeout);
        api.inner.want_url = want_url;
        api
    }

    /// Takes back a client from [`attempt`](Self::attempt) whose record was taken.
    fn recycle(&self, api: Box<generated::Client>) {
        let mut spare = self.spare();
        if spare.len() < SPARE_CLIENTS {
            spare.push(api);
        }
    }

    #[expect(
        clippy::vec_box,
        reason = "the clients leave the list, and move, as boxes"
    )]
    fn spare(&self) -> MutexGuard<'_, Vec<Box<generated::Client>>> {
        // A list of interchangeable clients is consistent whatever panicked.
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A generated client that sets no timeout of its own (the pool's applies), for the
    /// benchmarks' generated call alone.
    #[cfg(feature = "__private-do-not-use")]
    pub(crate) fn shared(&self) -> generated::Client {
        self.client(CallContext::new(&self.headers))
    }

    fn client(&self, context: CallContext) -> generated::Client {
        generated::Client::new_with_client(&self.base_url, self.http.clone(), context)
    }
}

/// The generated client's inner value: the shared headers, one attempt's settings in, what
/// the hook saw out (written by the one request the client makes per attempt).
pub struct CallContext {
    headers: Arc<CallHeaders>,
    timeout: Option<Duration>,
    want_url: bool,
    // A `Mutex` rather than a `OnceLock`: an uncontended lock costs less than `Once`'s
    // machinery, and the record is taken through `&mut` without one.
    seen: Mutex<Option<ResponseMeta>>,
    url: OnceLock<String>,
}

impl CallContext {
    fn new(headers: &Arc<CallHeaders>) -> Self {
        CallContext {
            headers: headers.clone(),
            timeout: None,
            want_url: false,
            seen: Mutex::new(None),
            url: OnceLock::new(),
        }
    }

    /// What the hook saw of the response and the request URL, once the call is over; the
    /// context is empty again afterwards.
    fn take_record(&mut self) -> (Option<ResponseMeta>, Option<String>) {
        let seen = self.seen.get_mut().unwrap_or_else(PoisonError::into_inner);
        (seen.take(), self.url.take())
    }

    fn record(&self, meta: ResponseMeta) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(meta);
    }
}

/// A clone is a client of its own: same settings, nothing recorded yet (progenitor's client
/// derives `Clone`; this crate never clones one).
impl Clone for CallContext {
    fn clone(&self) -> Self {
        CallContext {
            timeout: self.timeout,
            want_url: self.want_url,
            ..CallContext::new(&self.headers)
        }
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("authorization", &"<redacted>")
            .field("user_agent", &self.headers.user_agent)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
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
        let status = response.status();
        ResponseMeta {
            status,
            request_id: header(TWILIO_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            // Only a failure is retried: a success's `Retry-After` means nothing here, and
            // looking it up is one more hashed lookup on every request.
            retry_after: if status.is_success() {
                None
            } else {
                header(RETRY_AFTER).and_then(parse_retry_after)
            },
            concurrent_requests: header(TWILIO_CONCURRENT_REQUESTS)
                .and_then(|v| v.to_str().ok()?.trim().parse().ok()),
            truncated: false,
        }
    }
}

/// The outcome of one attempt.
pub(crate) struct Attempted<T> {
    pub(crate) result: Result<T, Error>,
    /// What the hook saw of the response, if one arrived.
    pub(crate) response: Option<ResponseMeta>,
    /// The request URL, when asked for.
    pub(crate) url: Option<String>,
}

/// An attempt's outcome: ready for a success, still to be built (boxed) for a failure.
pub(crate) enum Finished<T> {
    Ready(Attempted<T>),
    Failed(Pin<Box<dyn Future<Output = Attempted<T>> + Send>>),
}

/// The outcome of one generated call made with `api` (from [`Endpoint::attempt`]), ready at
/// once for a success. A failure becomes this crate's error (with the
/// operation and request id; the orchestrator adds the idempotency key and the attempt count
/// when it gives up), which may read an unexpected answer's body: that path is boxed, so its
/// state does not make every request's future larger (and every move of it dearer). Taking
/// the generated result by value here, rather than matching on it around an `.await`, keeps
/// it out of the request's state while the error is built.
pub(crate) fn finish<T: Send + 'static>(
    operation: &'static str,
    endpoint: &Endpoint,
    mut api: Box<generated::Client>,
    sent: Result<progenitor_client::ResponseValue<T>, GeneratedError>,
) -> Finished<T> {
    let (response, url) = api.inner.take_record();
    endpoint.recycle(api);
    match sent {
        Ok(value) => Finished::Ready(Attempted {
            result: Ok(value.into_inner()),
            response,
            url,
        }),
        Err(error) => Finished::Failed(Box::pin(failed(operation, error, response, url))),
    }
}

async fn failed<T>(
    operation: &'static str,
    error: GeneratedError,
    response: Option<ResponseMeta>,
    url: Option<String>,
) -> Attempted<T> {
    Attempted {
        result: Err(error_of(error, operation, response.as_ref()).await),
        response,
        url,
    }
}

impl ClientHooks<CallContext> for generated::Client {
    // Not an `async fn`: the headers are set and the request handed to reqwest before the
    // future exists, so the future holds reqwest's 16-byte handle instead of two copies of
    // the 264-byte request (an async fn keeps its arguments beside its locals), and every
    // future around it, the generated call's and the orchestrator's, is that much smaller
    // to build and move.
    fn exec(
        &self,
        mut request: reqwest::Request,
        _info: &OperationInfo,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> {
        let ctx = self.inner();
        if ctx.want_url {
            let _ = ctx.url.set(request.url().as_str().to_owned());
        }
        let headers = request.headers_mut();
        // progenitor adds `api-version: <info.version>`; Twilio has no such header.
        headers.remove(API_VERSION);
        // Set on every request rather than as client defaults, so that a caller's own
        // `reqwest::Client` gets exactly the same treatment.
        headers.insert(AUTHORIZATION, ctx.headers.authorization.clone());
        headers.insert(USER_AGENT, ctx.headers.user_agent.clone());
        if ctx.timeout.is_some() && ctx.timeout != ctx.headers.http_timeout {
            *request.timeout_mut() = ctx.timeout;
        }
        let pending = self.client().execute(request);
        async move {
            let response = pending.await?;
            // Recorded before the body is read, so a failure while reading keeps the status.
            let mut meta = ResponseMeta::of(&response);
            // A declared length within the cap is enforced by hyper: the generated code may
            // read the body itself, with no copy here. Otherwise read at most the cap (boxed:
            // the rare path's state stays out of every request's future).
            if response
                .content_length()
                .is_some_and(|n| n <= MAX_RESPONSE_BYTES as u64)
            {
                ctx.record(meta);
                return Ok(response);
            }
            let read = Box::pin(read_capped(response)).await;
            if let Ok((_, truncated)) = &read {
                meta.truncated = *truncated;
            }
            ctx.record(meta);
            read.map(|(response, _)| response)
        }
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

/// An error status with its raw body, decoded the way the generated client decodes it (for the
/// flow model and `__private`'s fuzz targets).
#[cfg(any(test, feature = "__private-do-not-use"))]
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
