//! The emulator's state and every operation on it, in one place (as moto keeps each service's
//! in `models.py`), and nothing of HTTP: operations take what was asked and answer domain
//! values, or a domain error saying what went wrong. The REST API (`rest.rs`), the control API
//! (`control.rs`), the signaling connections, the callback task and the public `Emulator`
//! handle only call these, and turn the answers into Twilio's statuses, codes and bodies;
//! no other module locks the state.
//!
//! One file per concern, each an `impl Model` over the one [`State`]:
//! - `calls`: calls and their legs, who is on each end (`from`, `to`, `direction`), and
//!   their status;
//! - `conferences`: conferences and their participants (each participant one leg);
//! - `clients`: the Voice SDK clients connected over signaling, and the calls they place,
//!   accept and end;
//! - `messages`: what the REST API sends into a call, received by the client or dropped;
//! - `subscriptions`: a call's subscriptions;
//! - `client_messages`: what the call's client sends, and the records of its callbacks;
//! - `account`: the REST account (its counters, limit, idempotency keys and refusals);
//! - `faults`: faults and limits that change while it runs;
//! - `error`: why the Rust handle, the control API or a signaling client was refused.

mod account;
mod calls;
mod client_messages;
mod clients;
mod conferences;
mod error;
mod faults;
mod messages;
mod subscriptions;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;
use twilio_call_messages::CallSid;
use twilio_call_messages::time::OffsetDateTime;
use twilio_call_messages::time::format_description::well_known::Rfc2822;

use account::Operation;
pub use account::Stats;
pub(crate) use account::{Created, Failure, Refusal, Refused};
pub(crate) use calls::OUTBOUND_API;
pub use calls::{
    ACCOUNT_NUMBER, CallInfo, ClientCall, ClientLeg, DialedCall, Endpoint, OTHER_PARTY,
};
pub use client_messages::{
    Attempt, CLIENT_MESSAGES_PER_SECOND, CallbackDelivery, ClientMessage, USER_DEFINED_MESSAGE,
};
pub(crate) use client_messages::{CallbackRef, Lane, SendAs};
pub(crate) use clients::ToClient;
pub use clients::VoiceClient;
pub use conferences::{ConferenceInfo, ParticipantInfo};
pub use error::EmulatorError;
pub use messages::{DroppedMessage, MAX_CONTENT_CHARS, ReceivedMessage};
pub use subscriptions::SubscriptionInfo;

use crate::settings::{CallStatus, Settings};
use account::Stored;
use calls::Call;
use clients::Connected;
use conferences::Conference;
use faults::Live;

/// Everything the emulator knows, under one lock.
struct State {
    calls: HashMap<CallSid, Call>,
    /// Calls in the order they were created.
    order: Vec<CallSid>,
    /// (operation, call, key) -> the first result.
    idempotency: HashMap<(Operation, CallSid, String), Stored>,
    requests_per_key: HashMap<String, u64>,
    succeeded_per_key: HashMap<String, u64>,
    /// The last refused REST requests, oldest first.
    refused: VecDeque<Refused>,
    /// What the REST API saw.
    stats: Stats,
    /// Faults and limits as they are now.
    live: Live,
    /// Callback deliveries not yet done.
    pending: usize,

    // What outlives a reset (see `Model::reset`):
    /// REST requests inside the account now; they leave through `Model::leave`.
    in_flight: usize,
    /// Bumped by reset: work started before it records nothing after it.
    epoch: u64,
    /// Bumped by every change, for the page's polling.
    version: u64,
    /// Voice SDK clients connected over signaling, by connection number.
    clients: BTreeMap<u64, Connected>,
    next_client: u64,
    /// The last generated client identity's number.
    next_identity: u64,
    /// Conferences by SID, and the order they were created in.
    conferences: HashMap<String, Conference>,
    conference_order: Vec<String>,
}

impl State {
    /// The state of an emulator that just started with these settings.
    fn new(settings: &Settings) -> State {
        State {
            calls: HashMap::new(),
            order: Vec::new(),
            idempotency: HashMap::new(),
            requests_per_key: HashMap::new(),
            succeeded_per_key: HashMap::new(),
            refused: VecDeque::new(),
            stats: Stats::default(),
            live: Live::from(settings),
            pending: 0,
            in_flight: 0,
            epoch: 0,
            version: 0,
            clients: BTreeMap::new(),
            next_client: 0,
            next_identity: 0,
            conferences: HashMap::new(),
            conference_order: Vec::new(),
        }
    }
}

/// The state and its operations.
pub(crate) struct Model {
    pub settings: Settings,
    started: Instant,
    state: Mutex<State>,
    /// Deliveries not yet done, published for `settled()`.
    pending: watch::Sender<usize>,
    /// The state's version, published for the page's long polls.
    version: watch::Sender<u64>,
}

pub(crate) fn new_sid<S: std::str::FromStr>(prefix: &str) -> S
where
    S::Err: fmt::Debug,
{
    format!("{prefix}{}", random_hex())
        .parse()
        .expect("a prefix and 32 hex digits is a SID")
}

pub(crate) fn random_hex() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn now_rfc2822() -> String {
    rfc2822(OffsetDateTime::now_utc())
}

fn rfc2822(at: OffsetDateTime) -> String {
    at.format(&Rfc2822).unwrap_or_else(|_| at.to_string())
}

impl Model {
    pub fn new(settings: Settings) -> Model {
        Model {
            state: Mutex::new(State::new(&settings)),
            settings,
            started: Instant::now(),
            pending: watch::Sender::new(0),
            version: watch::Sender::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.now_ms()
    }

    /// Publishes a change (the pending count and the version) while the state is still held.
    fn changed(&self, state: &mut State) {
        state.version += 1;
        self.pending.send_replace(state.pending);
        self.version.send_replace(state.version);
    }

    pub fn pending(&self) -> watch::Receiver<usize> {
        self.pending.subscribe()
    }

    pub fn pending_now(&self) -> usize {
        *self.pending.borrow()
    }

    pub fn version(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Forgets calls, messages, subscriptions, attempts, keys, refusals and counters, cancels
    /// the deliveries under way, and puts faults and limits back to how the emulator started:
    /// the state is rebuilt as at start, but for what outlives a reset. The account, its keys
    /// and the port stay.
    pub fn reset(&self) {
        let mut state = self.state();
        for call in state.calls.values() {
            if let Some(lane) = &call.lane {
                lane.task.abort();
            }
        }
        // Connected clients stay connected (their page is still open); their calls end with
        // the rest, so they are told.
        let active: Vec<CallSid> = state
            .calls
            .values()
            .filter(|c| c.owner.is_some() && c.info.status.is_active())
            .map(|c| c.info.sid)
            .collect();
        for sid in active {
            let _ = self.set_status(&mut state, &sid, CallStatus::Completed, true);
        }
        let fresh = State::new(&self.settings);
        *state = State {
            // Requests in flight are still in flight: they leave through `leave`, and the
            // peak starts from them.
            in_flight: state.in_flight,
            stats: Stats {
                peak_in_flight: state.in_flight,
                ..fresh.stats
            },
            epoch: state.epoch + 1,
            version: state.version,
            clients: std::mem::take(&mut state.clients),
            next_client: state.next_client,
            ..fresh
        };
        self.changed(&mut state);
    }
}
