//! The server side of receiving call messages: verify Twilio's webhook signature and parse the
//! callback it posts to a subscription's `Callback` URL.
//!
//! - [`SignatureValidator::verify`] checks a request (URL, headers, raw body) the way Twilio
//!   signs it: form fields, flat JSON fields, `bodySHA256`, auth tokens with HMAC-SHA1 or shared
//!   keys with HMAC-SHA256, URL variants. It is framework-independent and says why it refused
//!   ([`SignatureError`]).
//! - [`CallMessageEvent`] is the parsed callback; [`EventError`] names the field at fault.
//! - [`DeliveryStore`] keeps a claim per message (in progress, then done), to answer Twilio's
//!   redeliveries without handling them twice, across replicas with `RedisDeliveryStore`
//!   (feature `redis`).
//! - With the `axum` feature, `axum::VerifiedCallMessage` does it all in an extractor, and
//!   rejects a request before the handler runs.
//!
//! Verify first, parse second: an unsigned body is not worth parsing.

mod dedup;
mod error;
mod event;
#[cfg(feature = "axum")]
mod forwarded;
mod params;
#[doc(hidden)]
pub(crate) mod private;
#[cfg(feature = "redis")]
mod redis_store;
mod settings;
mod signature;
mod url_variants;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

/// The Redis client [`RedisDeliveryStore`] is built on (redis-rs 1.x), to make its connection
/// yourself ([`RedisDeliveryStore::from_connection`]).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ::redis;
pub use dedup::{Claim, DeliveryStore, MemoryDeliveryStore, StoreError, StoreFuture};
pub use error::{SignatureError, Unverifiable};
pub use event::{CallMessageEvent, EventError};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_store::RedisDeliveryStore;
pub use settings::{Algorithm, SIGNATURE_SETTINGS_HEADER};
pub use signature::{BODY_SHA256_PARAM, SIGNATURE_HEADER, SignatureValidator};
