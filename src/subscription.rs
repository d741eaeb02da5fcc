//! Subscribing to the messages a call's Voice SDK sends (`CreateUserDefinedMessageSubscription`)
//! and unsubscribing (`DeleteUserDefinedMessageSubscription`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use crate::client::Client;
use crate::decode::Created;
use crate::error::{Error, InputError, RequestInfo};
use crate::generated::{self, types};
use crate::legs::{self, OnLeg, Target};
use crate::model::{CallbackMethod, Subscription};
use crate::orchestrator::{self, Generated, Operation, Options};
use crate::retry::RetryPolicy;
use crate::sid::AccountSid;
use crate::sid::{CallSid, IntoSid, SidError, SubscriptionSid};

/// A subscription about to be created: await it (or [`send`](Self::send) it), or set options
/// first. It owns a clone of the client, so the future can be spawned.
#[must_use = "a subscription is created only when awaited"]
pub struct Subscribe {
    client: Client,
    call: Result<CallSid, SidError>,
    callback: Result<String, InputError>,
    method: Option<CallbackMethod>,
    options: Options,
    target: Target,
}

impl fmt::Debug for Subscribe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscribe")
            .field("call", &self.call)
            .field("callback", &self.callback)
            .field("method", &self.method)
            .field("options", &self.options)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Subscribe {
    /// The method Twilio should use to call the callback. Unset, the field is left out and
    /// Twilio uses `POST`.
    pub fn method(mut self, method: CallbackMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Use this retry policy for this request instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry_policy = Some(Box::new(policy));
        self
    }

    /// Time allowed for each attempt instead of the client's; the retry policy's total
    /// deadline still cuts it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Use this idempotency key instead of a generated one (a UUID v4).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.options.idempotency_key = Some(key.into());
        self
    }

    /// Subscribe on the leg the call's Voice SDK client is on, whichever leg's SID was given,
    /// as [`SendMessage::to_client`](crate::SendMessage::to_client) sends: Twilio delivers to
    /// a subscription only the messages sent from its leg's client. The result's `call_sid`
    /// is that leg and `client_identity` the client.
    pub fn to_client(mut self) -> Self {
        self.target = Target::Client(None);
        self
    }

    /// [`to_client`](Self::to_client) for the client with this identity, for a call with
    /// clients on both legs.
    pub fn to_client_named(mut self, identity: impl Into<String>) -> Self {
        self.target = Target::Client(Some(identity.into()));
        self
    }

    /// Creates the subscription; the same as awaiting the builder.
    // Not an `async fn`, as `SendMessage::send`: one layer less of the request's state.
    pub fn send(self) -> impl Future<Output = Result<Subscription, Error>> + Send + 'static {
        use futures_util::future::Either;
        let (client, options, operation, target) = self.into_parts();
        match target {
            Target::Given => Either::Left(orchestrator::run(client, options, operation)),
            target => Either::Right(Box::pin(legs::send_to(client, options, operation, target))),
        }
    }

    fn into_parts(self) -> (Client, Options, Result<Create, Error>, Target) {
        let method = self.method.map(|m| match m {
            CallbackMethod::Get => types::CreateUserDefinedMessageSubscriptionRequestMethod::Get,
            CallbackMethod::Post => types::CreateUserDefinedMessageSubscriptionRequestMethod::Post,
        });
        let operation = self.call.map_err(Error::from).and_then(|call| {
            Ok(Create {
                call,
                body: types::CreateUserDefinedMessageSubscriptionRequest {
                    callback: self.callback?,
                    idempotency_key: None,
                    method,
                },
            })
        });
        (self.client, self.options, operation, self.target)
    }
}

impl IntoFuture for Subscribe {
    type Output = Result<Subscription, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let (client, options, operation, target) = self.into_parts();
        match target {
            Target::Given => orchestrator::boxed(client, options, operation),
            target => Box::pin(legs::send_to(client, options, operation, target)),
        }
    }
}

/// A subscription about to be deleted: await it (or [`send`](Self::send) it), or set options
/// first.
#[must_use = "a subscription is deleted only when awaited"]
pub struct Unsubscribe {
    client: Client,
    operation: Result<Delete, Error>,
    options: Options,
}

impl fmt::Debug for Unsubscribe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sids = self.operation.as_ref().map(|d| (d.call, d.subscription));
        f.debug_struct("Unsubscribe")
            .field("sids", &sids)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Unsubscribe {
    /// Use this retry policy for this request instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry_policy = Some(Box::new(policy));
        self
    }

    /// Time allowed for each attempt instead of the client's; the retry policy's total
    /// deadline still cuts it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Deletes the subscription; the same as awaiting the builder.
    pub fn send(self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        orchestrator::run(self.client, self.options, self.operation)
    }
}

