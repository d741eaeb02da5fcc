//! Entry points into the decoding and encoding code for the crate's own benchmarks and fuzz
//! targets. Not part of the public API: no stability promise, hidden from the docs.

use crate::error::{Error, RequestInfo};
use crate::generated::{self, types};
use crate::message::MessageContent;
use crate::model::Message;
use crate::sid::{AccountSid, CallSid};
use crate::transport;

fn request() -> RequestInfo {
    let mut request = RequestInfo::new("CreateUserDefinedMessage", None);
    request.complete(Some("key".to_owned()), 1);
    request
}

/// The form body `send_message` sends for `content` (the generated request type, encoded the
/// way the generated client encodes it).
pub fn encode_message_form(content: &MessageContent, idempotency_key: &str) -> String {
    let body = types::CreateUserDefinedMessageRequest {
        content: content.as_str().to_owned(),
        idempotency_key: Some(idempotency_key.to_owned()),
    };
    serde_urlencoded::to_string(&body).unwrap_or_default()
}

/// The generated call alone, as progenitor's client is meant to be used: one client with this
/// crate's hook and inner type (credentials, user agent), on the SDK's connection pool with its
/// request timeout, the same body (the content serialized once, a fresh UUID key), but no retry
/// state, concurrency limiter, span or per-attempt client. The benchmarks' middle column: what the
/// design (a generated client) costs, against what the handwritten layer adds.
pub struct GeneratedAlone {
    api: generated::Client,
    account: AccountSid,
}

impl GeneratedAlone {
    /// One generated client for all calls, on `client`'s connection pool, headers and
    /// timeout (its pool's default).
    pub fn new(client: &crate::Client) -> Self {
        let inner = client.inner();
        GeneratedAlone {
            api: inner.endpoint.shared(),
            account: inner.account_sid,
        }
    }

    /// Sends `content` into `call`.
    pub async fn send<T: serde::Serialize + ?Sized>(
        &self,
        call: &CallSid,
        content: &T,
    ) -> Result<(), String> {
        let body = types::CreateUserDefinedMessageRequest {
            content: serde_json::to_string(content).map_err(|e| e.to_string())?,
            idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
        };
        let created = self
            .api
            .create_user_defined_message(&self.account, call, &body)
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        std::hint::black_box(created);
        Ok(())
    }
}

/// Decodes a 201 body of `CreateUserDefinedMessage` into the typed result.
pub fn decode_message_response(
    body: &[u8],
    account: AccountSid,
    call: CallSid,
) -> Result<Message, Error> {
    let parsed: types::UserDefinedMessage =
        serde_json::from_slice(body).map_err(|e| Error::Decode {
            request: Box::new(request()),
            status: reqwest::StatusCode::CREATED,
            reason: e.to_string(),
            body_excerpt: String::new(),
        })?;
    crate::message::message_from(parsed, account, call, request())
}

/// Decodes an error body answered with `status`, as the client does.
pub fn decode_error_response(status: u16, body: &[u8]) -> Error {
    let status = reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
    transport::error_from_body(status, body, request())
}

/// The error a retry decision sees for an answer with `status`, `body` and `Retry-After`
/// (already parsed), as the client builds it.
pub fn api_error_with_retry_after(
    status: u16,
    body: &[u8],
    retry_after: Option<std::time::Duration>,
) -> Error {
    let mut error = decode_error_response(status, body);
    if let Error::Api(api) = &mut error {
        api.retry_after = retry_after;
    }
    error
}

/// A retryable error that is not an answer: the deadline passed while waiting for a slot
/// (the one transport-side variant that needs no `reqwest::Error` to build).
pub fn deadline_error() -> Error {
    Error::Deadline {
        request: Box::new(request()),
    }
}

