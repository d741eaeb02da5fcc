//! What the emulator can be told: the account, the rules that are settings because Twilio
//! does not document them, and the faults.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use twilio_call_messages::{AccountSid, ApiKeySid};

/// How long a repeated `IdempotencyKey` returns the first result: 24 hours by default.
///
/// ASSUMPTION: Twilio documents the key ("a unique string value per API call",
/// <https://www.twilio.com/docs/voice/api/userdefinedmessage-resource>) but not how long it
/// honours it. 24 hours
/// is the window the best-known idempotency-key API documents (Stripe's), and it is far longer
/// than any retry deadline of the SDK (seconds), so a retry always meets its first result;
/// a shorter setting lets a test watch a key expire.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The first `SequenceNumber` of a call's callbacks: 1 by default.
///
/// UNVERIFIED either way: the docs say the numbers start at 0
/// (<https://www.twilio.com/docs/voice/api/userdefinedmessagesubscription-resource>); Twilio's
/// own end-to-end tests (twilio/twilio-voice.js
/// `cypress/e2e/callMessage/userDefinedMessage.cy.ts`, receiving with `tests/relay/server.js`)
/// see `'1'` for the first message. What the live service is seen sending wins the default;
/// [`EmulatorBuilder::sequence_start`] sets 0.
///
/// [`EmulatorBuilder::sequence_start`]: crate::EmulatorBuilder::sequence_start
pub const DEFAULT_SEQUENCE_START: u64 = 1;

/// How long a stalled request is held before the connection is closed, by default: longer than
/// the SDK's default request timeout (30 s), so a stall is a timeout to a client.
pub const DEFAULT_STALL: Duration = Duration::from_secs(35);

/// The status of a call (Twilio's Call resource: `queued`, `ringing`, `in-progress`, `canceled`,
/// `completed`, `failed`, `busy`, `no-answer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallStatus {
    /// `queued`
    Queued,
    /// `ringing`
    Ringing,
    /// `in-progress`
    InProgress,
    /// `completed`
    Completed,
    /// `busy`
    Busy,
    /// `failed`
    Failed,
    /// `no-answer`
    NoAnswer,
    /// `canceled`
    Canceled,
}

impl CallStatus {
    /// Twilio's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Whether messages can be sent into the call and subscriptions created: `in-progress` or
    /// `ringing` (Twilio's Voice SDK "Call Message Events" page).
    pub fn is_active(self) -> bool {
        matches!(self, CallStatus::InProgress | CallStatus::Ringing)
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => CallStatus::Queued,
            "ringing" => CallStatus::Ringing,
            "in-progress" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "failed" => CallStatus::Failed,
            "no-answer" => CallStatus::NoAnswer,
            "canceled" => CallStatus::Canceled,
            other => return Err(format!("unknown call status {other:?}")),
        })
    }
}

/// The body of a callback.
///
/// UNVERIFIED which one Twilio sends: the docs say the endpoint "must be able to accept
/// application/json"
/// (<https://www.twilio.com/docs/voice/api/userdefinedmessagesubscription-resource>), and
/// Twilio's Voice SDK tests (twilio/twilio-voice.js `tests/relay/server.js`) parse both. Flat
/// JSON (every value a string) is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CallbackBody {
    /// `application/json`, a flat object of strings (the default).
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

impl FromStr for CallbackBody {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(CallbackBody::Json),
            "form" => Ok(CallbackBody::Form),
            other => Err(format!("callback body must be json or form, not {other:?}")),
        }
    }
}

/// How callbacks are signed (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>;
/// twilio-python `twilio/request_validator.py`).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Signing {
    /// `X-Twilio-Signature`: HMAC-SHA1 with the auth token over the URL and the sorted fields
    /// (the default; a flat JSON body is signed like a form, as twilio-node's
    /// `validateExpressRequest` checks it in Twilio's Voice SDK tests).
    #[default]
    AuthToken,
    /// The auth token over the URL alone, with `bodySHA256=<hex>` appended to it (JSON bodies).
    BodySha256,
    /// A shared key of the Webhooks configuration API: HMAC-SHA256 with its secret, and
    /// `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256`.
    SharedKey {
        /// The key's id.
        id: String,
        /// The key's secret (never printed).
        secret: String,
    },
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signing::AuthToken => f.write_str("AuthToken"),
            Signing::BodySha256 => f.write_str("BodySha256"),
            Signing::SharedKey { id, .. } => f
                .debug_struct("SharedKey")
                .field("id", id)
                .field("secret", &"<redacted>")
                .finish(),
        }
    }
}

