//! axum extractors that verify Twilio's signature and parse the callback before your handler
//! runs (feature `axum`): [`VerifiedCallMessage`] for the event, [`VerifiedContent`] for the
//! event with its content decoded into your own type.
//!
//! The extractors read an [`Arc<WebhookConfig>`] from the router's state through [`FromRef`]:
//! use `Arc<WebhookConfig>` as the state, or implement `FromRef<YourState>` for it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::{Router, routing::post};
//! use twilio_call_messages::SignatureValidator;
//! use twilio_call_messages::webhook::axum::{DeliveryLayer, VerifiedCallMessage, WebhookConfig};
//!
//! async fn on_message(VerifiedCallMessage(event): VerifiedCallMessage) {
//!     println!("message {} of call {}", event.sequence_number, event.call_sid);
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_default();
//! let config = WebhookConfig::new(SignatureValidator::new(token))
//!     // The URL Twilio calls, as seen from outside the proxy in front of this service.
//!     .public_base_url("https://example.com")
//!     // Answer Twilio's redeliveries without running the handler again.
//!     .deduplicate(Duration::from_secs(600));
//! let app = Router::new()
//!     .route("/twilio/messages", post(on_message))
//!     // With `deduplicate`: sees the handler's answer, to mark the message done or give it back.
//!     .layer(DeliveryLayer::new())
//!     .with_state(Arc::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! ## Redeliveries
//!
//! With [`WebhookConfig::deduplicate`], the extractor claims the message (its `Sid` and the
//! route it was posted to) before the handler runs, and the [`DeliveryLayer`] settles the claim
//! from the handler's answer: a 2xx marks the message done for the window; any other answer or
//! a panic gives the claim back, so that Twilio's retry is handled. The handler runs in a task
//! of its own: when Twilio gives up waiting (its read timeout) and hyper drops the request, the
//! handler is not cut short after its side effects; it runs to completion and its answer settles
//! the claim, so the retry waits for it rather than handling the message again (a handler that
//! can hang needs its own timeout inside the layer: a non-2xx answer gives the claim back).
//! Meanwhile the claim is a short lease ([`WebhookConfig::claim_lease`]) renewed by a heartbeat,
//! so a replica that dies mid-way holds it for at most one lease.
//!
//! A store that is unreachable for longer than the lease lets leases run out in the store while
//! their handlers run. The heartbeat retries every 50-150 ms (at most a sixth of the lease) and
//! takes its claim back once the store answers, unless someone took it over; a "done" is retried
//! for a lease plus the redelivery wait; and a redelivery that met the outage holds off a fifth
//! of the lease once the store answers, so a live holder gets there first. A delivery that
//! claims the message in that first instant (one that did not see the outage, or whose holder is
//! slower than the hold-off) still runs the handler a second time; the holder logs it.
//!
//! A redelivery that finds the message in progress elsewhere waits (at most
//! [`WebhookConfig::redelivery_wait`]) for it to be done (200 without the handler) or for the
//! lease to run out (then it takes the claim over and runs the handler here); 409 if the wait
//! runs out, 503 if the store stays unreachable, both retried by Twilio.
//!
//! What remains possible: a replica that dies after the handler's work but before "done" is
//! recorded leaves that work done once and the message handled again on the retry (at least
//! once). And Twilio retries once by default: a message whose every attempt fails (say, a
//! handler that fails, then a retry that lands while the shared store is down for longer than
//! the wait) is not delivered again; add retries with connection overrides in the callback
//! URL's fragment (`https://example.com/hook#rc=3`, up to 5).

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use ::axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use ::axum::http::request::Parts;
use ::axum::http::{Method, StatusCode};
use ::axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::forwarded::{self, UrlError};
use super::{
    CallMessageEvent, Claim, DeliveryStore, EventError, MemoryDeliveryStore, SignatureError,
    SignatureValidator, StoreError,
};
use crate::sid::MessageSid;

