//! One call's retry state (`retry::state::RetryState`, the questions the orchestrator asks
//! after each attempt) through an arbitrary sequence of failures and a success, with the
//! client's retry budget:
//! - a non-retryable failure ends the call at once, saying no reason to give up;
//! - no retry starts later than the total deadline minus `MIN_ATTEMPT_TIME`;
//! - the idempotency key on the error the call ends with is the one its attempts carried;
//! - the attempt caps hold: fault retries within `max_attempts`, and with
//!   `retry_throttled(false)` every attempt counts ("a throttled attempt counts like any other");
//! - the budget's tokens are exactly its rules: a retry of a 5xx pays 10, a throttled one or a
//!   deadline nothing; a call that succeeds gets the last payment back, or adds 1 if it needed
//!   no retry of a fault; never above the capacity; a retry the budget cannot pay gives up.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::__private::{
    RetryStep, api_error_with_retry_after, deadline_error, retry_sequence, set_idempotency_key,
};
use twilio_call_messages::{Error, GaveUp, MIN_ATTEMPT_TIME, RetryPolicy};

#[derive(Arbitrary, Debug)]
struct Input {
    max_attempts: u8,
    base_delay_ms: u16,
    max_delay_ms: u16,
    max_retry_after_ms: u16,
    total_deadline_ms: u32,
    retry_throttled: bool,
    budget: Option<u16>,
    key: String,
    attempts: Vec<Option<Failure>>,
}

#[derive(Arbitrary, Debug)]
struct Failure {
    outcome: Outcome,
    jitter: u16,
}

#[derive(Arbitrary, Debug)]
enum Outcome {
    /// Statuses that matter most, and any other.
    Status(Status, Option<u16>),
    Answer(u16, Vec<u8>, Option<u16>),
    Deadline,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Status {
    S429,
    S500,
    S503,
    S400,
    S404,
    Code20429,
}

fn ms(n: impl Into<u64>) -> Duration {
    Duration::from_millis(n.into())
}

fn error(outcome: &Outcome, key: &str) -> Error {
    let mut error = match outcome {
        Outcome::Status(status, retry_after) => {
            let (code, body): (u16, &[u8]) = match status {
                Status::S429 => (429, b""),
                Status::S500 => (500, b""),
                Status::S503 => (503, b""),
                Status::S400 => (400, br#"{"code":21220,"message":"not in progress"}"#),
                Status::S404 => (404, b""),
                Status::Code20429 => (400, br#"{"code":20429,"message":"Too Many Requests"}"#),
            };
            api_error_with_retry_after(code, body, retry_after.map(ms))
        }
        Outcome::Answer(status, body, retry_after) => {
            api_error_with_retry_after(100 + status % 500, body, retry_after.map(ms))
        }
        Outcome::Deadline => deadline_error(),
    };
    set_idempotency_key(&mut error, key);
    error
}

/// What a retry after `error` takes from the budget (the price table of `retry::budget`).
fn price(error: &Error) -> usize {
    match error {
        _ if error.is_throttled() => 0,
        Error::Api(api) if matches!(api.status.as_u16(), 500 | 502 | 503 | 504) => 10,
        _ => 0,
    }
}

fuzz_target!(|input: Input| {
    let deadline = ms(input.total_deadline_ms % 120_000);
    let policy = RetryPolicy::default()
        .max_attempts(u32::from(input.max_attempts % 8))
        .base_delay(ms(input.base_delay_ms))
        .max_delay(ms(input.max_delay_ms))
        .max_retry_after(ms(input.max_retry_after_ms))
        .total_deadline(deadline)
        .retry_throttled(input.retry_throttled);
    let max_attempts = u32::from(input.max_attempts % 8).max(1);
    let capacity = input.budget.map(usize::from);
    let attempts: Vec<Option<(Error, f64)>> = input
        .attempts
        .iter()
        .take(64)
        .map(|a| {
            a.as_ref().map(|f| {
                (
                    error(&f.outcome, &input.key),
                    f64::from(f.jitter) / 65_536.0,
                )
            })
        })
        .collect();
    let mirror: Vec<Option<Error>> = input
        .attempts
        .iter()
        .take(64)
        .map(|a| a.as_ref().map(|f| error(&f.outcome, &input.key)))
        .collect();
    let (steps, left) = retry_sequence(&policy, capacity, attempts);

    // The model: the budget's tokens, and the retries granted so far.
    let mut tokens = capacity;
    let mut paid = false;
    let (mut faults, mut fault_retries, mut throttle_retries) = (0u32, 0u32, 0u32);
    assert!(steps.len() <= mirror.len());
    for (step, attempt) in steps.iter().zip(&mirror) {
        match (step, attempt) {
            (RetryStep::Succeeded, None) => {
                if let (Some(t), Some(cap)) = (tokens.as_mut(), capacity) {
                    if paid {
                        *t = (*t + 10).min(cap);
                    } else if faults == 0 {
                        *t = (*t + 1).min(cap);
                    }
                }
            }
            (RetryStep::RetryAfter(wait), Some(error)) => {
                assert!(error.is_retryable(), "retried {error:?}");
                assert!(
                    *wait + MIN_ATTEMPT_TIME < deadline,
                    "a retry after {wait:?} leaves less than MIN_ATTEMPT_TIME of {deadline:?}"
                );
                if error.is_throttled() {
                    throttle_retries += 1;
                } else {
                    faults += 1;
                    fault_retries += 1;
                    let cost = price(error);
                    if cost > 0 {
                        if let Some(t) = tokens.as_mut() {
                            assert!(*t >= cost, "a retry the budget could not pay");
                            *t -= cost;
                        }
                        paid = true;
                    }
                }
                assert!(
                    fault_retries < max_attempts,
                    "{fault_retries} fault retries"
                );
                if !input.retry_throttled {
                    assert!(
                        fault_retries + throttle_retries < max_attempts,
                        "{} attempts with max_attempts {max_attempts} and retry_throttled(false)",
                        fault_retries + throttle_retries + 1
                    );
                }
            }
            (RetryStep::GaveUp(given_up), Some(error)) => {
                let request = given_up.request().expect("an answer or a deadline");
                assert_eq!(request.idempotency_key.as_deref(), Some(input.key.as_str()));
                if !error.is_retryable() {
                    assert_eq!(request.gave_up, None, "{error:?}");
                }
                if request.gave_up == Some(GaveUp::RetryBudget) {
                    assert!(price(error) > 0 && tokens.is_some_and(|t| t < price(error)));
                }
                if !error.is_throttled() {
                    faults += 1;
                }
            }
            (step, attempt) => panic!("step {step:?} for attempt {attempt:?}"),
        }
    }
    assert_eq!(left, tokens, "the budget's tokens");
    if let (Some(left), Some(cap)) = (left, capacity) {
        assert!(left <= cap);
    }
});
