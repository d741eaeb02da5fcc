//! Twilio's REST API for call messages, at its real paths: Twilio's OpenAPI description
//! (twilio/twilio-oai `spec/json/twilio_api_v2010.json`) and its pages
//! <https://www.twilio.com/docs/voice/api/userdefinedmessage-resource> and
//! <https://www.twilio.com/docs/voice/api/userdefinedmessagesubscription-resource>.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use twilio_call_messages::{AccountSid, CallSid, MessageSid, SubscriptionSid};

use crate::http::{Outcome, Request, Response};
use crate::settings::FaultKind;
use crate::{Inner, MAX_CONTENT_CHARS, ReceivedMessage, State, Stored, SubscriptionInfo};
use crate::{new_sid, now_rfc2822, random_hex};

const API_PREFIX: &str = "/2010-04-01/Accounts/";

/// Twilio's REST error body: `code`, `message`, `more_info`, `status`, as Twilio's helper
/// libraries decode it (twilio-node `lib/base/RestException.ts`).
pub(crate) fn error(status: u16, code: u32, message: &str) -> Response {
    Response::json(
        status,
        &serde_json::json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

/// The 201 body of a message: the upstream example's four fields, no `uri`.
#[derive(Serialize)]
struct MessageBody<'a> {
    account_sid: &'a AccountSid,
    call_sid: &'a CallSid,
    sid: &'a MessageSid,
    date_created: &'a str,
}

/// The 201 body of a subscription: the same four and `uri`, relative to api.twilio.com.
#[derive(Serialize)]
struct SubscriptionBody<'a> {
    account_sid: &'a AccountSid,
    call_sid: &'a CallSid,
    sid: &'a SubscriptionSid,
    date_created: &'a str,
    uri: String,
}

/// One REST request, from the account's door to the answer.
pub(crate) async fn handle(inner: &Arc<Inner>, request: Request) -> Outcome {
    let counters = &inner.counters;
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let form = form_of(&request);
    let key = field(&form, "IdempotencyKey").map(str::to_owned);
    if let Some(key) = &key {
        *inner
            .state()
            .requests_per_key
            .entry(key.clone())
            .or_default() += 1;
    }

    // One roll per request, seeded: the same seed and the same requests give the same faults.
    let (fault, stall, limit, header, latency) = {
        let mut live = inner.live();
        let roll = live.fault_rng.f64();
        (
            live.faults.pick(roll),
            live.faults.stall,
            live.concurrency_limit,
            live.concurrency_header,
            live.latency,
        )
    };
    // A proxy in front of the API fails before the account sees the request.
    if let Some(kind) = fault.filter(|k| !k.after_processing()) {
        counters.faults.fetch_add(1, Ordering::SeqCst);
        return match kind {
            FaultKind::Reset => Outcome::Reset,
            FaultKind::Stall => Outcome::Stall(stall),
            FaultKind::Throttle => {
                counters.throttled.fetch_add(1, Ordering::SeqCst);
                Outcome::Respond(throttled(None))
            }
            FaultKind::BadGateway => Outcome::Respond(html(502, "502 Bad Gateway", 0)),
            FaultKind::Unavailable => Outcome::Respond(html(503, "503 Service Unavailable", 0)),
            _ => Outcome::Respond(html(502, "502 Bad Gateway", 1024 * 1024)),
        };
    }

    // The account's concurrency limit (error 20429: "Requests that receive 429 responses
    // aren't processed"): counted before anything is looked at.
    let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    if limit.is_some_and(|n| now > n) {
        counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        counters.throttled.fetch_add(1, Ordering::SeqCst);
        return Outcome::Respond(throttled(header.then_some(now - 1)));
    }
    counters.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut response = process(inner, &request, &form, key.as_deref());
    // The slot is free before the answer leaves, so a client that sends its next request on
    // receipt never meets its own previous one.
    counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    if (200..300).contains(&response.status) {
        counters.succeeded.fetch_add(1, Ordering::SeqCst);
        if let Some(key) = &key {
            *inner
                .state()
                .succeeded_per_key
                .entry(key.clone())
                .or_default() += 1;
        }
    } else {
        counters.rejected.fetch_add(1, Ordering::SeqCst);
    }
    // Twilio answers every request with its id: "RQ" and 32 hex digits.
    response = response.with_header("Twilio-Request-Id", format!("RQ{}", random_hex()));
    if header {
        response = response.with_header("Twilio-Concurrent-Requests", now.to_string());
    }

    match fault {
        Some(kind) => {
            counters.faults.fetch_add(1, Ordering::SeqCst);
            match kind {
                FaultKind::ResetAfter => Outcome::Reset,
                FaultKind::TruncatedAfter => Outcome::Truncated(response),
                FaultKind::StallAfter => Outcome::Stall(stall),
                FaultKind::GatewayTimeoutAfter => {
                    Outcome::Respond(html(504, "504 Gateway Timeout", 0))
                }
                _ => Outcome::Respond(error(500, 20500, "Internal Server Error")),
            }
        }
        None => Outcome::Respond(response),
    }
}

