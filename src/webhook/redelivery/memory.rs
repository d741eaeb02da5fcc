//! [`MemoryDeliveryStore`]: the claims of one process, bounded.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::store::{Claim, DeliveryStore, StoreFuture};

/// The default capacity of a [`MemoryDeliveryStore`].
const DEFAULT_CAPACITY: usize = 100_000;

/// A [`DeliveryStore`] in this process's memory, bounded: at most `capacity` keys, each kept
/// until its lease or window runs out; when full, the key whose claim or completion was
/// recorded longest ago is forgotten first (a redelivery of it would then be handled again). About 400 bytes per key in the
/// store itself, and up to 800 in a receiver's resident set with the allocator's share: under
/// 80 MiB at the default capacity (`cargo bench --bench memory -- receiver`).
///
/// It protects one process only: replicas behind a load balancer need a shared store.
pub struct MemoryDeliveryStore {
    capacity: usize,
    state: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    entries: HashMap<Box<str>, Entry>,
    /// Expiry times in the order set, to expire and evict the oldest first. An entry whose time
    /// no longer matches the map's is stale (renewed, completed, released) and skipped.
    order: VecDeque<(Instant, Box<str>)>,
}

struct Entry {
    until: Instant,
    /// `Some(holder)` while in progress, `None` once done.
    holder: Option<Box<str>>,
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
    /// A store that remembers at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        MemoryDeliveryStore {
            capacity: capacity.max(1),
            state: Mutex::new(Memory::default()),
        }
    }

    /// How many keys are remembered now (expired ones may still count until the next claim).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is remembered.
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

    /// [`DeliveryStore::claim`] at a given time (for tests).
    pub(crate) fn claim_at(&self, key: &str, holder: &str, lease: Duration, now: Instant) -> Claim {
        let mut memory = self.lock();
        memory.expire(now);
        match memory.live(key, now).map(|e| e.holder.as_deref()) {
            Some(None) => return Claim::Done,
            Some(Some(h)) if h != holder => return Claim::InProgress,
            Some(Some(_)) => {}
            None => {
                while memory.entries.len() >= self.capacity {
                    if !memory.evict_oldest() {
                        break;
                    }
                }
            }
        }
        memory.set(key, Some(holder), now + lease);
        Claim::Acquired
    }

    /// [`DeliveryStore::renew`] at a given time.
    pub(crate) fn renew_at(&self, key: &str, holder: &str, lease: Duration, now: Instant) -> bool {
        let mut memory = self.lock();
        if !memory.held_by(key, holder, now) {
            return false;
        }
        memory.set(key, Some(holder), now + lease);
        true
    }

    /// [`DeliveryStore::complete`] at a given time.
    pub(crate) fn complete_at(
        &self,
        key: &str,
        holder: &str,
        window: Duration,
        now: Instant,
    ) -> bool {
        let mut memory = self.lock();
        match memory.live(key, now).map(|e| e.holder.as_deref()) {
            Some(None) => true,
            Some(Some(h)) if h != holder => false,
            _ => {
                memory.set(key, None, now + window);
                true
            }
        }
    }

    /// [`DeliveryStore::release`] at a given time.
    pub(crate) fn release_at(&self, key: &str, holder: &str, now: Instant) -> bool {
        let mut memory = self.lock();
        if !memory.held_by(key, holder, now) {
            return false;
        }
        memory.entries.remove(key);
        true
    }
}