/// The default cap on a callback's body: a message is at most about 10 KB of JSON.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// How far in the future a `Timestamp` may be under [`WebhookConfig::max_age`] (clock skew).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The default [`WebhookConfig::claim_lease`]: how long a replica that died mid-way keeps a
/// message's claim. Shorter than [`DEFAULT_REDELIVERY_WAIT`], so that a retry waiting for a dead
/// replica's claim takes it over within its wait.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(5);

/// The default [`WebhookConfig::redelivery_wait`]. Twilio waits 15 s for an answer (`rt`) and
/// allows 15 s for all attempts together (`tt`), by default
/// (<https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides>): 8 s of waiting
/// leaves room for the handler to run after a takeover.
pub const DEFAULT_REDELIVERY_WAIT: Duration = Duration::from_secs(8);

/// What the extractors need: the validator, how to rebuild the URL Twilio requested, a body
/// size cap, and the optional redelivery and replay defences.
///
/// `Debug` is safe to log: the validator redacts its secrets.
#[derive(Clone)]
pub struct WebhookConfig {
    validator: SignatureValidator,
    public_base_url: Option<String>,
    trust_forwarded_headers: bool,
    body_limit: usize,
    deduplicate: Option<(Duration, Arc<dyn DeliveryStore>)>,
    claim_lease: Duration,
    redelivery_wait: Duration,
    max_age: Option<Duration>,
    /// The hint about untrusted proxy headers is logged once, not on every forged request.
    hinted: Arc<AtomicBool>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("validator", &self.validator)
            .field("public_base_url", &self.public_base_url)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field("body_limit", &self.body_limit)
            .field(
                "deduplicate",
                &self.deduplicate.as_ref().map(|(window, _)| window),
            )
            .field("claim_lease", &self.claim_lease)
            .field("redelivery_wait", &self.redelivery_wait)
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
            deduplicate: None,
            claim_lease: DEFAULT_CLAIM_LEASE,
            redelivery_wait: DEFAULT_REDELIVERY_WAIT,
            max_age: None,
            hinted: Arc::new(AtomicBool::new(false)),
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

    /// Answer a message whose handler answered 2xx within the last `window` with 200, without
    /// running the handler again: Twilio redelivers a callback it thinks failed. Remembers
    /// messages in this process ([`MemoryDeliveryStore`], at most 100,000); several instances
    /// behind a load balancer need a shared store: [`deduplicate_with`](Self::deduplicate_with).
    ///
    /// Needs a [`DeliveryLayer`] on the routes (the extractor answers 500 and logs an error
    /// without one); see the [module docs](self#redeliveries) for what happens when.
    #[must_use]
    pub fn deduplicate(self, window: Duration) -> Self {
        self.deduplicate_with(window, Arc::new(MemoryDeliveryStore::default()))
    }

    /// [`deduplicate`](Self::deduplicate) with your own store (e.g. Redis, shared by every
    /// instance). A store that keeps failing for [`redelivery_wait`](Self::redelivery_wait)
    /// makes the extractor answer 503, so Twilio retries.
    #[must_use]
    pub fn deduplicate_with(mut self, window: Duration, store: Arc<dyn DeliveryStore>) -> Self {
        self.deduplicate = Some((window, store));
        self
    }

