//! `X-Twilio-Signature`: base64(HMAC(key, URL + the request's parameters)), or of the URL alone
//! when it carries `bodySHA256`, the hex SHA-256 of the body. The key is the auth token with
//! HMAC-SHA1, or, when `X-Twilio-Webhooks-Signature-Settings` says so, a shared key with the
//! algorithm it names. [`SignatureValidator::verify`] is the one place that decides; everything
//! else (the boolean helpers, the axum extractor) goes through it.
//!
//! References: twilio-python 9.13 `twilio/request_validator.py` (`RequestValidator.validate`,
//! `compute_signature`, `get_signature_algorithm`) and twilio-node 6.2 `lib/webhooks/webhooks.js`
//! (`validateRequest`, `validateIncomingRequest`), read, not copied.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::body::Body;
use super::error::{SignatureError, bounded};
use super::headers::CallbackHeaders;
use super::params::{Param, canonical};
use super::settings::{Algorithm, Settings};
use super::url_variants;

/// The request header that carries Twilio's signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The query parameter that carries the hex SHA-256 of a body signed with the URL alone.
pub const BODY_SHA256_PARAM: &str = "bodySHA256";

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// One secret, ready to sign: HMAC keys are hashed once here, not on every request.
#[derive(Clone)]
struct SigningKey {
    sha1: HmacSha1,
    sha256: HmacSha256,
    /// An empty secret never verifies: a missing environment variable must not become a key
    /// everyone knows.
    usable: bool,
}

impl SigningKey {
    fn new(secret: &str) -> Self {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let sha1 = <HmacSha1 as Mac>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let sha256 = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        SigningKey {
            sha1,
            sha256,
            usable: !secret.is_empty(),
        }
    }

    /// Whether this secret with `algorithm` signs `url` + `suffix` as `expected`, compared in
    /// constant time (`verify_slice` also refuses a wrong length).
    fn verifies(&self, algorithm: Algorithm, url: &str, suffix: &[u8], expected: &[u8]) -> bool {
        self.usable
            && match algorithm {
                Algorithm::HmacSha1 => keyed(&self.sha1, url, suffix).verify_slice(expected),
                Algorithm::HmacSha256 => keyed(&self.sha256, url, suffix).verify_slice(expected),
            }
            .is_ok()
    }

    fn sign(&self, algorithm: Algorithm, url: &str, suffix: &[u8]) -> String {
        match algorithm {
            Algorithm::HmacSha1 => {
                STANDARD.encode(keyed(&self.sha1, url, suffix).finalize().into_bytes())
            }
            Algorithm::HmacSha256 => {
                STANDARD.encode(keyed(&self.sha256, url, suffix).finalize().into_bytes())
            }
        }
    }
}

/// The MAC of `url` + `suffix` under a prepared key, for either algorithm: the one place the
/// signed text is fed in.
fn keyed<M: Mac + Clone>(key: &M, url: &str, suffix: &[u8]) -> M {
    let mut mac = key.clone();
    mac.update(url.as_bytes());
    mac.update(suffix);
    mac
}

#[derive(Clone)]
struct SharedKey {
    id: Box<str>,
    secret: SigningKey,
}

/// Checks Twilio's webhook signatures: `X-Twilio-Signature`, with the account's auth tokens
/// (HMAC-SHA1) or, when the request carries `X-Twilio-Webhooks-Signature-Settings`, with the
/// shared key and algorithm that header names.
///
/// Several auth tokens and several shared keys can be held at once, for rotation without
/// downtime. A request with the settings header is only ever checked with the named shared key,
/// never with an auth token; one without it only with the auth tokens. Secrets never appear in
/// `Debug`, `Display` or errors.
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
    tokens: Vec<SigningKey>,
    shared_keys: Vec<SharedKey>,
}

