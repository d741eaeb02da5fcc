//! A callback receiver for the tests: it records every request and answers with the next
//! status of a script (then 200), as a user's service would be reached by Twilio; and how a
//! test that needs a missing tool is skipped.
#![allow(dead_code)] // each test file uses a part

use std::io::Write as _;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use twilio_call_messages::{CallMessageEvent, SignatureValidator, reqwest};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<u16>>,
    delay: Mutex<Option<Duration>>,
}

/// A running receiver on 127.0.0.1.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    shared: Arc<Shared>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(any(record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, shared }
    }

    /// The statuses of the next answers (then 200).
    pub fn answer(&self, statuses: &[u16]) {
        self.shared.script.lock().unwrap().extend(statuses);
    }

    /// Each answer waits this long first.
    pub fn delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = Some(delay);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The URL Twilio requests, for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    shared.received.lock().unwrap().push(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    let delay = *shared.delay.lock().unwrap();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let status = shared.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A plain HTTP client that ignores proxies.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Verifies a received callback as a service would, and parses it.
pub fn verified(
    validator: &SignatureValidator,
    receiver: &Receiver,
    r: &Received,
) -> CallMessageEvent {
    let url = receiver.url(&r.uri);
    validator
        .verify(&url, &r.headers, &r.body)
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let content_type = r.headers.get("content-type").and_then(|v| v.to_str().ok());
    if r.method == "GET" {
        let query = r.uri.split_once('?').map_or("", |(_, q)| q);
        CallMessageEvent::from_form(query.as_bytes()).unwrap()
    } else {
        CallMessageEvent::parse(content_type, &r.body).unwrap()
    }
}

/// A test that cannot run here (`why`: the tool it lacks, and how to install it) says so
/// loudly and returns; under `CI=true`, where every test must run, it fails instead.
pub fn skip(test: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why}, and CI=true: the browser tests must run in CI"
    );
    // Straight to the process's stderr: libtest captures `eprintln!` of a passing test, and a
    // skipped test would read as a plain "ok".
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: {why}; it did not run !!!\n"
    );
}
