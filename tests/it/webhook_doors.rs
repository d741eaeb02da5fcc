//! One table of callbacks through every front door: the receiver called directly, the tower
//! door served by hyper-util, axum, actix-web. Every signing scheme Twilio uses (JSON fields as
//! parameters, form, `bodySHA256`, a shared key with HMAC-SHA256), proxies (`X-Forwarded-*`,
//! `Forwarded`, a forged host, malformed headers), bad and missing signatures, an unknown shared
//! key, stale and future timestamps, oversized and malformed bodies, typed content that does not
//! decode, a handler that fails and Twilio's redeliveries: each door must give the same answer
//! and the same handler calls. The doors' servers are shared with the replica and twilio-python
//! tests (`serve`).
#![cfg(all(feature = "axum", feature = "actix-web"))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::reqwest;
use twilio_call_messages::time::OffsetDateTime;
use twilio_call_messages::time::format_description::well_known::Rfc2822;
use twilio_call_messages::webhook::tower::{CallbackService, Service as _};
use twilio_call_messages::webhook::{
    CallMessageEvent, Deduplication, Receiver, VerifiedCallMessage, VerifiedContent, WebhookConfig,
};

/// The front doors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Door {
    /// `Receiver::receive`, no HTTP server.
    Receiver,
    /// `webhook::tower::CallbackService` on hyper-util.
    Tower,
    Axum,
    Actix,
}

pub(crate) const DOORS: [Door; 4] = [Door::Receiver, Door::Tower, Door::Axum, Door::Actix];