fn throttled(concurrent: Option<usize>) -> Response {
    let response = error(429, 20429, "Too Many Requests")
        .with_header("Twilio-Request-Id", format!("RQ{}", random_hex()));
    match concurrent {
        Some(n) => response.with_header("Twilio-Concurrent-Requests", n.to_string()),
        None => response,
    }
}

/// What a proxy answers: an HTML page, optionally padded to `size` bytes.
fn html(status: u16, title: &str, size: usize) -> Response {
    let mut page =
        format!("<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>");
    if page.len() < size {
        page.push_str(&" ".repeat(size - page.len()));
    }
    Response::new(status, "text/html", page)
}

fn form_of(request: &Request) -> Vec<(String, String)> {
    if request.method == "POST" {
        serde_urlencoded::from_bytes(&request.body).unwrap_or_default()
    } else {
        Vec::new()
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

enum Route {
    Messages(CallSid),
    Subscriptions(CallSid),
    Subscription(CallSid, String),
}

fn not_found(path: &str) -> Response {
    error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

/// Authentication, routing, and the operation. Synchronous: the state is held only here.
fn process(
    inner: &Inner,
    request: &Request,
    form: &[(String, String)],
    key: Option<&str>,
) -> Response {
    let path = request.path();
    if !authenticated(inner, request) {
        // Twilio's 20003 ("Authenticate"), with the Basic challenge.
        return error(401, 20003, "Authenticate")
            .with_header("WWW-Authenticate", "Basic realm=\"Twilio API\"");
    }
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return not_found(path);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (account, route) = match parts.as_slice() {
        [account, "Calls", call, "UserDefinedMessages.json"] => {
            (*account, call.parse().map(Route::Messages))
        }
        [
            account,
            "Calls",
            call,
            "UserDefinedMessageSubscriptions.json",
        ] => (*account, call.parse().map(Route::Subscriptions)),
        [
            account,
            "Calls",
            call,
            "UserDefinedMessageSubscriptions",
            sid,
        ] => (
            *account,
            call.parse().map(|call| {
                Route::Subscription(call, sid.strip_suffix(".json").unwrap_or("").to_owned())
            }),
        ),
        _ => return not_found(path),
    };
    // ASSUMPTION: another account's path with valid credentials answers as bad credentials
    // for that account (20003 / 401).
    if account != inner.settings.account_sid.as_str() {
        return error(401, 20003, "Authenticate");
    }
    let Ok(route) = route else {
        return not_found(path);
    };
    match (request.method.as_str(), route) {
        ("POST", Route::Messages(call)) => create_message(inner, path, &call, form, key),
        ("POST", Route::Subscriptions(call)) => subscribe(inner, path, &call, form, key),
        ("DELETE", Route::Subscription(call, sid)) => unsubscribe(inner, path, &call, &sid),
        // The upstream description has no list, fetch or update: other methods are not
        // allowed (ASSUMPTION: Twilio's 20004 "Method not allowed" with 405).
        _ => error(405, 20004, "Method not allowed"),
    }
}

/// HTTP Basic with `AccountSid:AuthToken`, or `ApiKeySid:Secret` of the account
/// (<https://www.twilio.com/docs/iam/api-keys>; the OpenAPI description's `securitySchemes`).
fn authenticated(inner: &Inner, request: &Request) -> bool {
    let Some(encoded) = request.header("authorization").and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    }) else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, secret)) = text.split_once(':') else {
        return false;
    };
    let s = &inner.settings;
    (user == s.account_sid.as_str() && secret == s.auth_token)
        || s.api_keys
            .iter()
            .any(|k| user == k.sid.as_str() && secret == k.secret)
}

