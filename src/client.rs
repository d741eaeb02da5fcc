//! The client: one connection pool, credentials and settings, cheap to clone.

use std::fmt;
use std::sync::Arc;

use progenitor_client::ClientInfo as _;
use serde::Serialize;

use crate::config::ClientBuilder;
use crate::error::Error;
use crate::flow::FlowStats;
use crate::message::{MessageContent, SendMessage};
use crate::orchestrator::Options;
use crate::sid::{AccountSid, CallSid, IntoSid};
use crate::transport::Shared;

/// A Twilio client for call messages. `Clone` is cheap and shares one connection pool.
///
/// ```
/// use twilio_call_messages::Client;
///
/// let client = Client::builder()
///     .account_sid("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
///     .auth_token("your_auth_token")
///     .build()?;
/// assert_eq!(client.base_url(), "https://api.twilio.com");
/// # Ok::<(), twilio_call_messages::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from `TWILIO_*` environment variables; see
    /// [`ClientBuilder::from_env`].
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env()?.build()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Client { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The account whose calls this client addresses.
    pub fn account_sid(&self) -> &AccountSid {
        &self.shared.account_sid
    }

    /// The base URL requests go to, e.g. `https://api.twilio.com`.
    pub fn base_url(&self) -> &str {
        self.shared.api.baseurl()
    }

    /// The client's flow control now: the concurrency limit it has learned (or was given),
    /// requests in flight and waiting, how many were throttled, and the retry budget left.
    /// Shared by every clone.
    pub fn flow_stats(&self) -> FlowStats {
        self.shared.flow.stats()
    }

    /// Sends `content`, serialized to JSON, into the active call `call` (a [`CallSid`] or its
    /// text). Await the result, or set options such as an idempotency key first.
    ///
    /// The call must be `in-progress` or `ringing`. Content is checked before anything is
    /// sent: it must serialize to at most 10000 characters of JSON.
    ///
    /// [`CallSid`]: crate::CallSid
    pub fn send_message<T: Serialize + ?Sized>(
        &self,
        call: impl IntoSid<CallSid>,
        content: &T,
    ) -> SendMessage {
        SendMessage::new(
            self.clone(),
            call.into_sid(),
            MessageContent::to_json(content),
            Options::default(),
        )
    }

    /// Sends JSON text the caller already has; it is checked to parse as JSON and to be at
    /// most 10000 characters, and sent as it is.
    pub fn send_message_json(
        &self,
        call: impl IntoSid<CallSid>,
        json: impl Into<String>,
    ) -> SendMessage {
        SendMessage::new(
            self.clone(),
            call.into_sid(),
            MessageContent::from_json(json),
            Options::default(),
        )
    }
}
