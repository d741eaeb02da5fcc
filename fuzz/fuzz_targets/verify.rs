//! The full `verify`, with an arbitrary URL, headers and body:
//! - it never panics, whatever the headers (signature, settings, content type) hold;
//! - an arbitrary signature verifies only if it is the one `sign_request` makes for one of the
//!   URL's variants (no forgery);
//! - whatever `sign_request` signs verifies (a `bodySHA256` that is not the body's is
//!   `BodyHashMismatch`);
//! - after edits to the URL or the body, the signature is accepted exactly when Twilio's scheme
//!   signs the same text: some URL variant of the edited request (port added or removed, WHATWG
//!   normalized, Node's legacy querystring) followed by its canonical parameters equals the
//!   signed URL followed by its parameters. So a change that only moves `&` text into a name,
//!   or a port variant, is accepted, and every other change to the signed text is refused; a
//!   changed body under a signed `bodySHA256` never verifies.
#![no_main]
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::__private::{carries_body_hash, signature_url_variants, signed_suffix};
use twilio_call_messages::SignatureValidator;
// reqwest's header types are http's: no extra dependency for the fuzz crate.
use twilio_call_messages::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use twilio_call_messages::webhook::SignatureError;

#[derive(Arbitrary, Debug)]
struct Input {
    url: String,
    /// Append `bodySHA256` of the body to the URL (Twilio's JSON scheme).
    hash_body: bool,
    body: Vec<u8>,
    content_type: ContentType,
    settings: Settings,
    extra_headers: Vec<(String, Vec<u8>)>,
    signature: Vec<u8>,
    edits: Vec<Edit>,
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    Absent,
    Form,
    Json,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Settings {
    Absent,
    SharedSha256,
    SharedSha1,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Url(Change<char>),
    Body(Change<u8>),
}

#[derive(Arbitrary, Debug)]
enum Change<T> {
    Set(u16, T),
    Insert(u16, T),
    Remove(u16),
}

impl<T> Change<T> {
    fn apply(self, items: &mut Vec<T>) {
        let at = |i: u16, len: usize| usize::from(i) % (len + 1);
        match self {
            Change::Set(i, x) if !items.is_empty() => {
                let i = usize::from(i) % items.len();
                items[i] = x;
            }
            Change::Set(..) => {}
            Change::Insert(i, x) => {
                let i = at(i, items.len());
                items.insert(i, x);
            }
            Change::Remove(i) if !items.is_empty() => {
                let i = usize::from(i) % items.len();
                items.remove(i);
            }
            Change::Remove(_) => {}
        }
    }
}

fn with_signature(headers: &HeaderMap, signature: &[u8]) -> HeaderMap {
    let mut headers = headers.clone();
    if let Ok(value) = HeaderValue::from_bytes(signature) {
        headers.insert("x-twilio-signature", value);
    }
    headers
}

fuzz_target!(|input: Input| {
    let validator = SignatureValidator::new("fuzz-token")
        .with_token("second-token")
        .with_shared_key("fuzz-key", "fuzz-shared-secret");
    let url = if input.hash_body {
        // Any validator appends the same hash; only the URL is kept.
        SignatureValidator::new("x")
            .sign_json(&input.url, &input.body)
            .0
    } else {
        input.url
    };
    let body = input.body;

    let mut headers = HeaderMap::new();
    for (name, value) in &input.extra_headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers.remove("x-twilio-signature");
    let content_type: Option<&[u8]> = match &input.content_type {
        ContentType::Absent => None,
        ContentType::Form => Some(b"application/x-www-form-urlencoded"),
        ContentType::Json => Some(b"application/json; charset=utf-8"),
        ContentType::Raw(raw) => Some(raw),
    };
    if let Some(value) = content_type.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert("content-type", value);
    }
    let settings: Option<&[u8]> = match &input.settings {
        Settings::Absent => None,
        Settings::SharedSha256 => Some(b"key=fuzz-key,algorithm=HMAC_SHA256"),
        Settings::SharedSha1 => Some(b"algorithm=hmac_sha1, key=fuzz-key"),
        Settings::Raw(raw) => Some(raw),
    };
    if let Some(value) = settings.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert("x-twilio-webhooks-signature-settings", value);
    }
    // What verify reads, after the extra headers had their say.
    let content_type = headers.get("content-type").map(|v| v.as_bytes().to_vec());
    let suffix = |url: &str, body: &[u8]| signed_suffix(url, content_type.as_deref(), body);

