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

mod callbacks;
mod certificate;
mod control;
mod guard;
mod http;
mod model;
mod page;
mod rest;
mod sdp;
mod settings;
mod signal;
mod token;
mod websocket;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use twilio_call_messages::{AccountSid, ApiKeySid, CallSid, MessageSid};

pub use model::{
    ACCOUNT_NUMBER, Attempt, CLIENT_MESSAGES_PER_SECOND, CallInfo, CallbackDelivery, ClientCall,
    ClientLeg, ClientMessage, ConferenceInfo, DialedCall, DroppedMessage, EmulatorError, Endpoint,
    MAX_CONTENT_CHARS, OTHER_PARTY, ParticipantInfo, ReceivedMessage, Stats, SubscriptionInfo,
    USER_DEFINED_MESSAGE, VoiceClient,
};
pub use rest::RefusedRequest;

/// The former name of [`CallbackDelivery`] ("delivery" also names the SDK's webhook
/// deduplication).
#[deprecated(note = "renamed CallbackDelivery")]
pub type Delivery = CallbackDelivery;
pub use settings::{
    CallStatus, CallbackBody, CallbackFaults, DEFAULT_IDEMPOTENCY_WINDOW, DEFAULT_SEQUENCE_START,
    DEFAULT_STALL, FaultKind, Faults, Signing,
};
pub use token::{EMULATOR_APPLICATION_SID, TokenError};

use model::{Model, new_sid, random_hex};
use settings::{ApiKey, Settings};

pub(crate) struct Inner {
    model: Model,
    /// Serves `wss://…/signal` on the same port (a connection that opens with a TLS handshake).
    certificate: certificate::Certificate,
    base_url: String,
    /// Host names the control API answers besides loopback and the bind address.
    allowed_hosts: Vec<String>,
    bind: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// Callback HTTP clients by (connect timeout, read timeout).
    http: Mutex<HashMap<(Duration, Duration), twilio_call_messages::reqwest::Client>>,
}

impl Inner {
    fn chunderw(&self) -> String {
        self.base_url
            .strip_prefix("http://")
            .unwrap_or(&self.base_url)
            .to_owned()
    }