/// The first result of a key, if it was used on this operation within the window.
fn replay(inner: &Inner, state: &mut State, path: &str, key: Option<&str>) -> Option<Response> {
    let key = key?;
    let id = (path.to_owned(), key.to_owned());
    let window = inner.settings.idempotency_window;
    match state.idempotency.get(&id) {
        Some(stored) if stored.at.elapsed() <= window => {
            inner.counters.replays.fetch_add(1, Ordering::SeqCst);
            Some(Response::new(
                stored.status,
                "application/json",
                stored.body.clone(),
            ))
        }
        Some(_) => {
            state.idempotency.remove(&id);
            None
        }
        None => None,
    }
}

fn remember(state: &mut State, path: &str, key: Option<&str>, response: &Response) {
    if let Some(key) = key {
        state.idempotency.insert(
            (path.to_owned(), key.to_owned()),
            Stored {
                at: Instant::now(),
                status: response.status,
                body: response.body.clone(),
            },
        );
    }
}

/// The call must exist (20404) and be `in-progress` or `ringing` (21220).
fn active_call_check(state: &State, path: &str, call: &CallSid) -> Result<(), Response> {
    let Some(found) = state.calls.get(call) else {
        return Err(not_found(path));
    };
    if !found.info.status.is_active() {
        // ASSUMPTION (no source states the status or code; docs/twilio-behaviour.md#errors):
        // HTTP 400 with 21220, whose text is Twilio's ("a realtime operation on a Call that was
        // not in-progress", https://www.twilio.com/docs/api/errors/21220).
        return Err(error(
            400,
            21220,
            &format!(
                "Invalid call state: you attempted a realtime operation on a Call that was not in-progress (it is {})",
                found.info.status
            ),
        ));
    }
    Ok(())
}

/// The opening of a create on a call (a message, a subscription): the state, locked from the
/// replay check to the record, so that two requests with the same key at once (a client's
/// retry racing its first attempt) record one; or the answer when the call is unknown or the
/// key was seen. A repeated key gets the first result, even if the call ended since: the
/// request was processed once (the `IdempotencyKey` parameter, "a unique string value per API
/// call": <https://www.twilio.com/docs/voice/api/userdefinedmessage-resource>).
fn open_create<'a>(
    inner: &'a Inner,
    path: &str,
    call: &CallSid,
    key: Option<&str>,
) -> Result<MutexGuard<'a, State>, Response> {
    let mut state = inner.state();
    if !state.calls.contains_key(call) {
        return Err(not_found(path));
    }
    match replay(inner, &mut state, path, key) {
        Some(response) => Err(response),
        None => Ok(state),
    }
}

/// A required form field, or Twilio's answer when it is missing. ASSUMPTION: Twilio's wording
/// and code for a missing required parameter (20001, HTTP 400); upstream marks `Content` and
/// `Callback` required.
fn required<'a>(form: &'a [(String, String)], name: &str) -> Result<&'a str, Response> {
    field(form, name).ok_or_else(|| {
        error(
            400,
            20001,
            &format!("Missing required parameter {name} in the post body"),
        )
    })
}

