//! The receiving protocol, once, without a web framework: [`Receiver`] and its settings
//! ([`WebhookConfig`], [`Deduplication`]).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use time::OffsetDateTime;

use super::redelivery::Deduplication;
use super::redelivery::protocol::{HeldClaim, in_own_task};
use super::rejection::{RefusalCounter, Refusals, Rejection};
use super::verify::{
    Body, CallMessageEvent, CallbackHeaders, SignatureError, SignatureValidator, UrlError,
    form_params, request_url,
};

/// The default cap on a callback's body: a message is at most about 10 KB of JSON.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// How far in the future a `Timestamp` may be under [`WebhookConfig::max_age`] (clock skew).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How to tell Twilio's callbacks from anyone else's: the validator, how to rebuild the URL
/// Twilio requested, a body size cap and an optional replay window. What every front door
/// needs; redeliveries are handled by a [`Deduplication`] beside it.
///
/// `Debug` is safe to log: the validator redacts its secrets.
#[derive(Clone)]
pub struct WebhookConfig {
    validator: SignatureValidator,
    public_base_url: Option<String>,
    trust_forwarded_headers: bool,
    body_limit: usize,
    max_age: Option<Duration>,
    /// The hint about untrusted proxy headers is logged once, not on every forged request.
    hinted: Arc<AtomicBool>,
    /// Shared by every clone: each door and worker built from this configuration counts here.
    refusals: Arc<RefusalCounter>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("validator", &self.validator)
            .field("public_base_url", &self.public_base_url)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field("body_limit", &self.body_limit)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl WebhookConfig {
    /// A configuration that rebuilds the URL from `http://` + the `Host` header (fine for a
    /// service reached directly; behind a proxy or TLS terminator, set
    /// [`public_base_url`](Self::public_base_url) or
    /// [`trust_forwarded_headers`](Self::trust_forwarded_headers)).
    pub fn new(validator: SignatureValidator) -> Self {
        WebhookConfig {
            validator,
            public_base_url: None,
            trust_forwarded_headers: false,
            body_limit: DEFAULT_BODY_LIMIT,
            max_age: None,
            hinted: Arc::new(AtomicBool::new(false)),
            refusals: Arc::default(),
        }
    }

    /// The scheme, host (and port, and path prefix if a proxy strips one) that Twilio calls,
    /// e.g. `https://example.com` or `https://example.com/app`. The request's path and query
    /// are appended to it to rebuild the URL Twilio signed. Takes precedence over
    /// [`trust_forwarded_headers`](Self::trust_forwarded_headers).
    #[must_use]
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.public_base_url = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// Rebuild the URL from the proxy's `Forwarded` (RFC 7239) header, or else its
    /// `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Port` (first values), when no
    /// [`public_base_url`](Self::public_base_url) is set. Off by default: turn it on only behind
    /// a proxy that sets these headers and removes the client's, since anyone can send them.
    /// Headers that do not make a URL are a misconfiguration, answered with 500.
    #[must_use]
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.trust_forwarded_headers = trust;
        self
    }

    /// The largest body accepted, in bytes (default [`DEFAULT_BODY_LIMIT`]); larger ones get 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Refuse (403) events whose signed `Timestamp` is older than `max_age`, or more than
    /// [`MAX_CLOCK_SKEW`] in the future: a captured request verifies forever, so this bounds
    /// how long it can be replayed. Leave room for Twilio's retries and clock skew.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The validator in use.
    pub fn validator(&self) -> &SignatureValidator {
        &self.validator
    }

    /// How many callbacks were answered without the handler, by reason, through every door
    /// and clone of this configuration (refusals are logged only at `debug`).
    pub fn refusals(&self) -> Refusals {
        self.refusals.snapshot()
    }

    /// Counts and logs a refusal, once (see [`Refusals`]).
    pub(crate) fn refused(&self, rejection: Rejection) -> Rejection {
        self.refusals.refused(rejection)
    }

    /// The body limit in bytes, for a front door that reads the body.
    #[cfg(any(feature = "tower", feature = "actix-web"))]
    pub(crate) fn limit(&self) -> usize {
        self.body_limit
    }

