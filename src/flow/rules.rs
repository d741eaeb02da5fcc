//! The adaptive limit's rules: how the limit starts, grows, is cut by a throttle, climbs back,
//! and heeds `Twilio-Concurrent-Requests`. Pure: an [`AdaptiveLimit`] is plain data, each
//! answer is reported as plain data ([`Answer`]), and no lock, task or clock is involved (the
//! only clock is the admission order, which the caller numbers and passes in). The limiter
//! (`limiter.rs`) applies these rules under its lock, the simulation (`sim.rs`) in a model;
//! a state kept elsewhere (copied in, reported to, copied out) obeys the same rules.
//!
//! They are TCP's congestion window applied to an account's concurrency limit (RFC 5681 slow
//! start and congestion avoidance; RFC 6582's one reduction per window):
//! - **slow start**: until the first cut, every success adds [`SLOW_START_GROWTH`] = 3, so the
//!   limit quadruples each round trip (TCP's doubles). TCP doubles because overshooting a link
//!   loses a window of packets; a request beyond the account's limit is answered 429 at once
//!   and not processed, so overshooting costs one quick answer and a retry per extra request,
//!   while every round trip below the account's limit leaves part of it idle;
//! - **congestion avoidance**: afterwards every success adds `(cut_from - limit) / limit`,
//!   where `cut_from` is the limit the last cut came from (RFC 9438's `W_max`), and at least
//!   `1/limit`. The limit climbs back toward where the account last refused, most of the way
//!   in a few round trips (each round trip of successes closes about 63% of the gap), then
//!   grows about +1 per round trip to probe for room: CUBIC's concave region, counted in
//!   successes instead of time;
//! - **multiplicative decrease**: a throttled request (429 / 20429) multiplies the limit by
//!   [`BETA`] = 0.8, at most once per window: a throttle of a request admitted before the last
//!   cut says nothing new (it was sent under the old, larger limit);
//! - **only a used limit grows**: a success grows the limit only if at least half of it was in
//!   use while the request was in flight, or requests are waiting for a slot (Netflix
//!   concurrency-limits' `AIMDLimit`, RFC 7661's "cwnd-limited"), so a client sending one
//!   request at a time does not build up a limit it never tested;
//! - **`Twilio-Concurrent-Requests`**: Twilio says to watch this header but not exactly what it
//!   counts (Twilio does not document it; it is read here as the account's requests in
//!   flight). Its value on a throttled answer is taken as the account's capacity. A success
//!   whose header says the account was already that full does not grow the limit, and trims it
//!   by [`MARK_BETA`] = 0.95 once per window: the early warning of the next 429, as ECN and
//!   DECbit are for TCP. The trim only starts once a success has reported less than the
//!   capacity, so a header that means something else (a constant, say) can hold the limit but
//!   never wear it down.
//!
//! Why multiplicative decrease: additive increase with multiplicative decrease is the rule
//! under which independent senders sharing one capacity converge to equal shares (Chiu and
//! Jain, 1989), which is what several processes sharing one account need without talking to
//! each other. The climb back keeps that: a client above its share tends to be throttled
//! again before it is back, and the lower `cut_from` is where it climbs back to next.

use crate::retry::classify::Lesson;

/// The factor a throttle multiplies the adaptive limit by. Gentler than CUBIC's and the AWS
/// SDKs' 0.7, because a throttle costs one quick retry while a limit below the account's idles
/// it; not Netflix's 0.9, which throttles far more often where clients share an account. The
/// model's figures for all three: BENCHMARKS.md, "Why the decrease factor is 0.8".
pub(crate) const BETA: f64 = 0.8;

/// The factor a success that found the account full multiplies the adaptive limit by.
pub(crate) const MARK_BETA: f64 = 0.95;

/// What a success adds to the adaptive limit in slow start: the limit quadruples every round
/// trip.
pub(crate) const SLOW_START_GROWTH: f64 = 3.0;

/// The adaptive limit: everything the rules remember, as plain data (copy it in, report to it,
/// copy it out).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdaptiveLimit {
    /// The limit never grows above this.
    max: usize,
    /// The limit with its fraction (congestion avoidance adds `1/limit`).
    window: f64,
    /// Slow start below this, congestion avoidance above (RFC 5681's `ssthresh`).
    slow_start_threshold: f64,
    /// The window when it was last cut: where the account last refused (RFC 9438's `W_max`);
    /// 0 before the first cut.
    cut_from: f64,
    /// Answers to requests numbered below this were sent before the last cut.
    recover: u64,
    /// The account's capacity according to `Twilio-Concurrent-Requests` on a throttled answer.
    capacity_hint: Option<u32>,
    /// A success reported fewer requests than `capacity_hint`: the header tracks the load.
    header_varies: bool,
}

