//! A local Twilio for Voice call messages: one stateful emulator of the REST API
//! (`UserDefinedMessage`, `UserDefinedMessageSubscription`), of the call's client (what it
//! received, and what it sends back), of the signed callbacks Twilio delivers, and of the
//! faults a service must survive (the account's concurrency limit, proxies, resets, stalls,
//! duplicate and reordered callbacks).
//!
//! Every rule names its source; what is inferred is marked ASSUMPTION here and in the table of
//! the crate's README.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use twilio_call_messages_emulator::Emulator;
//!
//! let twilio = Emulator::start().await?;
//! let call = twilio.create_call();
//! let client = twilio_call_messages::Client::builder()
//!     .account_sid(twilio.account_sid().as_str())
//!     .auth_token(twilio.auth_token())
//!     .base_url(twilio.base_url())
//!     .build()?;
//! client.send_message(call, &serde_json::json!({"hint": "offer the upgrade"})).await?;
//!
//! let received = twilio.client_received(&call);
//! assert_eq!(received[0].content, serde_json::json!({"hint": "offer the upgrade"}));
//! assert_eq!(received[0].message_type, "user-defined-message");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod control;
mod delivery;
mod http;
mod rest;
mod settings;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use twilio_call_messages::time::OffsetDateTime;
use twilio_call_messages::time::format_description::well_known::Rfc2822;
use twilio_call_messages::{AccountSid, ApiKeySid, CallSid, MessageSid, SubscriptionSid};

pub use settings::{
    CallStatus, CallbackBody, CallbackFaults, DEFAULT_IDEMPOTENCY_WINDOW, DEFAULT_SEQUENCE_START,
    DEFAULT_STALL, FaultKind, Faults, Signing,
};

use settings::{ApiKey, Settings};

/// The longest content a message may carry, in characters (error 32703 beyond it,
/// <https://www.twilio.com/docs/api/errors/32703>; the client SDKs say 10 KB, error 31212 in
/// twilio-voice.js `lib/twilio/errors/generated.ts`).
pub const MAX_CONTENT_CHARS: usize = 10_000;

/// Why the emulator refused something asked through its Rust API or control API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmulatorError {
    /// No call with this SID.
    UnknownCall(String),
    /// The call is not `in-progress` or `ringing`: its client cannot send.
    CallNotActive(CallStatus),
    /// A call with this SID exists already.
    CallExists(String),
    /// The content is longer than [`MAX_CONTENT_CHARS`] (twilio-voice.js error 31212).
    ContentTooLong(usize),
    /// A setting is out of range.
    Setting(String),
}

impl fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmulatorError::UnknownCall(sid) => write!(f, "no call {sid}"),
            EmulatorError::CallNotActive(status) => {
                write!(f, "the call is {status}, not in-progress or ringing")
            }
            EmulatorError::CallExists(sid) => write!(f, "call {sid} exists already"),
            EmulatorError::ContentTooLong(n) => write!(
                f,
                "content of {n} characters is longer than {MAX_CONTENT_CHARS} (error 31212)"
            ),
            EmulatorError::Setting(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for EmulatorError {}

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
}

/// A message the call's client sent, and its deliveries to the call's subscriptions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClientMessage {
    /// `KX…`: the callback's `Sid`.
    pub sid: MessageSid,
    /// The call it was sent in.
    pub call_sid: CallSid,
    /// The content, as JSON.
    pub content: serde_json::Value,
    /// The callback's `SequenceNumber`.
    pub sequence_number: u64,
    /// The callback's `Timestamp` (RFC 2822).
    pub timestamp: String,
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
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
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
    /// Messages recorded (each sent to the call's client once).
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

/// What a repeated key gets.
struct Stored {
    at: Instant,
    status: u16,
    body: Vec<u8>,
}

struct Call {
    info: CallInfo,
    received: Vec<ReceivedMessage>,
    subscriptions: Vec<SubscriptionInfo>,
    client_messages: Vec<ClientMessage>,
    next_sequence: u64,
    /// The call's delivery lane (in order, one message after the other).
    lane: Option<mpsc::UnboundedSender<usize>>,
}

