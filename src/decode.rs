//! Turning Twilio's lenient 201 bodies (every field optional) into typed results. A body that
//! is missing what matters becomes [`Error::Decode`], which says Twilio accepted the request.

use std::str::FromStr;

use reqwest::StatusCode;
use serde::Serialize;

use crate::error::{Error, RequestInfo};
use crate::sid::SidError;

/// Reads the SID fields of one 201 body, remembering the body for the error.
pub(crate) struct Created<'a, B> {
    pub(crate) body: &'a B,
    pub(crate) request: &'a RequestInfo,
    /// What the caller must not do again, e.g. "do not resend the message".
    pub(crate) accepted: &'static str,
}

impl<B: Serialize> Created<'_, B> {
    /// A SID the response must carry.
    pub(crate) fn required<S>(&self, field: &str, value: Option<&str>) -> Result<S, Error>
    where
        S: FromStr<Err = SidError>,
    {
        match value.map(str::parse) {
            Some(Ok(sid)) => Ok(sid),
            Some(Err(e)) => Err(self.error(format!("field `{field}`: {e}"))),
            None => Err(self.error(format!("field `{field}` is missing"))),
        }
    }

    /// A SID Twilio echoes from the request; if it leaves it out, it is the one sent.
    pub(crate) fn echoed<S>(&self, field: &str, value: Option<&str>, sent: S) -> Result<S, Error>
    where
        S: FromStr<Err = SidError> + AsRef<[u8]>,
    {
        match value {
            // The usual answer, the very text sent: already checked, no need to parse it.
            None => Ok(sent),
            Some(text) if text.as_bytes() == sent.as_ref() => Ok(sent),
            some => self.required(field, some),
        }
    }

    fn error(&self, reason: String) -> Error {
        Error::Decode {
            request: Box::new(self.request.clone()),
            status: StatusCode::CREATED,
            reason: format!("{reason} (Twilio accepted the request: {})", self.accepted),
            body_excerpt: serde_json::to_string(self.body).unwrap_or_default(),
        }
    }
}
