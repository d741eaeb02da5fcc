//! A stand-in of Twilio with an account concurrency limit: it serves at most `limit` requests
//! at once, each for `latency`, and answers the rest at once with HTTP 429 and Twilio's error
//! 20429 ("your account exceeds allowed concurrency"), as twilio.com/docs/api/errors/20429
//! describes. It can also answer every request 503 (an outage), and it records what a test
//! needs to prove that nothing was lost or duplicated: requests received, 429s and 503s sent,
//! the highest concurrency served, and how many times each `IdempotencyKey` was served.
//!
//! Like Twilio, a key served before gets the same message again (the request is not
//! processed twice); the stand-in still counts it, so a test sees every duplicate.
//!
//! Keep-alive HTTP/1.1 on 127.0.0.1, raw tokio: the SDK's connection pool is exercised as it
//! would be against Twilio. Used by `tests/flow_control.rs` and `benches/flow.rs` (through
//! `#[path]`), so it depends on nothing but tokio, serde_json and serde_urlencoded.
#![allow(dead_code)] // each user takes a part

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The account every response names.
pub const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// How the stand-in behaves.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests served at once; beyond this, 429 / 20429.
    pub limit: usize,
    /// How long a served request takes.
    pub latency: Duration,
    /// Send `Twilio-Concurrent-Requests` (the requests in flight at the account: on a 201
    /// those being served, this one included; on a 429 those being served).
    pub concurrency_header: bool,
}

impl Limits {
    /// `limit` at once, 40 ms each, no header: the stand-in.
    pub fn new(limit: usize) -> Self {
        Limits {
            limit,
            latency: Duration::from_millis(40),
            concurrency_header: false,
        }
    }
}

/// What the stand-in saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests received, whatever the answer.
    pub requests: u64,
    /// 201s sent.
    pub served: u64,
    /// 429 / 20429 sent.
    pub throttled: u64,
    /// 503s sent during an outage.
    pub unavailable: u64,
    /// The most requests served at once.
    pub max_concurrency: usize,
    /// Keys served more than once (each extra time counts).
    pub duplicates: u64,
}

#[derive(Default)]
struct State {
    in_flight: AtomicUsize,
    max_concurrency: AtomicUsize,
    requests: AtomicU64,
    served: AtomicU64,
    throttled: AtomicU64,
    unavailable: AtomicU64,
    outage: AtomicBool,
    /// Key -> (message SID, times served).
    keys: Mutex<HashMap<String, (String, u64)>>,
}

/// A running stand-in; it stops with the runtime that started it.
#[derive(Clone)]
pub struct LimitedTwilio {
    addr: SocketAddr,
    limits: Limits,
    state: Arc<State>,
}

impl LimitedTwilio {
    /// Starts a stand-in on a free port of 127.0.0.1.
    pub async fn start(limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = LimitedTwilio {
            addr,
            limits,
            state: Arc::default(),
        };
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(accepting.clone().connection(stream));
            }
        });
        server
    }

    /// The base URL to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer every request 503 (on) or serve again (off).
    pub fn set_outage(&self, on: bool) {
        self.state.outage.store(on, Ordering::SeqCst);
    }

    /// What the stand-in saw so far.
    pub fn counts(&self) -> Counts {
        let s = &self.state;
        let duplicates = s.keys.lock().unwrap().values().map(|(_, n)| n - 1).sum();
        Counts {
            requests: s.requests.load(Ordering::SeqCst),
            served: s.served.load(Ordering::SeqCst),
            throttled: s.throttled.load(Ordering::SeqCst),
            unavailable: s.unavailable.load(Ordering::SeqCst),
            max_concurrency: s.max_concurrency.load(Ordering::SeqCst),
            duplicates,
        }
    }

    /// How many times each idempotency key was served (201).
    pub fn served_keys(&self) -> HashMap<String, u64> {
        self.state
            .keys
            .lock()
            .unwrap()
            .iter()
            .map(|(k, (_, n))| (k.clone(), *n))
            .collect()
    }

    async fn connection(self, mut stream: TcpStream) {
        let mut buf = Vec::with_capacity(8 * 1024);
        while let Some((head, body)) = next_request(&mut stream, &mut buf).await {
            let (status, headers, body) = self.answer(&head, &body).await;
            let mut response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n",
                body.len()
            )
            .into_bytes();
            response.extend_from_slice(body.as_bytes());
            if stream.write_all(&response).await.is_err() {
                return;
            }
        }
    }

    /// Status line, extra header lines, body.
    async fn answer(&self, head: &str, body: &[u8]) -> (&'static str, String, String) {
        let s = &self.state;
        s.requests.fetch_add(1, Ordering::SeqCst);
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let Some(call) = path
            .strip_suffix("/UserDefinedMessages.json")
            .and_then(|p| p.rsplit('/').next())
            .filter(|c| head.starts_with("POST ") && c.len() == 34)
        else {
            return (
                "404 Not Found",
                String::new(),
                error_body(20404, "The requested resource was not found", 404),
            );
        };
        if s.outage.load(Ordering::SeqCst) {
            s.unavailable.fetch_add(1, Ordering::SeqCst);
            return (
                "503 Service Unavailable",
                String::new(),
                error_body(20503, "Service Unavailable", 503),
            );
        }
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        if now > self.limits.limit {
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
            s.throttled.fetch_add(1, Ordering::SeqCst);
            return (
                "429 Too Many Requests",
                self.header(now - 1),
                error_body(20429, "Too Many Requests", 429),
            );
        }
        s.max_concurrency.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.limits.latency).await;
        let form: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let key = form.get("IdempotencyKey").cloned().unwrap_or_default();
        let sid = {
            let mut keys = s.keys.lock().unwrap();
            let fresh = format!("KX{:032x}", keys.len() + 1);
            let entry = keys.entry(key).or_insert((fresh, 0));
            entry.1 += 1;
            entry.0.clone()
        };
        s.served.fetch_add(1, Ordering::SeqCst);
        // The slot is free before the answer leaves, so a client that sends its next request
        // on receipt never meets its own previous one.
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        let body = serde_json::json!({
            "account_sid": ACCOUNT,
            "call_sid": call,
            "sid": sid,
            "date_created": "Wed, 18 Dec 2019 20:02:01 +0000",
        });
        ("201 Created", self.header(now), body.to_string())
    }

    fn header(&self, concurrent: usize) -> String {
        if self.limits.concurrency_header {
            format!("twilio-concurrent-requests: {concurrent}\r\n")
        } else {
            String::new()
        }
    }
}

fn error_body(code: u32, message: &str, status: u16) -> String {
    serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
    .to_string()
}

/// Reads the next request of a keep-alive connection: its head and its `content-length`
/// body. `None` when the client closed it.
async fn next_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 8 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some((head, body));
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
