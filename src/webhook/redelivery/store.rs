//! Redelivery: Twilio retries a callback it thinks failed (a timeout, a non-2xx answer), so a
//! receiver can see the same message `Sid` twice, on any replica. A [`DeliveryStore`] keeps one
//! claim per delivery key in two states:
//!
//! - **in progress**: a short lease held by the request whose handler runs, renewed by a
//!   heartbeat while it runs; it ends when the handler answers, or, if its process dies, when
//!   the lease runs out;
//! - **done**: the handler answered 2xx; kept for the dedup window, so that redeliveries are
//!   answered without running the handler again.
//!
//! Each claim carries its holder's token, so a holder whose lease ran out (and was taken over)
//! can no longer renew, complete or release the new holder's claim. [`MemoryDeliveryStore`](super::MemoryDeliveryStore)
//! keeps claims in one process; `RedisDeliveryStore` (feature `redis`) shares them between
//! replicas.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A store failed (e.g. a shared store is unreachable). The message says what happened; it
/// must not contain credentials.
#[derive(Debug, thiserror::Error)]
#[error("delivery store failed: {0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// What a [`DeliveryStore`] returns: a boxed future, so that stores can be used as trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What [`DeliveryStore::claim`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The claim is now held by the caller's token, in progress, for the lease: run the
    /// handler. Also the answer when the caller's own token already held it (a retried call).
    Acquired,
    /// Another holder's claim is in progress: its handler is running, or its process died and
    /// the lease has not run out yet.
    InProgress,
    /// A handler answered 2xx for this key within the window: a redelivery.
    Done,
}

/// Where delivery claims are kept, in two states: *in progress* (a lease held by the request
/// whose handler runs, renewed while it runs) and *done* (the handler answered 2xx; kept for the
/// dedup window).
///
/// Every method must be atomic with respect to the others on the same key (with Redis, a small
/// Lua script each; see `RedisDeliveryStore`), and the lease and window must expire on their
/// own (a holder can die without a word). `key` identifies one delivery target (the message
/// `Sid` and the route it was posted to); `holder` is a random token unique to one request.
///
/// | method | key absent | in progress, `holder`'s | in progress, another's | done |
/// | --- | --- | --- | --- | --- |
/// | `claim` | take it: [`Claim::Acquired`] | extend the lease: `Acquired` | [`Claim::InProgress`] | [`Claim::Done`] |
/// | `renew` | `false` | extend the lease: `true` | `false` | `false` |
/// | `complete` | mark done: `true` | mark done: `true` | `false`, unchanged | `true`, unchanged |
/// | `release` | `false` | delete: `true` | `false`, unchanged | `false`, unchanged |
///
/// `complete` marks an absent key done because the handler did succeed: its lease ran out
/// (e.g. the store was unreachable for a while) and no one else took the claim, so the work is
/// recorded rather than redone on a later redelivery.
pub trait DeliveryStore: Send + Sync {
    /// Claims `key` for `holder`, in progress for `lease` (see the table above).
    fn claim<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim>;

    /// Extends `holder`'s lease on `key` to `lease` from now; `false` if it no longer holds it.
    fn renew<'a>(&'a self, key: &'a str, holder: &'a str, lease: Duration)
    -> StoreFuture<'a, bool>;

    /// Marks `key` done for `window` (the handler answered 2xx); `false` if another holder has
    /// taken the claim over meanwhile.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        window: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Gives up `holder`'s claim on `key` (the handler failed), so that the next delivery is
    /// handled; `false` if it no longer held it.
    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, bool>;
}