    /// How long a message's claim outlives a replica that stopped renewing it (default
    /// [`DEFAULT_CLAIM_LEASE`]); renewed every third of it while the handler runs. Keep it
    /// shorter than [`redelivery_wait`](Self::redelivery_wait), or a retry of a message whose
    /// replica died gets 409 instead of taking it over.
    #[must_use]
    pub fn claim_lease(mut self, lease: Duration) -> Self {
        self.claim_lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How long a redelivery waits for a message in progress elsewhere to be done or its lease
    /// to run out, or for an unreachable store to come back (default
    /// [`DEFAULT_REDELIVERY_WAIT`]); then 409 or 503. Keep it well inside Twilio's read timeout
    /// (15 s unless the URL's `#rt=` says otherwise).
    #[must_use]
    pub fn redelivery_wait(mut self, wait: Duration) -> Self {
        self.redelivery_wait = wait;
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

    /// Does nothing: the [`DeliveryLayer`] now gives the claim back whenever the handler does
    /// not answer 2xx (or panics, or is dropped), and a handler that answers 2xx is not
    /// redelivered by Twilio, so there is nothing left to release by hand.
    #[deprecated(note = "answer a non-2xx status instead: the DeliveryLayer releases the claim")]
    pub async fn release(&self, sid: &MessageSid) -> Result<(), StoreError> {
        let _ = sid;
        Ok(())
    }

    /// The URL Twilio requested, rebuilt from the public base URL, trusted proxy headers or
    /// `http://` + `Host`, and the request's original path and query (axum's [`OriginalUri`],
    /// so nesting is harmless).
    fn signed_url(&self, parts: &Parts) -> Result<String, UrlError> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        match &self.public_base_url {
            Some(base) => Ok(format!("{base}{path_and_query}")),
            None => forwarded::request_url(
                &parts.headers,
                uri.authority().map(|a| a.as_str()),
                path_and_query,
                self.trust_forwarded_headers,
            ),
        }
    }

    /// Reads, verifies and parses a request: everything but the redelivery check.
    async fn verified_event(&self, req: Request) -> Result<CallMessageEvent, WebhookRejection> {
        let (parts, body) = req.into_parts();
        let url = self
            .signed_url(&parts)
            .map_err(|e| WebhookRejection::UrlUnavailable {
                reason: e.to_string(),
            })?;

        // Refuse an announced oversized body before reading any of it.
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let limit = self.body_limit;
        if announced.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(WebhookRejection::BodyTooLarge { limit });
        }
        let body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(WebhookRejection::BodyTooLarge { limit });
            }
            Err(_) => return Err(WebhookRejection::UnreadableBody),
        };

        if let Err(e) = self.validator.verify(&url, &parts.headers, &body) {
            self.hint_at_proxy_headers(&e, &parts);
            return Err(WebhookRejection::Signature(e));
        }

        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let event = if body.is_empty() && matches!(parts.method, Method::GET | Method::HEAD) {
            // A subscription with `Method=GET`: the fields are in the (signed) query string.
            let query = parts.uri.query().unwrap_or("");
            CallMessageEvent::from_form(query.as_bytes())?
        } else {
            CallMessageEvent::parse(content_type, &body)?
        };
        self.check_age(&event, OffsetDateTime::now_utc())?;
        Ok(event)
    }

    /// A failed signature with proxy headers that are not trusted and no base URL is most
    /// likely a proxy in front of the service: say which setting fixes it, once.
    fn hint_at_proxy_headers(&self, error: &SignatureError, parts: &Parts) {
        if *error == SignatureError::SignatureMismatch
            && self.public_base_url.is_none()
            && !self.trust_forwarded_headers
            && forwarded::has_forwarded_headers(&parts.headers)
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

    fn check_age(
        &self,
        event: &CallMessageEvent,
        now: OffsetDateTime,
    ) -> Result<(), WebhookRejection> {
        let Some(max_age) = self.max_age else {
            return Ok(());
        };
        let age = now - event.timestamp;
        if age > max_age {
            return Err(WebhookRejection::Stale {
                age_secs: age.whole_seconds().max(0).unsigned_abs(),
            });
        }
        if -age > MAX_CLOCK_SKEW {
            return Err(WebhookRejection::FromTheFuture);
        }
        Ok(())
    }

    /// With deduplication, claims the event for this request and hands the claim to the
    /// [`DeliveryLayer`]: a message done already becomes a 200 rejection; one in progress
    /// elsewhere is waited for (module docs).
    async fn admit(
        &self,
        event: &CallMessageEvent,
        delivery: Delivery,
    ) -> Result<(), WebhookRejection> {
        let Some((window, store)) = &self.deduplicate else {
            return Ok(());
        };
        let Some(slot) = delivery.slot else {
            // Without the layer no one would ever settle the claim: refuse before taking it.
            return Err(WebhookRejection::MissingDeliveryLayer);
        };
        let key = delivery_key(&event.message_sid, &delivery.route);
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let deadline = Instant::now() + self.redelivery_wait;
        let mut logged_store_error = false;
        // Whether the store has failed since this request's last successful call to it.
        let mut outage = false;
        loop {
            if outage {
                // The store was unreachable: a lease may have run out in the store meanwhile
                // while its holder lives on (its heartbeat could not renew it). Once the store
                // answers again, hold off a fifth of the lease before claiming, so that a holder
                // still alive takes its claim back or marks the message done first (its
                // heartbeat and settling retry every 50-150 ms, at most a sixth of the lease,
                // while the store is down). `renew`
                // with this request's own token changes nothing unless a claim of ours whose
                // reply was lost is there, which the `claim` below then takes up.
                match store.renew(&key, &holder, self.claim_lease).await {
                    Ok(_) => {
                        outage = false;
                        let now = Instant::now();
                        tokio::time::sleep(
                            (self.claim_lease / 5).min(deadline.saturating_duration_since(now)),
                        )
                        .await;
                    }
                    Err(e) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(WebhookRejection::Store(e));
                        }
                        let pause = Duration::from_millis(fastrand::u64(50..150));
                        tokio::time::sleep(pause.min(deadline - now)).await;
                        continue;
                    }
                }
            }
            let last = match store.claim(&key, &holder, self.claim_lease).await {
                Ok(Claim::Acquired) => {
                    slot.hold(HeldClaim {
                        claim: Some(ClaimRef {
                            store: store.clone(),
                            key,
                            holder,
                        }),
                        lease: self.claim_lease,
                        window: *window,
                        patience: self.redelivery_wait,
                    });
                    return Ok(());
                }
                Ok(Claim::Done) => {
                    return Err(WebhookRejection::Duplicate {
                        sid: event.message_sid,
                    });
                }
                Ok(Claim::InProgress) => WebhookRejection::InProgress {
                    sid: event.message_sid,
                },
                Err(e) => {
                    // A claim is idempotent for its holder, so retrying after an error whose
                    // command may have been applied is safe.
                    if !logged_store_error {
                        tracing::warn!(error = %e, "delivery store failed; retrying within the redelivery wait");
                        logged_store_error = true;
                    }
                    outage = true;
                    WebhookRejection::Store(e)
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(last);
            }
            // 50-150 ms: a dead holder's lease is taken over soon after it runs out, and
            // waiting replicas do not poll the store in step.
            let pause = Duration::from_millis(fastrand::u64(50..150));
            tokio::time::sleep(pause.min(deadline - now)).await;
        }
    }
}

