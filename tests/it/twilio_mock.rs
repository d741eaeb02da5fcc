//! Typed [httpmock] helpers for the tests that pin Twilio's exact wire: match on the form
//! fields, the Basic auth and the path Twilio's API expects, and answer with Twilio's bodies.
//!
//! Ours, not the users': a service that uses this crate tests against the emulator
//! (`twilio-call-messages-emulator`), which keeps Twilio's rules; these helpers only describe
//! bytes.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use httpmock::{HttpMockRequest, HttpMockResponse, Mock, MockServer, Then, When};
use serde::Serialize;

use twilio_call_messages::CallbackMethod;
use twilio_call_messages::{AccountSid, CallSid, MessageSid, SubscriptionSid};

/// The `date_created` the helpers answer with (Twilio's own example date).
pub const DATE_CREATED: &str = "Wed, 18 Dec 2019 20:02:01 +0000";
/// The `Twilio-Request-Id` header the helpers answer with.
pub const REQUEST_ID: &str = "RQ0123456789abcdef0123456789abcdef";

const SID_HEX: &str = "[0-9a-fA-F]{32}";

/// Marker for `CreateUserDefinedMessage` (`client.send_message`).
#[derive(Debug)]
pub enum SendMessageOp {}
/// Marker for `CreateUserDefinedMessageSubscription` (`client.subscribe`).
#[derive(Debug)]
pub enum SubscribeOp {}
/// Marker for `DeleteUserDefinedMessageSubscription` (`client.unsubscribe`).
#[derive(Debug)]
pub enum UnsubscribeOp {}

/// What a mocked `CreateUserDefinedMessage` request must look like.
pub type SendMessageWhen = Expect<SendMessageOp>;
/// What a mocked `CreateUserDefinedMessage` answers.
pub type SendMessageThen = Respond<SendMessageOp>;
/// What a mocked `CreateUserDefinedMessageSubscription` request must look like.
pub type SubscribeWhen = Expect<SubscribeOp>;
/// What a mocked `CreateUserDefinedMessageSubscription` answers.
pub type SubscribeThen = Respond<SubscribeOp>;
/// What a mocked `DeleteUserDefinedMessageSubscription` request must look like.
pub type UnsubscribeWhen = Expect<UnsubscribeOp>;
/// What a mocked `DeleteUserDefinedMessageSubscription` answers.
pub type UnsubscribeThen = Respond<UnsubscribeOp>;

/// Twilio's operations as methods on [`MockServer`]. Each mock matches the operation's method
/// and path for any account and call (and, for creates, a form body with the required field);
/// narrow it with the [`Expect`] methods and answer with the [`Respond`] methods.
pub trait TwilioMock {
    /// Mocks `CreateUserDefinedMessage` (`client.send_message`).
    fn mock_send_message<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(SendMessageWhen, SendMessageThen);

    /// Mocks `CreateUserDefinedMessageSubscription` (`client.subscribe`).
    fn mock_subscribe<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(SubscribeWhen, SubscribeThen);

    /// Mocks `DeleteUserDefinedMessageSubscription` (`client.unsubscribe`).
    fn mock_unsubscribe<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(UnsubscribeWhen, UnsubscribeThen);
}

impl TwilioMock for MockServer {
    fn mock_send_message<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(SendMessageWhen, SendMessageThen),
    {
        mock_operation(
            self,
            "POST",
            "UserDefinedMessages\\.json",
            Some("Content"),
            spec,
        )
    }

    fn mock_subscribe<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(SubscribeWhen, SubscribeThen),
    {
        mock_operation(
            self,
            "POST",
            "UserDefinedMessageSubscriptions\\.json",
            Some("Callback"),
            spec,
        )
    }

    fn mock_unsubscribe<F>(&self, spec: F) -> Mock<'_>
    where
        F: FnOnce(UnsubscribeWhen, UnsubscribeThen),
    {
        let tail = format!("UserDefinedMessageSubscriptions/ZY{SID_HEX}\\.json");
        mock_operation(self, "DELETE", &tail, None, spec)
    }
}

