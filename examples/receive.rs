//! Receives call messages: an axum service whose handler only ever sees callbacks that carry a
//! valid `X-Twilio-Signature`.
//!
//! ```text
//! cargo run --example receive            # self-test: posts signed and forged events to itself
//! cargo run --example receive -- serve   # keeps serving until stopped (Ctrl-C)
//! ```
//!
//! The service listens on 127.0.0.1 on an ephemeral port. It verifies with `TWILIO_AUTH_TOKEN`
//! (a made-up token when unset) against `PUBLIC_BASE_URL`, the scheme and host Twilio calls
//! (e.g. your tunnel's `https://….example`; the local address when unset).
//!
//! The self-test posts the callbacks Twilio sends (a form, a JSON body signed as parameters, a
//! JSON body with `bodySHA256`, one signed with a shared key) and a forged one (signed with
//! another token), prints each status, and exits 0 only if the four genuine ones were accepted
//! (200, 200, 200, 200) and the forged one rejected (403) without reaching the handler.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::routing::post;
use serde_json::json;
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::reqwest;
use twilio_call_messages::webhook::axum::{VerifiedCallMessage, WebhookConfig};

const PATH: &str = "/twilio/call-messages";
const EXAMPLE_TOKEN: &str = "example-auth-token";
/// A shared key as the Webhooks configuration API would name it (`TWILIO_SHARED_KEY_ID` /
/// `TWILIO_SHARED_KEY_SECRET` override them).
const SHARED_KEY_ID: &str = "webhooks_sharedkey_example";
const SHARED_KEY_SECRET: &str = "example-shared-key-secret";

/// How many events reached the handler.
static HANDLED: AtomicUsize = AtomicUsize::new(0);

async fn on_message(VerifiedCallMessage(event): VerifiedCallMessage) -> &'static str {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    // Debug shows the content's length only: message content is user data.
    println!("  handler: accepted {event:?}");
    "ok"
}

#[tokio::main]
async fn main() -> ExitCode {
    let serve = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("serve") => true,
        Some(other) => {
            eprintln!("unknown argument {other:?}; usage: receive [serve]");
            return ExitCode::FAILURE;
        }
    };
    let token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_else(|_| EXAMPLE_TOKEN.to_owned());

    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(e) => {
            eprintln!("cannot read the local address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let public = std::env::var("PUBLIC_BASE_URL").map_or_else(
        |_| local.clone(),
        |url| url.trim_end_matches('/').to_owned(),
    );
    let shared_key_id =
        std::env::var("TWILIO_SHARED_KEY_ID").unwrap_or_else(|_| SHARED_KEY_ID.to_owned());
    let shared_key_secret =
        std::env::var("TWILIO_SHARED_KEY_SECRET").unwrap_or_else(|_| SHARED_KEY_SECRET.to_owned());
    // What Twilio holds and signs with: the auth token, and the shared key's secret.
    let validator = SignatureValidator::new(token.clone())
        .with_shared_key(shared_key_id.clone(), shared_key_secret);
    let config = WebhookConfig::new(validator.clone()).public_base_url(&public);
    let app = Router::new()
        .route(PATH, post(on_message))
        .with_state(Arc::new(config));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    println!("listening on {local}{PATH}");
    println!("verifying signatures for {public}{PATH}");
    if serve {
        return match server.await {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                eprintln!("server failed: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("server task failed: {e}");
                ExitCode::FAILURE
            }
        };
    }

    match self_test(&validator, &shared_key_id, &local, &public).await {
        Ok(true) => {
            println!("ok: signed events accepted, forged event rejected");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("unexpected outcome");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("request failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Posts five callbacks the way Twilio would (to the local address, signed for the public URL):
/// a form, a JSON body signed as parameters, a JSON body with `bodySHA256`, one signed with a
/// shared key, and a forged one. Returns whether each got the expected status and only the
/// genuine ones were handled.
async fn self_test(
    twilio: &SignatureValidator,
    shared_key_id: &str,
    local: &str,
    public: &str,
) -> Result<bool, reqwest::Error> {
    // reqwest needs a process-wide rustls provider with the crate's default features; one
    // already installed wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Stay on the loopback interface whatever proxy the environment names.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let forger = SignatureValidator::new("not-the-auth-token");
    // What Twilio's Voice SDK tests see: every field a string.
    let event = json!({
        "ContentType": "application/json",
        "Content": "{\"step\":2,\"answer\":\"yes\"}",
        "SequenceNumber": "1",
        "CallSid": "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "Timestamp": "Wed, 18 Dec 2019 20:02:01 +0000",
        "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Sid": "KXcccccccccccccccccccccccccccccccc",
    });
    let json_body = event.to_string().into_bytes();
    let form: Vec<(String, String)> = event
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect();
    let form_body = serde_urlencoded::to_string(&form)
        .unwrap_or_default()
        .into_bytes();
    let url = format!("{public}{PATH}");
    // The path and query Twilio requests are the same locally and publicly; only the base differs.
    let to_local =
        |signed_url: &str| format!("{local}{}", signed_url.strip_prefix(public).unwrap_or(PATH));

    let mut ok = true;
    let mut cases: Vec<(&str, String, HeaderMap, Vec<u8>, u16)> = Vec::new();

    let mut headers = header_map(&[("content-type", "application/x-www-form-urlencoded")]);
    sign(twilio, &url, &mut headers, &form_body);
    cases.push((
        "form callback",
        url.clone(),
        headers,
        form_body.clone(),
        200,
    ));

    let mut headers = header_map(&[("content-type", "application/json")]);
    sign(twilio, &url, &mut headers, &json_body);
    cases.push((
        "JSON callback signed as parameters",
        url.clone(),
        headers,
        json_body.clone(),
        200,
    ));

    let (hashed_url, signature) = twilio.sign_json(&url, &json_body);
    let headers = header_map(&[
        ("content-type", "application/json"),
        ("x-twilio-signature", &signature),
    ]);
    cases.push((
        "JSON callback with bodySHA256",
        hashed_url,
        headers,
        json_body.clone(),
        200,
    ));

    let settings = format!("key={shared_key_id},algorithm=HMAC_SHA256");
    let mut headers = header_map(&[
        ("content-type", "application/json"),
        ("x-twilio-webhooks-signature-settings", &settings),
    ]);
    sign(twilio, &url, &mut headers, &json_body);
    cases.push((
        "callback signed with a shared key (HMAC-SHA256)",
        url.clone(),
        headers,
        json_body.clone(),
        200,
    ));

    let mut headers = header_map(&[("content-type", "application/json")]);
    sign(&forger, &url, &mut headers, &json_body);
    cases.push((
        "forged callback (another token)",
        url.clone(),
        headers,
        json_body,
        403,
    ));

    for (what, signed_url, headers, body, expected) in cases {
        let response = http
            .post(to_local(&signed_url))
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let verdict = if status == expected {
            "as expected"
        } else {
            "UNEXPECTED"
        };
        println!("{what}: HTTP {status} ({verdict})");
        ok &= status == expected;
    }

    let handled = HANDLED.load(Ordering::SeqCst);
    println!("handler ran {handled} times");
    Ok(ok && handled == 4)
}

fn header_map(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_static(name),
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect()
}

/// Adds the `X-Twilio-Signature` Twilio would send, with the key the other headers select.
fn sign(signer: &SignatureValidator, url: &str, headers: &mut HeaderMap, body: &[u8]) {
    if let Ok(signature) = signer.sign_request(url, headers, body)
        && let Ok(value) = HeaderValue::from_str(&signature)
    {
        headers.insert("x-twilio-signature", value);
    }
}