    /// [`Rejection::BodyTooLarge`] when `Content-Length` announces more than the limit: refused
    /// before any of the body is read.
    pub(crate) fn refuse_announced(&self, headers: &CallbackHeaders<'_>) -> Result<(), Rejection> {
        let limit = self.body_limit;
        if headers
            .announced_length()
            .is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(Rejection::BodyTooLarge { limit });
        }
        Ok(())
    }

    /// A body read before the protocol saw it (by [`Receiver::receive`]'s caller), bounded:
    /// its announced and its actual length within the limit.
    fn bound<'a>(
        &self,
        headers: &CallbackHeaders<'_>,
        body: &'a [u8],
    ) -> Result<Bounded<'a>, Rejection> {
        self.refuse_announced(headers)?;
        if body.len() > self.body_limit {
            return Err(Rejection::BodyTooLarge {
                limit: self.body_limit,
            });
        }
        Ok(Bounded(body))
    }

    /// The URL Twilio requested, rebuilt from the public base URL, trusted proxy headers or
    /// `http://` + `Host`, and the request's original path and query.
    fn signed_url(&self, request: &Incoming<'_>) -> Result<String, UrlError> {
        match &self.public_base_url {
            Some(base) => Ok(format!("{base}{}", request.path_and_query)),
            None => request_url(
                &request.headers,
                request.authority,
                request.path_and_query,
                self.trust_forwarded_headers,
            ),
        }
    }

    /// Verifies and parses a request whose body is bounded: the URL, the signature, the event
    /// (from the same reading of the body), its age.
    fn verify(&self, request: &Incoming<'_>) -> Result<CallMessageEvent, Rejection> {
        let url = self
            .signed_url(request)
            .map_err(|e| Rejection::UrlUnavailable {
                reason: e.to_string(),
            })?;
        let raw = request.body.0;
        let body = Body::read(request.headers.content_type, raw);
        if let Err(e) = self
            .validator
            .verify_read(&url, &request.headers, &body, raw)
        {
            self.hint_at_proxy_headers(&e, &request.headers);
            return Err(Rejection::Signature(e));
        }
        let event = if matches!(body, Body::Empty) && request.get {
            // A subscription with `Method=GET`: the fields are in the (signed) query string.
            CallMessageEvent::from_body(Body::Form(form_params(request.query().as_bytes())))?
        } else {
            CallMessageEvent::from_body(body)?
        };
        self.check_age(&event, OffsetDateTime::now_utc())?;
        Ok(event)
    }

    /// A failed signature with proxy headers that are not trusted and no base URL is most
    /// likely a proxy in front of the service: say which setting fixes it, once.
    fn hint_at_proxy_headers(&self, error: &SignatureError, headers: &CallbackHeaders<'_>) {
        if *error == SignatureError::SignatureMismatch
            && self.public_base_url.is_none()
            && !self.trust_forwarded_headers
            && headers.has_forwarded()
            && !self.hinted.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "a Twilio signature did not match the URL rebuilt from the Host header, and the \
                 request came through a proxy (Forwarded/X-Forwarded-* headers present); set \
                 WebhookConfig::public_base_url, or WebhookConfig::trust_forwarded_headers(true) \
                 if the proxy sets those headers (logged once)"
            );
        }
    }

    pub(super) fn check_age(
        &self,
        event: &CallMessageEvent,
        now: OffsetDateTime,
    ) -> Result<(), Rejection> {
        let Some(max_age) = self.max_age else {
            return Ok(());
        };
        let age = now - event.timestamp;
        if age > max_age {
            return Err(Rejection::Stale {
                age_secs: age.whole_seconds().max(0).unsigned_abs(),
            });
        }
        if -age > MAX_CLOCK_SKEW {
            return Err(Rejection::FromTheFuture);
        }
        Ok(())
    }
}

