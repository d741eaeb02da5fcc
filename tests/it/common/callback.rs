//! Call-message callbacks as Twilio posts them, for the receiving tests.

use http::{HeaderMap, HeaderValue};
use twilio_call_messages::SignatureValidator;

/// A callback body as flat JSON with string values (what Twilio's Voice SDK tests observe):
/// message `sid` with `content` (JSON text), sent at `timestamp`.
pub fn event_json(sid: &str, content: &str, timestamp: &str) -> Vec<u8> {
    serde_json::json!({
        "ContentType": "application/json",
        "Content": content,
        "SequenceNumber": "1",
        "CallSid": "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "Timestamp": timestamp,
        "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Sid": sid,
    })
    .to_string()
    .into_bytes()
}

/// `headers` plus the JSON content type and the signature of `body` by `signer` for `url`
/// (a settings header among them decides the key).
pub fn signed(
    signer: &SignatureValidator,
    url: &str,
    mut headers: HeaderMap,
    body: &[u8],
) -> HeaderMap {
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let signature = signer.sign_request(url, &headers, body).unwrap();
    headers.insert(
        "x-twilio-signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    headers
}
