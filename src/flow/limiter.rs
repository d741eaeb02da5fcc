//! The client-wide concurrency limiter: a request waits for a permit while the client has as
//! many requests in flight as its current limit, and reports on the permit what its attempt
//! taught ([`Lesson`]: admitted, throttled, or nothing), as the retry rules classify it.
//!
//! The adaptive limit follows the rules of [`rules`](super::rules), which this limiter applies
//! under its lock; what is here is the slots: who holds one, who waits, and how a new limit
//! takes effect.
//!
//! Free slots are a count under the limiter's one lock, so a request that finds one takes it
//! with that lock alone, the lock its outcome is reported under anyway. Only while requests
//! wait do the free slots go to a tokio [`Semaphore`] instead, which queues the waiters in
//! order (it is fair): a slot is never taken ahead of a waiter, because a slot is counted as
//! free only while nobody waits. A smaller limit takes effect at once on the slots not in use
//! and, for those in use, as they come back (they are forgotten instead of returned); a slot
//! handed to a waiter whose task has not run yet is not in use: the waiter gives it back and
//! waits again.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Semaphore;

use super::rules::{AdaptiveLimit, Answer, Change};
use super::{ConcurrencyLimit, FlowStats};
use crate::retry::classify::Lesson;

/// The client-wide concurrency limiter; clones share it.
#[derive(Clone)]
pub(crate) struct ConcurrencyLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    setting: ConcurrencyLimit,
    /// Where free slots go while requests wait for one; `None` when the limit is off.
    semaphore: Option<Semaphore>,
    state: Mutex<State>,
}

/// Bookkeeping under one lock. The slots obey
/// `free + available in the semaphore + in use - debt == limit`, and `free` is 0 while
/// `waiting` is not.
#[derive(Debug)]
struct State {
    /// Free slots not in the semaphore (there are none while requests wait).
    free: usize,
    /// Acquires queued on the semaphore for a slot.
    waiting: usize,
    /// The adaptive limit's rules and what they remember; `None` unless the limit is adaptive.
    rules: Option<AdaptiveLimit>,
    /// The limit the semaphore enforces (the rules' [`limit`](AdaptiveLimit::limit) when
    /// adaptive).
    limit: usize,
    /// Held permits to forget, not return, when they come back (the limit shrank below what
    /// was in flight).
    debt: usize,
    in_flight: usize,
    /// Number of the next admitted request: the admission order the rules count windows in.
    next_seq: u64,
    throttled: u64,
    decreases: u64,
}

