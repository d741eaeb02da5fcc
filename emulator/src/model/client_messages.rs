//! What the call's client sends (twilio-voice.js `call.sendMessage`): the Voice SDK's rules
//! for it, and the records of its callbacks to the call's subscriptions, one per subscription,
//! each with its attempts (`callbacks.rs` sends them).

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use twilio_call_messages::{CallSid, MessageSid, SubscriptionSid};

use super::{EmulatorError, MAX_CONTENT_CHARS, Model, new_sid, now_rfc2822, random_hex};
use crate::settings::CallStatus;

/// How many messages a call's client may send within one second before it is refused with
/// 31206. ASSUMPTION: twilio-voice.js names the error ("rate exceeded",
/// `lib/twilio/errors/generated.ts`) but no SDK nor Twilio page publishes the figure.
pub const CLIENT_MESSAGES_PER_SECOND: usize = 10;

/// The only message type a client may send (twilio-voice.js `sendMessage`, error 31210).
pub const USER_DEFINED_MESSAGE: &str = "user-defined-message";

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
    pub deliveries: Vec<CallbackDelivery>,
}

/// The callback that carries one client message to one subscription (Twilio's request to
/// the subscription's `Callback`), with every attempt of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CallbackDelivery {
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

/// One attempt of a callback delivery.
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
    /// Dropped on purpose
    /// ([`CallbackFaults::drop_first`](crate::CallbackFaults::drop_first)): never sent.
    pub dropped: bool,
    /// Sent again on purpose after a success
    /// ([`CallbackFaults::duplicate`](crate::CallbackFaults::duplicate)).
    pub duplicate: bool,
    /// Held back and delivered after the call's next message
    /// ([`CallbackFaults::reorder`](crate::CallbackFaults::reorder)).
    pub reordered: bool,
    /// How the request is signed: `auth-token`, `body-sha256` or `shared-key`.
    pub signature_scheme: String,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
    /// Milliseconds since the emulator started, when it began.
    pub at_ms: u64,
}

/// Who sends a client message: the control API or the Rust handle (`Default`: as the call's
/// client, any call), or a signaling client (only its own call, under the SDK's name for it).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendAs {
    pub client: Option<u64>,
    pub voice_event_sid: Option<MessageSid>,
}

/// A call's delivery lane: messages in, delivered one after the other by a task.
pub(crate) struct Lane {
    pub queue: mpsc::UnboundedSender<usize>,
    pub task: AbortHandle,
}

/// A callback delivery, named so that work started before a reset finds nothing after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallbackRef {
    pub epoch: u64,
    pub call: CallSid,
    pub index: usize,
    pub delivery: usize,
}

impl Model {
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
        // Only a Voice SDK client sends call messages; a phone cannot.
        if call.info.client_on_leg().is_none() {
            return Err(EmulatorError::NoClientOnCall(sid.to_string()));
        }
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
        let deliveries: Vec<CallbackDelivery> = call
            .subscriptions
            .iter()
            .map(|s| CallbackDelivery {
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
    pub fn delivery(&self, at: CallbackRef) -> Option<(ClientMessage, CallbackDelivery)> {
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
    pub fn record(&self, at: CallbackRef, f: impl FnOnce(&mut CallbackDelivery)) {
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
    pub fn delivery_done(&self, at: CallbackRef) {
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

    /// Marks a message's attempts as reordered.
    pub fn mark_reordered(&self, at: CallbackRef) {
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

    pub fn client_messages(&self, sid: &CallSid) -> Vec<ClientMessage> {
        self.with_call(sid, |c| c.client_messages.clone())
    }
}
