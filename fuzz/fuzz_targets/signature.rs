//! Validation never panics and never accepts what it did not sign.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::SignatureValidator;

fuzz_target!(|data: &[u8]| {
    // url \0 body \0 signature
    let mut parts = data.splitn(3, |b| *b == 0);
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let signature = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();

    let validator = SignatureValidator::new("fuzz-token").with_token("second-token");
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let _ = validator.validate_form(&url, &params, &signature);
    let _ = validator.validate_json(&url, body, &signature);
    let _ = validator.validate_request(&url, Some("application/json"), body, &signature);

    // What it signs, it accepts; a forged signature from another token is refused.
    let signed = validator.sign_form(&url, &params);
    assert!(validator.validate_form(&url, &params, &signed));
    let other = SignatureValidator::new("another-token").sign_form(&url, &params);
    assert!(!validator.validate_form(&url, &params, &other) || other == signed);
});
