//! The Voice SDK clients connected over signaling with a valid token, and the calls they
//! place, accept and end (twilio-voice.js `lib/twilio/device.ts` and `lib/twilio/call.ts`).

use serde::Serialize;
use tokio::sync::mpsc;
use twilio_call_messages::CallSid;

use super::calls::Call;
use super::{
    CallInfo, ClientCall, ClientLeg, EmulatorError, Endpoint, Model, OTHER_PARTY, ReceivedMessage,
    State,
};
use crate::settings::CallStatus;

/// A Voice SDK client connected to the signaling endpoint with a valid token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VoiceClient {
    /// Its connection, numbered from 1 as they arrive.
    pub id: u64,
    /// `grants.identity` of its token.
    pub identity: String,
    /// Whether it registered for incoming calls (`Device.register()`).
    pub registered: bool,
    /// Whether its token allows incoming calls (`grants.voice.incoming.allow`).
    pub incoming_allow: bool,
    /// Its calls' legs (the client's own), in the order they began.
    pub calls: Vec<CallSid>,
}

/// What the emulator tells a connected Voice SDK client; the signaling connection turns each
/// into a frame.
#[derive(Clone, Debug)]
pub(crate) enum ToClient {
    /// A call rings the client (it is on the child leg).
    Incoming {
        call: CallSid,
        from: String,
        to: String,
    },
    /// A message into one leg of the client's call: the leg the service addressed, so that
    /// the SDK's own rule drops a message to the other leg.
    Message {
        call_sid: CallSid,
        message: ReceivedMessage,
    },
    /// The call ended while connected.
    Hangup { call_sid: CallSid },
    /// The call ended while it was still ringing the client.
    Cancel { call_sid: CallSid },
}

/// A connected client, as the state keeps it.
pub(super) struct Connected {
    pub identity: String,
    pub incoming_allow: bool,
    pub registered: bool,
    pub tx: mpsc::UnboundedSender<ToClient>,
}

impl Model {
    /// A client's token was accepted at `listen`: it is connected under this number.
    pub fn connect_client(
        &self,
        identity: &str,
        incoming_allow: bool,
        tx: mpsc::UnboundedSender<ToClient>,
    ) -> u64 {
        let mut state = self.state();
        state.next_client += 1;
        let id = state.next_client;
        state.clients.insert(
            id,
            Connected {
                identity: identity.to_owned(),
                incoming_allow,
                registered: false,
                tx,
            },
        );
        self.changed(&mut state);
        id
    }

    /// `register` with `audio: true` (or false to unregister): whether calls may ring it.
    pub fn register_client(&self, id: u64, on: bool) {
        let mut state = self.state();
        if let Some(client) = state.clients.get_mut(&id) {
            client.registered = on;
        }
        self.changed(&mut state);
    }

    /// The signaling connection closed. ASSUMPTION: its calls end (`completed`); Twilio keeps
    /// a call for a while for the SDK to reconnect, which the emulator does not model.
    pub fn disconnect_client(&self, id: u64) {
        let mut state = self.state();
        if state.clients.remove(&id).is_none() {
            return;
        }
        let active: Vec<CallSid> = state
            .calls
            .values()
            .filter(|c| c.owner == Some(id) && c.info.status.is_active())
            .map(|c| c.info.sid)
            .collect();
        for sid in active {
            let _ = self.set_status(&mut state, &sid, CallStatus::Completed, false);
        }
        for call in state.calls.values_mut() {
            if call.owner == Some(id) {
                call.owner = None;
            }
        }
        self.changed(&mut state);
    }

    /// The clients connected now.
    pub fn voice_clients(&self) -> Vec<VoiceClient> {
        let state = self.state();
        state
            .clients
            .iter()
            .map(|(id, c)| VoiceClient {
                id: *id,
                identity: c.identity.clone(),
                registered: c.registered,
                incoming_allow: c.incoming_allow,
                calls: state
                    .order
                    .iter()
                    .filter_map(|sid| state.calls.get(sid))
                    .filter(|call| Self::own_leg(&state, *id, call))
                    .map(|call| call.info.sid)
                    .collect(),
            })
            .collect()
    }

