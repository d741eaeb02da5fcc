//! The REST API, rule by rule: each test names the rule and its source (sections of
//! `docs/twilio-behaviour.md`, which name the public sources; "upstream" is Twilio's OpenAPI
//! description, excerpt in `openapi/upstream/`).

use std::time::Duration;

use serde_json::{Value, json};
use twilio_call_messages::{ApiKeySid, CallSid, Client, reqwest};
use twilio_call_messages_emulator::{CallStatus, Emulator, FaultKind, Faults};

use crate::common;

fn messages_url(e: &Emulator, call: &CallSid) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}/Calls/{call}/UserDefinedMessages.json",
        e.base_url(),
        e.account_sid()
    )
}

fn subscriptions_url(e: &Emulator, call: &CallSid) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}/Calls/{call}/UserDefinedMessageSubscriptions.json",
        e.base_url(),
        e.account_sid()
    )
}

async fn post(
    e: &Emulator,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = common::http()
        .post(url)
        .basic_auth(e.account_sid(), Some(e.auth_token()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn assert_twilio_error(body: &Value, status: u16, code: u64) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}"),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn is_rfc2822(date: &str) -> bool {
    twilio_call_messages::time::OffsetDateTime::parse(
        date,
        &twilio_call_messages::time::format_description::well_known::Rfc2822,
    )
    .is_ok()
        && date.ends_with("+0000")
}

/// 201 bodies as upstream's examples: message without `uri`, subscription with it; RFC 2822
/// dates; `Twilio-Request-Id` on every answer; the client received the message.
#[tokio::test]
async fn created_bodies_are_twilios() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    let (status, headers, body) =
        post(&e, &messages_url(&e, &call), &[("Content", r#"{"a":1}"#)]).await;
    assert_eq!(status, 201);
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{body}");
    assert_eq!(body["account_sid"], e.account_sid().as_str());
    assert_eq!(body["call_sid"], call.as_str());
    assert!(body["sid"].as_str().unwrap().starts_with("KX"));
    assert!(is_rfc2822(body["date_created"].as_str().unwrap()), "{body}");
    let request_id = headers["twilio-request-id"].to_str().unwrap();
    assert!(
        request_id.starts_with("RQ") && request_id.len() == 34,
        "{request_id}"
    );

    let received = e.client_received(&call);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].sid.as_str(), body["sid"]);
    assert_eq!(received[0].content, json!({"a": 1}));
    assert_eq!(received[0].content_type, "application/json");
    assert_eq!(received[0].message_type, "user-defined-message");
    assert_eq!(received[0].voice_event_sid, received[0].sid);

    let (status, _, body) = post(
        &e,
        &subscriptions_url(&e, &call),
        &[("Callback", "https://example.com/hook")],
    )
    .await;
    assert_eq!(status, 201);
    let sid = body["sid"].as_str().unwrap();
    assert!(sid.starts_with("ZY"));
    assert_eq!(
        body["uri"],
        format!(
            "/2010-04-01/Accounts/{}/Calls/{call}/UserDefinedMessageSubscriptions/{sid}.json",
            e.account_sid()
        )
    );
    assert!(is_rfc2822(body["date_created"].as_str().unwrap()));
    assert_eq!(e.subscriptions(&call)[0].method, "POST", "Twilio's default");

    // DELETE: 204, empty; a second time: 20404.
    let url = format!("{}{}", e.base_url(), body["uri"].as_str().unwrap());
    let delete = || {
        common::http()
            .delete(&url)
            .basic_auth(e.account_sid(), Some(e.auth_token()))
            .send()
    };
    let first = delete().await.unwrap();
    assert_eq!(first.status(), 204);
    assert!(first.bytes().await.unwrap().is_empty());
    let second = delete().await.unwrap();
    assert_eq!(second.status(), 404);
    assert_twilio_error(&second.json().await.unwrap(), 404, 20404);
    assert!(e.subscriptions(&call).is_empty());
}

/// Messages reach the client in the order Twilio accepted them.
#[tokio::test]
async fn the_client_receives_in_order() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    for n in 0..5 {
        post(
            &e,
            &messages_url(&e, &call),
            &[("Content", &json!({"n": n}).to_string())],
        )
        .await;
    }
    let got: Vec<Value> = e
        .client_received(&call)
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(got, (0..5).map(|n| json!({"n": n})).collect::<Vec<_>>());
}