impl fmt::Debug for ConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimiter")
            .field("setting", &self.inner.setting)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ConcurrencyLimiter {
    pub(crate) fn new(setting: ConcurrencyLimit) -> Self {
        let setting = setting.normalized();
        let (limit, rules, semaphore) = match setting {
            ConcurrencyLimit::Adaptive { initial, max } => {
                let rules = AdaptiveLimit::new(initial, max);
                (rules.limit(), Some(rules), Some(Semaphore::new(0)))
            }
            ConcurrencyLimit::Fixed(n) => (n, None, Some(Semaphore::new(0))),
            ConcurrencyLimit::Off => (0, None, None),
        };
        ConcurrencyLimiter {
            inner: Arc::new(Inner {
                setting,
                semaphore,
                state: Mutex::new(State {
                    free: limit,
                    waiting: 0,
                    rules,
                    limit,
                    debt: 0,
                    in_flight: 0,
                    next_seq: 0,
                    throttled: 0,
                    decreases: 0,
                }),
            }),
        }
    }

    /// Waits for a slot (first come, first served) and takes it. Cancel-safe: a dropped
    /// future leaves the queue and takes nothing.
    pub(crate) async fn acquire(&self) -> Permit {
        let Some(semaphore) = &self.inner.semaphore else {
            return self.admit_unlimited();
        };
        loop {
            {
                let mut state = self.inner.lock();
                if let Some(permit) = self.take_free(&mut state) {
                    return permit;
                }
                state.waiting += 1;
            }
            let queued = Queued(&self.inner);
            // `Err` only if the semaphore were closed, which nothing does.
            let handed = semaphore.acquire().await.ok();
            let mut state = queued.leave();
            let Some(slot) = handed else { continue };
            slot.forget();
            if state.debt > 0 {
                // More slots are out than the cut limit allows: this one was handed to the
                // waiter before the cut, and its task runs only now (on a busy machine,
                // milliseconds later). Sent, it would go beyond the cut limit, and its
                // throttle, numbered after the cut, would cut again: a cascade of cuts from
                // one overshoot. It pays the debt instead, as it would have had the cut come
                // first.
                state.debt -= 1;
                continue;
            }
            return self.admit(&mut state, true);
        }
    }

    /// Takes a slot if one is free now (never ahead of a waiter: while anyone waits, no slot
    /// is counted free).
    pub(crate) fn try_acquire(&self) -> Option<Permit> {
        if self.inner.semaphore.is_none() {
            return Some(self.admit_unlimited());
        }
        self.take_free(&mut self.inner.lock())
    }

    fn take_free(&self, state: &mut State) -> Option<Permit> {
        if state.free == 0 {
            return None;
        }
        state.free -= 1;
        Some(self.admit(state, true))
    }

    fn admit_unlimited(&self) -> Permit {
        self.admit(&mut self.inner.lock(), false)
    }

    /// Numbers the request and counts it in flight.
    fn admit(&self, state: &mut State, slot: bool) -> Permit {
        state.in_flight += 1;
        let ticket = Ticket {
            seq: state.next_seq,
            in_flight_at_send: state.in_flight,
        };
        state.next_seq += 1;
        Permit {
            inner: self.inner.clone(),
            slot,
            ticket,
            reported: false,
        }
    }

    /// The current limit, requests in flight and waiting, and throttles counted.
    pub(crate) fn stats(&self) -> FlowStats {
        let state = self.inner.lock();
        FlowStats {
            limit: self.inner.semaphore.as_ref().map(|_| state.limit),
            in_flight: state.in_flight,
            waiting: state.waiting,
            throttled: state.throttled,
            decreases: state.decreases,
            retry_tokens: None,
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements; a panic elsewhere must not stop
        // every request of the client.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, slot: bool, ticket: Ticket, lesson: Lesson, concurrent: Option<u32>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let answer = Answer {
            seq: ticket.seq,
            next_seq: state.next_seq,
            in_flight_at_send: ticket.in_flight_at_send,
            in_flight_at_answer: state.in_flight,
            waiting: state.waiting,
            concurrent_requests: concurrent,
        };
        state.in_flight -= 1;
        if lesson == Lesson::Throttled {
            state.throttled += 1;
        }
        if let Some(rules) = &mut state.rules {
            if rules.learn(lesson, answer) == Change::Cut {
                state.decreases += 1;
            }
            let limit = rules.limit();
            if let Some(semaphore) = &self.semaphore {
                state.resize(semaphore, limit);
            }
        }
        if slot && let Some(semaphore) = &self.semaphore {
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                state.give_back(semaphore, 1);
            }
        }
    }
}

impl State {
    /// Enforces `limit` from now on, keeping the slots' sum equal to it.
    fn resize(&mut self, semaphore: &Semaphore, limit: usize) {
        if limit > self.limit {
            let mut grow = limit - self.limit;
            let repaid = grow.min(self.debt);
            self.debt -= repaid;
            grow -= repaid;
            self.give_back(semaphore, grow);
        } else if limit < self.limit {
            let shrink = self.limit - limit;
            let from_free = shrink.min(self.free);
            self.free -= from_free;
            let forgotten = semaphore.forget_permits(shrink - from_free);
            self.debt += shrink - from_free - forgotten;
        }
        self.limit = limit;
    }

