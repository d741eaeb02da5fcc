//! Typed [httpmock] helpers for testing a service that uses this crate, without writing
//! Twilio's wire details by hand (feature `mock`).
//!
//! Point the client at the mock server with [`ClientBuilder::base_url`], then describe what
//! Twilio should receive and answer:
//!
//! ```
//! use httpmock::MockServer;
//! use serde_json::json;
//! use twilio_call_messages::Client;
//! use twilio_call_messages::mock::TwilioMock;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), twilio_call_messages::Error> {
//! let server = MockServer::start_async().await;
//! let account = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
//! let call = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".parse()?;
//! let mock = server.mock_send_message(|when, then| {
//!     when.auth_token(&account, "test-token").call_sid(&call).content(&json!({"step": 2}));
//!     then.created();
//! });
//!
//! let client = Client::builder()
//!     .account_sid(account.as_str())
//!     .auth_token("test-token")
//!     .base_url(server.base_url())
//!     .build()?;
//! let message = client.send_message(&call, &json!({"step": 2})).await?;
//! assert_eq!(message.call_sid, call);
//! mock.assert_async().await;
//! # Ok(()) }
//! ```
//!
//! [`ClientBuilder::base_url`]: crate::ClientBuilder::base_url

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use httpmock::{HttpMockRequest, HttpMockResponse, Mock, MockServer, Then, When};
use serde::Serialize;

use crate::sid::{AccountSid, CallSid, MessageSid};

/// The `date_created` the helpers answer with (Twilio's own example date).
pub const DATE_CREATED: &str = "Wed, 18 Dec 2019 20:02:01 +0000";
/// The `Twilio-Request-Id` header the helpers answer with.
pub const REQUEST_ID: &str = "RQ0123456789abcdef0123456789abcdef";

const SID_HEX: &str = "[0-9a-fA-F]{32}";

/// Twilio's operations as methods on [`MockServer`].
pub trait TwilioMock {
    /// Mocks `CreateUserDefinedMessage` (`client.send_message`). The request must be a form
    /// POST to the messages path of some account and call with a `Content` field; narrow it
    /// with the [`SendMessageWhen`] methods.
    fn mock_send_message<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(SendMessageWhen, SendMessageThen);
}

impl TwilioMock for MockServer {
    fn mock_send_message<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(SendMessageWhen, SendMessageThen),
    {
        self.mock(|when, then| {
            let when = when
                .method("POST")
                .path_matches(format!(
                    "^/2010-04-01/Accounts/AC{SID_HEX}/Calls/CA{SID_HEX}/UserDefinedMessages\\.json$"
                ))
                .header("content-type", "application/x-www-form-urlencoded")
                .form_urlencoded_tuple_exists("Content");
            spec(SendMessageWhen(when), SendMessageThen { then, inspector: Inspector::default() });
        })
    }
}

/// What a mocked `CreateUserDefinedMessage` request must look like.
pub struct SendMessageWhen(When);

impl SendMessageWhen {
    /// The request is for this account.
    pub fn account_sid(self, sid: &AccountSid) -> Self {
        SendMessageWhen(self.0.path_includes(format!("/Accounts/{sid}/")))
    }

    /// The request is for this call.
    pub fn call_sid(self, sid: &CallSid) -> Self {
        SendMessageWhen(self.0.path_includes(format!("/Calls/{sid}/")))
    }

    /// The `Content` field holds JSON equal to `content` (key order and spacing aside).
    pub fn content<T: Serialize + ?Sized>(self, content: &T) -> Self {
        let expected = serde_json::to_value(content).expect("mock content serializes to JSON");
        SendMessageWhen(self.0.is_true(move |req| {
            form_field(req, "Content")
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .is_some_and(|actual| actual == expected)
        }))
    }

    /// The `Content` field is exactly this text.
    pub fn content_json(self, text: &str) -> Self {
        SendMessageWhen(self.0.form_urlencoded_tuple("Content", text))
    }

    /// The `IdempotencyKey` field is exactly this key.
    pub fn idempotency_key(self, key: &str) -> Self {
        SendMessageWhen(self.0.form_urlencoded_tuple("IdempotencyKey", key))
    }