/// 20003 / 401 for bad credentials; an API key of the account authenticates
/// (`docs/twilio-behaviour.md#authentication`).
#[tokio::test]
async fn credentials() {
    let key: ApiKeySid = format!("SK{:032x}", 9).parse().unwrap();
    let e = Emulator::builder()
        .api_key(key, "key-secret")
        .start()
        .await
        .unwrap();
    let call = e.create_call();
    let url = messages_url(&e, &call);
    let send = |user: String, password: Option<&'static str>| {
        let request = common::http().post(&url).form(&[("Content", "{}")]);
        let request = match password {
            Some(p) => request.basic_auth(user, Some(p)),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    for response in [
        send(e.account_sid().to_string(), Some("wrong")).await,
        send(e.account_sid().to_string(), None).await,
        send(key.to_string(), Some("wrong")).await,
    ] {
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        assert_twilio_error(&response.json().await.unwrap(), 401, 20003);
    }
    assert_eq!(
        send(key.to_string(), Some("key-secret")).await.status(),
        201
    );

    // Through the SDK, with the API key.
    let client = Client::builder()
        .account_sid(e.account_sid().as_str())
        .api_key(key, "key-secret")
        .base_url(e.base_url())
        .build()
        .unwrap();
    client
        .send_message(call, &json!({"via": "api key"}))
        .await
        .unwrap();
    assert_eq!(e.client_received(&call).len(), 2);
    assert_eq!(e.stats().rejected, 3);
}

/// 20404 / 404 for an unknown call, an unknown path, another account's call with this
/// account's path shape (ASSUMPTION: 20003).
#[tokio::test]
async fn unknown_things() {
    let e = Emulator::start().await.unwrap();
    let unknown: CallSid = format!("CA{:032x}", 1).parse().unwrap();
    let (status, _, body) = post(&e, &messages_url(&e, &unknown), &[("Content", "{}")]).await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
    let (status, _, body) = post(
        &e,
        &subscriptions_url(&e, &unknown),
        &[("Callback", "https://example.com")],
    )
    .await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
    let (status, _, body) = post(
        &e,
        &format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            e.base_url(),
            e.account_sid()
        ),
        &[],
    )
    .await;
    assert_eq!((status, body["code"].clone()), (404, json!(20404)));
    let other = format!(
        "{}/2010-04-01/Accounts/AC{:032x}/Calls/{unknown}/UserDefinedMessages.json",
        e.base_url(),
        7
    );
    let (status, _, body) = post(&e, &other, &[("Content", "{}")]).await;
    assert_eq!(status, 401);
    assert_twilio_error(&body, 401, 20003);
    // A method the resource does not have.
    let call = e.create_call();
    let response = common::http()
        .get(messages_url(&e, &call))
        .basic_auth(e.account_sid(), Some(e.auth_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

/// 21220 / 400 for a call that is not `in-progress` or `ringing` (ASSUMPTION on the status
/// and code: `docs/twilio-behaviour.md#errors`); `ringing` is active
/// (`docs/twilio-behaviour.md#active-calls-and-call-legs`).
#[tokio::test]
async fn only_active_calls_take_messages_and_subscriptions() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    e.set_call_status(&call, CallStatus::Ringing).unwrap();
    let (status, _, _) = post(&e, &messages_url(&e, &call), &[("Content", "{}")]).await;
    assert_eq!(status, 201, "ringing is active");
    for ended in [
        CallStatus::Completed,
        CallStatus::Queued,
        CallStatus::Canceled,
    ] {
        e.set_call_status(&call, ended).unwrap();
        let (status, _, body) = post(&e, &messages_url(&e, &call), &[("Content", "{}")]).await;
        assert_eq!(status, 400, "{ended}");
        assert_twilio_error(&body, 400, 21220);
        let (status, _, body) = post(
            &e,
            &subscriptions_url(&e, &call),
            &[("Callback", "https://example.com/x")],
        )
        .await;
        assert_eq!(status, 400);
        assert_twilio_error(&body, 400, 21220);
    }
    assert_eq!(e.client_received(&call).len(), 1);

    // Through the SDK: the typed error carries the code.
    let client = sdk(&e);
    let err = client.send_message(call, &json!({})).await.unwrap_err();
    assert_eq!(err.code(), Some(21220), "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
}

fn sdk(e: &Emulator) -> Client {
    Client::builder()
        .account_sid(e.account_sid().as_str())
        .auth_token(e.auth_token())
        .base_url(e.base_url())
        .build()
        .unwrap()
}

/// A missing `Content` (upstream: required), content that is not JSON (32702) or longer than
/// 10,000 characters (32703): 400 with the code (ASSUMPTION: synchronous errors).
#[tokio::test]
async fn content_rules() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    let url = messages_url(&e, &call);
    let (status, _, body) = post(&e, &url, &[]).await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 20001);
    assert!(body["message"].as_str().unwrap().contains("Content"));
    let (status, _, body) = post(&e, &url, &[("Content", "not json")]).await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 32702);
    // 10,000 characters exactly is accepted; one more is not (characters, not bytes).
    let fits = format!("\"{}\"", "é".repeat(9_998));
    assert_eq!(fits.chars().count(), 10_000);
    assert_eq!(post(&e, &url, &[("Content", &fits)]).await.0, 201);
    let long = format!("\"{}\"", "é".repeat(9_999));
    let (status, _, body) = post(&e, &url, &[("Content", &long)]).await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 32703);
    assert_eq!(e.client_received(&call).len(), 1);
}

