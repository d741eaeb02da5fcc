//! The server side of receiving call messages: verify Twilio's `X-Twilio-Signature` and parse
//! the callback it posts to a subscription's `Callback` URL.
//!
//! - [`SignatureValidator`] checks a signature for a form body, a JSON body (the `bodySHA256`
//!   scheme) or either ([`SignatureValidator::validate_request`]), framework-independent.
//! - [`CallMessageEvent`] is the parsed callback; [`EventError`] names the field at fault.
//! - With the `axum` feature, `axum::VerifiedCallMessage`
//!   does both in an extractor, and rejects a request before the handler runs.
//!
//! Verify first, parse second: an unsigned body is not worth parsing.

mod event;
mod signature;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

pub use event::{CallMessageEvent, EventError};
pub use signature::{BODY_SHA256_PARAM, SIGNATURE_HEADER, SignatureValidator};
