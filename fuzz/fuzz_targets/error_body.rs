//! Any status and error body decodes to an `Error` that keeps the status, without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::__private::decode_error_response;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [a, b, rest @ ..] => (400 + u16::from_le_bytes([*a, *b]) % 200, rest),
        _ => (500, data),
    };
    let error = decode_error_response(status, body);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
    let _ = (
        error.to_string(),
        format!("{error:?}"),
        error.is_retryable(),
    );
});
