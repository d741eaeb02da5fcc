//! Verification never panics and never accepts what it did not sign, in any scheme.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::SignatureValidator;
// reqwest's header types are http's: no extra dependency for the fuzz crate.
use twilio_call_messages::reqwest::header::{HeaderMap, HeaderValue};

fuzz_target!(|data: &[u8]| {
    // url \0 body \0 signature \0 settings header \0 content type
    let mut parts = data.splitn(5, |b| *b == 0);
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let signature = parts.next().unwrap_or_default();
    let settings = parts.next();
    let content_type = parts.next();

    let validator = SignatureValidator::new("fuzz-token")
        .with_token("second-token")
        .with_shared_key("fuzz-key", "fuzz-shared-secret");
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-twilio-webhooks-signature-settings", settings),
        ("content-type", content_type),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    }
    let mut with_signature = headers.clone();
    if let Ok(value) = HeaderValue::from_bytes(signature) {
        with_signature.insert("x-twilio-signature", value);
    }
    let _ = validator.verify(&url, &with_signature, body);

    // What it signs, it accepts (unless the body cannot be covered, or the URL's bodySHA256
    // is not this body's); another key's signature is refused.
    if let Ok(signed) = validator.sign_request(&url, &headers, body) {
        let mut signed_headers = headers.clone();
        if let Ok(value) = HeaderValue::from_str(&signed) {
            signed_headers.insert("x-twilio-signature", value);
            let result = validator.verify(&url, &signed_headers, body);
            assert!(
                result.is_ok()
                    || result == Err(twilio_call_messages::webhook::SignatureError::BodyHashMismatch),
                "{result:?}"
            );
            let other = SignatureValidator::new("another-token")
                .with_shared_key("fuzz-key", "another-secret");
            if let Ok(forged) = other.sign_request(&url, &headers, body) {
                if forged != signed {
                    let mut forged_headers = headers.clone();
                    forged_headers.insert("x-twilio-signature", HeaderValue::from_str(&forged).unwrap());
                    assert!(validator.verify(&url, &forged_headers, body).is_err());
                }
            }
        }
    }
});