/// One answer, as the caller's bookkeeping saw it: what the rules learn from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Answer {
    /// The request's number in admission order.
    pub(crate) seq: u64,
    /// The number the next admitted request will get: the admission order's "now".
    pub(crate) next_seq: u64,
    /// Requests in flight just after this one was admitted, this one included.
    pub(crate) in_flight_at_send: usize,
    /// Requests in flight when its answer came, this one included.
    pub(crate) in_flight_at_answer: usize,
    /// Requests waiting for a slot when its answer came.
    pub(crate) waiting: usize,
    /// The answer's `Twilio-Concurrent-Requests`, if it had one.
    pub(crate) concurrent_requests: Option<u32>,
}

/// What an answer did to the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The window is as it was (what the rules remember about the header may have changed).
    Kept,
    /// The window grew (its whole part, [`AdaptiveLimit::limit`], may be the same).
    Grew,
    /// The window was cut, by a throttle or a full account.
    Cut,
}

impl AdaptiveLimit {
    /// The limit before anything is learned: `initial` (at least 1), never above `max` (at
    /// least `initial`).
    pub(crate) fn new(initial: usize, max: usize) -> Self {
        let initial = initial.max(1);
        let max = max.max(initial);
        AdaptiveLimit {
            max,
            window: initial as f64,
            slow_start_threshold: max as f64,
            cut_from: 0.0,
            recover: 0,
            capacity_hint: None,
            header_varies: false,
        }
    }

    /// Requests allowed in flight at once: the window's whole part, within `1..=max`.
    pub(crate) fn limit(&self) -> usize {
        (self.window as usize).clamp(1, self.max)
    }

    /// Applies what an answer taught, as the retry rules classify it.
    pub(crate) fn learn(&mut self, lesson: Lesson, answer: Answer) -> Change {
        match lesson {
            Lesson::Admitted => self.on_admitted(answer),
            Lesson::Throttled => self.on_throttled(answer),
            Lesson::Nothing => Change::Kept,
        }
    }

    /// Twilio admitted the request and answered it.
    pub(crate) fn on_admitted(&mut self, answer: Answer) -> Change {
        let account_full = match answer.concurrent_requests.zip(self.capacity_hint) {
            Some((now, capacity)) if now >= capacity => true,
            Some(_) => {
                self.header_varies = true;
                false
            }
            None => false,
        };
        if account_full {
            // The account was at its limit when it admitted this request: the early warning
            // of the next 429. A gentle cut, once per window, keeps shares converging without
            // 429s; only when the header is seen to move, so that a header meaning something
            // else cannot wear the limit down.
            if self.header_varies && answer.seq >= self.recover {
                self.cut(MARK_BETA, answer.next_seq);
                return Change::Cut;
            }
            return Change::Kept;
        }
        // Requests waiting for a slot use the whole limit, even when the slots just handed to
        // them are not yet counted in flight: a round trip's answers arrive together, before
        // the waiters' tasks run, and judged by requests in flight alone most of them found
        // the limit "unused" (slow start from 10 grew to 19 per round trip, not 40).
        let peak = answer.in_flight_at_send.max(answer.in_flight_at_answer);
        let in_use = peak * 2 >= self.limit() || answer.waiting > 0;
        if !in_use {
            return Change::Kept;
        }
        self.window += if self.window < self.slow_start_threshold {
            SLOW_START_GROWTH
        } else {
            ((self.cut_from - self.window) / self.window).max(1.0 / self.window)
        };
        self.window = self.window.min(self.max as f64);
        Change::Grew
    }

    /// Twilio throttled the request (429 / 20429).
    pub(crate) fn on_throttled(&mut self, answer: Answer) -> Change {
        // 0 names no capacity: as a hint, every later success would "reach" it.
        if let Some(capacity) = answer.concurrent_requests.filter(|&c| c > 0) {
            self.capacity_hint = Some(capacity);
        }
        if answer.seq < self.recover {
            return Change::Kept; // sent under the limit already cut
        }
        self.cut(BETA, answer.next_seq);
        Change::Cut
    }

