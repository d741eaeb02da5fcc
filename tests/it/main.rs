//! The SDK's integration tests: one test binary with a module per topic, so that the
//! dependency graph is linked once rather than once per file. Each module says what it covers;
//! `common` and `redis_support` are the local servers they share, `twilio_mock` the httpmock
//! helpers for the tests that pin Twilio's exact wire. The tests that read what `tracing`
//! prints are in `tests/logs/`, a process of their own (its docs say why).

mod common;
#[cfg(feature = "redis")]
mod redis_support;
#[allow(dead_code)] // each test module uses a part
mod twilio_mock;

mod broadcast;
mod chaos;
mod client_legs;
mod client_legs_wire;
mod faults;
mod flow_control;
mod generated_snapshot;
mod plain_http;
mod redis_store;
mod replicas;
mod request_path;
mod retries;
mod schema;
mod send_message;
mod serde_types;
mod subscriptions;
mod webhook_axum;
mod webhook_axum_delivery;
mod webhook_doors;
mod webhook_event;
mod webhook_python;
mod webhook_redelivery;
mod webhook_signature;
mod webhook_verify;
