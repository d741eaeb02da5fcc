//! The public data types the operations return: what Twilio created, with the request that
//! created it.
//!
//! They implement `Serialize` and `Deserialize` (and `JsonSchema` with the `schemars` feature)
//! so that a service can pass them through its own APIs, queues and logs. The serialized form
//! is the SDK's, not Twilio's response body: Twilio's field names, SIDs always present, dates in
//! RFC 3339 (what JSON APIs and JSON Schema's `date-time` expect), plus the request's
//! `idempotency_key` and `request_id`.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::sid::{AccountSid, CallSid, MessageSid, SubscriptionSid};

/// A message Twilio accepted into a call.
///
/// Serialized with Twilio's field names (`sid`, `account_sid`, `call_sid`, `date_created`) and
/// the request's `idempotency_key` and `request_id`. `date_created` is RFC 3339
/// (`2019-12-18T20:02:01Z`), not Twilio's RFC 2822; a missing date or request id is `null`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Message {
    /// The message's SID (`KX…`).
    pub sid: MessageSid,
    /// The account that owns the call.
    pub account_sid: AccountSid,
    /// The call the message was sent into.
    pub call_sid: CallSid,
    /// When Twilio created the message (Twilio may leave it out).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<crate::date::Rfc3339>"))]
    pub date_created: Option<OffsetDateTime>,
    /// The `IdempotencyKey` that was sent with the message.
    pub idempotency_key: String,
    /// Twilio's request id (`Twilio-Request-Id`), if the response had one.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The Voice SDK client the message went to, when it was sent `.to_client()` (its
    /// identity, the name after `client:`; `call_sid` is its leg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_identity: Option<String>,
}

/// The HTTP method Twilio uses to call a subscription's callback URL.
///
/// Written `GET` or `POST` by `Display` and serde, as Twilio's `Method` parameter spells it.
/// `FromStr` ignores ASCII case (`"post"` from a configuration file is `Post`); serde does not,
/// so a serialized value always matches the schema's `enum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum CallbackMethod {
    /// `GET`.
    Get,
    /// `POST` (Twilio's default when none is sent).
    Post,
}

impl CallbackMethod {
    /// The method as Twilio's `Method` parameter spells it: `"GET"` or `"POST"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallbackMethod::Get => "GET",
            CallbackMethod::Post => "POST",
        }
    }
}

impl fmt::Display for CallbackMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallbackMethod {
    type Err = CallbackMethodError;

    /// `GET` or `POST`, in any ASCII case.
    fn from_str(s: &str) -> Result<Self, CallbackMethodError> {
        [CallbackMethod::Get, CallbackMethod::Post]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or(CallbackMethodError(()))
    }
}

/// A string that is not `GET` or `POST` was parsed as a [`CallbackMethod`].
///
/// The value itself is not repeated, as with [`SidError`](crate::SidError): a misplaced secret
/// must not end up in a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackMethodError(());

impl fmt::Display for CallbackMethodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid callback method: expected GET or POST")
    }
}

impl std::error::Error for CallbackMethodError {}

/// An active subscription: Twilio posts the call's messages to its callback URL.
///
/// Serialized like [`Message`], with `uri` (`null` when Twilio left it out).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Subscription {
    /// The subscription's SID (`ZY…`); pass it to [`Client::unsubscribe`](crate::Client::unsubscribe).
    pub sid: SubscriptionSid,
    /// The account that owns the call.
    pub account_sid: AccountSid,
    /// The call whose messages are delivered.
    pub call_sid: CallSid,
    /// When Twilio created the subscription (Twilio may leave it out).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<crate::date::Rfc3339>"))]
    pub date_created: Option<OffsetDateTime>,
    /// The resource's path, relative to `https://api.twilio.com`.
    #[serde(default)]
    pub uri: Option<String>,
    /// The `IdempotencyKey` that was sent.
    pub idempotency_key: String,
    /// Twilio's request id (`Twilio-Request-Id`), if the response had one.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The Voice SDK client whose messages it receives, when it was created `.to_client()`
    /// (its identity; `call_sid` is its leg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_identity: Option<String>,
}

