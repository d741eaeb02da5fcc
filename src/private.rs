//! Entry points into the decoding and encoding code for the crate's own benchmarks and fuzz
//! targets. Not part of the public API: no stability promise, hidden from the docs.

use crate::error::{Error, RequestInfo};
use crate::generated::types;
use crate::message::MessageContent;
use crate::model::Message;
use crate::sid::{AccountSid, CallSid};
use crate::transport;

fn request() -> RequestInfo {
    RequestInfo {
        operation: "CreateUserDefinedMessage",
        idempotency_key: Some("key".to_owned()),
        request_id: None,
        attempts: 1,
        gave_up: None,
    }
}

/// The form body `send_message` sends for `content` (the generated request type, encoded the
/// way the generated client encodes it).
pub fn encode_message_form(content: &MessageContent, idempotency_key: &str) -> String {
    let body = types::CreateUserDefinedMessageRequest {
        content: content.as_str().to_owned(),
        idempotency_key: Some(idempotency_key.to_owned()),
    };
    serde_urlencoded::to_string(&body).unwrap_or_default()
}

/// Decodes a 201 body of `CreateUserDefinedMessage` into the typed result.
pub fn decode_message_response(
    body: &[u8],
    account: AccountSid,
    call: CallSid,
) -> Result<Message, Error> {
    let parsed: types::UserDefinedMessage =
        serde_json::from_slice(body).map_err(|e| Error::Decode {
            request: Box::new(request()),
            status: reqwest::StatusCode::CREATED,
            reason: e.to_string(),
            body_excerpt: String::new(),
        })?;
    crate::message::message_from(parsed, account, call, request())
}

/// Decodes an error body answered with `status`, as the client does.
pub fn decode_error_response(status: u16, body: &[u8]) -> Error {
    let status = reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
    transport::error_from_body(status, body, request())
}
