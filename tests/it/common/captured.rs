//! A writer that keeps everything a test's `tracing` subscriber prints, to search it afterwards.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything written by a test subscriber; clones share one buffer.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// `tracing::subscriber::set_default`, with creations serialized and followed by a rebuild of
/// `tracing`'s per-process interest cache, so that two test threads installing subscribers at
/// once do not compute that cache without one of them. It does not protect against threads
/// that hit a callsite for the first time meanwhile: a test that must see every event runs in
/// a process of its own (`tests/logs/`).
pub fn set_default(
    subscriber: impl tracing::Subscriber + Send + Sync,
) -> tracing::subscriber::DefaultGuard {
    let _one_at_a_time = REGISTRATION.lock().unwrap_or_else(|e| e.into_inner());
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    guard
}

static REGISTRATION: Mutex<()> = Mutex::new(());
