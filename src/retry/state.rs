//! One call's retry state: everything the retry rules need to remember between the attempts
//! of one call, and the two questions the orchestrator asks after each failed attempt (what
//! class of failure is it, which also says what it teaches the concurrency limiter; retry
//! after how long, or give up why).
//!
//! This is the per-request half of smithy-rs's standard strategy (`aws-smithy-runtime`,
//! `client/retries/strategy/standard.rs`: `should_attempt_retry` with its request attempts,
//! retry permit and refunds); the orchestrator's loop, like smithy's `orchestrator.rs`, only
//! asks. The failure is classified once ([`OutcomeKind`]); from that class the policy
//! ([`RetryPolicy`]) decides waits and caps, the budget prices retries ([`retry_cost`]), and
//! this state counts, holds the budget token, and remembers whether an
//! earlier attempt may have been processed.

use std::cell::Cell;
use std::time::Duration;

// tokio's clock, not std's: the waits for a slot and the backoffs run on it, so a paused clock
// moves the deadline with them.
use tokio::time::Instant;

use crate::error::{Error, GaveUp, RequestInfo};
use crate::retry::RetryPolicy;
use crate::retry::budget::{RetryBudget, RetryToken, retry_cost};
use crate::retry::classify::OutcomeKind;

/// The retry state of one call, from its first attempt to its one result.
pub(crate) struct RetryState<'a> {
    operation: &'static str,
    policy: &'a RetryPolicy,
    budget: &'a RetryBudget,
    /// When the call began, read when first needed (the first attempt, or the first wait for
    /// a slot, whichever comes first): a clock read less per call than reading it here.
    start: Cell<Option<Instant>>,
    /// Attempts sent.
    sent: u32,
    /// Failed attempts that were not throttled: the policy's attempt count.
    faults: u32,
    /// Throttled attempts: they back off on their own count and spend no attempts.
    throttles: u32,
    /// What the retry in progress paid; refunded if it succeeds, spent if it fails.
    token: Option<RetryToken>,
    /// Whether an earlier attempt may have been processed although it failed.
    may_have_been_processed: bool,
    /// The failure being retried, reported if the deadline passes while waiting for a slot.
    last_error: Option<Error>,
}

/// What to do after a failed attempt.
pub(crate) enum Next {
    /// Wait this long, then attempt again.
    RetryAfter(Duration),
    /// The call's result: this error, whose `gave_up` says why it was not retried.
    GiveUp(Error),
}

impl<'a> RetryState<'a> {
    pub(crate) fn new(
        operation: &'static str,
        policy: &'a RetryPolicy,
        budget: &'a RetryBudget,
    ) -> Self {
        RetryState {
            operation,
            policy,
            budget,
            start: Cell::new(None),
            sent: 0,
            faults: 0,
            throttles: 0,
            token: None,
            may_have_been_processed: false,
            last_error: None,
        }
    }

    /// What is left of the total deadline.
    pub(crate) fn remaining(&self) -> Duration {
        self.policy.total_deadline.saturating_sub(self.elapsed())
    }

    /// Time since the call began (its first clock read begins it).
    fn elapsed(&self) -> Duration {
        match self.start.get() {
            Some(start) => start.elapsed(),
            None => {
                self.start.set(Some(Instant::now()));
                Duration::ZERO
            }
        }
    }

    /// Counts an attempt about to be sent, and gives its timeout: `per_attempt`, cut to what
    /// the total deadline leaves.
    pub(crate) fn start_attempt(&mut self, per_attempt: Duration) -> Duration {
        self.sent += 1;
        per_attempt.min(self.remaining())
    }