/// What the extractor needs from the request besides the event: the route (part of the key,
/// so the same message posted to two callback URLs is handled by each) and the layer's slot.
struct Delivery {
    route: String,
    slot: Option<DeliverySlot>,
}

impl Delivery {
    fn of(req: &Request) -> Delivery {
        let uri = req
            .extensions()
            .get::<OriginalUri>()
            .map_or(req.uri(), |original| &original.0);
        Delivery {
            route: uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned(),
            slot: req.extensions().get::<DeliverySlot>().cloned(),
        }
    }
}

/// `<Sid>:<first 16 hex digits of SHA-256(path and query)>`: bounded, whatever the URL's length.
fn delivery_key(sid: &MessageSid, route: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(route.as_bytes());
    let mut key = format!("{sid}:");
    for byte in &digest[..8] {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// Settles the delivery claims taken by [`VerifiedCallMessage`] and [`VerifiedContent`] from the
/// handler's answer (tower [`Layer`](tower_layer::Layer)); needed with
/// [`WebhookConfig::deduplicate`], harmless without.
///
/// While the handler runs it renews the claim every third of
/// [`WebhookConfig::claim_lease`]. When the handler answers, a 2xx marks the message done for
/// the dedup window, anything else gives the claim back; a panic gives it back too (in a
/// spawned task, or when the lease runs out). The handler, heartbeat and settling run in a task
/// of their own, so a request dropped by the client (Twilio's read timeout) does not cut the
/// handler short: it runs to completion and settles the claim. A store that fails at this point
/// is retried (the answer waits): "done" for up to a lease plus the redelivery wait, a release
/// for one lease (then the claim ends with its lease); the handler's answer is never changed.
/// While the store is unreachable the heartbeat retries every 50-150 ms (at most a sixth of the
/// lease) and takes the claim back if its lease ran out meanwhile and nobody took it over.
///
/// Put it on the routes that use the extractors, before the state:
/// `Router::new().route(..).layer(DeliveryLayer::new()).with_state(..)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeliveryLayer {
    _private: (),
}

impl DeliveryLayer {
    /// The layer.
    pub fn new() -> Self {
        DeliveryLayer::default()
    }
}

impl<S> tower_layer::Layer<S> for DeliveryLayer {
    type Service = DeliveryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeliveryService { inner }
    }
}

