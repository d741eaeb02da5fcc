//! Sends one JSON message into a call.
//!
//! ```text
//! cargo run --example send -- '{"hello":"world"}'
//! ```
//!
//! With `TWILIO_ACCOUNT_SID`, credentials (`TWILIO_AUTH_TOKEN`, or `TWILIO_API_KEY` and
//! `TWILIO_API_SECRET`) and `TWILIO_CALL_SID` set, it talks to Twilio (`TWILIO_EDGE` and
//! `TWILIO_REGION` are honoured). Without them it starts a local Twilio (the
//! `twilio-call-messages-emulator` crate) with an in-progress call, sends the message there,
//! and prints what the call's client received (twilio-voice.js's `messageReceived`).
//! Bad input (not JSON, too long, a bad SID) prints the typed error and exits non-zero.
//!
//! A second argument, a callback URL, also subscribes it to the call's messages and then
//! unsubscribes: `cargo run --example send -- '{"hello":"world"}' https://example.com/hook`.

use std::process::ExitCode;

use twilio_call_messages::{CallSid, Client, Error};
use twilio_call_messages_emulator::{CallStatus, Emulator};

const LOCAL_ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const LOCAL_TOKEN: &str = "local-emulator-token";
const LOCAL_CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[tokio::main]
async fn main() -> ExitCode {
    let content = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r#"{"hello":"world"}"#.to_owned());
    let callback = std::env::args().nth(2);
    let real = std::env::var_os("TWILIO_ACCOUNT_SID").is_some()
        && std::env::var_os("TWILIO_CALL_SID").is_some();
    let result = if real {
        to_twilio(content, callback).await
    } else {
        let twilio = match local_twilio().await {
            Ok(twilio) => twilio,
            Err(e) => {
                eprintln!("error: cannot start the local Twilio: {e}");
                return ExitCode::FAILURE;
            }
        };
        to_local_twilio(&twilio, content, callback).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(key) = e.idempotency_key() {
                eprintln!("  idempotency key: {key}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn to_twilio(content: String, callback: Option<String>) -> Result<(), Error> {
    let client = Client::from_env()?;
    let call = std::env::var("TWILIO_CALL_SID").unwrap_or_default();
    println!("Sending to Twilio at {} (call {call})", client.base_url());
    run(&client, &call, content, callback).await
}

async fn run(
    client: &Client,
    call: &str,
    content: String,
    callback: Option<String>,
) -> Result<(), Error> {
    let message = client.send_message_json(call, content).await?;
    print_message(&message);
    if let Some(url) = callback {
        let subscription = client.subscribe(call, &url).await?;
        println!("\nsubscribed {url} as {}", subscription.sid);
        client.unsubscribe(call, subscription.sid).await?;
        println!("unsubscribed {}", subscription.sid);
    }
    Ok(())
}

/// A local Twilio with one in-progress call.
async fn local_twilio() -> std::io::Result<Emulator> {
    let twilio = Emulator::builder()
        .account_sid(LOCAL_ACCOUNT.parse().expect("a valid account SID"))
        .auth_token(LOCAL_TOKEN)
        .start()
        .await?;
    let call: CallSid = LOCAL_CALL.parse().expect("a valid call SID");
    twilio
        .add_call(call, CallStatus::InProgress, None)
        .expect("a new emulator has no calls");
    Ok(twilio)
}

async fn to_local_twilio(
    twilio: &Emulator,
    content: String,
    callback: Option<String>,
) -> Result<(), Error> {
    println!(
        "TWILIO_ACCOUNT_SID and TWILIO_CALL_SID are not set: using a LOCAL Twilio (the emulator) at {},\n\
         with an in-progress call {LOCAL_CALL}. Nothing leaves this machine.\n",
        twilio.base_url()
    );
    let client = Client::builder()
        .account_sid(LOCAL_ACCOUNT)
        .auth_token(LOCAL_TOKEN)
        .base_url(twilio.base_url())
        .user_agent_extension("send-example")
        .build()?;
    run(&client, LOCAL_CALL, content, callback).await?;

    let call: CallSid = LOCAL_CALL.parse().expect("a valid call SID");
    println!("\nthe call's client received (twilio-voice.js `messageReceived`):");
    for message in twilio.client_received(&call) {
        println!("    voiceEventSid: {}", message.voice_event_sid);
        println!("    contentType:   {}", message.content_type);
        println!("    messageType:   {}", message.message_type);
        println!("    content:       {}", message.content);
    }
    Ok(())
}

fn print_message(message: &twilio_call_messages::Message) {
    println!("<-- 201 Created");
    println!("    sid:             {}", message.sid);
    println!("    account_sid:     {}", message.account_sid);
    println!("    call_sid:        {}", message.call_sid);
    if let Some(date) = message.date_created {
        println!("    date_created:    {date}");
    }
    println!("    idempotency_key: {}", message.idempotency_key);
    if let Some(id) = &message.request_id {
        println!("    request_id:      {id}");
    }
}
