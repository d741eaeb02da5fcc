//! The client's concurrency limiter under an arbitrary sequence of acquires and outcomes
//! (success, throttled, ignored, dropped; any `Twilio-Concurrent-Requests`):
//! - a permit is granted only while fewer than the current limit are held, and never more than
//!   the setting's maximum are held;
//! - the limit stays within 1..=max (fixed: never moves; off: no limit, always granted);
//! - never stuck: with nothing held a permit is always granted, and once everything is
//!   returned exactly `limit` permits can be taken at once.
#![no_main]
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::__private::{LimiterHarness, LimiterOutcome};
use twilio_call_messages::ConcurrencyLimit;

#[derive(Arbitrary, Debug)]
struct Input {
    setting: Setting,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Setting {
    Adaptive { initial: u8, max: u8 },
    Fixed(u8),
    Off,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Acquire,
    Success(u8, Option<u32>),
    Throttled(u8, Option<u32>),
    Ignored(u8),
    Dropped(u8),
}

fuzz_target!(|input: Input| {
    let setting = match input.setting {
        Setting::Adaptive { initial, max } => ConcurrencyLimit::Adaptive {
            initial: usize::from(initial),
            max: usize::from(max),
        },
        Setting::Fixed(n) => ConcurrencyLimit::Fixed(usize::from(n)),
        Setting::Off => ConcurrencyLimit::Off,
    };
    let max = match setting {
        ConcurrencyLimit::Adaptive { initial, max } => Some(max.max(initial).max(1)),
        ConcurrencyLimit::Fixed(n) => Some(n.max(1)),
        _ => None,
    };
    let mut limiter = LimiterHarness::new(setting);
    let initial_limit = limiter.stats().limit;
    for op in input.ops.into_iter().take(2_000) {
        let before = limiter.stats();
        match op {
            Op::Acquire => {
                let held = limiter.held();
                let granted = limiter.try_acquire();
                match before.limit {
                    Some(limit) => {
                        assert_eq!(granted, held < limit, "held {held}, limit {limit}");
                    }
                    None => assert!(granted),
                }
            }
            Op::Success(i, c) => limiter.report(usize::from(i), LimiterOutcome::Success(c)),
            Op::Throttled(i, c) => limiter.report(usize::from(i), LimiterOutcome::Throttled(c)),
            Op::Ignored(i) => limiter.report(usize::from(i), LimiterOutcome::Ignored),
            Op::Dropped(i) => limiter.report(usize::from(i), LimiterOutcome::Dropped),
        }
        let stats = limiter.stats();
        assert_eq!(stats.in_flight, limiter.held());
        if let (Some(limit), Some(max)) = (stats.limit, max) {
            assert!(
                (1..=max).contains(&limit),
                "limit {limit} outside 1..={max}"
            );
            assert!(limiter.held() <= max);
        }
        if matches!(setting, ConcurrencyLimit::Fixed(_) | ConcurrencyLimit::Off) {
            assert_eq!(stats.limit, initial_limit);
        }
    }
    // Return everything without teaching anything, then take all that is free.
    while limiter.held() > 0 {
        limiter.report(0, LimiterOutcome::Ignored);
    }
    let limit = limiter.stats().limit;
    let cap = limit.unwrap_or(64);
    let mut granted = 0;
    while granted <= cap && limiter.try_acquire() {
        granted += 1;
    }
    match limit {
        Some(limit) => assert_eq!(granted, limit, "stuck: {granted} of {limit} free"),
        None => assert_eq!(granted, cap + 1),
    }
});