    /// Frees `n` slots: to the waiters, in order, if there are any.
    fn give_back(&mut self, semaphore: &Semaphore, n: usize) {
        if self.waiting > 0 {
            semaphore.add_permits(n);
        } else {
            self.free += n;
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Ticket {
    /// Admission order.
    seq: u64,
    /// Requests in flight just after this one was admitted, this one included.
    in_flight_at_send: usize,
}

/// A slot for one attempt. Report its outcome once; dropping it unreported (a cancelled
/// request) frees the slot and teaches nothing.
#[must_use = "a permit holds a slot until it is reported or dropped"]
pub(crate) struct Permit {
    inner: Arc<Inner>,
    /// Holds one of the limit's slots (not when the limit is off).
    slot: bool,
    ticket: Ticket,
    reported: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("seq", &self.ticket.seq)
            .finish_non_exhaustive()
    }
}

impl Permit {
    /// Reports the attempt's outcome, as the retry rules classify it, with the
    /// `Twilio-Concurrent-Requests` header if the response had one.
    pub(crate) fn learn(mut self, lesson: Lesson, concurrent_requests: Option<u32>) {
        self.report(lesson, concurrent_requests);
    }

    fn report(&mut self, lesson: Lesson, concurrent_requests: Option<u32>) {
        if !self.reported {
            self.reported = true;
            self.inner
                .release(self.slot, self.ticket, lesson, concurrent_requests);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.report(Lesson::Nothing, None);
    }
}

/// One acquire counted in `waiting` while it is queued on the semaphore; leaving, by being
/// served or cancelled, uncounts it.
struct Queued<'a>(&'a Inner);

impl<'a> Queued<'a> {
    /// Leaves the queue, returning the state locked.
    fn leave(self) -> MutexGuard<'a, State> {
        let inner = self.0;
        std::mem::forget(self);
        inner.leave_queue()
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        drop(self.0.leave_queue());
    }
}

impl Inner {
    /// Uncounts a waiter. When the last one leaves, the slots still available in the semaphore
    /// (handed back to a waiter that was cancelled, or more than the waiters took) are counted
    /// free again, where requests take them without the semaphore. A slot that reaches the
    /// semaphore after that (a cancelled waiter's, returned by tokio as its wait is dropped) is
    /// not lost: the next request that finds no free slot queues and is handed it at once.
    fn leave_queue(&self) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        state.waiting -= 1;
        if state.waiting == 0
            && let Some(semaphore) = &self.semaphore
        {
            state.free += semaphore.forget_permits(usize::MAX);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn adaptive(initial: usize, max: usize) -> ConcurrencyLimiter {
        ConcurrencyLimiter::new(ConcurrencyLimit::Adaptive { initial, max })
    }

    fn limit(l: &ConcurrencyLimiter) -> usize {
        l.stats().limit.unwrap()
    }

    /// Takes every free permit.
    fn fill(l: &ConcurrencyLimiter) -> Vec<Permit> {
        std::iter::from_fn(|| l.try_acquire()).collect()
    }

    #[test]
    fn no_more_in_flight_than_the_limit() {
        let l = adaptive(4, 10);
        let permits = fill(&l);
        assert_eq!(permits.len(), 4);
        let stats = l.stats();
        assert_eq!((stats.in_flight, stats.limit), (4, Some(4)));
        drop(permits);
        assert_eq!(l.stats().in_flight, 0);
        assert_eq!(fill(&l).len(), 4, "dropped permits came back");
    }

    /// One round trip of a busy client: each request in flight is admitted and its slot, with
    /// any the limit gained, is taken again at once. Returns the requests now in flight.
    fn round_trip(l: &ConcurrencyLimiter, permits: Vec<Permit>) -> Vec<Permit> {
        let mut next = Vec::new();
        for permit in permits {
            permit.learn(Lesson::Admitted, None);
            next.extend(fill(l));
        }
        next
    }

    #[test]
    fn slow_start_quadruples_per_round_trip_until_the_max() {
        let l = adaptive(2, 20);
        let permits = round_trip(&l, fill(&l));
        assert_eq!((limit(&l), permits.len()), (8, 8));
        let permits = round_trip(&l, permits);
        assert_eq!(limit(&l), 20, "32, capped at the max");
        assert_eq!(permits.len(), 20);
    }

    #[test]
    fn a_throttle_cuts_once_per_window() {
        let l = adaptive(20, 100);
        let permits = fill(&l);
        assert_eq!(permits.len(), 20);
        // Every request of the window is throttled: one cut, 20 × 0.8 = 16.
        for permit in permits {
            permit.learn(Lesson::Throttled, None);
        }
        assert_eq!(limit(&l), 16);
        let stats = l.stats();
        assert_eq!((stats.throttled, stats.decreases), (20, 1));
        // A request admitted after the cut is news: cut again.
        l.try_acquire().unwrap().learn(Lesson::Throttled, None);
        assert_eq!(limit(&l), 12, "16 × 0.8 = 12.8");
        assert_eq!(l.stats().decreases, 2);
    }

    #[test]
    fn never_below_one() {
        let l = adaptive(2, 4);
        for _ in 0..20 {
            l.try_acquire().unwrap().learn(Lesson::Throttled, None);
        }
        assert_eq!(limit(&l), 1);
        let one = l.try_acquire().unwrap();
        assert!(l.try_acquire().is_none());
        one.learn(Lesson::Nothing, None);
        assert!(l.try_acquire().is_some());
    }

    #[test]
    fn after_a_cut_the_limit_climbs_back_then_grows_about_one_per_round_trip() {
        let l = adaptive(40, 100);
        let mut permits = fill(&l);
        permits.pop().unwrap().learn(Lesson::Throttled, None); // 40 → 32, congestion avoidance
        drop(permits);
        assert_eq!(limit(&l), 32);
        // Each round trip closes about 63% of the gap to 40: 32 → 36.9 → 38.8.
        let permits = round_trip(&l, fill(&l));
        assert_eq!(limit(&l), 36);
        let mut permits = round_trip(&l, permits);
        assert_eq!(limit(&l), 38);
        // Near 40, it grows about +1 per round trip.
        let mut round_trips = 0;
        while limit(&l) < 44 {
            permits = round_trip(&l, permits);
            round_trips += 1;
        }
        assert!(
            (5..=7).contains(&round_trips),
            "38 → 44 took {round_trips} round trips"
        );
    }

    #[test]
    fn after_a_second_cut_the_limit_climbs_back_to_the_lower_level() {
        let l = adaptive(40, 100);
        l.try_acquire().unwrap().learn(Lesson::Throttled, None); // 40 → 32
        l.try_acquire().unwrap().learn(Lesson::Throttled, None); // admitted after: 32 → 25.6
        assert_eq!(limit(&l), 25);
        let mut permits = fill(&l);
        for _ in 0..3 {
            permits = round_trip(&l, permits);
        }
        assert_eq!(
            limit(&l),
            32,
            "25.6 → 29.4 → 31.0 → 32.0: back to 32, not 40"
        );
    }

    #[test]
    fn a_shrunk_limit_holds_back_permits_in_flight() {
        let l = adaptive(10, 100);
        let mut permits = fill(&l);
        assert_eq!(permits.len(), 10);
        permits.pop().unwrap().learn(Lesson::Throttled, None); // 10 → 8 with 9 still in flight
        assert_eq!(limit(&l), 8);
        // The next returning permit is forgotten: nothing is free until in flight < 8.
        permits.pop().unwrap().learn(Lesson::Nothing, None);
        assert!(l.try_acquire().is_none(), "8 in flight, limit 8");
        permits.pop().unwrap().learn(Lesson::Nothing, None);
        let again = l.try_acquire().expect("7 in flight, limit 8");
        assert!(l.try_acquire().is_none());
        drop(again);
        drop(permits);
        assert_eq!(fill(&l).len(), 8, "exactly the limit, no permit lost");
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let l = adaptive(10, 100);
        for _ in 0..1000 {
            l.try_acquire().unwrap().learn(Lesson::Admitted, None); // one at a time
        }
        assert_eq!(limit(&l), 10);
    }

    #[test]
    fn ignored_outcomes_change_nothing() {
        let l = adaptive(10, 100);
        for permit in fill(&l) {
            permit.learn(Lesson::Nothing, None);
        }
        for permit in fill(&l) {
            drop(permit);
        }
        let stats = l.stats();
        assert_eq!(stats.limit, Some(10));
        assert_eq!(
            (stats.throttled, stats.decreases, stats.in_flight),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_full_account_holds_then_trims_the_limit() {
        let l = adaptive(10, 100);
        // A throttle says the account is full at 12 requests.
        l.try_acquire().unwrap().learn(Lesson::Throttled, Some(12));
        assert_eq!(limit(&l), 8);
        for _ in 0..20 {
            for permit in fill(&l) {
                permit.learn(Lesson::Admitted, Some(12));
            }
        }
        assert_eq!(
            limit(&l),
            8,
            "full account: no growth, and no cut while the header has never moved"
        );
        for _ in 0..20 {
            for permit in fill(&l) {
                permit.learn(Lesson::Admitted, Some(9));
            }
        }
        let grown = limit(&l);
        assert!(grown > 8, "room at the account: growth");
        let decreases = l.stats().decreases;
        for permit in fill(&l) {
            permit.learn(Lesson::Admitted, Some(12));
        }
        // One gentle cut for the whole window: × 0.95.
        assert_eq!(l.stats().decreases, decreases + 1);
        let trimmed = limit(&l);
        assert!(trimmed < grown && trimmed as f64 >= (grown as f64 * 0.95).floor() - 1.0);
        assert_eq!(l.stats().throttled, 1, "a mark is not a throttle");
    }

    /// `Twilio-Concurrent-Requests: 0` on a 429 names no capacity: it must not become a hint
    /// that every later success "reaches", which would stop all growth.
    #[test]
    fn a_throttle_reporting_zero_requests_sets_no_capacity() {
        let l = adaptive(10, 100);
        l.try_acquire().unwrap().learn(Lesson::Throttled, Some(0));
        assert_eq!(limit(&l), 8);
        for _ in 0..10 {
            for permit in fill(&l) {
                permit.learn(Lesson::Admitted, Some(1));
            }
        }
        assert!(
            limit(&l) > 8,
            "grows as after a throttle without the header"
        );
    }

    /// Growth from a limit of 1 adds exactly the growth, within the max.
    #[test]
    fn growing_from_one_adds_exactly_the_growth() {
        for (max, grown) in [(2, 2), (10, 4)] {
            let l = adaptive(1, max);
            l.try_acquire().unwrap().learn(Lesson::Admitted, None);
            assert_eq!(limit(&l), grown);
            assert_eq!(fill(&l).len(), grown);
        }
    }

    #[test]
    fn debug_names_the_setting_and_the_stats() {
        let l = ConcurrencyLimiter::new(ConcurrencyLimit::Fixed(3));
        let _held = l.try_acquire().unwrap();
        let debug = format!("{l:?}");
        assert!(
            debug.starts_with("ConcurrencyLimiter { setting: Fixed(3), stats: FlowStats {"),
            "{debug}"
        );
        assert!(debug.contains("limit: Some(3), in_flight: 1"), "{debug}");
        assert_eq!(format!("{_held:?}"), "Permit { seq: 0, .. }");
    }

    #[test]
    fn fixed_and_off_never_adapt() {
        let fixed = ConcurrencyLimiter::new(ConcurrencyLimit::Fixed(3));
        for _ in 0..5 {
            for permit in fill(&fixed) {
                permit.learn(Lesson::Throttled, None);
            }
        }
        assert_eq!(fill(&fixed).len(), 3);
        let stats = fixed.stats();
        assert_eq!(
            (stats.limit, stats.throttled, stats.decreases),
            (Some(3), 15, 0)
        );
        for permit in fill(&fixed) {
            permit.learn(Lesson::Admitted, None);
        }
        assert_eq!(limit(&fixed), 3);

        let off = ConcurrencyLimiter::new(ConcurrencyLimit::Off);
        let permits: Vec<_> = (0..1000).map(|_| off.try_acquire().unwrap()).collect();
        let stats = off.stats();
        assert_eq!((stats.limit, stats.in_flight), (None, 1000));
        for permit in permits {
            permit.learn(Lesson::Throttled, None);
        }
        let stats = off.stats();
        assert_eq!(
            (stats.in_flight, stats.throttled, stats.decreases),
            (0, 1000, 0)
        );
    }

    #[test]
    fn reporting_twice_is_impossible_and_drop_after_report_is_silent() {
        let l = adaptive(4, 10);
        let permit = l.try_acquire().unwrap();
        permit.learn(Lesson::Throttled, None); // consumed: the drop that follows must not release again
        let stats = l.stats();
        assert_eq!((stats.in_flight, stats.throttled), (0, 1));
        assert_eq!(fill(&l).len(), stats.limit.unwrap());
    }

    #[tokio::test]
    async fn waiters_are_served_in_order_and_counted() {
        let l = adaptive(1, 1);
        let first = l.acquire().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (limiter, order) = (l.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let permit = limiter.acquire().await;
                order.lock().unwrap().push(i);
                permit.learn(Lesson::Admitted, None);
            }));
            // Each task queues before the next one starts.
            while l.stats().waiting < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(l.stats().waiting, 5);
        first.learn(Lesson::Admitted, None);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(l.stats().waiting, 0);
    }

    /// A slot handed to a waiter just before a cut, whose task runs only after it, goes back:
    /// sent, it would exceed the cut limit, and its throttle would cut again.
    #[tokio::test]
    async fn a_slot_handed_to_a_waiter_before_a_cut_waits_again() {
        let l = adaptive(10, 100);
        let mut permits = fill(&l);
        let admitted = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (l, admitted) = (l.clone(), admitted.clone());
            tokio::spawn(async move {
                let permit = l.acquire().await;
                admitted.fetch_add(1, Ordering::SeqCst);
                permit
            })
        };
        while l.stats().waiting < 1 {
            tokio::task::yield_now().await;
        }
        // A slot comes back and is handed to the waiter, whose task has not run yet; then a
        // throttle cuts 10 → 8, with 8 requests in flight and the waiter's slot out.
        permits.pop().unwrap().learn(Lesson::Nothing, None);
        permits.pop().unwrap().learn(Lesson::Throttled, None);
        assert_eq!(limit(&l), 8);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(admitted.load(Ordering::SeqCst), 0, "the waiter waits again");
        assert_eq!((l.stats().in_flight, l.stats().waiting), (8, 1));
        // In flight below the cut limit: the waiter's turn.
        permits.pop().unwrap().learn(Lesson::Nothing, None);
        let permit = waiter.await.unwrap();
        assert_eq!(l.stats().in_flight, 8);
        assert!(l.try_acquire().is_none(), "8 in flight, limit 8");
        drop((permit, permits));
        assert_eq!(fill(&l).len(), 8, "exactly the limit, no permit lost");
    }

