//! The cost of each front door per handled callback, against calling the handler directly:
//! `cargo bench --all-features --bench doors`. Every row handles the same signed callbacks
//! (JSON signed as parameters, 7 fields, a distinct `Sid` each), in process (no sockets: what
//! is measured is the door, not the network), on one thread; with and without a delivery store
//! (`MemoryDeliveryStore`, a fresh one per round). Rounds interleave the rows; medians of the
//! rounds. Figures go to BENCHMARKS.md, "Receiving: the front doors".

use std::hint::black_box;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode};

// The integration tests' signing helper: one way to sign a callback as Twilio does.
#[path = "../tests/it/common/callback.rs"]
#[allow(dead_code, reason = "the benchmarks build their own bodies")]
mod callback;
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::webhook::tower::{CallbackService, Service as _};
use twilio_call_messages::webhook::{
    CallMessageEvent, Deduplication, Receiver, VerifiedCallMessage, WebhookConfig,
};

const TOKEN: &str = "12345678901234567890123456789012";
const PUBLIC: &str = "https://service.example.com";
const PATH: &str = "/twilio/call-messages";
const N: usize = 20_000;
const ROUNDS: usize = 7;

/// The handler every row runs.
async fn handler(event: CallMessageEvent) -> StatusCode {
    black_box(&event);
    StatusCode::OK
}

fn callbacks(round: usize) -> Vec<(HeaderMap, Vec<u8>)> {
    let validator = SignatureValidator::new(TOKEN);
    (0..N)
        .map(|i| {
            let body = serde_json::json!({
                "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "CallSid": "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "Content": r#"{"type":"answer","choice":2,"note":"ok"}"#,
                "ContentType": "application/json",
                "SequenceNumber": "3",
                "Sid": format!("KX{round:08x}{i:024x}"),
                "Timestamp": "Wed, 18 Dec 2019 20:02:01 +0000",
            })
            .to_string()
            .into_bytes();
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_static("service.example.com"));
            let headers = callback::signed(&validator, &format!("{PUBLIC}{PATH}"), headers, &body);
            (headers, body)
        })
        .collect()
}

fn request<B>(headers: &HeaderMap, body: B) -> http::Request<B> {
    let mut request = http::Request::post(PATH).body(body).unwrap();
    *request.headers_mut() = headers.clone();
    request
}

fn config() -> WebhookConfig {
    WebhookConfig::new(SignatureValidator::new(TOKEN)).public_base_url(PUBLIC)
}

fn dedup() -> Deduplication {
    Deduplication::in_memory(Duration::from_secs(600))
}

/// One row: handles every callback once; the time per callback in ns.
type Row = (&'static str, Box<dyn Fn(&[(HeaderMap, Vec<u8>)]) -> f64>);

fn timed(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_nanos() as f64 / N as f64
}

fn main() {
    // One thread: the doors' own work, not the scheduler's parallelism. actix-web runs on its
    // own single-threaded system, as each of its workers does.
    let tokio = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let rows: Vec<Row> = vec![
        (
            "the handler alone, with the event already parsed",
            Box::new(move |calls| {
                let rt = tokio();
                let events: Vec<_> = calls
                    .iter()
                    .map(|(_, body)| CallMessageEvent::from_json(body).unwrap())
                    .collect();
                timed(|| {
                    rt.block_on(async {
                        for event in events {
                            black_box(handler(event).await);
                        }
                    })
                })
            }),
        ),
        (
            "by hand: SignatureValidator::verify + CallMessageEvent::parse + the handler",
            Box::new(move |calls| {
                let rt = tokio();
                let validator = SignatureValidator::new(TOKEN);
                let url = format!("{PUBLIC}{PATH}");
                timed(|| {
                    rt.block_on(async {
                        for (headers, body) in calls {
                            validator.verify(&url, headers, body).unwrap();
                            let event =
                                CallMessageEvent::parse(Some("application/json"), body).unwrap();
                            black_box(handler(event).await);
                        }
                    })
                })
            }),
        ),
        (
            "Receiver::receive",
            Box::new(move |calls| receiver_row(calls, None)),
        ),
        (
            "Receiver::receive, with a MemoryDeliveryStore",
            Box::new(move |calls| receiver_row(calls, Some(dedup()))),
        ),
        (
            "tower: CallbackService",
            Box::new(move |calls| tower_row(calls, None)),
        ),
        (
            "tower: CallbackService, with a MemoryDeliveryStore",
            Box::new(move |calls| tower_row(calls, Some(dedup()))),
        ),
        (
            "axum: Router + VerifiedCallMessage",
            Box::new(move |calls| axum_row(calls, None)),
        ),
        (
            "axum: Router + VerifiedCallMessage + DeliveryLayer (MemoryDeliveryStore)",
            Box::new(move |calls| axum_row(calls, Some(dedup()))),
        ),
        (
            "actix-web: App + VerifiedCallMessage",
            Box::new(move |calls| actix_row(calls, None)),
        ),
        (
            "actix-web: App + VerifiedCallMessage + Deliveries (MemoryDeliveryStore)",
            Box::new(move |calls| actix_row(calls, Some(dedup()))),
        ),
    ];
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for round in 0..ROUNDS {
        let calls = callbacks(round);
        for (i, (_, row)) in rows.iter().enumerate() {
            figures[i].push(row(&calls));
        }
    }
    println!(
        "{N} callbacks per row and round, {ROUNDS} rounds, medians; {}\n",
        if cfg!(debug_assertions) {
            "debug build (use cargo bench)"
        } else {
            "release build"
        }
    );
    println!("| door | ns per callback | over the handler alone | callbacks/s |");
    println!("| --- | --- | --- | --- |");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(figures[0].clone());
    for ((name, _), runs) in rows.iter().zip(figures) {
        let ns = median(runs);
        println!("| {name} | {ns:.0} | +{:.0} | {:.0} |", ns - base, 1e9 / ns);
    }
}

fn receiver_row(calls: &[(HeaderMap, Vec<u8>)], dedup: Option<Deduplication>) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut receiver = Receiver::new(config());
    if let Some(dedup) = dedup {
        receiver = receiver.deduplicate(dedup);
    }
    timed(|| {
        rt.block_on(async {
            for (headers, body) in calls {
                let answer = receiver
                    .receive(request(headers, body.as_slice()), handler)
                    .await;
                assert_eq!(answer.status(), StatusCode::OK);
            }
        })
    })
}

