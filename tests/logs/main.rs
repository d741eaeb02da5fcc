//! The tests that read what `tracing` prints (no secret or content in any output; the span's
//! fields), in a process of their own. `tracing` caches, per process, whether each callsite is
//! wanted by any subscriber; a test thread that installs its own subscriber while the other
//! tests' threads hit those callsites for the first time can find some of them cached as
//! unwanted, and its capture then misses events. Beside only each other, these tests see every
//! event.

#[path = "../it/common/mod.rs"]
mod common;
#[allow(dead_code)] // each test module uses a part
#[path = "../it/twilio_mock.rs"]
mod twilio_mock;

mod no_leaks;
mod refusals;
mod span;
