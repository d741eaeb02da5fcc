//! The call's client sends a message; Twilio delivers it to every subscription of the call
//! (<https://www.twilio.com/docs/voice/api/userdefinedmessagesubscription-resource>), with the
//! connection overrides of
//! <https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides>.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use twilio_call_messages::reqwest::{self, header};
use twilio_call_messages::{CallSid, MessageSid, SignatureValidator};

use crate::Inner;
use crate::model::{
    Attempt, CallbackDelivery, CallbackRef, ClientMessage, EmulatorError, Lane, SendAs,
};
use crate::settings::{CallbackBody, Signing};

/// How long a message held back for reordering waits for the call's next one.
const REORDER_HOLD: Duration = Duration::from_millis(200);

/// Twilio's webhook connection overrides, from the callback URL's fragment (Twilio's
/// "Webhooks (HTTP callbacks): Connection Overrides" page): `ct` connect timeout (5000 ms),
/// `rt` read timeout (15000 ms), `tt` total time (15000 ms), `rc` retry count (1, at most 5),
/// `rp` retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overrides {
    pub connect: Duration,
    pub read: Duration,
    pub total: Duration,
    pub retries: u32,
    pub policy: RetryOn,
}

/// Which failures are retried (`rp`: `4xx`, `5xx`, `ct`, `rt`, `all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryOn {
    pub client_error: bool,
    pub server_error: bool,
    pub connect: bool,
    pub read: bool,
}

impl RetryOn {
    const ALL: RetryOn = RetryOn {
        client_error: true,
        server_error: true,
        connect: true,
        read: true,
    };
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            connect: Duration::from_millis(5000),
            read: Duration::from_millis(15000),
            total: Duration::from_millis(15000),
            retries: 1,
            // ASSUMPTION: the page gives no default for `rp`; Twilio retries a webhook it
            // thinks failed, and a non-2xx answer is a failure (32711), so every failure is
            // retried by default (docs/twilio-behaviour.md#callback-delivery-and-retries).
            policy: RetryOn::ALL,
        }
    }
}

impl Overrides {
    /// Reads the overrides of a fragment (`ct=1000&rc=3`); values out of range are clamped to
    /// the page's limits (ct 100..=10000, rt 100..=15000, tt 100..=15000, rc 0..=5); unknown
    /// keys (`e` edge, `sni`) are ignored.
    pub(crate) fn parse(fragment: &str) -> Overrides {
        let mut o = Overrides::default();
        for (key, value) in url::form_urlencoded::parse(fragment.as_bytes()) {
            let ms = |lo: u64, hi: u64| {
                value
                    .parse::<u64>()
                    .ok()
                    .map(|v| Duration::from_millis(v.clamp(lo, hi)))
            };
            match &*key {
                "ct" => o.connect = ms(100, 10_000).unwrap_or(o.connect),
                "rt" => o.read = ms(100, 15_000).unwrap_or(o.read),
                "tt" => o.total = ms(100, 15_000).unwrap_or(o.total),
                "rc" => o.retries = value.parse::<u32>().map_or(o.retries, |v| v.min(5)),
                "rp" => {
                    let mut p = RetryOn {
                        client_error: false,
                        server_error: false,
                        connect: false,
                        read: false,
                    };
                    for part in value.split(',') {
                        match part.trim() {
                            "4xx" => p.client_error = true,
                            "5xx" => p.server_error = true,
                            "ct" => p.connect = true,
                            "rt" => p.read = true,
                            "all" => p = RetryOn::ALL,
                            _ => {}
                        }
                    }
                    o.policy = p;
                }
                _ => {}
            }
        }
        o
    }
}

