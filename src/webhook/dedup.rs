//! Redelivery: Twilio retries a callback it thinks failed (a timeout, a non-2xx answer), so a
//! receiver can see the same message `Sid` twice. A [`DeliveryStore`] remembers the `Sid`s
//! accepted recently; [`MemoryDeliveryStore`] does it in one process, and a shared store (Redis,
//! a database) makes several instances behind a load balancer agree.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;

/// A store failed (e.g. a shared store is unreachable). The message says what happened; it
/// must not contain credentials.
#[derive(Debug, thiserror::Error)]
#[error("delivery store failed: {0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// What a [`DeliveryStore`] returns: a boxed future, so that stores can be used as trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where accepted message `Sid`s are remembered.
///
/// `claim` must be atomic: of several concurrent claims of one `Sid`, exactly one may return
/// `true`, or two instances would both handle a redelivered message. With Redis, for example,
/// both methods are one command each (a sketch; this crate does not depend on a Redis client):
///
/// ```text
/// claim(sid, window):  SET twilio:delivered:<sid> 1 NX PX <window in ms>   -> "OK": true, nil: false
/// release(sid):        DEL twilio:delivered:<sid>
/// ```
///
/// ```
/// use std::time::Duration;
/// use twilio_call_messages::webhook::{DeliveryStore, StoreFuture};
///
/// struct Redis { /* a connection pool */ }
///
/// impl DeliveryStore for Redis {
///     fn claim<'a>(&'a self, sid: &'a str, window: Duration) -> StoreFuture<'a, bool> {
///         Box::pin(async move {
///             // SET twilio:delivered:{sid} 1 NX PX {window.as_millis()}; Ok(reply == "OK")
///             # let _ = (sid, window);
///             Ok(true)
///         })
///     }
///     fn release<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
///         Box::pin(async move {
///             // DEL twilio:delivered:{sid}
///             # let _ = sid;
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait DeliveryStore: Send + Sync {
    /// Records `sid` as delivered for `window`: `true` if it was not already recorded (handle
    /// the message), `false` if it was (a redelivery: answer 200 and do nothing).
    fn claim<'a>(&'a self, sid: &'a str, window: Duration) -> StoreFuture<'a, bool>;

    /// Forgets `sid`, so that Twilio's next delivery of it is handled: call it when handling a
    /// claimed message failed.
    fn release<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()>;
}

/// The default capacity of a [`MemoryDeliveryStore`].
const DEFAULT_CAPACITY: usize = 100_000;

/// A [`DeliveryStore`] in this process's memory, bounded: at most `capacity` `Sid`s, each kept
/// for its window; when full, the oldest claim is forgotten first (its redelivery would then be
/// handled again). About 100 bytes per `Sid`.
pub struct MemoryDeliveryStore {
    capacity: usize,
    state: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    /// `Sid` -> when it expires.
    expiry: HashMap<Box<str>, Instant>,
    /// Claims in the order made, to expire and evict the oldest first. An entry whose expiry
    /// no longer matches the map's is stale (released, or claimed again) and skipped.
    order: VecDeque<(Instant, Box<str>)>,
}

impl fmt::Debug for MemoryDeliveryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDeliveryStore")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for MemoryDeliveryStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MemoryDeliveryStore {
    /// A store that remembers at most `capacity` `Sid`s (at least one).
    pub fn new(capacity: usize) -> Self {
        MemoryDeliveryStore {
            capacity: capacity.max(1),
            state: Mutex::new(Memory::default()),
        }
    }

    /// How many `Sid`s are remembered now (expired ones may still count until the next claim).
    pub fn len(&self) -> usize {
        self.lock().expiry.len()
    }

    /// Whether no `Sid` is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic while holding the lock leaves consistent data (each step is complete), so a
        // poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The synchronous claim, at a given time (for tests).
    pub(crate) fn claim_at(&self, sid: &str, window: Duration, now: Instant) -> bool {
        let mut memory = self.lock();
        memory.expire(now);
        if memory.expiry.get(sid).is_some_and(|until| *until > now) {
            return false;
        }
        while memory.expiry.len() >= self.capacity {
            if !memory.evict_oldest() {
                break;
            }
        }
        let until = now + window;
        memory.expiry.insert(sid.into(), until);
        memory.order.push_back((until, sid.into()));
        true
    }
}

impl Memory {
    fn expire(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(until, _)| *until <= now) {
            self.evict_oldest();
        }
        // Stale entries (released or re-claimed `Sid`s) must not make the queue grow unbounded.
        if self.order.len() > 2 * self.expiry.len() + 64 {
            let expiry = &self.expiry;
            self.order
                .retain(|(until, sid)| expiry.get(sid).is_some_and(|u| u == until));
        }
    }

    /// Forgets the oldest claim; `false` when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((until, sid)) = self.order.pop_front() {
            if self.expiry.get(&sid).is_some_and(|u| *u == until) {
                self.expiry.remove(&sid);
                return true;
            }
        }
        false
    }
}

impl DeliveryStore for MemoryDeliveryStore {
    fn claim<'a>(&'a self, sid: &'a str, window: Duration) -> StoreFuture<'a, bool> {
        let claimed = self.claim_at(sid, window, Instant::now());
        Box::pin(std::future::ready(Ok(claimed)))
    }

    fn release<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.lock().expiry.remove(sid);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn a_sid_is_claimed_once_per_window() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert!(store.claim_at("KX1", WINDOW, t0));
        assert!(!store.claim_at("KX1", WINDOW, t0 + Duration::from_secs(59)));
        assert!(store.claim_at("KX2", WINDOW, t0));
        // After the window it is new again.
        assert!(store.claim_at("KX1", WINDOW, t0 + WINDOW));
        assert_eq!(store.len(), 1, "KX2 expired too");
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_goes_first() {
        let store = MemoryDeliveryStore::new(3);
        let t0 = Instant::now();
        for (i, sid) in ["a", "b", "c", "d"].into_iter().enumerate() {
            assert!(store.claim_at(sid, WINDOW, t0 + Duration::from_millis(i as u64)));
        }
        assert_eq!(store.len(), 3);
        assert!(store.claim_at("a", WINDOW, t0), "evicted, so new again");
        assert!(!store.claim_at("d", WINDOW, t0));
    }

    #[test]
    fn release_forgets_and_stale_entries_do_not_pile_up() {
        let store = MemoryDeliveryStore::new(1_000);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(store.claim_at("KX1", WINDOW, t0));
            // The memory store forgets when called; the future only carries the result.
            drop(store.release("KX1"));
        }
        assert!(
            store.lock().order.len() < 200,
            "{}",
            store.lock().order.len()
        );
        assert!(store.is_empty());
    }
}
