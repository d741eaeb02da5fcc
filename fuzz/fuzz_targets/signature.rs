//! The boolean helpers are thin wrappers: each says what `verify` says for the same request,
//! and what `sign_form` signs `validate_form` accepts. Never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::SignatureValidator;
// reqwest's header types are http's: no extra dependency for the fuzz crate.
use twilio_call_messages::reqwest::header::{HeaderMap, HeaderValue};

fuzz_target!(|data: &[u8]| {
    // url \0 body \0 signature \0 content type
    let mut parts = data.splitn(4, |b| *b == 0);
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let signature = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let content_type = parts
        .next()
        .map(|ct| String::from_utf8_lossy(ct).into_owned());

    let validator = SignatureValidator::new("fuzz-token").with_token("second-token");
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert("content-type", ct);
    }
    let Ok(signature_value) = HeaderValue::from_str(&signature) else {
        return;
    };
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let mut signed_headers = headers.clone();
    signed_headers.insert("x-twilio-signature", signature_value);
    let verified = validator.verify(&url, &signed_headers, body).is_ok();

    assert_eq!(
        validator.validate_request(&url, content_type.as_deref(), body, &signature),
        verified
    );
    let has_hash = url
        .split('#')
        .next()
        .and_then(|u| u.split_once('?'))
        .is_some_and(|(_, q)| {
            q.split('&')
                .any(|p| p.split('=').next() == Some("bodySHA256"))
        });
    assert_eq!(
        validator.validate_json(&url, body, &signature),
        has_hash
            && validator
                .verify(
                    &url,
                    &{
                        let mut h = signed_headers.clone();
                        h.remove("content-type");
                        h
                    },
                    body
                )
                .is_ok()
    );

    // The form helpers: the body's fields, signed and checked with the first token.
    let fields: Vec<(String, String)> = form_urlencoded_pairs(body);
    let signed = validator.sign_form(&url, &fields);
    assert!(
        validator.validate_form(&url, &fields, &signed),
        "{url:?} {fields:?}"
    );
    let other = SignatureValidator::new("another-token");
    assert!(!validator.validate_form(&url, &fields, &other.sign_form(&url, &fields)));
});

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}
