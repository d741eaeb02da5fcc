//! The REST account: what it counts, its concurrency limit, the idempotency keys of its
//! creates, and the requests it refused, kept as what went wrong (`rest.rs` says how Twilio
//! answers each).

use std::sync::MutexGuard;
use std::time::Instant;

use serde::Serialize;
use twilio_call_messages::{CallSid, MessageSid, SubscriptionSid};

use super::{Model, State};
use crate::settings::{CallStatus, FaultKind};

/// How many refused REST requests are kept for the page and the control API.
const REFUSED_KEPT: usize = 500;

/// What the REST API saw, for tests that count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// REST requests received, whatever the answer.
    pub requests: u64,
    /// 2xx answers (replays included).
    pub succeeded: u64,
    /// 4xx answers other than 429 (authentication, not found, validation).
    pub rejected: u64,
    /// 429 / 20429 answers of the concurrency limit (the request was not processed).
    pub throttled: u64,
    /// Requests that met an injected fault (of any kind).
    pub faults: u64,
    /// The most requests in flight at once (inside the limit).
    pub peak_in_flight: usize,
    /// Requests answered from an earlier one with the same `IdempotencyKey`.
    pub replays: u64,
    /// Messages Twilio accepted (each recorded once, received by the client or dropped).
    pub messages: u64,
}

/// What the REST API refused: what the request did wrong, or what the account would not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No credentials, or not the account's: HTTP Basic with `AccountSid:AuthToken`, or
    /// `ApiKeySid:Secret` of one of its keys.
    BadCredentials,
    /// Valid credentials on another account's path.
    OtherAccount,
    /// No resource at this path.
    NoResource,
    /// The call in the path does not exist.
    CallNotFound,
    /// The call has no subscription with the SID in the path.
    SubscriptionNotFound,
    /// The resource exists but not with this method.
    MethodNotAllowed,
    /// A required parameter is missing.
    MissingParameter(&'static str),
    /// A query parameter is not what it must be (`PageSize` not a positive number, …).
    InvalidParameter(&'static str),
    /// `Content` is not JSON text.
    ContentNotJson,
    /// `Content` has this many characters, more than
    /// [`MAX_CONTENT_CHARS`](super::MAX_CONTENT_CHARS).
    ContentTooLong(usize),
    /// `Callback` is not a URL Twilio calls back: why, in words ("has no host").
    InvalidCallback(String),
    /// `Method` is neither GET nor POST.
    InvalidMethod,
    /// The call is not in progress (nor ringing): its status.
    CallNotActive(CallStatus),
    /// Beyond the account's concurrency limit: not processed.
    Throttled,
}

/// Why a REST request got no 2xx: the API refused it, or it met a fault on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The API's refusal.
    Refused(Refusal),
    /// A fault, instead of the API's answer.
    Fault(FaultKind),
    /// The API's refusal, half sent and then reset (the `truncated-after` fault).
    Cut(Refusal),
}

/// A refused REST request, as the state keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Refused {
    /// `POST`, `DELETE`, …
    pub method: String,
    /// The path requested.
    pub path: String,
    /// The call in the path, if any.
    pub call_sid: Option<CallSid>,
    pub failure: Failure,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// The creates of the REST API, each with its own idempotency keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Operation {
    /// `POST …/Calls/{CallSid}/UserDefinedMessages.json`
    Message,
    /// `POST …/Calls/{CallSid}/UserDefinedMessageSubscriptions.json`
    Subscription,
}

/// What a create made: the resource's fields (its answer, and a replay's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Created {
    Message {
        call: CallSid,
        sid: MessageSid,
        date_created: String,
    },
    Subscription {
        call: CallSid,
        sid: SubscriptionSid,
        date_created: String,
    },
}

/// What a repeated key gets: the first result, while the window lasts.
pub(super) struct Stored {
    at: Instant,
    created: Created,
}

/// A create on a call, from the replay check to the record, under one lock: two requests with
/// the same key at once (a client's retry racing its first attempt) record one.
pub(super) struct Create<'a> {
    model: &'a Model,
    state: MutexGuard<'a, State>,
    operation: Operation,
    call: CallSid,
    pub key: Option<&'a str>,
}

/// A create opened: new, or the first result of its key.
pub(super) enum Opened<'a> {
    New(Create<'a>),
    Replay(Created),
}

