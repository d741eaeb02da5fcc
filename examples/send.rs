//! Sends one JSON message into a call.
//!
//! ```text
//! cargo run --example send -- '{"hello":"world"}'
//! ```
//!
//! With `TWILIO_ACCOUNT_SID`, credentials (`TWILIO_AUTH_TOKEN`, or `TWILIO_API_KEY` and
//! `TWILIO_API_SECRET`) and `TWILIO_CALL_SID` set, it talks to Twilio (`TWILIO_EDGE` and
//! `TWILIO_REGION` are honoured). Without them it starts a local stand-in of Twilio built on
//! the crate's `mock` helpers, sends the message there, and prints what went over the wire.
//! Bad input (not JSON, too long, a bad SID) prints the typed error and exits non-zero.
//!
//! A second argument, a callback URL, also subscribes it to the call's messages and then
//! unsubscribes: `cargo run --example send -- '{"hello":"world"}' https://example.com/hook`.

use std::process::ExitCode;

use httpmock::MockServer;
use twilio_call_messages::mock::TwilioMock;
use twilio_call_messages::{AccountSid, Client, Error};

const LOCAL_ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const LOCAL_TOKEN: &str = "local-stand-in-token";
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
        to_local_stand_in(content, callback).await
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

async fn to_local_stand_in(content: String, callback: Option<String>) -> Result<(), Error> {
    let server = MockServer::start_async().await;
    let account: AccountSid = LOCAL_ACCOUNT.parse()?;
    // Right credentials: 201 with a Twilio-shaped body, after printing the request.
    server.mock_send_message(|when, then| {
        when.auth_token(&account, LOCAL_TOKEN);
        then.inspect(print_request).created();
    });
    server.mock_subscribe(|when, then| {
        when.auth_token(&account, LOCAL_TOKEN);
        then.inspect(print_request).created();
    });
    server.mock_unsubscribe(|when, then| {
        when.auth_token(&account, LOCAL_TOKEN);
        then.inspect(print_request).deleted();
    });
    // Anything else: Twilio's authentication error.
    server.mock(|when, then| {
        when.any_request();
        then.status(401)
            .header("content-type", "application/json")
            .body(r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#);
    });
    println!(
        "TWILIO_ACCOUNT_SID and TWILIO_CALL_SID are not set: using a LOCAL Twilio stand-in at {}.\n\
         Nothing leaves this machine.\n",
        server.base_url()
    );

    let client = Client::builder()
        .account_sid(LOCAL_ACCOUNT)
        .auth_token(LOCAL_TOKEN)
        .base_url(server.base_url())
        .user_agent_extension("send-example")
        .build()?;
    run(&client, LOCAL_CALL, content, callback).await
}

fn print_request(req: &httpmock::HttpMockRequest) {
    println!("--> {} {}", req.method(), req.uri().path());
    for (name, value) in req.headers().iter() {
        let name = name.as_str();
        let shown = if name.eq_ignore_ascii_case("authorization") {
            "Basic <redacted>"
        } else {
            value.to_str().unwrap_or("<binary>")
        };
        println!("    {name}: {shown}");
    }
    println!("    {}\n", String::from_utf8_lossy(req.body_ref()));
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
