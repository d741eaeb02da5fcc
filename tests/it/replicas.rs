//! Three receiver processes on one Redis (append-only file on), and a sender that behaves as
//! Twilio: signed callbacks, each message delivered 1-3 times at once to random replicas, a
//! failed attempt retried soon after (`rc=1`, Twilio's default; then a run with `rc=5`). Some
//! handler calls fail once, one replica is killed with SIGKILL while its handlers run, Redis is
//! restarted mid-run (down ~1 s in the `rc=1` run, ~6 s, longer than the claim lease, in the
//! `rc=5` run). Every message must be handled successfully exactly once, none lost. Two kinds of
//! duplicate are excused, each counted and reported with its cause: a handler that finished on
//! the killed replica just before the kill (its "done" was never recorded), and, only when Redis
//! was down for longer than the lease, a message for which a receiver logged that its claim ran
//! out and was taken over or that its "done" could not be recorded (the documented limit of a
//! lease in a store that is unreachable for longer than the lease).
//!
//! The receivers are this test binary run again with `TCM_REPLICA` set (see `receiver`); each
//! appends one fsync'd line per successful handling to its own log, which the sender reads at
//! the end. Figures are printed to stderr, not asserted on.
//!
//! The receivers are built on the axum front door; the same runs with receivers on actix-web
//! and on the tower door (hyper-util) hold the other doors to the same standard.
#![cfg(all(feature = "redis", feature = "axum", feature = "actix-web"))]

use crate::common::callback::signed;
use crate::redis_support;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use http::{HeaderMap, HeaderValue};
use redis_support::{RedisServer, available};
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::reqwest;
use twilio_call_messages::webhook::axum::{DeliveryLayer, VerifiedCallMessage, WebhookConfig};
use twilio_call_messages::webhook::{CallMessageEvent, Deduplication, RedisDeliveryStore};

const ROLE: &str = "TCM_REPLICA";
const TOKEN: &str = "replica-test-auth-token";
const PUBLIC: &str = "https://hooks.example.com";
const PATH: &str = "/twilio/call-messages";
const MESSAGES: usize = 400;
/// Messages start this far apart (Twilio posting callbacks for a busy account).
const SPACING: Duration = Duration::from_millis(8);
/// The replica killed, and when: once this many messages have started and it has handlers
/// running.
const VICTIM: usize = 0;
const KILL_AT: usize = 150;
const REDIS_RESTART_AT: usize = 280;
/// How long Redis stays down (besides its own stop and start): a short outage with Twilio's
/// single retry, one longer than the receivers' 5 s claim lease with `rc=5` (the holders'
/// leases run out in Redis while their handlers run; they must take their claims back). The
/// downtime actually measured is reported. `TCM_REDIS_DOWN_MS` overrides both.
const REDIS_DOWN: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(6)];
/// The receivers' claim lease (the SDK's default).
const LEASE: Duration = twilio_call_messages::webhook::DEFAULT_CLAIM_LEASE;
/// Twilio's retry comes "soon after" a failed attempt; its read timeout per attempt.
const RETRY_AFTER: Duration = Duration::from_millis(500);
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The front door the receivers are built on.
#[derive(Clone, Copy, Debug)]
enum Door {
    Axum,
    Actix,
    Tower,
}

/// `rc=1`, Twilio's default, with a short Redis outage.
#[test]
fn replicas_handle_every_message_once_with_one_retry_through_a_sigkill_and_a_redis_restart() {
    scenario(
        "replicas_handle_every_message_once_with_one_retry_through_a_sigkill_and_a_redis_restart",
        1,
        Door::Axum,
    );
}

/// `rc=5`, with a Redis outage longer than the claim lease. Apart from the `rc=1` run so that
/// the two run side by side (each has its own Redis and receivers).
#[test]
fn replicas_handle_every_message_once_with_five_retries_through_a_redis_outage_past_the_lease() {
    scenario(
        "replicas_handle_every_message_once_with_five_retries_through_a_redis_outage_past_the_lease",
        5,
        Door::Axum,
    );
}

