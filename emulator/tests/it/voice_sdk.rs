//! Twilio's Voice JavaScript SDK (`@twilio/voice-sdk` from npm, at [`VOICE_SDK`]) in headless
//! chromium, against the emulator's signaling: it registers with an access token the emulator
//! minted, places a call (the client on the parent leg) and accepts one (the child leg); the
//! service's `send_message` arrives as `messageReceived`, the page's `call.sendMessage` as a
//! signed callback whose `Sid` is the page's `voiceEventSid`; a message to the other leg never
//! reaches the page, one sent `.to_client()` with the other leg's SID does; a bad message type
//! is refused (31210); a token signed by another account's key is refused. Two pages in one
//! conference both receive `broadcast_to_conference`.
//!
//! The SDK is installed at test time into a throwaway directory under the build's temporary
//! directory (never committed). Skipped, loudly, without chromium, chromedriver or npm (or
//! without the registry), unless `CI=true`, where that fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use fantoccini::Client as Browser;
use serde_json::{Value, json};
use twilio_call_messages::{CallSid, Client, SignatureValidator};
use twilio_call_messages_emulator::{CallStatus, ClientLeg, Emulator};

use crate::browser::{npm_package, open_browser_with, start_driver, tools};
use crate::common::{Receiver, verified};

/// The SDK's version, pinned: the signaling protocol is Twilio's internal one.
const VOICE_SDK: &str = "2.18.5";

const WAIT: Duration = Duration::from_secs(20);

const TEST: &str = "the_voice_js_sdk_places_accepts_and_messages";

const CONFERENCE_TEST: &str = "two_voice_js_sdk_clients_in_a_conference_get_its_broadcast";

/// `dist/twilio.min.js` of the pinned SDK, installed from npm on first use; `test` is the one
/// that is skipped without it.
fn voice_sdk(test: &str) -> Option<PathBuf> {
    npm_package(
        test,
        "@twilio/voice-sdk",
        VOICE_SDK,
        "node_modules/@twilio/voice-sdk/dist/twilio.min.js",
    )
}