impl fmt::Debug for SignatureValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts and key ids help diagnose a rotation; the secrets themselves never print.
        let ids: Vec<&str> = self.shared_keys.iter().map(|k| &*k.id).collect();
        f.debug_struct("SignatureValidator")
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .field("shared_keys", &ids)
            .finish()
    }
}

/// What the signature covers besides the URL, and whether the body matched `bodySHA256`.
pub(super) struct Signed {
    pub(super) suffix: Vec<u8>,
    pub(super) body_hash_ok: bool,
}

impl SignatureValidator {
    /// A validator for one auth token (the account's, or the one Twilio signs with).
    pub fn new(auth_token: impl Into<String>) -> Self {
        Self::new_with_tokens([auth_token])
    }

    /// A validator that accepts a signature made with any of `tokens`; the first one signs
    /// (see [`sign_form`](Self::sign_form)). With no tokens, only shared keys verify.
    pub fn new_with_tokens<I, T>(tokens: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        SignatureValidator {
            tokens: tokens
                .into_iter()
                .map(|t| SigningKey::new(&t.into()))
                .collect(),
            shared_keys: Vec::new(),
        }
    }

    /// Also accepts signatures made with `auth_token` (e.g. the secondary token during a
    /// rotation).
    #[must_use]
    pub fn with_token(mut self, auth_token: impl Into<String>) -> Self {
        self.tokens.push(SigningKey::new(&auth_token.into()));
        self
    }

    /// Also accepts requests signed with the shared key `key_id` (the id Twilio's Webhooks
    /// configuration API gives it, sent in `X-Twilio-Webhooks-Signature-Settings`) whose secret
    /// is `secret`. Call it once per key: hold the old and the new key while you rotate.
    #[must_use]
    pub fn with_shared_key(mut self, key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.shared_keys.push(SharedKey {
            id: key_id.into().into_boxed_str(),
            secret: SigningKey::new(&secret.into()),
        });
        self
    }

    /// Verifies a request as Twilio signs it, and says why not.
    ///
    /// `url` is the full URL Twilio requested (scheme, host, port if any, path, query);
    /// `headers` are the request's (`X-Twilio-Signature`, `X-Twilio-Webhooks-Signature-Settings`,
    /// `Content-Type`); `body` is the raw body. What is signed:
    ///
    /// - a URL with `bodySHA256`: the URL alone, and the body's SHA-256 (lowercase hex, as
    ///   Twilio sends it) must equal that parameter;
    /// - otherwise an empty body (a `GET`): the URL alone;
    /// - a form body (`application/x-www-form-urlencoded`, or no content type): the URL, then
    ///   the decoded fields, names sorted, each name's distinct values sorted;
    /// - a JSON body (`application/json`): the same with its top-level fields, which must all
    ///   be strings ([`Unverifiable`](super::Unverifiable) otherwise);
    /// - any other body is [`Unverifiable`](super::Unverifiable).
    ///
    /// The URL is tried in the order twilio-node 6.2 tries it: as received without and with
    /// the port, then normalized the WHATWG way, and with the query re-encoded as Node's legacy
    /// `querystring` does. Comparisons are constant-time.
    pub fn verify(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let headers = CallbackHeaders::of(headers);
        self.verify_read(url, &headers, &Body::read(headers.content_type, body), body)
    }

    /// [`verify`](Self::verify) of a request already read: its headers, and its body as read
    /// by the one content-type rule (`raw` is the same body's bytes, for `bodySHA256`).
    pub(crate) fn verify_read(
        &self,
        url: &str,
        headers: &CallbackHeaders<'_>,
        body: &Body<'_>,
        raw: &[u8],
    ) -> Result<(), SignatureError> {
        let signature = headers.signature.ok_or(SignatureError::MissingSignature)?;
        self.verify_parts(url, signature, headers.settings, body, raw)
    }

