//! Safe retries, every rule in one place: what class an attempt's outcome is ([`classify`]),
//! which outcomes are retried and how long to wait ([`RetryPolicy`], here), what a retry costs
//! the client's budget ([`budget`]), and one call's state between its attempts ([`state`]). The orchestrator's loop only asks
//! ([`state::RetryState`]); it reuses one idempotency key for every attempt.

pub(crate) mod budget;
pub(crate) mod classify;
pub(crate) mod state;

use std::time::Duration;

use crate::error::{Error, GaveUp};
use crate::retry::classify::OutcomeKind;

/// No retry starts with less than this left of the total deadline for the attempt itself.
pub const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);

/// When and how often a failed request is sent again.
///
/// Retried: 429 / 20429 (throttled: Twilio's error page says such requests "aren't processed
/// and are safe to retry after backing off"), 500/502/503/504 (often a proxy), connection
/// failures and timeouts. A retried create after a timeout or a 5xx relies on Twilio treating
/// requests with the same `IdempotencyKey` as one: every attempt carries the same key. Deletes
/// are idempotent by nature. Nothing else is retried: a 4xx is an answer, and an undecodable
/// success was accepted.
///
/// A throttled request does not spend the attempts: it keeps trying, paced by the client's
/// concurrency limit and by backoff or `Retry-After`, until the total deadline
/// ([`retry_throttled`](Self::retry_throttled)). Other retries also need the client's retry
/// budget (each costs 10 of its 500 tokens by default, refunded if the retry succeeds), so
/// that an outage is not multiplied by retries.
///
/// Defaults, and why:
/// - 4 attempts (3 retries) for faults: rides out a proxy restart without holding a caller
///   for long;
/// - full-jitter exponential backoff from 100 ms, each wait capped at 3 s (the figures of
///   Twilio's Node library), so many clients retrying at once spread out;
/// - `Retry-After` (seconds or an HTTP date) is honoured, capped at 10 s; a `Retry-After`
///   longer than what remains of the deadline stops at once;
/// - a total deadline of 60 s: no retry starts unless its wait ends at least
///   [`MIN_ATTEMPT_TIME`] (100 ms) before it, and the last attempt's timeout is cut to what
///   remains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
    pub(crate) total_deadline: Duration,
    retry_throttled: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(10),
            total_deadline: Duration::from_secs(60),
            retry_throttled: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries, not even of a throttled request (the total deadline still
    /// applies).
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            retry_throttled: false,
            ..RetryPolicy::default()
        }
    }

    /// Whether a throttled request (429 / 20429) keeps trying until the total deadline without
    /// spending [`max_attempts`](Self::max_attempts) (default `true`). With `false`, a throttled
    /// attempt counts like any other.
    pub fn retry_throttled(mut self, retry: bool) -> Self {
        self.retry_throttled = retry;
        self
    }

    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff before the first retry; it doubles with each retry, with full jitter.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest backoff between two attempts.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The longest `Retry-After` that is honoured; longer ones are cut to it.
    pub fn max_retry_after(mut self, delay: Duration) -> Self {
        self.max_retry_after = delay;
        self
    }

    /// The time a whole call may take, all attempts and waits included.
    pub fn total_deadline(mut self, deadline: Duration) -> Self {
        self.total_deadline = deadline;
        self
    }

    /// What to do after attempt number `attempt` (from 1) failed with `error`, `elapsed`
    /// after the call started. `jitter` is a random number in `[0, 1)`. Pure: no clock, no
    /// randomness of its own. Total: a `jitter` outside `[0, 1]` is clamped, and NaN counts as 1
    /// (the whole backoff), so a broken random source cannot panic or spin.
    ///
    /// For a throttled error, `attempt` counts the throttled attempts (the backoff grows with
    /// it) and, with [`retry_throttled`](Self::retry_throttled), the attempt cap does not
    /// apply; for any other error it counts the other attempts. Without `retry_throttled`, a
    /// throttled attempt counts like any other: `attempt` counts them all.
    pub fn decide(&self, attempt: u32, error: &Error, elapsed: Duration, jitter: f64) -> Decision {
        match self.next(attempt, error.kind(), error.retry_after(), elapsed, jitter) {
            Ok(wait) => Decision::RetryAfter(wait),
            Err(_) => Decision::Stop,
        }
    }

    /// [`decide`](Self::decide) for a failure of class `kind` that asked to wait `retry_after`,
    /// saying why it stops (`None`: the failure is not retried).
    pub(crate) fn next(
        &self,
        attempt: u32,
        kind: OutcomeKind,
        retry_after: Option<Duration>,
        elapsed: Duration,
        jitter: f64,
    ) -> Result<Duration, Option<GaveUp>> {
        if !kind.is_retried() {
            return Err(None);
        }
        let uncapped = self.retry_throttled && kind.is_throttled();
        if !uncapped && attempt >= self.max_attempts {
            return Err(Some(GaveUp::Attempts));
        }
        let remaining = self.total_deadline.saturating_sub(elapsed);
        let wait = match retry_after {
            // The server says no sooner: if that is past the deadline, stop now.
            Some(after) if after >= remaining => {
                return Err(Some(GaveUp::Deadline {
                    wait: after,
                    remaining,
                }));
            }
            Some(after) => after.min(self.max_retry_after),
            None => {
                let exp = self
                    .base_delay
                    .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
                // `clamp` keeps NaN, and `mul_f64(NaN)` panics.
                let jitter = if jitter.is_nan() {
                    1.0
                } else {
                    jitter.clamp(0.0, 1.0)
                };
                exp.min(self.max_delay).mul_f64(jitter)
            }
        };
        // A retry needs time to wait and then to try: an attempt cut to a sliver of time would
        // only time out, and turn a clear answer (a 429, never processed) into a timeout that
        // may have been processed.
        if wait.saturating_add(MIN_ATTEMPT_TIME) >= remaining {
            return Err(Some(GaveUp::Deadline { wait, remaining }));
        }
        Ok(wait)
    }
}