/// Receives Twilio's callbacks: the whole protocol between "a request arrived" and "answer
/// Twilio", without a web framework. Built once from a [`WebhookConfig`] and, optionally, a
/// [`Deduplication`]; cheap to clone (shared settings). The front doors (`webhook::tower`,
/// `webhook::axum`, `webhook::actix`) only convert requests and answers for it.
///
/// ```
/// use std::time::Duration;
///
/// use http::StatusCode;
/// use twilio_call_messages::SignatureValidator;
/// use twilio_call_messages::webhook::{CallMessageEvent, Deduplication, Receiver, WebhookConfig};
///
/// # async fn run(request: http::Request<Vec<u8>>) {
/// let receiver = Receiver::new(
///     WebhookConfig::new(SignatureValidator::new("auth-token")).public_base_url("https://example.com"),
/// )
/// .deduplicate(Deduplication::in_memory(Duration::from_secs(600)));
/// let answer = receiver
///     .receive(request, |event: CallMessageEvent| async move {
///         println!("message {} of call {}", event.sequence_number, event.call_sid);
///         StatusCode::OK
///     })
///     .await;
/// # let _ = answer;
/// # }
/// ```
///
/// # The protocol
///
/// 1. **Verify.** The URL Twilio requested is rebuilt ([`WebhookConfig::public_base_url`],
///    trusted proxy headers, or `http://` + `Host`); a body over
///    [`WebhookConfig::body_limit`] is refused (413) before it is read when its length is
///    announced; the signature is checked with every scheme Twilio uses
///    ([`SignatureValidator::verify`]): 403 when it does not verify, 500 when the service is
///    misconfigured (URL cannot be rebuilt, unknown shared key).
/// 2. **Parse.** The event (400 when a correctly signed body is not one), its `Timestamp`
///    against [`WebhookConfig::max_age`] (403), and the content into the handler's type if it
///    asks for one (400, naming the field; nothing is claimed).
/// 3. **Claim or wait** (with a [`Deduplication`]). The message's key is its `Sid` and the path
///    and query it was posted to (the same message posted to two callbacks is handled by
///    each). Done within the window: 200 without the handler. In progress elsewhere: wait (at
///    most [`Deduplication::redelivery_wait`]) for it to be done (200 without the handler) or
///    for its lease to run out (then take it over and run the handler here); 409 when the wait
///    runs out, 503 when the store stays unreachable, both retried by Twilio.
/// 4. **Run the handler in a task of its own.** When Twilio gives up waiting (its read
///    timeout) and the server drops the request, the handler is not cut short after its side
///    effects: it runs to completion and its answer settles the claim, so the retry waits for
///    it rather than handling the message again (a handler that can hang needs its own
///    timeout: a non-2xx answer gives the claim back). Meanwhile the claim is a short lease
///    ([`Deduplication::claim_lease`]) renewed every third of it, so a replica that dies
///    holds it for at most one lease.
/// 5. **Settle from the answer.** 2xx marks the message done for the window; any other
///    answer, a panic or a drop gives the claim back, so that Twilio's retry is handled. A
///    store failing at this point is retried (the answer waits): "done" for a lease plus the
///    redelivery wait, a release for one lease; the handler's answer is never changed.
/// 6. **Answer Twilio** with the handler's answer, or the [`Rejection`]'s status and text.
///
/// A store that is unreachable for longer than the lease lets leases run out in the store while
/// their handlers run. The heartbeat retries every 50-150 ms (at most a sixth of the lease)
/// and takes its claim back once the store answers, unless someone took it over; and a
/// redelivery that met the outage holds off a fifth of the lease once the store answers, so a
/// live holder gets there first. A delivery that claims the message in that first instant (one
/// that did not see the outage, or whose holder is slower than the hold-off) still runs the
/// handler a second time; the holder logs it.
///
/// What remains possible: a replica that dies after the handler's work but before "done" is
/// recorded leaves that work done once and the message handled again on the retry (at least
/// once). And Twilio retries once by default: a message whose every attempt fails (say, a
/// handler that fails, then a retry that lands while the shared store is down for longer than
/// the wait) is not delivered again; add retries with connection overrides in the callback
/// URL's fragment (`https://example.com/hook#rc=3`, up to 5).
#[derive(Clone, Debug)]
pub struct Receiver {
    config: Arc<WebhookConfig>,
    dedup: Option<Arc<Deduplication>>,
}

impl From<WebhookConfig> for Receiver {
    fn from(config: WebhookConfig) -> Self {
        Receiver::new(config)
    }
}

impl Receiver {
    /// A receiver that verifies and parses, without redelivery handling.
    pub fn new(config: WebhookConfig) -> Self {
        Receiver {
            config: Arc::new(config),
            dedup: None,
        }
    }

    /// Handle Twilio's redeliveries (step 3 and the claim of steps 4-5 of the protocol).
    #[must_use]
    pub fn deduplicate(mut self, deduplication: Deduplication) -> Self {
        self.dedup = Some(Arc::new(deduplication));
        self
    }

    /// The verification settings.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// The redelivery settings, if any.
    pub fn deduplication(&self) -> Option<&Deduplication> {
        self.dedup.as_deref()
    }

