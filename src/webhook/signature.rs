//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted form parameters)), and its
//! `bodySHA256` variant for JSON bodies, where the URL carries the body's hash and is signed alone.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The request header that carries Twilio's signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The query parameter that carries the hex SHA-256 of a JSON body.
pub const BODY_SHA256_PARAM: &str = "bodySHA256";

type HmacSha1 = Hmac<Sha1>;

/// Checks `X-Twilio-Signature` headers against one or more auth tokens.
///
/// Holding several tokens lets a service rotate its auth token without downtime: accept the
/// primary and the secondary token while Twilio switches over, then drop the old one.
/// An empty token never validates anything, so a missing environment variable cannot turn into
/// a key that everyone knows.
///
/// ```
/// use twilio_call_messages::SignatureValidator;
///
/// let validator = SignatureValidator::new("12345");
/// let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
/// let params = [
///     ("CallSid", "CA1234567890ABCDE"),
///     ("Caller", "+14158675309"),
///     ("Digits", "1234"),
///     ("From", "+14158675309"),
///     ("To", "+18005551212"),
/// ];
/// assert!(validator.validate_form(url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
/// assert!(!validator.validate_form(url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B9="));
/// ```
#[derive(Clone)]
pub struct SignatureValidator {
    tokens: Vec<Box<str>>,
}

impl fmt::Debug for SignatureValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The count helps diagnose a rotation; the tokens themselves never print.
        f.debug_struct("SignatureValidator")
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .finish()
    }
}

impl SignatureValidator {
    /// A validator for one auth token (the account's, or the one Twilio signs with).
    pub fn new(auth_token: impl Into<String>) -> Self {
        SignatureValidator {
            tokens: vec![auth_token.into().into_boxed_str()],
        }
    }

    /// A validator that accepts a signature made with any of `tokens`; the first one signs
    /// (see [`sign_form`](Self::sign_form)). With no tokens, nothing validates.
    pub fn new_with_tokens<I, T>(tokens: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        SignatureValidator {
            tokens: tokens
                .into_iter()
                .map(|t| t.into().into_boxed_str())
                .collect(),
        }
    }

    /// Also accepts signatures made with `auth_token` (e.g. the secondary token during a
    /// rotation).
    #[must_use]
    pub fn with_token(mut self, auth_token: impl Into<String>) -> Self {
        self.tokens.push(auth_token.into().into_boxed_str());
        self
    }