/// The outcome of [`RetryPolicy::decide`]. Build one in your own tests as
/// `Decision::Stop` or `Decision::RetryAfter(duration)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Give up and report the error.
    Stop,
    /// Wait this long, then send the request again.
    RetryAfter(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::fixtures::{self, timeout};

    fn api(status: u16, retry_after: Option<u64>) -> Error {
        fixtures::api_with(status, None, retry_after.map(Duration::from_secs))
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn decision_table() {
        let p = RetryPolicy::default();
        let cases: Vec<(&str, u32, Error, Duration, f64, Decision)> = vec![
            (
                "429 backs off",
                1,
                api(429, None),
                MS(0),
                0.5,
                Decision::RetryAfter(MS(50)),
            ),
            (
                "429 Retry-After honoured",
                1,
                api(429, Some(2)),
                MS(0),
                0.5,
                Decision::RetryAfter(MS(2000)),
            ),
            (
                "Retry-After capped",
                1,
                api(503, Some(30)),
                MS(0),
                0.5,
                Decision::RetryAfter(MS(10_000)),
            ),
            (
                "Retry-After past the deadline stops at once",
                1,
                api(503, Some(3600)),
                MS(0),
                0.5,
                Decision::Stop,
            ),
            (
                "500",
                2,
                api(500, None),
                MS(0),
                1.0,
                Decision::RetryAfter(MS(200)),
            ),
            (
                "502",
                3,
                api(502, None),
                MS(0),
                1.0,
                Decision::RetryAfter(MS(400)),
            ),
            (
                "503",
                1,
                api(503, None),
                MS(0),
                0.0,
                Decision::RetryAfter(MS(0)),
            ),
            (
                "504",
                1,
                api(504, None),
                MS(0),
                1.0,
                Decision::RetryAfter(MS(100)),
            ),
            (
                "timeout",
                1,
                timeout(),
                MS(0),
                1.0,
                Decision::RetryAfter(MS(100)),
            ),
            (
                "400 is an answer",
                1,
                api(400, None),
                MS(0),
                0.5,
                Decision::Stop,
            ),
            ("401", 1, api(401, None), MS(0), 0.5, Decision::Stop),
            ("403", 1, api(403, None), MS(0), 0.5, Decision::Stop),
            ("404", 1, api(404, None), MS(0), 0.5, Decision::Stop),
            (
                "501 is not transient",
                1,
                api(501, None),
                MS(0),
                0.5,
                Decision::Stop,
            ),
            (
                "attempts exhausted",
                4,
                api(503, None),
                MS(0),
                0.5,
                Decision::Stop,
            ),
            (
                "throttling does not spend attempts",
                9,
                api(429, None),
                MS(0),
                0.5,
                Decision::RetryAfter(MS(1500)),
            ),
            (
                "deadline would be overrun",
                1,
                api(429, Some(5)),
                MS(56_000),
                0.5,
                Decision::Stop,
            ),
            (
                "deadline not overrun",
                1,
                api(429, Some(5)),
                MS(54_000),
                0.5,
                Decision::RetryAfter(MS(5000)),
            ),
            (
                "no time left to try after the wait",
                1,
                api(429, Some(5)),
                MS(54_950),
                0.5,
                Decision::Stop,
            ),
        ];
        for (name, attempt, error, elapsed, jitter, expected) in cases {
            assert_eq!(
                p.decide(attempt, &error, elapsed, jitter),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn backoff_is_capped_and_none_never_retries() {
        let p = RetryPolicy::default().max_attempts(30);
        assert_eq!(
            p.decide(25, &timeout(), MS(0), 1.0),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            RetryPolicy::none().decide(1, &api(429, None), MS(0), 0.5),
            Decision::Stop
        );
        assert_eq!(
            RetryPolicy::default()
                .retry_throttled(false)
                .decide(4, &api(429, None), MS(0), 0.5),
            Decision::Stop
        );
        assert_eq!(RetryPolicy::default().max_attempts(0).max_attempts, 1);
    }

    #[test]
    fn any_jitter_gives_a_wait() {
        let p = RetryPolicy::default();
        for (jitter, wait) in [
            (f64::NAN, MS(100)),
            (f64::INFINITY, MS(100)),
            (2.0, MS(100)),
            (f64::NEG_INFINITY, MS(0)),
            (-0.5, MS(0)),
        ] {
            assert_eq!(
                p.decide(1, &timeout(), MS(0), jitter),
                Decision::RetryAfter(wait),
                "{jitter}"
            );
        }
    }
}