    /// The request is for `account`, authenticated with its auth token.
    pub fn auth_token(self, account: &AccountSid, token: &str) -> Self {
        self.account_sid(account)
            .basic_auth(account.as_str(), token)
    }

    /// The request carries these Basic credentials (an account SID and auth token, or an
    /// API key SID and secret).
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        SendMessageWhen(self.0.header("authorization", basic(user, password)))
    }

    /// The underlying httpmock matcher, for anything not covered here.
    pub fn into_inner(self) -> When {
        self.0
    }
}

/// A callback run on each matched request before the answer is built.
type Inspector = Arc<Mutex<Option<Box<dyn Fn(&HttpMockRequest) + Send + Sync>>>>;

/// What a mocked `CreateUserDefinedMessage` answers.
pub struct SendMessageThen {
    then: Then,
    inspector: Inspector,
}

impl SendMessageThen {
    /// Runs `f` on every matched request before answering (to record or print it). Works
    /// with [`created`](Self::created) and [`created_with_sid`](Self::created_with_sid).
    pub fn inspect(self, f: impl Fn(&HttpMockRequest) + Send + Sync + 'static) -> Self {
        *self
            .inspector
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(f));
        self
    }

    /// `201 Created` with Twilio's body, echoing the account and call of the request. The
    /// message SID is derived from the request's `IdempotencyKey`, so a retried request gets
    /// the same SID, as it does from Twilio.
    pub fn created(self) -> Self {
        self.created_with(|req| message_sid_for(form_field(req, "IdempotencyKey").as_deref()))
    }

    /// `201 Created` with this message SID.
    pub fn created_with_sid(self, sid: &MessageSid) -> Self {
        let sid = *sid;
        self.created_with(move |_| sid)
    }

    fn created_with(
        self,
        sid: impl Fn(&HttpMockRequest) -> MessageSid + Send + Sync + 'static,
    ) -> Self {
        let inspector = self.inspector.clone();
        let then = self.then.respond_with(move |req| {
            if let Some(inspect) = &*inspector.lock().unwrap_or_else(PoisonError::into_inner) {
                inspect(req);
            }
            let (account, call) = path_sids(req);
            let body = serde_json::json!({
                "account_sid": account,
                "call_sid": call,
                "sid": sid(req),
                "date_created": DATE_CREATED,
            });
            json_response(201, &body)
        });
        SendMessageThen {
            then,
            inspector: self.inspector,
        }
    }

    /// An error in Twilio's format, e.g. `error(400, 21220, "Call is not in-progress")`.
    pub fn error(self, status: u16, code: i64, message: &str) -> Self {
        SendMessageThen {
            then: error_then(self.then, status, code, message),
            ..self
        }
    }

    /// The underlying httpmock responder, for anything not covered here.
    pub fn into_inner(self) -> Then {
        self.then
    }
}

/// A Twilio-shaped error body.
fn error_then(then: Then, status: u16, code: i64, message: &str) -> Then {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    then.status(status)
        .header("content-type", "application/json")
        .header("twilio-request-id", REQUEST_ID)
        .body(body.to_string())
}

fn json_response(status: u16, body: &serde_json::Value) -> HttpMockResponse {
    HttpMockResponse::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("twilio-request-id", REQUEST_ID)
        .body(body.to_string())
        .build()
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// The first value of a form field of the request body.
fn form_field(req: &HttpMockRequest, name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(req.body_ref())
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The account and call SIDs in a request path.
fn path_sids(req: &HttpMockRequest) -> (String, String) {
    let path = req.uri().path().to_owned();
    let after = |marker: &str| {
        path.split_once(marker)
            .and_then(|(_, rest)| rest.split('/').next())
            .unwrap_or_default()
            .to_owned()
    };
    (after("/Accounts/"), after("/Calls/"))
}

/// A message SID that depends only on the idempotency key.
fn message_sid_for(key: Option<&str>) -> MessageSid {
    let half = |seed: u8| {
        let mut h = DefaultHasher::new();
        (seed, key).hash(&mut h);
        h.finish()
    };
    format!("KX{:016x}{:016x}", half(1), half(2))
        .parse()
        .expect("32 hex digits")
}
