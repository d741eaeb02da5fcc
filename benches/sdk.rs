//! Benchmarks of the SDK against a hand-written reqwest baseline, on a local keep-alive HTTP
//! server started by the bench. Run all: `cargo bench --bench sdk`; one: `cargo bench --bench
//! sdk -- latency|throughput|broadcast|encoding|signature`. Figures go to BENCHMARKS.md.
//!
//! A hand-rolled harness (no criterion): the comparisons need both sides interleaved in one
//! run on this noisy shared machine, and allocation counts need a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use twilio_call_messages::__private::{self, GeneratedAlone};
use twilio_call_messages::{CallSid, Client, MessageContent, RetryPolicy};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "bench-token";
const CREATED: &str = r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","call_sid":"CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":"Wed, 18 Dec 2019 20:02:01 +0000"}"#;

/// Counts allocations, for allocations per call.
struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Serialize)]
struct Payload<'a> {
    kind: &'a str,
    n: u64,
}

/// A keep-alive HTTP/1.1 server that answers every request with Twilio's 201 body.
async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let response = format!(
        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{CREATED}",
        CREATED.len()
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    // One request: headers, then `content-length` bytes of body.
                    let complete = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break end + 4 + len;
                            }
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    buf.drain(..complete);
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn sdk_client(addr: SocketAddr) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(format!("http://{addr}"))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

/// The baseline: what a careful engineer writes with reqwest alone.
#[derive(Clone)]
struct Raw {
    http: reqwest::Client,
    base: String,
    authorization: String,
}

#[derive(Deserialize)]
struct RawMessage {
    account_sid: String,
    call_sid: String,
    sid: String,
    date_created: String,
}

impl Raw {
    fn new(addr: SocketAddr) -> Raw {
        use base64::Engine as _;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
        Raw {
            http: reqwest::Client::builder()
                // The SDK's defaults: no redirects, a 30 s request timeout (a timer per request).
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            base: format!("http://{addr}"),
            authorization: format!("Basic {credentials}"),
        }
    }

    async fn send(&self, payload: &Payload<'_>) -> (String, String, String, time::OffsetDateTime) {
        let content = serde_json::to_string(payload).unwrap();
        let key = uuid::Uuid::new_v4().to_string();
        let body =
            serde_urlencoded::to_string([("Content", content.as_str()), ("IdempotencyKey", &key)])
                .unwrap();
        // The URL is built per message, as the call differs from one message to the next.
        let url = format!(
            "{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}/UserDefinedMessages.json",
            self.base
        );
        let response = self
            .http
            .post(url)
            .header("authorization", &self.authorization)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("user-agent", "raw-baseline")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let bytes = response.bytes().await.unwrap();
        let m: RawMessage = serde_json::from_slice(&bytes).unwrap();
        let date = time::OffsetDateTime::parse(
            &m.date_created,
            &time::format_description::well_known::Rfc2822,
        )
        .unwrap();
        (m.sid, m.account_sid, m.call_sid, date)
    }
}

/// The second baseline: the ten lines a user would write instead of the SDK, with none of its
/// guarantees (no idempotency key, no date parsing, a plain status check).
#[derive(Clone)]
struct Minimal {
    http: reqwest::Client,
    url: String,
}

#[derive(Deserialize)]
struct MinimalMessage {
    sid: String,
}

impl Minimal {
    fn new(addr: SocketAddr) -> Minimal {
        Minimal {
            http: reqwest::Client::new(),
            url: format!(
                "http://{addr}/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}/UserDefinedMessages.json"
            ),
        }
    }

    async fn send(&self, payload: &Payload<'_>) -> String {
        let content = serde_json::to_string(payload).unwrap();
        let response = self
            .http
            .post(&self.url)
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(&[("Content", content)])
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        response.json::<MinimalMessage>().await.unwrap().sid
    }
}

async fn sdk_send(client: &Client, call: CallSid, payload: &Payload<'_>) {
    black_box(client.send_message(call, payload).await.unwrap());
}

async fn generated_send(generated: &GeneratedAlone, call: &CallSid, payload: &Payload<'_>) {
    generated.send(call, payload).await.unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p) as usize]
}