#[derive(Default)]
struct State {
    calls: HashMap<CallSid, Call>,
    order: Vec<CallSid>,
    /// (operation path, key) -> the first result.
    idempotency: HashMap<(String, String), Stored>,
    requests_per_key: HashMap<String, u64>,
    succeeded_per_key: HashMap<String, u64>,
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

pub(crate) struct Inner {
    settings: Settings,
    base_url: String,
    live: Mutex<Live>,
    state: Mutex<State>,
    counters: Counters,
    /// Deliveries not yet done.
    pending: watch::Sender<usize>,
    shutdown: watch::Sender<bool>,
    /// Callback HTTP clients by (connect timeout, read timeout).
    http: Mutex<HashMap<(Duration, Duration), twilio_call_messages::reqwest::Client>>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running emulator. Clones share it; it serves until [`shutdown`](Self::shutdown) or until
/// its tokio runtime ends.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.inner.base_url)
            .field("account_sid", &self.inner.settings.account_sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

/// Settings of an emulator to start.
#[derive(Clone)]
pub struct EmulatorBuilder {
    settings: Settings,
    bind: SocketAddr,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("bind", &self.bind)
            .field("account_sid", &self.settings.account_sid)
            .field("auth_token", &"<redacted>")
            .field("api_keys", &self.settings.api_keys.len())
            .field("concurrency_limit", &self.settings.concurrency_limit)
            .field("latency", &self.settings.latency)
            .field("faults", &self.settings.faults)
            .field("callback_faults", &self.settings.callback_faults)
            .finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn new_sid<S: std::str::FromStr>(prefix: &str) -> S
where
    S::Err: fmt::Debug,
{
    format!("{prefix}{}", random_hex())
        .parse()
        .expect("a prefix and 32 hex digits is a SID")
}

fn now_rfc2822() -> String {
    let now = OffsetDateTime::now_utc();
    now.format(&Rfc2822).unwrap_or_else(|_| now.to_string())
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            settings: Settings {
                account_sid: new_sid("AC"),
                auth_token: random_hex(),
                api_keys: Vec::new(),
                concurrency_limit: None,
                concurrency_header: true,
                latency: Duration::ZERO,
                idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
                sequence_start: DEFAULT_SEQUENCE_START,
                callback_body: CallbackBody::default(),
                signing: Signing::default(),
                faults: Faults::default(),
                callback_faults: CallbackFaults::default(),
            },
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl EmulatorBuilder {
    /// The account (default: a random `AC…`).
    pub fn account_sid(mut self, sid: AccountSid) -> Self {
        self.settings.account_sid = sid;
        self
    }

    /// The account's auth token (default: random; read it with [`Emulator::auth_token`]).
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.settings.auth_token = token.into();
        self
    }

    /// An API key of the account that may authenticate instead of the auth token.
    pub fn api_key(mut self, sid: ApiKeySid, secret: impl Into<String>) -> Self {
        self.settings.api_keys.push(ApiKey {
            sid,
            secret: secret.into(),
        });
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The account's concurrency limit: beyond `n` REST requests in flight, 429 / 20429
    /// (default: none).
    pub fn concurrency_limit(mut self, n: usize) -> Self {
        self.settings.concurrency_limit = Some(n);
        self
    }

    /// Whether REST answers carry `Twilio-Concurrent-Requests` (default: yes; Twilio advises
    /// watching it, error page 20429).
    pub fn concurrency_header(mut self, on: bool) -> Self {
        self.settings.concurrency_header = on;
        self
    }

    /// How long each REST request takes inside the account (held in flight; default: 0).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.settings.latency = latency;
        self
    }

    /// How long a repeated `IdempotencyKey` returns the first result
    /// (default [`DEFAULT_IDEMPOTENCY_WINDOW`]).
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.settings.idempotency_window = window;
        self
    }

    /// The `SequenceNumber` of a call's first callback: 0 or 1 (default
    /// [`DEFAULT_SEQUENCE_START`]).
    pub fn sequence_start(mut self, start: u64) -> Self {
        self.settings.sequence_start = start;
        self
    }

    /// The body of callbacks (default flat JSON).
    pub fn callback_body(mut self, body: CallbackBody) -> Self {
        self.settings.callback_body = body;
        self
    }

    /// How callbacks are signed (default: the auth token).
    pub fn signing(mut self, signing: Signing) -> Self {
        self.settings.signing = signing;
        self
    }

    /// Faults of the REST API.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.settings.faults = faults;
        self
    }

    /// Faults of the callbacks.
    pub fn callback_faults(mut self, faults: CallbackFaults) -> Self {
        self.settings.callback_faults = faults;
        self
    }

    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(self) -> std::io::Result<Emulator> {
        let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
        self.settings.faults.check().map_err(invalid)?;
        self.settings.callback_faults.check().map_err(invalid)?;
        if self.settings.sequence_start > 1 {
            return Err(invalid("sequence_start must be 0 or 1".into()));
        }
        if self.settings.auth_token.is_empty() {
            return Err(invalid("the auth token must not be empty".into()));
        }
        let listener = TcpListener::bind(self.bind).await?;
        let addr = listener.local_addr()?;
        let s = &self.settings;
        let live = Live {
            concurrency_limit: s.concurrency_limit,
            concurrency_header: s.concurrency_header,
            latency: s.latency,
            fault_rng: fastrand::Rng::with_seed(s.faults.seed),
            faults: s.faults.clone(),
            callback_rng: fastrand::Rng::with_seed(s.callback_faults.seed),
            callback_faults: s.callback_faults.clone(),
        };
        let host = if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        };
        let inner = Arc::new(Inner {
            settings: self.settings,
            base_url: format!("http://{host}"),
            live: Mutex::new(live),
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            pending: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            http: Mutex::new(HashMap::new()),
        });
        tokio::spawn(accept(listener, inner.clone()));
        Ok(Emulator { inner, addr })
    }
}

async fn accept(listener: TcpListener, inner: Arc<Inner>) {
    let mut stop = inner.shutdown.subscribe();
    // Connections live in this set: when serving stops, dropping it aborts them all.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let inner = inner.clone();
                connections.spawn(http::serve_connection(stream, move |request| {
                    let inner = inner.clone();
                    async move { route(&inner, request).await }
                }));
            }
            _ = stop.wait_for(|stopped| *stopped) => return,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn route(inner: &Arc<Inner>, request: http::Request) -> http::Outcome {
    if request.path().starts_with("/emulator/") || request.path() == "/emulator" {
        http::Outcome::Respond(control::handle(inner, &request))
    } else {
        rest::handle(inner, request).await
    }
}

impl Emulator {
    /// Settings for an emulator to start.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts an emulator with the defaults: a random account and token, on a free port of
    /// 127.0.0.1, no limit, no faults.
    pub async fn start() -> std::io::Result<Emulator> {
        Self::builder().start().await
    }