    // No header value panics it, and a made-up signature is only accepted if it is the real
    // one for a variant of the URL.
    let arbitrary = validator.verify(&url, &with_signature(&headers, &input.signature), &body);
    if arbitrary.is_ok() {
        let given = String::from_utf8_lossy(input.signature.trim_ascii()).into_owned();
        assert!(
            signature_url_variants(&url)
                .iter()
                .any(|v| validator.sign_request(v, &headers, &body).ok() == Some(given.clone())),
            "an arbitrary signature verified: {given:?}"
        );
    }

    let Ok(signed) = validator.sign_request(&url, &headers, &body) else {
        // Unsignable (unknown key, unsupported algorithm, body the scheme cannot cover): never
        // verifiable either.
        assert!(arbitrary.is_err());
        return;
    };
    let signed_headers = with_signature(&headers, signed.as_bytes());
    let (original_suffix, hash_ok) = suffix(&url, &body).expect("sign_request signed it");
    let expected = if hash_ok {
        Ok(())
    } else {
        Err(SignatureError::BodyHashMismatch)
    };
    assert_eq!(validator.verify(&url, &signed_headers, &body), expected);

    // Another key's signature over the same request is refused.
    let other = SignatureValidator::new("another-token").with_shared_key("fuzz-key", "another");
    if let Ok(forged) = other.sign_request(&url, &headers, &body) {
        let forged = with_signature(&headers, forged.as_bytes());
        assert!(validator.verify(&url, &forged, &body).is_err());
    }

    if input.edits.is_empty() {
        return;
    }
    let mut url_chars: Vec<char> = url.chars().collect();
    let mut edited_body = body.clone();
    for edit in input.edits.into_iter().take(8) {
        match edit {
            Edit::Url(change) => change.apply(&mut url_chars),
            Edit::Body(change) => change.apply(&mut edited_body),
        }
    }
    let edited_url: String = url_chars.into_iter().collect();
    let result = validator.verify(&edited_url, &signed_headers, &edited_body);
    let Ok((edited_suffix, edited_hash_ok)) = suffix(&edited_url, &edited_body) else {
        assert!(
            matches!(result, Err(SignatureError::Unverifiable(_))),
            "{result:?}"
        );
        return;
    };
    let mut signed_text = url.as_bytes().to_vec();
    signed_text.extend_from_slice(&original_suffix);
    let same_text = signature_url_variants(&edited_url).iter().any(|variant| {
        variant.len() + edited_suffix.len() == signed_text.len()
            && signed_text.starts_with(variant.as_bytes())
            && signed_text.ends_with(&edited_suffix)
    });
    let expected = match (same_text, edited_hash_ok) {
        (true, true) => Ok(()),
        (true, false) => Err(SignatureError::BodyHashMismatch),
        (false, _) => Err(SignatureError::SignatureMismatch),
    };
    assert_eq!(
        result, expected,
        "{url:?} {body:?} -> {edited_url:?} {edited_body:?}"
    );
    // Independently of the oracle above: a body whose hash the URL carries cannot change.
    // (Carried as a query parameter: `bodySHA256=` inside another parameter's name puts no
    // body under a hash, and a form body's invalid UTF-8 bytes decode alike, as Twilio's
    // helper libraries decode them.)
    if edited_url == url && carries_body_hash(&url) && edited_body != body {
        assert!(result.is_err());
    }
});
