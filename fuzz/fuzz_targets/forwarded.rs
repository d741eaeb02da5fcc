//! The URL the axum extractor rebuilds from `Forwarded`, `X-Forwarded-*` and `Host`:
//! - it never panics;
//! - what it rebuilds is `http` or `https`, `://`, an authority with no user info and no path,
//!   then the request's own path and query, unchanged;
//! - when the proxy headers are not trusted, they change nothing (anyone can send them).
#![no_main]
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::__private::forwarded_request_url;
use twilio_call_messages::reqwest::header::{HeaderMap, HeaderName, HeaderValue};

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(Name, Vec<u8>)>,
    own_authority: Option<String>,
    path_and_query: String,
    trust: bool,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Host,
    Forwarded,
    Proto,
    ForwardedHost,
    Port,
    Other(String),
}

const PROXY: [&str; 4] = [
    "forwarded",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
];

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    for (name, value) in input.headers.into_iter().take(12) {
        let name = match name {
            Name::Host => HeaderName::from_static("host"),
            Name::Forwarded => HeaderName::from_static("forwarded"),
            Name::Proto => HeaderName::from_static("x-forwarded-proto"),
            Name::ForwardedHost => HeaderName::from_static("x-forwarded-host"),
            Name::Port => HeaderName::from_static("x-forwarded-port"),
            Name::Other(other) => match HeaderName::from_bytes(other.as_bytes()) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.append(name, value);
        }
    }
    let own = input.own_authority.as_deref();
    let path = &input.path_and_query;
    let result = forwarded_request_url(&headers, own, path, input.trust);

    if let Ok(url) = &result {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .unwrap_or_else(|| panic!("not http(s): {url:?}"));
        let authority = rest
            .strip_suffix(path.as_str())
            .unwrap_or_else(|| panic!("path changed: {url:?}"));
        assert!(!authority.is_empty(), "{url:?}");
        assert!(
            !authority.contains(['@', '/', '?', '#', ' ']),
            "authority {authority:?} of {url:?}"
        );
    }
    if !input.trust {
        let mut without = headers.clone();
        for name in PROXY {
            without.remove(name);
        }
        assert_eq!(forwarded_request_url(&without, own, path, false), result);
        if let Ok(url) = &result {
            assert!(url.starts_with("http://"), "{url:?}");
        }
    }
});
