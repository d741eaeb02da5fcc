//! The server side of receiving call messages: verify Twilio's webhook signature, parse the
//! callback it posts to a subscription's `Callback` URL, and handle each message once.
//!
//! - [`SignatureValidator::verify`] checks a request (URL, headers, raw body) the way Twilio
//!   signs it: form fields, flat JSON fields, `bodySHA256`, auth tokens with HMAC-SHA1 or shared
//!   keys with HMAC-SHA256, URL variants. It is framework-independent and says why it refused
//!   ([`SignatureError`]).
//! - [`CallMessageEvent`] is the parsed callback; [`EventError`] names the field at fault.
//! - [`Receiver`] runs the whole receiving protocol without a web framework: the public URL
//!   behind proxies, the body limit, the signature, the replay window, the event, and with a
//!   [`Deduplication`] the claim that answers Twilio's redeliveries without handling them twice,
//!   across replicas with `RedisDeliveryStore` (feature `redis`). [`Rejection`] is why it
//!   answered without the handler; refusals are logged at `debug` only (the service's own
//!   faults at `error`) and counted: [`WebhookConfig::refusals`].
//! - Front doors, each thin over the receiver and each with its guarantees: `tower` (a
//!   `Service` for hyper 1.x or any tower-based stack; feature `tower`), `axum` (extractors and
//!   a layer; feature `axum`), `actix` (extractors and a middleware; feature `actix-web`).
//!
//! A request is read once: its body bounded at the door, its headers and URL read once, its
//! body's kind decided by one content-type rule that the signature and the event share, its
//! fields parsed once for both. Verify first: no event is made of an unsigned body.
//!
//! The layout follows a callback's way: a front door (`doors/`) converts the framework's
//! request, [`Receiver`]'s protocol (`receiver.rs`) runs, asking `verify/` whether the request
//! is Twilio's and what it says, and `redelivery/` whether it was handled already.

mod doors;
mod receiver;
mod redelivery;
mod rejection;
mod verify;

/// The protocol's framework-free tests (named `tests`, as the mutation tests' filter expects).
#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub use doors::actix;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use doors::axum;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use doors::tower;

/// The Redis client [`RedisDeliveryStore`] is built on (redis-rs 1.x), to make its connection
/// yourself ([`RedisDeliveryStore::from_connection`]).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ::redis;
pub use receiver::{
    Answer, DEFAULT_BODY_LIMIT, FromEvent, MAX_CLOCK_SKEW, Receiver, VerifiedCallMessage,
    VerifiedContent, WebhookConfig,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redelivery::RedisDeliveryStore;
pub use redelivery::{
    Claim, DEFAULT_CLAIM_LEASE, DEFAULT_REDELIVERY_WAIT, Deduplication, DeliveryStore,
    MemoryDeliveryStore, StoreError, StoreFuture,
};
pub use rejection::{Refusals, Rejection};
pub use verify::{
    Algorithm, BODY_SHA256_PARAM, CallMessageEvent, EventError, SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER, SignatureError, SignatureValidator, Unverifiable,
};

/// The pieces the crate's own fuzz targets and benchmarks reach through `__private`.
#[cfg(feature = "__private-do-not-use")]
pub(crate) use verify::internal;
