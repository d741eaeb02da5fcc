//! Twilio's REST API for call messages, at its real paths: Twilio's OpenAPI description
//! (twilio/twilio-oai `spec/json/twilio_api_v2010.json`) and its pages
//! <https://www.twilio.com/docs/voice/api/userdefinedmessage-resource> and
//! <https://www.twilio.com/docs/voice/api/userdefinedmessagesubscription-resource>.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use twilio_call_messages::CallSid;

use crate::Inner;
use crate::http::{Outcome, Request, Response};
use crate::model::{Create, MAX_CONTENT_CHARS, Refusal, RefusedRequest, random_hex};
use crate::settings::FaultKind;

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

/// One REST request, from the account's door to the answer; every answer that is not 2xx is
/// kept for the page and the control API.
pub(crate) async fn handle(inner: &Arc<Inner>, request: Request) -> Outcome {
    let outcome = answer(inner, &request).await;
    let refused = match &outcome {
        Outcome::Respond(r) | Outcome::Truncated(r) if (200..300).contains(&r.status) => None,
        Outcome::Respond(r) => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            Some((
                Some(r.status),
                body["code"].as_u64().map(|c| c as u32),
                body["message"].as_str().map_or_else(
                    || format!("HTTP {} (a proxy's page)", r.status),
                    str::to_owned,
                ),
            ))
        }
        Outcome::Truncated(r) => Some((
            Some(r.status),
            None,
            "fault: the answer cut in half, then a reset".into(),
        )),
        Outcome::Reset => Some((None, None, "fault: connection reset".into())),
        Outcome::Stall(_) => Some((None, None, "fault: connection stalled".into())),
    };
    if let Some((status, code, message)) = refused {
        let call_sid = request
            .path()
            .split('/')
            .find(|p| p.starts_with("CA"))
            .and_then(|p| p.parse().ok());
        inner.model.record_refused(RefusedRequest {
            method: request.method.clone(),
            path: request.path().to_owned(),
            call_sid,
            status,
            code,
            message,
            at_ms: 0,
        });
    }
    outcome
}

async fn answer(inner: &Arc<Inner>, request: &Request) -> Outcome {
    let model = &inner.model;
    let form = form_of(request);
    let key = field(&form, "IdempotencyKey").map(str::to_owned);
    model.count_request(key.as_deref());
    let roll = model.roll();
    let (fault, stall, header) = (roll.fault, roll.stall, roll.header);
    // A proxy in front of the API fails before the account sees the request.
    if let Some(kind) = fault.filter(|k| !k.after_processing()) {
        model.count_fault();
        return match kind {
            FaultKind::Reset => Outcome::Reset,
            FaultKind::Stall => Outcome::Stall(stall),
            FaultKind::Throttle => {
                model.count_throttled();
                Outcome::Respond(throttled(None))
            }
            FaultKind::BadGateway => Outcome::Respond(html(502, "502 Bad Gateway", 0)),
            FaultKind::Unavailable => Outcome::Respond(html(503, "503 Service Unavailable", 0)),
            _ => Outcome::Respond(html(502, "502 Bad Gateway", 1024 * 1024)),
        };
    }

    // The account's concurrency limit (error 20429: "Requests that receive 429 responses
    // aren't processed"): counted before anything is looked at.
    let now = match model.enter(roll.limit) {
        Ok(now) => now,
        Err(before) => return Outcome::Respond(throttled(header.then_some(before))),
    };
    if !roll.latency.is_zero() {
        tokio::time::sleep(roll.latency).await;
    }
    let mut response = process(inner, request, &form, key.as_deref());
    // The slot is free before the answer leaves, so a client that sends its next request on
    // receipt never meets its own previous one.
    model.leave(response.status, key.as_deref());
    // Twilio answers every request with its id: "RQ" and 32 hex digits.
    response = response.with_header("Twilio-Request-Id", format!("RQ{}", random_hex()));
    if header {
        response = response.with_header("Twilio-Concurrent-Requests", now.to_string());
    }

    match fault {
        Some(kind) => {
            model.count_fault();
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
    if account != inner.model.settings.account_sid.as_str() {
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
    let s = &inner.model.settings;
    (user == s.account_sid.as_str() && secret == s.auth_token)
        || s.api_keys
            .iter()
            .any(|k| user == k.sid.as_str() && secret == k.secret)
}

/// Opens a create on a call: the call must exist (20404); a repeated key answers its first
/// result.
fn open_create<'a>(
    inner: &'a Inner,
    path: &'a str,
    call: &CallSid,
    key: Option<&'a str>,
) -> Result<Create<'a>, Response> {
    inner
        .model
        .open_create(path, call, key)
        .map_err(|found| match found {
            Some((status, body)) => Response::new(status, "application/json", body),
            None => not_found(path),
        })
}

fn created((status, body): (u16, Vec<u8>)) -> Response {
    Response::new(status, "application/json", body)
}

fn refused((status, code, message): Refusal) -> Response {
    error(status, code, &message)
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
    let create = match open_create(inner, path, call, key) {
        Ok(create) => create,
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
    if let Err(why) = create.check_active() {
        return refused(why);
    }
    created(create.record_message(parsed))
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
    let create = match open_create(inner, path, call, key) {
        Ok(create) => create,
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
    if let Err(why) = create.check_active() {
        return refused(why);
    }
    created(create.record_subscription(callback, method))
}

fn unsubscribe(inner: &Inner, path: &str, call: &CallSid, sid: &str) -> Response {
    if !inner.model.unsubscribe(call, sid) {
        return not_found(path);
    }
    // 204 with an empty body (upstream description).
    Response::empty(204)
}
