//! Calls and their legs: a plain call (the call's client on it), or a Voice SDK client call
//! with two legs, and their status.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use twilio_call_messages::{AccountSid, CallSid};

use super::{
    ClientMessage, DroppedMessage, EmulatorError, Lane, Model, ReceivedMessage, State,
    SubscriptionInfo, ToClient, new_sid,
};
use crate::settings::CallStatus;

/// Which leg of a Voice SDK client call the client is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ClientLeg {
    /// The client placed the call: it is on the parent leg (Twilio dials the other party on a
    /// child leg).
    Outgoing,
    /// The client accepted the call: the caller is on the parent leg, the client on the child.
    Incoming,
}

impl std::str::FromStr for ClientLeg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "outgoing" => Ok(ClientLeg::Outgoing),
            "incoming" => Ok(ClientLeg::Incoming),
            other => Err(format!(
                "the client's leg is outgoing or incoming, not {other:?}"
            )),
        }
    }
}

/// The two legs of a Voice SDK client call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClientCall {
    /// The parent leg.
    pub parent: CallSid,
    /// The child leg.
    pub child: CallSid,
    /// The leg the client is on (`parent` for an outgoing call, `child` for an incoming one).
    pub client: CallSid,
    /// Which one that is.
    pub leg: ClientLeg,
}

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
    /// The leg the call's client is on: this call itself, or (for the other leg of a client
    /// call) the client's leg, where messages to this one never arrive.
    pub client_call_sid: CallSid,
    /// For a leg of a client call: whether the client placed it or accepted it.
    pub client_leg: Option<ClientLeg>,
    /// For a call of a Voice SDK client connected over signaling: its identity.
    pub client_identity: Option<String>,
}