/// `Callback` must be an absolute URL with a valid host name ("underscores are not
/// permitted", upstream); `Method` is GET or POST.
#[tokio::test]
async fn callback_rules() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    let url = subscriptions_url(&e, &call);
    let (status, _, body) = post(&e, &url, &[]).await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 20001);
    for bad in [
        "/relative",
        "ftp://example.com/x",
        "https://my_host.example.com/x",
        "https://-x.example.com/",
        "not a url",
    ] {
        let (status, _, body) = post(&e, &url, &[("Callback", bad)]).await;
        assert_eq!(status, 400, "{bad}");
        assert_twilio_error(&body, 400, 21502);
    }
    let (status, _, body) = post(
        &e,
        &url,
        &[("Callback", "https://example.com/x"), ("Method", "PUT")],
    )
    .await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 20001);
    for good in [
        "https://example.com/x?y=1#ct=1000",
        "http://127.0.0.1:9/x",
        "http://emulator:4010/hook",
    ] {
        let (status, _, _) = post(&e, &url, &[("Callback", good), ("Method", "GET")]).await;
        assert_eq!(status, 201, "{good}");
    }
    assert_eq!(e.subscriptions(&call).len(), 3);
    assert_eq!(e.subscriptions(&call)[0].method, "GET");
}

/// A repeated `IdempotencyKey` returns the first result and records nothing twice, even
/// after the call ended; a key expires after the window (a setting).
#[tokio::test]
async fn idempotency_keys_replay_the_first_result() {
    // Long enough for the requests below on a loaded machine (300 ms was not), short enough
    // to wait out at the end.
    let window = Duration::from_secs(2);
    let e = Emulator::builder()
        .idempotency_window(window)
        .start()
        .await
        .unwrap();
    let call = e.create_call();
    let url = messages_url(&e, &call);
    let form = [("Content", r#"{"once":true}"#), ("IdempotencyKey", "k-1")];
    let (_, _, first) = post(&e, &url, &form).await;
    let (status, _, again) = post(&e, &url, &form).await;
    assert_eq!(status, 201);
    assert_eq!(first, again, "the same message, the same date");
    e.set_call_status(&call, CallStatus::Completed).unwrap();
    let (status, _, after_end) = post(&e, &url, &form).await;
    assert_eq!((status, &after_end), (201, &first));
    assert_eq!(e.client_received(&call).len(), 1, "delivered once");
    assert_eq!(
        e.client_received(&call)[0].idempotency_key.as_deref(),
        Some("k-1")
    );
    let stats = e.stats();
    assert_eq!((stats.messages, stats.replays), (1, 2));
    assert_eq!(e.requests_per_key()["k-1"], 3);
    assert_eq!(e.succeeded_per_key()["k-1"], 3);

    // The same key on subscriptions is another operation.
    e.set_call_status(&call, CallStatus::InProgress).unwrap();
    let sub = [
        ("Callback", "https://example.com/a"),
        ("IdempotencyKey", "k-1"),
    ];
    let (s1, _, b1) = post(&e, &subscriptions_url(&e, &call), &sub).await;
    let (s2, _, b2) = post(&e, &subscriptions_url(&e, &call), &sub).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(b1, b2);
    assert_eq!(e.subscriptions(&call).len(), 1);

    // After the window, the key is new again.
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    let (_, _, later) = post(&e, &url, &form).await;
    assert_ne!(later["sid"], first["sid"]);
    assert_eq!(e.client_received(&call).len(), 2);
}

/// The SDK's own retries ride on the replay: a reset after recording is retried with the
/// same key and the message is recorded once.
#[tokio::test]
async fn a_retry_after_a_reset_records_once() {
    let e = Emulator::builder()
        .faults(Faults::none().with(FaultKind::ResetAfter, 1.0))
        .start()
        .await
        .unwrap();
    let call = e.create_call();
    let client = sdk(&e);
    let sending = tokio::spawn({
        let client = client.clone();
        async move { client.send_message(call, &json!({"x": 1})).await }
    });
    // Let the first attempt through the fault, then heal.
    while e.stats().requests < 1 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    e.set_faults(Faults::none()).unwrap();
    let message = sending.await.unwrap().unwrap();
    assert_eq!(e.client_received(&call).len(), 1);
    assert_eq!(e.client_received(&call)[0].sid, message.sid);
    assert!(e.stats().replays >= 1);
    assert!(e.requests_per_key()[&message.idempotency_key] >= 2);
}

/// The account's concurrency limit: 429 / 20429 with `Twilio-Concurrent-Requests` beyond N in
/// flight, and a throttled request is never processed (Twilio's error page 20429).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_throttles_without_processing() {
    let e = Emulator::builder()
        .concurrency_limit(2)
        // Long enough that the third request arrives while the first two are still being
        // served, even on a loaded 2-core machine (400 ms was not, under load).
        .latency(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let call = e.create_call();
    let url = messages_url(&e, &call);
    let send = |key: &'static str| {
        let request = common::http()
            .post(&url)
            .basic_auth(e.account_sid(), Some(e.auth_token()))
            .form(&[("Content", "{}"), ("IdempotencyKey", key)]);
        async move { request.send().await.unwrap() }
    };
    let (a, b, c) = tokio::join!(send("a"), send("b"), async {
        while e.stats().peak_in_flight < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        send("c").await
    });
    assert_eq!(c.status(), 429);
    assert_eq!(c.headers()["twilio-concurrent-requests"], "2");
    assert!(c.headers().contains_key("twilio-request-id"));
    assert_twilio_error(&c.json().await.unwrap(), 429, 20429);
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let stats = e.stats();
    assert_eq!(
        (stats.throttled, stats.messages, stats.peak_in_flight),
        (1, 2, 2)
    );
    let keys: Vec<_> = e
        .client_received(&call)
        .into_iter()
        .filter_map(|m| m.idempotency_key)
        .collect();
    assert!(
        !keys.contains(&"c".to_owned()),
        "throttled, so never processed"
    );
    assert_eq!(e.requests_per_key()["c"], 1);
    assert!(!e.succeeded_per_key().contains_key("c"));
}

/// Faults before processing record nothing; faults after it record the message; each kind
/// looks as documented; the same seed gives the same faults.
#[tokio::test]
async fn faults_by_kind() {
    let e = Emulator::start().await.unwrap();
    let call = e.create_call();
    let url = messages_url(&e, &call);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let send = |key: String| {
        http.post(&url)
            .basic_auth(e.account_sid(), Some(e.auth_token()))
            .form(&[("Content", "{}".to_owned()), ("IdempotencyKey", key)])
            .send()
    };
    for kind in FaultKind::ALL {
        e.set_faults(
            Faults::none()
                .with(kind, 1.0)
                .stall(Duration::from_millis(800)),
        )
        .unwrap();
        let before = e.stats().messages;
        let key = format!("fault-{}", kind.name());
        let result = send(key.clone()).await;
        let recorded = e.stats().messages - before;
        assert_eq!(recorded, u64::from(kind.after_processing()), "{kind:?}");
        match kind {
            FaultKind::Reset | FaultKind::ResetAfter => assert!(result.is_err(), "{kind:?}"),
            FaultKind::Stall | FaultKind::StallAfter => {
                assert!(result.unwrap_err().is_timeout(), "{kind:?}")
            }
            FaultKind::TruncatedAfter => {
                let outcome = match result {
                    Ok(response) => response.bytes().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                assert!(outcome.is_err(), "half a body then a reset");
            }
            FaultKind::Throttle => {
                let response = result.unwrap();
                assert_eq!(response.status(), 429);
                assert_twilio_error(&response.json().await.unwrap(), 429, 20429);
            }
            FaultKind::ErrorAfter => {
                let response = result.unwrap();
                assert_eq!(response.status(), 500);
                assert_twilio_error(&response.json().await.unwrap(), 500, 20500);
            }
            other => {
                let response = result.unwrap();
                let expected = match other {
                    FaultKind::Unavailable => 503,
                    FaultKind::GatewayTimeoutAfter => 504,
                    _ => 502,
                };
                assert_eq!(response.status(), expected, "{other:?}");
                assert_eq!(response.headers()["content-type"], "text/html");
                let body = response.bytes().await.unwrap();
                if other == FaultKind::OversizedBadGateway {
                    assert!(body.len() >= 1024 * 1024);
                }
            }
        }
    }
    assert_eq!(e.stats().faults, FaultKind::ALL.len() as u64);

    // Seeded: the same seed, the same sequence of outcomes.
    let run = |seed: u64| {
        let e = e.clone();
        let send = &send;
        async move {
            e.set_faults(Faults::none().with(FaultKind::BadGateway, 0.5).seed(seed))
                .unwrap();
            let mut statuses = Vec::new();
            for n in 0..20 {
                statuses.push(
                    send(format!("seed-{seed}-{n}-{}", fastrand_free(n)))
                        .await
                        .unwrap()
                        .status()
                        .as_u16(),
                );
            }
            statuses
        }
    };
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    assert!(first.contains(&502) && first.contains(&201), "{first:?}");
    assert_ne!(first, run(43).await);
}

/// A fresh key for each request (the keys do not matter to the rolls).
fn fastrand_free(n: u64) -> u64 {
    n.wrapping_mul(0x9e37_79b9) ^ 0x5bd1
}

/// Out-of-range fault settings are refused.
#[tokio::test]
async fn fault_settings_are_checked() {
    let e = Emulator::start().await.unwrap();
    assert!(
        e.set_faults(Faults::none().with(FaultKind::Reset, 1.5))
            .is_err()
    );
    assert!(
        e.set_faults(
            Faults::none()
                .with(FaultKind::Reset, 0.6)
                .with(FaultKind::Stall, 0.6)
        )
        .is_err()
    );
    assert!(
        Emulator::builder()
            .faults(Faults::none().with(FaultKind::Reset, -0.1))
            .start()
            .await
            .is_err()
    );
    assert!(Emulator::builder().sequence_start(2).start().await.is_err());
}

/// Secrets never print.
#[tokio::test]
async fn debug_output_holds_no_secret() {
    let e = Emulator::builder()
        .auth_token("very-secret-token")
        .start()
        .await
        .unwrap();
    assert!(!format!("{e:?}").contains("very-secret-token"));
    let builder = Emulator::builder().auth_token("very-secret-token");
    assert!(!format!("{builder:?}").contains("very-secret-token"));
    let signing = twilio_call_messages_emulator::Signing::SharedKey {
        id: "k".into(),
        secret: "shared-secret".into(),
    };
    assert!(!format!("{signing:?}").contains("shared-secret"));
}

/// Requests with the same key at once (a retry racing its first attempt) record one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_at_once_records_once() {
    let e = Emulator::builder()
        .latency(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let call = e.create_call();
    let url = messages_url(&e, &call);
    let form = [("Content", r#"{"race":1}"#), ("IdempotencyKey", "racing")];
    let answers = futures_join_all((0..6).map(|_| {
        let (e, url) = (e.clone(), url.clone());
        async move { post(&e, &url, &form).await }
    }))
    .await;
    let sids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert_eq!(*status, 201);
            body["sid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(sids.len(), 1, "one message");
    assert_eq!(e.client_received(&call).len(), 1);
    assert_eq!((e.stats().messages, e.stats().replays), (1, 5));
}

/// Runs futures at once (tokio only, no futures crate).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Every refused request is listed with what was answered: Twilio's status, code and message,
/// a proxy's page, or the fault; a created answer that a fault cut is no refusal.
#[tokio::test]
async fn refusals_are_listed_with_what_was_answered() {
    let e = Emulator::start().await.unwrap();
    let (call, ended) = (e.create_call(), e.create_call());
    e.set_call_status(&ended, CallStatus::Completed).unwrap();
    let unknown: CallSid = "CA00000000000000000000000000000000".parse().unwrap();
    let content = [("Content", "{}")];
    post(&e, &messages_url(&e, &unknown), &content).await;
    post(&e, &messages_url(&e, &call), &[("Content", "not json")]).await;
    post(&e, &messages_url(&e, &ended), &content).await;
    e.set_faults(Faults::none().with(FaultKind::BadGateway, 1.0))
        .unwrap();
    post(&e, &messages_url(&e, &call), &content).await;
    e.set_faults(Faults::none().with(FaultKind::TruncatedAfter, 1.0))
        .unwrap();
    post(&e, &messages_url(&e, &call), &content).await;
    post(&e, &messages_url(&e, &ended), &content).await;

    let refused: Vec<_> = e
        .refused_requests()
        .into_iter()
        .map(|r| (r.call_sid, r.status, r.code, r.message))
        .collect();
    let unknown_path = messages_url(&e, &unknown).replace(e.base_url(), "");
    assert_eq!(
        refused,
        [
            (
                Some(unknown),
                Some(404),
                Some(20404),
                format!("The requested resource {unknown_path} was not found")
            ),
            (
                Some(call),
                Some(400),
                Some(32702),
                "Content is not valid JSON".into()
            ),
            (
                Some(ended),
                Some(400),
                Some(21220),
                "Invalid call state: you attempted a realtime operation on a Call that was not in-progress (it is completed)".into()
            ),
            (
                Some(call),
                Some(502),
                None,
                "HTTP 502 (a proxy's page)".into()
            ),
            (
                Some(ended),
                Some(400),
                None,
                "fault: the answer cut in half, then a reset".into()
            ),
        ]
    );
    assert_eq!(
        e.client_received(&call).len(),
        1,
        "the cut 201 was recorded"
    );
}
