//! Receives call messages: an axum service whose handler only ever sees callbacks that carry a
//! valid `X-Twilio-Signature`.
//!
//! ```text
//! cargo run --example receive            # self-test: a local Twilio's call client sends to it
//! cargo run --example receive -- serve   # keeps serving until stopped (Ctrl-C)
//! ```
//!
//! The service listens on 127.0.0.1 on an ephemeral port. It verifies with `TWILIO_AUTH_TOKEN`
//! (a made-up token when unset) against `PUBLIC_BASE_URL`, the scheme and host Twilio calls
//! (e.g. your tunnel's `https://….example`; the local address when unset).
//!
//! The self-test is driven by the local Twilio (the `twilio-call-messages-emulator` crate): for
//! each way Twilio sends and signs a callback (a form, a flat JSON body signed as parameters, a
//! JSON body with `bodySHA256`, one signed with a shared key) it subscribes the service to a
//! call, has the call's client send a message, and reads how the service answered; then a
//! forger (an emulator with another auth token) does the same. It prints each outcome and exits
//! 0 only if the four genuine deliveries were accepted (200) and the forged one rejected (403)
//! without reaching the handler.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use serde_json::json;
use twilio_call_messages::webhook::axum::{VerifiedCallMessage, WebhookConfig};
use twilio_call_messages::{Client, SignatureValidator};
use twilio_call_messages_emulator::{CallbackBody, Emulator, Signing};

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
    let shared_key_secret_for_test = shared_key_secret.clone();
    // What Twilio holds and signs with: the auth token, and the shared key's secret.
    let validator = SignatureValidator::new(token.clone())
        .with_shared_key(shared_key_id.clone(), shared_key_secret);
    let config = WebhookConfig::new(validator).public_base_url(&public);
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

    let shared_key = (shared_key_id.as_str(), shared_key_secret_for_test.as_str());
    match self_test(&token, shared_key, &public).await {
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

/// One way of sending and signing a callback: an emulator set up for it.
struct Case {
    what: &'static str,
    body: CallbackBody,
    signing: Signing,
    /// The auth token the emulator's account has (the forger's is another).
    token: String,
    expected: u16,
}

/// Has a local Twilio deliver one client message per case to the service, the way Twilio
/// would (to `public`, signed for it). Returns whether each got the expected status and only
/// the genuine ones were handled.
async fn self_test(
    token: &str,
    (key_id, key_secret): (&str, &str),
    public: &str,
) -> Result<bool, Box<dyn std::error::Error>> {
    // reqwest needs a process-wide rustls provider with the crate's default features; one
    // already installed wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cases = [
        Case {
            what: "form callback",
            body: CallbackBody::Form,
            signing: Signing::AuthToken,
            token: token.to_owned(),
            expected: 200,
        },
        Case {
            what: "JSON callback signed as parameters",
            body: CallbackBody::Json,
            signing: Signing::AuthToken,
            token: token.to_owned(),
            expected: 200,
        },
        Case {
            what: "JSON callback with bodySHA256",
            body: CallbackBody::Json,
            signing: Signing::BodySha256,
            token: token.to_owned(),
            expected: 200,
        },
        Case {
            what: "callback signed with a shared key (HMAC-SHA256)",
            body: CallbackBody::Json,
            signing: Signing::SharedKey {
                id: key_id.to_owned(),
                secret: key_secret.to_owned(),
            },
            token: token.to_owned(),
            expected: 200,
        },
        Case {
            what: "forged callback (another token)",
            body: CallbackBody::Json,
            signing: Signing::AuthToken,
            token: "not-the-auth-token".to_owned(),
            expected: 403,
        },
    ];
    let mut ok = true;
    for case in cases {
        let twilio = Emulator::builder()
            .auth_token(&case.token)
            .callback_body(case.body)
            .signing(case.signing)
            .start()
            .await?;
        let call = twilio.create_call();
        // The service subscribes through the REST API, as it would at Twilio. `#rc=0`: no
        // retry, so the forged delivery is tried once.
        let client = Client::builder()
            .account_sid(twilio.account_sid().as_str())
            .auth_token(twilio.auth_token())
            .base_url(twilio.base_url())
            .build()?;
        client
            .subscribe(call, &format!("{public}{PATH}#rc=0"))
            .await?;
        // The caller clicks something: their client sends.
        twilio.client_send(&call, json!({"step": 2, "answer": "yes"}))?;
        twilio.settled().await;
        let sent = twilio.client_messages(&call);
        let attempt = sent
            .first()
            .and_then(|m| m.deliveries.first())
            .and_then(|d| d.attempts.last());
        let status = attempt.and_then(|a| a.status);
        let verdict = if status == Some(case.expected) {
            "as expected"
        } else {
            "UNEXPECTED"
        };
        match status {
            Some(status) => println!("{}: HTTP {status} ({verdict})", case.what),
            None => println!(
                "{}: no answer: {} ({verdict})",
                case.what,
                attempt.and_then(|a| a.error.clone()).unwrap_or_default()
            ),
        }
        ok &= status == Some(case.expected);
        twilio.shutdown();
    }

    let handled = HANDLED.load(Ordering::SeqCst);
    println!("handler ran {handled} times");
    Ok(ok && handled == 4)
}