// The structs are `#[non_exhaustive]` (Twilio may add fields); these constructors let a
// service build them in its own tests.
impl Message {
    /// A message with these SIDs and key and nothing else known, e.g. for a service's own
    /// tests; set the other fields on the value.
    ///
    /// ```
    /// use twilio_call_messages::Message;
    ///
    /// let mut message = Message::new(
    ///     "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse()?,
    ///     "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse()?,
    ///     "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse()?,
    ///     "key-1",
    /// );
    /// message.request_id = Some("RQ1".into());
    /// assert_eq!(message.date_created, None);
    /// # Ok::<(), twilio_call_messages::SidError>(())
    /// ```
    pub fn new(
        sid: MessageSid,
        account_sid: AccountSid,
        call_sid: CallSid,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Message {
            sid,
            account_sid,
            call_sid,
            date_created: None,
            idempotency_key: idempotency_key.into(),
            request_id: None,
            client_identity: None,
        }
    }
}

impl Subscription {
    /// A subscription with these SIDs and key and nothing else known, e.g. for a service's
    /// own tests; set the other fields on the value.
    pub fn new(
        sid: SubscriptionSid,
        account_sid: AccountSid,
        call_sid: CallSid,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Subscription {
            sid,
            account_sid,
            call_sid,
            date_created: None,
            uri: None,
            idempotency_key: idempotency_key.into(),
            request_id: None,
            client_identity: None,
        }
    }
}

/// A leg of a call on which a Voice SDK client is: where a message to that client goes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientLeg {
    /// The leg's call SID.
    pub call_sid: CallSid,
    /// The client's identity: the name after `client:`.
    pub identity: String,
    /// The leg's parent, for a child leg (`None`: the leg is the parent).
    pub parent_call_sid: Option<CallSid>,
    /// The leg's status, as Twilio wrote it (e.g. `in-progress`, `ringing`).
    pub status: String,
}

/// A leg of a call as Twilio describes it: what was found when no leg has the client asked
/// for. `Display` names the kinds of endpoint (a phone number, a SIP address, a client), not
/// the numbers themselves, which are personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallLeg {
    /// The leg's call SID.
    pub call_sid: CallSid,
    /// Its parent, for a child leg.
    pub parent_call_sid: Option<CallSid>,
    /// `inbound`, `outbound-api` or `outbound-dial`.
    pub direction: Option<String>,
    /// Who made the call.
    pub from: Option<String>,
    /// Who received it.
    pub to: Option<String>,
    /// The leg's status, as Twilio wrote it.
    pub status: Option<String>,
}

impl fmt::Display for CallLeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} from {} to {} ({})",
            self.call_sid,
            self.direction.as_deref().unwrap_or("(no direction)"),
            kind(self.from.as_deref()),
            kind(self.to.as_deref()),
            self.status.as_deref().unwrap_or("no status"),
        )
    }
}

/// What an endpoint is, without its value.
fn kind(endpoint: Option<&str>) -> String {
    match endpoint {
        None | Some("") => "nobody".to_owned(),
        Some(e) if e.starts_with("client:") => format!("{e:?}"),
        Some(e) if e.starts_with("sip:") => "a SIP address".to_owned(),
        Some(e) if e.starts_with('+') || e.bytes().all(|b| b.is_ascii_digit()) => {
            "a phone number".to_owned()
        }
        Some(_) => "another endpoint".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_method_text() {
        for (method, text) in [(CallbackMethod::Get, "GET"), (CallbackMethod::Post, "POST")] {
            assert_eq!(method.to_string(), text);
            assert_eq!(text.parse::<CallbackMethod>(), Ok(method));
            assert_eq!(text.to_lowercase().parse::<CallbackMethod>(), Ok(method));
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<CallbackMethod>(&json).unwrap(),
                method
            );
        }
        assert_eq!(CallbackMethod::from_str("Post"), Ok(CallbackMethod::Post));
        for bad in ["", "PUT", "POST ", "PÖST", "my-secret-token"] {
            let err = bad.parse::<CallbackMethod>().unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid callback method: expected GET or POST"
            );
        }
        // serde keeps to Twilio's spelling.
        assert!(serde_json::from_str::<CallbackMethod>("\"post\"").is_err());
    }
}
