//! Goodput against an account concurrency limit (the flow-control goal: within 1.2× of the ideal
//! time, 1.1× at N = 64, nothing lost, nothing sent twice): one `broadcast` of 2,000 calls with
//! default settings against the local Twilio (`twilio-call-messages-emulator` with a
//! concurrency limit: at most N requests at once, 40 ms each, 429 / 20429 beyond), for
//! N = 4, 8, 20, 64; and three clients
//! broadcasting 1,000 calls each at once against N = 20. Reports messages delivered and failed,
//! the share of requests throttled, and the wall time against the ideal `calls × 40 ms / N`.
//!
//! Run: `cargo bench --bench flow` (about a minute); one case: `cargo bench --bench flow -- 8`
//! or `-- shared`; `-- header` makes the emulator send `Twilio-Concurrent-Requests`; `-- fixed`
//! runs the one-broadcast cases with `ConcurrencyLimit::Fixed(N)` instead of the adaptive limit:
//! the best a limiter can do on this machine, what the emulator and HTTP cost beyond 40 ms
//! (three clients' equal work has no such floor: 20 does not split in three).
//! Figures go to BENCHMARKS.md ("Flow control").
//!
//! `FLOW_TRACE=1` prints each one-broadcast case's first 200 ms of samples (limit, requests
//! in flight, answers) on standard error.
//!
//! A second table says where the time over the ideal went, from the clients' limits and the
//! emulator's counters sampled every 2 ms: the climb from the initial limit, the run at the
//! limit, and the tail once fewer than N messages are left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use twilio_call_messages::{BroadcastResults, CallSid, Client, ConcurrencyLimit};
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

/// A client with default settings, or with `limit` instead of the adaptive limit.
fn client(server: &Emulator, limit: Option<usize>) -> Client {
    let builder = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("bench-token")
        .base_url(server.base_url());
    match limit {
        Some(n) => builder.concurrency_limit(ConcurrencyLimit::Fixed(n)),
        None => builder,
    }
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
    timeline: Vec<Sample>,
    limit: usize,
}

/// The clients' flow control and the emulator's counters at one moment.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    /// The clients' limits, summed.
    limit: usize,
    /// The clients' requests in flight, summed.
    in_flight: usize,
    succeeded: u64,
    throttled: u64,
    /// The clients' cuts of their limits, summed.
    decreases: u64,
}

/// Samples `clients` and `server` every 2 ms until the returned flag is set.
fn sample(
    server: &Emulator,
    clients: &[Client],
    started: Instant,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<Sample>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (server, clients, done) = (server.clone(), clients.to_vec(), stop.clone());
    let task = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let finished = done.load(Ordering::Relaxed);
            let counts = server.stats();
            let (mut limit, mut in_flight, mut decreases) = (0, 0, 0);
            for client in &clients {
                let flow = client.flow_stats();
                limit += flow.limit.unwrap_or(0);
                in_flight += flow.in_flight;
                decreases += flow.decreases;
            }
            samples.push(Sample {
                at: started.elapsed(),
                limit,
                in_flight,
                succeeded: counts.succeeded,
                throttled: counts.throttled,
                decreases,
            });
            if finished {
                return samples;
            }
            tick.tick().await;
        }
    });
    (stop, task)
}

/// The first 200 ms of samples, one line each, on standard error (`FLOW_TRACE=1`): how the
/// limit climbed and where it was cut.
fn print_samples(timeline: &[Sample]) {
    for x in timeline
        .iter()
        .take_while(|x| x.at < Duration::from_millis(200))
    {
        eprintln!(
            "{:>6.1} ms  limit {:>3}  in flight {:>3}  succeeded {:>5}  throttled {:>3}  cuts {}",
            x.at.as_secs_f64() * 1000.0,
            x.limit,
            x.in_flight,
            x.succeeded,
            x.throttled,
            x.decreases
        );
    }
}