/// Serves the test page and the SDK's bundle on 127.0.0.1 (a secure context for WebRTC).
async fn serve_page(bundle: &Path) -> String {
    let script = std::fs::read(bundle).unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    include_str!("voice_sdk.html"),
                )
            }),
        )
        .route(
            "/twilio.min.js",
            get(move || {
                let script = script.clone();
                async move { ([(header::CONTENT_TYPE, "text/javascript")], script) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_js_sdk_places_accepts_and_messages() {
    let Some((chromium, chromedriver)) = tools(TEST) else {
        return;
    };
    let Some(bundle) = voice_sdk(TEST) else {
        return;
    };
    let twilio = Emulator::start().await.unwrap();
    let page = serve_page(&bundle).await;
    let (_driver, port) = start_driver(&chromedriver).await;
    let profile = std::env::temp_dir().join(format!("emulator-voice-sdk-{}", std::process::id()));
    // Trust the emulator's certificate by its key (this profile only); a fake microphone.
    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        twilio.certificate_spki_sha256()
    );
    let browser = open_browser_with(
        &chromium,
        port,
        &profile,
        &[
            &trust,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    .await;
    let result = drive(&browser, &twilio, &page).await;
    // (A failed assertion inside prints the page's state itself.)
    if result.is_err()
        && let Ok(state) = browser.execute("return window.state", vec![]).await
    {
        eprintln!("the page's state: {state}");
    }
    let _ = browser.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(e) = result {
        panic!("the Voice JS SDK page: {e}");
    }
}

/// Runs a promise of the page's harness and returns its value.
async fn call(browser: &Browser, js: &str, args: Vec<Value>) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         Promise.resolve().then(() => {js}).then(done, (e) => done({{failed: String(e)}}));"
    );
    let value = browser.execute_async(&script, args).await.unwrap();
    assert!(value.get("failed").is_none(), "{js}: {value}");
    value
}

/// The page's state once `ready` says so.
async fn until(browser: &Browser, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = browser
            .execute("return window.state", vec![])
            .await
            .unwrap();
        if ready(&state) {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited for {what}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(state: &Value, list: &str) -> usize {
    state[list].as_array().map_or(0, Vec::len)
}

async fn drive(
    browser: &Browser,
    twilio: &Emulator,
    page: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let service = Client::builder()
        .account_sid(twilio.account_sid().as_str())
        .auth_token(twilio.auth_token())
        .base_url(twilio.base_url())
        .build()
        .unwrap();
    let receiver = Receiver::start().await;
    let validator = SignatureValidator::new(twilio.auth_token());
    browser.goto(page).await?;

    // Register with a token the emulator minted; the chunderw option points at it.
    let registered = call(
        browser,
        "harness.register(arguments[0], arguments[1])",
        vec![
            json!(twilio.access_token("alice")),
            json!(twilio.chunderw()),
        ],
    )
    .await;
    assert_eq!(registered, "registered as alice");
    assert!(twilio.voice_clients()[0].registered);

    // ---- The page places a call: the client is on the parent leg.
    call(browser, "harness.connect()", vec![]).await;
    let state = until(browser, "the placed call's accept", |s| {
        count(s, "accepted") == 1
    })
    .await;
    let parent: CallSid = state["accepted"][0]["callSid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let placed = twilio.call(&parent).unwrap();
    assert_eq!(placed.client_call_sid, parent);
    assert_eq!(placed.client_leg, Some(ClientLeg::Outgoing));
    assert_eq!(placed.status, CallStatus::InProgress);
    assert_eq!(placed.client_identity.as_deref(), Some("alice"));
    let child = twilio
        .calls()
        .into_iter()
        .find(|c| c.parent_call_sid == Some(parent))
        .unwrap()
        .sid;
    exchange(
        browser, twilio, &service, &receiver, &validator, "outgoing", parent, child,
    )
    .await;
    call(browser, "harness.hangUp('outgoing')", vec![]).await;
    let end = tokio::time::Instant::now() + WAIT;
    while twilio.call(&parent).unwrap().status != CallStatus::Completed {
        assert!(tokio::time::Instant::now() < end, "the page's hangup");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // ---- A call rings the page, which accepts it: the client is on the child leg.
    let rung = twilio.ring_client("alice").unwrap();
    until(browser, "the incoming call", |s| !s["incoming"].is_null()).await;
    call(browser, "harness.accept()", vec![]).await;
    let state = until(browser, "the accepted call", |s| count(s, "accepted") == 2).await;
    assert_eq!(state["accepted"][1]["callSid"], rung.child.as_str());
    let end = tokio::time::Instant::now() + WAIT;
    while twilio.call(&rung.child).unwrap().status != CallStatus::InProgress {
        assert!(tokio::time::Instant::now() < end, "the page's answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    exchange(
        browser,
        twilio,
        &service,
        &receiver,
        &validator,
        "incoming",
        rung.child,
        rung.parent,
    )
    .await;
    // `.to_client()` with the parent's SID, as a service that only knows the call it made has:
    // the SDK finds the child leg the page accepted on, and the page gets the message.
    let state = browser.execute("return window.state", vec![]).await?;
    let before = count(&state, "received");
    let sent = service
        .send_message(rung.parent, &json!({"hint": "found the client's leg"}))
        .to_client()
        .await
        .unwrap();
    assert_eq!(sent.call_sid, rung.child);
    assert_eq!(sent.client_identity.as_deref(), Some("alice"));
    let state = until(browser, "the message sent to_client()", |s| {
        count(s, "received") == before + 1
    })
    .await;
    assert_eq!(
        state["received"][before]["voiceEventSid"],
        sent.sid.as_str()
    );
    assert_eq!(
        state["received"][before]["content"],
        json!({"hint": "found the client's leg"})
    );
    // The service's side ends the call: the page hears it.
    twilio
        .set_call_status(&rung.parent, CallStatus::Completed)
        .unwrap();
    until(browser, "the hangup", |s| {
        s["ended"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["callSid"] == rung.child.as_str()))
    })
    .await;

    // ---- A token signed with another account's key is refused (31204, the SDK's 20101).
    let other = Emulator::start().await.unwrap();
    call(
        browser,
        "harness.badToken(arguments[0], arguments[1])",
        vec![
            json!(other.access_token("mallory")),
            json!(twilio.chunderw()),
        ],
    )
    .await;
    let state = until(browser, "the refused token", |s| {
        s["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["bad"] == true))
    })
    .await;
    let refused = state["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["bad"] == true)
        .unwrap();
    assert_eq!(refused["code"], 20101, "AccessTokenInvalid: {refused}");
    assert_eq!(refused["original"], 31204);
    assert!(
        !twilio
            .voice_clients()
            .iter()
            .any(|c| c.identity == "mallory")
    );
    Ok(())
}

/// Messages both ways on the page's call `name` (the client on `own`; `other` is the other leg).
#[allow(clippy::too_many_arguments)]
async fn exchange(
    browser: &Browser,
    twilio: &Emulator,
    service: &Client,
    receiver: &Receiver,
    validator: &SignatureValidator,
    name: &str,
    own: CallSid,
    other: CallSid,
) {
    let received_before = count(
        &browser
            .execute("return window.state", vec![])
            .await
            .unwrap(),
        "received",
    );

    // To the other leg first: Twilio answers 201, the SDK drops it. Then to the client's own:
    // when that one arrives, the first would have arrived before it.
    service
        .send_message(other, &json!({"hint": "to the other leg"}))
        .await
        .unwrap();
    let sent = service
        .send_message(own, &json!({"hint": "offer the upgrade", "leg": name}))
        .await
        .unwrap();
    let state = until(browser, "messageReceived", |s| {
        count(s, "received") == received_before + 1
    })
    .await;
    let got = &state["received"][received_before];
    assert_eq!(got["name"], name);
    assert_eq!(
        got["content"],
        json!({"hint": "offer the upgrade", "leg": name})
    );
    assert_eq!(got["contentType"], "application/json");
    assert_eq!(got["messageType"], "user-defined-message");
    assert_eq!(got["voiceEventSid"], sent.sid.as_str());
    assert_eq!(twilio.dropped_messages(&other).len(), 1);

    // The page sends: `messageSent`, then the signed callback with its voiceEventSid as `Sid`.
    service
        .subscribe(own, &receiver.url(&format!("/{name}")))
        .await
        .unwrap();
    let sent_before = count(&state, "sent");
    let voice_event_sid = call(
        browser,
        "harness.send(arguments[0], arguments[1])",
        vec![json!(name), json!({"clicked": "upgrade", "leg": name})],
    )
    .await;
    let state = until(browser, "messageSent", |s| {
        count(s, "sent") == sent_before + 1
    })
    .await;
    assert_eq!(state["sent"][sent_before]["voiceEventSid"], voice_event_sid);
    twilio.settled().await;
    let callback = receiver
        .received()
        .into_iter()
        .find(|r| r.uri == format!("/{name}"))
        .expect("the callback of the page's message");
    let event = verified(validator, receiver, &callback);
    assert_eq!(
        event.message_sid.as_str(),
        voice_event_sid.as_str().unwrap()
    );
    assert_eq!(event.call_sid, own);
    assert_eq!(
        serde_json::from_str::<Value>(&event.content).unwrap(),
        json!({"clicked": "upgrade", "leg": name})
    );

    // A type Twilio does not know: the call's `error`, 31210; nothing posted.
    let errors_before = count(&state, "callErrors");
    call(
        browser,
        "harness.send(arguments[0], {a: 1}, 'not-a-valid-message-type')",
        vec![json!(name)],
    )
    .await;
    let state = until(browser, "the call's error", |s| {
        count(s, "callErrors") == errors_before + 1
    })
    .await;
    assert_eq!(state["callErrors"][errors_before]["code"], 31210);
    assert_eq!(twilio.client_messages(&own).len(), 1);
}

/// Two pages (two Voice SDK clients, `carol` and `dave`) are rung into one conference and
/// accept; a phone joins too. `broadcast_to_conference` reaches both pages, one result per
/// participant in Twilio's order, the phone its own `Error::Leg`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_voice_js_sdk_clients_in_a_conference_get_its_broadcast() {
    let Some((chromium, chromedriver)) = tools(CONFERENCE_TEST) else {
        return;
    };
    let Some(bundle) = voice_sdk(CONFERENCE_TEST) else {
        return;
    };
    let twilio = Emulator::start().await.unwrap();
    let page = serve_page(&bundle).await;
    let (_driver, port) = start_driver(&chromedriver).await;
    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        twilio.certificate_spki_sha256()
    );
    let args = [
        trust.as_str(),
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ];
    let mut browsers = Vec::new();
    let mut profiles = Vec::new();
    for name in ["carol", "dave"] {
        let profile =
            std::env::temp_dir().join(format!("emulator-voice-sdk-{name}-{}", std::process::id()));
        browsers.push(open_browser_with(&chromium, port, &profile, &args).await);
        profiles.push(profile);
    }
    let result = conference(&browsers, &twilio, &page).await;
    for (browser, profile) in browsers.into_iter().zip(&profiles) {
        if result.is_err()
            && let Ok(state) = browser.execute("return window.state", vec![]).await
        {
            eprintln!("a page's state: {state}");
        }
        let _ = browser.close().await;
        let _ = std::fs::remove_dir_all(profile);
    }
    if let Err(e) = result {
        panic!("the Voice JS SDK pages: {e}");
    }
}

async fn conference(
    browsers: &[Browser],
    twilio: &Emulator,
    page: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let service = Client::builder()
        .account_sid(twilio.account_sid().as_str())
        .auth_token(twilio.auth_token())
        .base_url(twilio.base_url())
        .build()
        .unwrap();
    let conference = twilio.create_conference("stand-up");
    let mut legs = Vec::new();
    for (browser, name) in browsers.iter().zip(["carol", "dave"]) {
        browser.goto(page).await?;
        let registered = call(
            browser,
            "harness.register(arguments[0], arguments[1])",
            vec![json!(twilio.access_token(name)), json!(twilio.chunderw())],
        )
        .await;
        assert_eq!(registered, format!("registered as {name}"));
        let leg = twilio
            .ring_client_into_conference(&conference, name)
            .unwrap();
        until(browser, "the conference's call", |s| {
            !s["incoming"].is_null()
        })
        .await;
        call(browser, "harness.accept()", vec![]).await;
        until(browser, "the accepted call", |s| count(s, "accepted") == 1).await;
        let end = tokio::time::Instant::now() + WAIT;
        while twilio.call(&leg).unwrap().status != CallStatus::InProgress {
            assert!(tokio::time::Instant::now() < end, "{name}'s answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        legs.push(leg);
    }
    let phone = twilio
        .add_participant(
            &conference,
            twilio_call_messages_emulator::Endpoint::Phone("+15005550006".into()),
        )
        .unwrap();

    let results = service
        .broadcast_to_conference(conference.as_str(), &json!({"agenda": "item 3"}))
        .await
        .unwrap();
    let order: Vec<Option<CallSid>> = results.iter().map(|r| r.call_sid).collect();
    assert_eq!(order, [Some(legs[0]), Some(legs[1]), Some(phone)]);
    for (result, name) in results.iter().zip(["carol", "dave"]) {
        let message = result.result.as_ref().unwrap();
        assert_eq!(message.client_identity.as_deref(), Some(name));
    }
    assert!(matches!(
        results[2].result,
        Err(twilio_call_messages::Error::Leg(_))
    ));
    for (browser, result) in browsers.iter().zip(&results) {
        let state = until(browser, "the conference's message", |s| {
            count(s, "received") == 1
        })
        .await;
        let got = &state["received"][0];
        assert_eq!(got["content"], json!({"agenda": "item 3"}));
        assert_eq!(
            got["voiceEventSid"],
            result.result.as_ref().unwrap().sid.as_str()
        );
    }
    Ok(())
}
