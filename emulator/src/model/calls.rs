//! Calls and their legs: a plain call (the call's client on it), a dialled call with its
//! parent and child legs (a Voice SDK client on either, both or neither), who is on each end of
//! each leg (`from`, `to`, `direction`, as upstream's Call resource says), and their status.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use twilio_call_messages::{AccountSid, CallSid};

use twilio_call_messages::time::OffsetDateTime;

use super::{
    ClientMessage, DroppedMessage, EmulatorError, Lane, Model, ReceivedMessage, State,
    SubscriptionInfo, ToClient, new_sid, rfc2822,
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
    /// A client on each leg (client to client): one placed the call, the other accepted it.
    Both,
}

impl std::str::FromStr for ClientLeg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "outgoing" => Ok(ClientLeg::Outgoing),
            "incoming" => Ok(ClientLeg::Incoming),
            "both" => Ok(ClientLeg::Both),
            other => Err(format!(
                "the client's leg is outgoing, incoming or both, not {other:?}"
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

/// A phone number or a Voice SDK client, as the Call resource's `from` and `to` show it:
/// "Phone numbers are in E.164 format … Client identifiers are formatted `client:name`"
/// (twilio-oai `spec/json/twilio_api_v2010.json`, `api.v2010.account.call`, `from`/`to`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A phone number, E.164 (`+15005550006`).
    Phone(String),
    /// A Voice SDK client by its identity: `client:identity` on the call.
    Client(String),
}

impl Endpoint {
    /// How the Call resource writes it: the number, or `client:identity`.
    pub fn address(&self) -> String {
        match self {
            Endpoint::Phone(number) => number.clone(),
            Endpoint::Client(identity) => format!("{CLIENT_PREFIX}{identity}"),
        }
    }

    /// Reads a Call resource's `from` or `to`: `client:name` is a client, anything else a
    /// phone number (SIP addresses and SIM SIDs are not modelled).
    pub fn parse(address: &str) -> Endpoint {
        match address.strip_prefix(CLIENT_PREFIX) {
            Some(identity) => Endpoint::Client(identity.to_owned()),
            None => Endpoint::Phone(address.to_owned()),
        }
    }
}

/// How upstream's Call resource prefixes a Voice SDK client's identity.
const CLIENT_PREFIX: &str = "client:";

/// The other party of a call when none is given: Twilio's magic test number that "passes all
/// validation", <https://www.twilio.com/docs/iam/test-credentials>.
pub const OTHER_PARTY: &str = "+15005550006";

/// The account's own number: what an inbound call dialled, and the caller ID of the calls the
/// account places. ASSUMPTION: one made-up number (the one Twilio's docs use in their
/// examples); the emulator has no IncomingPhoneNumber resource.
pub const ACCOUNT_NUMBER: &str = "+15017122661";

/// The Call resource's `direction` (upstream `api.v2010.account.call`: "`inbound` for inbound
/// calls, `outbound-api` for calls initiated via the REST API or `outbound-dial` for calls
/// initiated by a `<Dial>` verb").
pub(crate) const INBOUND: &str = "inbound";
pub(crate) const OUTBOUND_API: &str = "outbound-api";
pub(crate) const OUTBOUND_DIAL: &str = "outbound-dial";

/// The legs of a dialled call: the inbound parent, and the `outbound-dial` child once dialled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DialedCall {
    /// The inbound parent leg.
    pub parent: CallSid,
    /// The child leg, `None` while the parent still rings (not dialled yet).
    pub child: Option<CallSid>,
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
    /// Who made this leg: a number, or `client:identity` (upstream's `from`).
    pub from: String,
    /// Who received this leg: a number, or `client:identity` (upstream's `to`).
    pub to: String,
    /// `inbound`, `outbound-api` or `outbound-dial` (upstream's `direction`).
    pub direction: String,
    /// The leg a message to this one reaches: this leg when a Voice SDK client is on it;
    /// otherwise the leg of the same call that has one (where messages to this one never
    /// arrive); this leg itself when no leg has a client (a phone on both ends).
    pub client_call_sid: CallSid,
    /// For a leg of a call with one Voice SDK client: whether the client placed it or
    /// accepted it ([`ClientLeg::Both`] for a client on each leg).
    pub client_leg: Option<ClientLeg>,
    /// For a call of a Voice SDK client connected over signaling: its identity.
    pub client_identity: Option<String>,
    /// The conference (`CF…`) this leg is a participant of.
    pub conference_sid: Option<String>,
    /// When it was created (RFC 2822).
    pub date_created: String,
    /// When it last changed (RFC 2822).
    pub date_updated: String,
    /// When it was answered (RFC 2822), `None` while it rings.
    pub start_time: Option<String>,
    /// When it ended (RFC 2822).
    pub end_time: Option<String>,
    /// Its length in seconds once it ended after being answered.
    pub duration: Option<String>,
}

