//! Only its own page and local tools drive the emulator: another site's page (a "simple"
//! cross-origin request, a preflight, an `Origin`) and a foreign `Host` (DNS rebinding) are
//! refused; Twilio's REST paths, the SDK and `curl` keep working.

use std::process::Command;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twilio_call_messages::Client;
use twilio_call_messages_emulator::Emulator;

/// Sends `head` (request line and headers, without the final blank line) and `body` as
/// written, and answers the status and the body.
async fn raw(e: &Emulator, head: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(e.addr()).await.unwrap();
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

#[tokio::test]
async fn foreign_pages_and_hosts_are_refused() {
    let e = Emulator::start().await.unwrap();
    let host = e.addr().to_string();

    // A cross-origin "simple" request: text/plain, no preflight.
    let (status, body) = raw(
        &e,
        &format!("POST /emulator/calls HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nOrigin: http://evil.example"),
        "{}",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    // The same without Origin (a form post hides nothing else): not JSON, refused.
    let (status, body) = raw(
        &e,
        &format!("POST /emulator/calls HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain"),
        "{}",
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("application/json"), "{body}");
    // A preflight is refused, with no CORS header.
    let (status, _) = raw(
        &e,
        &format!("OPTIONS /emulator/calls HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST"),
        "",
    )
    .await;
    assert_eq!(status, 403);
    // DNS rebinding: the right address under another name.
    let (status, body) = raw(
        &e,
        "POST /emulator/calls HTTP/1.1\r\nHost: evil.example:4012\r\nContent-Type: application/json",
        "{}",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-host"), "{body}");
    let (status, _) = raw(&e, "GET /emulator/calls HTTP/1.1\r\nHost: evil.example", "").await;
    assert_eq!(status, 403, "reading is refused too");
    assert!(e.calls().is_empty(), "nothing was created");

    // The emulator's own page, loopback names and plain local tools are served.
    for (origin, name) in [
        (Some(format!("http://{host}")), host.clone()),
        (None, format!("localhost:{}", e.addr().port())),
        (None, format!("[::1]:{}", e.addr().port())),
    ] {
        let origin = origin.map_or(String::new(), |o| format!("\r\nOrigin: {o}"));
        let (status, body) = raw(
            &e,
            &format!("POST /emulator/calls HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json{origin}"),
            "{}",
        )
        .await;
        assert_eq!(status, 201, "{name}: {body}");
    }

    // Twilio's REST paths answer Twilio's clients whatever the Host (with credentials).
    let call = e.create_call();
    let path = format!(
        "/2010-04-01/Accounts/{}/Calls/{call}/UserDefinedMessages.json",
        e.account_sid()
    );
    let auth = twilio_call_messages::reqwest::header::HeaderValue::from_str(&format!(
        "Basic {}",
        base64_credentials(e.account_sid().as_str(), e.auth_token())
    ))
    .unwrap();
    let (status, _) = raw(
        &e,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: api.twilio.com\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded",
            auth.to_str().unwrap()
        ),
        "Content=%7B%7D",
    )
    .await;
    assert_eq!(status, 201);
}

fn base64_credentials(user: &str, secret: &str) -> String {
    // A few lines instead of a dev-dependency: standard base64 with padding.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{secret}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn an_allowed_host_name_is_served() {
    let e = Emulator::builder()
        .allow_host("emulator")
        .start()
        .await
        .unwrap();
    let (status, body) = raw(
        &e,
        "POST /emulator/calls HTTP/1.1\r\nHost: emulator:4010\r\nContent-Type: application/json\r\nOrigin: http://emulator:4010",
        "{}",
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// The SDK and `curl` (with a JSON content type) still drive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_and_curl_still_work() {
    let e = Emulator::start().await.unwrap();
    let sdk = Client::builder()
        .account_sid(e.account_sid().as_str())
        .auth_token(e.auth_token())
        .base_url(e.base_url())
        .build()
        .unwrap();
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("warning: curl is not installed; only the SDK is checked");
        let call = e.create_call();
        sdk.send_message(call, &json!({"a": 1})).await.unwrap();
        return;
    }
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--noproxy", "*"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let base = e.base_url().to_owned();
    let created = tokio::task::spawn_blocking(move || {
        curl(&[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"client_leg": "incoming"}"#,
            &format!("{base}/emulator/calls"),
        ])
    })
    .await
    .unwrap();
    let child: twilio_call_messages::CallSid = created["child"].as_str().unwrap().parse().unwrap();
    assert_eq!(created["sid"], created["child"], "{created}");
    sdk.send_message(child, &json!({"a": 1})).await.unwrap();
    assert_eq!(e.client_received(&child).len(), 1);
}
