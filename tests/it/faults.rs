//! Connection faults from a raw TCP server written for the tests: each gives the documented
//! typed error, and nothing panics.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use twilio_call_messages::{Client, Error, MAX_RESPONSE_BYTES, RetryPolicy};

use crate::common;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CALL: &str = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const CREATED: &str = r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","call_sid":"CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","sid":"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","date_created":"Wed, 18 Dec 2019 20:02:01 +0000"}"#;

/// What the server does with each connection, after reading the request.
#[derive(Clone)]
enum Fault {
    /// Close without answering (the client sees a reset or an empty reply).
    ResetBeforeResponse,
    /// Send headers and half of the body, then close.
    ResetMidBody,
    /// Never answer.
    Stall,
    /// Answer with this status, content type and body.
    Answer(u16, &'static str, Vec<u8>),
    /// Announce a longer body than is sent, then close.
    Truncated,
}

/// Serves `fault` on 127.0.0.1 for every connection; returns the address.
async fn serve(fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream, fault.clone()));
        }
    });
    addr
}

async fn handle(mut stream: TcpStream, fault: Fault) {
    if common::read_request(&mut stream).await.is_none() {
        return;
    }
    match fault {
        Fault::ResetBeforeResponse => common::reset(stream),
        Fault::ResetMidBody => {
            let body = CREATED.as_bytes();
            let _ = stream
                .write_all(common::head(201, "application/json", body.len()).as_bytes())
                .await;
            let _ = stream.write_all(&body[..body.len() / 2]).await;
            let _ = stream.flush().await;
            common::reset(stream);
        }
        Fault::Stall => tokio::time::sleep(Duration::from_secs(30)).await,
        Fault::Answer(status, content_type, body) => {
            common::answer(&mut stream, status, content_type, &body).await;
        }
        Fault::Truncated => {
            let body = &CREATED.as_bytes()[..40];
            let _ = stream
                .write_all(common::head(201, "application/json", CREATED.len()).as_bytes())
                .await;
            let _ = stream.write_all(body).await;
        }
    }
}

fn client(addr: SocketAddr) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(format!("http://{addr}"))
        .timeout(Duration::from_millis(500))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

async fn send(fault: Fault) -> Result<twilio_call_messages::Message, Error> {
    let addr = serve(fault).await;
    client(addr).send_message(CALL, &json!({"a": 1})).await
}

#[tokio::test]
async fn refused_connection_is_connect_and_never_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client(SocketAddr::from(([127, 0, 0, 1], port)))
        .send_message(CALL, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable() && !err.may_have_been_processed());
}

#[tokio::test]
async fn reset_before_the_response_may_have_been_processed() {
    let err = send(Fault::ResetBeforeResponse).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport { status: None, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable() && err.may_have_been_processed());
}

#[tokio::test]
async fn reset_in_the_middle_of_the_body_keeps_the_status() {
    let err = send(Fault::ResetMidBody).await.unwrap_err();
    assert!(
        matches!(&err, Error::Transport { status: Some(s), .. } if s.as_u16() == 201),
        "{err:?}"
    );
    assert!(err.may_have_been_processed());
}

#[tokio::test]
async fn a_stalled_server_times_out() {
    let started = std::time::Instant::now();
    let err = send(Fault::Stall).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_truncated_json_body_is_a_transport_error_with_the_status() {
    let err = send(Fault::Truncated).await.unwrap_err();
    assert!(
        matches!(&err, Error::Transport { status: Some(s), .. } if s.as_u16() == 201),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_megabyte_of_garbage_is_cut_at_the_cap() {
    let garbage: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let err = send(Fault::Answer(201, "application/json", garbage.clone()))
        .await
        .unwrap_err();
    let Error::Decode { status, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.as_u16(), 201);
    assert!(reason.contains(&MAX_RESPONSE_BYTES.to_string()), "{reason}");

    let err = send(Fault::Answer(502, "text/html", garbage))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(502), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn the_content_type_is_not_trusted_only_the_body() {
    // JSON labelled as HTML still decodes: Twilio's body is what counts.
    let ok = send(Fault::Answer(201, "text/html", CREATED.as_bytes().to_vec()))
        .await
        .unwrap();
    assert_eq!(ok.sid, "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    // HTML labelled as JSON is a decode error that says the message was accepted.
    let err = send(Fault::Answer(201, "application/json", b"<html>".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Decode { .. }), "{err:?}");
    assert!(!err.is_retryable());
}