    /// The base URL to give a client (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The account.
    pub fn account_sid(&self) -> &AccountSid {
        &self.inner.settings.account_sid
    }

    /// The account's auth token (a local, made-up secret; it signs the callbacks).
    pub fn auth_token(&self) -> &str {
        &self.inner.settings.auth_token
    }

    /// Creates an `in-progress` call and returns its SID.
    pub fn create_call(&self) -> CallSid {
        let sid = new_sid("CA");
        self.add_call(sid, CallStatus::InProgress, None)
            .expect("a fresh random SID is new");
        sid
    }

    /// Adds a call with this SID and status, as a child leg of `parent` if given.
    pub fn add_call(
        &self,
        sid: CallSid,
        status: CallStatus,
        parent: Option<CallSid>,
    ) -> Result<CallInfo, EmulatorError> {
        let mut state = self.inner.state();
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
            account_sid: self.inner.settings.account_sid,
            status,
            parent_call_sid: parent,
        };
        state.calls.insert(
            sid,
            Call {
                info: info.clone(),
                received: Vec::new(),
                subscriptions: Vec::new(),
                client_messages: Vec::new(),
                next_sequence: self.inner.settings.sequence_start,
                lane: None,
            },
        );
        state.order.push(sid);
        Ok(info)
    }

    /// Adds `n` in-progress calls (for load tests) and returns their SIDs.
    pub fn create_calls(&self, n: usize) -> Vec<CallSid> {
        (0..n).map(|_| self.create_call()).collect()
    }

    /// A call.
    pub fn call(&self, sid: &CallSid) -> Option<CallInfo> {
        self.inner.state().calls.get(sid).map(|c| c.info.clone())
    }

