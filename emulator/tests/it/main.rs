//! The emulator's tests: one test binary with a module per topic (the REST API, the callbacks,
//! the binary, the page in a browser, the call's legs and the client's rules, the guard of the
//! control API, the HTTP server's request framing, the Voice SDK's signaling, the bodies against
//! upstream's schemas, the SDK's requests and the emulator's answers through Prism); `common` is
//! the callback receiver they share.

mod common;

mod binary;
mod browser;
mod call_resource;
mod callbacks;
mod framing;
mod guard;
mod legs;
mod prism;
mod rest;
mod signaling;
mod upstream_schema;
mod voice_sdk;
