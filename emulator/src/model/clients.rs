//! The Voice SDK clients connected over signaling with a valid token, and the calls they
//! place, accept and end (twilio-voice.js `lib/twilio/device.ts` and `lib/twilio/call.ts`).

use serde::Serialize;
use tokio::sync::mpsc;
use twilio_call_messages::CallSid;

use super::{CallInfo, ClientCall, ClientLeg, EmulatorError, Model, ReceivedMessage, State};
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
                    .filter(|call| {
                        call.owner == Some(*id) && call.info.client_call_sid == call.info.sid
                    })
                    .map(|call| call.info.sid)
                    .collect(),
            })
            .collect()
    }

    /// The client places a call (`invite`): a client call with the client on the parent leg,
    /// `in-progress` at once. ASSUMPTION: the other party answers at once; it is not modelled
    /// (no TwiML App runs).
    pub fn place_call(&self, id: u64) -> Result<ClientCall, EmulatorError> {
        let mut state = self.state();
        if !state.clients.contains_key(&id) {
            return Err(EmulatorError::NoClient(format!("connection {id}")));
        }
        let call = self.insert_client_call(
            &mut state,
            ClientLeg::Outgoing,
            CallStatus::InProgress,
            Some(id),
        );
        self.changed(&mut state);
        Ok(call)
    }

    /// A call rings the newest registered client with this identity whose token allows
    /// incoming calls: a client call with the client on the child leg, `ringing` until it
    /// answers.
    pub fn ring_client(&self, identity: &str, from: &str) -> Result<ClientCall, EmulatorError> {
        let mut state = self.state();
        let Some(id) = state
            .clients
            .iter()
            .rev()
            .find(|(_, c)| c.identity == identity && c.registered && c.incoming_allow)
            .map(|(id, _)| *id)
        else {
            return Err(EmulatorError::NoClient(identity.to_owned()));
        };
        let call = self.insert_client_call(
            &mut state,
            ClientLeg::Incoming,
            CallStatus::Ringing,
            Some(id),
        );
        if let Some(client) = state.clients.get(&id) {
            let _ = client.tx.send(ToClient::Incoming {
                call: call.child,
                from: from.to_owned(),
                to: format!("client:{identity}"),
            });
        }
        self.changed(&mut state);
        Ok(call)
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
            Some(call) if call.owner == Some(id) && call.info.client_call_sid == sid => Ok(sid),
            _ => Err(not_its()),
        }
    }

    /// The client accepted a call that rang it (`answer`): both legs are `in-progress`.
    pub fn client_accepts(&self, id: u64, sid: &str) -> Result<CallInfo, EmulatorError> {
        let mut state = self.state();
        let sid = self.owned(&state, id, sid)?;
        let info = self.set_status(&mut state, &sid, CallStatus::InProgress, false)?;
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
