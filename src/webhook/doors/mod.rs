//! The front doors: each converts its framework's request for the
//! [`Receiver`](super::Receiver)'s protocol, and its answer back, and nothing else; what they
//! share is in `common.rs`.

#[cfg(feature = "actix-web")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(any(feature = "tower", feature = "actix-web"))]
mod common;
#[cfg(feature = "tower")]
pub mod tower;
