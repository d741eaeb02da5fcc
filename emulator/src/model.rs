//! The emulator's state and every operation on it, in one place (as moto keeps each service's
//! in `models.py`): calls and their legs, what each call's client received, dropped and sent,
//! subscriptions, delivery attempts, the REST counters and idempotency keys, faults and limits,
//! the Voice SDK clients connected over signaling and the calls they place, accept and end,
//! and reset. The REST API, the control API, the page, the signaling connections, the delivery
//! task and the public `Emulator` handle only call these; no other module locks the state.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use twilio_call_messages::time::OffsetDateTime;
use twilio_call_messages::time::format_description::well_known::Rfc2822;
use twilio_call_messages::{AccountSid, CallSid, MessageSid, SubscriptionSid};

use crate::settings::{CallStatus, CallbackFaults, FaultKind, Faults, Settings};

/// The longest content a message may carry, in characters (error 32703 beyond it,
/// <https://www.twilio.com/docs/api/errors/32703>; the client SDKs say 10 KB, error 31212 in
/// twilio-voice.js `lib/twilio/errors/generated.ts`).
pub const MAX_CONTENT_CHARS: usize = 10_000;

/// How many messages a call's client may send within one second before it is refused with
/// 31206. ASSUMPTION: twilio-voice.js names the error ("rate exceeded",
/// `lib/twilio/errors/generated.ts`) but no SDK nor Twilio page publishes the figure.
pub const CLIENT_MESSAGES_PER_SECOND: usize = 10;

/// The only message type a client may send (twilio-voice.js `sendMessage`, error 31210).
pub const USER_DEFINED_MESSAGE: &str = "user-defined-message";

/// How many refused REST requests are kept for the page and the control API.
const REFUSED_KEPT: usize = 500;

/// Why the emulator refused something asked through its Rust API or control API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmulatorError {
    /// No call with this SID.
    UnknownCall(String),
    /// The call has ended (or never started): its client cannot send.
    CallNotActive(CallStatus),
    /// The call is still ringing: the client is not connected yet (twilio-voice.js 31211).
    CallNotConnected,
    /// A call with this SID exists already.
    CallExists(String),
    /// The content is longer than [`MAX_CONTENT_CHARS`] (twilio-voice.js error 31212).
    ContentTooLong(usize),
    /// The content is not JSON text.
    ContentNotJson(String),
    /// A message type other than `user-defined-message` (twilio-voice.js error 31210).
    MessageType(String),
    /// More than [`CLIENT_MESSAGES_PER_SECOND`] within a second (twilio-voice.js error 31206).
    RateExceeded,
    /// A setting is out of range.
    Setting(String),
    /// No Voice SDK client registered with this identity accepts incoming calls.
    NoClient(String),
    /// The call is not this signaling client's.
    NotClientsCall(String),
}

impl EmulatorError {
    /// The Voice SDK's error code for a refusal the client itself makes, if it has one.
    pub fn code(&self) -> Option<u32> {
        match self {
            EmulatorError::ContentTooLong(_) => Some(31212),
            EmulatorError::MessageType(_) => Some(31210),
            EmulatorError::CallNotConnected => Some(31211),
            EmulatorError::RateExceeded => Some(31206),
            _ => None,
        }
    }
}

impl fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmulatorError::UnknownCall(sid) => write!(f, "no call {sid}"),
            EmulatorError::CallNotActive(status) => {
                write!(f, "the call is {status}, not in-progress")
            }
            EmulatorError::CallNotConnected => f.write_str(
                "the call is ringing: the client cannot send before it is connected (error 31211)",
            ),
            EmulatorError::CallExists(sid) => write!(f, "call {sid} exists already"),
            EmulatorError::ContentTooLong(n) => write!(
                f,
                "content of {n} characters is longer than {MAX_CONTENT_CHARS} (error 31212, payload too large)"
            ),
            EmulatorError::ContentNotJson(why) => write!(f, "the content is not JSON: {why}"),
            EmulatorError::MessageType(t) => write!(
                f,
                "message type {t:?} is not {USER_DEFINED_MESSAGE:?} (error 31210)"
            ),
            EmulatorError::RateExceeded => write!(
                f,
                "more than {CLIENT_MESSAGES_PER_SECOND} messages within a second (error 31206, rate exceeded)"
            ),
            EmulatorError::Setting(why) => f.write_str(why),
            EmulatorError::NoClient(identity) => write!(
                f,
                "no Voice SDK client registered as {identity:?} (with a token that allows incoming calls)"
            ),
            EmulatorError::NotClientsCall(sid) => {
                write!(f, "call {sid} is not this client's")
            }
        }
    }
}

impl std::error::Error for EmulatorError {}

/// Which leg of a Voice SDK client call the client is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ClientLeg {
    /// The client placed the call: it is on the parent leg (Twilio dials the other party on a
    /// child leg).
    Outgoing,
    /// The client accepted the call: the caller is on the parent leg, the client on the child.
    Incoming,
}

impl std::str::FromStr for ClientLeg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "outgoing" => Ok(ClientLeg::Outgoing),
            "incoming" => Ok(ClientLeg::Incoming),
            other => Err(format!(
                "the client's leg is outgoing or incoming, not {other:?}"
            )),
        }
    }
}

/// The two legs of a Voice SDK client call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClientCall {
    /// The parent leg.
    pub parent: CallSid,
    /// The child leg.
    pub child: CallSid,
    /// The leg the client is on (`parent` for an outgoing call, `child` for an incoming one).
    pub client: CallSid,
    /// Which one that is.
    pub leg: ClientLeg,
}

/// A call as the emulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CallInfo {
    /// `CA…`
    pub sid: CallSid,
    /// The account that owns it.
    pub account_sid: AccountSid,
    /// Its status.
    #[serde(serialize_with = "status_text")]
    pub status: CallStatus,
    /// The parent call of a child leg.
    pub parent_call_sid: Option<CallSid>,
    /// The leg the call's client is on: this call itself, or (for the other leg of a client
    /// call) the client's leg, where messages to this one never arrive.
    pub client_call_sid: CallSid,
    /// For a leg of a client call: whether the client placed it or accepted it.
    pub client_leg: Option<ClientLeg>,
    /// For a call of a Voice SDK client connected over signaling: its identity.
    pub client_identity: Option<String>,
}

