//! Conferences and their participants: each participant is one call leg, whose `call_sid` is
//! that leg's own (twilio-oai `spec/json/twilio_api_v2010.json`,
//! `api.v2010.account.conference.participant`: `call_sid` "The SID of the Call the Participant
//! resource is associated with"), so a message to a participant goes to its own leg.

use serde::Serialize;
use twilio_call_messages::{AccountSid, CallSid};

use super::calls::NewLeg;
use super::{
    ACCOUNT_NUMBER, EmulatorError, Endpoint, Model, OUTBOUND_API, State, ToClient, now_rfc2822,
    random_hex,
};
use crate::settings::CallStatus;

/// A conference as the emulator keeps it (upstream `api.v2010.account.conference`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConferenceInfo {
    /// `CF…`
    pub sid: String,
    /// The account that owns it.
    pub account_sid: AccountSid,
    /// The name it was given.
    pub friendly_name: String,
    /// `init` until someone joins, `in-progress` while someone is in it, `completed` once the
    /// last participant left (upstream `conference_enum_status`).
    pub status: String,
    /// `last-participant-left` once completed (upstream
    /// `conference_enum_reason_conference_ended`).
    pub reason_conference_ended: Option<String>,
    /// The leg whose leaving ended it.
    pub call_sid_ending_conference: Option<CallSid>,
    /// RFC 2822.
    pub date_created: String,
    /// RFC 2822.
    pub date_updated: String,
    /// Its participants, in the order they joined.
    pub participants: Vec<ParticipantInfo>,
}

/// A participant of a conference (upstream `api.v2010.account.conference.participant`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ParticipantInfo {
    /// The participant's own leg.
    pub call_sid: CallSid,
    /// The conference.
    pub conference_sid: String,
    /// Always `false`: the emulator neither mutes, holds nor coaches.
    pub muted: bool,
    /// Always `false`.
    pub hold: bool,
    /// Always `false`.
    pub coaching: bool,
    /// `connected` (upstream `participant_enum_status`): a participant is listed once its
    /// leg is answered.
    pub status: String,
    /// RFC 2822.
    pub date_created: String,
}

pub(super) struct Conference {
    pub info: ConferenceInfo,
}

impl Model {
    /// A conference, empty (`init`).
    pub fn create_conference(&self, friendly_name: &str) -> String {
        let mut state = self.state();
        let sid = format!("CF{}", random_hex());
        let date = now_rfc2822();
        state.conferences.insert(
            sid.clone(),
            Conference {
                info: ConferenceInfo {
                    sid: sid.clone(),
                    account_sid: self.settings.account_sid,
                    friendly_name: friendly_name.to_owned(),
                    status: "init".into(),
                    reason_conference_ended: None,
                    call_sid_ending_conference: None,
                    date_created: date.clone(),
                    date_updated: date,
                    participants: Vec::new(),
                },
            },
        );
        state.conference_order.push(sid.clone());
        self.changed(&mut state);
        sid
    }

    fn open_conference(state: &State, sid: &str) -> Result<(), EmulatorError> {
        match state.conferences.get(sid) {
            None => Err(EmulatorError::UnknownConference(sid.to_owned())),
            Some(c) if c.info.status == "completed" => {
                Err(EmulatorError::ConferenceEnded(sid.to_owned()))
            }
            Some(_) => Ok(()),
        }
    }

    /// A participant added by the REST API: a new `outbound-api` leg from the account's
    /// number to `endpoint`, in progress, in the conference.
    pub fn add_participant(
        &self,
        conference: &str,
        endpoint: Endpoint,
    ) -> Result<CallSid, EmulatorError> {
        let mut state = self.state();
        Self::open_conference(&state, conference)?;
        let sid: CallSid = super::new_sid("CA");
        self.insert(
            &mut state,
            NewLeg {
                sid,
                status: CallStatus::InProgress,
                parent: None,
                from: Endpoint::Phone(ACCOUNT_NUMBER.into()),
                to: endpoint,
                direction: OUTBOUND_API,
                group: None,
                owner: None,
            },
        );
        self.enter_conference(&mut state, conference, &sid);
        self.changed(&mut state);
        Ok(sid)
    }