    /// The client places a call (`invite`): a client call with the client on the parent leg
    /// (its `from` is `client:<identity>`), `in-progress` at once; the child leg dials `to`
    /// (the invite's `To` parameter when it is a number or `client:name`, else
    /// [`OTHER_PARTY`]). ASSUMPTION: the other party answers at once; it is not modelled (no
    /// TwiML App runs).
    pub fn place_call(&self, id: u64, to: Option<&str>) -> Result<ClientCall, EmulatorError> {
        let mut state = self.state();
        let Some(identity) = state.clients.get(&id).map(|c| c.identity.clone()) else {
            return Err(EmulatorError::NoClient(format!("connection {id}")));
        };
        let to = to
            .filter(|to| {
                to.starts_with("client:")
                    || (to.starts_with('+')
                        && to.len() > 1
                        && to[1..].bytes().all(|b| b.is_ascii_digit()))
            })
            .unwrap_or(OTHER_PARTY);
        let call = self.insert_client_call(
            &mut state,
            ClientLeg::Outgoing,
            CallStatus::InProgress,
            Some(id),
            &identity,
            to,
        );
        self.changed(&mut state);
        Ok(call)
    }

    /// The newest registered client with this identity whose token allows incoming calls.
    pub(super) fn registered(state: &State, identity: &str) -> Option<u64> {
        state
            .clients
            .iter()
            .rev()
            .find(|(_, c)| c.identity == identity && c.registered && c.incoming_allow)
            .map(|(id, _)| *id)
    }

    /// A call rings the newest registered client with this identity whose token allows
    /// incoming calls: a client call with the client on the child leg (its `to` is
    /// `client:<identity>`), `ringing` until it answers; the caller `from` is on the parent.
    pub fn ring_client(&self, identity: &str, from: &str) -> Result<ClientCall, EmulatorError> {
        let mut state = self.state();
        let Some(id) = Self::registered(&state, identity) else {
            return Err(EmulatorError::NoClient(identity.to_owned()));
        };
        let call = self.insert_client_call(
            &mut state,
            ClientLeg::Incoming,
            CallStatus::Ringing,
            Some(id),
            identity,
            from,
        );
        if let Some(client) = state.clients.get(&id) {
            let _ = client.tx.send(ToClient::Incoming {
                call: call.child,
                from: Endpoint::parse(from).address(),
                to: format!("client:{identity}"),
            });
        }
        self.changed(&mut state);
        Ok(call)
    }

    /// Whether this leg is the connected client's own: its call, with its identity on it.
    fn own_leg(state: &State, id: u64, call: &Call) -> bool {
        let identity = state.clients.get(&id).map(|c| c.identity.as_str());
        call.owner == Some(id)
            && call.info.client_call_sid == call.info.sid
            && call.info.client_on_leg() == identity
    }

    /// The client's own call, or why not.
    pub(super) fn owned(
        &self,
        state: &State,
        id: u64,
        sid: &str,
    ) -> Result<CallSid, EmulatorError> {
        let not_its = || EmulatorError::NotClientsCall(sid.to_owned());
        let sid: CallSid = sid.parse().map_err(|_| not_its())?;
        match state.calls.get(&sid) {
            Some(call) if Self::own_leg(state, id, call) => Ok(sid),
            _ => Err(not_its()),
        }
    }

    /// The client accepted a call that rang it (`answer`): both legs are `in-progress`; a
    /// call that rang it into a conference joins it.
    pub fn client_accepts(&self, id: u64, sid: &str) -> Result<CallInfo, EmulatorError> {
        let mut state = self.state();
        let sid = self.owned(&state, id, sid)?;
        self.set_status(&mut state, &sid, CallStatus::InProgress, false)?;
        if let Some(conference) = state.calls.get(&sid).and_then(|c| c.joins.clone())
            && state
                .conferences
                .get(&conference)
                .is_some_and(|c| c.info.status != "completed")
        {
            self.enter_conference(&mut state, &conference, &sid);
        }
        let info = state
            .calls
            .get(&sid)
            .map(|c| c.info.clone())
            .ok_or_else(|| EmulatorError::UnknownCall(sid.to_string()))?;
        self.changed(&mut state);
        Ok(info)
    }

    /// The client ended its call: `hangup` (`completed`) or `reject` of a ringing call.
    /// ASSUMPTION: a rejected call is `busy`, what a caller's `<Dial>` reports for a client
    /// that declined.
    pub fn client_ends(&self, id: u64, sid: &str, reject: bool) -> Result<(), EmulatorError> {
        let mut state = self.state();
        let sid = self.owned(&state, id, sid)?;
        let status = if reject {
            CallStatus::Busy
        } else {
            CallStatus::Completed
        };
        self.set_status(&mut state, &sid, status, false)?;
        self.changed(&mut state);
        Ok(())
    }
}