/// The `rc=1` run with receivers on actix-web.
#[test]
fn actix_replicas_handle_every_message_once_with_one_retry_through_a_sigkill_and_a_redis_restart() {
    scenario(
        "actix_replicas_handle_every_message_once_with_one_retry_through_a_sigkill_and_a_redis_restart",
        1,
        Door::Actix,
    );
}

/// The `rc=5` run with receivers on the tower door, served by hyper-util.
#[test]
fn tower_replicas_handle_every_message_once_with_five_retries_through_a_redis_outage_past_the_lease()
 {
    scenario(
        "tower_replicas_handle_every_message_once_with_five_retries_through_a_redis_outage_past_the_lease",
        5,
        Door::Tower,
    );
}

/// One run; `test` is the calling test's name, which the receivers are started with.
fn scenario(test: &'static str, retries: usize, door: Door) {
    if std::env::var_os(ROLE).is_some() {
        receiver(door);
    }
    // The receivers run this test by its full name in the test binary (`replicas::<test>`).
    let test: &'static str =
        format!("{}::{test}", module_path!().split_once("::").unwrap().1).leak();
    if !available(test) {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    #[cfg(feature = "rustls-ring")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(run(RedisServer::start(true), test, retries, door));
}

// ---------------------------------------------------------------- the receiver processes

#[derive(Clone)]
struct ReplicaState {
    config: Arc<WebhookConfig>,
    log: Arc<Mutex<std::fs::File>>,
    fail_dir: PathBuf,
}

impl axum::extract::FromRef<ReplicaState> for Arc<WebhookConfig> {
    fn from_ref(state: &ReplicaState) -> Self {
        state.config.clone()
    }
}

/// Serves until killed: the role of this binary when `TCM_REPLICA` is set.
fn receiver(door: Door) -> ! {
    // The SDK's warnings and errors (lost claims, store failures) go to this replica's stderr
    // file, which the sender reports from.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();
    match door {
        // actix-web runs its own runtimes (a system and its workers).
        Door::Actix => actix_web::rt::System::new().block_on(serve_actix()),
        Door::Axum | Door::Tower => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let (state, dedup) = state().await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                listening(listener.local_addr().unwrap().port());
                match door {
                    Door::Axum => {
                        let app = Router::new()
                            .route(PATH, post(handle_axum))
                            .layer(DeliveryLayer::new(dedup))
                            .with_state(state);
                        axum::serve(listener, app).await.unwrap();
                    }
                    _ => serve_tower(listener, state, dedup).await,
                }
            }),
    }
    std::process::exit(0)
}

/// The receiver's state and redelivery handling, from the environment the sender set.
async fn state() -> (ReplicaState, Deduplication) {
    let env = |name: &str| std::env::var(name).unwrap();
    let store = RedisDeliveryStore::connect(&env("TCM_REDIS_URL"))
        .await
        .unwrap()
        .key_prefix(env("TCM_PREFIX"));
    let config = WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC);
    let dedup = Deduplication::with_store(Duration::from_secs(600), Arc::new(store));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env("TCM_LOG"))
        .unwrap();
    let state = ReplicaState {
        config: Arc::new(config),
        log: Arc::new(Mutex::new(log)),
        fail_dir: env("TCM_FAIL_DIR").into(),
    };
    (state, dedup)
}

/// The sender reads this line (libtest prints its own lines around it).
fn listening(port: u16) {
    println!("TCM_LISTENING {port}");
    std::io::stdout().flush().unwrap();
}

async fn handle_axum(
    State(state): State<ReplicaState>,
    VerifiedCallMessage(event): VerifiedCallMessage,
) -> (StatusCode, &'static str) {
    handle(state, event).await
}