    fn access_token(&self, identity: &str, ttl: Duration) -> String {
        let settings = &self.model.settings;
        token::mint(
            settings.account_sid.as_str(),
            &settings.api_keys[0],
            identity,
            token::now_secs(),
            ttl.as_secs(),
        )
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
            .field("account_sid", &self.inner.model.settings.account_sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

/// Settings of an emulator to start.
#[derive(Clone)]
pub struct EmulatorBuilder {
    settings: Settings,
    bind: SocketAddr,
    allowed_hosts: Vec<String>,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("bind", &self.bind)
            .field("allowed_hosts", &self.allowed_hosts)
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
                list_page_size: None,
                callback_body: CallbackBody::default(),
                signing: Signing::default(),
                faults: Faults::default(),
                callback_faults: CallbackFaults::default(),
            },
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            allowed_hosts: Vec::new(),
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

    /// A host name (without port) whose `Host` header the control API and the page answer,
    /// besides loopback names and the bind address: e.g. `emulator` for a docker-compose
    /// service reached by that name. Requests with any other `Host` are refused (DNS
    /// rebinding).
    pub fn allow_host(mut self, name: impl Into<String>) -> Self {
        self.allowed_hosts.push(name.into().to_ascii_lowercase());
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

    /// The most items one page of a list (ListCall, ListParticipant) holds, whatever
    /// `PageSize` asks (at least 1; Twilio's is 1000): a client's paging can be tested with a
    /// handful of calls.
    pub fn list_page_size(mut self, most: usize) -> Self {
        self.settings.list_page_size = Some(most.max(1));
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
        let mut settings = self.settings;
        // Access tokens are signed with an API key of the account: one is made when none
        // was given, so that `access_token` works out of the box.
        if settings.api_keys.is_empty() {
            settings.api_keys.push(ApiKey {
                sid: new_sid("SK"),
                secret: random_hex(),
            });
        }
        let listener = TcpListener::bind(self.bind).await?;
        let addr = listener.local_addr()?;
        let host = if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        };
        let mut names = self.allowed_hosts.clone();
        if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
            names.push(addr.ip().to_string());
        }
        let certificate = certificate::Certificate::generate(&names)?;
        let inner = Arc::new(Inner {
            certificate,
            model: Model::new(settings),
            base_url: format!("http://{host}"),
            allowed_hosts: self.allowed_hosts,
            bind: addr,
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
                connections.spawn(async move {
                    // TLS opens with a handshake record (0x16); HTTP/1.1 with a method's
                    // letter. One port serves both, so the Voice SDK's `chunderw` is the
                    // REST base URL's host and port.
                    let mut first = [0u8; 1];
                    if matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16) {
                        return signal::serve(inner, stream).await;
                    }
                    http::serve_connection(stream, move |request| {
                        let inner = inner.clone();
                        async move { route(&inner, request).await }
                    })
                    .await
                });
            }
            _ = stop.wait_for(|stopped| *stopped) => return,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn route(inner: &Arc<Inner>, request: http::Request) -> http::Outcome {
    if request.path().starts_with("/emulator/") || request.path() == "/emulator" {
        // Only its own page and local tools drive the emulator; Twilio's paths stay open to
        // Twilio's clients, as the real API is.
        if let Err(refused) = guard::check(inner, &request) {
            return http::Outcome::Respond(refused);
        }
        match page::serve(&request) {
            Some(response) => http::Outcome::Respond(response),
            None => control::handle(inner, &request).await,
        }
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
        &self.inner.model.settings.account_sid
    }

    /// The account's auth token (a local, made-up secret; it signs the callbacks).
    pub fn auth_token(&self) -> &str {
        &self.inner.model.settings.auth_token
    }

    /// The host and port to give the Voice JS SDK as its signaling gateway (the `Device`
    /// option `chunderw`): it connects to `wss://{chunderw}/signal`.
    pub fn chunderw(&self) -> String {
        self.inner.chunderw()
    }

    /// `wss://127.0.0.1:PORT/signal`: the Voice SDK's signaling, on the REST API's port.
    pub fn signal_url(&self) -> String {
        format!("wss://{}/signal", self.chunderw())
    }

    /// The TLS certificate of the signaling endpoint (PEM), made when the emulator started:
    /// import it, or trust its key with [`certificate_spki_sha256`](Self::certificate_spki_sha256).
    pub fn certificate_pem(&self) -> &str {
        &self.inner.certificate.pem
    }

    /// The base64 SHA-256 of the certificate's public key, for Chromium's
    /// `--ignore-certificate-errors-spki-list=…` (a test browser only).
    pub fn certificate_spki_sha256(&self) -> &str {
        &self.inner.certificate.spki_sha256
    }

    /// The API key that signs [`access_token`](Self::access_token)s: the first one given to
    /// the builder, or one the emulator made. A service's own token code (Twilio's helper
    /// libraries, any JWT library) signs with this SID and secret.
    pub fn api_key(&self) -> (ApiKeySid, &str) {
        let key = &self.inner.model.settings.api_keys[0];
        (key.sid, &key.secret)
    }

    /// A Voice access token for `identity`, valid for an hour: Twilio's JWT, HS256 signed
    /// with [`api_key`](Self::api_key), with a voice grant that allows incoming calls and
    /// names [`EMULATOR_APPLICATION_SID`] for outgoing ones.
    pub fn access_token(&self, identity: &str) -> String {
        self.access_token_for(identity, Duration::from_secs(3600))
    }

    /// As [`access_token`](Self::access_token), valid for `ttl` from now.
    pub fn access_token_for(&self, identity: &str, ttl: Duration) -> String {
        self.inner.access_token(identity, ttl)
    }

    /// Checks an access token as the signaling endpoint does at `listen`.
    pub fn check_access_token(&self, token: &str) -> Result<String, TokenError> {
        let settings = &self.inner.model.settings;
        token::check(
            token,
            settings.account_sid.as_str(),
            &settings.api_keys,
            token::now_secs(),
        )
        .map(|grant| grant.identity)
    }

    /// The Voice SDK clients connected to the signaling endpoint.
    pub fn voice_clients(&self) -> Vec<VoiceClient> {
        self.inner.model.voice_clients()
    }

    /// A call rings the Voice SDK client registered as `identity` (`Device.register()`): a
    /// client call, `ringing`, from [`OTHER_PARTY`] on the parent leg, with the client on the
    /// child leg (`to` = `client:identity`); it becomes `in-progress` when the client accepts
    /// (`busy` when it rejects). Ending it first cancels it in the client.
    pub fn ring_client(&self, identity: &str) -> Result<ClientCall, EmulatorError> {
        self.inner.model.ring_client(identity, OTHER_PARTY)
    }

    /// Creates an `in-progress` call, with the call's client on it, and returns its SID: one
    /// `outbound-api` leg from [`ACCOUNT_NUMBER`] to `client:<a generated identity>`, as a call
    /// the REST API places to a client.
    pub fn create_call(&self) -> CallSid {
        let sid = new_sid("CA");
        self.add_call(sid, CallStatus::InProgress, None)
            .expect("a fresh random SID is new");
        sid
    }

    /// Adds a call with this SID and status, as a child leg of `parent` if given; the call's
    /// client is on it: an `outbound-api` leg (an `outbound-dial` one under a parent) to
    /// `client:<a generated identity>`. Its status is its own, not its parent's.
    pub fn add_call(
        &self,
        sid: CallSid,
        status: CallStatus,
        parent: Option<CallSid>,
    ) -> Result<CallInfo, EmulatorError> {
        self.inner.model.add_call(sid, status, parent)
    }

    /// Creates an `in-progress` Voice SDK client call with two legs: the client on the parent
    /// leg when it placed the call ([`ClientLeg::Outgoing`]: the parent's `from` is
    /// `client:<a generated identity>`), on the child leg when it accepted it
    /// ([`ClientLeg::Incoming`]: the child's `to` is). The other party is the phone
    /// [`OTHER_PARTY`]; [`ClientLeg::Both`] puts a second generated client there. A message
    /// sent to the leg without a client is answered 201 and dropped by the client
    /// ([`dropped_messages`](Self::dropped_messages)).
    pub fn create_client_call(&self, leg: ClientLeg) -> ClientCall {
        self.inner
            .model
            .create_client_call(leg, CallStatus::InProgress)
    }

    /// A call from `from` (the `inbound` parent leg) that dials `to` (an `outbound-dial`
    /// child leg); both `in-progress`. A client is on the leg where it is named: the
    /// parent's `from`, the child's `to`; the child's `from` is the caller's, or
    /// [`ACCOUNT_NUMBER`] when a client dials a phone (a caller ID must be a number).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use twilio_call_messages_emulator::{Emulator, Endpoint};
    ///
    /// let twilio = Emulator::start().await?;
    /// let call = twilio.dial(Endpoint::Phone("+15005550006".into()), Endpoint::Client("alice".into()));
    /// let child = twilio.call(&call.child.unwrap()).unwrap();
    /// assert_eq!((child.to.as_str(), child.direction.as_str()), ("client:alice", "outbound-dial"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn dial(&self, from: Endpoint, to: Endpoint) -> DialedCall {
        self.inner.model.dial(from, to)
    }

    /// A call from `from` still ringing, not yet dialled: an `inbound` parent leg with no
    /// child (Twilio creates the child leg only when the `<Dial>` runs).
    pub fn ringing_call(&self, from: Endpoint) -> CallSid {
        self.inner.model.ringing_call(from)
    }

    /// Dials the child leg of a call made with [`ringing_call`](Self::ringing_call) (an
    /// `outbound-dial` leg to `to`); both legs are then `in-progress`. Returns its SID.
    pub fn dial_child(&self, parent: &CallSid, to: Endpoint) -> Result<CallSid, EmulatorError> {
        self.inner.model.dial_child(parent, to)
    }

    /// A conference, empty (status `init`); returns its SID, `CF` and 32 lowercase hex digits.
    pub fn create_conference(&self, friendly_name: &str) -> String {
        self.inner.model.create_conference(friendly_name)
    }

    /// Adds a participant: a new `in-progress` `outbound-api` leg from [`ACCOUNT_NUMBER`] to
    /// `endpoint`, in the conference (as the REST API's Participants create would call it).
    /// Returns the leg's SID, which is the participant's `call_sid`.
    pub fn add_participant(
        &self,
        conference: &str,
        endpoint: Endpoint,
    ) -> Result<CallSid, EmulatorError> {
        self.inner.model.add_participant(conference, endpoint)
    }

    /// Puts an existing leg into a conference (e.g. a client's inbound leg that dialled into
    /// it), out of the one it was in; a ringing leg is answered.
    pub fn join_conference(&self, conference: &str, call: &CallSid) -> Result<(), EmulatorError> {
        self.inner.model.join_conference(conference, call)
    }

    /// Rings the registered Voice SDK client `identity` with a single `outbound-api` leg to
    /// `client:identity`; once the client accepts, the leg is a participant of `conference`.
    pub fn ring_client_into_conference(
        &self,
        conference: &str,
        identity: &str,
    ) -> Result<CallSid, EmulatorError> {
        self.inner
            .model
            .ring_client_into_conference(conference, identity)
    }

    /// A conference, with its participants in the order they joined.
    pub fn conference(&self, sid: &str) -> Option<ConferenceInfo> {
        self.inner.model.conference(sid)
    }

    /// Every conference, in the order they were created.
    pub fn conferences(&self) -> Vec<ConferenceInfo> {
        self.inner.model.conferences()
    }

    /// Adds `n` in-progress calls (for load tests) and returns their SIDs.
    pub fn create_calls(&self, n: usize) -> Vec<CallSid> {
        (0..n).map(|_| self.create_call()).collect()
    }

    /// A call.
    pub fn call(&self, sid: &CallSid) -> Option<CallInfo> {
        self.inner.model.call(sid)
    }

    /// Every call (each leg), in the order they were created.
    pub fn calls(&self) -> Vec<CallInfo> {
        self.inner.model.calls()
    }

    /// Changes a call's status (e.g. `completed` when the caller hangs up); both legs of a
    /// client call change together.
    pub fn set_call_status(
        &self,
        sid: &CallSid,
        status: CallStatus,
    ) -> Result<CallInfo, EmulatorError> {
        self.inner.model.set_call_status(sid, status)
    }

    /// What the call's client received on this leg, in the order Twilio accepted it.
    pub fn client_received(&self, sid: &CallSid) -> Vec<ReceivedMessage> {
        self.inner.model.client_received(sid)
    }

    /// Messages sent to this leg that the client dropped, with the reason.
    pub fn dropped_messages(&self, sid: &CallSid) -> Vec<DroppedMessage> {
        self.inner.model.dropped(sid)
    }

    /// The call's subscriptions.
    pub fn subscriptions(&self, sid: &CallSid) -> Vec<SubscriptionInfo> {
        self.inner.model.subscriptions(sid)
    }

    /// The call's client sends `content`: Twilio delivers it to every subscription of the
    /// client's leg (in the background; [`settled`](Self::settled) waits for the deliveries).
    /// Refused as the Voice SDK refuses it: over 10 KB (31212), while ringing (31211), too
    /// fast (31206).
    pub fn client_send(
        &self,
        sid: &CallSid,
        content: serde_json::Value,
    ) -> Result<MessageSid, EmulatorError> {
        self.client_send_text(sid, &content.to_string())
    }

    /// As [`client_send`](Self::client_send), with the content's JSON text, posted to the
    /// subscriptions exactly as given (key order and spacing kept).
    pub fn client_send_text(&self, sid: &CallSid, text: &str) -> Result<MessageSid, EmulatorError> {
        callbacks::client_send(
            &self.inner,
            sid,
            text,
            USER_DEFINED_MESSAGE,
            Default::default(),
        )
        .map(|(sid, _)| sid)
    }

    /// What the call's client sent, with every delivery attempt.
    pub fn client_messages(&self, sid: &CallSid) -> Vec<ClientMessage> {
        self.inner.model.client_messages(sid)
    }

    /// Waits until no delivery is in progress.
    pub async fn settled(&self) {
        let mut pending = self.inner.model.pending();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// What the REST API saw so far.
    pub fn stats(&self) -> Stats {
        self.inner.model.stats()
    }

    /// REST requests received per `IdempotencyKey`, whatever their answer.
    pub fn requests_per_key(&self) -> HashMap<String, u64> {
        self.inner.model.requests_per_key()
    }

    /// 2xx answers per `IdempotencyKey` (the first and every replay).
    pub fn succeeded_per_key(&self) -> HashMap<String, u64> {
        self.inner.model.succeeded_per_key()
    }

    /// Every message the clients received, over all calls: (call, message). A key served
    /// twice still records one message.
    pub fn messages(&self) -> Vec<(CallSid, ReceivedMessage)> {
        self.inner.model.messages()
    }

    /// REST requests answered with an error, a throttle or a fault (the last few hundred).
    pub fn refused_requests(&self) -> Vec<RefusedRequest> {
        rest::refused_requests(&self.inner)
    }

    /// Sets the REST faults (and reseeds them).
    pub fn set_faults(&self, faults: Faults) -> Result<(), EmulatorError> {
        self.inner.model.set_faults(faults)
    }

    /// Sets the callback faults (and reseeds them).
    pub fn set_callback_faults(&self, faults: CallbackFaults) -> Result<(), EmulatorError> {
        self.inner.model.set_callback_faults(faults)
    }

    /// Sets the account's concurrency limit (`None`: no limit).
    pub fn set_concurrency_limit(&self, limit: Option<usize>) {
        self.inner.model.set_concurrency_limit(limit);
    }

    /// Sets the latency of each REST request.
    pub fn set_latency(&self, latency: Duration) {
        self.inner.model.set_latency(latency);
    }

    /// Forgets every call, message, subscription, attempt, key and counter, cancels the
    /// deliveries under way, and puts faults and limits back as the emulator started; the
    /// account, its keys and the port stay (as moto's `POST /moto-api/reset`).
    pub fn reset(&self) {
        self.inner.model.reset();
    }

    /// Stops serving: the listener closes and open connections are dropped.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

/// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
