//! A whole conversation with a call, both directions, against a local Twilio (the
//! `twilio-call-messages-emulator` crate): nothing leaves this machine.
//!
//! ```text
//! cargo run --example conversation
//! cargo run --example conversation -- --legs incoming   # or outgoing: a Voice SDK call's two legs
//! ```
//!
//! 1. A contact-centre service (axum, on 127.0.0.1) subscribes to the call's messages.
//! 2. It pushes a hint into the call; the agent's client receives it (`messageReceived`).
//! 3. The agent clicks: their client sends a message; Twilio delivers it, signed, to the
//!    service, which verifies it (`VerifiedCallMessage`) and answers into the call.
//! 4. The agent's client receives the answer.
//!
//! It prints each step and exits 0 only if both directions arrived as sent. With `--legs`, the
//! call has two legs as a Voice SDK call does (the client on the parent leg when it placed the
//! call, on the child leg when it accepted it); the service uses the client's leg, and a last
//! message sent to the other leg shows what the client does with it: drops it.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use twilio_call_messages::webhook::axum::{VerifiedCallMessage, WebhookConfig};
use twilio_call_messages::{CallMessageEvent, Client, SignatureValidator};
use twilio_call_messages_emulator::{ClientLeg, Emulator};

const PATH: &str = "/twilio/call-messages";

/// The service's state: how it verifies callbacks, how it talks to Twilio, what it heard.
#[derive(Clone)]
struct Service {
    webhook: Arc<WebhookConfig>,
    twilio: Client,
    heard: Arc<Mutex<Vec<CallMessageEvent>>>,
}

impl FromRef<Service> for Arc<WebhookConfig> {
    fn from_ref(service: &Service) -> Self {
        service.webhook.clone()
    }
}

/// A verified message from the agent's client: remember it and answer into the call.
async fn on_message(
    State(service): State<Service>,
    VerifiedCallMessage(event): VerifiedCallMessage,
) -> StatusCode {
    let clicked: Value = event.content_as().unwrap_or(Value::Null);
    println!(
        "service <- call {}: message {} #{}: {clicked}",
        event.call_sid, event.message_sid, event.sequence_number
    );
    let answer = json!({"ack": clicked["clicked"], "reply_to": event.message_sid.as_str()});
    let sent = service.twilio.send_message(event.call_sid, &answer).await;
    service.heard.lock().unwrap().push(event);
    match sent {
        Ok(message) => {
            println!("service -> call: {answer} as {}", message.sid);
            StatusCode::OK
        }
        // Not 2xx: Twilio would retry the callback (and our key makes the retry harmless).
        Err(e) => {
            eprintln!("service could not answer: {e}");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match conversation().await {
        Ok(true) => {
            println!("ok: both directions arrived as sent");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("unexpected outcome");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn conversation() -> Result<bool, Box<dyn std::error::Error>> {
    let twilio = Emulator::start().await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let legs = match args.iter().position(|a| a == "--legs") {
        Some(i) => Some(
            twilio.create_client_call(
                args.get(i + 1)
                    .map_or("incoming", String::as_str)
                    .parse::<ClientLeg>()?,
            ),
        ),
        None => None,
    };
    let call = legs.map_or_else(|| twilio.create_call(), |l| l.client);
    println!(
        "local Twilio at {} (account {}), call {call} in progress",
        twilio.base_url(),
        twilio.account_sid()
    );
    if let Some(l) = legs {
        println!(
            "legs: parent {}, child {}; the agent's client ({:?}) is on {}",
            l.parent, l.child, l.leg, l.client
        );
    }

    let client = Client::builder()
        .account_sid(twilio.account_sid().as_str())
        .auth_token(twilio.auth_token())
        .base_url(twilio.base_url())
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let service = Service {
        webhook: Arc::new(
            WebhookConfig::new(SignatureValidator::new(twilio.auth_token())).public_base_url(&base),
        ),
        twilio: client.clone(),
        heard: Arc::default(),
    };
    let app = Router::new()
        .route(PATH, post(on_message))
        .with_state(service.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // 1. Subscribe.
    let subscription = client.subscribe(call, &format!("{base}{PATH}")).await?;
    println!("service subscribed {base}{PATH} as {}", subscription.sid);

    // 2. A hint into the call.
    let hint = json!({"hint": "offer the upgrade", "price": 12});
    let sent = client.send_message(call, &hint).await?;
    println!("service -> call: {hint} as {}", sent.sid);

    // 3. The agent clicks.
    let click = json!({"clicked": "upgrade"});
    let clicked = twilio.client_send(&call, click.clone())?;
    println!("agent's client -> Twilio: {click} as {clicked}");
    twilio.settled().await;

    // 4. What the agent's client received, in order.
    let received = twilio.client_received(&call);
    for message in &received {
        println!(
            "agent's client <- messageReceived: {} ({}, {})",
            message.content, message.message_type, message.voice_event_sid
        );
    }
    let heard = service.heard.lock().unwrap().clone();
    let delivery = &twilio.client_messages(&call)[0].deliveries[0];
    let to_service = heard.len() == 1
        && heard[0].message_sid == clicked
        && heard[0].content_as::<Value>().ok() == Some(click)
        && delivery.delivered;
    let to_call = received.len() == 2
        && received[0].content == hint
        && received[0].sid == sent.sid
        && received[1].content == json!({"ack": "upgrade", "reply_to": clicked.as_str()});
    println!("call -> service verified: {to_service}; service -> call verified: {to_call}");
    let mut legs_ok = true;
    if let Some(l) = legs {
        // Twilio answers 201 for either leg; only the client's leg reaches the client.
        let other = if l.client == l.parent {
            l.child
        } else {
            l.parent
        };
        client
            .send_message(other, &json!({"hint": "to the other leg"}))
            .await?;
        let dropped = twilio.dropped_messages(&other);
        legs_ok = dropped.len() == 1 && twilio.client_received(&call).len() == 2;
        for d in &dropped {
            println!("agent's client dropped {}: {}", d.message.sid, d.reason);
        }
    }
    Ok(to_service && to_call && legs_ok)
}