fn status_text<S: serde::Serializer>(status: &CallStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

/// A call as the state keeps it: what it is, and what happened in it.
pub(super) struct Call {
    pub info: CallInfo,
    pub received: Vec<ReceivedMessage>,
    pub dropped: Vec<DroppedMessage>,
    pub subscriptions: Vec<SubscriptionInfo>,
    pub client_messages: Vec<ClientMessage>,
    pub next_sequence: u64,
    /// When the client's last messages went (for the rate rule).
    pub sent_at: VecDeque<Instant>,
    pub lane: Option<Lane>,
    /// The signaling client whose call this is (both legs), while it is connected.
    pub owner: Option<u64>,
}

impl Model {
    /// Adds a call with this SID and status, as a child leg of `parent` if given; the call's
    /// client is on it.
    pub fn add_call(
        &self,
        sid: CallSid,
        status: CallStatus,
        parent: Option<CallSid>,
    ) -> Result<CallInfo, EmulatorError> {
        let mut state = self.state();
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
            account_sid: self.settings.account_sid,
            status,
            parent_call_sid: parent,
            client_call_sid: sid,
            client_leg: None,
            client_identity: None,
        };
        self.insert(&mut state, info.clone());
        self.changed(&mut state);
        Ok(info)
    }

    pub(super) fn insert(&self, state: &mut State, info: CallInfo) {
        let sid = info.sid;
        state.calls.insert(
            sid,
            Call {
                info,
                received: Vec::new(),
                dropped: Vec::new(),
                subscriptions: Vec::new(),
                client_messages: Vec::new(),
                next_sequence: self.settings.sequence_start,
                sent_at: VecDeque::new(),
                lane: None,
                owner: None,
            },
        );
        state.order.push(sid);
    }

    /// A Voice SDK client call: two legs with fresh SIDs, the client on the parent leg when it
    /// placed the call and on the child leg when it accepted it (Twilio's Voice SDK "Call
    /// Message Events" page).
    pub fn create_client_call(&self, leg: ClientLeg, status: CallStatus) -> ClientCall {
        let mut state = self.state();
        let call = self.insert_client_call(&mut state, leg, status, None);
        self.changed(&mut state);
        call
    }

    pub(super) fn insert_client_call(
        &self,
        state: &mut State,
        leg: ClientLeg,
        status: CallStatus,
        owner: Option<u64>,
    ) -> ClientCall {
        let (parent, child): (CallSid, CallSid) = (new_sid("CA"), new_sid("CA"));
        let client = match leg {
            ClientLeg::Outgoing => parent,
            ClientLeg::Incoming => child,
        };
        let identity = owner.and_then(|id| state.clients.get(&id).map(|c| c.identity.clone()));
        for (sid, parent_call_sid) in [(parent, None), (child, Some(parent))] {
            let info = CallInfo {
                sid,
                account_sid: self.settings.account_sid,
                status,
                parent_call_sid,
                client_call_sid: client,
                client_leg: Some(leg),
                client_identity: identity.clone(),
            };
            self.insert(state, info);
            if let Some(call) = state.calls.get_mut(&sid) {
                call.owner = owner;
            }
        }
        ClientCall {
            parent,
            child,
            client,
            leg,
        }
    }

    pub fn call(&self, sid: &CallSid) -> Option<CallInfo> {
        self.state().calls.get(sid).map(|c| c.info.clone())
    }

    pub fn calls(&self) -> Vec<CallInfo> {
        let state = self.state();
        state
            .order
            .iter()
            .filter_map(|sid| state.calls.get(sid).map(|c| c.info.clone()))
            .collect()
    }

    /// The legs of a call's client call (both, parent first), or the call alone.
    pub fn legs(&self, sid: &CallSid) -> Vec<CallInfo> {
        let state = self.state();
        let Some(call) = state.calls.get(sid) else {
            return Vec::new();
        };
        if call.info.client_leg.is_none() {
            return vec![call.info.clone()];
        }
        let client = call.info.client_call_sid;
        state
            .order
            .iter()
            .filter_map(|s| state.calls.get(s))
            .filter(|c| c.info.client_leg.is_some() && c.info.client_call_sid == client)
            .map(|c| c.info.clone())
            .collect()
    }

    /// Changes a call's status; a client call's legs change together (the call is one
    /// conversation: when it connects or ends, both legs do).
    pub fn set_call_status(
        &self,
        sid: &CallSid,
        status: CallStatus,
    ) -> Result<CallInfo, EmulatorError> {
        let mut state = self.state();
        let info = self.set_status(&mut state, sid, status, true)?;
        self.changed(&mut state);
        Ok(info)
    }

    /// Sets the status of a call's legs; a connected client whose call ends by someone
    /// else's hand (`notify`) hears `cancel` while it rang, `hangup` once it was connected
    /// (twilio-voice.js `lib/twilio/call.ts`, `_onCancel` and `_onHangup`).
    pub(super) fn set_status(
        &self,
        state: &mut State,
        sid: &CallSid,
        status: CallStatus,
        notify: bool,
    ) -> Result<CallInfo, EmulatorError> {
        let Some(found) = state.calls.get(sid) else {
            return Err(EmulatorError::UnknownCall(sid.to_string()));
        };
        let (before, owner, client) = (found.info.status, found.owner, found.info.client_call_sid);
        let legs: Vec<CallSid> = if found.info.client_leg.is_some() {
            state
                .calls
                .values()
                .filter(|c| c.info.client_leg.is_some() && c.info.client_call_sid == client)
                .map(|c| c.info.sid)
                .collect()
        } else {
            vec![*sid]
        };
        for leg in legs {
            if let Some(call) = state.calls.get_mut(&leg) {
                call.info.status = status;
            }
        }
        if notify
            && before.is_active()
            && !status.is_active()
            && let Some(tx) = owner.and_then(|id| state.clients.get(&id)).map(|c| &c.tx)
        {
            let _ = tx.send(if before == CallStatus::InProgress {
                ToClient::Hangup { call_sid: client }
            } else {
                ToClient::Cancel { call_sid: client }
            });
        }
        state
            .calls
            .get(sid)
            .map(|c| c.info.clone())
            .ok_or_else(|| EmulatorError::UnknownCall(sid.to_string()))
    }

    /// What one call holds, or the default for an unknown call.
    pub(super) fn with_call<T: Default>(&self, sid: &CallSid, f: impl FnOnce(&Call) -> T) -> T {
        self.state().calls.get(sid).map(f).unwrap_or_default()
    }
}