async fn serve_tower(listener: tokio::net::TcpListener, state: ReplicaState, dedup: Deduplication) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use twilio_call_messages::webhook::tower::CallbackService;

    let receiver =
        twilio_call_messages::webhook::Receiver::new((*state.config).clone()).deduplicate(dedup);
    let service = CallbackService::new(receiver, move |event| handle(state.clone(), event));
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn serve_actix() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use twilio_call_messages::webhook::actix::Deliveries;

    async fn handle_actix(
        state: web::Data<ReplicaState>,
        VerifiedCallMessage(event): VerifiedCallMessage,
    ) -> HttpResponse {
        let (status, text) = handle(state.get_ref().clone(), event).await;
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status.as_u16()).unwrap())
            .body(text)
    }

    let (state, dedup) = state().await;
    let config = web::Data::from(state.config.clone());
    let state = web::Data::new(state);
    let deliveries = Deliveries::new(dedup);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listening(listener.local_addr().unwrap().port());
    HttpServer::new(move || {
        App::new()
            .app_data(config.clone())
            .app_data(state.clone())
            .service(
                web::resource(PATH)
                    .wrap(deliveries.clone())
                    .route(web::post().to(handle_actix)),
            )
    })
    .workers(2)
    .listen(listener)
    .unwrap()
    .run()
    .await
    .unwrap();
}

/// Content `{"work_ms":N,"fail_once":B}`: fails (500) the first handling of a `fail_once`
/// message anywhere (a marker file shared by the replicas), else works for `work_ms` and
/// records the success with an fsync'd line before answering 200.
async fn handle(state: ReplicaState, event: CallMessageEvent) -> (StatusCode, &'static str) {
    let content: serde_json::Value = event.content_as().unwrap();
    let sid = event.message_sid.to_string();
    if content["fail_once"].as_bool() == Some(true)
        && std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(state.fail_dir.join(&sid))
            .is_ok()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        return (StatusCode::INTERNAL_SERVER_ERROR, "failed once on purpose");
    }
    tokio::time::sleep(Duration::from_millis(content["work_ms"].as_u64().unwrap())).await;
    // Off the runtime's threads: an fsync on a busy disk can take seconds, and blocking the
    // workers would stall the heartbeat that keeps this claim.
    let log = state.log.clone();
    tokio::task::spawn_blocking(move || {
        let mut log = log.lock().unwrap();
        writeln!(log, "{sid}").unwrap();
        log.sync_data().unwrap();
    })
    .await
    .unwrap();
    (StatusCode::OK, "handled")
}

// ---------------------------------------------------------------- the sender (Twilio)

/// A receiver process, killed on drop.
struct Replica {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_replica(
    test: &str,
    dir: &Path,
    redis: &RedisServer,
    prefix: &str,
    index: usize,
) -> Replica {
    let log = dir.join(format!("replica-{index}.log"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, index.to_string())
        .env("TCM_REDIS_URL", redis.url())
        .env("TCM_PREFIX", prefix)
        .env("TCM_LOG", &log)
        .env("TCM_FAIL_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join(format!("replica-{index}.stderr"))).unwrap(),
        ))
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut port = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        // libtest may have printed the test's name on the same line.
        if let Some((_, p)) = line.split_once("TCM_LISTENING ") {
            port = Some(p.trim().parse().unwrap());
            break;
        }
    }
    Replica {
        child,
        port: port.expect("the replica did not start; see its stderr file"),
        log,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 2xx, and whether the handler ran (its answer) or the dedup answered.
    Handled,
    Duplicate,
    Status(u16),
    /// The connection failed or broke (the killed replica), or no answer within `rt`.
    Failed,
}

#[derive(Default)]
struct Record {
    /// Per attempt: replica, outcome.
    attempts: Vec<(usize, Outcome)>,
    /// Per attempt: how long it took to get its outcome.
    durations: Vec<Duration>,
    delivered: bool,
}

impl Record {
    /// Each attempt as `r<replica> <outcome> <time>`, for the report.
    fn attempts_seen(&self) -> Vec<String> {
        self.attempts
            .iter()
            .zip(&self.durations)
            .map(|((r, o), d)| format!("r{r} {o:?} {d:.1?}"))
            .collect()
    }
}

struct Sender {
    http: reqwest::Client,
    ports: Vec<u16>,
    alive: Mutex<Vec<bool>>,
    in_flight: Vec<AtomicUsize>,
    records: Mutex<HashMap<String, Record>>,
}

impl Sender {
    /// A live replica, at random (the load balancer drops a replica once it is dead); never
    /// `avoid` when given.
    fn pick(&self, avoid: Option<usize>) -> usize {
        let alive = self.alive.lock().unwrap();
        let choices: Vec<usize> = (0..alive.len())
            .filter(|&r| alive[r] && Some(r) != avoid)
            .collect();
        choices[fastrand::usize(..choices.len())]
    }

