//! Why the emulator refused something asked through its Rust handle, its control API or a
//! signaling client: the Voice SDK's own refusals keep the SDK's codes.

use std::fmt;

use super::{CLIENT_MESSAGES_PER_SECOND, MAX_CONTENT_CHARS, USER_DEFINED_MESSAGE};
use crate::settings::CallStatus;

/// Why the emulator refused something asked through its Rust API or control API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmulatorError {
    /// No call with this SID.
    UnknownCall(String),
    /// The call has ended (or never started): its client cannot send.
    CallNotActive(CallStatus),
    /// The call is still ringing: the client is not connected yet (twilio-voice.js 31211).
    CallNotConnected,
    /// A call with this SID exists already.
    CallExists(String),
    /// The content is longer than [`MAX_CONTENT_CHARS`] (twilio-voice.js error 31212).
    ContentTooLong(usize),
    /// The content is not JSON text.
    ContentNotJson(String),
    /// A message type other than `user-defined-message` (twilio-voice.js error 31210).
    MessageType(String),
    /// More than [`CLIENT_MESSAGES_PER_SECOND`] within a second (twilio-voice.js error 31206).
    RateExceeded,
    /// A setting is out of range.
    Setting(String),
    /// No Voice SDK client registered with this identity accepts incoming calls.
    NoClient(String),
    /// The call is not this signaling client's.
    NotClientsCall(String),
    /// No Voice SDK client is on any leg of this call (a phone on both ends): nobody can send.
    NoClientOnCall(String),
    /// No conference with this SID.
    UnknownConference(String),
    /// The conference has ended: its last participant left.
    ConferenceEnded(String),
    /// The call is not the parent leg of a dialled call (made with `ringing_call` or `dial`).
    NotDialable(String),
    /// The call has a child leg already.
    AlreadyDialed(String),
}

impl EmulatorError {
    /// The Voice SDK's error code for a refusal the client itself makes, if it has one.
    pub fn code(&self) -> Option<u32> {
        match self {
            EmulatorError::ContentTooLong(_) => Some(31212),
            EmulatorError::MessageType(_) => Some(31210),
            EmulatorError::CallNotConnected => Some(31211),
            EmulatorError::RateExceeded => Some(31206),
            _ => None,
        }
    }
}

impl fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmulatorError::UnknownCall(sid) => write!(f, "no call {sid}"),
            EmulatorError::CallNotActive(status) => {
                write!(f, "the call is {status}, not in-progress")
            }
            EmulatorError::CallNotConnected => f.write_str(
                "the call is ringing: the client cannot send before it is connected (error 31211)",
            ),
            EmulatorError::CallExists(sid) => write!(f, "call {sid} exists already"),
            EmulatorError::ContentTooLong(n) => write!(
                f,
                "content of {n} characters is longer than {MAX_CONTENT_CHARS} (error 31212, payload too large)"
            ),
            EmulatorError::ContentNotJson(why) => write!(f, "the content is not JSON: {why}"),
            EmulatorError::MessageType(t) => write!(
                f,
                "message type {t:?} is not {USER_DEFINED_MESSAGE:?} (error 31210)"
            ),
            EmulatorError::RateExceeded => write!(
                f,
                "more than {CLIENT_MESSAGES_PER_SECOND} messages within a second (error 31206, rate exceeded)"
            ),
            EmulatorError::Setting(why) => f.write_str(why),
            EmulatorError::NoClient(identity) => write!(
                f,
                "no Voice SDK client registered as {identity:?} (with a token that allows incoming calls)"
            ),
            EmulatorError::NotClientsCall(sid) => {
                write!(f, "call {sid} is not this client's")
            }
            EmulatorError::NoClientOnCall(sid) => write!(
                f,
                "no Voice SDK client is on any leg of call {sid} (a phone on both ends)"
            ),
            EmulatorError::UnknownConference(sid) => write!(f, "no conference {sid}"),
            EmulatorError::ConferenceEnded(sid) => {
                write!(f, "conference {sid} has ended: its last participant left")
            }
            EmulatorError::NotDialable(sid) => write!(
                f,
                "call {sid} is not the parent leg of a dialled call (made by ringing_call or dial)"
            ),
            EmulatorError::AlreadyDialed(sid) => write!(f, "call {sid} has a child leg already"),
        }
    }
}

impl std::error::Error for EmulatorError {}