    /// Puts an existing leg into a conference (it leaves the one it was in). ASSUMPTION: a
    /// ringing leg is answered by joining, as `<Dial><Conference>` answers the call it runs
    /// in.
    pub fn join_conference(&self, conference: &str, call: &CallSid) -> Result<(), EmulatorError> {
        let mut state = self.state();
        Self::open_conference(&state, conference)?;
        let status = match state.calls.get(call) {
            None => return Err(EmulatorError::UnknownCall(call.to_string())),
            Some(found) => found.info.status,
        };
        if !status.is_active() {
            return Err(EmulatorError::CallNotActive(status));
        }
        if status != CallStatus::InProgress {
            self.set_status(&mut state, call, CallStatus::InProgress, false)?;
        }
        self.enter_conference(&mut state, conference, call);
        self.changed(&mut state);
        Ok(())
    }

    /// Rings the registered Voice SDK client `identity` with a single `outbound-api` leg to
    /// `client:identity` (a participant the REST API adds, ringing a client): once the client
    /// accepts, the leg is a participant of the conference.
    pub fn ring_client_into_conference(
        &self,
        conference: &str,
        identity: &str,
    ) -> Result<CallSid, EmulatorError> {
        let mut state = self.state();
        Self::open_conference(&state, conference)?;
        let Some(id) = Self::registered(&state, identity) else {
            return Err(EmulatorError::NoClient(identity.to_owned()));
        };
        let sid: CallSid = super::new_sid("CA");
        let from = ACCOUNT_NUMBER.to_owned();
        self.insert(
            &mut state,
            NewLeg {
                sid,
                status: CallStatus::Ringing,
                parent: None,
                from: Endpoint::Phone(from.clone()),
                to: Endpoint::Client(identity.to_owned()),
                direction: OUTBOUND_API,
                group: None,
                owner: Some(id),
            },
        );
        if let Some(call) = state.calls.get_mut(&sid) {
            call.joins = Some(conference.to_owned());
        }
        if let Some(client) = state.clients.get(&id) {
            let _ = client.tx.send(ToClient::Incoming {
                call: sid,
                from,
                to: format!("client:{identity}"),
            });
        }
        self.changed(&mut state);
        Ok(sid)
    }

    /// The leg joins (leaving the conference it was in); the conference is in progress.
    pub(super) fn enter_conference(&self, state: &mut State, conference: &str, call: &CallSid) {
        let current = state
            .calls
            .get(call)
            .and_then(|c| c.info.conference_sid.clone());
        if current.as_deref() == Some(conference) {
            return;
        }
        if current.is_some() {
            self.leave_conference(state, call);
        }
        let date = now_rfc2822();
        if let Some(found) = state.conferences.get_mut(conference) {
            found.info.participants.push(ParticipantInfo {
                call_sid: *call,
                conference_sid: conference.to_owned(),
                muted: false,
                hold: false,
                coaching: false,
                status: "connected".into(),
                date_created: date.clone(),
            });
            found.info.status = "in-progress".into();
            found.info.date_updated = date;
        }
        if let Some(found) = state.calls.get_mut(call) {
            found.info.conference_sid = Some(conference.to_owned());
            found.joins = None;
        }
    }

    /// The leg leaves its conference (its call ended); the last to leave ends it
    /// (`last-participant-left`, upstream `conference_enum_reason_conference_ended`).
    pub(super) fn leave_conference(&self, state: &mut State, call: &CallSid) {
        let Some(conference) = state
            .calls
            .get_mut(call)
            .and_then(|c| c.info.conference_sid.take())
        else {
            return;
        };
        if let Some(found) = state.conferences.get_mut(&conference) {
            found.info.participants.retain(|p| p.call_sid != *call);
            found.info.date_updated = now_rfc2822();
            if found.info.participants.is_empty() {
                found.info.status = "completed".into();
                found.info.reason_conference_ended = Some("last-participant-left".into());
                found.info.call_sid_ending_conference = Some(*call);
            }
        }
    }

    pub fn conference(&self, sid: &str) -> Option<ConferenceInfo> {
        self.state().conferences.get(sid).map(|c| c.info.clone())
    }

    /// Every conference, in the order they were created.
    pub fn conferences(&self) -> Vec<ConferenceInfo> {
        let state = self.state();
        state
            .conference_order
            .iter()
            .filter_map(|sid| state.conferences.get(sid).map(|c| c.info.clone()))
            .collect()
    }
}