impl IntoFuture for Unsubscribe {
    type Output = Result<(), Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        orchestrator::boxed(self.client, self.options, self.operation)
    }
}

impl Client {
    /// Subscribes `callback_url` to the messages the Voice SDK sends during the active call
    /// `call`. Await the result, or choose the HTTP method or an idempotency key first.
    ///
    /// The URL is checked before anything is sent: an absolute `http`/`https` URL with a valid
    /// host name (no underscores, Twilio's rule) and no credentials in it.
    pub fn subscribe(&self, call: impl IntoSid<CallSid>, callback_url: &str) -> Subscribe {
        Subscribe {
            client: self.clone(),
            call: call.into_sid(),
            callback: check_callback_url(callback_url),
            method: None,
            options: Options::default(),
            target: Target::Given,
        }
    }

    /// Deletes a subscription: `Ok(())` when Twilio answers 204. Await it, or set options
    /// first.
    ///
    /// A subscription that no longer exists (it was deleted already, or its call ended) is an
    /// [`Error::Api`] for which [`Error::is_not_found`] is true: if all you wanted was for it to
    /// be gone, treat that as success. After an attempt that may have deleted it (a timeout, a
    /// 5xx), a retry answered "not found" is success.
    pub fn unsubscribe(
        &self,
        call: impl IntoSid<CallSid>,
        subscription: impl IntoSid<SubscriptionSid>,
    ) -> Unsubscribe {
        let operation = call.into_sid().and_then(|call| {
            Ok(Delete {
                call,
                subscription: subscription.into_sid()?,
            })
        });
        Unsubscribe {
            client: self.clone(),
            operation: operation.map_err(Error::from),
            options: Options::default(),
        }
    }
}

/// `CreateUserDefinedMessageSubscription`.
#[derive(Clone)]
struct Create {
    call: CallSid,
    body: types::CreateUserDefinedMessageSubscriptionRequest,
}

impl OnLeg for Create {
    fn call_mut(&mut self) -> &mut CallSid {
        &mut self.call
    }

    fn reached(output: &mut Subscription, identity: String) {
        output.client_identity = Some(identity);
    }
}

impl Operation for Create {
    const NAME: &'static str = "CreateUserDefinedMessageSubscription";
    const METHOD: &'static str = "POST";
    type Body = types::UserDefinedMessageSubscription;
    type Output = Subscription;

    fn call_sid(&self) -> Option<&CallSid> {
        Some(&self.call)
    }

    fn idempotency_key(&mut self) -> Option<&mut Option<String>> {
        Some(&mut self.body.idempotency_key)
    }

    fn send<'a>(
        &'a self,
        api: &'a generated::Client,
        account: &'a AccountSid,
    ) -> impl Future<Output = Generated<Self::Body>> + Send + 'a {
        api.create_user_defined_message_subscription(account, &self.call, &self.body)
    }

    fn output(
        self,
        created: Self::Body,
        account: AccountSid,
        request: RequestInfo,
    ) -> Result<Subscription, Error> {
        let reader = Created {
            body: &created,
            request: &request,
            accepted: "the subscription exists",
        };
        Ok(Subscription {
            sid: reader.required("sid", created.sid.as_deref())?,
            account_sid: reader.echoed("account_sid", created.account_sid.as_deref(), account)?,
            call_sid: reader.echoed("call_sid", created.call_sid.as_deref(), self.call)?,
            date_created: created.date_created.as_ref().map(|d| d.0),
            uri: created.uri,
            idempotency_key: request.idempotency_key.unwrap_or_default(),
            request_id: request.request_id,
            client_identity: None,
        })
    }
}

/// `DeleteUserDefinedMessageSubscription`.
struct Delete {
    call: CallSid,
    subscription: SubscriptionSid,
}

impl Operation for Delete {
    const NAME: &'static str = "DeleteUserDefinedMessageSubscription";
    const METHOD: &'static str = "DELETE";
    type Body = ();
    type Output = ();

    fn call_sid(&self) -> Option<&CallSid> {
        Some(&self.call)
    }

    fn send<'a>(
        &'a self,
        api: &'a generated::Client,
        account: &'a AccountSid,
    ) -> impl Future<Output = Generated<Self::Body>> + Send + 'a {
        api.delete_user_defined_message_subscription(account, &self.call, &self.subscription)
    }

    /// After an attempt that may have deleted it, "not found" means it is gone.
    fn recover(error: &Error) -> Option<()> {
        error.is_not_found().then_some(())
    }

    fn output(self, (): (), _: AccountSid, _: RequestInfo) -> Result<(), Error> {
        Ok(())
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