/// The service made by [`DeliveryLayer`].
#[derive(Clone, Debug)]
pub struct DeliveryService<S> {
    inner: S,
}

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for DeliveryService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let slot = DeliverySlot::default();
        req.extensions_mut().insert(slot.clone());
        let handled = self.inner.call(req);
        let settled = async move {
            let answer = {
                let handled = pin!(handled);
                let heartbeat = pin!(slot.clone().heartbeat());
                match futures_util::future::select(handled, heartbeat).await {
                    futures_util::future::Either::Left((answer, _)) => answer,
                    futures_util::future::Either::Right((never, _)) => match never {},
                }
            };
            if let Some(claim) = slot.take() {
                let success = answer
                    .as_ref()
                    .is_ok_and(|response| response.status().is_success());
                claim.settle(success).await;
            }
            answer
        };
        Box::pin(async move {
            // In a task of its own, so that a client that stops waiting (Twilio's read timeout;
            // hyper then drops this future) does not cut the handler short after its side
            // effects but before its answer: it runs to completion and its answer settles the
            // claim, so Twilio's retry finds the message done instead of handling it again.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return settled.await;
            };
            // In the caller's span, so that the handler's logs keep their request context.
            match runtime
                .spawn(tracing::Instrument::in_current_span(settled))
                .await
            {
                Ok(answer) => answer,
                // The claim was given back as the task unwound; panic here as the handler did.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: the runtime is shutting down, this future will not be polled again.
                Err(_) => std::future::pending().await,
            }
        })
    }
}

/// Where the extractor leaves its claim for the layer (a request extension).
#[derive(Clone, Default)]
struct DeliverySlot(Arc<SlotInner>);

#[derive(Default)]
struct SlotInner {
    claim: Mutex<Option<HeldClaim>>,
    claimed: tokio::sync::Notify,
}

impl DeliverySlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HeldClaim>> {
        self.0
            .claim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hold(&self, claim: HeldClaim) {
        *self.lock() = Some(claim);
        // A stored permit if the heartbeat is not waiting yet.
        self.0.claimed.notify_one();
    }

    fn take(&self) -> Option<HeldClaim> {
        self.lock().take()
    }

