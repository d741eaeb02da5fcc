//! Why a webhook's signature was not accepted. Never shows a secret, a signature or the body.

/// Why [`SignatureValidator::verify`](super::SignatureValidator::verify) refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// There was no `X-Twilio-Signature` header.
    #[error("missing X-Twilio-Signature header")]
    MissingSignature,
    /// `X-Twilio-Webhooks-Signature-Settings` names a shared key this validator does not hold
    /// (or names none). This is a configuration problem on the receiving side, not a forgery
    /// by itself: answer 500, as twilio-node's middleware does.
    #[error(
        "the request is signed with shared key {key_id:?}, which is not configured \
         (SignatureValidator::with_shared_key)"
    )]
    UnknownKey {
        /// The key id from the header (at most 64 characters of it); empty when it named none.
        key_id: String,
    },
    /// `X-Twilio-Webhooks-Signature-Settings` names no algorithm, or one we do not implement.
    #[error("unsupported webhook signature algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// The algorithm from the header (at most 64 characters of it); empty when absent.
        algorithm: String,
    },
    /// The URL carries `bodySHA256`, and it is not the SHA-256 of the body.
    #[error("the body does not match the URL's bodySHA256")]
    BodyHashMismatch,
    /// The body is of a kind the signature scheme cannot cover, so it cannot be trusted.
    #[error("the body cannot be verified: {0}")]
    Unverifiable(#[from] Unverifiable),
    /// The signature does not match the URL and body for any configured key.
    #[error("invalid X-Twilio-Signature")]
    SignatureMismatch,
}

impl SignatureError {
    /// Whether the fault is the receiver's configuration rather than the request
    /// (an HTTP service answers 500 for these, 403 for the others).
    pub fn is_misconfiguration(&self) -> bool {
        matches!(self, SignatureError::UnknownKey { .. })
    }
}

/// Why a body is not covered by the signature scheme its request uses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unverifiable {
    /// A JSON body (without `bodySHA256`) that is not valid JSON.
    #[error("the body is not valid JSON")]
    NotJson,
    /// A JSON body (without `bodySHA256`) that is not an object.
    #[error("the JSON body is {kind}, not an object")]
    NotAnObject {
        /// What it is instead, e.g. `an array`.
        kind: &'static str,
    },
    /// A top-level field of a JSON body (without `bodySHA256`) whose value is not a string:
    /// the parameter scheme signs text, and how another language prints a number or a nested
    /// object is not something to guess.
    #[error("field `{field}` is {kind}, not a string")]
    NonStringField {
        /// The field's name (at most 64 characters of it).
        field: String,
        /// What it is instead, e.g. `a number`.
        kind: &'static str,
    },
    /// A JSON body (without `bodySHA256`) that repeats a field name: a parser keeps one of the
    /// values, and the signature would not say which.
    #[error("field `{field}` appears more than once")]
    DuplicateField {
        /// The field's name (at most 64 characters of it).
        field: String,
    },
    /// A body that is neither a form nor JSON, without `bodySHA256`.
    #[error("content type {content_type:?} is neither a form nor JSON")]
    ContentType {
        /// The `Content-Type` header (at most 64 characters of it).
        content_type: String,
    },
}

/// A value quoted in an error: it comes from the request, so it is bounded.
pub(crate) fn bounded(text: &str) -> String {
    text.chars().take(64).collect()
}
