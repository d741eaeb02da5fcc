//! The one request path. Every operation (send, subscribe, unsubscribe, and each call of a
//! broadcast) runs through [`run`], which owns: the input checks, the idempotency key, the span,
//! the attempt loop, the generated call (made with [`transport::Endpoint::attempt`]) and the result. An
//! operation only declares its generated call and how the decoded body becomes its public
//! result ([`Operation`]). The loop asks the retry rules (`src/retry/state.rs`) what each
//! outcome means; it does no arithmetic of its own.
//!
//! Follow one message: `SendMessage` (src/message.rs) → [`run`] here → the generated
//! `create_user_defined_message` → the hook in src/transport.rs → back here → `Message`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, InputError, RequestInfo};
use crate::generated;
use crate::retry::RetryPolicy;
use crate::retry::classify::OutcomeKind;
use crate::retry::state::{Next, RetryState};
use crate::sid::{AccountSid, CallSid};
use crate::transport::{self, Finished};

/// What one generated call returns: the contract between an [`Operation`] and the generated
/// client.
pub(crate) type Generated<T> =
    Result<progenitor_client::ResponseValue<T>, generated::Error<generated::types::TwilioError>>;

/// One Twilio operation, as the orchestrator needs to know it.
pub(crate) trait Operation: Send + Sync + 'static {
    /// Twilio's operationId, e.g. `CreateUserDefinedMessage`.
    const NAME: &'static str;
    /// The HTTP method, for the span.
    const METHOD: &'static str;
    /// The generated success body.
    type Body: Send;
    /// The public result.
    type Output;

    /// The call the request is about, if it is about one (a conference's participants are
    /// not).
    fn call_sid(&self) -> Option<&CallSid>;

    /// Where the request's `IdempotencyKey` goes, for operations that carry one.
    fn idempotency_key(&mut self) -> Option<&mut Option<String>> {
        None
    }

    /// One attempt through the generated client.
    fn send<'a>(
        &'a self,
        api: &'a generated::Client,
        account: &'a AccountSid,
    ) -> impl Future<Output = Generated<Self::Body>> + Send + 'a;

    /// An error that means success when an earlier attempt may already have done the work
    /// (a delete answered "not found" after a timeout).
    fn recover(_error: &Error) -> Option<Self::Body> {
        None
    }

    /// The decoded body as the public result.
    fn output(
        self,
        body: Self::Body,
        account: AccountSid,
        request: RequestInfo,
    ) -> Result<Self::Output, Error>;
}

/// The options every operation takes; unset means the client's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// Boxed: set on few requests, and every request's future carries the options.
    pub(crate) retry_policy: Option<Box<RetryPolicy>>,
    /// Per attempt, cut by what the total deadline leaves.
    pub(crate) timeout: Option<Duration>,
    /// Ignored by operations without a key.
    pub(crate) idempotency_key: Option<String>,
}

/// [`run`]'s future, boxed for a builder's `IntoFuture` (the future's type cannot be named).
///
/// The future is built in its allocation: `Box::pin(run(..))` builds the ~2.4 KB future on the
/// stack and then copies it into the box, ~400 instructions per request in profiles. Writing
/// `run`'s result straight into an uninitialised box lets the compiler build it there; this
/// needs the call made right here, with its arguments (a closure, or a function returning the
/// future, in between brought the copy back).
pub(crate) fn boxed<O: Operation>(
    client: Client,
    options: Options,
    operation: Result<O, Error>,
) -> Pin<Box<dyn Future<Output = Result<O::Output, Error>> + Send>> {
    let future = Box::write(Box::new_uninit(), run(client, options, operation));
    Box::into_pin(future)
}

