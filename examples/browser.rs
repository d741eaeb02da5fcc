//! Chat with a running service from a real browser, through Twilio's Voice JavaScript SDK,
//! against a local Twilio (the `twilio-call-messages-emulator` crate): no account, no phone
//! number, no public URL.
//!
//! ```text
//! npm install --prefix /tmp/voice-sdk @twilio/voice-sdk@2.18.5
//! cargo run --example browser -- /tmp/voice-sdk/node_modules/@twilio/voice-sdk/dist/twilio.min.js
//! ```
//!
//! Then open the printed page in Chromium started with the printed
//! `--ignore-certificate-errors-spki-list=…` flag (and a fresh `--user-data-dir`), or import
//! the printed certificate file: the SDK only ever speaks `wss://`. Press "Call" (your client
//! places the call: it is on the parent leg) or "Ring me" (a call rings your client: accept it,
//! and it is on the child leg), then type JSON and send: the service verifies each callback
//! and answers into the call on the client's leg, and the page shows `messageReceived`. The
//! emulator's own page (printed too) shows the call's legs and every message.
//!
//! The SDK's signaling protocol is Twilio's internal one: keep the SDK at the version the
//! emulator's tests pin (2.18.5).

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use serde_json::{Value, json};
use twilio_call_messages::webhook::axum::{VerifiedCallMessage, WebhookConfig};
use twilio_call_messages::{CallSid, Client, SignatureValidator};
use twilio_call_messages_emulator::Emulator;

const HOOK: &str = "/twilio/call-messages";
const IDENTITY: &str = "agent";

/// The service: how it verifies callbacks and how it talks to Twilio.
#[derive(Clone)]
struct Service {
    webhook: Arc<WebhookConfig>,
    twilio: Client,
    callback: String,
    emulator: Emulator,
}

impl FromRef<Service> for Arc<WebhookConfig> {
    fn from_ref(service: &Service) -> Self {
        service.webhook.clone()
    }
}

/// A verified message from the browser's call: answer it into the same leg.
async fn on_message(
    State(service): State<Service>,
    VerifiedCallMessage(event): VerifiedCallMessage,
) -> StatusCode {
    let said: Value = event.content_as().unwrap_or(Value::Null);
    println!(
        "service <- {}: {said} ({})",
        event.call_sid, event.message_sid
    );
    let answer = json!({"you_said": said, "reply_to": event.message_sid.as_str()});
    match service.twilio.send_message(event.call_sid, &answer).await {
        Ok(_) => StatusCode::OK,
        Err(e) => {
            eprintln!("service could not answer: {e}");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// The page tells the service its call began (as a TwiML App's webhook would): subscribe to
/// the client's leg and greet it.
async fn on_call(State(service): State<Service>, body: String) -> StatusCode {
    let Ok(call) = body.trim().parse::<CallSid>() else {
        return StatusCode::BAD_REQUEST;
    };
    if let Err(e) = service.twilio.subscribe(call, &service.callback).await {
        eprintln!("service could not subscribe to {call}: {e}");
        return StatusCode::BAD_GATEWAY;
    }
    let hello = json!({"hello": "the service is listening on this call", "call": call.as_str()});
    match service.twilio.send_message(call, &hello).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::BAD_GATEWAY,
    }
}

/// "Ring me": a call rings the browser's client.
async fn ring(State(service): State<Service>) -> (StatusCode, String) {
    match service.emulator.ring_client(IDENTITY) {
        Ok(call) => (StatusCode::CREATED, call.child.to_string()),
        Err(e) => (StatusCode::CONFLICT, e.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(sdk) = std::env::args().nth(1) else {
        eprintln!(
            "usage: cargo run --example browser -- PATH/TO/@twilio/voice-sdk/dist/twilio.min.js\n\
             (npm install --prefix /tmp/voice-sdk @twilio/voice-sdk@2.18.5)"
        );
        return ExitCode::from(2);
    };
    match serve(&sdk).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(sdk: &str) -> Result<(), Box<dyn std::error::Error>> {
    let script = std::fs::read(sdk).map_err(|e| format!("{sdk}: {e}"))?;
    let twilio = Emulator::start().await?;
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
        twilio: client,
        callback: format!("{base}{HOOK}"),
        emulator: twilio.clone(),
    };
    let token = twilio.access_token(IDENTITY);
    let page = PAGE
        .replace("{{TOKEN}}", &token)
        .replace("{{CHUNDERW}}", &twilio.chunderw());
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let page = page.clone();
                async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page) }
            }),
        )
        .route(
            "/twilio.min.js",
            get(move || {
                let script = script.clone();
                async move { ([(header::CONTENT_TYPE, "text/javascript")], script) }
            }),
        )
        .route(HOOK, post(on_message))
        .route("/calls", post(on_call))
        .route("/ring", post(ring))
        .with_state(service);
    let certificate = std::env::temp_dir().join("twilio-call-messages-emulator.pem");
    std::fs::write(&certificate, twilio.certificate_pem())?;
    println!("the page:          {base}/");
    println!("emulator's page:   {}/emulator/", twilio.base_url());
    println!(
        "chromium flags:    --ignore-certificate-errors-spki-list={} --user-data-dir=$(mktemp -d)",
        twilio.certificate_spki_sha256()
    );
    println!(
        "or import:         {} (for {})",
        certificate.display(),
        twilio.signal_url()
    );
    println!("Stop with Ctrl-C.");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>Call messages with the Voice JS SDK, locally</title>