    /// The signature Twilio would put on this request, with the first auth token, or with the
    /// first shared key named by its `X-Twilio-Webhooks-Signature-Settings` header. For testing
    /// a webhook endpoint (or calling one the way Twilio does); for `bodySHA256`, build the URL
    /// with [`sign_json`](Self::sign_json).
    pub fn sign_request(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<String, SignatureError> {
        let headers = CallbackHeaders::of(headers);
        let (algorithm, mut keys) = self.keys_for(headers.settings)?;
        let signed = signed_content(url, &Body::read(headers.content_type, body), body)?;
        let key = keys.next().ok_or(SignatureError::UnknownKey {
            key_id: String::new(),
        })?;
        Ok(key.sign(algorithm, url, &signed.suffix))
    }

    /// Checks the signature of a request with a form body (or no body), signed with an auth
    /// token. `params` are the decoded fields, in any order, names possibly repeated: the
    /// fields are taken as given (no body is read and no `bodySHA256` is checked), so a
    /// request whose URL carries `bodySHA256` belongs to [`validate_json`](Self::validate_json)
    /// or [`verify`](Self::verify).
    pub fn validate_form<N, V>(&self, url: &str, params: &[(N, V)], signature: &str) -> bool
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let params = borrowed(params);
        let Some(expected) = decode_signature(signature.as_bytes()) else {
            return false;
        };
        let (algorithm, keys) = self.token_keys();
        self.url_matches(url, &canonical(params), &expected, algorithm, keys)
    }

    /// Checks the signature of a request whose URL carries `bodySHA256`, signed with an auth
    /// token: the URL alone is signed, and the hash must be the body's. A thin wrapper around
    /// [`verify`](Self::verify)'s work; `false` for a URL without `bodySHA256`.
    pub fn validate_json(&self, url: &str, raw_body: &[u8], signature: &str) -> bool {
        carries_body_hash(url)
            && self
                .verify_parts(
                    url,
                    signature.as_bytes(),
                    None,
                    &Body::read(None, raw_body),
                    raw_body,
                )
                .is_ok()
    }

    /// [`verify`](Self::verify) for a request without the settings header, as a boolean.
    pub fn validate_request(
        &self,
        url: &str,
        content_type: Option<&str>,
        raw_body: &[u8],
        signature: &str,
    ) -> bool {
        let body = Body::read(content_type.map(str::as_bytes), raw_body);
        self.verify_parts(url, signature.as_bytes(), None, &body, raw_body)
            .is_ok()
    }

