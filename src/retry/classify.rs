//! What an attempt's outcome was, decided once: every rule that cares reads this one answer.
//! The retry decision ([`RetryPolicy`](crate::RetryPolicy)), the budget's price
//! ([`retry_cost`](super::budget::retry_cost)) and the concurrency limiter's [`Lesson`] each
//! follow from the class, as smithy-rs's retry strategy, token bucket and adaptive rate limiter
//! all read one `ErrorKind` (`aws-smithy-types`, `retry.rs`).
//!
//! | outcome | class | retried | budget price | the limiter learns |
//! | --- | --- | --- | --- | --- |
//! | a success | `Success` | | | admitted |
//! | 429, or Twilio error 20429 | `Throttled` | yes, on its own count | none | throttled |
//! | 500, 502, 503, 504; a timeout; a failed or broken connection | `Transient` | yes | 10 | nothing |
//! | the deadline passed while waiting for a slot | `NotSent` | yes | none | nothing |
//! | any other 4xx: an answer about the request | `Rejected` | no | | admitted |
//! | 501 and other statuses, an undecodable body, bad configuration or input | `Permanent` | no | | nothing |
//!
//! Which class an [`Error`](crate::Error) is: `Error::kind`, beside the variants it matches.

use reqwest::StatusCode;

/// The class of one attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutcomeKind {
    /// Twilio accepted the request and answered it.
    Success,
    /// Twilio throttled it: the account had too many requests in flight, and Twilio did not
    /// process this one.
    Throttled,
    /// A fault that may pass: a proxy's or an overloaded server's 5xx, a timeout, a connection.
    Transient,
    /// Nothing was sent: the total deadline passed while the request waited for a slot.
    NotSent,
    /// Twilio's answer about the request itself (a 4xx): it had room to answer.
    Rejected,
    /// Sending the same request again will not fix it.
    Permanent,
}

/// What one attempt's outcome tells the concurrency limiter about the account's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lesson {
    /// Twilio admitted the request and answered it: a 2xx, or a 4xx about the request itself.
    Admitted,
    /// Twilio throttled it: HTTP 429 or error 20429.
    Throttled,
    /// Nothing about the account's load: a fault (a 5xx from a proxy, a timeout, a connection),
    /// or nothing sent.
    Nothing,
}

impl OutcomeKind {
    /// The class of an error status answered with Twilio error `code` (if the body had one).
    pub(crate) fn of_answer(status: StatusCode, code: Option<i64>) -> Self {
        // Twilio's 20429 is a throttle whatever the status it came with.
        if status == StatusCode::TOO_MANY_REQUESTS || code == Some(20429) {
            return OutcomeKind::Throttled;
        }
        match status.as_u16() {
            500 | 502 | 503 | 504 => OutcomeKind::Transient,
            400..=499 => OutcomeKind::Rejected,
            _ => OutcomeKind::Permanent,
        }
    }

    /// Whether sending the same request again may succeed.
    pub(crate) fn is_retried(self) -> bool {
        matches!(
            self,
            OutcomeKind::Throttled | OutcomeKind::Transient | OutcomeKind::NotSent
        )
    }

    /// Whether it counts as a throttle: retried on the throttles' own count, without spending
    /// the attempts.
    pub(crate) fn is_throttled(self) -> bool {
        self == OutcomeKind::Throttled
    }

    /// What the concurrency limiter learns from it.
    pub(crate) fn lesson(self) -> Lesson {
        match self {
            OutcomeKind::Success | OutcomeKind::Rejected => Lesson::Admitted,
            OutcomeKind::Throttled => Lesson::Throttled,
            OutcomeKind::Transient | OutcomeKind::NotSent | OutcomeKind::Permanent => {
                Lesson::Nothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::error::fixtures::{api, connect, request, source, timeout};
    use crate::retry::budget::retry_cost;

    /// The module's table, first half: which class each kind of error is.
    #[test]
    fn each_error_has_its_class() {
        use OutcomeKind::*;
        let decode = Error::Decode {
            request: request(),
            status: StatusCode::CREATED,
            reason: String::new(),
            body_excerpt: String::new(),
        };
        let config = Error::Config(crate::error::ConfigError::new("setting", "reason"));
        let input = Error::InvalidInput(crate::error::InputError::Request("bad".into()));
        let cases = [
            ("429", api(429, None), Throttled),
            ("20429 on a 400", api(400, Some(20429)), Throttled),
            ("20429 on a 503", api(503, Some(20429)), Throttled),
            ("500", api(500, None), Transient),
            ("502", api(502, None), Transient),
            ("503", api(503, None), Transient),
            ("504", api(504, None), Transient),
            ("timeout", timeout(), Transient),
            ("connect", connect(), Transient),
            (
                "transport",
                Error::Transport {
                    request: request(),
                    status: Some(StatusCode::OK),
                    source: source(),
                },
                Transient,
            ),
            ("deadline", Error::Deadline { request: request() }, NotSent),
            ("400", api(400, Some(21220)), Rejected),
            ("401", api(401, None), Rejected),
            ("404", api(404, Some(20404)), Rejected),
            ("499", api(499, None), Rejected),
            ("501", api(501, None), Permanent),
            ("505", api(505, None), Permanent),
            ("302", api(302, None), Permanent),
            ("decode", decode, Permanent),
            ("config", config, Permanent),
            ("input", input, Permanent),
        ];
        for (name, error, kind) in cases {
            assert_eq!(error.kind(), kind, "{name}");
            assert_eq!(error.is_retryable(), kind.is_retried(), "{name}");
            assert_eq!(error.is_throttled(), kind.is_throttled(), "{name}");
        }
    }

    /// The module's table, second half: what each reader makes of each class.
    #[test]
    fn each_class_has_its_consequences() {
        use OutcomeKind::*;
        // (class, retried, on the throttles' count, budget price, lesson)
        let cases = [
            (Success, false, false, None, Lesson::Admitted),
            (Throttled, true, true, None, Lesson::Throttled),
            (Transient, true, false, Some(10), Lesson::Nothing),
            (NotSent, true, false, None, Lesson::Nothing),
            (Rejected, false, false, None, Lesson::Admitted),
            (Permanent, false, false, None, Lesson::Nothing),
        ];
        for (kind, retried, throttle, price, lesson) in cases {
            assert_eq!(kind.is_retried(), retried, "{kind:?}");
            assert_eq!(kind.is_throttled(), throttle, "{kind:?}");
            assert_eq!(retry_cost(kind), price, "{kind:?}");
            assert_eq!(kind.lesson(), lesson, "{kind:?}");
        }
    }
}