fn create_message(
    inner: &Inner,
    path: &str,
    call: &CallSid,
    form: &[(String, String)],
    key: Option<&str>,
) -> Response {
    let mut state = match open_create(inner, path, call, key) {
        Ok(state) => state,
        Err(response) => return response,
    };
    let content = match required(form, "Content") {
        Ok(content) => content,
        Err(response) => return response,
    };
    // ASSUMPTION (no source says whether 32702/32703 are synchronous HTTP errors or only
    // debugger warnings; docs/twilio-behaviour.md#errors): both answer HTTP 400 at once.
    let Ok(parsed) = serde_json::from_str::<serde_json::Value>(content) else {
        return error(400, 32702, "Content is not valid JSON");
    };
    let chars = content.chars().count();
    if chars > MAX_CONTENT_CHARS {
        return error(
            400,
            32703,
            &format!("Content is {chars} characters long, more than {MAX_CONTENT_CHARS}"),
        );
    }
    if let Err(response) = active_call_check(&state, path, call) {
        return response;
    }
    let sid: MessageSid = new_sid("KX");
    let date = now_rfc2822();
    let body = serde_json::to_vec(&MessageBody {
        account_sid: &inner.settings.account_sid,
        call_sid: call,
        sid: &sid,
        date_created: &date,
    })
    .unwrap_or_default();
    {
        if let Some(found) = state.calls.get_mut(call) {
            // What twilio-voice.js hands its `messageReceived` listeners (lib/twilio/call.ts).
            found.received.push(ReceivedMessage {
                sid,
                content: parsed,
                content_type: "application/json".into(),
                message_type: "user-defined-message".into(),
                voice_event_sid: sid,
                idempotency_key: key.map(str::to_owned),
                date_created: date,
            });
        }
    }
    inner.counters.messages.fetch_add(1, Ordering::SeqCst);
    let response = Response::new(201, "application/json", body);
    remember(&mut state, path, key, &response);
    response
}

/// `Callback` must be an absolute http(s) URL with a valid host name: "URLs must contain a
/// valid hostname (underscores are not permitted)" (upstream description of `Callback`).
fn check_callback(callback: &str) -> Result<(), String> {
    let url = url::Url::parse(callback).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    match url.host() {
        None => Err("has no host".into()),
        Some(url::Host::Domain(name)) if name.contains('_') => {
            Err("has an underscore in its host name".into())
        }
        Some(url::Host::Domain(name))
            if name.split('.').any(|label| {
                label.is_empty()
                    || label.starts_with('-')
                    || label.ends_with('-')
                    || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }) =>
        {
            Err("has an invalid host name".into())
        }
        Some(_) => Ok(()),
    }
}

fn subscribe(
    inner: &Inner,
    path: &str,
    call: &CallSid,
    form: &[(String, String)],
    key: Option<&str>,
) -> Response {
    let mut state = match open_create(inner, path, call, key) {
        Ok(state) => state,
        Err(response) => return response,
    };
    let callback = match required(form, "Callback") {
        Ok(callback) => callback,
        Err(response) => return response,
    };
    if let Err(why) = check_callback(callback) {
        // ASSUMPTION: 21502 is Twilio's "Invalid callback url"; that this operation uses it.
        return error(400, 21502, &format!("Invalid Callback URL: it {why}"));
    }
    // `Method`: GET or POST, POST when absent (upstream prose).
    let method = match field(form, "Method") {
        None => "POST",
        Some(m) if m.eq_ignore_ascii_case("POST") => "POST",
        Some(m) if m.eq_ignore_ascii_case("GET") => "GET",
        Some(_) => {
            return error(400, 20001, "Method must be GET or POST");
        }
    };
    if let Err(response) = active_call_check(&state, path, call) {
        return response;
    }
    let sid: SubscriptionSid = new_sid("ZY");
    let date = now_rfc2822();
    let account = &inner.settings.account_sid;
    let body = serde_json::to_vec(&SubscriptionBody {
        account_sid: account,
        call_sid: call,
        sid: &sid,
        date_created: &date,
        uri: format!(
            "/2010-04-01/Accounts/{account}/Calls/{call}/UserDefinedMessageSubscriptions/{sid}.json"
        ),
    })
    .unwrap_or_default();
    if let Some(found) = state.calls.get_mut(call) {
        found.subscriptions.push(SubscriptionInfo {
            sid,
            callback: callback.to_owned(),
            method: method.to_owned(),
            date_created: date,
        });
    }
    let response = Response::new(201, "application/json", body);
    remember(&mut state, path, key, &response);
    response
}

fn unsubscribe(inner: &Inner, path: &str, call: &CallSid, sid: &str) -> Response {
    let mut state = inner.state();
    let Some(found) = state.calls.get_mut(call) else {
        return not_found(path);
    };
    let before = found.subscriptions.len();
    found.subscriptions.retain(|s| s.sid.as_str() != sid);
    if found.subscriptions.len() == before {
        return not_found(path);
    }
    // 204 with an empty body (upstream description).
    Response::empty(204)
}