async fn stop(sampler: (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<Sample>>)) -> Vec<Sample> {
    sampler.0.store(true, Ordering::Relaxed);
    sampler.1.await.unwrap()
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

impl Row {
    /// Where the time over the ideal went. The run is cut in three: the climb (until the
    /// limits first reach N or the first 429), the run at the limit, and the tail (from the
    /// moment N or fewer messages are left). Each phase loses its length minus the time the
    /// ideal needs for what it delivered (`delivered × 40 ms / N`); the three add up to the
    /// wall time minus the ideal.
    fn print_timeline(&self) {
        let t = &self.timeline;
        let (n, per) = (self.limit, LATENCY.as_secs_f64() / self.limit as f64);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let end = Sample {
            at: self.elapsed,
            succeeded: self.delivered as u64,
            ..*t.last().unwrap()
        };
        let tail = t
            .iter()
            .find(|s| self.calls as u64 - s.succeeded <= n as u64)
            .copied()
            .unwrap_or(end);
        let climb = t
            .iter()
            .take_while(|s| s.at < tail.at)
            .find(|s| s.limit >= n || s.throttled > 0)
            .copied()
            .unwrap_or(tail);
        let full = t.iter().find(|s| s.limit >= n).map(|s| ms(s.at));
        let first_429 = t.iter().find(|s| s.throttled > 0).map(|s| ms(s.at));
        let last_429 = t
            .windows(2)
            .rev()
            .find(|w| w[1].throttled > w[0].throttled)
            .map(|w| ms(w[1].at));
        let lost = |from: &Sample, to: &Sample| {
            1000.0
                * ((to.at.as_secs_f64() - from.at.as_secs_f64())
                    - (to.succeeded - from.succeeded) as f64 * per)
        };
        let start = Sample {
            at: Duration::ZERO,
            succeeded: 0,
            ..t[0]
        };
        // Time-weighted means over the run at the limit.
        let steady: Vec<_> = t
            .windows(2)
            .filter(|w| w[0].at >= climb.at && w[1].at <= tail.at)
            .collect();
        let span: f64 = steady.iter().map(|w| ms(w[1].at - w[0].at)).sum();
        let mean = |f: fn(&Sample) -> usize| {
            steady
                .iter()
                .map(|w| f(&w[0]) as f64 * ms(w[1].at - w[0].at))
                .sum::<f64>()
                / span.max(1e-9)
                / n as f64
        };
        let min_limit = steady.iter().map(|w| w[0].limit).min().unwrap_or(0);
        let opt = |v: Option<f64>| v.map_or("never".to_owned(), |v| format!("{v:.0} ms"));
        println!(
            "| {} | {} | {} | {} | {} | {:.2} N | {:.2} N | {:.2} N | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            self.case,
            opt(full),
            opt(first_429),
            opt(last_429),
            end.decreases,
            mean(|s| s.limit),
            min_limit as f64 / n as f64,
            mean(|s| s.in_flight),
            lost(&start, &climb),
            lost(&climb, &tail),
            lost(&tail, &end),
            ms(self.elapsed) - ms(self.ideal),
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

async fn one_broadcast(limit: usize, header: bool, fixed: bool) -> Row {
    let server = account(limit, header).await;
    let client = client(&server, fixed.then_some(limit));
    let n = 2_000;
    let calls = calls(&server, n, 0);
    let started = Instant::now();
    let sampler = sample(&server, std::slice::from_ref(&client), started);
    let results = client.broadcast(calls, &json!({"slide": 1})).await.unwrap();
    let elapsed = started.elapsed();
    let timeline = stop(sampler).await;
    if std::env::var_os("FLOW_TRACE").is_some() {
        print_samples(&timeline);
    }
    Row {
        case: format!("N = {limit}, one broadcast"),
        calls: n,
        delivered: delivered(&results),
        counts: server.stats(),
        elapsed,
        ideal: LATENCY * n as u32 / limit as u32,
        timeline,
        limit,
    }
}

async fn shared(header: bool) -> Row {
    let limit = 20;
    let server = account(limit, header).await;
    let per_client = 1_000;
    // The clients and their calls are made inside the measured time, as they always were.
    let started = Instant::now();
    let clients: Vec<_> = (0..3).map(|_| client(&server, None)).collect();
    let work: Vec<_> = (0..3)
        .map(|i| calls(&server, per_client, i * per_client))
        .collect();
    let sampler = sample(&server, &clients, started);
    let runs = clients.iter().zip(work).map(|(client, calls)| async move {
        client.broadcast(calls, &json!({"slide": 2})).await.unwrap()
    });
    let all = futures_util::future::join_all(runs).await;
    let elapsed = started.elapsed();
    let timeline = stop(sampler).await;
    Row {
        case: format!("N = {limit}, three clients × {per_client}"),
        calls: 3 * per_client,
        delivered: all.iter().map(delivered).sum(),
        counts: server.stats(),
        elapsed,
        ideal: LATENCY * (3 * per_client) as u32 / limit as u32,
        timeline,
        limit,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else selects cases.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let header = args.iter().any(|a| a == "header");
    let fixed = args.iter().any(|a| a == "fixed");
    let wanted = |case: &str| {
        let selectors: Vec<_> = args
            .iter()
            .filter(|a| *a != "header" && *a != "fixed")
            .collect();
        selectors.is_empty() || selectors.iter().any(|a| *a == case)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "emulator: 40 ms per request, 429 / 20429 beyond N at once; Twilio-Concurrent-Requests: {}; client limit: {}",
        if header { "sent" } else { "not sent" },
        if fixed {
            "fixed at N"
        } else {
            "adaptive (default)"
        }
    );
    println!(
        "| case | calls | delivered | failed | requests | throttled (share) | max in flight at the emulator | wall time | ideal | / ideal | delivered/s | goodput / capacity |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for limit in [4, 8, 20, 64] {
            if wanted(&limit.to_string()) {
                rows.push(one_broadcast(limit, header, fixed).await);
                rows.last().unwrap().print();
            }
        }
        if wanted("shared") && !fixed {
            rows.push(shared(header).await);
            rows.last().unwrap().print();
        }
        rows
    });
    println!();
    println!(
        "Where the time over the ideal went (clients' limits and the emulator sampled every 2 ms):"
    );
    println!(
        "| case | limit first ≥ N | first 429 | last 429 | cuts | mean limit at the limit | lowest limit at the limit | mean in flight at the limit | lost: climb | lost: at the limit | lost: tail | wall − ideal |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        row.print_timeline();
    }
}