/// A handler call: the route, the message `Sid`, its content (decoded and printed back for the
/// typed route).
pub(crate) type Call = (&'static str, String, String);

#[derive(Clone, Default)]
pub(crate) struct Calls(Arc<Mutex<Vec<Call>>>);

impl Calls {
    pub(crate) fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// What the typed route decodes the content into.
#[derive(Debug, Deserialize)]
pub(crate) struct Typed {
    n: u32,
}

/// The handler every door runs: content `{"status":S,"sleep_ms":N}` answers S (200 by default)
/// with `handled` after N ms.
pub(crate) async fn handle(
    calls: Calls,
    route: &'static str,
    event: CallMessageEvent,
    content: String,
) -> (StatusCode, String) {
    let value: serde_json::Value = serde_json::from_str(&event.content).unwrap_or_default();
    if let Some(ms) = value["sleep_ms"].as_u64() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    calls
        .0
        .lock()
        .unwrap()
        .push((route, event.message_sid.to_string(), content));
    let status = value["status"].as_u64().unwrap_or(200) as u16;
    (StatusCode::from_u16(status).unwrap(), "handled".to_owned())
}

async fn on_hook(calls: Calls, event: CallMessageEvent) -> (StatusCode, String) {
    let content = event.content.clone();
    handle(calls, "/hook", event, content).await
}

async fn on_typed(calls: Calls, typed: VerifiedContent<Typed>) -> (StatusCode, String) {
    let content = format!("n={}", typed.content.n);
    handle(calls, "/typed", typed.event, content).await
}

/// A door serving `/hook` (the event) and `/typed` (`VerifiedContent<Typed>`).
pub(crate) struct Served {
    door: Door,
    /// `http://127.0.0.1:<port>` for the doors with a server.
    pub(crate) local: String,
    receiver: Receiver,
    pub(crate) calls: Calls,
    http: reqwest::Client,
}

impl Served {
    /// Posts as Twilio does; the status and text, `None` if the connection failed.
    pub(crate) async fn post(
        &self,
        path_and_query: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Option<(u16, String)> {
        if self.door == Door::Receiver {
            let mut request = http::Request::post(path_and_query).body(body).unwrap();
            *request.headers_mut() = headers;
            let calls = self.calls.clone();
            let response = if path_and_query.starts_with("/typed") {
                self.receiver
                    .receive(request, move |typed| on_typed(calls, typed))
                    .await
            } else {
                self.receiver
                    .receive(request, move |event| on_hook(calls, event))
                    .await
            };
            return Some((response.status().as_u16(), response.into_body()));
        }
        let response = self
            .http
            .post(format!("{}{path_and_query}", self.local))
            .headers(headers)
            .body(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }
}

/// Starts `door` with `config` and, if given, redelivery handling.
pub(crate) async fn serve(
    door: Door,
    config: WebhookConfig,
    dedup: Option<Deduplication>,
) -> Served {
    let calls = Calls::default();
    let mut receiver = Receiver::new(config.clone());
    if let Some(dedup) = dedup.clone() {
        receiver = receiver.deduplicate(dedup);
    }
    let local = match door {
        Door::Receiver => String::new(),
        Door::Tower => serve_tower(receiver.clone(), calls.clone()).await,
        Door::Axum => serve_axum(config, dedup, calls.clone()).await,
        Door::Actix => serve_actix(config, dedup, calls.clone()),
    };
    #[cfg(feature = "rustls-ring")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Served {
        door,
        local,
        receiver,
        calls,
        http,
    }
}

/// The tower door as a hyper 1.x service would run it: two `CallbackService`s, one per route.
async fn serve_tower(receiver: Receiver, calls: Calls) -> String {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let hook = CallbackService::new(receiver.clone(), {
        let calls = calls.clone();
        move |event| on_hook(calls.clone(), event)
    });
    let typed = CallbackService::new(receiver, move |typed| on_typed(calls.clone(), typed));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (hook, typed) = (hook.clone(), typed.clone());
            let service = hyper::service::service_fn(move |request: http::Request<_>| {
                if request.uri().path() == "/typed" {
                    typed.clone().call(request)
                } else {
                    hook.clone().call(request)
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    local
}

async fn serve_axum(config: WebhookConfig, dedup: Option<Deduplication>, calls: Calls) -> String {
    use axum::extract::{FromRef, State};
    use axum::routing::post;
    use twilio_call_messages::webhook::axum::DeliveryLayer;

    #[derive(Clone)]
    struct AppState {
        config: Arc<WebhookConfig>,
        calls: Calls,
    }
    impl FromRef<AppState> for Arc<WebhookConfig> {
        fn from_ref(state: &AppState) -> Self {
            state.config.clone()
        }
    }
    async fn hook(
        State(state): State<AppState>,
        VerifiedCallMessage(event): VerifiedCallMessage,
    ) -> (StatusCode, String) {
        on_hook(state.calls, event).await
    }
    async fn typed(
        State(state): State<AppState>,
        content: VerifiedContent<Typed>,
    ) -> (StatusCode, String) {
        on_typed(state.calls, content).await
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let routes = axum::Router::new()
        .route("/hook", post(hook))
        .route("/typed", post(typed));
    let app = match dedup {
        Some(dedup) => routes.layer(DeliveryLayer::new(dedup)),
        None => routes,
    }
    .with_state(AppState {
        config: Arc::new(config),
        calls,
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    local
}

/// actix-web on a thread of its own (its own runtime, one worker), until the process ends.
pub(crate) fn serve_actix(
    config: WebhookConfig,
    dedup: Option<Deduplication>,
    calls: Calls,
) -> String {
    use actix_web::middleware::Condition;
    use actix_web::{App, HttpResponse, HttpServer, web};
    use twilio_call_messages::webhook::actix::Deliveries;

    fn answer((status, text): (StatusCode, String)) -> HttpResponse {
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status.as_u16()).unwrap())
            .body(text)
    }
    async fn hook(
        calls: web::Data<Calls>,
        VerifiedCallMessage(event): VerifiedCallMessage,
    ) -> HttpResponse {
        answer(on_hook(calls.get_ref().clone(), event).await)
    }
    async fn typed(calls: web::Data<Calls>, content: VerifiedContent<Typed>) -> HttpResponse {
        answer(on_typed(calls.get_ref().clone(), content).await)
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let config = web::Data::new(config);
        let calls = web::Data::new(calls);
        // Without deduplication the middleware is off (`Condition`), so the app has one type.
        let enabled = dedup.is_some();
        let deliveries = Deliveries::new(
            dedup.unwrap_or_else(|| Deduplication::in_memory(Duration::from_secs(1))),
        );
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let deliveries = || Condition::new(enabled, deliveries.clone());
                App::new()
                    .app_data(config.clone())
                    .app_data(calls.clone())
                    .service(
                        web::resource("/hook")
                            .wrap(deliveries())
                            .route(web::post().to(hook)),
                    )
                    .service(
                        web::resource("/typed")
                            .wrap(deliveries())
                            .route(web::post().to(typed)),
                    )
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    local
}

// ---------------------------------------------------------------- the table

const TOKEN: &str = "doors-auth-token";
const KEY_ID: &str = "webhooks_sharedkey_1";
const KEY_SECRET: &str = "doors-shared-secret";
const PUBLIC: &str = "https://hooks.example.com";
/// The Host every row sends (the doors' own ports differ; the signed URL must not).
const HOST: &str = "receiver.internal:8080";

fn config() -> WebhookConfig {
    WebhookConfig::new(SignatureValidator::new(TOKEN).with_shared_key(KEY_ID, KEY_SECRET))
        .trust_forwarded_headers(true)
        .body_limit(2048)
        .max_age(Duration::from_secs(300))
}

fn rfc2822(offset_secs: i64) -> String {
    (OffsetDateTime::now_utc() + twilio_call_messages::time::Duration::seconds(offset_secs))
        .format(&Rfc2822)
        .unwrap()
}

fn sid(row: usize) -> String {
    format!("KX{row:032x}")
}

/// The callback's fields, as Twilio sends them (every value a string).
fn fields(sid: &str, content: &str, timestamp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ContentType", "application/json".to_owned()),
        ("Content", content.to_owned()),
        ("SequenceNumber", "1".to_owned()),
        ("CallSid", "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned()),
        ("Timestamp", timestamp.to_owned()),
        (
            "AccountSid",
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        ),
        ("Sid", sid.to_owned()),
    ]
}

fn json(fields: &[(&'static str, String)]) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(object).to_string().into_bytes()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                http::HeaderName::from_static(n),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

/// A request of the table: the path and query to post to, headers, body.
struct Request {
    name: &'static str,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Signs `body` (JSON) for `url` as Twilio signs it, adding its headers to `extra`.
fn signed(name: &'static str, url: &str, mut extra: HeaderMap, body: Vec<u8>) -> Request {
    if !extra.contains_key("content-type") {
        extra.insert("content-type", HeaderValue::from_static("application/json"));
    }
    extra.insert("host", HeaderValue::from_static(HOST));
    let signer = SignatureValidator::new(TOKEN).with_shared_key(KEY_ID, KEY_SECRET);
    let signature = signer
        .sign_request(url, &extra, &body)
        .unwrap_or_else(|_| "replaced-below".to_owned());
    extra.insert(
        "x-twilio-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    let path = url.split_once("://").unwrap().1;
    let path = path[path.find('/').unwrap()..].to_owned();
    Request {
        name,
        path,
        headers: extra,
        body,
    }
}

const PROXY: [(&str, &str); 2] = [
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "hooks.example.com"),
];

/// The table, in order (later rows redeliver earlier rows' messages).
fn table() -> Vec<Request> {
    let old = "Wed, 18 Dec 2019 20:02:01 +0000";
    let now = rfc2822(0);
    let hook = format!("{PUBLIC}/hook");
    let event = |row: usize, content: &str| json(&fields(&sid(row), content, &now));
    let mut rows = Vec::new();
    // 0-5: every scheme and proxy, accepted.
    rows.push(signed(
        "JSON fields as parameters, X-Forwarded-*",
        &hook,
        headers(&PROXY),
        event(0, "{}"),
    ));
    let form = serde_urlencoded::to_string(fields(&sid(1), "{}", &now))
        .unwrap()
        .into_bytes();
    rows.push(signed(
        "form",
        &hook,
        headers(&[
            PROXY[0],
            PROXY[1],
            ("content-type", "application/x-www-form-urlencoded"),
        ]),
        form,
    ));
    let body = event(2, r#"{"k":[1,2]}"#);
    let (with_hash, _) = SignatureValidator::new(TOKEN).sign_json(&hook, &body);
    rows.push(signed("bodySHA256", &with_hash, headers(&PROXY), body));
    rows.push(signed(
        "shared key, HMAC-SHA256",
        &hook,
        headers(&[
            PROXY[0],
            PROXY[1],
            (
                "x-twilio-webhooks-signature-settings",
                "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
            ),
        ]),
        event(3, "{}"),
    ));
    rows.push(signed(
        "Forwarded (RFC 7239)",
        &hook,
        headers(&[(
            "forwarded",
            "for=192.0.2.1;proto=https;host=hooks.example.com",
        )]),
        event(4, "{}"),
    ));
    rows.push(signed(
        "no proxy: http:// + Host",
        &format!("http://{HOST}/hook?a=b"),
        HeaderMap::new(),
        event(5, "{}"),
    ));
    // 6-: refused before the handler.
    let mut bad = signed("wrong signature", &hook, headers(&PROXY), event(6, "{}"));
    bad.headers
        .insert("x-twilio-signature", HeaderValue::from_static("bm90IGl0"));
    rows.push(bad);
    let mut missing = signed("no signature", &hook, headers(&PROXY), event(7, "{}"));
    missing.headers.remove("x-twilio-signature");
    rows.push(missing);
    let mut forged = signed(
        "forged X-Forwarded-Host",
        &hook,
        headers(&PROXY),
        event(8, "{}"),
    );
    forged
        .headers
        .insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
    rows.push(forged);
    let other_key = SignatureValidator::new("x").with_shared_key("webhooks_sharedkey_9", "s");
    let settings = headers(&[
        PROXY[0],
        PROXY[1],
        (
            "x-twilio-webhooks-signature-settings",
            "key=webhooks_sharedkey_9,algorithm=HMAC_SHA256",
        ),
        ("content-type", "application/json"),
    ]);
    let body = event(9, "{}");
    let mut unknown = signed("unknown shared key", &hook, settings.clone(), body.clone());
    let signature = other_key.sign_request(&hook, &settings, &body).unwrap();
    unknown.headers.insert(
        "x-twilio-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    rows.push(unknown);
    rows.push(signed(
        "malformed X-Forwarded-Proto",
        "gopher://hooks.example.com/hook",
        headers(&[("x-forwarded-proto", "gopher"), PROXY[1]]),
        event(10, "{}"),
    ));
    rows.push(signed(
        "stale Timestamp",
        &hook,
        headers(&PROXY),
        json(&fields(&sid(11), "{}", old)),
    ));
    rows.push(signed(
        "Timestamp from the future",
        &hook,
        headers(&PROXY),
        json(&fields(&sid(12), "{}", &rfc2822(600))),
    ));
    let padded = json(
        &[
            fields(&sid(13), "{}", &now),
            vec![("Padding", "x".repeat(4096))],
        ]
        .concat(),
    );
    rows.push(signed("oversized body", &hook, headers(&PROXY), padded));
    rows.push(signed(
        "not a call message",
        &hook,
        headers(&PROXY),
        json(&[("Sid", sid(14))]),
    ));
    // Covered by `bodySHA256` (a body the parameter scheme cannot sign), so it verifies.
    let not_json = b"{\"Sid\":".to_vec();
    let (with_hash, _) = SignatureValidator::new(TOKEN).sign_json(&hook, &not_json);
    rows.push(signed("not JSON", &with_hash, headers(&PROXY), not_json));
    let typed = format!("{PUBLIC}/typed");
    rows.push(signed(
        "typed content that does not decode",
        &typed,
        headers(&PROXY),
        event(16, r#"{"n":"private text"}"#),
    ));
    rows.push(signed(
        "typed content",
        &typed,
        headers(&PROXY),
        event(17, r#"{"n":7}"#),
    ));
    // A failing handler, Twilio's retry, a redelivery of a done message.
    rows.push(signed(
        "handler answers 500",
        &hook,
        headers(&PROXY),
        event(18, r#"{"status":500}"#),
    ));
    rows.push(signed(
        "retry after the 500",
        &hook,
        headers(&PROXY),
        event(18, "{}"),
    ));
    rows.push(signed(
        "redelivery of a done message",
        &hook,
        headers(&PROXY),
        event(0, "{}"),
    ));
    rows.push(signed(
        "the same message on another route",
        &typed,
        headers(&PROXY),
        event(0, r#"{"n":1}"#),
    ));
    rows
}

/// What each row must get: the status, and the handler's call if it ran.
fn expected() -> Vec<(u16, Option<Call>)> {
    let call = |route, row: usize, content: &str| Some((route, sid(row), content.to_owned()));
    vec![
        (200, call("/hook", 0, "{}")),
        (200, call("/hook", 1, "{}")),
        (200, call("/hook", 2, r#"{"k":[1,2]}"#)),
        (200, call("/hook", 3, "{}")),
        (200, call("/hook", 4, "{}")),
        (200, call("/hook", 5, "{}")),
        (403, None),
        (403, None),
        (403, None),
        (500, None),
        (500, None),
        (403, None),
        (403, None),
        (413, None),
        (400, None),
        (400, None),
        (400, None),
        (200, call("/typed", 17, "n=7")),
        (500, call("/hook", 18, r#"{"status":500}"#)),
        (200, call("/hook", 18, "{}")),
        (200, None),
        (200, call("/typed", 0, "n=1")),
    ]
}

#[tokio::test]
async fn every_door_answers_the_table_alike() {
    let expected = expected();
    let mut answers = Vec::new();
    for door in DOORS {
        let served = serve(
            door,
            config(),
            Some(Deduplication::in_memory(Duration::from_secs(600))),
        )
        .await;
        let mut got = Vec::new();
        for (row, request) in table().into_iter().enumerate() {
            let (status, text) = served
                .post(&request.path, request.headers, request.body)
                .await
                .unwrap_or_else(|| panic!("{door:?}: row {row} ({}): no answer", request.name));
            let calls = served.calls.take();
            assert!(calls.len() <= 1, "{door:?}: row {row}: {calls:?}");
            let call = calls.into_iter().next();
            assert_eq!(
                (status, &call),
                (expected[row].0, &expected[row].1),
                "{door:?}: row {row} ({}): {text}",
                request.name
            );
            // The text never repeats the content.
            assert!(!text.contains("private text"), "{door:?}: {text}");
            got.push((status, text, call));
        }
        answers.push((door, got));
    }
    // And the same texts from every door, but for numbers: a stale event's age in seconds
    // may tick between two doors.
    let (first, reference) = &answers[0];
    for (door, got) in &answers[1..] {
        for (row, (a, b)) in reference.iter().zip(got).enumerate() {
            assert_eq!(
                (a.0, without_numbers(&a.1), &a.2),
                (b.0, without_numbers(&b.1), &b.2),
                "row {row}: {first:?} and {door:?} differ"
            );
        }
    }
}

/// `text` with each run of digits as `#`.
fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// Without deduplication every door runs the handler for every delivery.
#[tokio::test]
async fn without_deduplication_every_door_runs_the_handler_each_time() {
    for door in DOORS {
        let served = serve(door, config(), None).await;
        let request = || {
            signed(
                "plain",
                &format!("{PUBLIC}/hook"),
                headers(&PROXY),
                json(&fields(&sid(0), "{}", &rfc2822(0))),
            )
        };
        for _ in 0..2 {
            let r = request();
            assert_eq!(
                served.post(&r.path, r.headers, r.body).await.unwrap().0,
                200,
                "{door:?}"
            );
        }
        assert_eq!(served.calls.take().len(), 2, "{door:?}");
    }
}

/// A redelivery that arrives while the first delivery's handler runs waits for it, through
/// every door: one handler call for three concurrent deliveries.
#[tokio::test]
async fn concurrent_redeliveries_wait_for_the_first_through_every_door() {
    for door in DOORS {
        let served = Arc::new(
            serve(
                door,
                config(),
                Some(
                    Deduplication::in_memory(Duration::from_secs(600))
                        .claim_lease(Duration::from_millis(200)),
                ),
            )
            .await,
        );
        let deliveries: Vec<_> = (0..3)
            .map(|_| {
                let served = served.clone();
                tokio::spawn(async move {
                    let r = signed(
                        "slow",
                        &format!("{PUBLIC}/hook"),
                        headers(&PROXY),
                        json(&fields(&sid(0), r#"{"sleep_ms":600}"#, &rfc2822(0))),
                    );
                    served.post(&r.path, r.headers, r.body).await.unwrap().0
                })
            })
            .collect();
        for delivery in deliveries {
            assert_eq!(delivery.await.unwrap(), 200, "{door:?}");
        }
        assert_eq!(served.calls.take().len(), 1, "{door:?}");
    }
}

// ---------------------------------------------------------------- the emulator's callbacks

/// The local Twilio delivers a client's message to each door with every signing scheme and
/// body it has (`Subscription` through the REST API, as a service would at Twilio): each genuine
/// one reaches the handler, the forged one (an emulator with another token) is refused.
#[tokio::test]
async fn the_emulators_signed_callbacks_reach_every_door() {
    use twilio_call_messages::Client;
    use twilio_call_messages_emulator::{CallbackBody, Emulator, Signing};

    let shared = || Signing::SharedKey {
        id: KEY_ID.to_owned(),
        secret: KEY_SECRET.to_owned(),
    };
    let cases = [
        ("form", CallbackBody::Form, Signing::AuthToken, TOKEN, 200),
        (
            "JSON as parameters",
            CallbackBody::Json,
            Signing::AuthToken,
            TOKEN,
            200,
        ),
        (
            "bodySHA256",
            CallbackBody::Json,
            Signing::BodySha256,
            TOKEN,
            200,
        ),
        ("shared key", CallbackBody::Json, shared(), TOKEN, 200),
        (
            "forged",
            CallbackBody::Json,
            Signing::AuthToken,
            "not-the-token",
            403,
        ),
    ];
    // The doors with a server: the emulator posts over HTTP, to the door's own address.
    for door in [Door::Tower, Door::Axum, Door::Actix] {
        let config =
            WebhookConfig::new(SignatureValidator::new(TOKEN).with_shared_key(KEY_ID, KEY_SECRET));
        let dedup = Deduplication::in_memory(Duration::from_secs(600));
        let served = serve(door, config, Some(dedup)).await;
        for (what, body, signing, token, expected) in cases.clone() {
            let twilio = Emulator::builder()
                .auth_token(token)
                .callback_body(body)
                .signing(signing)
                .start()
                .await
                .unwrap();
            let call = twilio.create_call();
            let client = Client::builder()
                .account_sid(twilio.account_sid().as_str())
                .auth_token(twilio.auth_token())
                .base_url(twilio.base_url())
                .build()
                .unwrap();
            // `#rc=0`: the forged delivery is tried once.
            client
                .subscribe(call, &format!("{}/hook#rc=0", served.local))
                .await
                .unwrap();
            let sid = twilio
                .client_send(&call, serde_json::json!({"step": 2}))
                .unwrap();
            twilio.settled().await;
            let sent = twilio.client_messages(&call);
            let status = sent[0].deliveries[0].attempts.last().unwrap().status;
            assert_eq!(status, Some(expected), "{door:?}: {what}");
            let calls = served.calls.take();
            if expected == 200 {
                assert_eq!(
                    calls,
                    vec![("/hook", sid.to_string(), r#"{"step":2}"#.to_owned())],
                    "{door:?}: {what}"
                );
            } else {
                assert!(calls.is_empty(), "{door:?}: {what}");
            }
            twilio.shutdown();
        }
    }
}