impl CallInfo {
    /// The Voice SDK client on this leg, if any: the caller of an inbound leg (a client that
    /// placed the call), the callee of an outbound one (a client that accepted it), as
    /// upstream's `from` ("made this call") and `to` ("received this call") say.
    pub fn client_on_leg(&self) -> Option<&str> {
        let own = if self.direction == INBOUND {
            &self.from
        } else {
            &self.to
        };
        own.strip_prefix(CLIENT_PREFIX)
    }
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
    /// The parent of a dialled call: its legs change status together. `None` for a call of
    /// one leg, and for a leg added on its own (`add_call`), whose status is its own.
    pub group: Option<CallSid>,
    /// A conference this ringing leg joins once answered.
    pub joins: Option<String>,
    answered_at: Option<OffsetDateTime>,
}

/// One leg to add: who is on each end, and how it began.
pub(super) struct NewLeg {
    pub sid: CallSid,
    pub status: CallStatus,
    pub parent: Option<CallSid>,
    pub from: Endpoint,
    pub to: Endpoint,
    pub direction: &'static str,
    pub group: Option<CallSid>,
    pub owner: Option<u64>,
}

/// Which of the two legs has a client, as [`ClientLeg`] names it.
fn client_leg(parent_has: bool, child_has: bool) -> Option<ClientLeg> {
    match (parent_has, child_has) {
        (true, true) => Some(ClientLeg::Both),
        (true, false) => Some(ClientLeg::Outgoing),
        (false, true) => Some(ClientLeg::Incoming),
        (false, false) => None,
    }
}

/// The caller ID of a `<Dial>`'s child leg: the caller's own, unless the caller is a client
/// dialling a phone, which must present a number: "If you are dialing a phone number from a
/// Twilio Client connection, you must specify a valid phone number as the callerId"
/// (<https://www.twilio.com/docs/voice/twiml/dial#callerid>). ASSUMPTION: the account's
/// number is that callerId.
fn caller_id(from: &Endpoint, to: &Endpoint) -> Endpoint {
    match (from, to) {
        (Endpoint::Client(_), Endpoint::Phone(_)) => Endpoint::Phone(ACCOUNT_NUMBER.into()),
        _ => from.clone(),
    }
}

/// The `to` of an inbound parent leg: what the caller reached. ASSUMPTION: the account's
/// number, for a client's call as for a phone's (a client's call reaches the account's TwiML
/// App; its `To` parameter names whom the `<Dial>` rings, which is the child leg's `to`), so
/// that who is on the parent leg is read from `from` alone.
fn reached() -> Endpoint {
    Endpoint::Phone(ACCOUNT_NUMBER.into())
}

impl Model {
    /// A fresh identity for a client the caller did not name (`alice-1`, `bob-2`, …).
    pub(super) fn generated_identity(&self, state: &mut State) -> String {
        const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
        state.next_identity += 1;
        let n = state.next_identity;
        format!("{}-{n}", NAMES[(n as usize - 1) % NAMES.len()])
    }

