//! Memory over a million messages: the resident set (`VmRSS`, and its peak `VmHWM`, from
//! `/proc/<pid>/status`) printed at intervals, in three modes. A measurement, not a timed test:
//! nothing is asserted about time, and the figures go to BENCHMARKS.md ("Memory over a million
//! messages").
//!
//! - `client`: one `Client` sends 1,000,000 messages into 5,000 calls of the local Twilio,
//!   half as broadcasts and half as single sends, against seeded faults (503, reset, 500 after
//!   processing, throttle), the account's concurrency limit and completed calls (400 / 21220).
//!   The emulator runs in a child process (this binary again, `serve-emulator`), so the
//!   figures are the client's alone: the emulator keeps every message it records.
//! - `receiver`: a `webhook::Receiver` with a `MemoryDeliveryStore` (its default capacity)
//!   handles 1,000,000 signed callbacks in process, each a distinct message `Sid` and
//!   `I-Twilio-Idempotency-Token`, so the store fills and then evicts.
//! - `emulator`: the emulator records 1,000,000 messages sent through its REST API; its own
//!   process's resident set, and the growth per message (least squares over the samples).
//!
//! Run: `cargo bench --bench memory` (all three, a few minutes), or
//! `cargo bench --bench memory -- client|receiver|emulator`; `-- store` measures the delivery
//! store alone. Linux only (`/proc`).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use http::{HeaderMap, HeaderValue, StatusCode};

// The integration tests' signing helper: one way to sign a callback as Twilio does.
#[path = "../tests/it/common/callback.rs"]
#[allow(dead_code, reason = "the benchmarks build their own bodies")]
mod callback;
use twilio_call_messages::webhook::{
    CallMessageEvent, Deduplication, MemoryDeliveryStore, Receiver, WebhookConfig,
};
use twilio_call_messages::{CallSid, Client, Error, SignatureValidator};
use twilio_call_messages_emulator::{CallStatus, Emulator, FaultKind, Faults};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN: &str = "memory-bench-token";
const CALLS: usize = 5_000;
/// Every 100th call has ended: each message to it is refused (400 / 21220), not retried.
const COMPLETED_EVERY: usize = 100;
const SAMPLE_EVERY: usize = 50_000;
/// Single sends in flight (a broadcast uses its own default).
const IN_FLIGHT: usize = 64;