    /// Runs [the protocol](Self#the-protocol) for one request whose body was read: `handler`
    /// runs at most once, with the verified event (a [`CallMessageEvent`], or what
    /// [`FromEvent`] makes of it, e.g. [`VerifiedContent<T>`]), and its answer is returned;
    /// otherwise the [`Rejection`]'s. The request's URI is the one the client requested (path
    /// and query, before any prefix was stripped).
    pub async fn receive<B, E, F, Fut>(
        &self,
        request: http::Request<B>,
        handler: F,
    ) -> http::Response<String>
    where
        B: AsRef<[u8]>,
        E: FromEvent,
        F: FnOnce(E) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Answer + Send + 'static,
    {
        let (parts, body) = request.into_parts();
        let headers = CallbackHeaders::of(&parts.headers);
        match self.config.bound(&headers, body.as_ref()) {
            Ok(body) => {
                let request = Incoming::new(&parts.method, &parts.uri, headers, body);
                self.run(request, handler).await
            }
            Err(rejection) => self.config.refused(rejection).into_response(),
        }
    }

    /// [`receive`](Self::receive) for a request a front door has read (its body bounded).
    pub(crate) async fn run<E, F, Fut>(
        &self,
        request: Incoming<'_>,
        handler: F,
    ) -> http::Response<String>
    where
        E: FromEvent,
        F: FnOnce(E) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Answer + Send + 'static,
    {
        match admit::<E>(&self.config, self.dedup.as_deref(), &request).await {
            Ok((input, None)) => handler(input).await.into_response(),
            Ok((input, Some(claim))) => {
                let handled = handler(input);
                in_own_task(
                    claim.run(async move { handled.await.into_response() }, |answer| {
                        answer.status().is_success()
                    }),
                )
                .await
            }
            Err(rejection) => rejection.into_response(),
        }
    }
}

/// A request as the protocol reads it, once: whether it is a `GET` (fields in the query), the
/// path and query it was sent to (before any router stripped a prefix: part of the signed URL
/// and of the delivery key), its own authority (HTTP/2), the headers the protocol reads, and
/// its bounded body.
pub(crate) struct Incoming<'a> {
    pub(crate) get: bool,
    pub(crate) path_and_query: &'a str,
    pub(crate) authority: Option<&'a str>,
    pub(crate) headers: CallbackHeaders<'a>,
    pub(crate) body: Bounded<'a>,
}

impl<'a> Incoming<'a> {
    /// An `http` 1 request's parts.
    pub(crate) fn new(
        method: &Method,
        uri: &'a http::Uri,
        headers: CallbackHeaders<'a>,
        body: Bounded<'a>,
    ) -> Self {
        Incoming {
            get: is_get(method.as_str()),
            path_and_query: uri.path_and_query().map_or("/", |pq| pq.as_str()),
            authority: uri.authority().map(|a| a.as_str()),
            headers,
            body,
        }
    }

    /// The query string, without the `?`.
    fn query(&self) -> &'a str {
        self.path_and_query.split_once('?').map_or("", |(_, q)| q)
    }
}

/// Whether a method sends the callback's fields in the query (`GET`, `HEAD`).
pub(crate) fn is_get(method: &str) -> bool {
    method == "GET" || method == "HEAD"
}

/// A body within the limit: made only by [`WebhookConfig::bound`], or by a front door that read
/// at most the limit ([`Bounded::read_within_limit`]).
#[derive(Clone, Copy)]
pub(crate) struct Bounded<'a>(&'a [u8]);

impl<'a> Bounded<'a> {
    /// A body a front door read with the configured limit.
    #[cfg(any(feature = "tower", feature = "actix-web"))]
    pub(crate) fn read_within_limit(body: &'a [u8]) -> Self {
        Bounded(body)
    }
}

/// Steps 1-3 of the protocol for a request read once: the handler's input, and its claim (with
/// deduplication) for steps 4-5. A refusal is counted and logged here, once.
pub(crate) async fn admit<E: FromEvent>(
    config: &WebhookConfig,
    dedup: Option<&Deduplication>,
    request: &Incoming<'_>,
) -> Result<(E, Option<HeldClaim>), Rejection> {
    let admitted = async {
        let event = config.verify(request)?;
        let sid = event.message_sid;
        // Decoded before the message is claimed: nothing to settle for a 400.
        let input = E::from_event(event)?;
        let claim = match dedup {
            Some(dedup) => Some(dedup.admit(sid, request.path_and_query).await?),
            None => None,
        };
        Ok((input, claim))
    };
    admitted
        .await
        .map_err(|rejection| config.refused(rejection))
}

/// What a handler's answer is: its status decides how the claim is settled (2xx: done).
pub trait Answer {
    /// The answer as an `http` response.
    fn into_response(self) -> http::Response<String>;
}