/// The client sends `text` into the call: the model records it (or refuses it as the Voice
/// SDK would), and the leg's lane delivers it.
pub(crate) fn client_send(
    inner: &Arc<Inner>,
    sid: &CallSid,
    text: &str,
    message_type: &str,
    from: SendAs,
) -> Result<(MessageSid, CallSid), EmulatorError> {
    inner
        .model
        .client_send(sid, text, message_type, from, |call, epoch| {
            let (queue, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(lane(inner.clone(), call, epoch, rx)).abort_handle();
            Lane { queue, task }
        })
}

/// Delivers a call's messages one after the other, in the order the client sent them, unless
/// the reorder fault holds one back until the next has gone.
async fn lane(
    inner: Arc<Inner>,
    call: CallSid,
    epoch: u64,
    mut queue: mpsc::UnboundedReceiver<usize>,
) {
    let at = |index| (epoch, call, index);
    let mut held: Option<usize> = None;
    loop {
        let next = match held {
            Some(h) => match tokio::time::timeout(REORDER_HOLD, queue.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    held = None;
                    deliver_message(&inner, at(h)).await;
                    continue;
                }
            },
            None => queue.recv().await,
        };
        let Some(index) = next else {
            if let Some(h) = held.take() {
                deliver_message(&inner, at(h)).await;
            }
            return;
        };
        if held.is_none() && inner.model.roll_reorder() {
            held = Some(index);
            continue;
        }
        deliver_message(&inner, at(index)).await;
        if let Some(h) = held.take() {
            deliver_message(&inner, at(h)).await;
            inner.model.mark_reordered(CallbackRef {
                epoch,
                call,
                index: h,
                delivery: 0,
            });
        }
    }
}

/// Delivers one message to every subscription it was addressed to, at once.
async fn deliver_message(inner: &Arc<Inner>, (epoch, call, index): (u64, CallSid, usize)) {
    let count = inner.model.delivery_count(epoch, &call, index);
    let mut all = tokio::task::JoinSet::new();
    for delivery in 0..count {
        all.spawn(deliver(
            inner.clone(),
            CallbackRef {
                epoch,
                call,
                index,
                delivery,
            },
        ));
    }
    while all.join_next().await.is_some() {}
}

/// The request of an attempt.
struct Prepared {
    url: String,
    method: reqwest::Method,
    headers: header::HeaderMap,
    body: Vec<u8>,
}

/// Builds the callback: every documented field a string, in a flat JSON object or a form
/// (a setting, UNVERIFIED which Twilio sends); a GET carries them in the query (ASSUMPTION).
/// Signed as <https://www.twilio.com/docs/usage/webhooks/webhooks-security> and twilio-python
/// `twilio/request_validator.py` describe, by the SDK's own signer.
fn prepare(
    inner: &Inner,
    message: &ClientMessage,
    delivery: &CallbackDelivery,
    token: &str,
) -> Prepared {
    // The client's text, byte for byte: what it sent is what the service receives.
    let content = message.content_text.clone();
    let sequence = message.sequence_number.to_string();
    let fields: [(&str, &str); 7] = [
        ("ContentType", "application/json"),
        ("Content", &content),
        ("SequenceNumber", &sequence),
        ("CallSid", message.call_sid.as_str()),
        ("Timestamp", &message.timestamp),
        ("AccountSid", inner.model.settings.account_sid.as_str()),
        ("Sid", message.sid.as_str()),
    ];
    // The fragment carries the connection overrides; it is not requested nor signed.
    let base = delivery
        .callback
        .split_once('#')
        .map_or(delivery.callback.as_str(), |(u, _)| u)
        .to_owned();
    let mut headers = header::HeaderMap::new();
    headers.insert(
        "I-Twilio-Idempotency-Token",
        header::HeaderValue::from_str(token).unwrap_or(header::HeaderValue::from_static("")),
    );
    // The User-Agent Twilio's webhooks carry.
    headers.insert(
        header::USER_AGENT,
        header::HeaderValue::from_static("TwilioProxy/1.1"),
    );
    let get = delivery.method == "GET";
    let (mut url, body) = if get {
        let query = serde_urlencoded::to_string(fields).unwrap_or_default();
        let joiner = if base.contains('?') { '&' } else { '?' };
        (format!("{base}{joiner}{query}"), Vec::new())
    } else {
        match inner.model.settings.callback_body {
            CallbackBody::Json => {
                let object: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), serde_json::Value::from(*v)))
                    .collect();
                headers.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                (base, serde_json::to_vec(&object).unwrap_or_default())
            }
            CallbackBody::Form => {
                headers.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                (
                    base,
                    serde_urlencoded::to_string(fields)
                        .unwrap_or_default()
                        .into_bytes(),
                )
            }
        }
    };
    let token_signer = || SignatureValidator::new(inner.model.settings.auth_token.clone());
    let signature = match &inner.model.settings.signing {
        Signing::BodySha256 if !get && inner.model.settings.callback_body == CallbackBody::Json => {
            let (hashed, signature) = token_signer().sign_json(&url, &body);
            url = hashed;
            Ok(signature)
        }
        Signing::SharedKey { id, secret } => {
            if let Ok(value) =
                header::HeaderValue::from_str(&format!("key={id},algorithm=HMAC_SHA256"))
            {
                headers.insert("X-Twilio-Webhooks-Signature-Settings", value);
            }
            SignatureValidator::new_with_tokens(Vec::<String>::new())
                .with_shared_key(id.clone(), secret.clone())
                .sign_request(&url, &headers, &body)
        }
        _ => token_signer().sign_request(&url, &headers, &body),
    };
    if let Ok(signature) = signature
        && let Ok(value) = header::HeaderValue::from_str(&signature)
    {
        headers.insert("X-Twilio-Signature", value);
    }
    Prepared {
        url,
        method: if get {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        },
        headers,
        body,
    }
}