/// Benchmark 1: one request in flight; medians over interleaved rounds.
async fn latency(addr: SocketAddr) {
    let (client, raw, minimal) = (sdk_client(addr), Raw::new(addr), Minimal::new(addr));
    let call: CallSid = CALL.parse().unwrap();
    let payload = Payload {
        kind: "prompt",
        n: 1,
    };
    for _ in 0..300 {
        sdk_send(&client, call, &payload).await;
        black_box(raw.send(&payload).await);
        black_box(minimal.send(&payload).await);
    }
    // Allocations per request, all threads (client, runtime and the server alike for both).
    let count = |before: u64| (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1000.0;
    let a = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        sdk_send(&client, call, &payload).await;
    }
    let sdk_allocs = count(a);
    let a = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        black_box(raw.send(&payload).await);
    }
    let raw_allocs = count(a);
    let a = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        black_box(minimal.send(&payload).await);
    }
    let minimal_allocs = count(a);

    let (mut sdk, mut base, mut min) = (Vec::new(), Vec::new(), Vec::new());
    for _round in 0..8 {
        for _ in 0..500 {
            let t = Instant::now();
            sdk_send(&client, call, &payload).await;
            sdk.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            black_box(raw.send(&payload).await);
            base.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            black_box(minimal.send(&payload).await);
            min.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    let (s50, b50, m50) = (
        median(sdk.clone()),
        median(base.clone()),
        median(min.clone()),
    );
    println!(
        "## 1. latency, one request in flight ({} requests each, interleaved)",
        sdk.len()
    );
    println!("| | median µs | p99 µs | allocations per request |\n| --- | --- | --- | --- |");
    println!(
        "| SDK | {s50:.1} | {:.1} | {sdk_allocs:.0} |",
        percentile(sdk, 0.99)
    );
    println!(
        "| raw reqwest, equivalent | {b50:.1} | {:.1} | {raw_allocs:.0} |",
        percentile(base, 0.99)
    );
    println!(
        "| raw reqwest, minimal | {m50:.1} | {:.1} | {minimal_allocs:.0} |",
        percentile(min, 0.99)
    );
    println!(
        "ratio SDK / equivalent (median): **{:.3}** (goal ≤ 1.03); SDK / minimal: **{:.3}**\n",
        s50 / b50,
        s50 / m50
    );
}

/// `n` messages through `send`, `level` at a time; messages per second.
async fn rate<F, Fut>(n: usize, level: usize, send: F) -> f64
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = Instant::now();
    futures_util::stream::iter(0..n as u64)
        .map(&send)
        .buffer_unordered(level)
        .for_each(|_| async {})
        .await;
    n as f64 / t.elapsed().as_secs_f64()
}