    /// The signature Twilio would send for this URL and form body, made with the first token.
    pub fn sign_form<N, V>(&self, url: &str, params: &[(N, V)]) -> String
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let params = borrowed(params);
        let suffix = canonical(params);
        match self.tokens.first() {
            Some(token) => token.sign(Algorithm::HmacSha1, url, &suffix),
            None => String::new(),
        }
    }

    /// Signs a body the way Twilio does with `bodySHA256`, with the first token: returns the
    /// URL with `bodySHA256=<hex>` appended, to post the body to, and the signature for it.
    pub fn sign_json(&self, url: &str, raw_body: &[u8]) -> (String, String) {
        let signed_url = with_body_hash(url, raw_body);
        let signature = self.sign_form::<&str, &str>(&signed_url, &[]);
        (signed_url, signature)
    }

    fn verify_parts(
        &self,
        url: &str,
        signature: &[u8],
        settings: Option<&[u8]>,
        body: &Body<'_>,
        raw: &[u8],
    ) -> Result<(), SignatureError> {
        let (algorithm, keys) = self.keys_for(settings)?;
        let signed = signed_content(url, body, raw)?;
        // Both are checked whatever the other says: the time taken should not tell which failed.
        let signature_ok = decode_signature(signature).is_some_and(|expected| {
            self.url_matches(url, &signed.suffix, &expected, algorithm, keys)
        });
        match (signature_ok, signed.body_hash_ok) {
            (true, true) => Ok(()),
            (true, false) => Err(SignatureError::BodyHashMismatch),
            (false, _) => Err(SignatureError::SignatureMismatch),
        }
    }

    fn token_keys(&self) -> (Algorithm, KeyIter<'_>) {
        (Algorithm::HmacSha1, KeyIter::Tokens(self.tokens.iter()))
    }

    /// The algorithm and the secrets to try, chosen by the settings header alone.
    fn keys_for(
        &self,
        settings: Option<&[u8]>,
    ) -> Result<(Algorithm, KeyIter<'_>), SignatureError> {
        let Some(settings) = settings else {
            return Ok(self.token_keys());
        };
        let text = String::from_utf8_lossy(settings);
        let settings = Settings::parse(&text);
        let key_id = settings.key_id.unwrap_or("");
        // Twilio names a key we have no secret for: the receiver's configuration is behind.
        let Some(held) = self
            .shared_keys
            .iter()
            .find(|k| *k.id == *key_id && k.secret.usable)
        else {
            return Err(SignatureError::UnknownKey {
                key_id: bounded(key_id),
            });
        };
        let algorithm =
            settings
                .algorithm()
                .ok_or_else(|| SignatureError::UnsupportedAlgorithm {
                    algorithm: bounded(settings.algorithm.unwrap_or("")),
                })?;
        Ok((
            algorithm,
            KeyIter::Shared {
                keys: self.shared_keys.iter(),
                id: &held.id,
            },
        ))
    }

    /// Whether any key signs one of the URL's variants + `suffix` as `expected`.
    fn url_matches(
        &self,
        url: &str,
        suffix: &[u8],
        expected: &[u8],
        algorithm: Algorithm,
        keys: KeyIter<'_>,
    ) -> bool {
        let try_url = |candidate: &str| {
            keys.clone()
                .any(|k| k.verifies(algorithm, candidate, suffix, expected))
        };
        let received = url_variants::as_received(url);
        // Lazily: the first variant is the URL itself in the common case, and matches.
        if received.clone().any(|candidate| try_url(&candidate)) {
            return true;
        }
        let mut tried: Vec<String> = received.map(Cow::into_owned).collect();
        for candidate in url_variants::normalized(url) {
            if tried.contains(&candidate) {
                continue;
            }
            if try_url(&candidate) {
                return true;
            }
            tried.push(candidate);
        }
        false
    }
}

/// The secrets a request may be signed with.
#[derive(Clone)]
enum KeyIter<'a> {
    Tokens(std::slice::Iter<'a, SigningKey>),
    Shared {
        keys: std::slice::Iter<'a, SharedKey>,
        id: &'a str,
    },
}

impl<'a> Iterator for KeyIter<'a> {
    type Item = &'a SigningKey;
    fn next(&mut self) -> Option<&'a SigningKey> {
        match self {
            KeyIter::Tokens(tokens) => tokens.next(),
            KeyIter::Shared { keys, id } => keys.find(|k| *k.id == **id).map(|k| &k.secret),
        }
    }
}

/// Caller-given fields as the canonical encoder takes them (borrowed, not copied).
fn borrowed<N: AsRef<str>, V: AsRef<str>>(params: &[(N, V)]) -> Vec<Param<'_>> {
    params
        .iter()
        .map(|(n, v)| (n.as_ref().into(), v.as_ref().into()))
        .collect()
}

/// What the signature covers after the URL: nothing with `bodySHA256` in the URL (the hash
/// must then be `raw`'s), otherwise the body's fields as [`Body`] read them.
pub(super) fn signed_content(
    url: &str,
    body: &Body<'_>,
    raw: &[u8],
) -> Result<Signed, SignatureError> {
    let mut hashes = query_values(url, BODY_SHA256_PARAM);
    if let Some(claimed) = hashes.next() {
        // Two hashes for one body would be ambiguous: not trusted.
        let body_hash_ok = hashes.next().is_none() && body_hash_matches(claimed, raw);
        return Ok(Signed {
            suffix: Vec::new(),
            body_hash_ok,
        });
    }
    Ok(Signed {
        suffix: canonical(body.signed_params()?),
        body_hash_ok: true,
    })
}

