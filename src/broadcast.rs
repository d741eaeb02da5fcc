//! Fan-out: one message into many calls, with a bounded number of requests in flight. Each call
//! is an ordinary send through the one request path.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use serde::Serialize;

use crate::client::Client;
use crate::error::Error;
use crate::legs::{self, Target};
use crate::message::{MessageContent, SendMessage};
use crate::model::Message;
use crate::orchestrator::Options;
use crate::retry::RetryPolicy;
use crate::sid::{CallSid, ConferenceSid, IntoSid, SidError};

/// The most requests one broadcast has in flight unless [`Broadcast::concurrency`] says
/// otherwise. It is an upper bound: every request also waits for a slot under the client's
/// concurrency limit, which adapts to the account's ([`ConcurrencyLimit`](crate::ConcurrencyLimit)).
pub const DEFAULT_BROADCAST_CONCURRENCY: usize = crate::flow::DEFAULT_MAX_CONCURRENCY;

/// One call's outcome in a broadcast.
#[derive(Debug)]
#[non_exhaustive]
pub struct CallResult {
    /// The call's position in the calls given to the broadcast.
    pub index: usize,
    /// The call, or `None` when the SID given for it was malformed (then `result` is an
    /// [`Error::InvalidInput`] and nothing was sent for it).
    pub call_sid: Option<CallSid>,
    /// The message Twilio accepted, or why not.
    pub result: Result<Message, Error>,
}

/// One result per call, in the order the calls were given.
pub type BroadcastResults = Vec<CallResult>;

/// A message about to be sent into many calls: await it for every result in input order, or
/// [`stream`](Self::stream) the results as they complete; set options first.
///
/// The content is serialized and checked once. Each call gets its own request, idempotency
/// key and retries, over the client's one connection pool; one call's failure never affects
/// the others. The outer `Result` fails only when the content itself is invalid, before
/// anything is sent.
#[must_use = "nothing is sent until the broadcast is awaited"]
pub struct Broadcast {
    client: Client,
    calls: Vec<Result<CallSid, SidError>>,
    content: Result<MessageContent, Error>,
    concurrency: usize,
    options: Options,
    key_prefix: Option<String>,
    /// Every call's leg: as given, or (a conference's participants) the client's own.
    target: Target,
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("calls", &self.calls.len())
            .field("content", &self.content)
            .field("concurrency", &self.concurrency)
            .field("options", &self.options)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl Broadcast {
    /// At most this many requests of this broadcast in flight (at least 1), under the
    /// client's concurrency limit. Default: [`DEFAULT_BROADCAST_CONCURRENCY`].
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Use this retry policy for every call of the broadcast instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry_policy = Some(Box::new(policy));
        self
    }

    /// Time allowed for each attempt of each call instead of the client's; the retry policy's
    /// total deadline still cuts it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Give each call the idempotency key `{prefix}:{call_sid}` instead of a random one, so
    /// that running the same broadcast again (after a crash, say) delivers nothing twice:
    /// Twilio treats requests with the same key as one. Use a prefix that names this one
    /// broadcast, e.g. `announcement-2026-11-24-1`.
    pub fn idempotency_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Sends into every call and yields each call's result as it completes (not in input
    /// order: use [`CallResult::index`]), for progress on large fan-outs. Dropping the
    /// stream cancels the calls still in flight.
    pub fn stream(self) -> Result<impl Stream<Item = CallResult> + Send + 'static, Error> {
        let content = self.content?;
        let (client, options, prefix) = (self.client, self.options, self.key_prefix);
        let to_client = matches!(self.target, Target::ThisLeg);
        let sends = self
            .calls
            .into_iter()
            .enumerate()
            .map(move |(index, call)| {
                let mut options = options.clone();
                if let (Some(prefix), Ok(call)) = (&prefix, &call) {
                    options.idempotency_key = Some(format!("{prefix}:{call}"));
                }
                let call_sid = call.as_ref().ok().copied();
                let mut send = SendMessage::new(client.clone(), call, Ok(content.clone()), options);
                if to_client {
                    send = send.on_this_legs_client();
                }
                async move {
                    CallResult {
                        index,
                        call_sid,
                        result: send.send().await,
                    }
                }
            });
        Ok(futures_util::stream::iter(sends).buffer_unordered(self.concurrency))
    }

    /// Sends the message into every call; the same as awaiting the builder.
    pub async fn send(self) -> Result<BroadcastResults, Error> {
        Ok(in_order(self.stream()?).await)
    }
}

/// Every result of a broadcast's stream, in the order of its calls.
async fn in_order(results: impl Stream<Item = CallResult>) -> BroadcastResults {
    let mut results: BroadcastResults = results.collect().await;
    results.sort_unstable_by_key(|r| r.index);
    results
}

impl IntoFuture for Broadcast {
    type Output = Result<BroadcastResults, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl Client {
    /// Sends `content`, serialized to JSON once, into every call of `calls` (typed SIDs or
    /// text; a malformed one is that call's own error), at most
    /// [`DEFAULT_BROADCAST_CONCURRENCY`] at a time (see [`Broadcast::concurrency`]).
    ///
    /// ```no_run
    /// # async fn f(client: twilio_call_messages::Client, calls: Vec<twilio_call_messages::CallSid>)
    /// # -> Result<(), twilio_call_messages::Error> {
    /// let results = client
    ///     .broadcast(calls, &serde_json::json!({"type": "slide", "n": 7}))
    ///     .concurrency(64)
    ///     .idempotency_key_prefix("slide-7")
    ///     .await?;
    /// for call in results {
    ///     if let Err(e) = call.result {
    ///         eprintln!("call #{} ({:?}): {e}", call.index, call.call_sid);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn broadcast<T: Serialize + ?Sized, C: IntoSid<CallSid>>(
        &self,
        calls: impl IntoIterator<Item = C>,
        content: &T,
    ) -> Broadcast {
        self.broadcast_content(calls, MessageContent::to_json(content))
    }