/// 1,000,000; `MEMORY_MESSAGES=3000000` runs longer, to tell a leak from a warm-up.
fn messages() -> usize {
    std::env::var("MEMORY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Resident set and its peak, in KiB, of this process or of `pid`.
fn memory(pid: Option<u32>) -> (u64, u64) {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn call_sid(i: usize) -> CallSid {
    format!("CA{i:032x}").parse().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The child side: an emulator on 127.0.0.1 with the calls (and, for `client`, the faults and
/// the limit), its base URL on stdout; on stdin's end (the parent is done or gone), its
/// counters on stdout, then exit.
fn serve_emulator(profile: &str) {
    let runtime = runtime();
    let emulator = runtime.block_on(async {
        let mut builder = Emulator::builder()
            .account_sid(ACCOUNT.parse().unwrap())
            .auth_token(TOKEN);
        if profile == "client" {
            // About 1.5% of requests meet a fault, each retried by the client with the same
            // key (the retry of a 500 after processing is answered from the first result).
            // 2 ms per request and at most 16 in flight: the account answers 429 to what the
            // client's limiter lets through beyond that.
            builder = builder
                .concurrency_limit(16)
                .latency(Duration::from_millis(2))
                .faults(
                    Faults::none()
                        .with(FaultKind::Unavailable, 0.006)
                        .with(FaultKind::Reset, 0.003)
                        .with(FaultKind::ErrorAfter, 0.003)
                        .with(FaultKind::Throttle, 0.003)
                        .seed(7),
                );
        }
        builder.start().await.unwrap()
    });
    for i in 0..CALLS {
        let status = if profile == "client" && i % COMPLETED_EVERY == COMPLETED_EVERY - 1 {
            CallStatus::Completed
        } else {
            CallStatus::InProgress
        };
        emulator.add_call(call_sid(i), status, None).unwrap();
    }
    let mut out = std::io::stdout();
    writeln!(out, "{}", emulator.base_url()).unwrap();
    out.flush().unwrap();
    // The runtime's workers serve while this thread waits.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    writeln!(out, "{}", serde_json::to_string(&emulator.stats()).unwrap()).unwrap();
}

/// An emulator in a child process: this binary again, so that its memory is not ours.
struct ChildEmulator {
    child: Child,
    stdout: BufReader<ChildStdout>,
    base_url: String,
}

impl ChildEmulator {
    fn start(profile: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["serve-emulator", profile])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut base_url = String::new();
        stdout.read_line(&mut base_url).unwrap();
        ChildEmulator {
            child,
            stdout,
            base_url: base_url.trim().to_owned(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it (its stdin closes) and returns its counters.
    fn stop(mut self) -> serde_json::Value {
        drop(self.child.stdin.take());
        let mut stats = String::new();
        self.stdout.read_line(&mut stats).unwrap();
        self.child.wait().unwrap();
        serde_json::from_str(&stats).unwrap()
    }
}

fn client(base_url: &str) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(base_url)
        .build()
        .unwrap()
}

/// Outcomes of the sends so far.
#[derive(Default)]
struct Tally {
    delivered: usize,
    /// 400 / 21220: the call had ended.
    ended: usize,
    other: usize,
}

impl Tally {
    fn add(&mut self, result: &Result<twilio_call_messages::Message, Error>) {
        match result {
            Ok(_) => self.delivered += 1,
            Err(e) if e.code() == Some(21220) => self.ended += 1,
            Err(_) => self.other += 1,
        }
    }

    fn total(&self) -> usize {
        self.delivered + self.ended + self.other
    }
}

/// Sends [`messages`], one round per 5,000 calls: even rounds one broadcast, odd rounds
/// single sends with [`IN_FLIGHT`] at once. `sample` is called every [`SAMPLE_EVERY`].
async fn send_all(client: &Client, mut sample: impl FnMut(&Tally)) -> Tally {
    let calls: Vec<CallSid> = (0..CALLS).map(call_sid).collect();
    let mut tally = Tally::default();
    for round in 0..messages() / CALLS {
        let content = serde_json::json!({"round": round, "prompt": "offer the upgrade"});
        if round % 2 == 0 {
            for r in client.broadcast(&calls, &content).await.unwrap() {
                tally.add(&r.result);
            }
        } else {
            let mut sends = futures_util::stream::iter(&calls)
                .map(|call| client.send_message(*call, &content).send())
                .buffer_unordered(IN_FLIGHT);
            while let Some(result) = sends.next().await {
                tally.add(&result);
            }
        }
        if tally.total() % SAMPLE_EVERY == 0 {
            sample(&tally);
        }
    }
    tally
}

fn kib_growth(samples: &[(usize, u64)], from: usize) -> i64 {
    let at = |n: usize| {
        samples
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, k)| *k as i64)
    };
    match (at(from), samples.last()) {
        (Some(first), Some((_, last))) => *last as i64 - first,
        _ => 0,
    }
}

fn client_mode() {
    println!(
        "## client: {} messages into {CALLS} calls, the emulator in a child process",
        messages()
    );
    let emulator = ChildEmulator::start("client");
    let runtime = runtime();
    let started = Instant::now();
    let (before, _) = memory(None);
    println!("before the first send: client RSS {before} KiB\n");
    println!(
        "| messages | client RSS KiB | client VmHWM KiB | delivered | ended call (21220) | other failures | emulator RSS KiB (child) | elapsed s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut samples = Vec::new();
    let tally = runtime.block_on(async {
        let client = client(&emulator.base_url);
        let tally = send_all(&client, |t| {
            let (rss, hwm) = memory(None);
            samples.push((t.total(), rss));
            println!(
                "| {} | {rss} | {hwm} | {} | {} | {} | {} | {:.0} |",
                t.total(),
                t.delivered,
                t.ended,
                t.other,
                memory(Some(emulator.pid())).0,
                started.elapsed().as_secs_f64()
            );
        })
        .await;
        println!("\nclient flow stats at the end: {:?}", client.flow_stats());
        tally
    });
    let stats = emulator.stop();
    println!("emulator counters: {stats}");
    println!(
        "delivered {}, ended call {}, other failures {}; client RSS growth from 100k to the end: {} KiB; {:.0} s\n",
        tally.delivered,
        tally.ended,
        tally.other,
        kib_growth(&samples, 100_000),
        started.elapsed().as_secs_f64()
    );
}

fn emulator_mode() {
    println!(
        "## emulator: recording {} messages (its own process, REST from this one)",
        messages()
    );
    let emulator = ChildEmulator::start("emulator");
    let runtime = runtime();
    let started = Instant::now();
    let (before, _) = memory(Some(emulator.pid()));
    println!("emulator RSS with {CALLS} calls and no message: {before} KiB\n");
    println!("| messages | emulator RSS KiB | emulator VmHWM KiB | client RSS KiB | elapsed s |");
    println!("| --- | --- | --- | --- | --- |");
    let mut samples = vec![(0usize, before)];
    let tally = runtime.block_on(async {
        let client = client(&emulator.base_url);
        send_all(&client, |t| {
            let (rss, hwm) = memory(Some(emulator.pid()));
            samples.push((t.total(), rss));
            println!(
                "| {} | {rss} | {hwm} | {} | {:.0} |",
                t.total(),
                memory(None).0,
                started.elapsed().as_secs_f64()
            );
        })
        .await
    });
    let stats = emulator.stop();
    // Least squares of RSS (bytes) on messages.
    let n = samples.len() as f64;
    let (sx, sy) = samples.iter().fold((0.0, 0.0), |(sx, sy), (m, k)| {
        (sx + *m as f64, sy + *k as f64 * 1024.0)
    });
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = samples.iter().fold((0.0, 0.0), |(sxy, sxx), (m, k)| {
        let dx = *m as f64 - mx;
        (sxy + dx * (*k as f64 * 1024.0 - my), sxx + dx * dx)
    });
    println!("\nemulator counters: {stats}");
    println!(
        "delivered {}, failed {}; emulator growth {:.0} bytes per message (least squares over {} samples); {:.0} s\n",
        tally.delivered,
        tally.ended + tally.other,
        sxy / sxx,
        samples.len(),
        started.elapsed().as_secs_f64()
    );
}

const PUBLIC: &str = "https://service.example.com";
const PATH: &str = "/twilio/call-messages";

/// Callback `i`, signed as Twilio signs a JSON body: a distinct `Sid` and idempotency token.
fn callback(validator: &SignatureValidator, i: usize) -> http::Request<Vec<u8>> {
    let body = serde_json::json!({
        "AccountSid": ACCOUNT,
        "CallSid": call_sid(i % CALLS).to_string(),
        "Content": r#"{"type":"answer","choice":2,"note":"ok"}"#,
        "ContentType": "application/json",
        "SequenceNumber": (i / CALLS + 1).to_string(),
        "Sid": format!("KX{i:032x}"),
        "Timestamp": "Wed, 18 Dec 2019 20:02:01 +0000",
    })
    .to_string()
    .into_bytes();
    let mut headers = HeaderMap::new();
    headers.insert(
        "i-twilio-idempotency-token",
        HeaderValue::from_str(&format!("{i:032x}")).unwrap(),
    );
    let headers = callback::signed(validator, &format!("{PUBLIC}{PATH}"), headers, &body);
    let mut request = http::Request::post(PATH).body(body).unwrap();
    *request.headers_mut() = headers;
    request
}

fn receiver_mode() {
    let store = Arc::new(MemoryDeliveryStore::default());
    println!(
        "## receiver: {} signed callbacks through Receiver::receive, {store:?} (its default capacity)",
        messages()
    );
    // The window outlasts the run: nothing expires, so only the capacity bounds the store.
    let receiver =
        Receiver::new(WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC))
            .deduplicate(Deduplication::with_store(
                Duration::from_secs(3600),
                store.clone(),
            ));
    let validator = SignatureValidator::new(TOKEN);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (before, _) = memory(None);
    println!("before the first callback: RSS {before} KiB\n");
    println!("| callbacks | RSS KiB | VmHWM KiB | keys in the store | elapsed s |");
    println!("| --- | --- | --- | --- | --- |");
    let mut samples = Vec::new();
    runtime.block_on(async {
        for i in 0..messages() {
            let answer = receiver
                .receive(
                    callback(&validator, i),
                    |event: CallMessageEvent| async move {
                        std::hint::black_box(event);
                        StatusCode::OK
                    },
                )
                .await;
            assert_eq!(answer.status(), StatusCode::OK, "{}", answer.body());
            let done = i + 1;
            if done % SAMPLE_EVERY == 0 || done == 10_000 {
                let (rss, hwm) = memory(None);
                samples.push((done, rss));
                println!(
                    "| {done} | {rss} | {hwm} | {} | {:.0} |",
                    store.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    });
    let at = |n: usize| samples.iter().find(|(m, _)| *m == n).map_or(0, |(_, k)| *k);
    let full = at(100_000);
    println!(
        "\nwhile filling (0 -> 100k keys): {:.0} bytes per key; once full (100k -> the end): {} KiB; {:.0} s\n",
        (full as f64 - before as f64) * 1024.0 / 100_000.0,
        kib_growth(&samples, 100_000),
        started.elapsed().as_secs_f64()
    );
    assert!(store.len() <= 100_000, "the store holds {}", store.len());
}

/// The store alone, without the receiver around it: 300,000 distinct keys claimed and marked
/// done directly (not run by default; it tells the store's own cost from what handling a
/// callback leaves in the allocator).
fn store_mode() {
    use twilio_call_messages::webhook::DeliveryStore as _;
    let store = MemoryDeliveryStore::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (before, _) = memory(None);
    println!("## the store alone: {store:?}; RSS before {before} KiB\n");
    println!(
        "| keys claimed and done | RSS KiB | VmHWM KiB | keys in the store | bytes per key held |"
    );
    println!("| --- | --- | --- | --- | --- |");
    runtime.block_on(async {
        for i in 0..300_000usize {
            let key = format!("KX{i:032x}:0123456789abcdef");
            let holder = format!("{i:032x}");
            let lease = Duration::from_secs(5);
            store.claim(&key, &holder, lease).await.unwrap();
            store
                .complete(&key, &holder, Duration::from_secs(3600))
                .await
                .unwrap();
            if (i + 1) % SAMPLE_EVERY == 0 {
                let (rss, hwm) = memory(None);
                println!(
                    "| {} | {rss} | {hwm} | {} | {:.0} |",
                    i + 1,
                    store.len(),
                    (rss - before) as f64 * 1024.0 / store.len() as f64
                );
            }
        }
    });
}

fn main() {
    // `cargo bench` passes `--bench`; anything else selects modes.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("serve-emulator") {
        return serve_emulator(args.get(1).map_or("", String::as_str));
    }
    let Some(mode) = args.first() else {
        // Each mode in a process of its own: what one mode allocated and freed stays in the
        // allocator and would show in the next one's resident set.
        for mode in ["client", "receiver", "emulator"] {
            let status = Command::new(std::env::current_exe().unwrap())
                .arg(mode)
                .status()
                .unwrap();
            assert!(status.success(), "{mode}: {status}");
        }
        return;
    };
    println!(
        "machine: {} cores, {}; {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "debug build (use cargo bench)"
        } else {
            "release build"
        }
    );
    match mode.as_str() {
        "client" => client_mode(),
        "receiver" => receiver_mode(),
        "emulator" => emulator_mode(),
        "store" => store_mode(),
        other => panic!("unknown mode {other:?}: client, receiver or emulator"),
    }
}
