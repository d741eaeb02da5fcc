//! The retry budget: a client-wide token bucket that every retry of a fault pays from, so that
//! when everything fails (every request 503, connections refused) retries stop multiplying the
//! load.
//!
//! The semantics and constants are those of smithy-rs's standard retry strategy
//! (`aws-smithy-runtime`, `client/retries/token_bucket.rs`, read at commit 56ee88c5):
//! - the bucket holds [`DEFAULT_CAPACITY`] = 500 tokens (`DEFAULT_CAPACITY`);
//! - a retry costs what [`retry_cost`] says for the failure's class (the table below;
//!   [`classify`](super::classify) gives the class);
//! - a retry that succeeds gets its cost back, one that fails loses it;
//! - a call that succeeds at its first attempt adds [`SUCCESS_REFILL`] = 1 token, up to the
//!   capacity (`PERMIT_REGENERATION_AMOUNT`);
//! - an empty bucket means no retry: the error is returned at once.
//!
//! ## What each retry costs
//!
//! smithy-rs prices a retry by the kind its classifiers give the failure: a `TransientError`
//! costs `LEGACY_RETRY_TIMEOUT_COST` = 10, a `ThrottlingError` or any other retryable kind
//! `LEGACY_RETRY_COST` = 5 (`TokenBucket::acquire`). Every fault this client retries is
//! transient there (`classifiers.rs`: `HttpStatusCodeClassifier` for 500/502/503/504,
//! `TransientErrorClassifier` for timeouts and I/O errors; `aws-smithy-http-client`
//! `client.rs` `downcast_error`: a failed connect and a connection closed mid-request are both
//! `ConnectorError::io`), so each costs the same:
//!
//! | outcome of the attempt | `Error` | smithy-rs kind | tokens |
//! | --- | --- | --- | --- |
//! | a retryable answer: 500, 502, 503, 504 | `Api` | transient | 10 |
//! | a timeout | `Timeout` | transient | 10 |
//! | a connection that failed before anything was sent | `Connect` | transient | 10 |
//! | a connection that broke after the request was sent | `Transport` | transient | 10 |
//! | throttled: 429 / 20429 | `Api` | throttling (5 there) | 0 |
//!
//! Throttling does not pay, unlike in smithy-rs: Twilio never processed a throttled request,
//! and the concurrency limiter already paces those retries to what the account accepts.
//!
//! So a healthy client keeps a full bucket, and a failing one gets 50 retries before it stops
//! retrying; from then on it sends each call once, until successes refill the bucket.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::retry::classify::OutcomeKind;

/// Tokens in a full bucket.
pub(crate) const DEFAULT_CAPACITY: usize = 500;
/// What a retry after a transient fault costs (smithy-rs's `LEGACY_RETRY_TIMEOUT_COST`).
pub(crate) const TRANSIENT_RETRY_COST: usize = 10;
/// What a call that succeeded at its first attempt adds back.
pub(crate) const SUCCESS_REFILL: usize = 1;

/// What retrying after an outcome of class `kind` costs: the module's table. `None`: the
/// budget is not asked, because the request was throttled or never sent (nothing processed),
/// or is not retried at all.
pub(crate) fn retry_cost(kind: OutcomeKind) -> Option<usize> {
    match kind {
        OutcomeKind::Transient => Some(TRANSIENT_RETRY_COST),
        OutcomeKind::Throttled
        | OutcomeKind::NotSent
        | OutcomeKind::Success
        | OutcomeKind::Rejected
        | OutcomeKind::Permanent => None,
    }
}

/// The client-wide retry budget; clones share one bucket.
#[derive(Clone)]
pub(crate) struct RetryBudget {
    /// `None`: unlimited (every retry is allowed and nothing is counted).
    inner: Option<Arc<Bucket>>,
}

struct Bucket {
    tokens: AtomicUsize,
    capacity: usize,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(b) => f
                .debug_struct("RetryBudget")
                .field("tokens", &b.tokens.load(Ordering::Relaxed))
                .field("capacity", &b.capacity)
                .finish(),
            None => f.write_str("RetryBudget(unlimited)"),
        }
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(DEFAULT_CAPACITY)
    }
}

impl RetryBudget {
    /// A full bucket of `capacity` tokens (0: no retries at all).
    pub(crate) fn new(capacity: usize) -> Self {
        RetryBudget {
            inner: Some(Arc::new(Bucket {
                tokens: AtomicUsize::new(capacity),
                capacity,
            })),
        }
    }

    /// No budget: retries are limited only by the retry policy.
    pub(crate) fn unlimited() -> Self {
        RetryBudget { inner: None }
    }

    /// Tokens left; `None` when unlimited.
    pub(crate) fn available(&self) -> Option<usize> {
        self.inner
            .as_ref()
            .map(|b| b.tokens.load(Ordering::Relaxed))
    }

    /// Pays for one retry, or says there is no budget left for it. A call keeps the token
    /// until its next attempt is over: [`RetryToken::refund`] if it succeeded; dropping the
    /// token (the attempt failed too) keeps the tokens spent.
    pub(crate) fn try_acquire(&self, cost: usize) -> Option<RetryToken> {
        let Some(bucket) = &self.inner else {
            return Some(RetryToken {
                bucket: None,
                cost: 0,
            });
        };
        bucket
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(cost))
            .ok()?;
        Some(RetryToken {
            bucket: Some(bucket.clone()),
            cost,
        })
    }

    /// A call succeeded at its first attempt: one token back, up to the capacity.
    pub(crate) fn on_first_attempt_success(&self) {
        if let Some(bucket) = &self.inner {
            bucket.add(SUCCESS_REFILL);
        }
    }
}

