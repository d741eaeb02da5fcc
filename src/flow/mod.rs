//! Flow control at the account's limit: a client-wide adaptive concurrency limit. It knows
//! nothing about HTTP; the request path reports what each attempt taught it.
//!
//! Why: Twilio limits how many REST requests an account may have in flight at once and answers
//! the excess with HTTP 429 / error 20429: "Requests that receive 429 responses aren't
//! processed and are safe to retry after backing off" (twilio.com/docs/api/errors/20429). The limit is per account, shared by
//! every process using its credentials, and its value is not published per account. So the
//! client learns it, the way TCP learns a link's capacity: it waits for a permit instead of
//! sending into a 429 ([`limiter`]: the slots), under a limit that grows and shrinks by TCP's
//! rules ([`rules`]: pure, no lock and no clock). Keeping an outage from being multiplied by
//! retries is the retry rules' job (the retry budget, `src/retry/budget.rs`).
//!
//! The orchestrator (`src/orchestrator.rs`) takes a permit before every attempt and reports
//! each outcome to it, as the retry rules classify it
//! ([`Lesson`](crate::retry::classify::Lesson)).

pub(crate) mod limiter;
pub(crate) mod rules;
#[cfg(test)]
mod sim;

/// The starting limit of [`ConcurrencyLimit::Adaptive`] by default.
///
/// Netflix's concurrency-limits starts its AIMD limit at 10; slow start quadruples it every
/// round trip until the first 429, so an account that allows 100 is reached in two round trips.
pub const DEFAULT_INITIAL_CONCURRENCY: usize = 10;

/// The largest limit [`ConcurrencyLimit::Adaptive`] grows to by default.
///
/// 100 is the per-account REST concurrency that third-party summaries of Twilio's limits give
/// for a default account. Twilio does not document the value: only that the limit exists and
/// that 429 / 20429 enforces it. Growing past the account's limit only earns 429s, so a
/// higher cap helps only an account whose limit Twilio raised: set it to that limit.
pub const DEFAULT_MAX_CONCURRENCY: usize = 100;

/// How many requests one [`Client`](crate::Client) (all its clones, every operation) keeps in
/// flight to Twilio at once.
///
/// ```
/// use twilio_call_messages::ConcurrencyLimit;
///
/// // The default: learn the account's limit, starting at 10, never above 100.
/// assert_eq!(
///     ConcurrencyLimit::default(),
///     ConcurrencyLimit::Adaptive { initial: 10, max: 100 }
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcurrencyLimit {
    /// Learn the limit from Twilio's answers (the default): shrink it multiplicatively when a
    /// request is throttled (429 / 20429), grow it back while requests succeed, and stop growing
    /// while Twilio's `Twilio-Concurrent-Requests` header says the account is full. Several
    /// processes sharing an account converge to about equal shares of its limit without
    /// talking to each other, as TCP flows share a link.
    Adaptive {
        /// The limit before anything is learned (at least 1).
        initial: usize,
        /// The limit never grows above this (at least `initial`).
        max: usize,
    },
    /// Exactly this many requests in flight at once (at least 1), whatever Twilio answers:
    /// for an account whose limit is known and used by this process alone.
    Fixed(usize),
    /// No client-side limit: every request is sent at once (throttled ones are still
    /// counted in [`FlowStats::throttled`]).
    Off,
}

impl Default for ConcurrencyLimit {
    fn default() -> Self {
        ConcurrencyLimit::Adaptive {
            initial: DEFAULT_INITIAL_CONCURRENCY,
            max: DEFAULT_MAX_CONCURRENCY,
        }
    }
}

impl ConcurrencyLimit {
    /// The same setting with every bound at least 1 and `max >= initial`.
    pub(crate) fn normalized(self) -> Self {
        match self {
            ConcurrencyLimit::Adaptive { initial, max } => {
                let initial = initial.max(1);
                ConcurrencyLimit::Adaptive {
                    initial,
                    max: max.max(initial),
                }
            }
            ConcurrencyLimit::Fixed(n) => ConcurrencyLimit::Fixed(n.max(1)),
            ConcurrencyLimit::Off => ConcurrencyLimit::Off,
        }
    }
}

/// A snapshot of a client's flow control, from [`Client`](crate::Client)'s stats.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowStats {
    /// Requests allowed in flight at once now; `None` when the limit is
    /// [`ConcurrencyLimit::Off`].
    pub limit: Option<usize>,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Requests waiting for a slot now.
    pub waiting: usize,
    /// Attempts Twilio throttled (429 / 20429) since the client was built.
    pub throttled: u64,
    /// Times the adaptive limit was cut since the client was built.
    pub decreases: u64,
    /// Tokens left in the retry budget; `None` when the budget is unlimited.
    pub retry_tokens: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_normalized() {
        assert_eq!(
            ConcurrencyLimit::Adaptive { initial: 0, max: 0 }.normalized(),
            ConcurrencyLimit::Adaptive { initial: 1, max: 1 }
        );
        assert_eq!(
            ConcurrencyLimit::Adaptive {
                initial: 50,
                max: 8
            }
            .normalized(),
            ConcurrencyLimit::Adaptive {
                initial: 50,
                max: 50
            }
        );
        assert_eq!(
            ConcurrencyLimit::Fixed(0).normalized(),
            ConcurrencyLimit::Fixed(1)
        );
        assert_eq!(ConcurrencyLimit::Off.normalized(), ConcurrencyLimit::Off);
    }
}
