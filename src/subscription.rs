//! Subscribing to the messages a call's Voice SDK sends (`CreateUserDefinedMessageSubscription`)
//! and unsubscribing (`DeleteUserDefinedMessageSubscription`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::client::Client;
use crate::decode::Created;
use crate::error::{Error, InputError};
use crate::generated::types;
use crate::message::idempotency_key;
use crate::model::{CallbackMethod, Subscription};
use crate::retry::{self, RetryPolicy};
use crate::sid::{CallSid, IntoSid, SidError, SubscriptionSid};
use crate::transport;

const CREATE: &str = "CreateUserDefinedMessageSubscription";
const DELETE: &str = "DeleteUserDefinedMessageSubscription";

/// A subscription about to be created: await it, or set options first.
#[must_use = "a subscription is created only when awaited"]
pub struct Subscribe<'a> {
    client: &'a Client,
    call: Result<CallSid, SidError>,
    callback: Result<String, InputError>,
    method: Option<CallbackMethod>,
    idempotency_key: Option<String>,
    retry_policy: Option<RetryPolicy>,
}

impl fmt::Debug for Subscribe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscribe")
            .field("call", &self.call)
            .field("callback", &self.callback)
            .field("method", &self.method)
            .field("idempotency_key", &self.idempotency_key)
            .finish_non_exhaustive()
    }
}

impl<'a> Subscribe<'a> {
    pub(crate) fn new(client: &'a Client, call: impl IntoSid<CallSid>, callback: &str) -> Self {
        Subscribe {
            client,
            call: call.into_sid(),
            callback: check_callback_url(callback),
            method: None,
            idempotency_key: None,
            retry_policy: None,
        }
    }

    /// The method Twilio should use to call the callback. Unset, the field is left out and
    /// Twilio uses `POST`.
    pub fn method(mut self, method: CallbackMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Use this retry policy for this request instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Use this idempotency key instead of a generated one (a UUID v4).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Creates the subscription; the same as awaiting the builder.
    pub async fn send(self) -> Result<Subscription, Error> {
        let call = self.call?;
        let callback = self.callback?;
        let key = idempotency_key(self.idempotency_key)?;
        let shared = self.client.shared();
        let body = types::CreateUserDefinedMessageSubscriptionRequest {
            callback,
            idempotency_key: Some(key),
            method: self.method.map(|m| match m {
                CallbackMethod::Get => {
                    types::CreateUserDefinedMessageSubscriptionRequestMethod::Get
                }
                CallbackMethod::Post => {
                    types::CreateUserDefinedMessageSubscriptionRequestMethod::Post
                }
            }),
        };
        let policy = self.retry_policy.as_ref().unwrap_or(&shared.retry);
        let body = Arc::new(body);
        let (created, request) = transport::in_span(
            transport::span(CREATE, &call),
            retry::run(policy, shared.timeout, |_, timeout| {
                let (shared, body) = (shared.clone(), body.clone());
                async move {
                    let api = transport::operation_client(&shared, timeout);
                    let result = api
                        .create_user_defined_message_subscription(&shared.account_sid, &call, &body)
                        .await;
                    transport::finish(&api, CREATE, body.idempotency_key.clone(), result).await
                }
            }),
        )
        .await?;

        let reader = Created {
            body: &created,
            request: &request,
            accepted: "the subscription exists",
        };
        Ok(Subscription {
            sid: reader.required("sid", created.sid.as_deref())?,
            account_sid: reader.echoed(
                "account_sid",
                created.account_sid.as_deref(),
                shared.account_sid,
            )?,
            call_sid: reader.echoed("call_sid", created.call_sid.as_deref(), call)?,
            date_created: created.date_created.as_ref().map(|d| d.0),
            uri: created.uri,
            idempotency_key: request.idempotency_key.unwrap_or_default(),
            request_id: request.request_id,
        })
    }
}

impl<'a> IntoFuture for Subscribe<'a> {
    type Output = Result<Subscription, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl Client {
    /// Subscribes `callback_url` to the messages the Voice SDK sends during the active call
    /// `call`. Await the result, or choose the HTTP method or an idempotency key first.
    ///
    /// The URL is checked before anything is sent: an absolute `http`/`https` URL with a valid
    /// host name (no underscores, Twilio's rule) and no credentials in it.
    pub fn subscribe(&self, call: impl IntoSid<CallSid>, callback_url: &str) -> Subscribe<'_> {
        Subscribe::new(self, call, callback_url)
    }