fn mock_operation<'a, O, F>(
    server: &'a MockServer,
    method: &str,
    path_tail: &str,
    required_field: Option<&str>,
    spec: F,
) -> Mock<'a>
where
    F: FnOnce(Expect<O>, Respond<O>),
{
    server.mock(|when, then| {
        let mut when = when.method(method).path_matches(format!(
            "^/2010-04-01/Accounts/AC{SID_HEX}/Calls/CA{SID_HEX}/{path_tail}$"
        ));
        if let Some(field) = required_field {
            when = when
                .header("content-type", "application/x-www-form-urlencoded")
                .form_urlencoded_tuple_exists(field);
        }
        spec(
            Expect {
                when,
                op: PhantomData,
            },
            Respond {
                then,
                inspector: Inspector::default(),
                op: PhantomData,
            },
        );
    })
}

/// What a mocked request must look like, for the operation `O`.
pub struct Expect<O> {
    when: When,
    op: PhantomData<O>,
}

impl<O> Expect<O> {
    fn map(self, f: impl FnOnce(When) -> When) -> Self {
        Expect {
            when: f(self.when),
            op: PhantomData,
        }
    }

    /// The request is for this account.
    pub fn account_sid(self, sid: &AccountSid) -> Self {
        self.map(|w| w.path_includes(format!("/Accounts/{sid}/")))
    }

    /// The request is for this call.
    pub fn call_sid(self, sid: &CallSid) -> Self {
        self.map(|w| w.path_includes(format!("/Calls/{sid}/")))
    }

    /// The request is for `account`, authenticated with its auth token.
    pub fn auth_token(self, account: &AccountSid, token: &str) -> Self {
        self.account_sid(account)
            .basic_auth(account.as_str(), token)
    }

    /// The request carries these Basic credentials (an account SID and auth token, or an
    /// API key SID and secret).
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let value = basic(user, password);
        self.map(|w| w.header("authorization", value))
    }

    /// The underlying httpmock matcher, for anything not covered here.
    pub fn into_inner(self) -> When {
        self.when
    }
}

/// Form fields shared by the two create operations.
macro_rules! idempotency_key_matcher {
    ($op:ty) => {
        impl Expect<$op> {
            /// The `IdempotencyKey` field is exactly this key.
            pub fn idempotency_key(self, key: &str) -> Self {
                self.map(|w| w.form_urlencoded_tuple("IdempotencyKey", key))
            }
        }
    };
}
idempotency_key_matcher!(SendMessageOp);
idempotency_key_matcher!(SubscribeOp);

impl Expect<SendMessageOp> {
    /// The `Content` field holds JSON equal to `content` (key order and spacing aside).
    pub fn content<T: Serialize + ?Sized>(self, content: &T) -> Self {
        let expected = serde_json::to_value(content).expect("mock content serializes to JSON");
        self.map(|w| {
            w.is_true(move |req| {
                form_field(req, "Content")
                    .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                    .is_some_and(|actual| actual == expected)
            })
        })
    }

    /// The `Content` field is exactly this text.
    pub fn content_json(self, text: &str) -> Self {
        self.map(|w| w.form_urlencoded_tuple("Content", text))
    }
}

impl Expect<SubscribeOp> {
    /// The `Callback` field is exactly this URL.
    pub fn callback(self, url: &str) -> Self {
        self.map(|w| w.form_urlencoded_tuple("Callback", url))
    }

    /// The `Method` field is this method (`None`: the field is absent).
    pub fn method(self, method: Option<CallbackMethod>) -> Self {
        self.map(|w| match method {
            Some(CallbackMethod::Get) => w.form_urlencoded_tuple("Method", "GET"),
            Some(CallbackMethod::Post) => w.form_urlencoded_tuple("Method", "POST"),
            None => w.form_urlencoded_tuple_missing("Method"),
        })
    }
}

impl Expect<UnsubscribeOp> {
    /// The request deletes this subscription.
    pub fn subscription_sid(self, sid: &SubscriptionSid) -> Self {
        self.map(|w| w.path_includes(format!("/UserDefinedMessageSubscriptions/{sid}.json")))
    }
}

/// A callback run on each matched request before the answer is built.
type Inspector = Arc<Mutex<Option<Box<dyn Fn(&HttpMockRequest) + Send + Sync>>>>;

