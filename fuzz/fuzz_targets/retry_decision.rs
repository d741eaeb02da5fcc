//! `RetryPolicy::decide` under arbitrary policies, outcomes, attempt numbers and clocks:
//! - a non-retryable outcome is never retried;
//! - no retry starts later than the total deadline minus `MIN_ATTEMPT_TIME`;
//! - a `Retry-After` is waited out, capped at `max_retry_after`, and one at or past what remains
//!   of the deadline stops at once;
//! - without `Retry-After`, a wait never exceeds `max_delay`;
//! - only a throttled outcome (with `retry_throttled`) is retried past `max_attempts`;
//! - any jitter, NaN included, gives a decision (no panic).
#![no_main]
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::__private::{api_error_with_retry_after, deadline_error};
use twilio_call_messages::{Decision, MIN_ATTEMPT_TIME, RetryPolicy};

#[derive(Arbitrary, Debug)]
struct Input {
    max_attempts: u32,
    base_delay_ms: u32,
    max_delay_ms: u32,
    max_retry_after_ms: u32,
    total_deadline_ms: u32,
    retry_throttled: bool,
    outcome: Outcome,
    attempt: u32,
    elapsed_ms: u32,
    jitter: Jitter,
}

#[derive(Arbitrary, Debug)]
enum Jitter {
    /// Mapped into `[0, 1)`, the documented range.
    Documented(u16),
    /// Any float, NaN and infinities included: `decide` is total.
    Raw(f64),
}

#[derive(Arbitrary, Debug)]
enum Outcome {
    Answer {
        status: u16,
        body: Vec<u8>,
        retry_after_ms: Option<u32>,
    },
    Deadline,
}

fn ms(n: u32) -> Duration {
    Duration::from_millis(u64::from(n))
}

fuzz_target!(|input: Input| {
    let policy = RetryPolicy::default()
        .max_attempts(input.max_attempts)
        .base_delay(ms(input.base_delay_ms))
        .max_delay(ms(input.max_delay_ms))
        .max_retry_after(ms(input.max_retry_after_ms))
        .total_deadline(ms(input.total_deadline_ms))
        .retry_throttled(input.retry_throttled);
    let error = match input.outcome {
        Outcome::Answer {
            status,
            body,
            retry_after_ms,
        } => api_error_with_retry_after(100 + status % 500, &body, retry_after_ms.map(ms)),
        Outcome::Deadline => deadline_error(),
    };
    let elapsed = ms(input.elapsed_ms);
    let deadline = ms(input.total_deadline_ms);
    let jitter = match input.jitter {
        Jitter::Documented(n) => f64::from(n) / 65_536.0,
        Jitter::Raw(x) => x,
    };
    let decision = policy.decide(input.attempt, &error, elapsed, jitter);
    if !error.is_retryable() {
        assert_eq!(decision, Decision::Stop, "retried {error:?}");
    }
    if error
        .retry_after()
        .is_some_and(|after| after >= deadline.saturating_sub(elapsed))
    {
        assert_eq!(decision, Decision::Stop, "Retry-After past the deadline");
    }
    let Decision::RetryAfter(wait) = decision else {
        return;
    };
    assert!(
        elapsed + wait + MIN_ATTEMPT_TIME < deadline,
        "a retry at {:?} leaves less than MIN_ATTEMPT_TIME of {deadline:?}",
        elapsed + wait
    );
    match error.retry_after() {
        Some(after) => {
            assert_eq!(wait, after.min(ms(input.max_retry_after_ms)), "{after:?}");
        }
        None => assert!(wait <= ms(input.max_delay_ms), "{wait:?}"),
    }
    let max_attempts = input.max_attempts.max(1);
    if input.attempt >= max_attempts {
        assert!(
            input.retry_throttled && error.is_throttled(),
            "attempt {} of {max_attempts} retried: {error:?}",
            input.attempt
        );
    }
});
