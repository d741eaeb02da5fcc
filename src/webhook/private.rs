//! The webhook pieces the crate's fuzz targets and benchmarks reach through `crate::__private`.

use super::SignatureError;

/// What a signature covers after the URL, and whether the body matched `bodySHA256`.
pub(crate) fn signed_suffix(
    url: &str,
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<(Vec<u8>, bool), SignatureError> {
    super::signature::signed_content(url, content_type, body).map(|s| (s.suffix, s.body_hash_ok))
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
    super::forwarded::request_url(headers, own_authority, path_and_query, trust_forwarded)
        .map_err(|e| e.to_string())
}