<style>body{font:15px system-ui;margin:2em;max-width:46em}#log{white-space:pre-wrap;background:#f4f4f4;padding:1em}</style>
<script src="/twilio.min.js"></script>
<h1>Call messages, locally</h1>
<p><button id="call">Call</button> <button id="ring">Ring me</button> <button id="hangup">Hang up</button> <span id="status">starting…</span></p>
<p><input id="content" size="50" value='{"clicked": "upgrade"}'> <button id="send">Send</button></p>
<div id="log"></div>
<script>
const log = (line) => { document.getElementById('log').textContent += line + '\n'; };
const status = (text) => { document.getElementById('status').textContent = text; };
const device = new Twilio.Device('{{TOKEN}}', { chunderw: '{{CHUNDERW}}', publishEvents: false, closeProtection: false });
if (device.audio) { for (const s of ['incoming', 'outgoing', 'disconnect']) device.audio[s](false); }
let call = null;
function use(c) {
  call = c;
  c.on('accept', () => {
    status('on call ' + c.parameters.CallSid);
    fetch('/calls', { method: 'POST', body: c.parameters.CallSid });
  });
  c.on('messageReceived', (m) => log('<- ' + JSON.stringify(m.content) + '  (' + m.voiceEventSid + ')'));
  c.on('messageSent', (m) => log('-> ' + JSON.stringify(m.content) + '  sent (' + m.voiceEventSid + ')'));
  c.on('error', (e) => log('call error ' + e.code + ': ' + e.message));
  c.on('disconnect', () => { status('call ended'); call = null; });
  c.on('cancel', () => { status('call cancelled'); call = null; });
}
device.on('error', (e) => log('device error ' + e.code + ': ' + e.message));
device.on('incoming', (c) => { use(c); status('ringing: ' + c.parameters.From); if (confirm('Accept the call from ' + c.parameters.From + '?')) c.accept(); else c.reject(); });
device.register().then(() => status('registered as ' + device.identity));
document.getElementById('call').onclick = async () => use(await device.connect({ params: { To: 'service' } }));
document.getElementById('ring').onclick = () => fetch('/ring', { method: 'POST' }).then((r) => r.text()).then((t) => log('ring: ' + t));
document.getElementById('hangup').onclick = () => call && call.disconnect();
document.getElementById('send').onclick = () => {
  if (!call) return log('no call');
  let content;
  try { content = JSON.parse(document.getElementById('content').value); } catch (e) { return log('not JSON: ' + e.message); }
  call.sendMessage({ content, messageType: 'user-defined-message' });
};
</script>
"#;