    /// One delivery as Twilio makes it: an attempt, then up to `retries` more after a failed
    /// one. Returns whether one attempt got a 2xx.
    async fn deliver(&self, sid: &str, body: &[u8], retries: usize, avoid: Option<usize>) {
        let token = uuid::Uuid::new_v4().to_string();
        for attempt in 0..=retries {
            if attempt > 0 {
                tokio::time::sleep(RETRY_AFTER + Duration::from_millis(fastrand::u64(0..200)))
                    .await;
            }
            let replica = self.pick(avoid);
            let mut headers = HeaderMap::new();
            // Same on every retry of one delivery, as Twilio's webhooks commonly carry.
            headers.insert(
                "i-twilio-idempotency-token",
                HeaderValue::from_str(&token).unwrap(),
            );
            let headers = signed(
                &SignatureValidator::new(TOKEN),
                &format!("{PUBLIC}{PATH}"),
                headers,
                body,
            );
            self.in_flight[replica].fetch_add(1, Ordering::SeqCst);
            let sent_at = Instant::now();
            let sent = self
                .http
                .post(format!("http://127.0.0.1:{}{PATH}", self.ports[replica]))
                .headers(headers)
                .body(body.to_vec())
                .timeout(READ_TIMEOUT)
                .send()
                .await;
            let outcome = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.text().await {
                        Ok(text) if status == 200 && text == "handled" => Outcome::Handled,
                        Ok(_) if status == 200 => Outcome::Duplicate,
                        Ok(_) => Outcome::Status(status),
                        Err(_) => Outcome::Failed,
                    }
                }
                Err(_) => Outcome::Failed,
            };
            self.in_flight[replica].fetch_sub(1, Ordering::SeqCst);
            let mut records = self.records.lock().unwrap();
            let record = records.entry(sid.to_owned()).or_default();
            record.attempts.push((replica, outcome));
            record.durations.push(sent_at.elapsed());
            if matches!(outcome, Outcome::Handled | Outcome::Duplicate) {
                record.delivered = true;
                return;
            }
        }
    }
}

/// The figures go straight to stderr, shown even when libtest captures a passing test's output.
macro_rules! report {
    ($($arg:tt)*) => {
        let _ = writeln!(std::io::stderr(), $($arg)*);
    };
}