impl Answer for http::Response<String> {
    fn into_response(self) -> http::Response<String> {
        self
    }
}

impl Answer for StatusCode {
    fn into_response(self) -> http::Response<String> {
        (self, String::new()).into_response()
    }
}

impl Answer for (StatusCode, String) {
    fn into_response(self) -> http::Response<String> {
        let mut response = http::Response::new(self.1);
        *response.status_mut() = self.0;
        response
    }
}

impl Answer for (StatusCode, &'static str) {
    fn into_response(self) -> http::Response<String> {
        (self.0, self.1.to_owned()).into_response()
    }
}

impl<T: Answer, E: Answer> Answer for Result<T, E> {
    fn into_response(self) -> http::Response<String> {
        match self {
            Ok(answer) => answer.into_response(),
            Err(answer) => answer.into_response(),
        }
    }
}

/// What a handler takes, made from the verified event before anything is claimed: the event
/// itself, [`VerifiedCallMessage`], or [`VerifiedContent<T>`] (content decoded; 400 when it does
/// not decode).
pub trait FromEvent: Sized + Send + 'static {
    /// Makes the handler's input, or refuses the request.
    fn from_event(event: CallMessageEvent) -> Result<Self, Rejection>;
}

impl FromEvent for CallMessageEvent {
    fn from_event(event: CallMessageEvent) -> Result<Self, Rejection> {
        Ok(event)
    }
}

/// A call message whose signature has been verified: what a handler takes (an extractor with
/// the `axum` and `actix-web` features).
///
/// Refuses the request without running the handler with the [`Rejection`]'s status: 403 when
/// the signature is missing or wrong or the body cannot be covered by it, 500 when the service
/// is misconfigured (URL cannot be rebuilt, shared key not configured), 413 when the body
/// exceeds the limit, 400 when a correctly signed body is not a call message event; and, when
/// enabled, 403 for a stale `Timestamp`, 200 for a message already handled, 409 for one still
/// in progress elsewhere after the wait, 503 when the delivery store is unreachable (see
/// [the protocol](Receiver#the-protocol)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCallMessage(pub CallMessageEvent);

impl FromEvent for VerifiedCallMessage {
    fn from_event(event: CallMessageEvent) -> Result<Self, Rejection> {
        Ok(VerifiedCallMessage(event))
    }
}

/// A verified call message with its content already decoded into your type `T`; refused with
/// 400, naming the path of the field at fault, when the content does not decode (before the
/// message is claimed).
///
/// ```
/// use serde::Deserialize;
/// use twilio_call_messages::webhook::VerifiedContent;
///
/// #[derive(Deserialize)]
/// struct Answer {
///     question: u32,
///     choice: String,
/// }
///
/// async fn on_answer(VerifiedContent { event, content }: VerifiedContent<Answer>) {
///     println!("call {} answered {} with {}", event.call_sid, content.question, content.choice);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedContent<T> {
    /// The event, with the raw JSON text still in `event.content`.
    pub event: CallMessageEvent,
    /// `event.content` decoded.
    pub content: T,
}

#[cfg(any(feature = "tower", feature = "actix-web"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "actix-web"))))]
impl<T: serde::de::DeserializeOwned + Send + 'static> FromEvent for VerifiedContent<T> {
    fn from_event(event: CallMessageEvent) -> Result<Self, Rejection> {
        let content = decode_content(&event.content)?;
        Ok(VerifiedContent { event, content })
    }
}

#[cfg(any(feature = "tower", feature = "actix-web"))]
/// Decodes `content`, naming the path of the field at fault but never its value.
pub(crate) fn decode_content<T: serde::de::DeserializeOwned>(
    content: &str,
) -> Result<T, Rejection> {
    use serde_json::error::Category;
    let rejection = |path: String, e: &serde_json::Error| {
        let reason = match e.classify() {
            Category::Data => "a value does not match the expected type",
            Category::Syntax => "not valid JSON",
            Category::Eof => "the JSON is truncated",
            Category::Io => "the content could not be read",
        };
        // Paths name fields (and map keys) of the content: bounded, as they come from outside.
        let path = path.chars().take(200).collect();
        Rejection::MalformedContent { path, reason }
    };
    let mut deserializer = serde_json::Deserializer::from_str(content);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| rejection(e.path().to_string(), e.inner()))?;
    // Text after the value (serde_json::from_str refuses it too).
    deserializer
        .end()
        .map_err(|e| rejection(".".to_owned(), &e))?;
    Ok(value)
}