    /// Many tasks on several threads take, hold and give back slots, some giving up while
    /// they wait, some throttled (the limit moves): never more in flight than the limit
    /// allowed, and at the end every slot is back, none lost in the waiters' queue and none
    /// made twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn slots_survive_concurrent_waits_cancellations_and_cuts() {
        use std::time::Duration;

        for setting in [
            ConcurrencyLimit::Fixed(5),
            ConcurrencyLimit::Adaptive {
                initial: 8,
                max: 16,
            },
        ] {
            let l = ConcurrencyLimiter::new(setting);
            let busy = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            let gave_up = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..400u64)
                .map(|i| {
                    let (l, busy, most) = (l.clone(), busy.clone(), most.clone());
                    let gave_up = gave_up.clone();
                    tokio::spawn(async move {
                        let wait = Duration::from_micros(200 + (i * 7919) % 3000);
                        let Ok(permit) = tokio::time::timeout(wait, l.acquire()).await else {
                            gave_up.fetch_add(1, Ordering::SeqCst);
                            return;
                        };
                        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_micros((i * 104_729) % 2000)).await;
                        busy.fetch_sub(1, Ordering::SeqCst);
                        match i % 5 {
                            0 => permit.learn(Lesson::Throttled, None),
                            1 => drop(permit),
                            _ => permit.learn(Lesson::Admitted, None),
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let max = match setting {
                ConcurrencyLimit::Fixed(n) => n,
                _ => 16,
            };
            assert!(most.load(Ordering::SeqCst) <= max, "{setting:?}");
            assert!(
                gave_up.load(Ordering::SeqCst) > 0,
                "{setting:?}: some waits were cancelled"
            );
            let stats = l.stats();
            assert_eq!((stats.in_flight, stats.waiting), (0, 0), "{setting:?}");
            let all = fill(&l);
            assert_eq!(
                all.len(),
                stats.limit.unwrap(),
                "{setting:?}: every slot is back"
            );
        }
    }

    /// A round trip's answers come back together, before the tasks of the requests waiting
    /// for the freed slots run: those slots are in use all the same, and slow start grows by
    /// each answer (10 → 40), not only by the first few (it grew 10 → 19 while waiters were not
    /// counted as use).
    #[test]
    fn waiting_requests_count_as_use_for_slow_start() {
        use std::future::Future as _;
        use std::task::{Context, Waker};

        let l = adaptive(10, 100);
        let round = fill(&l);
        let mut cx = Context::from_waker(Waker::noop());
        let mut waiters: Vec<_> = (0..90).map(|_| Box::pin(l.acquire())).collect();
        for waiter in &mut waiters {
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
        }
        for permit in round {
            permit.learn(Lesson::Admitted, None);
        }
        assert_eq!(limit(&l), 40);
        let mut admitted = Vec::new();
        for waiter in &mut waiters {
            if let std::task::Poll::Ready(permit) = waiter.as_mut().poll(&mut cx) {
                admitted.push(permit);
            }
        }
        assert_eq!(admitted.len(), 40, "every slot went to a waiter");
    }

    /// A slot handed to a waiter that is dropped before its task runs is free again for a
    /// request that does not wait, not left in the queue's semaphore.
    #[test]
    fn a_slot_handed_to_a_cancelled_waiter_is_free_again() {
        use std::future::Future as _;
        use std::task::{Context, Waker};

        let l = ConcurrencyLimiter::new(ConcurrencyLimit::Fixed(1));
        let held = l.try_acquire().unwrap();
        let mut waiter = Box::pin(l.acquire());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        assert_eq!(l.stats().waiting, 1);
        held.learn(Lesson::Nothing, None); // handed to the waiter
        drop(waiter); // cancelled before its task ran
        assert_eq!(l.stats().waiting, 0);
        let again = l.try_acquire().expect("the slot is free again");
        assert!(l.try_acquire().is_none(), "one slot, not two");
        drop(again);
        assert!(l.try_acquire().is_some());
    }

    #[tokio::test]
    async fn a_cancelled_wait_takes_nothing() {
        let l = adaptive(1, 1);
        let held = l.acquire().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(5), l.acquire()).await;
        assert!(waiting.is_err(), "no slot was free");
        assert_eq!(l.stats().waiting, 0, "the cancelled wait left the queue");
        drop(held);
        let again = l.try_acquire().expect("the slot is free again");
        assert_eq!(l.stats().in_flight, 1);
        drop(again);
    }
}
