//! The binary: `--port 0`, what it prints, the control API under `/emulator/` (its paths are a
//! stable interface), the REST API beside it, and a clean stop on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use twilio_call_messages::{CallSid, Client, SignatureValidator};

use crate::common;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN: &str = "binary-test-token";

struct Running {
    child: Child,
    base: String,
    printed: Vec<String>,
    stdout: BufReader<std::process::ChildStdout>,
}

fn start(extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twilio-call-messages-emulator"))
        .args([
            "--port",
            "0",
            "--account-sid",
            ACCOUNT,
            "--auth-token",
            TOKEN,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the binary ended: {printed:?}"
        );
        let done = line.starts_with("Stop with");
        printed.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    let base = printed[0]
        .strip_prefix("twilio-call-messages-emulator listening on ")
        .unwrap()
        .to_owned();
    Running {
        child,
        base,
        printed,
        stdout,
    }
}

/// Sends `signal` and waits for a clean exit that prints "stopped".
fn stop(mut running: Running, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(exit) = running.child.try_wait().unwrap() {
            assert!(exit.success(), "{signal}: {exit:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{signal}: still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut running.stdout, &mut rest);
    assert!(rest.contains("stopped"), "{rest:?}");
}

async fn control(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = common::http();
    let url = format!("{base}{path}");
    let request = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    // Requests that change state are JSON (the control API refuses others).
    let request = match (method, body) {
        (_, Some(b)) => request.json(&b),
        ("GET", None) => request,
        (_, None) => request.json(&json!({})),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_both_apis_and_stops_on_sigterm() {
    let running = start(&["--callback-body", "json", "--sequence-start", "1"]);
    let base = running.base.clone();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );
    let printed = running.printed.join("\n");
    assert!(printed.contains(ACCOUNT), "{printed}");
    assert!(
        !printed.contains(TOKEN),
        "a given token is not echoed: {printed}"
    );

    // POST /emulator/calls: an in-progress call.
    let (status, call) = control(&base, "POST", "/emulator/calls", None).await;
    assert_eq!(status, 201);
    assert_eq!(call["status"], "in-progress");
    let sid: CallSid = call["sid"].as_str().unwrap().parse().unwrap();

    // The service sends through the REST API with the SDK.
    let client = Client::builder()
        .account_sid(ACCOUNT)
        .auth_token(TOKEN)
        .base_url(&base)
        .build()
        .unwrap();
    let message = client.send_message(sid, &json!({"hint": 1})).await.unwrap();

    // GET /emulator/calls/{CallSid}/messages: what the client received.
    let (status, received) = control(
        &base,
        "GET",
        &format!("/emulator/calls/{sid}/messages"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(received[0]["sid"], message.sid.as_str());
    assert_eq!(received[0]["content"], json!({"hint": 1}));
    assert_eq!(
        received[0]["idempotency_key"],
        message.idempotency_key.as_str()
    );
    assert_eq!(received[0]["message_type"], "user-defined-message");

    // POST /emulator/calls/{CallSid}/client-messages: the client sends; the service's
    // subscription receives it, signed.
    let receiver = common::Receiver::start().await;
    let subscription = client.subscribe(sid, &receiver.url("/cb")).await.unwrap();
    let (status, sent) = control(
        &base,
        "POST",
        &format!("/emulator/calls/{sid}/client-messages"),
        Some(json!({"content": {"clicked": "upgrade"}})),
    )
    .await;
    assert_eq!(status, 201);
    let sent_sid = sent["sid"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let record = loop {
        let (_, record) = control(
            &base,
            "GET",
            &format!("/emulator/calls/{sid}/client-messages/{sent_sid}"),
            None,
        )
        .await;
        if record["deliveries"][0]["done"] == true {
            break record;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record["deliveries"][0]["delivered"], true);
    assert_eq!(
        record["deliveries"][0]["subscription_sid"],
        subscription.sid.as_str()
    );
    assert_eq!(record["sequence_number"], 1);
    let (_, all) = control(
        &base,
        "GET",
        &format!("/emulator/calls/{sid}/client-messages"),
        None,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let r = &receiver.received()[0];
    SignatureValidator::new(TOKEN)
        .verify(&receiver.url(&r.uri), &r.headers, &r.body)
        .unwrap();

    // POST /emulator/calls/{CallSid} {"status": "completed"}: the REST API now refuses.
    let (status, updated) = control(
        &base,
        "POST",
        &format!("/emulator/calls/{sid}"),
        Some(json!({"status": "completed"})),
    )
    .await;
    assert_eq!(
        (status, updated["status"].as_str()),
        (200, Some("completed"))
    );
    let err = client.send_message(sid, &json!({})).await.unwrap_err();
    assert_eq!(err.code(), Some(21220));

    // Faults and limits through the control API.
    let (status, _) = control(
        &base,
        "POST",
        "/emulator/faults",
        Some(json!({"rates": {"503": 1.0}, "seed": 1})),
    )
    .await;
    assert_eq!(status, 200);
    let raw = common::http()
        .post(format!(
            "{base}/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}/UserDefinedMessages.json"
        ))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .form(&[("Content", "{}")])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 503);
    let (status, refused) = control(
        &base,
        "POST",
        "/emulator/faults",
        Some(json!({"rates": {"nonsense": 1.0}})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (status, _) = control(&base, "POST", "/emulator/faults", Some(json!({}))).await;
    assert_eq!(status, 200);
    let (status, _) = control(
        &base,
        "POST",
        "/emulator/limits",
        Some(json!({"concurrency_limit": 3, "latency_ms": 0})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = control(
        &base,
        "POST",
        "/emulator/callback-faults",
        Some(json!({"duplicate": 0.5, "seed": 3})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, stats) = control(&base, "GET", "/emulator/stats", None).await;
    assert_eq!(stats["stats"]["messages"], 1);
    assert_eq!(stats["stats"]["faults"], 1);

    // Unknown things answer clearly.
    let (status, _) = control(
        &base,
        "GET",
        "/emulator/calls/CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/messages",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = control(&base, "GET", "/emulator/nothing", None).await;
    assert_eq!(status, 404);

    stop(running, "TERM");
}

#[test]
fn the_binary_stops_on_sigint_and_refuses_bad_flags() {
    stop(start(&[]), "INT");
    let output = Command::new(env!("CARGO_BIN_EXE_twilio-call-messages-emulator"))
        .args(["--port", "0", "--fault", "nonsense=1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown fault"));
    let help = Command::new(env!("CARGO_BIN_EXE_twilio-call-messages-emulator"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--concurrency-limit"));
}