/// A way the REST API fails on purpose. Each request rolls once: a kind is picked with its rate
/// (rates add up; the rest is served normally).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FaultKind {
    /// A TCP reset before the request reached the API: nothing recorded.
    Reset,
    /// No answer (held for the stall time, then closed): nothing recorded.
    Stall,
    /// A spurious 429 / 20429, as when another service shares the account: nothing recorded.
    Throttle,
    /// A proxy's HTML 502: nothing recorded.
    BadGateway,
    /// A proxy's HTML 503: nothing recorded.
    Unavailable,
    /// A proxy's 502 with a 1 MiB HTML page (bigger than a client should read): nothing recorded.
    OversizedBadGateway,
    /// Processed (the message recorded), then a 500 / 20500.
    ErrorAfter,
    /// Processed, then a TCP reset instead of the answer.
    ResetAfter,
    /// Processed, then half the answer and a reset.
    TruncatedAfter,
    /// Processed, then no answer (held for the stall time).
    StallAfter,
    /// Processed, then a proxy's HTML 504.
    GatewayTimeoutAfter,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::Throttle,
        FaultKind::BadGateway,
        FaultKind::Unavailable,
        FaultKind::OversizedBadGateway,
        FaultKind::ErrorAfter,
        FaultKind::ResetAfter,
        FaultKind::TruncatedAfter,
        FaultKind::StallAfter,
        FaultKind::GatewayTimeoutAfter,
    ];

    /// The name used by the binary's `--fault` flag and the control API.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Stall => "stall",
            FaultKind::Throttle => "throttle",
            FaultKind::BadGateway => "502",
            FaultKind::Unavailable => "503",
            FaultKind::OversizedBadGateway => "502-oversized",
            FaultKind::ErrorAfter => "500-after",
            FaultKind::ResetAfter => "reset-after",
            FaultKind::TruncatedAfter => "truncated-after",
            FaultKind::StallAfter => "stall-after",
            FaultKind::GatewayTimeoutAfter => "504-after",
        }
    }

    /// Whether the request is processed (a message recorded) before the fault.
    pub fn after_processing(self) -> bool {
        matches!(
            self,
            FaultKind::ErrorAfter
                | FaultKind::ResetAfter
                | FaultKind::TruncatedAfter
                | FaultKind::StallAfter
                | FaultKind::GatewayTimeoutAfter
        )
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault {s:?}; one of {}", names.join(", "))
            })
    }
}

/// Faults of the REST API, seeded so a run can be repeated.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Rate per kind (0 to 1; the sum at most 1).
    pub rates: Vec<(FaultKind, f64)>,
    /// The seed of the rolls.
    pub seed: u64,
    /// How long a stall holds the connection. Default [`DEFAULT_STALL`].
    pub stall: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rates: Vec::new(),
            seed: 0,
            stall: DEFAULT_STALL,
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Also fail with `kind` at `rate` (0 to 1).
    #[must_use]
    pub fn with(mut self, kind: FaultKind, rate: f64) -> Self {
        self.rates.retain(|(k, _)| *k != kind);
        self.rates.push((kind, rate));
        self
    }

    /// Every kind at `total / 11`: `total` of the requests fail, in every way.
    #[must_use]
    pub fn all_kinds(mut self, total: f64) -> Self {
        for kind in FaultKind::ALL {
            self = self.with(kind, total / FaultKind::ALL.len() as f64);
        }
        self
    }

    /// Seeds the rolls.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How long a stall holds the connection.
    #[must_use]
    pub fn stall(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let mut total = 0.0;
        for (kind, rate) in &self.rates {
            if !(0.0..=1.0).contains(rate) {
                return Err(format!(
                    "fault {} rate {rate} is not within 0..=1",
                    kind.name()
                ));
            }
            total += rate;
        }
        if total > 1.0 + 1e-9 {
            return Err(format!("fault rates add up to {total}, more than 1"));
        }
        Ok(())
    }

    /// Picks the fault of one request from a roll in `0..1`.
    pub(crate) fn pick(&self, roll: f64) -> Option<FaultKind> {
        let mut edge = 0.0;
        for (kind, rate) in &self.rates {
            edge += rate;
            if roll < edge {
                return Some(*kind);
            }
        }
        None
    }
}

/// Faults of the callbacks the emulator delivers, seeded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallbackFaults {
    /// Share of deliveries sent a second time after they succeeded (same
    /// `I-Twilio-Idempotency-Token`, as a retry Twilio thought necessary).
    pub duplicate: f64,
    /// Share of messages delivered after the call's next message (or, with none, after a pause).
    pub reorder: f64,
    /// Share of deliveries whose first attempt is dropped (never reaches the receiver, counted
    /// as a connection failure, so Twilio's retry rules apply).
    pub drop_first: f64,
    /// The seed of the rolls.
    pub seed: u64,
}

impl CallbackFaults {
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("drop_first", self.drop_first),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "callback fault {name} rate {rate} is not within 0..=1"
                ));
            }
        }
        Ok(())
    }
}

/// An API key of the account (`SK…` and its secret).
#[derive(Clone)]
pub(crate) struct ApiKey {
    pub sid: ApiKeySid,
    pub secret: String,
}

/// Everything the emulator starts with.
#[derive(Clone)]
pub(crate) struct Settings {
    pub account_sid: AccountSid,
    pub auth_token: String,
    pub api_keys: Vec<ApiKey>,
    pub concurrency_limit: Option<usize>,
    pub concurrency_header: bool,
    pub latency: Duration,
    pub idempotency_window: Duration,
    pub sequence_start: u64,
    /// The most items a list page holds (Twilio's: 1000), for tests of paging.
    pub list_page_size: Option<usize>,
    pub callback_body: CallbackBody,
    pub signing: Signing,
    pub faults: Faults,
    pub callback_faults: CallbackFaults,
}