fn http_client(inner: &Inner, o: &Overrides) -> Result<reqwest::Client, reqwest::Error> {
    let mut clients = inner.http.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = clients.get(&(o.connect, o.read)) {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .connect_timeout(o.connect)
        .read_timeout(o.read)
        // Twilio's webhooks do not follow redirects to other hosts with the signature, and a
        // local proxy setting must not catch the emulator's callbacks.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?;
    clients.insert((o.connect, o.read), client.clone());
    Ok(client)
}

/// How an attempt ended.
enum Ended {
    Ok(u16),
    Status(u16),
    Connect(String),
    Read(String),
}

async fn send(client: &reqwest::Client, p: &Prepared, remaining: Duration) -> Ended {
    let request = client
        .request(p.method.clone(), &p.url)
        .headers(p.headers.clone())
        .body(p.body.clone())
        .timeout(remaining);
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the answer (bounded by the read timeout) so the connection can be reused.
            let _ = response.bytes().await;
            if (200..300).contains(&status) {
                Ended::Ok(status)
            } else {
                Ended::Status(status)
            }
        }
        Err(e) if e.is_connect() => Ended::Connect(format!("connection failed: {e}")),
        Err(e) if e.is_timeout() => Ended::Read(format!("timed out: {e}")),
        Err(e) => Ended::Read(format!("request failed: {e}")),
    }
}

fn attempt_record(inner: &Inner, number: u32, p: &Prepared) -> Attempt {
    Attempt {
        number,
        url: p.url.clone(),
        headers: p
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&p.body).into_owned(),
        status: None,
        error: None,
        dropped: false,
        duplicate: false,
        reordered: false,
        // Body SHA-256 applies to JSON bodies only; the others are signed with the token.
        signature_scheme: match &inner.model.settings.signing {
            Signing::BodySha256 if p.url.contains("bodySHA256=") => "body-sha256",
            Signing::SharedKey { .. } => "shared-key",
            _ => "auth-token",
        }
        .into(),
        elapsed_ms: 0,
        at_ms: inner.model.elapsed_ms(),
    }
}

/// One delivery: attempts within Twilio's overrides, each recorded.
async fn deliver(inner: Arc<Inner>, at: CallbackRef) {
    if let Some((message, delivery)) = inner.model.delivery(at) {
        run_delivery(&inner, at, &message, &delivery).await;
    }
    inner.model.delivery_done(at);
}