/// Whether `claimed` is the lowercase hex SHA-256 of `body`, compared in constant time.
/// Lowercase only: both helper libraries compare the hex text exactly, and Twilio sends
/// lowercase.
fn body_hash_matches(claimed: &str, body: &[u8]) -> bool {
    let actual = format!("{:x}", Sha256::digest(body));
    claimed.len() == actual.len() && bool::from(claimed.as_bytes().ct_eq(actual.as_bytes()))
}

/// The URL with `bodySHA256=<hex of body>` appended to its query (before any fragment).
fn with_body_hash(url: &str, body: &[u8]) -> String {
    let hash = format!("{:x}", Sha256::digest(body));
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
    signed_url
}

/// The raw signature bytes (20 for SHA-1, 32 for SHA-256), or `None` for anything that is not
/// canonical standard base64 of at most 32 bytes. Comparing decoded bytes equals comparing the
/// text, since the decoder refuses non-canonical forms.
fn decode_signature(signature: &[u8]) -> Option<Signature> {
    let signature = signature.trim_ascii();
    if signature.is_empty() || signature.len() > 44 {
        return None;
    }
    let mut bytes = [0u8; 33];
    let len = STANDARD.decode_slice(signature, &mut bytes).ok()?;
    Some(Signature { bytes, len })
}

/// Decoded signature bytes, on the stack.
struct Signature {
    bytes: [u8; 33],
    len: usize,
}

impl std::ops::Deref for Signature {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The query string of a URL, without the fragment.
fn query(url: &str) -> &str {
    let without_fragment = url.split_once('#').map_or(url, |(u, _)| u);
    without_fragment.split_once('?').map_or("", |(_, q)| q)
}

/// Whether the URL's query has a `bodySHA256` parameter, the one that puts the body under a
/// hash instead of its fields.
pub(super) fn carries_body_hash(url: &str) -> bool {
    query_values(url, BODY_SHA256_PARAM).next().is_some()
}

fn query_values<'a>(url: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    query(url).split('&').filter_map(move |pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_body_hash_once_in_lowercase() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let h = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let ok = |url: String| {
            signed_content(&url, &Body::read(None, body), body)
                .unwrap()
                .body_hash_ok
        };
        assert!(ok(format!("https://a/?bodySHA256={h}")));
        assert!(ok(format!("https://a/?x=1&bodySHA256={h}#f")));
        assert!(!ok(format!("https://a/?bodySHA256={}", h.to_uppercase())));
        assert!(!ok(format!("https://a/?bodySHA256={h}&bodySHA256={h}")));
        assert!(!ok(format!("https://a/?bodySHA256={}", &h[..62])));
        assert!(!ok("https://a/?bodySHA256=".into()));
        assert!(!ok("https://a/?bodySHA256=é".into()));
        // In the fragment it is not a query parameter: the body is then a form.
        assert!(ok(format!("https://a/#bodySHA256={h}")));
    }

    #[test]
    fn debug_redacts_secrets() {
        let v = SignatureValidator::new("primary-secret")
            .with_token("secondary-secret")
            .with_shared_key("webhooks_sharedkey_1", "shared-secret");
        let debug = format!("{v:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("2 redacted"), "{debug}");
        assert!(debug.contains("webhooks_sharedkey_1"), "{debug}");
    }

    #[test]
    fn empty_secrets_never_validate() {
        let empty = SignatureValidator::new("");
        let signature = empty.sign_form::<&str, &str>("https://a.com/", &[]);
        assert!(!empty.validate_form::<&str, &str>("https://a.com/", &[], &signature));
        let none = SignatureValidator::new_with_tokens(Vec::<String>::new());
        assert_eq!(none.sign_form::<&str, &str>("https://a.com/", &[]), "");
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