    /// Like [`broadcast`](Self::broadcast), with JSON text the caller already has (checked
    /// once, sent as it is).
    pub fn broadcast_json<C: IntoSid<CallSid>>(
        &self,
        calls: impl IntoIterator<Item = C>,
        json: impl Into<String>,
    ) -> Broadcast {
        self.broadcast_content(calls, MessageContent::from_json(json))
    }

    fn broadcast_content<C: IntoSid<CallSid>>(
        &self,
        calls: impl IntoIterator<Item = C>,
        content: Result<MessageContent, Error>,
    ) -> Broadcast {
        Broadcast {
            client: self.clone(),
            calls: calls.into_iter().map(IntoSid::into_sid).collect(),
            content,
            concurrency: DEFAULT_BROADCAST_CONCURRENCY,
            options: Options::default(),
            key_prefix: None,
            target: Target::Given,
        }
    }

    /// Sends `content`, serialized to JSON once, to every participant of `conference` whose
    /// leg is a Voice SDK client's: the participants as Twilio lists them (every page), each
    /// participant's own leg (its `call_sid`), with the [`Broadcast`] machinery (bounded,
    /// per-call keys with [`idempotency_key_prefix`](ConferenceBroadcast::idempotency_key_prefix),
    /// flow control). One result per participant, in Twilio's order; a participant whose leg
    /// has no client (a phone) is its own [`Error::Leg`], never an error of the whole
    /// broadcast. The outer `Result` fails when the content is invalid or the participants
    /// cannot be listed, before any message is sent.
    ///
    /// ```no_run
    /// # async fn f(client: twilio_call_messages::Client) -> Result<(), twilio_call_messages::Error> {
    /// let results = client
    ///     .broadcast_to_conference("CFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &serde_json::json!({"poll": "open"}))
    ///     .idempotency_key_prefix("poll-42")
    ///     .await?;
    /// for participant in results {
    ///     if let Err(e) = participant.result {
    ///         eprintln!("{:?}: {e}", participant.call_sid);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn broadcast_to_conference<T: Serialize + ?Sized>(
        &self,
        conference: impl IntoSid<ConferenceSid>,
        content: &T,
    ) -> ConferenceBroadcast {
        self.conference_content(conference, MessageContent::to_json(content))
    }

    /// Like [`broadcast_to_conference`](Self::broadcast_to_conference), with JSON text the
    /// caller already has.
    pub fn broadcast_to_conference_json(
        &self,
        conference: impl IntoSid<ConferenceSid>,
        json: impl Into<String>,
    ) -> ConferenceBroadcast {
        self.conference_content(conference, MessageContent::from_json(json))
    }

    fn conference_content(
        &self,
        conference: impl IntoSid<ConferenceSid>,
        content: Result<MessageContent, Error>,
    ) -> ConferenceBroadcast {
        let mut broadcast = self.broadcast_content(Vec::<CallSid>::new(), content);
        broadcast.target = Target::ThisLeg;
        ConferenceBroadcast {
            conference: conference.into_sid(),
            broadcast,
        }
    }
}

/// A message about to be sent to every Voice SDK client in a conference
/// ([`Client::broadcast_to_conference`]): await it for every participant's result in Twilio's
/// order, or [`stream`](Self::stream) them; set options first.
#[must_use = "nothing is sent until the broadcast is awaited"]
#[derive(Debug)]
pub struct ConferenceBroadcast {
    conference: Result<ConferenceSid, SidError>,
    broadcast: Broadcast,
}

impl ConferenceBroadcast {
    /// At most this many requests in flight (at least 1); see [`Broadcast::concurrency`].
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.broadcast = self.broadcast.concurrency(limit);
        self
    }

    /// Use this retry policy for every request (the listing too) instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.broadcast = self.broadcast.retry_policy(policy);
        self
    }

    /// Time allowed for each attempt instead of the client's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.broadcast = self.broadcast.timeout(timeout);
        self
    }

    /// Give each participant's message the key `{prefix}:{call_sid}`, so that running the same
    /// broadcast again delivers nothing twice (see [`Broadcast::idempotency_key_prefix`]).
    pub fn idempotency_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.broadcast = self.broadcast.idempotency_key_prefix(prefix);
        self
    }

    /// Lists the participants (every page), then sends to each and yields each result as it
    /// completes (`index` is the participant's position in Twilio's list).
    pub async fn stream(
        mut self,
    ) -> Result<impl Stream<Item = CallResult> + Send + 'static, Error> {
        let conference = self.conference?;
        // Checked before anything is listed; put back for the sends.
        let content = self.broadcast.content?;
        let listing = Options {
            idempotency_key: None,
            ..self.broadcast.options.clone()
        };
        let calls = legs::participants(&self.broadcast.client, &listing, conference).await?;
        self.broadcast.calls = calls.into_iter().map(Ok).collect();
        self.broadcast.content = Ok(content);
        self.broadcast.stream()
    }

    /// Sends to every participant; the same as awaiting the builder.
    pub async fn send(self) -> Result<BroadcastResults, Error> {
        Ok(in_order(self.stream().await?).await)
    }
}

impl IntoFuture for ConferenceBroadcast {
    type Output = Result<BroadcastResults, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
