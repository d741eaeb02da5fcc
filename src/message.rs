//! Sending a JSON message into an active call (`CreateUserDefinedMessage`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

use crate::client::Client;
use crate::decode::Created;
use crate::error::{Error, InputError, RequestInfo};
use crate::generated;
use crate::generated::types;
use crate::legs::{self, OnLeg, Target};
use crate::model::Message;
use crate::orchestrator::{self, Generated, Operation, Options};
use crate::retry::RetryPolicy;
use crate::sid::{AccountSid, CallSid, IntoSid, SidError};

/// The most characters of JSON text Twilio accepts in one message (error 32703 beyond it).
pub const MAX_CONTENT_CHARS: usize = 10_000;

/// Message content that is known to be valid JSON text of at most [`MAX_CONTENT_CHARS`].
///
/// `Debug` shows only the length: the content is user data and stays out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    /// Serializes `value` to JSON (once) and checks its length.
    pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        let text = serde_json::to_string(value)
            .map_err(|e| InputError::ContentNotSerializable(e.to_string()))?;
        Self::checked_len(text)
    }

    /// Takes JSON text the caller already has, after checking that it parses and its length.
    pub fn from_json(text: impl Into<String>) -> Result<Self, Error> {
        let text = text.into();
        serde_json::from_str::<serde::de::IgnoredAny>(&text)
            .map_err(|e| InputError::ContentNotJson(e.to_string()))?;
        Self::checked_len(text)
    }

    fn checked_len(text: String) -> Result<Self, Error> {
        // Byte length bounds the character count from above: skip counting when it is small.
        if text.len() > MAX_CONTENT_CHARS {
            let chars = text.chars().count();
            if chars > MAX_CONTENT_CHARS {
                return Err(InputError::ContentTooLong {
                    chars,
                    max: MAX_CONTENT_CHARS,
                }
                .into());
            }
        }
        Ok(MessageContent(text))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MessageContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageContent({} bytes)", self.0.len())
    }
}

impl Client {
    /// Sends `content`, serialized to JSON, into the active call `call` (a [`CallSid`] or its
    /// text). Await the result, or set options such as an idempotency key first.
    ///
    /// The call must be `in-progress` or `ringing`. Content is checked before anything is
    /// sent: it must serialize to at most 10000 characters of JSON.
    pub fn send_message<T: Serialize + ?Sized>(
        &self,
        call: impl IntoSid<CallSid>,
        content: &T,
    ) -> SendMessage {
        SendMessage::new(
            self.clone(),
            call.into_sid(),
            MessageContent::to_json(content),
            Options::default(),
        )
    }

    /// Sends JSON text the caller already has; it is checked to parse as JSON and to be at
    /// most 10000 characters, and sent as it is.
    pub fn send_message_json(
        &self,
        call: impl IntoSid<CallSid>,
        json: impl Into<String>,
    ) -> SendMessage {
        SendMessage::new(
            self.clone(),
            call.into_sid(),
            MessageContent::from_json(json),
            Options::default(),
        )
    }
}

/// A message about to be sent: await it (or [`send`](Self::send) it), or set options first.
/// It owns a clone of the client, so the future can be spawned.
///
/// ```no_run
/// # async fn f(client: twilio_call_messages::Client) -> Result<(), twilio_call_messages::Error> {
/// let message = client
///     .send_message("CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &serde_json::json!({"step": 2}))
///     .idempotency_key("order-1234-step-2")
///     .timeout(std::time::Duration::from_secs(5))
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a message is sent only when awaited"]
pub struct SendMessage {
    client: Client,
    /// The request, built (and checked) when the builder is made, so that sending it only
    /// moves it along.
    operation: Result<Create, Error>,
    options: Options,
    target: Target,
}

impl fmt::Debug for SendMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The content is user data: only its length is shown, as `MessageContent` does.
        let request = self.operation.as_ref().map(|create| {
            (
                create.call,
                format!("{} bytes of content", create.body.content.len()),
            )
        });
        f.debug_struct("SendMessage")
            .field("request", &request)
            .field("options", &self.options)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl SendMessage {
    pub(crate) fn new(
        client: Client,
        call: Result<CallSid, SidError>,
        content: Result<MessageContent, Error>,
        options: Options,
    ) -> Self {
        let operation = call.map_err(Error::from).and_then(|call| {
            Ok(Create {
                call,
                body: types::CreateUserDefinedMessageRequest {
                    content: content?.0,
                    idempotency_key: None,
                },
            })
        });
        SendMessage {
            client,
            operation,
            options,
            target: Target::Given,
        }
    }

    /// Send to the leg the call's Voice SDK client is on, whichever leg's SID was given: the
    /// client that placed the call is on the parent leg, one that accepted it on a child leg,
    /// and a message to the other leg is answered 201 by Twilio but never seen by the client
    /// (twilio-voice.js drops it). The leg is found from Twilio's Call resource (two or three
    /// reads, then cached per call while it is connected); the result's `call_sid` is the leg
    /// it went to and `client_identity` the client.
    ///
    /// Fails with [`Error::Leg`](crate::Error::Leg), before the message is sent, when no leg
    /// has a client (a phone on both sides), when both legs have one (name it with
    /// [`to_client_named`](Self::to_client_named)), when the call is not found, or when the
    /// credentials may not read calls. Without it, the message goes to the leg given, as
    /// Twilio's API does.
    pub fn to_client(mut self) -> Self {
        self.target = Target::Client(None);
        self
    }

    /// [`to_client`](Self::to_client) for the client with this identity (the name after
    /// `client:`), for a call with clients on both legs.
    pub fn to_client_named(mut self, identity: impl Into<String>) -> Self {
        self.target = Target::Client(Some(identity.into()));
        self
    }

    /// Sends to the given leg, which must have a Voice SDK client (a conference
    /// participant's own leg).
    pub(crate) fn on_this_legs_client(mut self) -> Self {
        self.target = Target::ThisLeg;
        self
    }

    /// Use this idempotency key instead of a generated one (a UUID v4). Twilio treats
    /// requests with the same key as one: reuse it only to retry the same message.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.options.idempotency_key = Some(key.into());
        self
    }

    /// Use this retry policy for this message instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry_policy = Some(Box::new(policy));
        self
    }

    /// Time allowed for each attempt instead of the client's
    /// [`timeout`](crate::ClientBuilder::timeout); the retry policy's total deadline still
    /// cuts it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Sends the message; the same as awaiting the builder.
    // Not an `async fn`: its future would wrap the request's whole state once more, and every
    // layer is one more copy of it when the future moves.
    pub fn send(self) -> impl Future<Output = Result<Message, Error>> + Send + 'static {
        use futures_util::future::Either;
        match self.target {
            Target::Given => {
                Either::Left(orchestrator::run(self.client, self.options, self.operation))
            }
            target => Either::Right(Box::pin(legs::send_to(
                self.client,
                self.options,
                self.operation,
                target,
            ))),
        }
    }
}