fn tower_row(calls: &[(HeaderMap, Vec<u8>)], dedup: Option<Deduplication>) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut receiver = Receiver::new(config());
    if let Some(dedup) = dedup {
        receiver = receiver.deduplicate(dedup);
    }
    let mut service = CallbackService::new(receiver, handler);
    timed(|| {
        rt.block_on(async {
            for (headers, body) in calls {
                let body = http_body_util::Full::new(bytes::Bytes::from(body.clone()));
                let answer = service.call(request(headers, body)).await.unwrap();
                assert_eq!(answer.status(), StatusCode::OK);
            }
        })
    })
}

fn axum_row(calls: &[(HeaderMap, Vec<u8>)], dedup: Option<Deduplication>) -> f64 {
    use std::sync::Arc;
    use twilio_call_messages::webhook::axum::DeliveryLayer;

    async fn on_message(VerifiedCallMessage(event): VerifiedCallMessage) -> StatusCode {
        handler(event).await
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let routes = axum::Router::new().route(PATH, axum::routing::post(on_message));
    let router = match dedup {
        Some(dedup) => routes.layer(DeliveryLayer::new(dedup)),
        None => routes,
    }
    .with_state(Arc::new(config()));
    timed(|| {
        rt.block_on(async {
            for (headers, body) in calls {
                let body = axum::body::Body::from(body.clone());
                let answer = router.clone().call(request(headers, body)).await.unwrap();
                assert_eq!(answer.status(), StatusCode::OK);
            }
        })
    })
}

fn actix_row(calls: &[(HeaderMap, Vec<u8>)], dedup: Option<Deduplication>) -> f64 {
    use actix_web::middleware::Condition;
    use actix_web::{App, HttpResponse, test, web};
    use twilio_call_messages::webhook::actix::Deliveries;

    async fn on_message(VerifiedCallMessage(event): VerifiedCallMessage) -> HttpResponse {
        black_box(handler(event).await);
        HttpResponse::Ok().finish()
    }
    actix_web::rt::System::new().block_on(async move {
        let enabled = dedup.is_some();
        let deliveries = Deliveries::new(dedup.unwrap_or_else(self::dedup));
        let app = test::init_service(
            App::new().app_data(web::Data::new(config())).service(
                web::resource(PATH)
                    .wrap(Condition::new(enabled, deliveries))
                    .route(web::post().to(on_message)),
            ),
        )
        .await;
        let started = Instant::now();
        for (headers, body) in calls {
            let mut req = test::TestRequest::post().uri(PATH);
            for (name, value) in headers {
                req = req.insert_header((name.as_str(), value.to_str().unwrap()));
            }
            let answer = test::call_service(&app, req.set_payload(body.clone()).to_request()).await;
            assert_eq!(answer.status().as_u16(), 200);
        }
        started.elapsed().as_nanos() as f64 / N as f64
    })
}