fn status_text<S: serde::Serializer>(status: &CallStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

/// A message the call's client SDK received, with the fields twilio-voice.js gives its
/// `messageReceived` event (`lib/twilio/call.ts`: `content`, `contentType`, `messageType`,
/// `voiceEventSid`), plus the key it was sent with.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReceivedMessage {
    /// The message's SID (`KX…`), the same as `voice_event_sid`.
    pub sid: MessageSid,
    /// The content, as JSON.
    pub content: serde_json::Value,
    /// `application/json`.
    pub content_type: String,
    /// `user-defined-message`.
    pub message_type: String,
    /// `voiceEventSid`: the message's SID.
    pub voice_event_sid: MessageSid,
    /// The `IdempotencyKey` of the request that created it, if any.
    pub idempotency_key: Option<String>,
    /// When Twilio accepted it (RFC 2822).
    pub date_created: String,
    /// Milliseconds since the emulator started (orders the page's timeline).
    pub at_ms: u64,
}

/// A message Twilio accepted (201) that the call's client never showed: it was addressed to the
/// other leg of the client's call.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DroppedMessage {
    /// The message as the client got it, before it dropped it.
    pub message: ReceivedMessage,
    /// The leg it was addressed to.
    pub call_sid: CallSid,
    /// The leg the client is on.
    pub client_call_sid: CallSid,
    /// Why, in words.
    pub reason: String,
}

/// A subscription of a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SubscriptionInfo {
    /// `ZY…`
    pub sid: SubscriptionSid,
    /// The callback URL as given (its `#…` fragment included).
    pub callback: String,
    /// `POST` (Twilio's default) or `GET`.
    pub method: String,
    /// RFC 2822.
    pub date_created: String,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// A message the call's client sent, and its deliveries to the call's subscriptions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClientMessage {
    /// `KX…`: the callback's `Sid`.
    pub sid: MessageSid,
    /// The call it was sent in: the client's leg (the callback's `CallSid`).
    pub call_sid: CallSid,
    /// The content, as JSON.
    pub content: serde_json::Value,
    /// The content's text exactly as the client gave it: the callback's `Content`.
    pub content_text: String,
    /// The callback's `SequenceNumber`.
    pub sequence_number: u64,
    /// The callback's `Timestamp` (RFC 2822).
    pub timestamp: String,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
    /// One per subscription the call had when the message was sent.
    pub deliveries: Vec<Delivery>,
}

/// The delivery of one client message to one subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Delivery {
    /// The subscription.
    pub subscription_sid: SubscriptionSid,
    /// Its callback URL (with the fragment).
    pub callback: String,
    /// `POST` or `GET`.
    pub method: String,
    /// `I-Twilio-Idempotency-Token`: the same on every attempt of this delivery.
    pub idempotency_token: String,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Whether an attempt got a 2xx.
    pub delivered: bool,
    /// Whether the delivery is over (delivered, or out of retries or time).
    pub done: bool,
}

/// One attempt of a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    /// The URL requested (no fragment; `bodySHA256` or the GET fields in the query).
    pub url: String,
    /// The request's headers (none is a secret: the signature is not).
    pub headers: Vec<(String, String)>,
    /// The request's body.
    pub body: String,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// What went wrong, if it did not answer 2xx.
    pub error: Option<String>,
    /// Dropped on purpose ([`CallbackFaults::drop_first`]): never sent.
    pub dropped: bool,
    /// Sent again on purpose after a success ([`CallbackFaults::duplicate`]).
    pub duplicate: bool,
    /// Held back and delivered after the call's next message ([`CallbackFaults::reorder`]).
    pub reordered: bool,
    /// How the request is signed: `auth-token`, `body-sha256` or `shared-key`.
    pub signature_scheme: String,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
    /// Milliseconds since the emulator started, when it began.
    pub at_ms: u64,
}

/// A Voice SDK client connected to the signaling endpoint with a valid token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VoiceClient {
    /// Its connection, numbered from 1 as they arrive.
    pub id: u64,
    /// `grants.identity` of its token.
    pub identity: String,
    /// Whether it registered for incoming calls (`Device.register()`).
    pub registered: bool,
    /// Whether its token allows incoming calls (`grants.voice.incoming.allow`).
    pub incoming_allow: bool,
    /// Its calls' legs (the client's own), in the order they began.
    pub calls: Vec<CallSid>,
}

/// What the emulator tells a connected Voice SDK client; the signaling connection turns each
/// into a frame.
#[derive(Clone, Debug)]
pub(crate) enum ToClient {
    /// A call rings the client (it is on the child leg).
    Incoming {
        call: CallSid,
        from: String,
        to: String,
    },
    /// A message into one leg of the client's call: the leg the service addressed, so that
    /// the SDK's own rule drops a message to the other leg.
    Message {
        call_sid: CallSid,
        message: ReceivedMessage,
    },
    /// The call ended while connected.
    Hangup { call_sid: CallSid },
    /// The call ended while it was still ringing the client.
    Cancel { call_sid: CallSid },
}

/// Who sends a client message: the control API or the Rust handle (`Default`: as the call's
/// client, any call), or a signaling client (only its own call, under the SDK's name for it).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendAs {
    pub client: Option<u64>,
    pub voice_event_sid: Option<MessageSid>,
}

/// A connected client, as the state keeps it.
struct Connected {
    identity: String,
    incoming_allow: bool,
    registered: bool,
    tx: mpsc::UnboundedSender<ToClient>,
}

/// A REST request the emulator did not answer with 2xx.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RefusedRequest {
    /// `POST`, `DELETE`, …
    pub method: String,
    /// The path requested.
    pub path: String,
    /// The call in the path, if any.
    pub call_sid: Option<CallSid>,
    /// The HTTP status, if one was answered (a reset or a stall answers none).
    pub status: Option<u16>,
    /// Twilio's error code, if the answer carried one.
    pub code: Option<u32>,
    /// What was answered, or the fault.
    pub message: String,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

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

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    succeeded: AtomicU64,
    rejected: AtomicU64,
    throttled: AtomicU64,
    faults: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    replays: AtomicU64,
    messages: AtomicU64,
}