impl IntoFuture for SendMessage {
    type Output = Result<Message, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        match self.target {
            Target::Given => orchestrator::boxed(self.client, self.options, self.operation),
            target => Box::pin(legs::send_to(
                self.client,
                self.options,
                self.operation,
                target,
            )),
        }
    }
}

/// `CreateUserDefinedMessage`.
#[derive(Clone)]
struct Create {
    call: CallSid,
    body: types::CreateUserDefinedMessageRequest,
}

impl Operation for Create {
    const NAME: &'static str = "CreateUserDefinedMessage";
    const METHOD: &'static str = "POST";
    type Body = types::UserDefinedMessage;
    type Output = Message;

    fn call_sid(&self) -> Option<&CallSid> {
        Some(&self.call)
    }

    fn idempotency_key(&mut self) -> Option<&mut Option<String>> {
        Some(&mut self.body.idempotency_key)
    }

    fn send<'a>(
        &'a self,
        api: &'a generated::Client,
        account: &'a AccountSid,
    ) -> impl Future<Output = Generated<Self::Body>> + Send + 'a {
        api.create_user_defined_message(account, &self.call, &self.body)
    }

    fn output(
        self,
        body: Self::Body,
        account: AccountSid,
        request: RequestInfo,
    ) -> Result<Message, Error> {
        message_from(body, account, self.call, request)
    }
}

impl OnLeg for Create {
    fn call_mut(&mut self) -> &mut CallSid {
        &mut self.call
    }

    fn reached(output: &mut Message, identity: String) {
        output.client_identity = Some(identity);
    }
}

/// The typed message, or a `Decode` error that says Twilio accepted the message anyway.
pub(crate) fn message_from(
    body: types::UserDefinedMessage,
    account_sid: AccountSid,
    call_sid: CallSid,
    request: RequestInfo,
) -> Result<Message, Error> {
    let created = Created {
        body: &body,
        request: &request,
        accepted: "do not resend the message",
    };
    Ok(Message {
        sid: created.required("sid", body.sid.as_deref())?,
        account_sid: created.echoed("account_sid", body.account_sid.as_deref(), account_sid)?,
        call_sid: created.echoed("call_sid", body.call_sid.as_deref(), call_sid)?,
        date_created: body.date_created.map(|d| d.0),
        idempotency_key: request.idempotency_key.unwrap_or_default(),
        request_id: request.request_id,
        client_identity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_limits_count_characters() {
        let at_limit = format!("\"{}\"", "é".repeat(MAX_CONTENT_CHARS - 2));
        assert!(
            MessageContent::from_json(at_limit.clone()).is_ok(),
            "multi-byte text at the limit"
        );
        let over = format!("\"{}\"", "a".repeat(MAX_CONTENT_CHARS - 1));
        let err = MessageContent::from_json(over).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidInput(InputError::ContentTooLong {
                chars: 10_001,
                max: 10_000
            })
        ));
    }

    #[test]
    fn content_must_be_json() {
        for bad in ["", "hello", "{\"a\":1", "{\"a\":1} trailing"] {
            let err = MessageContent::from_json(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidInput(InputError::ContentNotJson(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            MessageContent::from_json(" {\"a\": 1} ").unwrap().as_str(),
            " {\"a\": 1} "
        );
        let map = std::collections::HashMap::from([((1, 2), 3)]);
        assert!(matches!(
            MessageContent::to_json(&map).unwrap_err(),
            Error::InvalidInput(InputError::ContentNotSerializable(_))
        ));
    }

    #[test]
    fn content_debug_hides_the_text() {
        let content = MessageContent::to_json(&serde_json::json!({"card": "4111"})).unwrap();
        assert_eq!(format!("{content:?}"), "MessageContent(15 bytes)");
    }
}
