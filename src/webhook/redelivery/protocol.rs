//! The claim protocol: admit a delivery (claim it, or wait for a claim held elsewhere), keep
//! the claim alive while the handler runs (a heartbeat), settle it from the handler's answer,
//! give it back if the handler panics or is dropped. The [`Receiver`](crate::webhook::Receiver) runs it;
//! the front doors only carry its pieces between their extractor and their middleware.
//!
//! Every wait reads tokio's clock, so the protocol runs under a paused clock in tests.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::memory::MemoryDeliveryStore;
use super::store::{Claim, DeliveryStore};
use crate::sid::MessageSid;
use crate::webhook::rejection::Rejection;

/// The default [`Deduplication::claim_lease`]: how long a replica that died mid-way keeps a
/// message's claim. Shorter than [`DEFAULT_REDELIVERY_WAIT`], so that a retry waiting for a dead
/// replica's claim takes it over within its wait.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(5);

/// The default [`Deduplication::redelivery_wait`]. Twilio waits 15 s for an answer (`rt`) and
/// allows 15 s for all attempts together (`tt`), by default
/// (<https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides>): 8 s of waiting
/// leaves room for the handler to run after a takeover.
pub const DEFAULT_REDELIVERY_WAIT: Duration = Duration::from_secs(8);

/// Redelivery handling: where claims are kept and for how long. Given to the
/// [`Receiver`](crate::webhook::Receiver), or to a front door's middleware (axum's `DeliveryLayer`,
/// actix-web's `Deliveries`), which then holds it: deduplication is on exactly where that
/// middleware is, so it cannot be configured and left unwired.
///
/// What happens when is the [`Receiver`'s protocol](crate::webhook::Receiver#the-protocol).
#[derive(Clone)]
pub struct Deduplication {
    store: Arc<dyn DeliveryStore>,
    window: Duration,
    lease: Duration,
    wait: Duration,
}

impl fmt::Debug for Deduplication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deduplication")
            .field("window", &self.window)
            .field("claim_lease", &self.lease)
            .field("redelivery_wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Deduplication {
    /// Answer a message whose handler answered 2xx within the last `window` with 200, without
    /// running the handler again. Remembers messages in this process ([`MemoryDeliveryStore`],
    /// at most 100,000); several instances behind a load balancer need a shared store:
    /// [`with_store`](Self::with_store).
    pub fn in_memory(window: Duration) -> Self {
        Self::with_store(window, Arc::new(MemoryDeliveryStore::default()))
    }

    /// [`in_memory`](Self::in_memory) with your own store (e.g. Redis, shared by every
    /// instance). A store that keeps failing for [`redelivery_wait`](Self::redelivery_wait)
    /// makes the answer 503, so Twilio retries.
    pub fn with_store(window: Duration, store: Arc<dyn DeliveryStore>) -> Self {
        Deduplication {
            store,
            window,
            lease: DEFAULT_CLAIM_LEASE,
            wait: DEFAULT_REDELIVERY_WAIT,
        }
    }

    /// How long a message's claim outlives a replica that stopped renewing it (default
    /// [`DEFAULT_CLAIM_LEASE`], at least 30 ms); renewed every third of it while the handler
    /// runs. Keep it shorter than [`redelivery_wait`](Self::redelivery_wait), or a retry of a
    /// message whose replica died gets 409 instead of taking it over.
    #[must_use]
    pub fn claim_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How long a redelivery waits for a message in progress elsewhere to be done or its lease
    /// to run out, or for an unreachable store to come back (default
    /// [`DEFAULT_REDELIVERY_WAIT`]); then 409 or 503. Keep it well inside Twilio's read timeout
    /// (15 s unless the URL's `#rt=` says otherwise).
    #[must_use]
    pub fn redelivery_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Claims the delivery of `sid` posted to `route` (its path and query) for this request: a
    /// message done already is [`Rejection::Duplicate`]; one in progress elsewhere is waited
    /// for (see the protocol).
    pub(crate) async fn admit(&self, sid: MessageSid, route: &str) -> Result<HeldClaim, Rejection> {
        let store = &self.store;
        let key = delivery_key(&sid, route);
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let deadline = Instant::now() + self.wait;
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
                // while the store is down). `renew` with this request's own token changes
                // nothing unless a claim of ours whose reply was lost is there, which the
                // `claim` below then takes up.
                match store.renew(&key, &holder, self.lease).await {
                    Ok(_) => {
                        outage = false;
                        let now = Instant::now();
                        tokio::time::sleep(
                            (self.lease / 5).min(deadline.saturating_duration_since(now)),
                        )
                        .await;
                    }
                    Err(e) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(Rejection::Store(e));
                        }
                        tokio::time::sleep(poll_pause().min(deadline - now)).await;
                        continue;
                    }
                }
            }
            let last = match store.claim(&key, &holder, self.lease).await {
                Ok(Claim::Acquired) => {
                    return Ok(HeldClaim {
                        claim: Some(ClaimRef {
                            store: store.clone(),
                            key,
                            holder,
                        }),
                        lease: self.lease,
                        window: self.window,
                        patience: self.wait,
                    });
                }
                Ok(Claim::Done) => return Err(Rejection::Duplicate { sid }),
                Ok(Claim::InProgress) => Rejection::InProgress { sid },
                Err(e) => {
                    // A claim is idempotent for its holder, so retrying after an error whose
                    // command may have been applied is safe.
                    if !logged_store_error {
                        tracing::warn!(error = %e, "delivery store failed; retrying within the redelivery wait");
                        logged_store_error = true;
                    }
                    outage = true;
                    Rejection::Store(e)
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(last);
            }
            tokio::time::sleep(poll_pause().min(deadline - now)).await;
        }
    }
}

