//! A call's subscriptions (`UserDefinedMessageSubscription`): the rules of `Callback` and
//! `Method`, and their records.

use serde::Serialize;
use twilio_call_messages::{CallSid, SubscriptionSid};

use super::account::Opened;
use super::{Created, Model, Operation, Refusal, new_sid, now_rfc2822};

/// A subscription of a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SubscriptionInfo {
    /// `ZY…`
    pub sid: SubscriptionSid,
    /// The callback URL as given (its `#…` fragment included).
    pub callback: String,
    /// `POST` (Twilio's default) or `GET`.
    pub method: String,
    /// RFC 2822.
    pub date_created: String,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// `Callback` must be an absolute http(s) URL with a valid host name: "URLs must contain a
/// valid hostname (underscores are not permitted)" (upstream description of `Callback`).
fn check_callback(callback: &str) -> Result<(), String> {
    let url = url::Url::parse(callback).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    match url.host() {
        None => Err("has no host".into()),
        Some(url::Host::Domain(name)) if name.contains('_') => {
            Err("has an underscore in its host name".into())
        }
        Some(url::Host::Domain(name))
            if name.split('.').any(|label| {
                label.is_empty()
                    || label.starts_with('-')
                    || label.ends_with('-')
                    || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }) =>
        {
            Err("has an invalid host name".into())
        }
        Some(_) => Ok(()),
    }
}

impl Model {
    /// Subscribes to the messages of a call's client: the call must exist, a repeated key
    /// answers the first result, `Callback` is required (upstream marks it so) and a valid
    /// URL, `Method` GET or POST (POST when absent, upstream prose), and the call active
    /// (21220).
    pub fn subscribe(
        &self,
        call: &CallSid,
        key: Option<&str>,
        callback: Option<&str>,
        method: Option<&str>,
    ) -> Result<Created, Refusal> {
        let mut create = match self.open_create(Operation::Subscription, call, key)? {
            Opened::Replay(first) => return Ok(first),
            Opened::New(create) => create,
        };
        let callback = callback.ok_or(Refusal::MissingParameter("Callback"))?;
        check_callback(callback).map_err(Refusal::InvalidCallback)?;
        let method = match method {
            None => "POST",
            Some(m) if m.eq_ignore_ascii_case("POST") => "POST",
            Some(m) if m.eq_ignore_ascii_case("GET") => "GET",
            Some(_) => return Err(Refusal::InvalidMethod),
        };
        create.check_active()?;

        let sid: SubscriptionSid = new_sid("ZY");
        let date = now_rfc2822();
        let at_ms = self.now_ms();
        if let Some(found) = create.state().calls.get_mut(call) {
            found.subscriptions.push(SubscriptionInfo {
                sid,
                callback: callback.to_owned(),
                method: method.to_owned(),
                date_created: date.clone(),
                at_ms,
            });
        }
        Ok(create.finish(Created::Subscription {
            call: *call,
            sid,
            date_created: date,
        }))
    }

    /// Removes a subscription of a call.
    pub fn unsubscribe(&self, call: &CallSid, sid: &str) -> Result<(), Refusal> {
        let mut state = self.state();
        let Some(found) = state.calls.get_mut(call) else {
            return Err(Refusal::CallNotFound);
        };
        let before = found.subscriptions.len();
        found.subscriptions.retain(|s| s.sid.as_str() != sid);
        let removed = found.subscriptions.len() != before;
        self.changed(&mut state);
        if removed {
            Ok(())
        } else {
            Err(Refusal::SubscriptionNotFound)
        }
    }

    pub fn subscriptions(&self, sid: &CallSid) -> Vec<SubscriptionInfo> {
        self.with_call(sid, |c| c.subscriptions.clone())
    }
}