/// What a repeated key gets: the first answer's status and body.
pub(crate) struct Stored {
    at: Instant,
    pub status: u16,
    pub body: Vec<u8>,
}

/// A call's delivery lane: messages in, delivered one after the other by a task.
pub(crate) struct Lane {
    pub queue: mpsc::UnboundedSender<usize>,
    pub task: AbortHandle,
}

struct Call {
    info: CallInfo,
    received: Vec<ReceivedMessage>,
    dropped: Vec<DroppedMessage>,
    subscriptions: Vec<SubscriptionInfo>,
    client_messages: Vec<ClientMessage>,
    next_sequence: u64,
    /// When the client's last messages went (for the rate rule).
    sent_at: VecDeque<Instant>,
    lane: Option<Lane>,
    /// The signaling client whose call this is (both legs), while it is connected.
    owner: Option<u64>,
}

#[derive(Default)]
struct State {
    calls: HashMap<CallSid, Call>,
    order: Vec<CallSid>,
    /// (operation path, key) -> the first result.
    idempotency: HashMap<(String, String), Stored>,
    requests_per_key: HashMap<String, u64>,
    succeeded_per_key: HashMap<String, u64>,
    refused: VecDeque<RefusedRequest>,
    /// Deliveries not yet done.
    pending: usize,
    /// Bumped by reset: work started before it records nothing after it.
    epoch: u64,
    /// Bumped by every change, for the page's polling.
    version: u64,
    /// Voice SDK clients connected over signaling, by connection number.
    clients: BTreeMap<u64, Connected>,
    next_client: u64,
}

/// What can change while the emulator runs.
struct Live {
    concurrency_limit: Option<usize>,
    concurrency_header: bool,
    latency: Duration,
    faults: Faults,
    fault_rng: fastrand::Rng,
    callback_faults: CallbackFaults,
    callback_rng: fastrand::Rng,
}

impl Live {
    fn from(s: &Settings) -> Live {
        Live {
            concurrency_limit: s.concurrency_limit,
            concurrency_header: s.concurrency_header,
            latency: s.latency,
            fault_rng: fastrand::Rng::with_seed(s.faults.seed),
            faults: s.faults.clone(),
            callback_rng: fastrand::Rng::with_seed(s.callback_faults.seed),
            callback_faults: s.callback_faults.clone(),
        }
    }
}

/// The live settings as the control API and the page show them.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LiveView {
    pub concurrency_limit: Option<usize>,
    pub latency_ms: u64,
    pub faults: Vec<(String, f64)>,
    pub fault_seed: u64,
    pub callback_faults: CallbackFaultsView,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct CallbackFaultsView {
    pub duplicate: f64,
    pub reorder: f64,
    pub drop_first: f64,
    pub seed: u64,
}

/// One REST request's roll of the dice and the limits it meets.
pub(crate) struct Roll {
    pub fault: Option<FaultKind>,
    pub stall: Duration,
    pub limit: Option<usize>,
    pub header: bool,
    pub latency: Duration,
}

/// A delivery, named so that work started before a reset finds nothing after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeliveryRef {
    pub epoch: u64,
    pub call: CallSid,
    pub index: usize,
    pub delivery: usize,
}

/// A REST create's refusal: HTTP status, Twilio's code, message.
pub(crate) type Refusal = (u16, u32, String);

/// The state and its operations.
pub(crate) struct Model {
    pub settings: Settings,
    started: Instant,
    state: Mutex<State>,
    live: Mutex<Live>,
    counters: Counters,
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
    let now = OffsetDateTime::now_utc();
    now.format(&Rfc2822).unwrap_or_else(|_| now.to_string())
}

/// The 201 body of a message: the upstream example's four fields, no `uri`.
#[derive(Serialize)]
struct MessageBody<'a> {
    account_sid: &'a AccountSid,
    call_sid: &'a CallSid,
    sid: &'a MessageSid,
    date_created: &'a str,
}

/// The 201 body of a subscription: the same four and `uri`, relative to api.twilio.com.
#[derive(Serialize)]
struct SubscriptionBody<'a> {
    account_sid: &'a AccountSid,
    call_sid: &'a CallSid,
    sid: &'a SubscriptionSid,
    date_created: &'a str,
    uri: String,
}

/// A create on a call, from the replay check to the record, under one lock: two requests with
/// the same key at once (a client's retry racing its first attempt) record one.
pub(crate) struct Create<'a> {
    model: &'a Model,
    state: MutexGuard<'a, State>,
    path: &'a str,
    call: CallSid,
    key: Option<&'a str>,
}