/// 50-150 ms: a dead holder's lease is taken over soon after it runs out, and waiting replicas
/// do not poll the store in step.
fn poll_pause() -> Duration {
    Duration::from_millis(fastrand::u64(50..150))
}

/// `<Sid>:<first 16 hex digits of SHA-256(path and query)>`: bounded, whatever the URL's length.
pub(crate) fn delivery_key(sid: &MessageSid, route: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(route.as_bytes());
    let mut key = format!("{sid}:");
    for byte in &digest[..8] {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

impl HeldClaim {
    /// Runs `handled` (the handler, or the part of a framework's stack that runs it) while
    /// renewing this claim, then settles it from the answer: `success` says whether the
    /// answer was 2xx.
    pub(crate) async fn run<T>(
        self,
        handled: impl Future<Output = T>,
        success: impl FnOnce(&T) -> bool,
    ) -> T {
        let answer = first(handled, renew_forever(self.renewal())).await;
        self.settle(success(&answer)).await;
        answer
    }

    /// What the heartbeat renews, while the claim is unsettled.
    fn renewal(&self) -> Option<Renewal> {
        let claim = self.claim.as_ref()?;
        Some(Renewal {
            store: claim.store.clone(),
            key: claim.key.clone(),
            holder: claim.holder.clone(),
            lease: self.lease,
        })
    }
}

/// Where a request's claim is kept between the admission (an extractor, in a front door) and
/// the settling (its middleware): shared by both, e.g. as a request extension. Only the doors
/// that split the two need it; [`Receiver`](crate::webhook::Receiver) holds its claim itself.
#[cfg(any(feature = "axum", feature = "actix-web"))]
#[derive(Clone, Default)]
pub(crate) struct Slot(Arc<SlotInner>);

#[cfg(any(feature = "axum", feature = "actix-web"))]
#[derive(Default)]
struct SlotInner {
    claim: std::sync::Mutex<Option<HeldClaim>>,
    claimed: tokio::sync::Notify,
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HeldClaim>> {
        self.0
            .claim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn hold(&self, claim: HeldClaim) {
        *self.lock() = Some(claim);
        // A stored permit if the middleware is not waiting yet.
        self.0.claimed.notify_one();
    }

    /// Runs `handled` (the rest of the framework's stack, whose extractor may put a claim in
    /// this slot), renewing the claim once there is one, then settles it from the answer:
    /// `success` says whether the answer was 2xx.
    pub(crate) async fn run<T>(
        self,
        handled: impl Future<Output = T>,
        success: impl FnOnce(&T) -> bool,
    ) -> T {
        let renewal = async {
            self.0.claimed.notified().await;
            let renewal = self.lock().as_ref().and_then(HeldClaim::renewal);
            renew_forever(renewal).await
        };
        let answer = first(handled, renewal).await;
        let claim = self.lock().take();
        if let Some(claim) = claim {
            claim.settle(success(&answer)).await;
        }
        answer
    }
}

/// The answer of `handled`; `never` runs beside it until then.
async fn first<T>(
    handled: impl Future<Output = T>,
    never: impl Future<Output = std::convert::Infallible>,
) -> T {
    let handled = pin!(handled);
    let never = pin!(never);
    match futures_util::future::select(handled, never).await {
        futures_util::future::Either::Left((answer, _)) => answer,
        futures_util::future::Either::Right((never, _)) => match never {},
    }
}

/// What a heartbeat renews.
struct Renewal {
    store: Arc<dyn DeliveryStore>,
    key: String,
    holder: String,
    lease: Duration,
}

/// Renews the claim every third of its lease; never ends (the caller drops it when the handler
/// answers). Nothing to renew: waits forever.
async fn renew_forever(renewal: Option<Renewal>) -> std::convert::Infallible {
    let Some(Renewal {
        store,
        key,
        holder,
        lease,
    }) = renewal
    else {
        return std::future::pending().await;
    };
    let mut pause = None;
    loop {
        tokio::time::sleep(pause.unwrap_or(lease / 3)).await;
        pause = match store.renew(&key, &holder, lease).await {
            Ok(true) => None,
            // The lease ran out in the store (it was unreachable for longer than the lease):
            // take the claim again unless someone else has.
            Ok(false) => match store.claim(&key, &holder, lease).await {
                Ok(Claim::Acquired) => {
                    tracing::warn!(
                        key,
                        "the lease of a Twilio callback still being handled ran out (the \
                         delivery store was unreachable for longer than it); claimed it again"
                    );
                    None
                }
                Ok(Claim::InProgress | Claim::Done) => {
                    tracing::warn!(
                        key,
                        "the claim of a Twilio callback still being handled was lost (its \
                         lease ran out, e.g. while the store was unreachable) and taken over; \
                         another replica may handle it too"
                    );
                    // Nothing left to renew.
                    return std::future::pending().await;
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

/// Runs `work` in a task of its own, so that a client that stops waiting (Twilio's read
/// timeout; the server then drops this future) does not cut the handler short after its side
/// effects but before its answer: it runs to completion and its answer settles the claim.
/// In the caller's span; a panic in `work` is resumed here.
pub(crate) async fn in_own_task<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> T {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return work.await;
    };
    joined(
        runtime
            .spawn(tracing::Instrument::in_current_span(work))
            .await,
    )
    .await
}

/// [`in_own_task`] for a future that must stay on this thread (actix-web's handlers), spawned
/// on the current `LocalSet`.
#[cfg(feature = "actix-web")]
pub(crate) async fn in_own_local_task<T: 'static>(work: impl Future<Output = T> + 'static) -> T {
    joined(tokio::task::spawn_local(tracing::Instrument::in_current_span(work)).await).await
}

async fn joined<T>(joined: Result<T, tokio::task::JoinError>) -> T {
    match joined {
        Ok(answer) => answer,
        // The claim was given back as the task unwound; panic here as the handler did.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down, this future will not be polled again.
        Err(_) => std::future::pending().await,
    }
}

/// The pause before retrying a store call that failed: 50-150 ms, at most a sixth of the lease
/// (shorter than the fifth a redelivery holds off after an outage).
fn quick_retry(lease: Duration) -> Duration {
    Duration::from_millis(fastrand::u64(50..150)).min(lease / 6)
}

/// A claim held by one request; given back when dropped unsettled.
pub(crate) struct HeldClaim {
    /// `None` once settled.
    claim: Option<ClaimRef>,
    lease: Duration,
    window: Duration,
    /// [`Deduplication::redelivery_wait`]: how much longer than a lease a "done" is retried.
    patience: Duration,
}

struct ClaimRef {
    store: Arc<dyn DeliveryStore>,
    key: String,
    holder: String,
}

impl HeldClaim {
    /// Marks the message done (the handler answered 2xx) or gives the claim back, retrying a
    /// failing store: a "done" that is not recorded lets a redelivery waiting on the claim run
    /// the handler again once the lease runs out, e.g. when Redis restarts while the handler
    /// runs.
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
            runtime.spawn(async move {
                if let Err(e) = store.release(&key, &holder).await {
                    tracing::warn!(
                        key,
                        error = %e,
                        "could not give back a delivery claim; it ends with its lease"
                    );
                }
            });
        }
    }
}