impl Memory {
    /// The entry for `key` unless it has expired.
    fn live(&self, key: &str, now: Instant) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.until > now)
    }

    fn held_by(&self, key: &str, holder: &str, now: Instant) -> bool {
        self.live(key, now)
            .is_some_and(|e| e.holder.as_deref() == Some(holder))
    }

    fn set(&mut self, key: &str, holder: Option<&str>, until: Instant) {
        self.entries.insert(
            key.into(),
            Entry {
                until,
                holder: holder.map(Into::into),
            },
        );
        self.order.push_back((until, key.into()));
    }

    fn expire(&mut self, now: Instant) {
        // `order` is in insertion order, and a lease is shorter than a window, so an expired
        // entry can sit behind a live one; it is removed when reached, and `live` ignores it
        // until then.
        while self.order.front().is_some_and(|(until, _)| *until <= now) {
            if let Some((until, key)) = self.order.pop_front()
                && self.entries.get(&key).is_some_and(|e| e.until == until)
            {
                self.entries.remove(&key);
            }
        }
        // Stale entries (renewed, completed or released keys) must not make the queue grow
        // unbounded.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(until, key)| entries.get(key).is_some_and(|e| e.until == *until));
        }
    }

    /// Forgets the oldest entry; `false` when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((until, key)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|e| e.until == until) {
                self.entries.remove(&key);
                return true;
            }
        }
        false
    }
}

