//! Telling Twilio's callbacks from anyone else's, and reading them: the request read once (its
//! headers, its body by one content-type rule), the URL Twilio requested rebuilt, the signature
//! checked with every scheme Twilio signs, and the event parsed from the same reading.

mod body;
mod error;
mod event;
mod forwarded;
mod headers;
mod params;
mod settings;
mod signature;
mod url_variants;

pub(crate) use body::Body;
pub use error::{SignatureError, Unverifiable};
pub use event::{CallMessageEvent, EventError};
pub(crate) use forwarded::{UrlError, request_url};
pub(crate) use headers::CallbackHeaders;
pub(crate) use params::form_params;
pub use settings::{Algorithm, SIGNATURE_SETTINGS_HEADER};
pub use signature::{BODY_SHA256_PARAM, SIGNATURE_HEADER, SignatureValidator};

/// The pieces the crate's own fuzz targets and benchmarks reach through `__private`.
#[cfg(feature = "__private-do-not-use")]
pub(crate) mod internal {
    use super::{Body, CallbackHeaders, SignatureError};

    /// What a signature covers after the URL, and whether the body matched `bodySHA256`.
    pub(crate) fn signed_suffix(
        url: &str,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(Vec<u8>, bool), SignatureError> {
        super::signature::signed_content(url, &Body::read(content_type, body), body)
            .map(|s| (s.suffix, s.body_hash_ok))
    }

    /// Whether the URL's query has a `bodySHA256` parameter (the text `bodySHA256=` elsewhere,
    /// in a path or inside another parameter's name, does not count).
    pub(crate) fn carries_body_hash(url: &str) -> bool {
        super::signature::carries_body_hash(url)
    }

    /// The URLs a signature is checked against, in the order `verify` tries them, each once.
    pub(crate) fn url_variants(url: &str) -> Vec<String> {
        let mut all: Vec<String> = super::url_variants::as_received(url)
            .map(|u| u.into_owned())
            .collect();
        for candidate in super::url_variants::normalized(url) {
            if !all.contains(&candidate) {
                all.push(candidate);
            }
        }
        all
    }

    /// The URL the receiver rebuilds, or the reason it cannot, as text.
    pub(crate) fn request_url(
        headers: &http::HeaderMap,
        own_authority: Option<&str>,
        path_and_query: &str,
        trust_forwarded: bool,
    ) -> Result<String, String> {
        super::forwarded::request_url(
            &CallbackHeaders::of(headers),
            own_authority,
            path_and_query,
            trust_forwarded,
        )
        .map_err(|e| e.to_string())
    }
}