    fn cut(&mut self, factor: f64, next_seq: u64) {
        self.cut_from = self.window;
        self.window = (self.window * factor).max(1.0);
        self.slow_start_threshold = self.window;
        self.recover = next_seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer to request `seq` of a limit in full use, `next_seq` admitted so far.
    fn answer(seq: u64, next_seq: u64, concurrent_requests: Option<u32>) -> Answer {
        Answer {
            seq,
            next_seq,
            in_flight_at_send: 100,
            in_flight_at_answer: 100,
            waiting: 0,
            concurrent_requests,
        }
    }

    #[test]
    fn the_rules_are_plain_data_in_and_out() {
        let mut here = AdaptiveLimit::new(20, 100);
        let mut elsewhere = here; // a state kept somewhere else, the same rules applied
        for limit in [&mut here, &mut elsewhere] {
            assert_eq!(limit.on_throttled(answer(5, 20, None)), Change::Cut);
        }
        assert_eq!(here, elsewhere);
        assert_eq!(here.limit(), 16);
        // Requests 0..20 were sent before the cut: their throttles say nothing new.
        assert_eq!(here.on_throttled(answer(19, 20, None)), Change::Kept);
        assert_eq!(here.on_throttled(answer(20, 21, None)), Change::Cut);
        assert_eq!(here.limit(), 12, "16 × 0.8 = 12.8");
    }

    #[test]
    fn slow_start_adds_three_and_a_cut_ends_it() {
        let mut l = AdaptiveLimit::new(10, 100);
        assert_eq!(l.on_admitted(answer(0, 10, None)), Change::Grew);
        assert_eq!(l.limit(), 13);
        l.on_throttled(answer(1, 11, None)); // 13 → 10.4: congestion avoidance
        l.on_admitted(answer(11, 12, None));
        // Back toward 13 by (13 - 10.4) / 10.4 = 0.25.
        assert!((l.window - 10.65).abs() < 1e-9, "{l:?}");
        assert_eq!(l.limit(), 10);
    }

    #[test]
    fn an_unused_limit_is_kept_and_waiters_count_as_use() {
        let mut l = AdaptiveLimit::new(10, 100);
        let alone = Answer {
            in_flight_at_send: 1,
            in_flight_at_answer: 4,
            ..answer(0, 1, None)
        };
        assert_eq!(l.on_admitted(alone), Change::Kept);
        let waited_for = Answer {
            waiting: 1,
            ..alone
        };
        assert_eq!(l.on_admitted(waited_for), Change::Grew);
        let under_half = Answer {
            in_flight_at_send: 6,
            ..alone
        };
        assert_eq!(l.on_admitted(under_half), Change::Kept, "6 of 13");
        let half = Answer {
            in_flight_at_send: 7,
            ..alone
        };
        assert_eq!(l.on_admitted(half), Change::Grew, "7 of 13");
        assert_eq!(l.limit(), 16);
        assert_eq!(l.learn(Lesson::Nothing, half), Change::Kept);
        assert_eq!(l.limit(), 16);
    }

    #[test]
    fn a_full_account_is_trimmed_only_once_the_header_has_moved() {
        let mut l = AdaptiveLimit::new(10, 100);
        l.on_throttled(answer(0, 10, Some(12))); // capacity 12, limit 8
        assert_eq!(l.on_admitted(answer(10, 20, Some(12))), Change::Kept);
        assert_eq!(l.limit(), 8, "a header that never moved holds the limit");
        assert_eq!(l.on_admitted(answer(11, 20, Some(9))), Change::Grew);
        assert_eq!(l.on_admitted(answer(12, 20, Some(12))), Change::Cut);
        assert_eq!(
            l.on_admitted(answer(13, 20, Some(12))),
            Change::Kept,
            "once per window"
        );
    }

    #[test]
    fn bounds_hold() {
        let mut l = AdaptiveLimit::new(0, 0);
        assert_eq!(l.limit(), 1);
        for seq in 0..10 {
            l.on_throttled(answer(seq, seq + 1, None));
        }
        assert_eq!(l.limit(), 1);
        let mut l = AdaptiveLimit::new(1, 2);
        l.on_admitted(answer(0, 1, None));
        assert_eq!(l.limit(), 2, "4, capped at the max");
    }
}