impl Create<'_> {
    pub fn state(&mut self) -> &mut State {
        &mut self.state
    }

    /// The call must be `in-progress` or `ringing` (21220).
    pub fn check_active(&self) -> Result<(), Refusal> {
        match self.state.calls.get(&self.call) {
            None => Err(Refusal::CallNotFound),
            Some(found) if !found.info.status.is_active() => {
                Err(Refusal::CallNotActive(found.info.status))
            }
            Some(_) => Ok(()),
        }
    }

    /// Keeps the result for the key (only what was created is kept: a refused request can be
    /// retried with its key and processed then).
    pub fn finish(mut self, created: Created) -> Created {
        if let Some(key) = self.key {
            self.state.idempotency.insert(
                (self.operation, self.call, key.to_owned()),
                Stored {
                    at: Instant::now(),
                    created: created.clone(),
                },
            );
        }
        self.model.changed(&mut self.state);
        created
    }
}

impl Model {
    /// A REST request arrived, with this `IdempotencyKey`.
    pub fn count_request(&self, key: Option<&str>) {
        let mut state = self.state();
        state.stats.requests += 1;
        if let Some(key) = key {
            *state.requests_per_key.entry(key.to_owned()).or_default() += 1;
        }
    }

    /// A request met an injected fault (the throttle fault is also a throttled request).
    pub fn count_fault(&self, kind: FaultKind) {
        let mut state = self.state();
        state.stats.faults += 1;
        if kind == FaultKind::Throttle {
            state.stats.throttled += 1;
        }
    }

    /// A request enters the account: `Ok(in flight)`, or `Err(in flight before it)` beyond
    /// the limit (error 20429: "Requests that receive 429 responses aren't processed").
    pub fn enter(&self, limit: Option<usize>) -> Result<usize, usize> {
        let mut state = self.state();
        let now = state.in_flight + 1;
        if limit.is_some_and(|n| now > n) {
            state.stats.throttled += 1;
            return Err(state.in_flight);
        }
        state.in_flight = now;
        state.stats.peak_in_flight = state.stats.peak_in_flight.max(now);
        Ok(now)
    }

    /// A request leaves the account, processed (`succeeded`) or refused.
    pub fn leave(&self, succeeded: bool, key: Option<&str>) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if succeeded {
            state.stats.succeeded += 1;
            if let Some(key) = key {
                *state.succeeded_per_key.entry(key.to_owned()).or_default() += 1;
            }
        } else {
            state.stats.rejected += 1;
        }
    }

    /// Keeps a refused REST request for the page and the control API.
    pub fn record_refused(
        &self,
        method: &str,
        path: &str,
        call_sid: Option<CallSid>,
        failure: Failure,
    ) {
        let at_ms = self.now_ms();
        let mut state = self.state();
        if state.refused.len() == REFUSED_KEPT {
            state.refused.pop_front();
        }
        state.refused.push_back(Refused {
            method: method.to_owned(),
            path: path.to_owned(),
            call_sid,
            failure,
            at_ms,
        });
        self.changed(&mut state);
    }

    /// REST requests refused, oldest first (the last few hundred).
    pub fn refused(&self) -> Vec<Refused> {
        self.state().refused.iter().cloned().collect()
    }

    /// Opens a create on a call: the call must exist (20404), and a key seen on this operation
    /// within the window answers the first result, even if the call ended since: the request
    /// was processed once (the `IdempotencyKey` parameter, "a unique string value per API
    /// call": <https://www.twilio.com/docs/voice/api/userdefinedmessage-resource>).
    pub(super) fn open_create<'a>(
        &'a self,
        operation: Operation,
        call: &CallSid,
        key: Option<&'a str>,
    ) -> Result<Opened<'a>, Refusal> {
        let mut state = self.state();
        if !state.calls.contains_key(call) {
            return Err(Refusal::CallNotFound);
        }
        if let Some(key) = key {
            let id = (operation, *call, key.to_owned());
            let window = self.settings.idempotency_window;
            match state.idempotency.get(&id) {
                Some(stored) if stored.at.elapsed() <= window => {
                    let first = stored.created.clone();
                    state.stats.replays += 1;
                    return Ok(Opened::Replay(first));
                }
                Some(_) => {
                    state.idempotency.remove(&id);
                }
                None => {}
            }
        }
        Ok(Opened::New(Create {
            model: self,
            state,
            operation,
            call: *call,
            key,
        }))
    }

    pub fn stats(&self) -> Stats {
        self.state().stats
    }

    pub fn requests_per_key(&self) -> std::collections::HashMap<String, u64> {
        self.state().requests_per_key.clone()
    }

    pub fn succeeded_per_key(&self) -> std::collections::HashMap<String, u64> {
        self.state().succeeded_per_key.clone()
    }
}