    /// Renews the claim every third of its lease once there is one; never ends (the layer
    /// drops it when the handler answers).
    async fn heartbeat(self) -> std::convert::Infallible {
        self.0.claimed.notified().await;
        let mut pause = None;
        loop {
            let held = self.lock().as_ref().and_then(|held| {
                let claim = held.claim.as_ref()?;
                Some((
                    claim.store.clone(),
                    claim.key.clone(),
                    claim.holder.clone(),
                    held.lease,
                ))
            });
            let Some((store, key, holder, lease)) = held else {
                // Taken by the layer; it stops polling this future right after.
                std::future::pending::<()>().await;
                continue;
            };
            tokio::time::sleep(pause.unwrap_or(lease / 3)).await;
            pause = match store.renew(&key, &holder, lease).await {
                Ok(true) => None,
                // The lease ran out in the store (it was unreachable for longer than the lease):
                // take the claim again unless someone else has.
                Ok(false) => match store.claim(&key, &holder, lease).await {
                    Ok(Claim::Acquired) => {
                        tracing::warn!(
                            key,
                            "the lease of a Twilio callback still being handled ran out (the                              delivery store was unreachable for longer than it); claimed it again"
                        );
                        None
                    }
                    Ok(Claim::InProgress | Claim::Done) => {
                        tracing::warn!(
                            key,
                            "the claim of a Twilio callback still being handled was lost (its                              lease ran out, e.g. while the store was unreachable) and taken over;                              another replica may handle it too"
                        );
                        // Nothing left to renew.
                        std::future::pending::<()>().await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(key, error = %e, "could not renew a delivery claim");
                        Some(quick_retry(lease))
                    }
                },
                // Retried soon: the lease must not run out for want of a renewal once the store
                // is back.
                Err(e) => {
                    tracing::warn!(key, error = %e, "could not renew a delivery claim");
                    Some(quick_retry(lease))
                }
            };
        }
    }
}

/// The pause before retrying a store call that failed: 50-150 ms, at most a sixth of the lease
/// (shorter than the fifth a redelivery holds off after an outage).
fn quick_retry(lease: Duration) -> Duration {
    Duration::from_millis(fastrand::u64(50..150)).min(lease / 6)
}

/// A claim held by one request; given back when dropped unsettled.
struct HeldClaim {
    /// `None` once settled.
    claim: Option<ClaimRef>,
    lease: Duration,
    window: Duration,
    /// [`WebhookConfig::redelivery_wait`]: how much longer than a lease a "done" is retried.
    patience: Duration,
}

struct ClaimRef {
    store: Arc<dyn DeliveryStore>,
    key: String,
    holder: String,
}

impl HeldClaim {
    /// Marks the message done (the handler answered 2xx) or gives the claim back, retrying a
    /// failing store for at most one lease (after which the claim has ended anyway): a "done"
    /// that is not recorded lets a redelivery waiting on the claim run the handler again once
    /// the lease runs out, e.g. when Redis restarts while the handler runs.
    async fn settle(mut self, success: bool) {
        let Some(ClaimRef { store, key, holder }) = self.claim.take() else {
            return;
        };
        // A "done" is worth waiting for: without it a redelivery may run the handler again.
        // Retried for a lease plus the redelivery wait (a store outage that long is waited
        // out; `complete` marks the message done even if the lease ran out meanwhile, unless
        // someone else took the claim over). Giving the claim back is retried for one lease,
        // after which the claim has ended anyway.
        let budget = if success {
            self.lease + self.patience
        } else {
            self.lease
        };
        let deadline = Instant::now() + budget;
        let mut logged = false;
        loop {
            let attempt = if success {
                store.complete(&key, &holder, self.window).await
            } else {
                store.release(&key, &holder).await
            };
            let e = match attempt {
                Ok(true) => return,
                Ok(false) if success => {
                    return tracing::warn!(
                        key,
                        "a Twilio callback was handled after its claim had been taken over; the \
                         other replica may handle it too"
                    );
                }
                // Released already (the lease ran out): nothing to give back.
                Ok(false) => return,
                Err(e) => e,
            };
            let now = Instant::now();
            if now >= deadline {
                return if success {
                    tracing::error!(
                        key,
                        error = %e,
                        "could not mark a handled Twilio callback done; answered 2xx anyway \
                         (Twilio will not redeliver it), the claim ends with its lease"
                    )
                } else {
                    tracing::warn!(
                        key,
                        error = %e,
                        "could not give back a delivery claim; it ends with its lease"
                    )
                };
            }
            if !logged {
                tracing::warn!(key, error = %e, "delivery store failed while settling a claim; retrying");
                logged = true;
            }
            tokio::time::sleep(quick_retry(self.lease).min(deadline - now)).await;
        }
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        let Some(ClaimRef { store, key, holder }) = self.claim.take() else {
            return;
        };
        tracing::warn!(
            key,
            "a Twilio callback's handler panicked or was dropped before answering; giving its \
             claim back"
        );
        // Without a runtime (shutting down) the lease runs out on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release(&*store, &key, &holder).await });
        }
    }
}