/// Benchmark 2: messages per second at several levels of concurrency, four sides interleaved:
/// the SDK, the generated call alone (`generated_send`, on `__private::GeneratedAlone`:
/// progenitor's client with the SDK's hook, no retry state, limiter or span), and the two raw
/// reqwest baselines.
async fn throughput(addr: SocketAddr) {
    let (client, raw, minimal) = (sdk_client(addr), Raw::new(addr), Minimal::new(addr));
    let generated = GeneratedAlone::new(&client);
    let call: CallSid = CALL.parse().unwrap();
    const N: usize = 4000;
    const ROUNDS: usize = 7;
    println!("## 2. throughput ({N} messages per round, median of {ROUNDS} interleaved rounds)");
    println!(
        "| in flight | SDK msg/s | generated alone msg/s | equivalent msg/s | minimal msg/s | SDK / generated | SDK / equivalent | SDK / minimal |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let payload = |n| Payload { kind: "tick", n };
    for level in [1usize, 16, 64, 256] {
        let mut rates: [Vec<f64>; 4] = Default::default();
        for round in 0..ROUNDS {
            // Rotate who goes first: the pool and the allocator warm up for whoever follows.
            for i in 0..4 {
                let side = (round + i) % 4;
                let r = match side {
                    0 => {
                        rate(N, level, |n| {
                            let client = &client;
                            async move { sdk_send(client, call, &payload(n)).await }
                        })
                        .await
                    }
                    1 => {
                        rate(N, level, |n| {
                            let generated = &generated;
                            async move { generated_send(generated, &call, &payload(n)).await }
                        })
                        .await
                    }
                    2 => {
                        rate(N, level, |n| {
                            let raw = &raw;
                            async move { drop(black_box(raw.send(&payload(n)).await)) }
                        })
                        .await
                    }
                    _ => {
                        rate(N, level, |n| {
                            let minimal = &minimal;
                            async move { drop(black_box(minimal.send(&payload(n)).await)) }
                        })
                        .await
                    }
                };
                rates[side].push(r);
            }
        }
        let [s, g, b, m] = rates.map(median);
        println!(
            "| {level} | {s:.0} | {g:.0} | {b:.0} | {m:.0} | **{:.3}** | {:.3} | **{:.3}** |",
            s / g,
            s / b,
            s / m
        );
    }
    println!("goals: SDK / minimal ≥ 0.97 at 1 and 64 in flight\n");
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Benchmark 3: one message into 10,000 calls, 64 in flight; run it first in its own process
/// (`-- broadcast`) so the peak RSS is its own.
async fn broadcast(addr: SocketAddr) {
    let client = sdk_client(addr);
    let calls: Vec<CallSid> = (0..10_000u32)
        .map(|i| format!("CA{i:032x}").parse().unwrap())
        .collect();
    let before = peak_rss_kib();
    // Warm the pool (64 connections) so neither side pays for connecting.
    client
        .broadcast(calls[..640].to_vec(), &Payload { kind: "warm", n: 0 })
        .concurrency(64)
        .await
        .unwrap();

    let (mut fan_out, mut plain, mut wall) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..10 {
        // Alternate which side goes first, so neither gains from the order.
        for side in [round % 2, 1 - round % 2] {
            let t = Instant::now();
            if side == 0 {
                let results = client
                    .broadcast(
                        calls.clone(),
                        &Payload {
                            kind: "slide",
                            n: 7,
                        },
                    )
                    .concurrency(64)
                    .await
                    .unwrap();
                let elapsed = t.elapsed();
                assert!(results.iter().all(|r| r.result.is_ok()));
                wall.push(elapsed.as_secs_f64());
                fan_out.push(results.len() as f64 / elapsed.as_secs_f64());
            } else {
                // The same SDK, plain sends to the same 10,000 calls at 64 in flight.
                futures_util::stream::iter(0..10_000u64)
                    .map(|n| {
                        let (client, call) = (&client, calls[n as usize]);
                        async move { sdk_send(client, call, &Payload { kind: "slide", n }).await }
                    })
                    .buffer_unordered(64)
                    .for_each(|_| async {})
                    .await;
                plain.push(10_000.0 / t.elapsed().as_secs_f64());
            }
        }
    }
    let peak = peak_rss_kib();
    let (rate, plain) = (median(fan_out), median(plain));
    println!(
        "## 3. broadcast: 10,000 calls, 64 in flight (median of 10 interleaved rounds, alternating order, warm pool)"
    );
    println!(
        "| wall time | msg/s | plain sends at 64, msg/s | ratio | peak RSS (process) | RSS before |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| {:.2} s | {rate:.0} | {plain:.0} | **{:.3}** | **{:.1} MiB** | {:.1} MiB |",
        median(wall),
        rate / plain,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    println!("goals: peak RSS < 48 MiB; msg/s within 5% of sends at 64\n");
}

/// Runs `f` `n` times: nanoseconds and allocations per call.
fn per_call(n: u64, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let allocs = ALLOCATIONS.load(Ordering::Relaxed);
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    (
        ns,
        (ALLOCATIONS.load(Ordering::Relaxed) - allocs) as f64 / n as f64,
    )
}

/// Benchmark 4: the SDK's own CPU work per message.
fn encoding() {
    #[derive(Serialize)]
    struct Big {
        text: String,
    }
    let big = Big {
        text: "é".repeat(4_990),
    }; // 10,000 characters of JSON with the wrapper
    let content = MessageContent::to_json(&big).unwrap();
    assert!(content.as_str().chars().count() <= 10_000);
    let json_text = content.as_str().to_owned();
    let account = ACCOUNT.parse().unwrap();
    let call = CALL.parse().unwrap();

    println!("## 4. encoding and decoding, per call (single thread)");
    println!("| step | ns | allocations |\n| --- | --- | --- |");
    type Step<'a> = (&'a str, Box<dyn FnMut() + 'a>);
    let rows: [Step; 5] = [
        (
            "serialize 10,000-char content (`MessageContent::to_json`)",
            Box::new(|| {
                black_box(MessageContent::to_json(black_box(&big)).unwrap());
            }),
        ),
        (
            "check caller's 10,000-char JSON (`MessageContent::from_json`)",
            Box::new(|| {
                black_box(MessageContent::from_json(black_box(json_text.clone())).unwrap());
            }),
        ),
        (
            "form-encode the request body",
            Box::new(|| {
                black_box(__private::encode_message_form(
                    black_box(&content),
                    "7c27c6ab-02c3-4598-b3db-bddff6e2b006",
                ));
            }),
        ),
        (
            "decode a 201 response into `Message`",
            Box::new(|| {
                black_box(
                    __private::decode_message_response(
                        black_box(CREATED.as_bytes()),
                        account,
                        call,
                    )
                    .unwrap(),
                );
            }),
        ),
        (
            "decode a Twilio error body",
            Box::new(|| {
                black_box(__private::decode_error_response(400, black_box(br#"{"code":21220,"message":"Call is not in-progress","more_info":"https://www.twilio.com/docs/errors/21220","status":400}"#)));
            }),
        ),
    ];
    for (name, mut f) in rows {
        let (ns, allocs) = per_call(20_000, &mut *f);
        println!("| {name} | {ns:.0} | {allocs:.1} |");
    }
    println!();
}

/// Benchmark 5: signature verification of a typical callback on one core, through
/// `SignatureValidator::verify` (URL, headers, raw body), for each scheme Twilio uses; the
/// baseline is the least any validator must do, one HMAC-SHA1 over the URL and the already
/// sorted fields. Rounds interleave the rows; medians of the rounds.
fn signature() {
    use hmac::{Hmac, Mac};
    use twilio_call_messages::SignatureValidator;
    use twilio_call_messages::reqwest::header::{HeaderMap, HeaderValue};

    const TOKEN: &str = "12345678901234567890123456789012";
    let validator = SignatureValidator::new(TOKEN)
        .with_shared_key("webhooks_sharedkey_1", "abcdefghijklmnopqrstuvwxyz012345");
    let url = "https://service.example.com/twilio/call-messages";
    let fields = [
        ("AccountSid", ACCOUNT),
        ("CallSid", CALL),
        ("Content", r#"{"type":"answer","choice":2,"note":"ok"}"#),
        ("ContentType", "application/json"),
        ("SequenceNumber", "3"),
        ("Sid", "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("Timestamp", "Wed, 18 Dec 2019 20:02:01 +0000"),
    ];
    let form_body = serde_urlencoded::to_string(fields).unwrap().into_bytes();
    let json_body = serde_json::to_vec(
        &fields
            .iter()
            .map(|(n, v)| (n.to_string(), serde_json::Value::from(*v)))
            .collect::<serde_json::Map<_, _>>(),
    )
    .unwrap();
    let (hashed_url, _) = validator.sign_json(url, &json_body);

    let signed = |url: &str, pairs: &[(&'static str, &str)], body: &[u8]| {
        let mut headers: HeaderMap = pairs
            .iter()
            .map(|(n, v)| (*n, HeaderValue::from_str(v).unwrap()))
            .map(|(n, v)| {
                (
                    twilio_call_messages::reqwest::header::HeaderName::from_static(n),
                    v,
                )
            })
            .collect();
        let signature = validator.sign_request(url, &headers, body).unwrap();
        headers.insert(
            "x-twilio-signature",
            HeaderValue::from_str(&signature).unwrap(),
        );
        assert_eq!(validator.verify(url, &headers, body), Ok(()));
        headers
    };
    let form = signed(
        url,
        &[("content-type", "application/x-www-form-urlencoded")],
        &form_body,
    );
    let json = signed(url, &[("content-type", "application/json")], &json_body);
    let hashed = signed(
        &hashed_url,
        &[("content-type", "application/json")],
        &json_body,
    );
    let shared = signed(
        url,
        &[
            ("content-type", "application/json"),
            (
                "x-twilio-webhooks-signature-settings",
                "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
            ),
        ],
        &json_body,
    );
    let sorted: String = fields.iter().map(|(n, v)| format!("{n}{v}")).collect();
    let expected = {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
        mac.update(url.as_bytes());
        mac.update(sorted.as_bytes());
        mac.finalize().into_bytes()
    };

    type Row<'a> = (&'a str, Box<dyn FnMut() + 'a>);
    let mut rows: Vec<Row<'_>> = vec![
        (
            "baseline: one HMAC-SHA1 over URL + pre-sorted fields",
            Box::new(|| {
                let mut mac =
                    Hmac::<sha1::Sha1>::new_from_slice(black_box(TOKEN).as_bytes()).unwrap();
                mac.update(black_box(url).as_bytes());
                mac.update(black_box(&sorted).as_bytes());
                assert!(mac.verify_slice(black_box(&expected)).is_ok());
            }),
        ),
        (
            "form body (auth token, HMAC-SHA1)",
            Box::new(|| {
                assert!(
                    validator
                        .verify(black_box(url), black_box(&form), black_box(&form_body))
                        .is_ok()
                );
            }),
        ),
        (
            "JSON body signed as parameters (auth token, HMAC-SHA1)",
            Box::new(|| {
                assert!(
                    validator
                        .verify(black_box(url), black_box(&json), black_box(&json_body))
                        .is_ok()
                );
            }),
        ),
        (
            "JSON body with `bodySHA256` (auth token, HMAC-SHA1)",
            Box::new(|| {
                assert!(
                    validator
                        .verify(
                            black_box(&hashed_url),
                            black_box(&hashed),
                            black_box(&json_body)
                        )
                        .is_ok()
                );
            }),
        ),
        (
            "JSON body signed as parameters (shared key, HMAC-SHA256)",
            Box::new(|| {
                assert!(
                    validator
                        .verify(black_box(url), black_box(&shared), black_box(&json_body))
                        .is_ok()
                );
            }),
        ),
    ];
    const ROUNDS: usize = 7;
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); rows.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in rows.iter_mut().enumerate() {
            results[i].push(per_call(50_000, &mut **f));
        }
    }
    println!(
        "## 5. signature verification, one core (typical callback: 7 fields, {} byte form body, {} byte JSON body; median of {ROUNDS} interleaved rounds)",
        form_body.len(),
        json_body.len()
    );
    println!("| scheme | ns | verifications/s | allocations |\n| --- | --- | --- | --- |");
    for ((name, _), runs) in rows.iter().zip(results) {
        let ns = median(runs.iter().map(|r| r.0).collect());
        let allocs = median(runs.iter().map(|r| r.1).collect());
        println!("| {name} | {ns:.0} | **{:.0}** | {allocs:.1} |", 1e9 / ns);
    }
    println!("goal: ≥ 500,000 verifications/s for form and JSON bodies\n");
}

/// For profilers (`valgrind --tool=callgrind`): `PROFILE_N` messages through one side
/// (`sdk`, `generated`, `raw`, `minimal`, or `broadcast` for one broadcast to `PROFILE_N`
/// calls), `PROFILE_IN_FLIGHT` at a time (default 1). On a current-thread runtime unless
/// `PROFILE_WORKERS` says otherwise: with one thread nothing is stolen between workers, so two
/// runs of one binary count the same instructions to within a few hundred per request, and a
/// difference of 1% between sides is visible.
fn profile(side: &str) {
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let (n, in_flight, workers) = (
        var("PROFILE_N", 2000),
        var("PROFILE_IN_FLIGHT", 1),
        var("PROFILE_WORKERS", 0),
    );
    let runtime = match workers {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        workers => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build(),
    }
    .unwrap();
    runtime.block_on(async {
        let addr = server().await;
        let (client, raw, minimal) = (sdk_client(addr), Raw::new(addr), Minimal::new(addr));
        let payload = Payload {
            kind: "prompt",
            n: 1,
        };
        if side == "broadcast" {
            let calls: Vec<CallSid> = (0..n as u32)
                .map(|i| format!("CA{i:032x}").parse().unwrap())
                .collect();
            let results = client
                .broadcast(calls, &payload)
                .concurrency(in_flight.max(1))
                .await
                .unwrap();
            black_box(results);
            return;
        }
        let generated = GeneratedAlone::new(&client);
        let (client, generated, raw, minimal, payload) =
            (&client, &generated, &raw, &minimal, &payload);
        // Every side to the one call the server's answer names (the SDK checks the echo).
        let call: CallSid = CALL.parse().unwrap();
        futures_util::stream::iter(0..n)
            .map(|_| async move {
                match side {
                    "sdk" => sdk_send(client, call, payload).await,
                    "generated" => generated_send(generated, &call, payload).await,
                    "minimal" => drop(black_box(minimal.send(payload).await)),
                    "raw" => drop(black_box(raw.send(payload).await)),
                    other => panic!("profile-{other}: use sdk|generated|raw|minimal|broadcast"),
                }
            })
            .buffer_unordered(in_flight.max(1))
            .for_each(|_| async {})
            .await;
    });
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!(
        "machine: {} cores, {}; {}\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "debug build (use cargo bench)"
        } else {
            "release build"
        }
    );
    if let Some(side) = filter.as_deref().and_then(|f| f.strip_prefix("profile-")) {
        profile(side);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = server().await;
        if wanted("broadcast") {
            broadcast(addr).await;
        }
        if wanted("latency") {
            latency(addr).await;
        }
        if wanted("throughput") {
            throughput(addr).await;
        }
    });
    if wanted("encoding") {
        encoding();
    }
    if wanted("signature") {
        signature();
    }
}
