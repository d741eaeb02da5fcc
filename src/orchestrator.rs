//! The one request path. Every operation (send, subscribe, unsubscribe, and each call of a
//! broadcast) runs through [`run`], which owns: the input checks, the idempotency key, the span,
//! the retry loop, the per-attempt timeout, the generated call (through
//! [`transport::attempt`]) and the result. An operation only declares its generated call and
//! how the decoded body becomes its public result ([`Operation`]).
//!
//! Follow one message: `SendMessage` (src/message.rs) → [`run`] here → the generated
//! `create_user_defined_message` → the hook in src/transport.rs → back here → `Message`.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::{Error, GaveUp, InputError, RequestInfo};
use crate::flow::{RetryKind, RetryToken};
use crate::generated;
use crate::retry::RetryPolicy;
use crate::sid::{AccountSid, CallSid};
use crate::transport::{self, Generated};

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

    /// The call the request is about (every operation here has one).
    fn call_sid(&self) -> &CallSid;

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
    pub(crate) retry_policy: Option<RetryPolicy>,
    /// Per attempt, cut by what the total deadline leaves.
    pub(crate) timeout: Option<Duration>,
    /// Ignored by operations without a key.
    pub(crate) idempotency_key: Option<String>,
}

/// Runs `operation` to its one result.
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
    let shared = client.shared();
    let span = span::<O>(operation.call_sid(), &shared.server_address);
    let attempts = transport::in_span(&span, attempts(&client, &options, &operation, &span)).await;
    let (body, request_id, attempts) = match attempts {
        Ok(done) => done,
        Err((mut error, attempts)) => {
            let key = operation.idempotency_key().and_then(Option::take);
            if let Some(request) = error.request_mut() {
                request.idempotency_key = key;
                request.attempts = attempts;
            }
            span.record("error.type", error.type_name());
            return Err(error);
        }
    };
    let request = RequestInfo {
        operation: O::NAME,
        idempotency_key: operation.idempotency_key().and_then(Option::take),
        request_id,
        attempts,
        gave_up: None,
    };
    operation
        .output(body, shared.account_sid, request)
        .inspect_err(|e| {
            span.record("error.type", e.type_name());
        })
}

/// The retry loop: the body, Twilio's request id and the attempts made; or the last error and
/// the attempts made.
///
/// Each attempt first waits for a slot under the client's concurrency limit and tells the
/// limit what it learned. A throttled attempt (429 / 20429, never processed by Twilio) is tried
/// again until the deadline without spending the policy's attempts; any other retry also
/// needs a token from the client's retry budget.
async fn attempts<O: Operation>(
    client: &Client,
    options: &Options,
    operation: &O,
    span: &tracing::Span,
) -> Result<(O::Body, Option<String>, u32), (Error, u32)> {
    let shared = client.shared();
    let flow = &shared.flow;
    let policy = options.retry_policy.as_ref().unwrap_or(&shared.retry);
    let per_attempt = options.timeout.unwrap_or(shared.timeout);
    let start = Instant::now();
    let (mut sent, mut faults, mut throttles) = (0, 0, 0);
    let mut retry_token: Option<RetryToken> = None;
    let mut may_have_been_processed = false;
    let mut last_error: Option<Error> = None;
    loop {
        let remaining = policy.total_deadline.saturating_sub(start.elapsed());
        // A free slot is taken at once; only waiting needs a timer for the deadline.
        let permit = match flow.limiter.try_acquire() {
            Some(permit) => Ok(permit),
            None => tokio::time::timeout(remaining, flow.limiter.acquire()).await,
        };
        let Ok(permit) = permit else {
            let error = match last_error {
                Some(mut error) => {
                    if let Some(request) = error.request_mut() {
                        request.gave_up = Some(GaveUp::Deadline {
                            wait: remaining,
                            remaining,
                        });
                    }
                    error
                }
                None => Error::Deadline {
                    request: Box::new(RequestInfo {
                        operation: O::NAME,
                        idempotency_key: None,
                        request_id: None,
                        attempts: 0,
                        gave_up: None,
                    }),
                },
            };
            return Err((error, sent));
        };
        sent += 1;
        if !span.is_disabled() {
            let stats = flow.limiter.stats();
            span.record("twilio.concurrency_limit", stats.limit);
            span.record("twilio.waiting", stats.waiting);
        }
        let attempt = transport::attempt(
            O::NAME,
            per_attempt.min(policy.total_deadline.saturating_sub(start.elapsed())),
            sent == 1 && !span.is_disabled(),
            || operation.send(&shared.api, &shared.account_sid),
        )
        .await;
        if let Some(url) = &attempt.url {
            span.record("url.full", url.as_str());
        }
        let mut concurrent_requests = None;
        let request_id = attempt.response.and_then(|meta| {
            span.record("http.response.status_code", meta.status.as_u16());
            if let Some(id) = &meta.request_id {
                span.record("twilio.request_id", id.as_str());
            }
            concurrent_requests = meta.concurrent_requests;
            meta.request_id
        });
        let mut error = match attempt.result {
            Ok(body) => {
                permit.success(concurrent_requests);
                match retry_token.take() {
                    Some(token) => token.refund(),
                    None if faults == 0 => flow.budget.on_first_attempt_success(),
                    None => {}
                }
                return Ok((body, request_id, sent));
            }
            Err(error) => error,
        };
        let throttled = error.is_throttled();
        if throttled {
            permit.throttled(concurrent_requests);
            throttles += 1;
            span.record("twilio.throttled", throttles);
        } else if matches!(&error, Error::Api(api) if api.status.is_client_error()) {
            // Twilio admitted the request and answered about it: the account had room.
            permit.success(concurrent_requests);
        } else {
            permit.ignore();
        }
        if may_have_been_processed && let Some(body) = O::recover(&error) {
            return Ok((body, request_id, sent));
        }
        may_have_been_processed |= error.may_have_been_processed();
        // Throttles back off on their own count (the limit, cut by each throttle, paces them
        // too): a persistent 429 without `Retry-After` must not become a tight loop.
        let count = if throttled { throttles } else { faults + 1 };
        let next = policy.next(count, &error, start.elapsed(), fastrand::f64());
        let wait = match next {
            Ok(wait) if throttled => Ok(wait),
            Ok(wait) => {
                faults += 1;
                let kind = match error {
                    Error::Timeout { .. } | Error::Transport { .. } => RetryKind::Timeout,
                    _ => RetryKind::Error,
                };
                // Replacing the token spends the last one: that retry failed.
                retry_token = flow.budget.try_acquire(kind);
                retry_token
                    .as_ref()
                    .map(|_| wait)
                    .ok_or(Some(GaveUp::RetryBudget))
            }
            Err(reason) => Err(reason),
        };
        match wait {
            Ok(wait) => {
                tracing::debug!(attempt = sent, wait_ms = wait.as_millis() as u64, error = %error, "retrying");
                tokio::time::sleep(wait).await;
                span.record("http.request.resend_count", sent);
                last_error = Some(error);
            }
            Err(reason) => {
                if let Some(request) = error.request_mut() {
                    request.gave_up = reason;
                }
                tracing::debug!(attempt = sent, error = %error, "failed");
                return Err((error, sent));
            }
        }
    }
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
fn span<O: Operation>(call: &CallSid, server: &str) -> tracing::Span {
    tracing::debug_span!(
        "twilio_call_messages",
        operation = O::NAME,
        call_sid = %call,
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
