//! The client: one connection pool, credentials and settings, cheap to clone. [`Client`] is a
//! handle on one [`ClientRef`], the state every clone and every request shares (as reqwest's
//! `Client` and `ClientRef`). The operations add their own `impl Client` blocks, each in its
//! operation's module (`send_message` in `message.rs`, `subscribe` in `subscription.rs`,
//! `broadcast` in `broadcast.rs`); this module knows none of them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ClientBuilder;
use crate::error::Error;
use crate::flow::FlowStats;
use crate::flow::limiter::ConcurrencyLimiter;
use crate::legs::cache::LegCache;
use crate::retry::RetryPolicy;
use crate::retry::budget::RetryBudget;
use crate::sid::AccountSid;
use crate::transport::Endpoint;

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
    inner: Arc<ClientRef>,
}

/// What every clone of one [`Client`] and every request it makes share, behind one `Arc`.
pub(crate) struct ClientRef {
    /// The host of `base_url`, for the span's `server.address`.
    pub(crate) server_address: String,
    pub(crate) account_sid: AccountSid,
    /// Per attempt, unless an operation says otherwise.
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    /// The concurrency limit every request waits under.
    pub(crate) limiter: ConcurrencyLimiter,
    /// What every retry of a fault pays from.
    pub(crate) retry_budget: RetryBudget,
    /// Where requests go and what they carry; each attempt makes its generated client here.
    pub(crate) endpoint: Endpoint,
    /// Which leg each call's Voice SDK client is on, for `.to_client()` (bounded).
    pub(crate) legs: LegCache,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Client")
            .field("base_url", &inner.endpoint.base_url())
            .field("account_sid", &inner.account_sid)
            .field("authorization", &"<redacted>")
            .field("user_agent", inner.endpoint.user_agent())
            .field("timeout", &inner.timeout)
            .field("retry", &inner.retry)
            .field("limiter", &inner.limiter)
            .field("retry_budget", &inner.retry_budget)
            .finish_non_exhaustive()
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

    pub(crate) fn new(inner: ClientRef) -> Self {
        Client {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &ClientRef {
        &self.inner
    }

    /// The account whose calls this client addresses.
    pub fn account_sid(&self) -> &AccountSid {
        &self.inner.account_sid
    }

    /// The base URL requests go to, e.g. `https://api.twilio.com`.
    pub fn base_url(&self) -> &str {
        self.inner.endpoint.base_url()
    }

    /// The client's flow control now: the concurrency limit it has learned (or was given),
    /// requests in flight and waiting, how many were throttled, and the retry budget left.
    /// Shared by every clone.
    pub fn flow_stats(&self) -> FlowStats {
        let mut stats = self.inner.limiter.stats();
        stats.retry_tokens = self.inner.retry_budget.available();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConcurrencyLimit, DEFAULT_INITIAL_CONCURRENCY};
    use crate::retry::budget::DEFAULT_CAPACITY;

    fn builder() -> ClientBuilder {
        Client::builder()
            .account_sid("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
            .auth_token("token")
    }

    #[test]
    fn stats_combine_limiter_and_budget() {
        let stats = builder().build().unwrap().flow_stats();
        assert_eq!(stats.limit, Some(DEFAULT_INITIAL_CONCURRENCY));
        assert_eq!(stats.retry_tokens, Some(DEFAULT_CAPACITY));
        assert_eq!((stats.in_flight, stats.waiting, stats.throttled), (0, 0, 0));

        let stats = builder()
            .concurrency_limit(ConcurrencyLimit::Off)
            .retry_budget(None)
            .build()
            .unwrap()
            .flow_stats();
        assert_eq!((stats.limit, stats.retry_tokens), (None, None));
    }
}