/// What a mocked request answers, for the operation `O`.
pub struct Respond<O> {
    then: Then,
    inspector: Inspector,
    op: PhantomData<O>,
}

impl<O> Respond<O> {
    /// Runs `f` on every matched request before answering (to record or print it). Works with
    /// the `created…` and `deleted` answers.
    pub fn inspect(self, f: impl Fn(&HttpMockRequest) + Send + Sync + 'static) -> Self {
        *self
            .inspector
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(f));
        self
    }

    /// An error in Twilio's format, e.g. `error(400, 21220, "Call is not in-progress")`.
    pub fn error(self, status: u16, code: i64, message: &str) -> Self {
        Respond {
            then: error_then(self.then, status, code, message),
            ..self
        }
    }

    /// The underlying httpmock responder, for anything not covered here.
    pub fn into_inner(self) -> Then {
        self.then
    }

    fn respond(
        self,
        f: impl Fn(&HttpMockRequest) -> HttpMockResponse + Send + Sync + 'static,
    ) -> Self {
        let inspector = self.inspector.clone();
        let then = self.then.respond_with(move |req| {
            if let Some(inspect) = &*inspector.lock().unwrap_or_else(PoisonError::into_inner) {
                inspect(req);
            }
            f(req)
        });
        Respond { then, ..self }
    }

    /// `201 Created` with Twilio's body for a create operation, echoing the account and call
    /// of the request; subscriptions also carry their `uri`.
    fn created_with(
        self,
        with_uri: bool,
        sid: impl Fn(&HttpMockRequest) -> String + Send + Sync + 'static,
    ) -> Self {
        self.respond(move |req| {
            let (account, call) = path_sids(req);
            let sid = sid(req);
            let mut body = serde_json::json!({
                "account_sid": account,
                "call_sid": call,
                "sid": sid,
                "date_created": DATE_CREATED,
            });
            if with_uri {
                body["uri"] = format!(
                    "/2010-04-01/Accounts/{account}/Calls/{call}/UserDefinedMessageSubscriptions/{sid}.json"
                )
                .into();
            }
            json_response(201, &body)
        })
    }
}

impl Respond<SendMessageOp> {
    /// `201 Created` with Twilio's body, echoing the account and call of the request. The
    /// message SID is derived from the request's `IdempotencyKey`, so a retried request gets
    /// the same SID, as it does from Twilio.
    pub fn created(self) -> Self {
        self.created_with(false, |req| {
            sid_for("KX", form_field(req, "IdempotencyKey").as_deref())
        })
    }

    /// `201 Created` with this message SID.
    pub fn created_with_sid(self, sid: &MessageSid) -> Self {
        let sid = sid.to_string();
        self.created_with(false, move |_| sid.clone())
    }
}

impl Respond<SubscribeOp> {
    /// `201 Created` with Twilio's body, echoing the account and call of the request. The
    /// subscription SID is derived from the request's `IdempotencyKey`.
    pub fn created(self) -> Self {
        self.created_with(true, |req| {
            sid_for("ZY", form_field(req, "IdempotencyKey").as_deref())
        })
    }

    /// `201 Created` with this subscription SID.
    pub fn created_with_sid(self, sid: &SubscriptionSid) -> Self {
        let sid = sid.to_string();
        self.created_with(true, move |_| sid.clone())
    }
}

impl Respond<UnsubscribeOp> {
    /// `204 No Content`: the subscription was deleted.
    pub fn deleted(self) -> Self {
        self.respond(|_| {
            HttpMockResponse::builder()
                .status(204)
                .header("twilio-request-id", REQUEST_ID)
                .build()
        })
    }

    /// Twilio's `404`, code 20404: the subscription does not exist (any more).
    pub fn not_found(self) -> Self {
        self.error(404, 20404, "The requested resource was not found")
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

/// A SID with `prefix` that depends only on the idempotency key.
fn sid_for(prefix: &str, key: Option<&str>) -> String {
    let half = |seed: u8| {
        let mut h = DefaultHasher::new();
        (seed, key).hash(&mut h);
        h.finish()
    };
    format!("{prefix}{:016x}{:016x}", half(1), half(2))
}