async fn run(redis: RedisServer, test: &str, retries: usize, door: Door) {
    let started = Instant::now();
    let dir = redis.dir.join(format!("{door:?}-rc{retries}"));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = format!("{door:?}-rc{retries}:");
    let mut replicas: Vec<Option<Replica>> = (0..3)
        .map(|i| Some(spawn_replica(test, &dir, &redis, &prefix, i)))
        .collect();
    let logs: Vec<PathBuf> = replicas
        .iter()
        .map(|r| r.as_ref().unwrap().log.clone())
        .collect();
    let sender = Arc::new(Sender {
        http: reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        ports: replicas.iter().map(|r| r.as_ref().unwrap().port).collect(),
        alive: Mutex::new(vec![true; 3]),
        in_flight: (0..3).map(|_| AtomicUsize::new(0)).collect(),
        records: Mutex::default(),
    });

    let mut tasks = Vec::new();
    let mut failing = 0;
    let mut deliveries = 0;
    let mut killed_with_in_flight = 0;
    let mut redis = Some(redis);
    let mut restarting = None;
    for i in 0..MESSAGES {
        if i == KILL_AT {
            // While its handlers run.
            while sender.in_flight[VICTIM].load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            killed_with_in_flight = sender.in_flight[VICTIM].load(Ordering::SeqCst);
            sender.alive.lock().unwrap()[VICTIM] = false;
            let mut victim = replicas[VICTIM].take().unwrap();
            victim.child.kill().unwrap(); // SIGKILL
            victim.child.wait().unwrap();
        }
        if i == REDIS_RESTART_AT {
            // SIGTERM, down for a second while deliveries go on, then the same port and
            // directory.
            let mut server = redis.take().unwrap();
            restarting = Some(tokio::task::spawn_blocking(move || {
                let down = Instant::now();
                let down_for = std::env::var("TCM_REDIS_DOWN_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map_or(REDIS_DOWN[usize::from(retries > 1)], Duration::from_millis);
                server.restart_after(down_for);
                (server, down.elapsed())
            }));
        }
        let sid = format!("KX{retries:02x}{i:030x}");
        // One message in eight fails its first handling. With rc=1 Twilio gives a message one
        // second chance, so a message meeting two faults (a failing handler, then the killed
        // replica) is lost whatever the receiver does: in that run these messages are not
        // routed to the replica that will be killed. The rc=5 run has no such restriction.
        let fail_once = i % 8 == 3;
        let avoid = (fail_once && retries == 1).then_some(VICTIM);
        failing += usize::from(fail_once);
        let content = serde_json::json!({
            "work_ms": fastrand::u64(20..150),
            "fail_once": fail_once,
        });
        let body = serde_json::json!({
            "ContentType": "application/json",
            "Content": content.to_string(),
            "SequenceNumber": (i + 1).to_string(),
            "CallSid": "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "Timestamp": "Wed, 18 Dec 2019 20:02:01 +0000",
            "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Sid": sid,
        })
        .to_string()
        .into_bytes();
        let copies = fastrand::usize(1..=3);
        deliveries += copies;
        for _ in 0..copies {
            let (sender, sid, body) = (sender.clone(), sid.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                // Copies of one message arrive together, a few ms apart.
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..5))).await;
                sender.deliver(&sid, &body, retries, avoid).await;
            }));
        }
        tokio::time::sleep(SPACING).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    // `_redis` (not `_`): the server lives until the checks are done.
    let (_redis, redis_down) = restarting.unwrap().await.unwrap();
    let elapsed = started.elapsed();
    drop(replicas); // the survivors

    // Successful handlings per message, and which replica.
    let mut handled: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (replica, log) in logs.iter().enumerate() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for sid in text.lines() {
            handled.entry(sid.to_owned()).or_default().push(replica);
        }
    }
    // What the receivers logged (warnings and errors), by kind.
    let mut logged: BTreeMap<String, usize> = BTreeMap::new();
    let mut logged_for: HashMap<String, Vec<String>> = HashMap::new();
    for replica in 0..3 {
        let text = std::fs::read_to_string(dir.join(format!("replica-{replica}.stderr")))
            .unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        {
            // The message without the timestamp and fields.
            let kind = line
                .split_once(": ")
                .map_or(line, |(_, rest)| rest)
                .chars()
                .take(90)
                .collect::<String>();
            if let Some(at) = line.find("KX") {
                let sid: String = line[at..].chars().take(34).collect();
                logged_for.entry(sid).or_default().push(format!(
                    "r{replica}: {}",
                    kind.chars().take(120).collect::<String>()
                ));
            }
            // One line per kind, not per message.
            let kind = match kind.find("KX") {
                Some(at) => format!("{}KX…", &kind[..at]),
                None => kind,
            };
            *logged.entry(kind).or_default() += 1;
        }
    }
    let records = sender.records.lock().unwrap();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for record in records.values() {
        for (_, outcome) in &record.attempts {
            let name = match outcome {
                Outcome::Handled => "2xx from the handler".to_owned(),
                Outcome::Duplicate => "200 without the handler (already done)".to_owned(),
                Outcome::Status(s) => format!("{s}"),
                Outcome::Failed => "connection failed or broken".to_owned(),
            };
            *outcomes.entry(name).or_default() += 1;
        }
    }
    let mut lost = Vec::new();
    let mut undelivered = Vec::new();
    let mut excused = Vec::new();
    let mut outage_excused = Vec::new();
    let mut duplicates = Vec::new();
    for i in 0..MESSAGES {
        let sid = format!("KX{retries:02x}{i:030x}");
        let record = &records[&sid];
        if !record.delivered {
            undelivered.push(sid.clone());
        }
        let by = handled.get(&sid).cloned().unwrap_or_default();
        match by.len() {
            0 => lost.push(sid),
            1 => {}
            _ => {
                // Excusable: exactly two, one on the killed replica, whose attempt there broke
                // (it finished the work, then died before "done" was recorded).
                let broke_on_victim = record
                    .attempts
                    .iter()
                    .any(|(r, o)| *r == VICTIM && *o == Outcome::Failed);
                // Excusable too, as a documented limit: Redis was down for longer than the
                // lease and a receiver logged, for this message, that its claim ran out and was
                // taken over, or that its "done" could not be recorded.
                let outage_cause = (redis_down > LEASE)
                    .then(|| {
                        logged_for.get(&sid)?.iter().find(|line| {
                            line.contains("was lost")
                                || line.contains("after its claim had been taken over")
                                || line.contains("could not mark a handled")
                        })
                    })
                    .flatten();
                if by.len() == 2 && by.contains(&VICTIM) && broke_on_victim {
                    excused.push(sid);
                } else if let (2, Some(cause)) = (by.len(), outage_cause) {
                    outage_excused.push((sid, cause.clone()));
                } else {
                    duplicates.push((sid, by));
                }
            }
        }
    }
    let handler_calls: usize = handled.values().map(Vec::len).sum();
    let attempts: usize = records.values().map(|r| r.attempts.len()).sum();
    report!(
        "\n== replicas on {door:?}, rc={retries}: {MESSAGES} messages, {deliveries} deliveries, {attempts} \
         attempts, {failing} messages failing their first handling, replica {VICTIM} SIGKILLed \
         at message {KILL_AT} with {killed_with_in_flight} requests in flight, Redis restarted \
         at message {REDIS_RESTART_AT} (down {redis_down:.1?}), {elapsed:.1?}"
    );
    for (outcome, n) in &outcomes {
        report!("   answers: {outcome}: {n}");
    }
    for (kind, n) in &logged {
        report!("   receivers logged {n}x: {kind}");
    }
    report!(
        "   successful handler calls: {handler_calls}; lost: {}; undelivered: {}; duplicates \
         excused (finished on the killed replica just before the kill): {} {excused:?}; \
         duplicates excused (Redis down longer than the lease, a claim lost or \
         a done not recorded): {} {outage_excused:?}; duplicates not excused: {}",
        lost.len(),
        undelivered.len(),
        excused.len(),
        outage_excused.len(),
        duplicates.len()
    );
    for (sid, by) in &duplicates {
        let attempts = records[sid].attempts_seen();
        report!(
            "   duplicate {sid}: handled by {by:?}; attempts {attempts:?}; logged {:?}",
            logged_for.get(sid)
        );
    }
    for sid in &undelivered {
        let attempts = records[sid].attempts_seen();
        report!(
            "   undelivered {sid}: attempts {attempts:?}; logged {:?}",
            logged_for.get(sid)
        );
    }
    assert!(lost.is_empty(), "rc={retries}: lost {lost:?}");
    assert!(undelivered.is_empty(), "rc={retries}: {undelivered:?}");
    assert!(duplicates.is_empty(), "rc={retries}: {duplicates:?}");
    assert_eq!(
        handler_calls,
        MESSAGES + excused.len() + outage_excused.len()
    );
}