async fn run_delivery(
    inner: &Arc<Inner>,
    at: CallbackRef,
    message: &ClientMessage,
    delivery: &CallbackDelivery,
) {
    let overrides = Overrides::parse(delivery.callback.split_once('#').map_or("", |(_, f)| f));
    let prepared = prepare(inner, message, delivery, &delivery.idempotency_token);
    let client = match http_client(inner, &overrides) {
        Ok(client) => client,
        Err(e) => {
            // Recorded, not hidden: a delivery that could not be tried is a failed one.
            let mut attempt = attempt_record(inner, 1, &prepared);
            attempt.error = Some(format!("cannot build an HTTP client: {e}"));
            inner
                .model
                .record(at, |delivery| delivery.attempts.push(attempt));
            return;
        }
    };
    let (drop_first, duplicate) = inner.model.roll_callback_faults();
    let started = Instant::now();
    let mut delivered = false;
    for number in 1..=overrides.retries + 1 {
        let Some(remaining) = overrides.total.checked_sub(started.elapsed()) else {
            break;
        };
        if remaining.is_zero() {
            break;
        }
        let mut attempt = attempt_record(inner, number, &prepared);
        let began = Instant::now();
        let retry = if number == 1 && drop_first {
            attempt.dropped = true;
            attempt.error = Some("dropped on purpose (callback fault drop_first)".into());
            overrides.policy.connect
        } else {
            match send(&client, &prepared, remaining).await {
                Ended::Ok(status) => {
                    attempt.status = Some(status);
                    delivered = true;
                    false
                }
                Ended::Status(status) => {
                    attempt.status = Some(status);
                    // Logged by Twilio as 32711 ("responded with a 400- or 500-level status").
                    attempt.error = Some(format!("answered {status} (error 32711)"));
                    if status >= 500 {
                        overrides.policy.server_error
                    } else {
                        overrides.policy.client_error
                    }
                }
                Ended::Connect(why) => {
                    attempt.error = Some(why);
                    overrides.policy.connect
                }
                Ended::Read(why) => {
                    attempt.error = Some(why);
                    overrides.policy.read
                }
            }
        };
        attempt.elapsed_ms = began.elapsed().as_millis() as u64;
        inner.model.record(at, |delivery| {
            delivery.attempts.push(attempt);
            delivery.delivered = delivered;
        });
        if delivered || !retry {
            break;
        }
    }
    if delivered && duplicate {
        let mut attempt = attempt_record(inner, 0, &prepared);
        attempt.duplicate = true;
        let began = Instant::now();
        match send(&client, &prepared, overrides.total).await {
            Ended::Ok(status) | Ended::Status(status) => attempt.status = Some(status),
            Ended::Connect(why) | Ended::Read(why) => attempt.error = Some(why),
        }
        attempt.elapsed_ms = began.elapsed().as_millis() as u64;
        inner.model.record(at, |delivery| {
            attempt.number = delivery.attempts.len() as u32 + 1;
            delivery.attempts.push(attempt);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_default_to_twilios_documented_values() {
        let o = Overrides::parse("");
        assert_eq!(o.connect, Duration::from_millis(5000));
        assert_eq!(o.read, Duration::from_millis(15000));
        assert_eq!(o.total, Duration::from_millis(15000));
        assert_eq!(o.retries, 1);
        assert_eq!(o.policy, RetryOn::ALL);
    }

    #[test]
    fn overrides_are_read_and_clamped() {
        let o = Overrides::parse("ct=250&rt=20000&tt=50&rc=9&rp=5xx,ct&e=dublin");
        assert_eq!(o.connect, Duration::from_millis(250));
        assert_eq!(o.read, Duration::from_millis(15000));
        assert_eq!(o.total, Duration::from_millis(100));
        assert_eq!(o.retries, 5);
        assert!(o.policy.server_error && o.policy.connect);
        assert!(!o.policy.client_error && !o.policy.read);
    }
}
