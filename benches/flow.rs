//! Goodput against an account concurrency limit (the flow-control goal: within 1.2× of the ideal
//! time, nothing lost, nothing sent twice): one `broadcast` of 2,000 calls with
//! default settings against the local Twilio (`twilio-call-messages-emulator` with a
//! concurrency limit: at most N requests at once, 40 ms each, 429 / 20429 beyond), for
//! N = 4, 8, 20, 64; and three clients
//! broadcasting 1,000 calls each at once against N = 20. Reports messages delivered and failed,
//! the share of requests throttled, and the wall time against the ideal `calls × 40 ms / N`.
//!
//! Run: `cargo bench --bench flow` (about a minute); one case: `cargo bench --bench flow -- 8`
//! or `-- shared`; `-- header` makes the emulator send `Twilio-Concurrent-Requests`.
//! Figures go to BENCHMARKS.md ("Flow control").

use std::time::{Duration, Instant};

use serde_json::json;
use twilio_call_messages::{BroadcastResults, CallSid, Client};
use twilio_call_messages_emulator::{CallStatus, Emulator, Stats};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const LATENCY: Duration = Duration::from_millis(40);

/// `n` in-progress calls of the emulator.
fn calls(server: &Emulator, n: usize, offset: usize) -> Vec<CallSid> {
    (offset..offset + n)
        .map(|i| {
            let sid: CallSid = format!("CA{i:032x}").parse().unwrap();
            server.add_call(sid, CallStatus::InProgress, None).unwrap();
            sid
        })
        .collect()
}

fn client(server: &Emulator) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("bench-token")
        .base_url(server.base_url())
        .build()
        .unwrap()
}

struct Row {
    case: String,
    calls: usize,
    delivered: usize,
    counts: Stats,
    elapsed: Duration,
    ideal: Duration,
}

impl Row {
    fn print(&self) {
        let failed = self.calls - self.delivered;
        println!(
            "| {} | {} | {} | **{}** ({:.1}%) | {} | {} ({:.1}%) | {} | {:.2} s | {:.2} s | {:.2}× | {:.0} | {:.2} |",
            self.case,
            self.calls,
            self.delivered,
            failed,
            100.0 * failed as f64 / self.calls as f64,
            self.counts.requests,
            self.counts.throttled,
            100.0 * self.counts.throttled as f64 / self.counts.requests.max(1) as f64,
            self.counts.peak_in_flight,
            self.elapsed.as_secs_f64(),
            self.ideal.as_secs_f64(),
            self.elapsed.as_secs_f64() / self.ideal.as_secs_f64(),
            self.delivered as f64 / self.elapsed.as_secs_f64(),
            // Goodput against what the stand-in can serve: N / latency messages per second.
            (self.delivered as f64 / self.elapsed.as_secs_f64())
                / (self.calls as f64 / self.ideal.as_secs_f64()),
        );
        assert_eq!(self.counts.replays, 0, "a key was served twice");
        assert_eq!(
            self.counts.messages as usize, self.delivered,
            "every delivered message recorded once"
        );
    }
}

fn delivered(results: &BroadcastResults) -> usize {
    results.iter().filter(|r| r.result.is_ok()).count()
}

async fn account(limit: usize, header: bool) -> Emulator {
    Emulator::builder()
        .account_sid(ACCOUNT.parse().unwrap())
        .auth_token("bench-token")
        .concurrency_limit(limit)
        .latency(LATENCY)
        .concurrency_header(header)
        .start()
        .await
        .unwrap()
}

async fn one_broadcast(limit: usize, header: bool) -> Row {
    let server = account(limit, header).await;
    let client = client(&server);
    let n = 2_000;
    let calls = calls(&server, n, 0);
    let started = Instant::now();
    let results = client.broadcast(calls, &json!({"slide": 1})).await.unwrap();
    let elapsed = started.elapsed();
    Row {
        case: format!("N = {limit}, one broadcast"),
        calls: n,
        delivered: delivered(&results),
        counts: server.stats(),
        elapsed,
        ideal: LATENCY * n as u32 / limit as u32,
    }
}

async fn shared(header: bool) -> Row {
    let limit = 20;
    let server = account(limit, header).await;
    let per_client = 1_000;
    let started = Instant::now();
    let runs = (0..3).map(|i| {
        let client = client(&server);
        let calls = calls(&server, per_client, i * per_client);
        async move { client.broadcast(calls, &json!({"slide": 2})).await.unwrap() }
    });
    let all = futures_util::future::join_all(runs).await;
    let elapsed = started.elapsed();
    Row {
        case: format!("N = {limit}, three clients × {per_client}"),
        calls: 3 * per_client,
        delivered: all.iter().map(delivered).sum(),
        counts: server.stats(),
        elapsed,
        ideal: LATENCY * (3 * per_client) as u32 / limit as u32,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else selects cases.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let header = args.iter().any(|a| a == "header");
    let wanted = |case: &str| {
        let selectors: Vec<_> = args.iter().filter(|a| *a != "header").collect();
        selectors.is_empty() || selectors.iter().any(|a| *a == case)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "emulator: 40 ms per request, 429 / 20429 beyond N at once; Twilio-Concurrent-Requests: {}",
        if header { "sent" } else { "not sent" }
    );
    println!(
        "| case | calls | delivered | failed | requests | throttled (share) | max in flight at the emulator | wall time | ideal | / ideal | delivered/s | goodput / capacity |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    runtime.block_on(async {
        for limit in [4, 8, 20, 64] {
            if wanted(&limit.to_string()) {
                one_broadcast(limit, header).await.print();
            }
        }
        if wanted("shared") {
            shared(header).await.print();
        }
    });
}
