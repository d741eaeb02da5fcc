//! The request headers the receiving protocol reads, read once from whichever header map the
//! framework has (`http` 1's, or actix-web's), each as its first value's bytes.

/// `X-Twilio-Signature`, lowercase as header maps look names up.
pub(crate) const SIGNATURE: &str = "x-twilio-signature";
/// `X-Twilio-Webhooks-Signature-Settings`.
pub(crate) const SETTINGS: &str = "x-twilio-webhooks-signature-settings";

/// What the protocol reads of a request's headers: the signature and its settings, the body's
/// type and announced length, and what the URL is rebuilt from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CallbackHeaders<'a> {
    pub(crate) signature: Option<&'a [u8]>,
    pub(crate) settings: Option<&'a [u8]>,
    pub(crate) content_type: Option<&'a [u8]>,
    pub(crate) content_length: Option<&'a [u8]>,
    pub(crate) host: Option<&'a [u8]>,
    pub(crate) forwarded: Option<&'a [u8]>,
    pub(crate) x_forwarded_proto: Option<&'a [u8]>,
    pub(crate) x_forwarded_host: Option<&'a [u8]>,
    pub(crate) x_forwarded_port: Option<&'a [u8]>,
}

impl<'a> CallbackHeaders<'a> {
    /// Reads the headers through `first`, which gives a (lowercase) header's first value.
    pub(crate) fn read(first: impl Fn(&'static str) -> Option<&'a [u8]>) -> Self {
        CallbackHeaders {
            signature: first(SIGNATURE),
            settings: first(SETTINGS),
            content_type: first("content-type"),
            content_length: first("content-length"),
            host: first("host"),
            forwarded: first("forwarded"),
            x_forwarded_proto: first("x-forwarded-proto"),
            x_forwarded_host: first("x-forwarded-host"),
            x_forwarded_port: first("x-forwarded-port"),
        }
    }

    /// The headers of an `http` 1 request.
    pub(crate) fn of(headers: &'a http::HeaderMap) -> Self {
        Self::read(|name| headers.get(name).map(http::HeaderValue::as_bytes))
    }

    /// Whether the request carries any proxy header (for the hint when they are not trusted).
    pub(crate) fn has_forwarded(&self) -> bool {
        self.forwarded.is_some()
            || self.x_forwarded_proto.is_some()
            || self.x_forwarded_host.is_some()
            || self.x_forwarded_port.is_some()
    }

    /// The announced body length, when it is a number.
    pub(crate) fn announced_length(&self) -> Option<u64> {
        std::str::from_utf8(self.content_length?).ok()?.parse().ok()
    }
}