async fn release(store: &dyn DeliveryStore, key: &str, holder: &str) {
    match store.release(key, holder).await {
        Ok(_) => {}
        Err(e) => tracing::warn!(
            key,
            error = %e,
            "could not give back a delivery claim; it ends with its lease"
        ),
    }
}

/// A call message whose signature has been verified; use it as a handler's last argument.
///
/// Rejects the request without running the handler (see [`WebhookRejection::status`]): 403
/// when the signature is missing or wrong or the body cannot be covered by it, 500 when the
/// service is misconfigured (URL cannot be rebuilt, shared key not configured), 413 when the
/// body exceeds the limit, 400 when a correctly signed body is not a call message event; and,
/// when enabled, 403 for a stale `Timestamp`, 200 for a message already handled, 409 for one
/// still in progress elsewhere after the wait, 503 when the delivery store is unreachable
/// (see the [module docs](self#redeliveries)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCallMessage(pub CallMessageEvent);

/// A verified call message with its content already decoded into your type `T`; answers 400,
/// naming the path of the field at fault, when the content does not decode.
///
/// ```no_run
/// use serde::Deserialize;
/// use twilio_call_messages::webhook::axum::VerifiedContent;
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

/// Why an extractor refused a request. Its response is the status and a short text that never
/// contains a secret or the message content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
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
    /// The event's `Timestamp` is older than [`WebhookConfig::max_age`] (403).
    #[error("the event is {age_secs} s old, older than the configured maximum age")]
    Stale {
        /// Its age, in seconds.
        age_secs: u64,
    },
    /// The event's `Timestamp` is more than [`MAX_CLOCK_SKEW`] in the future (403).
    #[error("the event's timestamp is in the future")]
    FromTheFuture,
    /// The message was already handled ([`WebhookConfig::deduplicate`]): answered 200 so
    /// that Twilio stops redelivering, without running the handler.
    #[error("message {sid} was already accepted")]
    Duplicate {
        /// The message's `Sid`.
        sid: MessageSid,
    },
    /// The message is still being handled by another request (here or on another replica)
    /// after [`WebhookConfig::redelivery_wait`] (409, so that Twilio retries).
    #[error("message {sid} is still being handled by another request")]
    InProgress {
        /// The message's `Sid`.
        sid: MessageSid,
    },
    /// The delivery store failed, for all of [`WebhookConfig::redelivery_wait`] (503, so that
    /// Twilio retries).
    #[error(transparent)]
    Store(StoreError),
    /// [`WebhookConfig::deduplicate`] is on but the route has no [`DeliveryLayer`], so no one
    /// would settle the claim (500: a misconfiguration; nothing was claimed).
    #[error(
        "deduplication needs the DeliveryLayer on this route: \
         Router::new().route(..).layer(DeliveryLayer::new()).with_state(..)"
    )]
    MissingDeliveryLayer,
}

