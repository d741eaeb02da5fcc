//! Twilio's REST API for call messages, at its real paths: Twilio's OpenAPI description
//! (twilio/twilio-oai `spec/json/twilio_api_v2010.json`) and its pages
//! <https://www.twilio.com/docs/voice/api/userdefinedmessage-resource> and
//! <https://www.twilio.com/docs/voice/api/userdefinedmessagesubscription-resource>; and the
//! reads of the Call, Conference and Participant resources (`reads`).

mod reads;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use twilio_call_messages::{AccountSid, CallSid, MessageSid, SubscriptionSid};

use crate::Inner;
use crate::http::{Outcome, Request, Response};
use crate::model::{Created, Failure, MAX_CONTENT_CHARS, Refusal, Refused, random_hex};
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

/// A REST request the emulator did not answer with 2xx, as the page, the control API and
/// [`Emulator::refused_requests`](crate::Emulator::refused_requests) show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RefusedRequest {
    /// `POST`, `DELETE`, …
    pub method: String,
    /// The path requested.
    pub path: String,
    /// The call in the path, if any.
    pub call_sid: Option<CallSid>,
    /// The HTTP status, if one was answered (a reset or a stall answers none).
    pub status: Option<u16>,
    /// Twilio's error code, if the answer carried one.
    pub code: Option<u32>,
    /// What was answered, or the fault.
    pub message: String,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// One REST request, from the account's door to the answer: every answer that is not 2xx is
/// recorded as what went wrong, then answered as Twilio answers it.
pub(crate) async fn handle(inner: &Arc<Inner>, request: Request) -> Outcome {
    let model = &inner.model;
    let path = request.path();
    let refuse = |failure: Failure| {
        let call_sid = path
            .split('/')
            .find(|p| p.starts_with("CA"))
            .and_then(|p| p.strip_suffix(".json").unwrap_or(p).parse().ok());
        model.record_refused(&request.method, path, call_sid, failure);
    };
    let form = form_of(&request);
    let key = field(&form, "IdempotencyKey").map(str::to_owned);
    model.count_request(key.as_deref());
    let roll = model.roll();
    let (fault, stall, header) = (roll.fault, roll.stall, roll.header);
    // A proxy in front of the API fails before the account sees the request.
    if let Some(kind) = fault.filter(|k| !k.after_processing()) {
        model.count_fault(kind);
        refuse(Failure::Fault(kind));
        return match kind {
            FaultKind::Reset => Outcome::Reset,
            FaultKind::Stall => Outcome::Stall(stall),
            FaultKind::Throttle => Outcome::Respond(throttled(None)),
            FaultKind::BadGateway => Outcome::Respond(html(502, "502 Bad Gateway", 0)),
            FaultKind::Unavailable => Outcome::Respond(html(503, "503 Service Unavailable", 0)),
            _ => Outcome::Respond(html(502, "502 Bad Gateway", 1024 * 1024)),
        };
    }

    // The account's concurrency limit (error 20429: "Requests that receive 429 responses
    // aren't processed"): counted before anything is looked at.
    let now = match model.enter(roll.limit) {
        Ok(now) => now,
        Err(before) => {
            refuse(Failure::Refused(Refusal::Throttled));
            return Outcome::Respond(throttled(header.then_some(before)));
        }
    };
    if !roll.latency.is_zero() {
        tokio::time::sleep(roll.latency).await;
    }
    let answered = process(inner, &request, &form, key.as_deref());
    // The slot is free before the answer leaves, so a client that sends its next request on
    // receipt never meets its own previous one.
    model.leave(answered.is_ok(), key.as_deref());
    // What the client will not get as a 2xx: the API's refusal, or the fault that replaces
    // the answer (a created answer cut in half was still created: no refusal).
    let failure = match (fault, &answered) {
        (Some(FaultKind::TruncatedAfter), Ok(_)) => None,
        (Some(FaultKind::TruncatedAfter), Err(why)) => Some(Failure::Cut(why.clone())),
        (Some(kind), _) => Some(Failure::Fault(kind)),
        (None, Ok(_)) => None,
        (None, Err(why)) => Some(Failure::Refused(why.clone())),
    };
    if let Some(failure) = failure {
        refuse(failure);
    }
    let mut response = match &answered {
        Ok(answer) => success(inner, answer),
        Err(why) => twilio_error(why, path),
    };
    // Twilio answers every request with its id: "RQ" and 32 hex digits.
    response = response.with_header("Twilio-Request-Id", format!("RQ{}", random_hex()));
    if header {
        response = response.with_header("Twilio-Concurrent-Requests", now.to_string());
    }

    match fault {
        Some(kind) => {
            model.count_fault(kind);
            match kind {
                FaultKind::ResetAfter => Outcome::Reset,
                FaultKind::TruncatedAfter => Outcome::Truncated(response),
                FaultKind::StallAfter => Outcome::Stall(stall),
                FaultKind::GatewayTimeoutAfter => {
                    Outcome::Respond(html(504, "504 Gateway Timeout", 0))
                }
                _ => Outcome::Respond(internal_error()),
            }
        }
        None => Outcome::Respond(response),
    }
}

