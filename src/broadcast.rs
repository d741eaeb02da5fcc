//! Fan-out: one message into many calls, with a bounded number of requests in flight.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::client::Client;
use crate::error::Error;
use crate::message::{MessageContent, SendMessage};
use crate::model::Message;
use crate::retry::RetryPolicy;
use crate::sid::CallSid;

/// Requests in flight at once unless [`Broadcast::concurrency`] says otherwise: enough to keep
/// a connection pool busy without tripping Twilio's per-account concurrency limits.
pub const DEFAULT_BROADCAST_CONCURRENCY: usize = 32;

/// One result per call, in the order the calls were given.
pub type BroadcastResults = Vec<(CallSid, Result<Message, Error>)>;

/// A message about to be sent into many calls: await it, or set options first.
///
/// The content is serialized and checked once. Each call gets its own request, idempotency
/// key and retries, over the client's one connection pool; one call's failure never affects
/// the others. The outer `Result` fails only when the content itself is invalid, before
/// anything is sent.
#[must_use = "nothing is sent until the broadcast is awaited"]
pub struct Broadcast<'a> {
    client: &'a Client,
    calls: Vec<CallSid>,
    content: Result<MessageContent, Error>,
    concurrency: usize,
    retry_policy: Option<RetryPolicy>,
}

impl fmt::Debug for Broadcast<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("calls", &self.calls.len())
            .field("content", &self.content)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl<'a> Broadcast<'a> {
    /// At most this many requests in flight (at least 1). Default:
    /// [`DEFAULT_BROADCAST_CONCURRENCY`].
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Use this retry policy for every call of the broadcast instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Sends the message into every call; the same as awaiting the builder.
    pub async fn send(self) -> Result<BroadcastResults, Error> {
        let content = self.content?;
        let (client, policy) = (self.client, self.retry_policy);
        let mut results: Vec<Option<Result<Message, Error>>> = std::iter::repeat_with(|| None)
            .take(self.calls.len())
            .collect();
        let sends = self.calls.iter().copied().enumerate().map(|(index, call)| {
            let mut send = SendMessage::new(client, call, Ok(content.clone()));
            if let Some(policy) = &policy {
                send = send.retry_policy(policy.clone());
            }
            async move { (index, send.send().await) }
        });
        let mut in_flight = futures_util::stream::iter(sends).buffer_unordered(self.concurrency);
        while let Some((index, result)) = in_flight.next().await {
            results[index] = Some(result);
        }
        drop(in_flight); // ends the borrow of `self.calls`
        Ok(self
            .calls
            .into_iter()
            .zip(results)
            .map(|(call, result)| (call, result.expect("every send yields one result")))
            .collect())
    }
}

impl<'a> IntoFuture for Broadcast<'a> {
    type Output = Result<BroadcastResults, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl Client {
    /// Sends `content` into every call of `calls`, at most
    /// [`DEFAULT_BROADCAST_CONCURRENCY`] at a time (see [`Broadcast::concurrency`]).
    ///
    /// ```no_run
    /// # async fn f(client: twilio_call_messages::Client, calls: Vec<twilio_call_messages::CallSid>)
    /// # -> Result<(), twilio_call_messages::Error> {
    /// let results = client
    ///     .broadcast(calls, &serde_json::json!({"type": "slide", "n": 7}))
    ///     .concurrency(64)
    ///     .await?;
    /// for (call, result) in results {
    ///     if let Err(e) = result {
    ///         eprintln!("{call}: {e}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn broadcast<T: Serialize + ?Sized>(
        &self,
        calls: impl IntoIterator<Item = CallSid>,
        content: &T,
    ) -> Broadcast<'_> {
        Broadcast {
            client: self,
            calls: calls.into_iter().collect(),
            content: MessageContent::to_json(content),
            concurrency: DEFAULT_BROADCAST_CONCURRENCY,
            retry_policy: None,
        }
    }
}
