//! Any 201 body decodes to a `Message` or a `Decode` error, without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::__private::decode_message_response;

fuzz_target!(|data: &[u8]| {
    let account = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
    let call = "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".parse().unwrap();
    match decode_message_response(data, account, call) {
        Ok(message) => assert_eq!(message.sid.as_str().len(), 34),
        Err(e) => assert!(!e.is_retryable(), "{e}"),
    }
});