/// What the API answers a request it processed.
enum Answer {
    Created(Created),
    Deleted,
    Read(serde_json::Value),
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

/// A create's 201 (the same for its first answer and every replay of its key), or a delete's
/// 204 with an empty body (upstream description).
fn success(inner: &Inner, answer: &Answer) -> Response {
    let account = &inner.model.settings.account_sid;
    let body = match answer {
        Answer::Deleted => return Response::empty(204),
        Answer::Read(body) => return Response::json(200, body),
        Answer::Created(Created::Message {
            call,
            sid,
            date_created,
        }) => serde_json::to_vec(&MessageBody {
            account_sid: account,
            call_sid: call,
            sid,
            date_created,
        }),
        Answer::Created(Created::Subscription {
            call,
            sid,
            date_created,
        }) => serde_json::to_vec(&SubscriptionBody {
            account_sid: account,
            call_sid: call,
            sid,
            date_created,
            uri: format!(
                "/2010-04-01/Accounts/{account}/Calls/{call}/UserDefinedMessageSubscriptions/{sid}.json"
            ),
        }),
    };
    Response::new(201, "application/json", body.unwrap_or_default())
}

/// Twilio's HTTP status, error code and message for what the API refused.
fn status_code_message(why: &Refusal, path: &str) -> (u16, u32, String) {
    let not_found = || {
        (
            404,
            20404,
            format!("The requested resource {path} was not found"),
        )
    };
    match why {
        // Twilio's 20003 ("Authenticate").
        Refusal::BadCredentials => (401, 20003, "Authenticate".into()),
        // ASSUMPTION: another account's path with valid credentials answers as bad credentials
        // for that account (20003 / 401).
        Refusal::OtherAccount => (401, 20003, "Authenticate".into()),
        Refusal::NoResource | Refusal::CallNotFound | Refusal::SubscriptionNotFound => not_found(),
        // The emulator serves the methods of the upstream excerpt's operations: other methods
        // are not allowed (ASSUMPTION: Twilio's 20004 "Method not allowed" with 405).
        Refusal::MethodNotAllowed => (405, 20004, "Method not allowed".into()),
        // ASSUMPTION: Twilio's wording and code for a missing required parameter (20001,
        // HTTP 400); upstream marks `Content` and `Callback` required.
        Refusal::MissingParameter(name) => (
            400,
            20001,
            format!("Missing required parameter {name} in the post body"),
        ),
        // ASSUMPTION: the same code for a query parameter that is not what upstream declares.
        Refusal::InvalidParameter(name) => (400, 20001, format!("Invalid {name}")),
        // ASSUMPTION (no source says whether 32702/32703 are synchronous HTTP errors or only
        // debugger warnings; docs/twilio-behaviour.md#errors): both answer HTTP 400 at once.
        Refusal::ContentNotJson => (400, 32702, "Content is not valid JSON".into()),
        Refusal::ContentTooLong(chars) => (
            400,
            32703,
            format!("Content is {chars} characters long, more than {MAX_CONTENT_CHARS}"),
        ),
        // ASSUMPTION: 21502 is Twilio's "Invalid callback url"; that this operation uses it.
        Refusal::InvalidCallback(why) => (400, 21502, format!("Invalid Callback URL: it {why}")),
        Refusal::InvalidMethod => (400, 20001, "Method must be GET or POST".into()),
        // ASSUMPTION (no source states the status or code; docs/twilio-behaviour.md#errors):
        // HTTP 400 with 21220, whose text is Twilio's ("a realtime operation on a Call that
        // was not in-progress", https://www.twilio.com/docs/api/errors/21220).
        Refusal::CallNotActive(status) => (
            400,
            21220,
            format!(
                "Invalid call state: you attempted a realtime operation on a Call that was not in-progress (it is {status})"
            ),
        ),
        Refusal::Throttled => (429, 20429, "Too Many Requests".into()),
    }
}

/// The answer with Twilio's error body to what the API refused.
fn twilio_error(why: &Refusal, path: &str) -> Response {
    let (status, code, message) = status_code_message(why, path);
    let response = error(status, code, &message);
    match why {
        // With the Basic challenge.
        Refusal::BadCredentials => {
            response.with_header("WWW-Authenticate", "Basic realm=\"Twilio API\"")
        }
        _ => response,
    }
}

/// The `500-after` fault's answer: Twilio's own error, as a failing API gives it.
const INTERNAL_ERROR: (u16, u32, &str) = (500, 20500, "Internal Server Error");

fn internal_error() -> Response {
    let (status, code, message) = INTERNAL_ERROR;
    error(status, code, message)
}

/// A refused request as the page and the control API show it: what was answered (status,
/// Twilio's code and message), or the fault.
pub(crate) fn describe(refused: Refused) -> RefusedRequest {
    let proxy = |status: u16| {
        (
            Some(status),
            None,
            format!("HTTP {status} (a proxy's page)"),
        )
    };
    let twilio = |why: &Refusal| {
        let (status, code, message) = status_code_message(why, &refused.path);
        (Some(status), Some(code), message)
    };
    let (status, code, message) = match &refused.failure {
        Failure::Refused(why) => twilio(why),
        Failure::Cut(why) => (
            Some(status_code_message(why, &refused.path).0),
            None,
            "fault: the answer cut in half, then a reset".into(),
        ),
        Failure::Fault(kind) => match kind {
            FaultKind::Reset | FaultKind::ResetAfter => {
                (None, None, "fault: connection reset".into())
            }
            FaultKind::Stall | FaultKind::StallAfter => {
                (None, None, "fault: connection stalled".into())
            }
            FaultKind::Throttle => twilio(&Refusal::Throttled),
            FaultKind::BadGateway | FaultKind::OversizedBadGateway => proxy(502),
            FaultKind::Unavailable => proxy(503),
            FaultKind::GatewayTimeoutAfter => proxy(504),
            FaultKind::ErrorAfter => {
                let (status, code, message) = INTERNAL_ERROR;
                (Some(status), Some(code), message.into())
            }
            // Recorded only as `Cut`, with the refusal it cut.
            FaultKind::TruncatedAfter => (
                None,
                None,
                "fault: the answer cut in half, then a reset".into(),
            ),
        },
    };
    RefusedRequest {
        method: refused.method,
        path: refused.path,
        call_sid: refused.call_sid,
        status,
        code,
        message,
        at_ms: refused.at_ms,
    }
}

/// REST requests refused, oldest first (the last few hundred).
pub(crate) fn refused_requests(inner: &Inner) -> Vec<RefusedRequest> {
    inner.model.refused().into_iter().map(describe).collect()
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
    /// A GET of the Call and conference resources.
    Read(reads::Read),
}

/// `CA…` or `CF…` and the `.json` of a resource's path.
fn json_sid(segment: &str) -> Option<&str> {
    segment.strip_suffix(".json")
}

fn conference_sid(text: &str) -> Result<String, ()> {
    let ok = text.len() == 34
        && text.starts_with("CF")
        && text[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok { Ok(text.to_owned()) } else { Err(()) }
}

/// Authentication, routing, and the operation. Synchronous: the state is held only here.
fn process(
    inner: &Inner,
    request: &Request,
    form: &[(String, String)],
    key: Option<&str>,
) -> Result<Answer, Refusal> {
    let model = &inner.model;
    let path = request.path();
    if !authenticated(inner, request) {
        return Err(Refusal::BadCredentials);
    }
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return Err(Refusal::NoResource);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (account, route) = match parts.as_slice() {
        [account, "Calls", call, "UserDefinedMessages.json"] => {
            (*account, call.parse().map(Route::Messages).map_err(|_| ()))
        }
        [
            account,
            "Calls",
            call,
            "UserDefinedMessageSubscriptions.json",
        ] => (
            *account,
            call.parse().map(Route::Subscriptions).map_err(|_| ()),
        ),
        [
            account,
            "Calls",
            call,
            "UserDefinedMessageSubscriptions",
            sid,
        ] => (
            *account,
            call.parse()
                .map(|call| {
                    Route::Subscription(call, sid.strip_suffix(".json").unwrap_or("").to_owned())
                })
                .map_err(|_| ()),
        ),
        [account, "Calls.json"] => (*account, Ok(Route::Read(reads::Read::Calls))),
        [account, "Calls", call] if json_sid(call).is_some() => (
            *account,
            json_sid(call)
                .unwrap_or("")
                .parse()
                .map(|sid| Route::Read(reads::Read::Call(sid)))
                .map_err(|_| ()),
        ),
        [account, "Conferences", conference] if json_sid(conference).is_some() => (
            *account,
            conference_sid(json_sid(conference).unwrap_or(""))
                .map(|sid| Route::Read(reads::Read::Conference(sid))),
        ),
        [account, "Conferences", conference, "Participants.json"] => (
            *account,
            conference_sid(conference).map(|sid| Route::Read(reads::Read::Participants(sid))),
        ),
        [account, "Conferences", conference, "Participants", call] => (
            *account,
            conference_sid(conference).and_then(|sid| {
                let call = json_sid(call).ok_or(())?.parse().map_err(|_| ())?;
                Ok(Route::Read(reads::Read::Participant(sid, call)))
            }),
        ),
        _ => return Err(Refusal::NoResource),
    };
    if account != model.settings.account_sid.as_str() {
        return Err(Refusal::OtherAccount);
    }
    let Ok(route) = route else {
        return Err(Refusal::NoResource);
    };
    match (request.method.as_str(), route) {
        ("POST", Route::Messages(call)) => model
            .create_message(&call, key, field(form, "Content"))
            .map(Answer::Created),
        ("POST", Route::Subscriptions(call)) => model
            .subscribe(&call, key, field(form, "Callback"), field(form, "Method"))
            .map(Answer::Created),
        ("DELETE", Route::Subscription(call, sid)) => {
            model.unsubscribe(&call, &sid).map(|()| Answer::Deleted)
        }
        ("GET", Route::Read(read)) => {
            reads::read(model, read, path, &reads::query_of(&request.target)).map(Answer::Read)
        }
        // The emulator creates, updates and deletes no call nor conference: those paths
        // answer as before they were readable (404).
        (_, Route::Read(_)) => Err(Refusal::NoResource),
        _ => Err(Refusal::MethodNotAllowed),
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