/// Runs `operation` to its one result.
///
/// One async fn holds the whole request: every layer of futures is one more copy of the
/// request's state when it starts and one more frame on every poll (a separate attempt loop
/// and the span's wrapper around it cost ~500 instructions per request in profiles). The span
/// is entered only while the generated call runs, the part that can emit events of its own
/// (reqwest's and hyper's); this crate's own events name it as their parent.
///
/// Each attempt waits for a slot under the client's concurrency limit, is sent, and tells the
/// limit what it learned; after a failure the retry rules say whether to wait and try again.
pub(crate) async fn run<O: Operation>(
    client: Client,
    mut options: Options,
    operation: Result<O, Error>,
) -> Result<O::Output, Error> {
    let mut operation = operation?;
    if options.timeout.is_some_and(|t| t.is_zero()) {
        return Err(InputError::Request("the timeout must be longer than zero".into()).into());
    }
    if let Some(slot) = operation.idempotency_key() {
        *slot = Some(idempotency_key(options.idempotency_key.take())?);
    }
    let inner = client.inner();
    let span = span::<O>(operation.call_sid(), &inner.server_address);
    let limiter = &inner.limiter;
    let policy = options.retry_policy.as_deref().unwrap_or(&inner.retry);
    let per_attempt = options.timeout.unwrap_or(inner.timeout);
    let mut retry = RetryState::new(O::NAME, policy, &inner.retry_budget);
    let mut result = loop {
        // A free slot is taken at once; only waiting needs the clock and a timer.
        let permit = match limiter.try_acquire() {
            Some(permit) => permit,
            None => {
                let remaining = retry.remaining();
                match tokio::time::timeout(remaining, limiter.acquire()).await {
                    Ok(permit) => permit,
                    Err(_) => break Err(retry.deadline_passed(remaining)),
                }
            }
        };
        let timeout = retry.start_attempt(per_attempt);
        if !span.is_disabled() {
            let stats = limiter.stats();
            span.record("twilio.concurrency_limit", stats.limit);
            span.record("twilio.waiting", stats.waiting);
        }
        let api = inner
            .endpoint
            .attempt(timeout, retry.attempts() == 1 && !span.is_disabled());
        // Each branch awaits its own future in place: a wrapper choosing between them would
        // be one more copy of it.
        let sent = if span.is_disabled() {
            operation.send(&api, &inner.account_sid).await
        } else {
            use tracing::Instrument as _;
            operation
                .send(&api, &inner.account_sid)
                .instrument(span.clone())
                .await
        };
        let attempt = match transport::finish(O::NAME, &inner.endpoint, api, sent) {
            Finished::Ready(attempt) => attempt,
            Finished::Failed(building) => building.await,
        };
        let (request_id, concurrent_requests) =
            record_in_span(&span, attempt.url.as_deref(), attempt.response);
        let error = match attempt.result {
            Ok(body) => {
                permit.learn(OutcomeKind::Success.lesson(), concurrent_requests);
                retry.succeeded();
                break Ok((body, RequestInfo::new(O::NAME, request_id)));
            }
            Err(error) => error,
        };
        let kind = retry.failed(&error);
        if kind.is_throttled() {
            span.record("twilio.throttled", retry.throttles());
        }
        permit.learn(kind.lesson(), concurrent_requests);
        if retry.earlier_attempt_may_have_been_processed()
            && let Some(body) = O::recover(&error)
        {
            break Ok((body, RequestInfo::new(O::NAME, request_id)));
        }
        match retry.next(error, kind, fastrand::f64()) {
            Next::RetryAfter(wait) => {
                tracing::debug!(
                    parent: &span,
                    attempt = retry.attempts(),
                    wait_ms = wait.as_millis() as u64,
                    error = retry.last_error().map(tracing::field::display),
                    "retrying"
                );
                tokio::time::sleep(wait).await;
                span.record("http.request.resend_count", retry.attempts());
            }
            Next::GiveUp(error) => {
                tracing::debug!(parent: &span, attempt = retry.attempts(), error = %error, "failed");
                break Err(error);
            }
        }
    };
    let key = operation.idempotency_key().and_then(Option::take);
    let request = match &mut result {
        Ok((_, request)) => Some(request),
        Err(error) => error.request_mut(),
    };
    if let Some(request) = request {
        request.complete(key, retry.attempts());
    }
    result
        .and_then(|(body, request)| operation.output(body, inner.account_sid, request))
        .inspect_err(|e| {
            span.record("error.type", e.type_name());
        })
}

/// Records the request URL and what the response said into the span (the URL is only ever
/// copied out when the span is enabled); returns Twilio's request id and its
/// `Twilio-Concurrent-Requests`.
fn record_in_span(
    span: &tracing::Span,
    url: Option<&str>,
    response: Option<transport::ResponseMeta>,
) -> (Option<String>, Option<u32>) {
    // Recording into a disabled span still builds the field set each time.
    if !span.is_disabled() {
        if let Some(url) = url {
            span.record("url.full", url);
        }
        if let Some(meta) = &response {
            span.record("http.response.status_code", meta.status.as_u16());
            if let Some(id) = &meta.request_id {
                span.record("twilio.request_id", id.as_str());
            }
        }
    }
    response.map_or((None, None), |meta| {
        (meta.request_id, meta.concurrent_requests)
    })
}

/// The caller's key, checked, or a fresh UUID v4.
fn idempotency_key(key: Option<String>) -> Result<String, Error> {
    match key {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(key) if key.is_empty() => Err(InputError::IdempotencyKey("must not be empty").into()),
        Some(key) => Ok(key),
    }
}

/// The one span of an operation, with OpenTelemetry's HTTP client field names; the response
/// fields are recorded as they become known, only ever into this span. Message content and
/// credentials are never recorded.
///
/// No span at all before any `tracing` subscriber is set: `debug_span!` would still build its
/// fields for `tracing`'s `log` fallback (on whenever any crate in the build enables the
/// `log` feature), ~200 instructions per request for a span nothing records. Our events still
/// reach `log` that way; only the span's creation line does not.
fn span<O: Operation>(call: Option<&CallSid>, server: &str) -> tracing::Span {
    if !tracing::dispatcher::has_been_set() {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        "twilio_call_messages",
        operation = O::NAME,
        call_sid = call.map(tracing::field::display),
        "http.request.method" = O::METHOD,
        "server.address" = server,
        "url.full" = tracing::field::Empty,
        "http.response.status_code" = tracing::field::Empty,
        "http.request.resend_count" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        "twilio.request_id" = tracing::field::Empty,
        "twilio.concurrency_limit" = tracing::field::Empty,
        "twilio.waiting" = tracing::field::Empty,
        "twilio.throttled" = tracing::field::Empty,
    )
}
