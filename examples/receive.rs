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
//! The self-test posts a correctly signed JSON event, a correctly signed form event and a forged
//! one (signed with another token), prints each status, and exits 0 only if the two signed ones
//! were accepted (200) and the forged one rejected (403) without reaching the handler.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use serde_json::json;
use twilio_call_messages::SignatureValidator;
use twilio_call_messages::reqwest;
use twilio_call_messages::webhook::axum::{VerifiedCallMessage, WebhookConfig};

const PATH: &str = "/twilio/call-messages";
const EXAMPLE_TOKEN: &str = "example-auth-token";

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
    let config =
        WebhookConfig::new(SignatureValidator::new(token.clone())).public_base_url(&public);
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

    match self_test(&token, &local, &public).await {
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

/// Posts three events the way Twilio would (to the local address, signed for the public URL);
/// returns whether each got the expected status and only the signed ones were handled.
async fn self_test(token: &str, local: &str, public: &str) -> Result<bool, reqwest::Error> {
    // reqwest needs a process-wide rustls provider with the crate's default features; one
    // already installed wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Stay on the loopback interface whatever proxy the environment names.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let twilio = SignatureValidator::new(token);
    let forger = SignatureValidator::new("not-the-auth-token");
    let event = json!({
        "ContentType": "application/json",
        "Content": "{\"step\":2,\"answer\":\"yes\"}",
        "SequenceNumber": "0",
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
    // The path and query Twilio requests are the same locally and publicly; only the base differs.
    let to_local =
        |signed_url: &str| format!("{local}{}", signed_url.strip_prefix(public).unwrap_or(PATH));

    let mut ok = true;
    let mut check = |what: &str, status: reqwest::StatusCode, expected: u16| {
        let verdict = if status.as_u16() == expected {
            "as expected"
        } else {
            "UNEXPECTED"
        };
        println!("{what}: HTTP {} ({verdict})", status.as_u16());
        ok &= status.as_u16() == expected;
    };

    let (url, signature) = twilio.sign_json(&format!("{public}{PATH}"), &json_body);
    let response = http
        .post(to_local(&url))
        .header("content-type", "application/json")
        .header("X-Twilio-Signature", signature)
        .body(json_body.clone())
        .send()
        .await?;
    check("signed JSON event", response.status(), 200);

    let url = format!("{public}{PATH}");
    let signature = twilio.sign_form(&url, &form);
    let response = http
        .post(to_local(&url))
        .header("X-Twilio-Signature", signature)
        .form(&form)
        .send()
        .await?;
    check("signed form event", response.status(), 200);

    let (url, forged) = forger.sign_json(&format!("{public}{PATH}"), &json_body);
    let response = http
        .post(to_local(&url))
        .header("content-type", "application/json")
        .header("X-Twilio-Signature", forged)
        .body(json_body)
        .send()
        .await?;
    check("forged JSON event", response.status(), 403);

    let handled = HANDLED.load(Ordering::SeqCst);
    println!("handler ran {handled} times");
    Ok(ok && handled == 2)
}