impl Model {
    pub fn new(settings: Settings) -> Model {
        Model {
            live: Mutex::new(Live::from(&settings)),
            settings,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            pending: watch::Sender::new(0),
            version: watch::Sender::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Publishes a change (the pending count and the version) while the state is still held.
    fn changed(&self, state: &mut State) {
        state.version += 1;
        self.pending.send_replace(state.pending);
        self.version.send_replace(state.version);
    }

    // ---- calls and legs ----

    /// Adds a call with this SID and status, as a child leg of `parent` if given; the call's
    /// client is on it.
    pub fn add_call(
        &self,
        sid: CallSid,
        status: CallStatus,
        parent: Option<CallSid>,
    ) -> Result<CallInfo, EmulatorError> {
        let mut state = self.state();
        if let Some(parent) = parent
            && !state.calls.contains_key(&parent)
        {
            return Err(EmulatorError::UnknownCall(parent.to_string()));
        }
        if state.calls.contains_key(&sid) {
            return Err(EmulatorError::CallExists(sid.to_string()));
        }
        let info = CallInfo {
            sid,
            account_sid: self.settings.account_sid,
            status,
            parent_call_sid: parent,
            client_call_sid: sid,
            client_leg: None,
            client_identity: None,
        };
        self.insert(&mut state, info.clone());
        self.changed(&mut state);
        Ok(info)
    }

    fn insert(&self, state: &mut State, info: CallInfo) {
        let sid = info.sid;
        state.calls.insert(
            sid,
            Call {
                info,
                received: Vec::new(),
                dropped: Vec::new(),
                subscriptions: Vec::new(),
                client_messages: Vec::new(),
                next_sequence: self.settings.sequence_start,
                sent_at: VecDeque::new(),
                lane: None,
                owner: None,
            },
        );
        state.order.push(sid);
    }

    /// A Voice SDK client call: two legs with fresh SIDs, the client on the parent leg when it
    /// placed the call and on the child leg when it accepted it (Twilio's Voice SDK "Call
    /// Message Events" page).
    pub fn create_client_call(&self, leg: ClientLeg, status: CallStatus) -> ClientCall {
        let mut state = self.state();
        let call = self.insert_client_call(&mut state, leg, status, None);
        self.changed(&mut state);
        call
    }

    fn insert_client_call(
        &self,
        state: &mut State,
        leg: ClientLeg,
        status: CallStatus,
        owner: Option<u64>,
    ) -> ClientCall {
        let (parent, child): (CallSid, CallSid) = (new_sid("CA"), new_sid("CA"));
        let client = match leg {
            ClientLeg::Outgoing => parent,
            ClientLeg::Incoming => child,
        };
        let identity = owner.and_then(|id| state.clients.get(&id).map(|c| c.identity.clone()));
        for (sid, parent_call_sid) in [(parent, None), (child, Some(parent))] {
            let info = CallInfo {
                sid,
                account_sid: self.settings.account_sid,
                status,
                parent_call_sid,
                client_call_sid: client,
                client_leg: Some(leg),
                client_identity: identity.clone(),
            };
            self.insert(state, info);
            if let Some(call) = state.calls.get_mut(&sid) {
                call.owner = owner;
            }
        }
        ClientCall {
            parent,
            child,
            client,
            leg,
        }
    }

    pub fn call(&self, sid: &CallSid) -> Option<CallInfo> {
        self.state().calls.get(sid).map(|c| c.info.clone())
    }

    pub fn calls(&self) -> Vec<CallInfo> {
        let state = self.state();
        state
            .order
            .iter()
            .filter_map(|sid| state.calls.get(sid).map(|c| c.info.clone()))
            .collect()
    }

    /// The legs of a call's client call (both, parent first), or the call alone.
    pub fn legs(&self, sid: &CallSid) -> Vec<CallInfo> {
        let state = self.state();
        let Some(call) = state.calls.get(sid) else {
            return Vec::new();
        };
        if call.info.client_leg.is_none() {
            return vec![call.info.clone()];
        }
        let client = call.info.client_call_sid;
        state
            .order
            .iter()
            .filter_map(|s| state.calls.get(s))
            .filter(|c| c.info.client_leg.is_some() && c.info.client_call_sid == client)
            .map(|c| c.info.clone())
            .collect()
    }

    /// Changes a call's status; a client call's legs change together (the call is one
    /// conversation: when it connects or ends, both legs do).
    pub fn set_call_status(
        &self,
        sid: &CallSid,
        status: CallStatus,
    ) -> Result<CallInfo, EmulatorError> {
        let mut state = self.state();
        let info = self.set_status(&mut state, sid, status, true)?;
        self.changed(&mut state);
        Ok(info)
    }

    /// Sets the status of a call's legs; a connected client whose call ends by someone
    /// else's hand (`notify`) hears `cancel` while it rang, `hangup` once it was connected
    /// (twilio-voice.js `lib/twilio/call.ts`, `_onCancel` and `_onHangup`).
    fn set_status(
        &self,
        state: &mut State,
        sid: &CallSid,
        status: CallStatus,
        notify: bool,
    ) -> Result<CallInfo, EmulatorError> {
        let Some(found) = state.calls.get(sid) else {
            return Err(EmulatorError::UnknownCall(sid.to_string()));
        };
        let (before, owner, client) = (found.info.status, found.owner, found.info.client_call_sid);
        let legs: Vec<CallSid> = if found.info.client_leg.is_some() {
            state
                .calls
                .values()
                .filter(|c| c.info.client_leg.is_some() && c.info.client_call_sid == client)
                .map(|c| c.info.sid)
                .collect()
        } else {
            vec![*sid]
        };
        for leg in legs {
            if let Some(call) = state.calls.get_mut(&leg) {
                call.info.status = status;
            }
        }
        if notify
            && before.is_active()
            && !status.is_active()
            && let Some(tx) = owner.and_then(|id| state.clients.get(&id)).map(|c| &c.tx)
        {
            let _ = tx.send(if before == CallStatus::InProgress {
                ToClient::Hangup { call_sid: client }
            } else {
                ToClient::Cancel { call_sid: client }
            });
        }
        state
            .calls
            .get(sid)
            .map(|c| c.info.clone())
            .ok_or_else(|| EmulatorError::UnknownCall(sid.to_string()))
    }

    // ---- Voice SDK clients on the signaling connection ----

    /// A client's token was accepted at `listen`: it is connected under this number.
    pub fn connect_client(
        &self,
        identity: &str,
        incoming_allow: bool,
        tx: mpsc::UnboundedSender<ToClient>,
    ) -> u64 {
        let mut state = self.state();
        state.next_client += 1;
        let id = state.next_client;
        state.clients.insert(
            id,
            Connected {
                identity: identity.to_owned(),
                incoming_allow,
                registered: false,
                tx,
            },
        );
        self.changed(&mut state);
        id
    }

    /// `register` with `audio: true` (or false to unregister): whether calls may ring it.
    pub fn register_client(&self, id: u64, on: bool) {
        let mut state = self.state();
        if let Some(client) = state.clients.get_mut(&id) {
            client.registered = on;
        }
        self.changed(&mut state);
    }

    /// The signaling connection closed. ASSUMPTION: its calls end (`completed`); Twilio keeps
    /// a call for a while for the SDK to reconnect, which the emulator does not model.
    pub fn disconnect_client(&self, id: u64) {
        let mut state = self.state();
        if state.clients.remove(&id).is_none() {
            return;
        }
        let active: Vec<CallSid> = state
            .calls
            .values()
            .filter(|c| c.owner == Some(id) && c.info.status.is_active())
            .map(|c| c.info.sid)
            .collect();
        for sid in active {
            let _ = self.set_status(&mut state, &sid, CallStatus::Completed, false);
        }
        for call in state.calls.values_mut() {
            if call.owner == Some(id) {
                call.owner = None;
            }
        }
        self.changed(&mut state);
    }

    /// The clients connected now.
    pub fn voice_clients(&self) -> Vec<VoiceClient> {
        let state = self.state();
        state
            .clients
            .iter()
            .map(|(id, c)| VoiceClient {
                id: *id,
                identity: c.identity.clone(),
                registered: c.registered,
                incoming_allow: c.incoming_allow,
                calls: state
                    .order
                    .iter()
                    .filter_map(|sid| state.calls.get(sid))
                    .filter(|call| {
                        call.owner == Some(*id) && call.info.client_call_sid == call.info.sid
                    })
                    .map(|call| call.info.sid)
                    .collect(),
            })
            .collect()
    }

    /// The client places a call (`invite`): a client call with the client on the parent leg,
    /// `in-progress` at once. ASSUMPTION: the other party answers at once; it is not modelled
    /// (no TwiML App runs).
    pub fn place_call(&self, id: u64) -> Result<ClientCall, EmulatorError> {
        let mut state = self.state();
        if !state.clients.contains_key(&id) {
            return Err(EmulatorError::NoClient(format!("connection {id}")));
        }
        let call = self.insert_client_call(
            &mut state,
            ClientLeg::Outgoing,
            CallStatus::InProgress,
            Some(id),
        );
        self.changed(&mut state);
        Ok(call)
    }

    /// A call rings the newest registered client with this identity whose token allows
    /// incoming calls: a client call with the client on the child leg, `ringing` until it
    /// answers.
    pub fn ring_client(&self, identity: &str, from: &str) -> Result<ClientCall, EmulatorError> {
        let mut state = self.state();
        let Some(id) = state
            .clients
            .iter()
            .rev()
            .find(|(_, c)| c.identity == identity && c.registered && c.incoming_allow)
            .map(|(id, _)| *id)
        else {
            return Err(EmulatorError::NoClient(identity.to_owned()));
        };
        let call = self.insert_client_call(
            &mut state,
            ClientLeg::Incoming,
            CallStatus::Ringing,
            Some(id),
        );
        if let Some(client) = state.clients.get(&id) {
            let _ = client.tx.send(ToClient::Incoming {
                call: call.child,
                from: from.to_owned(),
                to: format!("client:{identity}"),
            });
        }
        self.changed(&mut state);
        Ok(call)
    }

    /// The client's own call, or why not.
    fn owned(&self, state: &State, id: u64, sid: &str) -> Result<CallSid, EmulatorError> {
        let not_its = || EmulatorError::NotClientsCall(sid.to_owned());
        let sid: CallSid = sid.parse().map_err(|_| not_its())?;
        match state.calls.get(&sid) {
            Some(call) if call.owner == Some(id) && call.info.client_call_sid == sid => Ok(sid),
            _ => Err(not_its()),
        }
    }

    /// The client accepted a call that rang it (`answer`): both legs are `in-progress`.
    pub fn client_accepts(&self, id: u64, sid: &str) -> Result<CallInfo, EmulatorError> {
        let mut state = self.state();
        let sid = self.owned(&state, id, sid)?;
        let info = self.set_status(&mut state, &sid, CallStatus::InProgress, false)?;
        self.changed(&mut state);
        Ok(info)
    }

    /// The client ended its call: `hangup` (`completed`) or `reject` of a ringing call.
    /// ASSUMPTION: a rejected call is `busy`, what a caller's `<Dial>` reports for a client
    /// that declined.
    pub fn client_ends(&self, id: u64, sid: &str, reject: bool) -> Result<(), EmulatorError> {
        let mut state = self.state();
        let sid = self.owned(&state, id, sid)?;
        let status = if reject {
            CallStatus::Busy
        } else {
            CallStatus::Completed
        };
        self.set_status(&mut state, &sid, status, false)?;
        self.changed(&mut state);
        Ok(())
    }

    pub fn client_received(&self, sid: &CallSid) -> Vec<ReceivedMessage> {
        self.with_call(sid, |c| c.received.clone())
    }

    pub fn dropped(&self, sid: &CallSid) -> Vec<DroppedMessage> {
        self.with_call(sid, |c| c.dropped.clone())
    }

    pub fn subscriptions(&self, sid: &CallSid) -> Vec<SubscriptionInfo> {
        self.with_call(sid, |c| c.subscriptions.clone())
    }

    pub fn client_messages(&self, sid: &CallSid) -> Vec<ClientMessage> {
        self.with_call(sid, |c| c.client_messages.clone())
    }

    fn with_call<T: Default>(&self, sid: &CallSid, f: impl FnOnce(&Call) -> T) -> T {
        self.state().calls.get(sid).map(f).unwrap_or_default()
    }

    /// Every message the clients received, over all calls, in call order.
    pub fn messages(&self) -> Vec<(CallSid, ReceivedMessage)> {
        let state = self.state();
        state
            .order
            .iter()
            .filter_map(|sid| state.calls.get(sid))
            .flat_map(|c| c.received.iter().map(|m| (c.info.sid, m.clone())))
            .collect()
    }

    /// REST requests refused, oldest first (the last few hundred).
    pub fn refused(&self) -> Vec<RefusedRequest> {
        self.state().refused.iter().cloned().collect()
    }

    // ---- the client sends ----

    /// The call's client sends `text` (JSON text, posted exactly as given) with this message
    /// type. Refused as the Voice SDKs refuse it (twilio-voice.js `lib/twilio/call.ts`
    /// `sendMessage` and `lib/twilio/errors/generated.ts`); else recorded on the client's leg
    /// with one delivery per subscription of that leg. `lane` starts the leg's delivery task
    /// when it has none.
    pub fn client_send(
        &self,
        sid: &CallSid,
        text: &str,
        message_type: &str,
        from: SendAs,
        lane: impl FnOnce(CallSid, u64) -> Lane,
    ) -> Result<(MessageSid, CallSid), EmulatorError> {
        // 31210: the only type the SDKs send.
        if message_type != USER_DEFINED_MESSAGE {
            return Err(EmulatorError::MessageType(message_type.to_owned()));
        }
        let content: serde_json::Value =
            serde_json::from_str(text).map_err(|e| EmulatorError::ContentNotJson(e.to_string()))?;
        // 31212 beyond 10 KB, counted as the REST API counts (docs/twilio-behaviour.md#message-content).
        let chars = text.chars().count();
        if chars > MAX_CONTENT_CHARS {
            return Err(EmulatorError::ContentTooLong(chars));
        }
        let mut state = self.state();
        if let Some(id) = from.client {
            self.owned(&state, id, sid.as_str())?;
        }
        let epoch = state.epoch;
        let client_sid = state
            .calls
            .get(sid)
            .ok_or_else(|| EmulatorError::UnknownCall(sid.to_string()))?
            .info
            .client_call_sid;
        let now_ms = self.now_ms();
        let call = state
            .calls
            .get_mut(&client_sid)
            .ok_or_else(|| EmulatorError::UnknownCall(client_sid.to_string()))?;
        match call.info.status {
            // 31211: not connected yet.
            CallStatus::Ringing | CallStatus::Queued => {
                return Err(EmulatorError::CallNotConnected);
            }
            // A call's client can send only while the call is up (Voice SDK "Call Message Events").
            CallStatus::InProgress => {}
            other => return Err(EmulatorError::CallNotActive(other)),
        }
        // 31206 beyond the rate (the figure is an ASSUMPTION, see CLIENT_MESSAGES_PER_SECOND).
        let now = Instant::now();
        while call
            .sent_at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            call.sent_at.pop_front();
        }
        if call.sent_at.len() >= CLIENT_MESSAGES_PER_SECOND {
            return Err(EmulatorError::RateExceeded);
        }
        call.sent_at.push_back(now);
        // The SDK names its message (`voiceEventSid`); Twilio's callback carries that name as
        // `Sid` (twilio-voice.js `cypress/e2e/callMessage/userDefinedMessage.cy.ts`).
        let message_sid: MessageSid = from.voice_event_sid.unwrap_or_else(|| new_sid("KX"));
        let sequence_number = call.next_sequence;
        call.next_sequence += 1;
        let deliveries: Vec<Delivery> = call
            .subscriptions
            .iter()
            .map(|s| Delivery {
                subscription_sid: s.sid,
                callback: s.callback.clone(),
                method: s.method.clone(),
                idempotency_token: random_hex(),
                attempts: Vec::new(),
                delivered: false,
                done: false,
            })
            .collect();
        let count = deliveries.len();
        call.client_messages.push(ClientMessage {
            sid: message_sid,
            call_sid: client_sid,
            content,
            content_text: text.to_owned(),
            sequence_number,
            timestamp: now_rfc2822(),
            at_ms: now_ms,
            deliveries,
        });
        let index = call.client_messages.len() - 1;
        if count > 0 {
            let lane = call.lane.get_or_insert_with(|| lane(client_sid, epoch));
            let _ = lane.queue.send(index);
            state.pending += count;
        }
        self.changed(&mut state);
        Ok((message_sid, client_sid))
    }

    // ---- deliveries ----

    /// How many deliveries a message has (none after a reset).
    pub fn delivery_count(&self, epoch: u64, call: &CallSid, index: usize) -> usize {
        let state = self.state();
        if state.epoch != epoch {
            return 0;
        }
        state
            .calls
            .get(call)
            .and_then(|c| c.client_messages.get(index))
            .map_or(0, |m| m.deliveries.len())
    }

    /// A delivery and its message, as they are now.
    pub fn delivery(&self, at: DeliveryRef) -> Option<(ClientMessage, Delivery)> {
        let state = self.state();
        if state.epoch != at.epoch {
            return None;
        }
        let message = state.calls.get(&at.call)?.client_messages.get(at.index)?;
        Some((
            message.clone(),
            message.deliveries.get(at.delivery)?.clone(),
        ))
    }

    /// Changes a delivery (an attempt recorded, delivered), unless a reset forgot it.
    pub fn record(&self, at: DeliveryRef, f: impl FnOnce(&mut Delivery)) {
        let mut state = self.state();
        if state.epoch != at.epoch {
            return;
        }
        if let Some(delivery) = state
            .calls
            .get_mut(&at.call)
            .and_then(|c| c.client_messages.get_mut(at.index))
            .and_then(|m| m.deliveries.get_mut(at.delivery))
        {
            f(delivery);
            self.changed(&mut state);
        }
    }

    /// A delivery is over.
    pub fn delivery_done(&self, at: DeliveryRef) {
        let mut state = self.state();
        if state.epoch != at.epoch {
            return;
        }
        let was_pending = state
            .calls
            .get_mut(&at.call)
            .and_then(|c| c.client_messages.get_mut(at.index))
            .and_then(|m| m.deliveries.get_mut(at.delivery))
            .is_some_and(|d| !std::mem::replace(&mut d.done, true));
        if was_pending {
            state.pending = state.pending.saturating_sub(1);
        }
        self.changed(&mut state);
    }

    /// Whether this message is held back for the next one (the reorder fault's roll).
    pub fn roll_reorder(&self) -> bool {
        let mut live = self.live();
        let rate = live.callback_faults.reorder;
        rate > 0.0 && live.callback_rng.f64() < rate
    }

    /// Marks a message's attempts as reordered.
    pub fn mark_reordered(&self, at: DeliveryRef) {
        let mut state = self.state();
        if state.epoch != at.epoch {
            return;
        }
        if let Some(m) = state
            .calls
            .get_mut(&at.call)
            .and_then(|c| c.client_messages.get_mut(at.index))
        {
            for d in &mut m.deliveries {
                d.attempts.iter_mut().for_each(|a| a.reordered = true);
            }
        }
    }

    /// (drop the first attempt, send a duplicate after a success) for one delivery.
    pub fn roll_callback_faults(&self) -> (bool, bool) {
        let mut live = self.live();
        let faults = live.callback_faults.clone();
        let roll_drop = live.callback_rng.f64();
        let roll_duplicate = live.callback_rng.f64();
        (
            roll_drop < faults.drop_first,
            roll_duplicate < faults.duplicate,
        )
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

    pub fn elapsed_ms(&self) -> u64 {
        self.now_ms()
    }

    // ---- the REST API's account ----

    /// A REST request arrived, with this `IdempotencyKey`.
    pub fn count_request(&self, key: Option<&str>) {
        self.counters.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(key) = key {
            *self
                .state()
                .requests_per_key
                .entry(key.to_owned())
                .or_default() += 1;
        }
    }

    /// One seeded roll per request: the same seed and the same requests give the same faults.
    pub fn roll(&self) -> Roll {
        let mut live = self.live();
        let roll = live.fault_rng.f64();
        Roll {
            fault: live.faults.pick(roll),
            stall: live.faults.stall,
            limit: live.concurrency_limit,
            header: live.concurrency_header,
            latency: live.latency,
        }
    }

    pub fn count_fault(&self) {
        self.counters.faults.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count_throttled(&self) {
        self.counters.throttled.fetch_add(1, Ordering::SeqCst);
    }

    /// A request enters the account: `Ok(in flight)`, or `Err(in flight before it)` beyond
    /// the limit (error 20429: "Requests that receive 429 responses aren't processed").
    pub fn enter(&self, limit: Option<usize>) -> Result<usize, usize> {
        let c = &self.counters;
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        if limit.is_some_and(|n| now > n) {
            c.in_flight.fetch_sub(1, Ordering::SeqCst);
            c.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(now - 1);
        }
        c.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Ok(now)
    }

    /// A request leaves the account with this status.
    pub fn leave(&self, status: u16, key: Option<&str>) {
        let c = &self.counters;
        c.in_flight.fetch_sub(1, Ordering::SeqCst);
        if (200..300).contains(&status) {
            c.succeeded.fetch_add(1, Ordering::SeqCst);
            if let Some(key) = key {
                *self
                    .state()
                    .succeeded_per_key
                    .entry(key.to_owned())
                    .or_default() += 1;
            }
        } else {
            c.rejected.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Keeps a refused REST request for the page and the control API.
    pub fn record_refused(&self, mut refused: RefusedRequest) {
        refused.at_ms = self.now_ms();
        let mut state = self.state();
        if state.refused.len() == REFUSED_KEPT {
            state.refused.pop_front();
        }
        state.refused.push_back(refused);
        self.changed(&mut state);
    }

    /// Opens a create on a call: the call must exist (20404), and a key seen on this operation
    /// within the window answers the first result, even if the call ended since: the request
    /// was processed once (the `IdempotencyKey` parameter, "a unique string value per API
    /// call": <https://www.twilio.com/docs/voice/api/userdefinedmessage-resource>).
    pub fn open_create<'a>(
        &'a self,
        path: &'a str,
        call: &CallSid,
        key: Option<&'a str>,
    ) -> Result<Create<'a>, Option<(u16, Vec<u8>)>> {
        let mut state = self.state();
        if !state.calls.contains_key(call) {
            return Err(None);
        }
        if let Some(key) = key {
            let id = (path.to_owned(), key.to_owned());
            let window = self.settings.idempotency_window;
            match state.idempotency.get(&id) {
                Some(stored) if stored.at.elapsed() <= window => {
                    self.counters.replays.fetch_add(1, Ordering::SeqCst);
                    return Err(Some((stored.status, stored.body.clone())));
                }
                Some(_) => {
                    state.idempotency.remove(&id);
                }
                None => {}
            }
        }
        Ok(Create {
            model: self,
            state,
            path,
            call: *call,
            key,
        })
    }

    /// Removes a subscription; `false` when the call or the subscription is unknown.
    pub fn unsubscribe(&self, call: &CallSid, sid: &str) -> bool {
        let mut state = self.state();
        let Some(found) = state.calls.get_mut(call) else {
            return false;
        };
        let before = found.subscriptions.len();
        found.subscriptions.retain(|s| s.sid.as_str() != sid);
        let removed = found.subscriptions.len() != before;
        self.changed(&mut state);
        removed
    }

    // ---- settings that change while it runs ----

    pub fn set_faults(&self, faults: Faults) -> Result<(), EmulatorError> {
        faults.check().map_err(EmulatorError::Setting)?;
        let mut live = self.live();
        live.fault_rng = fastrand::Rng::with_seed(faults.seed);
        live.faults = faults;
        drop(live);
        self.bump();
        Ok(())
    }

    pub fn set_callback_faults(&self, faults: CallbackFaults) -> Result<(), EmulatorError> {
        faults.check().map_err(EmulatorError::Setting)?;
        let mut live = self.live();
        live.callback_rng = fastrand::Rng::with_seed(faults.seed);
        live.callback_faults = faults;
        drop(live);
        self.bump();
        Ok(())
    }

    pub fn set_concurrency_limit(&self, limit: Option<usize>) {
        self.live().concurrency_limit = limit;
        self.bump();
    }

    pub fn set_latency(&self, latency: Duration) {
        self.live().latency = latency;
        self.bump();
    }

    fn bump(&self) {
        let mut state = self.state();
        self.changed(&mut state);
    }

    pub fn live_view(&self) -> LiveView {
        let live = self.live();
        LiveView {
            concurrency_limit: live.concurrency_limit,
            latency_ms: live.latency.as_millis() as u64,
            faults: live
                .faults
                .rates
                .iter()
                .map(|(k, r)| (k.name().to_owned(), *r))
                .collect(),
            fault_seed: live.faults.seed,
            callback_faults: CallbackFaultsView {
                duplicate: live.callback_faults.duplicate,
                reorder: live.callback_faults.reorder,
                drop_first: live.callback_faults.drop_first,
                seed: live.callback_faults.seed,
            },
        }
    }

    // ---- counters ----

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            requests: c.requests.load(Ordering::SeqCst),
            succeeded: c.succeeded.load(Ordering::SeqCst),
            rejected: c.rejected.load(Ordering::SeqCst),
            throttled: c.throttled.load(Ordering::SeqCst),
            faults: c.faults.load(Ordering::SeqCst),
            peak_in_flight: c.peak_in_flight.load(Ordering::SeqCst),
            replays: c.replays.load(Ordering::SeqCst),
            messages: c.messages.load(Ordering::SeqCst),
        }
    }

    pub fn requests_per_key(&self) -> HashMap<String, u64> {
        self.state().requests_per_key.clone()
    }

    pub fn succeeded_per_key(&self) -> HashMap<String, u64> {
        self.state().succeeded_per_key.clone()
    }

    /// Forgets calls, messages, subscriptions, attempts, keys, refusals and counters, cancels
    /// the deliveries under way, and puts faults and limits back to how the emulator started;
    /// the account, its keys and the port stay.
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
        let epoch = state.epoch + 1;
        let version = state.version;
        let (clients, next_client) = (std::mem::take(&mut state.clients), state.next_client);
        *state = State {
            epoch,
            version,
            clients,
            next_client,
            ..State::default()
        };
        *self.live() = Live::from(&self.settings);
        let c = &self.counters;
        for counter in [
            &c.requests,
            &c.succeeded,
            &c.rejected,
            &c.throttled,
            &c.faults,
            &c.replays,
            &c.messages,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        // Requests in flight are still in flight: they leave through `leave`.
        c.peak_in_flight
            .store(c.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        self.changed(&mut state);
    }
}

impl Create<'_> {
    /// The call must be `in-progress` or `ringing` (21220).
    pub fn check_active(&self) -> Result<(), Refusal> {
        let Some(found) = self.state.calls.get(&self.call) else {
            return Err((404, 20404, "call not found".into()));
        };
        if !found.info.status.is_active() {
            // ASSUMPTION (no source states the status or code; docs/twilio-behaviour.md#errors):
            // HTTP 400 with 21220, whose text is Twilio's ("a realtime operation on a Call that
            // was not in-progress", https://www.twilio.com/docs/api/errors/21220).
            return Err((
                400,
                21220,
                format!(
                    "Invalid call state: you attempted a realtime operation on a Call that was not in-progress (it is {})",
                    found.info.status
                ),
            ));
        }
        Ok(())
    }

    /// Records a message into the call (answered 201 on either leg, as Twilio does). The
    /// client gets it if it is on this leg; otherwise it drops it, as twilio-voice.js
    /// (`lib/twilio/call.ts`) drops a message whose call SID is not its own call's
    /// (docs/twilio-behaviour.md#active-calls-and-call-legs).
    pub fn record_message(mut self, content: serde_json::Value) -> (u16, Vec<u8>) {
        let sid: MessageSid = new_sid("KX");
        let date = now_rfc2822();
        let model = self.model;
        let body = serde_json::to_vec(&MessageBody {
            account_sid: &model.settings.account_sid,
            call_sid: &self.call,
            sid: &sid,
            date_created: &date,
        })
        .unwrap_or_default();
        let at_ms = model.now_ms();
        let state = &mut *self.state;
        if let Some(found) = state.calls.get_mut(&self.call) {
            // What twilio-voice.js hands its `messageReceived` listeners (lib/twilio/call.ts).
            let message = ReceivedMessage {
                sid,
                content,
                content_type: "application/json".into(),
                message_type: USER_DEFINED_MESSAGE.into(),
                voice_event_sid: sid,
                idempotency_key: self.key.map(str::to_owned),
                date_created: date,
                at_ms,
            };
            let client = found.info.client_call_sid;
            // A connected client hears every message of its call, addressed to the leg the
            // service chose: the SDK itself drops the other leg's.
            if let Some(connected) = found.owner.and_then(|id| state.clients.get(&id)) {
                let _ = connected.tx.send(ToClient::Message {
                    call_sid: self.call,
                    message: message.clone(),
                });
            }
            if client == self.call {
                found.received.push(message);
            } else {
                let leg = if found.info.parent_call_sid.is_some() {
                    "child"
                } else {
                    "parent"
                };
                found.dropped.push(DroppedMessage {
                    message,
                    call_sid: self.call,
                    client_call_sid: client,
                    reason: format!(
                        "sent to the {leg} leg {}, but the client is on {client}: the Voice SDK drops a message whose call SID is not its own (twilio-voice.js lib/twilio/call.ts)",
                        self.call
                    ),
                });
            }
        }
        model.counters.messages.fetch_add(1, Ordering::SeqCst);
        self.finish(201, body)
    }

    /// Records a subscription of the call.
    pub fn record_subscription(mut self, callback: &str, method: &str) -> (u16, Vec<u8>) {
        let sid: SubscriptionSid = new_sid("ZY");
        let date = now_rfc2822();
        let model = self.model;
        let account = &model.settings.account_sid;
        let call = self.call;
        let body = serde_json::to_vec(&SubscriptionBody {
            account_sid: account,
            call_sid: &call,
            sid: &sid,
            date_created: &date,
            uri: format!(
                "/2010-04-01/Accounts/{account}/Calls/{call}/UserDefinedMessageSubscriptions/{sid}.json"
            ),
        })
        .unwrap_or_default();
        let at_ms = model.now_ms();
        if let Some(found) = self.state.calls.get_mut(&call) {
            found.subscriptions.push(SubscriptionInfo {
                sid,
                callback: callback.to_owned(),
                method: method.to_owned(),
                date_created: date,
                at_ms,
            });
        }
        self.finish(201, body)
    }

    /// Keeps the answer for the key (only 2xx answers are kept: a failed request can be
    /// retried with its key and processed then).
    fn finish(mut self, status: u16, body: Vec<u8>) -> (u16, Vec<u8>) {
        if let Some(key) = self.key {
            self.state.idempotency.insert(
                (self.path.to_owned(), key.to_owned()),
                Stored {
                    at: Instant::now(),
                    status,
                    body: body.clone(),
                },
            );
        }
        self.model.changed(&mut self.state);
        (status, body)
    }
}
