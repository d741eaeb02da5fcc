//! What the REST API sends into a call (`UserDefinedMessage`): the rules of its content, and
//! where it goes: to the call's client on this leg, or dropped by the client on the other.

use serde::Serialize;
use twilio_call_messages::{CallSid, MessageSid};

use super::account::Opened;
use super::{
    Created, Model, Operation, Refusal, ToClient, USER_DEFINED_MESSAGE, new_sid, now_rfc2822,
};

/// The longest content a message may carry, in characters (error 32703 beyond it,
/// <https://www.twilio.com/docs/api/errors/32703>; the client SDKs say 10 KB, error 31212 in
/// twilio-voice.js `lib/twilio/errors/generated.ts`).
pub const MAX_CONTENT_CHARS: usize = 10_000;

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

/// A message Twilio accepted (201) that no client showed: it was addressed to the other leg of
/// the client's call, or to a call with no Voice SDK client on any leg.
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

impl Model {
    /// Creates a message into a call: the call must exist, a repeated key answers the first
    /// result, `Content` is required (upstream marks it so), JSON text (32702) of at most
    /// [`MAX_CONTENT_CHARS`] characters (32703), and the call active (21220).
    ///
    /// Accepted on either leg, as Twilio accepts it: the client gets it if it is on this leg;
    /// otherwise it drops it, as twilio-voice.js (`lib/twilio/call.ts`) drops a message whose
    /// call SID is not its own call's (docs/twilio-behaviour.md#active-calls-and-call-legs).
    pub fn create_message(
        &self,
        call: &CallSid,
        key: Option<&str>,
        content: Option<&str>,
    ) -> Result<Created, Refusal> {
        let mut create = match self.open_create(Operation::Message, call, key)? {
            Opened::Replay(first) => return Ok(first),
            Opened::New(create) => create,
        };
        let text = content.ok_or(Refusal::MissingParameter("Content"))?;
        let Ok(content) = serde_json::from_str::<serde_json::Value>(text) else {
            return Err(Refusal::ContentNotJson);
        };
        let chars = text.chars().count();
        if chars > MAX_CONTENT_CHARS {
            return Err(Refusal::ContentTooLong(chars));
        }
        create.check_active()?;

        let sid: MessageSid = new_sid("KX");
        let date = now_rfc2822();
        let at_ms = self.now_ms();
        let key = create.key;
        let state = create.state();
        if let Some(found) = state.calls.get_mut(call) {
            // What twilio-voice.js hands its `messageReceived` listeners (lib/twilio/call.ts).
            let message = ReceivedMessage {
                sid,
                content,
                content_type: "application/json".into(),
                message_type: USER_DEFINED_MESSAGE.into(),
                voice_event_sid: sid,
                idempotency_key: key.map(str::to_owned),
                date_created: date.clone(),
                at_ms,
            };
            let client = found.info.client_call_sid;
            // A connected client hears every message of its call, addressed to the leg the
            // service chose: the SDK itself drops the other leg's.
            if let Some(connected) = found.owner.and_then(|id| state.clients.get(&id)) {
                let _ = connected.tx.send(ToClient::Message {
                    call_sid: *call,
                    message: message.clone(),
                });
            }
            if found.info.client_on_leg().is_some() {
                found.received.push(message);
            } else {
                let reason = if client == *call {
                    // ASSUMPTION: Twilio answers 201 for a leg with no Voice SDK client (no
                    // source says otherwise) and nobody sees the message.
                    format!(
                        "sent to {call}, but no Voice SDK client is on any leg of this call (from {}, to {}): nobody sees it",
                        found.info.from, found.info.to
                    )
                } else {
                    let leg = if found.info.parent_call_sid.is_some() {
                        "child"
                    } else {
                        "parent"
                    };
                    format!(
                        "sent to the {leg} leg {call}, but the client is on {client}: the Voice SDK drops a message whose call SID is not its own (twilio-voice.js lib/twilio/call.ts)"
                    )
                };
                found.dropped.push(DroppedMessage {
                    message,
                    call_sid: *call,
                    client_call_sid: client,
                    reason,
                });
            }
        }
        state.stats.messages += 1;
        Ok(create.finish(Created::Message {
            call: *call,
            sid,
            date_created: date,
        }))
    }

    pub fn client_received(&self, sid: &CallSid) -> Vec<ReceivedMessage> {
        self.with_call(sid, |c| c.received.clone())
    }

    pub fn dropped(&self, sid: &CallSid) -> Vec<DroppedMessage> {
        self.with_call(sid, |c| c.dropped.clone())
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
}