    /// Checks the signature of a request with a form body (or no body).
    ///
    /// `url` is the full URL Twilio requested, with its query string; `params` are the decoded
    /// form fields, in any order, names possibly repeated. The URL is also tried with the
    /// default port (`:443` for https, `:80` for http) added or removed, because Twilio is
    /// inconsistent about it. Never panics; a malformed signature is simply not valid.
    pub fn validate_form<N, V>(&self, url: &str, params: &[(N, V)], signature: &str) -> bool
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let Some(expected) = decode_signature(signature) else {
            return false;
        };
        self.matches_any(url, canonical_params(params).as_bytes(), &expected)
    }

    /// Checks the signature of a request with a JSON body.
    ///
    /// The URL must carry `bodySHA256=<hex SHA-256 of raw_body>` (hex in either case) exactly
    /// once, and the signature is over the URL alone. Both must hold.
    pub fn validate_json(&self, url: &str, raw_body: &[u8], signature: &str) -> bool {
        let Some(claimed) = body_hash_param(url) else {
            return false;
        };
        let body_ok: bool = claimed.ct_eq(Sha256::digest(raw_body).as_slice()).into();
        // Checked even when the hash differs: the time taken should not tell which one failed.
        let signature_ok = decode_signature(signature)
            .is_some_and(|expected| self.matches_any(url, b"", &expected));
        body_ok & signature_ok
    }

    /// Checks a request whatever its body, the way a webhook endpoint needs it:
    ///
    /// - a URL with a `bodySHA256` parameter: [`validate_json`](Self::validate_json);
    /// - an empty body (e.g. a `GET`): the URL alone;
    /// - a form body (`application/x-www-form-urlencoded`, or no content type): its decoded
    ///   fields, with [`validate_form`](Self::validate_form);
    /// - anything else (e.g. JSON without `bodySHA256`) is rejected: the signature would not
    ///   cover the body.
    pub fn validate_request(
        &self,
        url: &str,
        content_type: Option<&str>,
        raw_body: &[u8],
        signature: &str,
    ) -> bool {
        if query_param_count(url, BODY_SHA256_PARAM) > 0 {
            return self.validate_json(url, raw_body, signature);
        }
        if raw_body.is_empty() {
            return self.validate_form::<&str, &str>(url, &[], signature);
        }
        if content_type.is_some_and(|ct| !is_media_type(ct, "application/x-www-form-urlencoded")) {
            return false;
        }
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw_body) {
            Ok(params) => self.validate_form(url, &params, signature),
            Err(_) => false,
        }
    }

    /// The signature Twilio would send for this URL and form body, made with the first token.
    /// For testing a webhook endpoint (or calling one the way Twilio does).
    pub fn sign_form<N, V>(&self, url: &str, params: &[(N, V)]) -> String
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let token = self.tokens.first().map_or("", |t| t);
        STANDARD.encode(mac(token, url, canonical_params(params).as_bytes()))
    }

    /// Signs a JSON body the way Twilio does, with the first token: returns the URL with
    /// `bodySHA256=<hex>` appended, to post the body to, and the signature for that URL.
    pub fn sign_json(&self, url: &str, raw_body: &[u8]) -> (String, String) {
        let hash = hex(&Sha256::digest(raw_body));
        let (base, fragment) = url
            .split_once('#')
            .map_or((url, None), |(b, f)| (b, Some(f)));
        let separator = match base.split_once('?') {
            None => "?",
            Some((_, "")) => "",
            Some(_) => "&",
        };
        let mut signed_url = format!("{base}{separator}{BODY_SHA256_PARAM}={hash}");
        if let Some(fragment) = fragment {
            signed_url.push('#');
            signed_url.push_str(fragment);
        }
        let signature = self.sign_form::<&str, &str>(&signed_url, &[]);
        (signed_url, signature)
    }

    /// Whether any token signs `url` (as given, or with the default port toggled) + `suffix`.
    fn matches_any(&self, url: &str, suffix: &[u8], expected: &[u8]) -> bool {
        let alternate = toggle_default_port(url);
        let urls = std::iter::once(Cow::Borrowed(url)).chain(alternate.map(Cow::Owned));
        let urls: Vec<Cow<'_, str>> = urls.collect();
        self.tokens.iter().filter(|t| !t.is_empty()).any(|token| {
            urls.iter().any(|url| {
                let Ok(mut mac) = HmacSha1::new_from_slice(token.as_bytes()) else {
                    return false;
                };
                mac.update(url.as_bytes());
                mac.update(suffix);
                // `verify_slice` compares in constant time (and rejects a wrong length).
                mac.verify_slice(expected).is_ok()
            })
        })
    }
}

fn mac(token: &str, url: &str, suffix: &[u8]) -> Vec<u8> {
    match HmacSha1::new_from_slice(token.as_bytes()) {
        Ok(mut mac) => {
            mac.update(url.as_bytes());
            mac.update(suffix);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; this arm exists only to avoid an unwrap.
        Err(_) => Vec::new(),
    }
}

/// Names sorted, each name's distinct values sorted, concatenated without separators.
fn canonical_params<N: AsRef<str>, V: AsRef<str>>(params: &[(N, V)]) -> String {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        sorted
            .entry(name.as_ref())
            .or_default()
            .insert(value.as_ref());
    }
    let mut out = String::new();
    for (name, values) in sorted {
        for value in values {
            out.push_str(name);
            out.push_str(value);
        }
    }
    out
}

/// The raw signature bytes, or `None` for anything that is not canonical standard base64.
fn decode_signature(signature: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(signature.trim())
        .ok()
        .filter(|bytes| !bytes.is_empty())
}

/// The URL with the scheme's default port added (if it has no port) or removed (if it has
/// exactly that port); `None` for other schemes, other ports, or URLs that do not parse.
fn toggle_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        return None;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    // Credentials (`user:pass@`) come before the host; their colon is not a port separator.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    let port_colon = if host_port.starts_with('[') {
        // An IPv6 literal: its colons are part of the address, the port follows `]`.
        let close = host_port.find(']')?;
        host_port[close + 1..].starts_with(':').then_some(close + 1)
    } else {
        host_port.rfind(':')
    };
    let offset = scheme.len() + "://".len() + host_start;
    match port_colon {
        None if host_port.is_empty() => None,
        None => {
            let end = offset + host_port.len();
            Some(format!("{}:{default_port}{}", &url[..end], &url[end..]))
        }
        Some(colon) if &host_port[colon + 1..] == default_port => Some(format!(
            "{}{}",
            &url[..offset + colon],
            &url[offset + host_port.len()..]
        )),
        Some(_) => None,
    }
}