    /// Deletes a subscription. `Ok(())` when Twilio answers 204.
    ///
    /// A subscription that no longer exists (it was deleted already, or its call ended) is an
    /// [`Error::Api`] for which [`Error::is_not_found`] is true: if all you wanted was for it to
    /// be gone, treat that as success.
    pub async fn unsubscribe(
        &self,
        call: impl IntoSid<CallSid>,
        subscription: impl IntoSid<SubscriptionSid>,
    ) -> Result<(), Error> {
        let call = call.into_sid()?;
        let subscription = subscription.into_sid()?;
        let shared = self.shared();
        // After an attempt that may have deleted it, "not found" means it is gone: success.
        let maybe_deleted = Arc::new(AtomicBool::new(false));
        transport::in_span(
            transport::span(DELETE, &call),
            retry::run(&shared.retry, shared.timeout, |_, timeout| {
                let (shared, maybe_deleted) = (shared.clone(), maybe_deleted.clone());
                async move {
                    let api = transport::operation_client(&shared, timeout);
                    let result = api
                        .delete_user_defined_message_subscription(
                            &shared.account_sid,
                            &call,
                            &subscription,
                        )
                        .await;
                    match transport::finish(&api, DELETE, None, result).await {
                        Ok(_) => Ok(()),
                        Err(e) if e.is_not_found() && maybe_deleted.load(Ordering::Relaxed) => {
                            Ok(())
                        }
                        Err(e) => {
                            if e.may_have_been_processed() {
                                maybe_deleted.store(true, Ordering::Relaxed);
                            }
                            Err(e)
                        }
                    }
                }
            }),
        )
        .await
    }
}

/// Twilio's rules for a callback URL, checked before sending.
fn check_callback_url(url: &str) -> Result<String, InputError> {
    let bad = |reason: &str| InputError::CallbackUrl(reason.to_owned());
    let parsed =
        reqwest::Url::parse(url).map_err(|e| bad(&format!("not an absolute URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it must not contain credentials (user:password@)"));
    }
    let host = parsed.host_str().unwrap_or_default();
    let is_ip = host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok();
    if !is_ip {
        if host.contains('_') {
            return Err(bad(
                "the host name contains an underscore, which Twilio does not accept",
            ));
        }
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.len() > 253 || !host.trim_end_matches('.').split('.').all(valid_label) {
            return Err(bad("the host is not a valid host name"));
        }
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_url_rules() {
        for ok in [
            "https://example.com/twilio/messages",
            "http://example.com:8080/hook?x=1",
            "https://sub-domain.example.co.uk/",
            "https://203.0.113.7/hook",
            "https://xn--bcher-kva.example/",
        ] {
            assert_eq!(check_callback_url(ok).unwrap(), ok);
        }
        let cases = [
            ("/relative/path", "not an absolute URL"),
            ("example.com/hook", "not an absolute URL"),
            ("ftp://example.com/hook", "scheme must be http or https"),
            (
                "https://user:pw@example.com/hook",
                "must not contain credentials",
            ),
            (
                "https://user@example.com/hook",
                "must not contain credentials",
            ),
            ("https://my_host.example.com/hook", "underscore"),
            ("https://-bad.example.com/", "not a valid host name"),
            ("https://", "not an absolute URL"),
        ];
        for (url, reason) in cases {
            let err = check_callback_url(url).unwrap_err().to_string();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }
}