impl DeliveryStore for MemoryDeliveryStore {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        let claim = self.claim_at(key, holder, lease, tokio::time::Instant::now().into_std());
        Box::pin(std::future::ready(Ok(claim)))
    }

    fn renew<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        let renewed = self.renew_at(key, holder, lease, tokio::time::Instant::now().into_std());
        Box::pin(std::future::ready(Ok(renewed)))
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        window: Duration,
    ) -> StoreFuture<'a, bool> {
        let completed =
            self.complete_at(key, holder, window, tokio::time::Instant::now().into_std());
        Box::pin(std::future::ready(Ok(completed)))
    }

    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        let released = self.release_at(key, holder, tokio::time::Instant::now().into_std());
        Box::pin(std::future::ready(Ok(released)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(5);
    const WINDOW: Duration = Duration::from_secs(60);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn one_holder_at_a_time_until_done_for_the_window() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("k", "a", LEASE, t0), Claim::Acquired);
        assert_eq!(store.claim_at("k", "b", LEASE, t0), Claim::InProgress);
        // The holder's own retried claim is not refused.
        assert_eq!(store.claim_at("k", "a", LEASE, t0), Claim::Acquired);
        assert!(store.complete_at("k", "a", WINDOW, t0 + S));
        assert_eq!(store.claim_at("k", "b", LEASE, t0 + 30 * S), Claim::Done);
        // The window outlives any lease; after it the key is new again.
        assert_eq!(
            store.claim_at("k", "b", LEASE, t0 + S + WINDOW),
            Claim::Acquired
        );
        // Other keys are independent.
        assert_eq!(store.claim_at("k2", "c", LEASE, t0), Claim::Acquired);
    }

    #[test]
    fn a_lease_runs_out_unless_renewed_and_a_stale_holder_is_powerless() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("k", "a", LEASE, t0), Claim::Acquired);
        assert!(store.renew_at("k", "a", LEASE, t0 + 4 * S));
        assert_eq!(
            store.claim_at("k", "b", LEASE, t0 + 8 * S),
            Claim::InProgress
        );
        // Not renewed again: from t0 + 9 s it can be taken over.
        assert_eq!(store.claim_at("k", "b", LEASE, t0 + 9 * S), Claim::Acquired);
        // The first holder can neither renew, release nor complete the new holder's claim.
        assert!(!store.renew_at("k", "a", LEASE, t0 + 10 * S));
        assert!(!store.release_at("k", "a", t0 + 10 * S));
        assert!(!store.complete_at("k", "a", WINDOW, t0 + 10 * S));
        assert_eq!(
            store.claim_at("k", "c", LEASE, t0 + 10 * S),
            Claim::InProgress
        );
        assert!(store.complete_at("k", "b", WINDOW, t0 + 11 * S));
        // Completing an absent key (lease ran out, nobody took it) records the work.
        assert!(store.complete_at("gone", "z", WINDOW, t0));
        assert_eq!(store.claim_at("gone", "y", LEASE, t0), Claim::Done);
    }

    #[test]
    fn expiring_a_stale_entry_leaves_the_renewed_claim_alone() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("k", "a", LEASE, t0), Claim::Acquired);
        assert!(store.renew_at("k", "a", LEASE, t0 + 3 * S));
        // The first lease's queue entry is due at t0 + 5 s; the renewed claim lives on.
        assert_eq!(
            store.claim_at("other", "b", LEASE, t0 + 6 * S),
            Claim::Acquired
        );
        assert_eq!(
            store.claim_at("k", "b", LEASE, t0 + 6 * S),
            Claim::InProgress
        );
    }

    #[test]
    fn released_is_claimable_done_is_not_released() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("k", "a", LEASE, t0), Claim::Acquired);
        assert!(store.release_at("k", "a", t0));
        assert!(!store.release_at("k", "a", t0), "already released");
        assert_eq!(store.claim_at("k", "b", LEASE, t0), Claim::Acquired);
        assert!(store.complete_at("k", "b", WINDOW, t0));
        assert!(!store.release_at("k", "b", t0), "done stays done");
        assert_eq!(store.claim_at("k", "c", LEASE, t0), Claim::Done);
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_goes_first() {
        let store = MemoryDeliveryStore::new(3);
        let t0 = Instant::now();
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64);
            assert_eq!(store.claim_at(key, "h", LEASE, at), Claim::Acquired);
            assert!(store.complete_at(key, "h", WINDOW, at));
        }
        assert_eq!(store.len(), 3);
        assert_eq!(
            store.claim_at("a", "x", LEASE, t0),
            Claim::Acquired,
            "evicted, so new again"
        );
        assert_eq!(store.claim_at("d", "x", LEASE, t0), Claim::Done);
    }

    /// What a busy receiver does: every message new, claimed and marked done within the
    /// window, far more of them than the capacity. The keys stay at the capacity and the
    /// expiry queue at two records per key (its claim's and its completion's), however many
    /// pass through: both bound the store's memory.
    #[test]
    fn distinct_keys_past_the_capacity_stay_within_it() {
        const CAPACITY: usize = 1_000;
        let store = MemoryDeliveryStore::new(CAPACITY);
        let t0 = Instant::now();
        for i in 0..50 * CAPACITY as u64 {
            let at = t0 + Duration::from_micros(i);
            let key = format!("KX{i:032x}");
            assert_eq!(store.claim_at(&key, "h", LEASE, at), Claim::Acquired);
            assert!(store.complete_at(&key, "h", WINDOW, at));
            let memory = store.lock();
            assert!(memory.entries.len() <= CAPACITY, "{}", memory.entries.len());
            assert!(memory.order.len() <= 2 * CAPACITY, "{}", memory.order.len());
        }
        let last = 50 * CAPACITY as u64 - 1;
        let at = t0 + Duration::from_micros(last);
        assert_eq!(store.len(), CAPACITY);
        let newest = format!("KX{last:032x}");
        assert_eq!(store.claim_at(&newest, "x", LEASE, at), Claim::Done);
        let forgotten = format!("KX{:032x}", last - CAPACITY as u64);
        assert_eq!(store.claim_at(&forgotten, "x", LEASE, at), Claim::Acquired);
    }

    #[test]
    fn stale_entries_do_not_pile_up() {
        let store = MemoryDeliveryStore::new(1_000);
        let t0 = Instant::now();
        for i in 0..10_000u64 {
            let at = t0 + Duration::from_micros(i);
            assert_eq!(store.claim_at("k", "h", LEASE, at), Claim::Acquired);
            assert!(store.renew_at("k", "h", LEASE, at));
            assert!(store.release_at("k", "h", at));
        }
        assert!(
            store.lock().order.len() < 200,
            "{}",
            store.lock().order.len()
        );
        assert!(store.is_empty());
    }

    /// Compaction is amortized: the queue keeps up to `2 × live + 64` records before a claim
    /// compacts it (so a claim is O(1) on average), and never more than that plus the records
    /// of one claim (here a claim and a renewal).
    #[test]
    fn compaction_waits_for_64_stale_records_and_no_longer() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        let mut longest = 0;
        for i in 0..1_000u64 {
            let at = t0 + Duration::from_micros(i);
            assert_eq!(store.claim_at("k", "h", LEASE, at), Claim::Acquired);
            assert!(store.renew_at("k", "h", LEASE, at));
            longest = longest.max(store.lock().order.len());
            assert!(store.release_at("k", "h", at));
        }
        assert_eq!(longest, 64 + 2);
    }

    /// Compaction drops stale records only: a live key keeps its record, so it still expires
    /// (and is forgotten) on time.
    #[test]
    fn compaction_keeps_the_records_of_live_keys() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("live", "h", LEASE, t0), Claim::Acquired);
        for i in 1..=200u64 {
            let at = t0 + Duration::from_micros(i);
            assert_eq!(store.claim_at("k", "h", LEASE, at), Claim::Acquired);
            assert!(store.release_at("k", "h", at));
        }
        assert_eq!(
            store.claim_at("other", "h", LEASE, t0 + LEASE + S),
            Claim::Acquired
        );
        assert_eq!(store.len(), 1, "\"live\" expired and was forgotten");
    }

    /// Eviction follows each key's current expiry: a renewed key is not the oldest any more.
    #[test]
    fn a_renewed_claim_is_not_evicted_first() {
        let store = MemoryDeliveryStore::new(2);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("a", "h", LEASE, t0), Claim::Acquired);
        assert_eq!(store.claim_at("b", "h", LEASE, t0 + S), Claim::Acquired);
        assert!(store.renew_at("a", "h", LEASE, t0 + 2 * S));
        assert_eq!(store.claim_at("c", "h", LEASE, t0 + 3 * S), Claim::Acquired);
        assert_eq!(
            store.claim_at("a", "x", LEASE, t0 + 3 * S),
            Claim::InProgress
        );
        assert_eq!(store.claim_at("b", "x", LEASE, t0 + 3 * S), Claim::Acquired);
    }

    /// An expiry is exclusive: at the instant a lease ends, the key can be taken over, also
    /// when its record sits behind a longer-lived one in the queue.
    #[test]
    fn a_lease_ends_at_its_instant() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("done", "h", LEASE, t0), Claim::Acquired);
        assert!(store.complete_at("done", "h", WINDOW, t0));
        assert_eq!(store.claim_at("k", "a", LEASE, t0 + S), Claim::Acquired);
        assert_eq!(
            store.claim_at("k", "b", LEASE, t0 + S + LEASE),
            Claim::Acquired
        );
    }

    /// Completing a key that is already done keeps the first window: a late second
    /// completion does not make the key remembered for longer.
    #[test]
    fn a_second_completion_does_not_extend_the_window() {
        let store = MemoryDeliveryStore::new(10);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("k", "a", LEASE, t0), Claim::Acquired);
        assert!(store.complete_at("k", "a", WINDOW, t0));
        assert!(store.complete_at("k", "a", WINDOW, t0 + 30 * S));
        assert_eq!(
            store.claim_at("k", "b", LEASE, t0 + WINDOW),
            Claim::Acquired
        );
    }

    /// A completion whose claim was forgotten meanwhile (evicted, expired) is still recorded,
    /// which can take the store past its capacity; the next new claim brings it back.
    #[test]
    fn a_claim_evicts_back_to_the_capacity() {
        let store = MemoryDeliveryStore::new(2);
        let t0 = Instant::now();
        assert_eq!(store.claim_at("a", "h", LEASE, t0), Claim::Acquired);
        assert_eq!(store.claim_at("b", "h", LEASE, t0 + S), Claim::Acquired);
        assert!(store.complete_at("evicted", "h", WINDOW, t0 + S));
        assert_eq!(store.len(), 3);
        assert_eq!(store.claim_at("c", "h", LEASE, t0 + S), Claim::Acquired);
        assert_eq!(store.len(), 2);
        assert_eq!(store.claim_at("evicted", "x", LEASE, t0 + S), Claim::Done);
    }

    #[test]
    fn debug_shows_capacity_and_length() {
        let store = MemoryDeliveryStore::new(10);
        assert!(store.is_empty());
        assert_eq!(
            store.claim_at("k", "h", LEASE, tokio::time::Instant::now().into_std()),
            Claim::Acquired
        );
        assert!(!store.is_empty());
        assert_eq!(
            format!("{store:?}"),
            "MemoryDeliveryStore { capacity: 10, len: 1 }"
        );
    }
}