/// The query string of a URL, without the fragment.
fn query(url: &str) -> &str {
    let without_fragment = url.split_once('#').map_or(url, |(u, _)| u);
    without_fragment.split_once('?').map_or("", |(_, q)| q)
}

fn query_values<'a>(url: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    query(url).split('&').filter_map(move |pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then_some(v)
    })
}

fn query_param_count(url: &str, name: &str) -> usize {
    query_values(url, name).count()
}

/// The `bodySHA256` value, if present exactly once and 64 hex digits.
fn body_hash_param(url: &str) -> Option<[u8; 32]> {
    let mut values = query_values(url, BODY_SHA256_PARAM);
    let value = values.next()?;
    if values.next().is_some() {
        // Two hashes for one body: ambiguous, so not trusted.
        return None;
    }
    decode_hex32(value)
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether a `Content-Type` value names `media_type` (parameters and case ignored).
pub(crate) fn is_media_type(content_type: &str, media_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggles_only_the_default_port() {
        let cases = [
            ("https://a.com/p?q=1", Some("https://a.com:443/p?q=1")),
            ("https://a.com:443/p", Some("https://a.com/p")),
            ("HTTP://a.com", Some("HTTP://a.com:80")),
            ("http://a.com:80?x", Some("http://a.com?x")),
            ("http://a.com:443/", None),
            ("https://a.com:8443/", None),
            ("https://u:p@a.com/x", Some("https://u:p@a.com:443/x")),
            ("https://u:p@a.com:443/x", Some("https://u:p@a.com/x")),
            ("https://[::1]/x", Some("https://[::1]:443/x")),
            ("https://[::1]:443/x", Some("https://[::1]/x")),
            ("https://[::1/x", None),
            ("https:///x", None),
            ("ftp://a.com/", None),
            ("not a url", None),
            ("", None),
            ("https://é.com:443/é", Some("https://é.com/é")),
        ];
        for (url, expected) in cases {
            assert_eq!(toggle_default_port(url).as_deref(), expected, "{url}");
        }
    }

    #[test]
    fn canonical_params_sorts_and_dedupes() {
        let params = [("b", "2"), ("a", "z"), ("a", "y"), ("a", "z"), ("ab", "")];
        assert_eq!(canonical_params(&params), "ayazabb2");
    }

    #[test]
    fn finds_the_body_hash_once() {
        let h = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert!(body_hash_param(&format!("https://a/?bodySHA256={h}")).is_some());
        assert!(
            body_hash_param(&format!("https://a/?x=1&bodySHA256={}", h.to_uppercase())).is_some()
        );
        assert!(body_hash_param(&format!("https://a/?bodySHA256={h}&bodySHA256={h}")).is_none());
        assert!(body_hash_param(&format!("https://a/#bodySHA256={h}")).is_none());
        assert!(body_hash_param("https://a/?bodySHA256=zz").is_none());
        assert!(body_hash_param(&format!("https://a/?bodySHA256={}", &h[..62])).is_none());
        assert!(body_hash_param("https://a/?bodySHA256=é").is_none());
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..32).collect();
        let text = hex(&bytes);
        assert_eq!(decode_hex32(&text).map(|b| b.to_vec()), Some(bytes));
    }

    #[test]
    fn debug_redacts_tokens() {
        let v = SignatureValidator::new("primary-secret").with_token("secondary-secret");
        let debug = format!("{v:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("2 redacted"), "{debug}");
    }

    #[test]
    fn empty_tokens_never_validate() {
        let empty = SignatureValidator::new("");
        let signature = empty.sign_form::<&str, &str>("https://a.com/", &[]);
        assert!(!empty.validate_form::<&str, &str>("https://a.com/", &[], &signature));
        let none = SignatureValidator::new_with_tokens(Vec::<String>::new());
        assert!(!none.validate_form::<&str, &str>("https://a.com/", &[], &signature));
    }

    #[test]
    fn sign_json_appends_the_hash() {
        let v = SignatureValidator::new("t");
        let (url, _) = v.sign_json("https://a.com/x", b"{}");
        assert!(url.starts_with("https://a.com/x?bodySHA256="), "{url}");
        let (url, _) = v.sign_json("https://a.com/x?y=1#f", b"{}");
        assert!(url.starts_with("https://a.com/x?y=1&bodySHA256="), "{url}");
        assert!(url.ends_with("#f"), "{url}");
        let (url, _) = v.sign_json("https://a.com/x?", b"{}");
        assert!(url.starts_with("https://a.com/x?bodySHA256="), "{url}");
    }
}