impl WebhookRejection {
    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookRejection::Signature(e) if e.is_misconfiguration() => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            WebhookRejection::Signature(_)
            | WebhookRejection::Stale { .. }
            | WebhookRejection::FromTheFuture => StatusCode::FORBIDDEN,
            WebhookRejection::UrlUnavailable { .. } | WebhookRejection::MissingDeliveryLayer => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            WebhookRejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookRejection::UnreadableBody
            | WebhookRejection::MalformedEvent(_)
            | WebhookRejection::MalformedContent { .. } => StatusCode::BAD_REQUEST,
            WebhookRejection::Duplicate { .. } => StatusCode::OK,
            WebhookRejection::InProgress { .. } => StatusCode::CONFLICT,
            WebhookRejection::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        // The text names the problem, never a secret or the message content.
        if status == StatusCode::OK {
            tracing::info!(reason = %self, "answered a redelivered Twilio callback");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), reason = %self, "cannot accept a Twilio callback");
        } else {
            tracing::warn!(status = status.as_u16(), reason = %self, "rejected a Twilio callback");
        }
        (status, self.to_string()).into_response()
    }
}

impl From<SignatureError> for WebhookRejection {
    fn from(e: SignatureError) -> Self {
        WebhookRejection::Signature(e)
    }
}

impl<S> FromRequest<S> for VerifiedCallMessage
where
    S: Send + Sync,
    Arc<WebhookConfig>: FromRef<S>,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = Arc::<WebhookConfig>::from_ref(state);
        let delivery = Delivery::of(&req);
        let event = config.verified_event(req).await?;
        config.admit(&event, delivery).await?;
        Ok(VerifiedCallMessage(event))
    }
}

impl<S, T> FromRequest<S> for VerifiedContent<T>
where
    S: Send + Sync,
    Arc<WebhookConfig>: FromRef<S>,
    T: DeserializeOwned + Send,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = Arc::<WebhookConfig>::from_ref(state);
        let delivery = Delivery::of(&req);
        let event = config.verified_event(req).await?;
        // Decoded before the message is claimed: nothing to settle for a 400.
        let content = decode_content(&event.content)?;
        config.admit(&event, delivery).await?;
        Ok(VerifiedContent { event, content })
    }
}

fn decode_content<T: DeserializeOwned>(content: &str) -> Result<T, WebhookRejection> {
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
        WebhookRejection::MalformedContent { path, reason }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(timestamp: &str) -> CallMessageEvent {
        let body = format!(
            r#"{{"ContentType":"application/json","Content":"{{}}","SequenceNumber":"1","CallSid":"CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","AccountSid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","Timestamp":"{timestamp}"}}"#
        );
        CallMessageEvent::from_json(body.as_bytes()).unwrap()
    }

    #[test]
    fn max_age_bounds_both_sides() {
        let config =
            WebhookConfig::new(SignatureValidator::new("t")).max_age(Duration::from_secs(300));
        let e = event("Wed, 18 Dec 2019 20:02:01 +0000");
        let at = |s: i64| e.timestamp + time::Duration::seconds(s);
        assert!(config.check_age(&e, at(0)).is_ok());
        assert!(config.check_age(&e, at(300)).is_ok());
        assert!(matches!(
            config.check_age(&e, at(301)),
            Err(WebhookRejection::Stale { age_secs: 301 })
        ));
        assert!(config.check_age(&e, at(-60)).is_ok());
        assert!(matches!(
            config.check_age(&e, at(-61)),
            Err(WebhookRejection::FromTheFuture)
        ));
        let off = WebhookConfig::new(SignatureValidator::new("t"));
        assert!(off.check_age(&e, at(1_000_000)).is_ok());
    }

    #[test]
    fn content_errors_name_the_path_not_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            choice: u32,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            answers: Vec<Inner>,
        }
        let err = decode_content::<Outer>(r#"{"answers":[{"choice":1},{"choice":"secret text"}]}"#)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("answers[1].choice"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let trailing = decode_content::<Inner>(r#"{"choice":1} x"#).unwrap_err();
        assert!(matches!(
            trailing,
            WebhookRejection::MalformedContent {
                reason: "not valid JSON",
                ..
            }
        ));
    }
}
