//! The public data types the operations return: what Twilio created, with the request that
//! created it.

use time::OffsetDateTime;

use crate::sid::{AccountSid, CallSid, MessageSid, SubscriptionSid};

/// A message Twilio accepted into a call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The message's SID (`KX…`).
    pub sid: MessageSid,
    /// The account that owns the call.
    pub account_sid: AccountSid,
    /// The call the message was sent into.
    pub call_sid: CallSid,
    /// When Twilio created the message (Twilio may leave it out).
    pub date_created: Option<OffsetDateTime>,
    /// The `IdempotencyKey` that was sent with the message.
    pub idempotency_key: String,
    /// Twilio's request id (`Twilio-Request-Id`), if the response had one.
    pub request_id: Option<String>,
}

/// The HTTP method Twilio uses to call a subscription's callback URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallbackMethod {
    /// `GET`.
    Get,
    /// `POST` (Twilio's default when none is sent).
    Post,
}

/// An active subscription: Twilio posts the call's messages to its callback URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// The subscription's SID (`ZY…`); pass it to [`Client::unsubscribe`](crate::Client::unsubscribe).
    pub sid: SubscriptionSid,
    /// The account that owns the call.
    pub account_sid: AccountSid,
    /// The call whose messages are delivered.
    pub call_sid: CallSid,
    /// When Twilio created the subscription (Twilio may leave it out).
    pub date_created: Option<OffsetDateTime>,
    /// The resource's path, relative to `https://api.twilio.com`.
    pub uri: Option<String>,
    /// The `IdempotencyKey` that was sent.
    pub idempotency_key: String,
    /// Twilio's request id (`Twilio-Request-Id`), if the response had one.
    pub request_id: Option<String>,
}