    /// Every call, in the order they were created.
    pub fn calls(&self) -> Vec<CallInfo> {
        let state = self.inner.state();
        state
            .order
            .iter()
            .filter_map(|sid| state.calls.get(sid).map(|c| c.info.clone()))
            .collect()
    }

    /// Changes a call's status (e.g. `completed` when the caller hangs up).
    pub fn set_call_status(
        &self,
        sid: &CallSid,
        status: CallStatus,
    ) -> Result<CallInfo, EmulatorError> {
        let mut state = self.inner.state();
        let call = state
            .calls
            .get_mut(sid)
            .ok_or_else(|| EmulatorError::UnknownCall(sid.to_string()))?;
        call.info.status = status;
        Ok(call.info.clone())
    }

    /// What the call's client received, in the order Twilio accepted it.
    pub fn client_received(&self, sid: &CallSid) -> Vec<ReceivedMessage> {
        self.inner
            .state()
            .calls
            .get(sid)
            .map(|c| c.received.clone())
            .unwrap_or_default()
    }

    /// The call's subscriptions.
    pub fn subscriptions(&self, sid: &CallSid) -> Vec<SubscriptionInfo> {
        self.inner
            .state()
            .calls
            .get(sid)
            .map(|c| c.subscriptions.clone())
            .unwrap_or_default()
    }

    /// The call's client sends `content`: Twilio delivers it to every subscription of the
    /// call (in the background; [`settled`](Self::settled) waits for the deliveries).
    pub fn client_send(
        &self,
        sid: &CallSid,
        content: serde_json::Value,
    ) -> Result<MessageSid, EmulatorError> {
        delivery::client_send(&self.inner, sid, content)
    }

    /// What the call's client sent, with every delivery attempt.
    pub fn client_messages(&self, sid: &CallSid) -> Vec<ClientMessage> {
        self.inner
            .state()
            .calls
            .get(sid)
            .map(|c| c.client_messages.clone())
            .unwrap_or_default()
    }

    /// Waits until no delivery is in progress.
    pub async fn settled(&self) {
        let mut pending = self.inner.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// What the REST API saw so far.
    pub fn stats(&self) -> Stats {
        stats(&self.inner)
    }

    /// REST requests received per `IdempotencyKey`, whatever their answer.
    pub fn requests_per_key(&self) -> HashMap<String, u64> {
        self.inner.state().requests_per_key.clone()
    }

    /// 2xx answers per `IdempotencyKey` (the first and every replay).
    pub fn succeeded_per_key(&self) -> HashMap<String, u64> {
        self.inner.state().succeeded_per_key.clone()
    }

    /// Every message recorded, over all calls: (call, message). A key served twice still
    /// records one message.
    pub fn messages(&self) -> Vec<(CallSid, ReceivedMessage)> {
        let state = self.inner.state();
        state
            .order
            .iter()
            .filter_map(|sid| state.calls.get(sid))
            .flat_map(|c| c.received.iter().map(|m| (c.info.sid, m.clone())))
            .collect()
    }

    /// Sets the REST faults (and reseeds them).
    pub fn set_faults(&self, faults: Faults) -> Result<(), EmulatorError> {
        faults.check().map_err(EmulatorError::Setting)?;
        let mut live = self.inner.live();
        live.fault_rng = fastrand::Rng::with_seed(faults.seed);
        live.faults = faults;
        Ok(())
    }

    /// Sets the callback faults (and reseeds them).
    pub fn set_callback_faults(&self, faults: CallbackFaults) -> Result<(), EmulatorError> {
        faults.check().map_err(EmulatorError::Setting)?;
        let mut live = self.inner.live();
        live.callback_rng = fastrand::Rng::with_seed(faults.seed);
        live.callback_faults = faults;
        Ok(())
    }

    /// Sets the account's concurrency limit (`None`: no limit).
    pub fn set_concurrency_limit(&self, limit: Option<usize>) {
        self.inner.live().concurrency_limit = limit;
    }

    /// Sets the latency of each REST request.
    pub fn set_latency(&self, latency: Duration) {
        self.inner.live().latency = latency;
    }

    /// Stops serving: the listener closes and open connections are dropped.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

fn stats(inner: &Inner) -> Stats {
    let c = &inner.counters;
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

/// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