    /// Adds a call with this SID and status, as a child leg of `parent` if given; the call's
    /// client is on it: an `outbound-api` call to a generated `client:` identity, or an
    /// `outbound-dial` child leg to one.
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
        let identity = self.generated_identity(&mut state);
        let info = self.insert(
            &mut state,
            NewLeg {
                sid,
                status,
                parent,
                from: Endpoint::Phone(ACCOUNT_NUMBER.into()),
                to: Endpoint::Client(identity),
                direction: if parent.is_some() {
                    OUTBOUND_DIAL
                } else {
                    OUTBOUND_API
                },
                group: None,
                owner: None,
            },
        );
        self.changed(&mut state);
        Ok(info)
    }

    /// Inserts a leg; its `client_call_sid` is its own until [`link`](Self::link) says
    /// otherwise.
    pub(super) fn insert(&self, state: &mut State, leg: NewLeg) -> CallInfo {
        let now = OffsetDateTime::now_utc();
        let date = rfc2822(now);
        let answered = !matches!(leg.status, CallStatus::Queued | CallStatus::Ringing);
        let info = CallInfo {
            sid: leg.sid,
            account_sid: self.settings.account_sid,
            status: leg.status,
            parent_call_sid: leg.parent,
            from: leg.from.address(),
            to: leg.to.address(),
            direction: leg.direction.to_owned(),
            client_call_sid: leg.sid,
            client_leg: None,
            client_identity: leg
                .owner
                .and_then(|id| state.clients.get(&id).map(|c| c.identity.clone())),
            conference_sid: None,
            date_created: date.clone(),
            date_updated: date.clone(),
            start_time: answered.then(|| date.clone()),
            end_time: None,
            duration: None,
        };
        let info = match leg.status.is_active() || !answered {
            true => info,
            // Created already ended: it ended when it began.
            false => CallInfo {
                end_time: Some(date.clone()),
                duration: Some("0".into()),
                ..info
            },
        };
        state.calls.insert(
            leg.sid,
            Call {
                info: info.clone(),
                received: Vec::new(),
                dropped: Vec::new(),
                subscriptions: Vec::new(),
                client_messages: Vec::new(),
                next_sequence: self.settings.sequence_start,
                sent_at: VecDeque::new(),
                lane: None,
                owner: leg.owner,
                group: leg.group,
                joins: None,
                answered_at: answered.then_some(now),
            },
        );
        state.order.push(leg.sid);
        info
    }

    /// Works out, for each leg of a dialled call, the leg its messages reach and which leg
    /// the client is on, from who is on each leg.
    pub(super) fn link(&self, state: &mut State, parent: &CallSid) {
        let legs: Vec<(CallSid, bool)> = state
            .order
            .iter()
            .filter_map(|s| state.calls.get(s))
            .filter(|c| c.group == Some(*parent))
            .map(|c| (c.info.sid, c.info.client_on_leg().is_some()))
            .collect();
        let parent_has = legs.iter().any(|(s, has)| s == parent && *has);
        let child_has = legs.iter().any(|(s, has)| s != parent && *has);
        let single = legs.len() == 1;
        let leg = if single {
            None
        } else {
            client_leg(parent_has, child_has)
        };
        let first_client = legs.iter().find(|(_, has)| *has).map(|(s, _)| *s);
        for (sid, has) in &legs {
            if let Some(call) = state.calls.get_mut(sid) {
                call.info.client_call_sid = match (has, first_client) {
                    (true, _) | (false, None) => *sid,
                    (false, Some(client)) => client,
                };
                call.info.client_leg = leg;
            }
        }
    }

    /// A dialled call: the inbound parent from `from`, and, if `to` is given, its
    /// `outbound-dial` child to `to` (upstream `api.v2010.account.call`: `parent_call_sid` is
    /// "the call that created this leg"). Both legs share the status.
    pub(super) fn insert_dialed(
        &self,
        state: &mut State,
        from: Endpoint,
        to: Option<Endpoint>,
        status: CallStatus,
        owner: Option<u64>,
    ) -> DialedCall {
        let parent: CallSid = new_sid("CA");
        self.insert(
            state,
            NewLeg {
                sid: parent,
                status,
                parent: None,
                from: from.clone(),
                to: reached(),
                direction: INBOUND,
                group: Some(parent),
                owner,
            },
        );
        let child = to.map(|to| self.insert_child(state, parent, &from, to, status, owner));
        self.link(state, &parent);
        DialedCall { parent, child }
    }

    fn insert_child(
        &self,
        state: &mut State,
        parent: CallSid,
        from: &Endpoint,
        to: Endpoint,
        status: CallStatus,
        owner: Option<u64>,
    ) -> CallSid {
        let child: CallSid = new_sid("CA");
        self.insert(
            state,
            NewLeg {
                sid: child,
                status,
                parent: Some(parent),
                from: caller_id(from, &to),
                to,
                direction: OUTBOUND_DIAL,
                group: Some(parent),
                owner,
            },
        );
        child
    }

    /// A Voice SDK client call: two legs with fresh SIDs, the client on the parent leg when it
    /// placed the call and on the child leg when it accepted it (Twilio's Voice SDK "Call
    /// Message Events" page); the client gets a generated identity, the other party is
    /// [`OTHER_PARTY`].
    pub fn create_client_call(&self, leg: ClientLeg, status: CallStatus) -> ClientCall {
        let mut state = self.state();
        let identity = self.generated_identity(&mut state);
        let other = match leg {
            ClientLeg::Both => format!("{CLIENT_PREFIX}{}", self.generated_identity(&mut state)),
            _ => OTHER_PARTY.to_owned(),
        };
        let call = self.insert_client_call(&mut state, leg, status, None, &identity, &other);
        self.changed(&mut state);
        call
    }

    /// The legs of a client call; `other` is the other party's address (`client:…` for a
    /// second client).
    pub(super) fn insert_client_call(
        &self,
        state: &mut State,
        leg: ClientLeg,
        status: CallStatus,
        owner: Option<u64>,
        identity: &str,
        other: &str,
    ) -> ClientCall {
        let me = Endpoint::Client(identity.to_owned());
        let other = Endpoint::parse(other);
        let (from, to) = match leg {
            ClientLeg::Incoming => (other, me),
            _ => (me, other),
        };
        let call = self.insert_dialed(state, from, Some(to), status, owner);
        let child = call.child.expect("dialled with a child");
        let client = match leg {
            ClientLeg::Incoming => child,
            _ => call.parent,
        };
        ClientCall {
            parent: call.parent,
            child,
            client,
            leg,
        }
    }

    /// A call from `from` that dials `to`: both legs in progress.
    pub fn dial(&self, from: Endpoint, to: Endpoint) -> DialedCall {
        let mut state = self.state();
        let call = self.insert_dialed(&mut state, from, Some(to), CallStatus::InProgress, None);
        self.changed(&mut state);
        call
    }

    /// A call from `from` that rings, not dialled yet: a parent leg without a child.
    pub fn ringing_call(&self, from: Endpoint) -> CallSid {
        let mut state = self.state();
        let call = self.insert_dialed(&mut state, from, None, CallStatus::Ringing, None);
        self.changed(&mut state);
        call.parent
    }

    /// Dials the child leg of a parent that has none: both legs are in progress.
    pub fn dial_child(&self, parent: &CallSid, to: Endpoint) -> Result<CallSid, EmulatorError> {
        let mut state = self.state();
        let Some(found) = state.calls.get(parent) else {
            return Err(EmulatorError::UnknownCall(parent.to_string()));
        };
        if found.group != Some(*parent) {
            return Err(EmulatorError::NotDialable(parent.to_string()));
        }
        if !found.info.status.is_active() {
            return Err(EmulatorError::CallNotActive(found.info.status));
        }
        if state
            .calls
            .values()
            .any(|c| c.info.parent_call_sid == Some(*parent) && c.group == Some(*parent))
        {
            return Err(EmulatorError::AlreadyDialed(parent.to_string()));
        }
        let (from, owner) = (Endpoint::parse(&found.info.from), found.owner);
        let child = self.insert_child(&mut state, *parent, &from, to, CallStatus::Ringing, owner);
        self.set_status(&mut state, parent, CallStatus::InProgress, false)?;
        self.link(&mut state, parent);
        self.changed(&mut state);
        Ok(child)
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

    /// The legs of a dialled call (parent first), or the call alone.
    pub fn legs(&self, sid: &CallSid) -> Vec<CallInfo> {
        let state = self.state();
        Self::leg_sids(&state, sid)
            .iter()
            .filter_map(|s| state.calls.get(s).map(|c| c.info.clone()))
            .collect()
    }

    fn leg_sids(state: &State, sid: &CallSid) -> Vec<CallSid> {
        match state.calls.get(sid).and_then(|c| c.group) {
            Some(group) => state
                .order
                .iter()
                .filter(|s| state.calls.get(s).is_some_and(|c| c.group == Some(group)))
                .copied()
                .collect(),
            None if state.calls.contains_key(sid) => vec![*sid],
            None => Vec::new(),
        }
    }

    /// Changes a call's status; a dialled call's legs change together (the call is one
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
    /// (twilio-voice.js `lib/twilio/call.ts`, `_onCancel` and `_onHangup`). A leg that ends
    /// leaves its conference.
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
        let now = OffsetDateTime::now_utc();
        let date = rfc2822(now);
        let mut ended = Vec::new();
        for leg in Self::leg_sids(state, sid) {
            let Some(call) = state.calls.get_mut(&leg) else {
                continue;
            };
            let was = call.info.status;
            call.info.status = status;
            call.info.date_updated = date.clone();
            if status == CallStatus::InProgress && call.answered_at.is_none() {
                call.answered_at = Some(now);
                call.info.start_time = Some(date.clone());
            }
            if was.is_active() && !status.is_active() {
                call.info.end_time = Some(date.clone());
                call.info.duration = Some(
                    call.answered_at
                        .map_or(0, |at| (now - at).whole_seconds().max(0))
                        .to_string(),
                );
                ended.push(leg);
            }
            if status.is_active() && !was.is_active() {
                // Back in progress (the control API allows it): it has not ended.
                call.info.end_time = None;
                call.info.duration = None;
            }
        }
        for leg in ended {
            self.leave_conference(state, &leg);
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
