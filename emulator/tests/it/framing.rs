//! How the hand-written HTTP server reads a request's body length: a request two readers could
//! frame differently (the request-smuggling shape, RFC 9112 §11.2) is refused with 400 and the
//! connection closed, so nothing after it is read as another request.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twilio_call_messages_emulator::Emulator;

/// Sends `bytes` as written and reads until the emulator closes (or a few seconds pass: a
/// connection kept open fails the test instead of hanging it): the status lines answered, and
/// the whole answer.
async fn send(e: &Emulator, bytes: &str) -> (Vec<u16>, String) {
    let mut stream = tokio::net::TcpStream::connect(e.addr()).await.unwrap();
    stream.write_all(bytes.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A reset after the answer is a close too.
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let statuses = answer
        .match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| answer.get(at + 9..at + 12)?.parse().ok())
        .collect();
    (statuses, answer)
}

/// A message create's request head, up to (not including) its framing headers.
fn head(e: &Emulator) -> String {
    let call = e.create_call();
    let credentials = STANDARD.encode(format!("{}:{}", e.account_sid(), e.auth_token()));
    format!(
        "POST /2010-04-01/Accounts/{}/Calls/{call}/UserDefinedMessages.json HTTP/1.1\r\n\
         Host: {}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n",
        e.account_sid(),
        e.addr()
    )
}

/// `Content={}` as a form, and a second request hidden after it.
const BODY: &str = "Content=%7B%7D";
const SMUGGLED: &str = "GET /2010-04-01/Accounts HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn one_content_length_or_chunked_is_read() {
    let e = Emulator::start().await.unwrap();
    let request = format!(
        "{}Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        head(&e),
        BODY.len()
    );
    let (statuses, answer) = send(&e, &request).await;
    assert_eq!(statuses, [201], "{answer}");

    let request = format!(
        "{}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{BODY}\r\n0\r\n\r\n",
        head(&e),
        BODY.len()
    );
    let (statuses, answer) = send(&e, &request).await;
    assert_eq!(statuses, [201], "{answer}");
    assert_eq!(e.messages().len(), 2);
}

#[tokio::test]
async fn ambiguous_framing_is_refused_with_400_and_the_connection_closed() {
    let e = Emulator::start().await.unwrap();
    let len = BODY.len();
    let cases = [
        // RFC 9112 §6.3: differing Content-Length values make the framing invalid.
        (
            "two different Content-Length headers",
            format!(
                "Content-Length: {len}\r\nContent-Length: {}\r\n",
                len + SMUGGLED.len()
            ),
        ),
        (
            "two different values in one Content-Length",
            format!("Content-Length: {len}, {}\r\n", len + SMUGGLED.len()),
        ),
        // RFC 9110 §8.6: identical ones a recipient may refuse too.
        (
            "the same Content-Length twice",
            format!("Content-Length: {len}\r\nContent-Length: {len}\r\n"),
        ),
        // RFC 9112 §6.1 and §6.3: both framings at once.
        (
            "Content-Length with Transfer-Encoding",
            format!("Content-Length: {len}\r\nTransfer-Encoding: chunked\r\n"),
        ),
        // RFC 9112 §6.3: chunked not the final coding.
        (
            "a Transfer-Encoding that does not end with chunked",
            "Transfer-Encoding: chunked, gzip\r\n".to_owned(),
        ),
        // Content-Length = 1*DIGIT.
        (
            "a signed Content-Length",
            format!("Content-Length: +{len}\r\n"),
        ),
        // RFC 9112 §5.1: no whitespace between a field's name and its colon.
        (
            "whitespace before the colon",
            format!("Content-Length : {len}\r\n"),
        ),
    ];
    for (what, framing) in cases {
        let request = format!("{}{framing}\r\n{BODY}{SMUGGLED}", head(&e));
        let (statuses, answer) = send(&e, &request).await;
        assert_eq!(statuses, [400], "{what}: one 400 and a close\n{answer}");
    }
    // Refused before the API: no request counted, no message recorded.
    assert_eq!(e.stats().requests, 0);
    assert!(e.messages().is_empty());
}