    /// Attempts sent so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.sent
    }

    /// Throttled attempts so far.
    pub(crate) fn throttles(&self) -> u32 {
        self.throttles
    }

    /// The failure being retried, if any.
    pub(crate) fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// The attempt succeeded: the retry that led to it gets its price back, and a call that
    /// needed no retry of a fault adds to the budget.
    pub(crate) fn succeeded(&mut self) {
        match self.token.take() {
            Some(token) => token.refund(),
            None if self.faults == 0 => self.budget.on_first_attempt_success(),
            None => {}
        }
    }

    /// Classifies a failed attempt, once for every rule that reads the class (its
    /// [`lesson`](OutcomeKind::lesson) is what it teaches the concurrency limiter), and counts
    /// it: as a throttle, or as a fault.
    pub(crate) fn failed(&mut self, error: &Error) -> OutcomeKind {
        let kind = error.kind();
        if kind.is_throttled() {
            self.throttles += 1;
        } else {
            self.faults += 1;
        }
        kind
    }

    /// Whether an attempt before the last one may have been processed by Twilio, so that the
    /// last one's failure may only mean the work is already done (a delete answered "not
    /// found").
    pub(crate) fn earlier_attempt_may_have_been_processed(&self) -> bool {
        self.may_have_been_processed
    }

    /// After [`failed`](Self::failed), with the class it gave: retry after a wait, or give up
    /// with the reason recorded on the error. A retry of a fault pays the budget its
    /// [`retry_cost`]; a throttled one pays nothing and backs off on the throttles' own count (a
    /// persistent 429 without `Retry-After` must not become a tight loop).
    pub(crate) fn next(&mut self, mut error: Error, kind: OutcomeKind, jitter: f64) -> Next {
        self.may_have_been_processed |= error.may_have_been_processed();
        // Without `retry_throttled`, a throttled attempt counts like any other: one count, and
        // `max_attempts` caps them all together.
        let count = if !self.policy.retry_throttled {
            self.faults + self.throttles
        } else if kind.is_throttled() {
            self.throttles
        } else {
            self.faults
        };
        let wait = self
            .policy
            .next(count, kind, error.retry_after(), self.elapsed(), jitter)
            .and_then(|wait| match retry_cost(kind) {
                None => Ok(wait),
                Some(cost) => {
                    // Replacing the token spends the last one: that retry failed.
                    self.token = self.budget.try_acquire(cost);
                    self.token
                        .as_ref()
                        .map(|_| wait)
                        .ok_or(Some(GaveUp::RetryBudget))
                }
            });
        match wait {
            Ok(wait) => {
                self.last_error = Some(error);
                Next::RetryAfter(wait)
            }
            Err(reason) => {
                if let Some(request) = error.request_mut() {
                    request.gave_up = reason;
                }
                Next::GiveUp(error)
            }
        }
    }

    /// The deadline passed while waiting for a slot, with `remaining` left when the wait
    /// began: the failure being retried, or [`Error::Deadline`] if nothing was sent yet.
    pub(crate) fn deadline_passed(&mut self, remaining: Duration) -> Error {
        match self.last_error.take() {
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
                // Nothing was sent.
                request: Box::new(RequestInfo {
                    attempts: 0,
                    ..RequestInfo::new(self.operation, None)
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::fixtures::{api, broken_after_sending, connect, request, timeout};
    use crate::retry::budget::DEFAULT_CAPACITY;
    use crate::retry::classify::Lesson;

    /// The price table of `retry::budget`'s docs and the README, through the real path: what
    /// one retry after each outcome takes from a full budget, and what the outcome teaches
    /// the limiter.
    #[test]
    fn price_table() {
        let cases: Vec<(&str, Error, usize, Lesson)> = vec![
            ("500", api(500, None), 10, Lesson::Nothing),
            ("502", api(502, None), 10, Lesson::Nothing),
            ("503", api(503, None), 10, Lesson::Nothing),
            ("504", api(504, None), 10, Lesson::Nothing),
            ("timeout", timeout(), 10, Lesson::Nothing),
            (
                "connect failed, nothing sent",
                connect(),
                10,
                Lesson::Nothing,
            ),
            (
                "broke after sending",
                broken_after_sending(),
                10,
                Lesson::Nothing,
            ),
            ("429", api(429, None), 0, Lesson::Throttled),
            ("20429", api(400, Some(20429)), 0, Lesson::Throttled),
        ];
        let policy = RetryPolicy::default();
        for (name, error, price, lesson) in cases {
            let budget = RetryBudget::default();
            let mut state = RetryState::new("Op", &policy, &budget);
            state.start_attempt(Duration::from_secs(1));
            let kind = state.failed(&error);
            assert_eq!(kind.lesson(), lesson, "{name}");
            assert!(
                matches!(state.next(error, kind, 0.5), Next::RetryAfter(_)),
                "{name} is retried"
            );
            assert_eq!(
                budget.available(),
                Some(DEFAULT_CAPACITY - price),
                "{name} costs {price}"
            );
        }
    }

    #[test]
    fn answers_are_not_retried_and_cost_nothing() {
        let policy = RetryPolicy::default();
        for (error, lesson) in [
            (api(400, Some(21220)), Lesson::Admitted),
            (api(404, None), Lesson::Admitted),
            (api(501, None), Lesson::Nothing),
        ] {
            let budget = RetryBudget::default();
            let mut state = RetryState::new("Op", &policy, &budget);
            let kind = state.failed(&error);
            assert_eq!(kind.lesson(), lesson);
            let Next::GiveUp(error) = state.next(error, kind, 0.5) else {
                panic!("an answer is not retried");
            };
            assert_eq!(error.request().unwrap().gave_up, None);
            assert_eq!(budget.available(), Some(DEFAULT_CAPACITY));
        }
    }

    #[test]
    fn a_successful_retry_is_refunded_and_a_first_success_refills() {
        let policy = RetryPolicy::default();
        let budget = RetryBudget::new(100);
        let mut state = RetryState::new("Op", &policy, &budget);
        let kind = state.failed(&api(503, None));
        assert!(matches!(
            state.next(api(503, None), kind, 0.5),
            Next::RetryAfter(_)
        ));
        assert_eq!(budget.available(), Some(90));
        let kind = state.failed(&api(429, None));
        assert!(matches!(
            state.next(api(429, None), kind, 0.5),
            Next::RetryAfter(_)
        ));
        assert_eq!(budget.available(), Some(90), "a throttle keeps the token");
        state.succeeded();
        assert_eq!(budget.available(), Some(100), "refunded");

        drop(budget.try_acquire(10));
        let mut throttled_first = RetryState::new("Op", &policy, &budget);
        let kind = throttled_first.failed(&api(429, None));
        let _ = throttled_first.next(api(429, None), kind, 0.5);
        throttled_first.succeeded();
        assert_eq!(
            budget.available(),
            Some(91),
            "no fault retried: one token back"
        );
    }

    #[test]
    fn a_failed_retry_spends_its_token_and_an_empty_budget_stops() {
        let policy = RetryPolicy::default();
        let budget = RetryBudget::new(15);
        let mut state = RetryState::new("Op", &policy, &budget);
        let kind = state.failed(&timeout());
        assert!(matches!(
            state.next(timeout(), kind, 0.5),
            Next::RetryAfter(_)
        ));
        let kind = state.failed(&timeout());
        let Next::GiveUp(error) = state.next(timeout(), kind, 0.5) else {
            panic!("5 tokens left, a retry costs 10");
        };
        assert_eq!(error.request().unwrap().gave_up, Some(GaveUp::RetryBudget));
        assert_eq!(budget.available(), Some(5));
    }

    #[test]
    fn attempts_faults_and_processing_are_remembered() {
        let policy = RetryPolicy::default().max_attempts(2);
        let budget = RetryBudget::unlimited();
        let mut state = RetryState::new("Op", &policy, &budget);
        let cut = state.start_attempt(Duration::from_secs(120));
        assert!(
            cut <= Duration::from_secs(60) && cut > Duration::from_secs(59),
            "cut to the deadline: {cut:?}"
        );
        for _ in 0..2 {
            let kind = state.failed(&api(429, None));
            let _ = state.next(api(429, None), kind, 0.5);
            state.start_attempt(Duration::from_secs(1));
        }
        assert!(!state.earlier_attempt_may_have_been_processed());
        let kind = state.failed(&timeout());
        assert!(matches!(
            state.next(timeout(), kind, 0.5),
            Next::RetryAfter(_)
        ));
        assert!(state.earlier_attempt_may_have_been_processed());
        assert!(matches!(state.last_error(), Some(Error::Timeout { .. })));
        state.start_attempt(Duration::from_secs(1));
        let kind = state.failed(&api(503, None));
        let Next::GiveUp(error) = state.next(api(503, None), kind, 0.5) else {
            panic!("two faults with max_attempts(2)");
        };
        assert_eq!(error.request().unwrap().gave_up, Some(GaveUp::Attempts));
        assert_eq!((state.attempts(), state.throttles()), (4, 2));
    }

    /// A retried fault that the budget does not price (a deadline that passed before the
    /// attempt was sent) is still a fault retried: the success after it adds nothing.
    #[test]
    fn a_success_after_an_unpriced_fault_adds_no_token() {
        let policy = RetryPolicy::default();
        let budget = RetryBudget::new(100);
        drop(budget.try_acquire(50));
        let mut state = RetryState::new("Op", &policy, &budget);
        state.start_attempt(Duration::from_secs(1));
        let deadline = Error::Deadline { request: request() };
        let kind = state.failed(&deadline);
        assert_eq!(kind.lesson(), Lesson::Nothing);
        assert!(matches!(
            state.next(deadline, kind, 0.5),
            Next::RetryAfter(_)
        ));
        assert_eq!(budget.available(), Some(50), "unpriced");
        state.start_attempt(Duration::from_secs(1));
        state.succeeded();
        assert_eq!(budget.available(), Some(50));
    }

    /// The total deadline passes on tokio's clock, the one the waits run on: with it paused,
    /// only advancing it spends the deadline (on std's clock this call would have 10 s left).
    #[tokio::test(start_paused = true)]
    async fn the_deadline_runs_on_tokios_clock() {
        let policy = RetryPolicy::default().total_deadline(Duration::from_secs(10));
        let budget = RetryBudget::unlimited();
        let mut state = RetryState::new("Op", &policy, &budget);
        assert_eq!(
            state.start_attempt(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(state.remaining(), Duration::from_secs(1));
        let kind = state.failed(&api(503, None));
        assert!(matches!(
            state.next(api(503, None), kind, 0.5),
            Next::RetryAfter(_)
        ));
        assert_eq!(
            state.start_attempt(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(state.remaining(), Duration::ZERO);
        let kind = state.failed(&api(503, None));
        let Next::GiveUp(error) = state.next(api(503, None), kind, 0.5) else {
            panic!("the deadline passed on tokio's clock");
        };
        assert!(matches!(
            error.request().unwrap().gave_up,
            Some(GaveUp::Deadline { remaining, .. }) if remaining.is_zero()
        ));
    }

    #[test]
    fn the_deadline_while_waiting_reports_the_failure_being_retried() {
        let policy = RetryPolicy::default();
        let budget = RetryBudget::default();
        let mut nothing_sent = RetryState::new("Op", &policy, &budget);
        let error = nothing_sent.deadline_passed(Duration::from_secs(1));
        assert!(matches!(&error, Error::Deadline { request } if request.operation == "Op"));

        let mut state = RetryState::new("Op", &policy, &budget);
        let kind = state.failed(&api(429, None));
        let _ = state.next(api(429, None), kind, 0.5);
        let wait = Duration::from_millis(700);
        let error = state.deadline_passed(wait);
        assert!(error.is_throttled());
        assert_eq!(
            error.request().unwrap().gave_up,
            Some(GaveUp::Deadline {
                wait,
                remaining: wait
            })
        );
    }
}