/// What a signature covers after the URL, and whether the body matched `bodySHA256`: the
/// canonical text [`SignatureValidator::verify`](crate::SignatureValidator::verify) checks.
pub fn signed_suffix(
    url: &str,
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<(Vec<u8>, bool), crate::SignatureError> {
    crate::webhook::internal::signed_suffix(url, content_type, body)
}

/// Whether the URL's query has a `bodySHA256` parameter.
pub fn carries_body_hash(url: &str) -> bool {
    crate::webhook::internal::carries_body_hash(url)
}

/// Every URL a signature over `url` is checked against, in the order tried.
pub fn signature_url_variants(url: &str) -> Vec<String> {
    crate::webhook::internal::url_variants(url)
}

/// The URL the receiver rebuilds from a request's headers (`Forwarded`,
/// `X-Forwarded-*`, `Host`), or why it cannot.
pub fn forwarded_request_url(
    headers: &http::HeaderMap,
    own_authority: Option<&str>,
    path_and_query: &str,
    trust_forwarded: bool,
) -> Result<String, String> {
    crate::webhook::internal::request_url(headers, own_authority, path_and_query, trust_forwarded)
}

/// The client's concurrency limiter, driven by hand: acquire without waiting, report or drop
/// a held permit by its index.
pub struct LimiterHarness {
    limiter: crate::flow::limiter::ConcurrencyLimiter,
    held: Vec<crate::flow::limiter::Permit>,
}

/// What a held permit's attempt taught.
#[derive(Clone, Copy, Debug)]
pub enum LimiterOutcome {
    /// Twilio answered, with this `Twilio-Concurrent-Requests`.
    Success(Option<u32>),
    /// Twilio throttled it, with this `Twilio-Concurrent-Requests`.
    Throttled(Option<u32>),
    /// Nothing about the account's load.
    Ignored,
    /// Dropped unreported (a cancelled request).
    Dropped,
}

impl LimiterHarness {
    /// A limiter with this setting and no permit held.
    pub fn new(setting: crate::ConcurrencyLimit) -> Self {
        LimiterHarness {
            limiter: crate::flow::limiter::ConcurrencyLimiter::new(setting),
            held: Vec::new(),
        }
    }

    /// Takes a permit if one is free now; whether it did.
    pub fn try_acquire(&mut self) -> bool {
        match self.limiter.try_acquire() {
            Some(permit) => {
                self.held.push(permit);
                true
            }
            None => false,
        }
    }

    /// Reports the outcome of the held permit `index` (modulo the number held; nothing when
    /// none is held).
    pub fn report(&mut self, index: usize, outcome: LimiterOutcome) {
        if self.held.is_empty() {
            return;
        }
        let permit = self.held.swap_remove(index % self.held.len());
        use crate::retry::classify::Lesson;
        match outcome {
            LimiterOutcome::Success(c) => permit.learn(Lesson::Admitted, c),
            LimiterOutcome::Throttled(c) => permit.learn(Lesson::Throttled, c),
            LimiterOutcome::Ignored => permit.learn(Lesson::Nothing, None),
            LimiterOutcome::Dropped => drop(permit),
        }
    }

    /// Permits held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The limiter's stats.
    pub fn stats(&self) -> crate::FlowStats {
        self.limiter.stats()
    }
}

/// Sets the idempotency key recorded on an error (as the orchestrator records the call's).
pub fn set_idempotency_key(error: &mut Error, key: &str) {
    if let Some(request) = error.request_mut() {
        request.idempotency_key = Some(key.to_owned());
    }
}

/// One step of [`retry_sequence`].
#[derive(Debug)]
pub enum RetryStep {
    /// The state said: wait this long, then attempt again.
    RetryAfter(std::time::Duration),
    /// The state gave up with this error.
    GaveUp(Error),
    /// The attempt succeeded.
    Succeeded,
}

/// Drives one call's retry state (the orchestrator's questions, without the network) through
/// `attempts`: each `Some((error, jitter))` a failed attempt, `None` a success. Stops at the
/// first success or give-up. `budget`: the client's retry budget capacity (`None`: unlimited).
/// Returns the steps and the tokens left in the budget.
pub fn retry_sequence(
    policy: &crate::RetryPolicy,
    budget: Option<usize>,
    attempts: Vec<Option<(Error, f64)>>,
) -> (Vec<RetryStep>, Option<usize>) {
    let budget = match budget {
        Some(capacity) => crate::retry::budget::RetryBudget::new(capacity),
        None => crate::retry::budget::RetryBudget::unlimited(),
    };
    let mut state = crate::retry::state::RetryState::new("Fuzz", policy, &budget);
    let mut steps = Vec::new();
    for attempt in attempts {
        let _timeout = state.start_attempt(std::time::Duration::from_secs(10));
        let Some((error, jitter)) = attempt else {
            state.succeeded();
            steps.push(RetryStep::Succeeded);
            break;
        };
        let kind = state.failed(&error);
        match state.next(error, kind, jitter) {
            crate::retry::state::Next::RetryAfter(wait) => steps.push(RetryStep::RetryAfter(wait)),
            crate::retry::state::Next::GiveUp(error) => {
                steps.push(RetryStep::GaveUp(error));
                break;
            }
        }
    }
    drop(state);
    (steps, budget.available())
}