impl Bucket {
    fn add(&self, n: usize) {
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(n).min(self.capacity))
            });
    }
}

/// Payment for one retry. Dropped: spent (the retry failed, or the call ended).
#[must_use = "refund the token when the retry succeeds; dropping it spends it"]
pub(crate) struct RetryToken {
    bucket: Option<Arc<Bucket>>,
    cost: usize,
}

impl fmt::Debug for RetryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryToken")
            .field("cost", &self.cost)
            .finish()
    }
}

impl RetryToken {
    /// The retry this token paid for succeeded: its cost goes back to the bucket.
    pub(crate) fn refund(self) {
        if let Some(bucket) = &self.bucket {
            bucket.add(self.cost);
        }
    }

    /// Tokens this retry cost.
    #[cfg(test)]
    pub(crate) fn cost(&self) -> usize {
        self.cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COST: usize = TRANSIENT_RETRY_COST;

    #[test]
    fn debug_shows_the_tokens_and_the_cost() {
        let budget = RetryBudget::new(25);
        let token = budget.try_acquire(COST).unwrap();
        assert_eq!(
            format!("{budget:?}"),
            "RetryBudget { tokens: 15, capacity: 25 }"
        );
        assert_eq!(format!("{token:?}"), "RetryToken { cost: 10 }");
        assert_eq!(
            format!("{:?}", RetryBudget::unlimited()),
            "RetryBudget(unlimited)"
        );
    }

    #[test]
    fn an_answer_that_is_not_retried_has_no_price() {
        // The table's last line: what is not retried never asks the budget.
        for (status, body) in [(400, &b""[..]), (404, b""), (501, b""), (401, b"{}")] {
            let error = crate::__private::decode_error_response(status, body);
            assert_eq!(retry_cost(error.kind()), None, "{status}");
        }
        let error = crate::__private::decode_error_response(503, b"");
        assert_eq!(retry_cost(error.kind()), Some(COST));
    }

    #[test]
    fn a_failing_client_gets_fifty_retries_then_none() {
        let budget = RetryBudget::default();
        let mut granted = 0;
        while let Some(token) = budget.try_acquire(COST) {
            drop(token); // the retry failed too: spent
            granted += 1;
            assert!(granted <= DEFAULT_CAPACITY, "the bucket must drain");
        }
        assert_eq!(granted, 50);
        assert_eq!(budget.available(), Some(0));
        assert!(budget.try_acquire(COST).is_none());
    }

    #[test]
    fn a_refused_retry_costs_nothing() {
        let budget = RetryBudget::new(25);
        let t = budget.try_acquire(COST).unwrap();
        assert_eq!(t.cost(), COST);
        assert_eq!(budget.available(), Some(15));
        drop(t);
        assert!(budget.try_acquire(COST).is_some());
        assert_eq!(budget.available(), Some(5));
        assert!(
            budget.try_acquire(COST).is_none(),
            "5 left, a retry costs 10"
        );
        assert_eq!(budget.available(), Some(5), "a refused retry costs nothing");
        assert!(budget.try_acquire(5).is_some());
    }

    #[test]
    fn a_successful_retry_is_refunded_and_first_attempt_successes_refill() {
        let budget = RetryBudget::new(100);
        let token = budget.try_acquire(COST).unwrap();
        assert_eq!(budget.available(), Some(90));
        token.refund();
        assert_eq!(budget.available(), Some(100));

        for _ in 0..10 {
            drop(budget.try_acquire(COST).unwrap());
        }
        assert_eq!(budget.available(), Some(0));
        for _ in 0..12 {
            budget.on_first_attempt_success();
        }
        assert_eq!(budget.available(), Some(12));
        assert!(budget.try_acquire(COST).is_some());
        for _ in 0..1000 {
            budget.on_first_attempt_success();
        }
        assert_eq!(budget.available(), Some(100), "never above the capacity");
    }

    #[test]
    fn clones_share_one_bucket_and_unlimited_never_refuses() {
        let budget = RetryBudget::new(10);
        let clone = budget.clone();
        drop(clone.try_acquire(COST).unwrap());
        assert!(budget.try_acquire(COST).is_none());

        let unlimited = RetryBudget::unlimited();
        for _ in 0..10_000 {
            drop(unlimited.try_acquire(COST).unwrap());
        }
        assert_eq!(unlimited.available(), None);
        assert!(RetryBudget::new(0).try_acquire(COST).is_none());
    }

    /// The outage: every request fails. With the default 4 attempts, requests sent stay
    /// within 1.1× the logical calls once the budget is spent.
    #[test]
    fn an_outage_is_not_amplified() {
        let budget = RetryBudget::default();
        let calls = 2_000;
        let max_attempts = 4;
        let mut sent = 0;
        for _ in 0..calls {
            sent += 1; // the first attempt is never refused by the budget
            for _ in 1..max_attempts {
                match budget.try_acquire(COST) {
                    Some(token) => {
                        sent += 1;
                        drop(token); // 503 again
                    }
                    None => break,
                }
            }
        }
        assert_eq!(sent, calls + DEFAULT_CAPACITY / COST);
        assert!(sent as f64 <= 1.1 * calls as f64, "{sent} requests");
    }
}
