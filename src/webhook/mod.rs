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
//!   answered without the handler.
//! - Front doors, each thin over the receiver and each with its guarantees: `tower` (a
//!   `Service` for hyper 1.x or any tower-based stack; feature `tower`), `axum` (extractors and
//!   a layer; feature `axum`), `actix` (extractors and a middleware; feature `actix-web`).
//!
//! Verify first, parse second: an unsigned body is not worth parsing.

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod dedup;
mod delivery;
mod error;
mod event;
mod forwarded;
mod params;
#[doc(hidden)]
pub(crate) mod private;
mod receiver;
#[cfg(feature = "redis")]
mod redis_store;
mod rejection;
mod settings;
mod signature;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
mod url_variants;

/// The protocol's framework-free tests (named `tests`, as the mutation tests' filter expects).
#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;

/// The Redis client [`RedisDeliveryStore`] is built on (redis-rs 1.x), to make its connection
/// yourself ([`RedisDeliveryStore::from_connection`]).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ::redis;
pub use dedup::{Claim, DeliveryStore, MemoryDeliveryStore, StoreError, StoreFuture};
pub use delivery::{DEFAULT_CLAIM_LEASE, DEFAULT_REDELIVERY_WAIT, Deduplication};
pub use error::{SignatureError, Unverifiable};
pub use event::{CallMessageEvent, EventError};
pub use receiver::{
    Answer, DEFAULT_BODY_LIMIT, FromEvent, MAX_CLOCK_SKEW, Receiver, VerifiedCallMessage,
    VerifiedContent, WebhookConfig,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_store::RedisDeliveryStore;
pub use rejection::Rejection;
pub use settings::{Algorithm, SIGNATURE_SETTINGS_HEADER};
pub use signature::{BODY_SHA256_PARAM, SIGNATURE_HEADER, SignatureValidator};
