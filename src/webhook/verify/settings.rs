//! `X-Twilio-Webhooks-Signature-Settings`: which shared key and which HMAC signed a webhook.
//!
//! Twilio adds the header (`key=<key id>,algorithm=HMAC_SHA256`) when a rule of the Webhooks
//! configuration API (public beta) applies; without it the auth token and HMAC-SHA1 sign.
//! Parsed as twilio-python 9.13 does (`twilio/request_validator.py`, `get_signature_algorithm`):
//! comma-separated `name=value` parts, names and values trimmed, the algorithm's case ignored.
//! Unlike that function, a header without an algorithm is not read as HMAC-SHA1: a header that
//! does not say how it was signed fails closed.

/// The request header that names the shared key and algorithm of a webhook's signature.
pub const SIGNATURE_SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";

/// The HMAC a signature is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `HMAC_SHA1`: the auth token's algorithm, and a shared key's when the header names it.
    HmacSha1,
    /// `HMAC_SHA256`: shared keys.
    HmacSha256,
}

impl Algorithm {
    /// The name Twilio uses in the settings header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha1 => "HMAC_SHA1",
            Algorithm::HmacSha256 => "HMAC_SHA256",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("HMAC_SHA1") {
            Some(Algorithm::HmacSha1)
        } else if name.eq_ignore_ascii_case("HMAC_SHA256") {
            Some(Algorithm::HmacSha256)
        } else {
            None
        }
    }
}

/// The two settings of the header, as text; `None` when a part is absent or empty.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Settings<'a> {
    pub(crate) key_id: Option<&'a str>,
    pub(crate) algorithm: Option<&'a str>,
}

impl<'a> Settings<'a> {
    /// Splits a header value; the first non-empty `key` and `algorithm` win, other parts are
    /// ignored (room for settings Twilio may add).
    pub(crate) fn parse(value: &'a str) -> Self {
        let mut settings = Settings {
            key_id: None,
            algorithm: None,
        };
        for part in value.split(',') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.trim() {
                "key" if settings.key_id.is_none() => settings.key_id = Some(value),
                "algorithm" if settings.algorithm.is_none() => settings.algorithm = Some(value),
                _ => {}
            }
        }
        settings
    }

    /// The named algorithm, if it is one we implement.
    pub(crate) fn algorithm(&self) -> Option<Algorithm> {
        self.algorithm.and_then(Algorithm::from_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_twilio_python() {
        let s = Settings::parse("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256");
        assert_eq!(s.key_id, Some("webhooks_sharedkey_1"));
        assert_eq!(s.algorithm(), Some(Algorithm::HmacSha256));
        let s = Settings::parse(" algorithm = hmac_sha1 , key = k ,extra=1");
        assert_eq!(
            (s.key_id, s.algorithm()),
            (Some("k"), Some(Algorithm::HmacSha1))
        );
        let s = Settings::parse("key=k,algorithm=HMAC_MD5");
        assert_eq!((s.algorithm, s.algorithm()), (Some("HMAC_MD5"), None));
        for empty in [
            "",
            ",",
            "key=",
            "algorithm=",
            "key",
            "Key=k,Algorithm=HMAC_SHA1",
        ] {
            let s = Settings::parse(empty);
            assert_eq!((s.key_id, s.algorithm), (None, None), "{empty:?}");
        }
        // A value may itself contain `=`; the first one splits.
        assert_eq!(Settings::parse("key=a=b").key_id, Some("a=b"));
    }

    #[test]
    fn each_algorithm_is_named_as_the_header_names_it() {
        for (algorithm, name) in [
            (Algorithm::HmacSha1, "HMAC_SHA1"),
            (Algorithm::HmacSha256, "HMAC_SHA256"),
        ] {
            assert_eq!(algorithm.as_str(), name);
            let header = format!("key=k,algorithm={}", algorithm.as_str());
            assert_eq!(Settings::parse(&header).algorithm(), Some(algorithm));
        }
    }
}
