//! The control API under `/emulator/` (JSON in, JSON out): what a test in any language, and
//! the page, need to play the call and its client, read what happened, set the faults and
//! reset. These paths are a stable interface that tests in other languages rely on:
//! `POST /emulator/calls`, `POST /emulator/calls/{CallSid}`,
//! `POST|GET /emulator/calls/{CallSid}/client-messages`, `GET /emulator/calls/{CallSid}/messages`,
//! `POST /emulator/reset`, `POST /emulator/access-tokens`, `POST /emulator/voice-clients/ring`,
//! `POST /emulator/calls/{CallSid}/dial`, `POST|GET /emulator/conferences`,
//! `GET /emulator/conferences/{ConferenceSid}`,
//! `POST /emulator/conferences/{ConferenceSid}/participants`.
//! A thin caller of the model: it parses, calls, and answers.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use twilio_call_messages::CallSid;

use crate::Inner;
use crate::callbacks;
use crate::http::{Outcome, Request, Response};
use crate::model::{
    ClientLeg, EmulatorError, Endpoint, OTHER_PARTY, USER_DEFINED_MESSAGE, new_sid,
};
use crate::rest;
use crate::settings::{CallStatus, CallbackFaults, FaultKind, Faults};

/// The longest a `GET /emulator/changes` waits for a change.
const LONG_POLL: Duration = Duration::from_secs(15);

pub(crate) fn problem(status: u16, message: impl Into<String>) -> Response {
    Response::json(
        status,
        &json!({ "error": message.into(), "status": status }),
    )
}

fn ok(value: impl serde::Serialize) -> Response {
    Response::json(200, &serde_json::to_value(value).unwrap_or(Value::Null))
}

fn from_error(e: EmulatorError) -> Response {
    let status = match e {
        EmulatorError::UnknownCall(_)
        | EmulatorError::NoClient(_)
        | EmulatorError::UnknownConference(_) => 404,
        EmulatorError::CallExists(_)
        | EmulatorError::AlreadyDialed(_)
        | EmulatorError::ConferenceEnded(_) => 409,
        _ => 400,
    };
    let mut body = json!({ "error": e.to_string(), "status": status });
    if let Some(code) = e.code() {
        body["code"] = code.into();
    }
    Response::json(status, &body)
}

fn body<T: for<'de> Deserialize<'de> + Default>(request: &Request) -> Result<T, Response> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| problem(400, format!("the body is not the expected JSON: {e}")))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCall {
    sid: Option<String>,
    status: Option<String>,
    parent_call_sid: Option<String>,
    /// `outgoing`, `incoming` or `both`: a Voice SDK client call with two legs.
    client_leg: Option<String>,
    /// A dialled call from this endpoint (`client:name` or a number) ...
    from: Option<String>,
    /// ... to this one; without it, the parent rings, not dialled yet.
    to: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dial {
    to: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConference {
    friendly_name: Option<String>,
}

/// One of: a new participant's leg to `to`; an existing call that joins; a registered Voice SDK
/// client rung into the conference.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewParticipant {
    to: Option<String>,
    call_sid: Option<String>,
    ring_client: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    identity: Option<String>,
    ttl_secs: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ring {
    identity: Option<String>,
    /// The caller, as the client's `call.parameters.From` shows it.
    from: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallUpdate {
    status: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSend {
    /// Any JSON value, kept as the text it was given in (key order and spacing).
    content: Option<Box<RawValue>>,
    /// Or the content as JSON text in a string.
    content_text: Option<String>,
    message_type: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    /// Fault name -> rate.
    #[serde(default)]
    rates: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    seed: u64,
    stall_ms: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackFaultsBody {
    #[serde(default)]
    duplicate: f64,
    #[serde(default)]
    reorder: f64,
    #[serde(default)]
    drop_first: f64,
    #[serde(default)]
    seed: u64,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsBody {
    /// `null` removes the limit; absent leaves it.
    #[serde(default, with = "double_option")]
    concurrency_limit: Option<Option<usize>>,
    latency_ms: Option<u64>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<usize>>, D::Error> {
        Option::<usize>::deserialize(d).map(Some)
    }
}

fn status_of(text: Option<&str>) -> Result<CallStatus, Response> {
    text.unwrap_or("in-progress")
        .parse()
        .map_err(|e: String| problem(400, e))
}

/// `client:name` or a phone number.
fn endpoint(text: &str) -> Result<Endpoint, Response> {
    match Endpoint::parse(text) {
        Endpoint::Client(name) if name.is_empty() => Err(problem(
            400,
            "a client endpoint names its identity: client:alice",
        )),
        Endpoint::Phone(number) if number.is_empty() => {
            Err(problem(400, "an endpoint is client:name or a phone number"))
        }
        found => Ok(found),
    }
}

fn call_sid(text: &str) -> Result<CallSid, Response> {
    text.parse()
        .map_err(|e| problem(400, format!("not a call SID: {e}")))
}

pub(crate) async fn handle(inner: &Arc<Inner>, request: &Request) -> Outcome {
    if let ("GET", ["changes"]) = (request.method.as_str(), segments(request).as_slice()) {
        return Outcome::Respond(changes(inner, request).await);
    }
    Outcome::Respond(match respond(inner, request) {
        Ok(response) | Err(response) => response,
    })
}

fn segments(request: &Request) -> Vec<&str> {
    request
        .path()
        .trim_start_matches("/emulator")
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

/// Waits until the state changes after version `after` (or a while), then answers the version:
/// the page's live updates without a busy poll.
async fn changes(inner: &Inner, request: &Request) -> Response {
    let after: u64 = request
        .target
        .split_once("after=")
        .and_then(|(_, v)| v.split('&').next()?.parse().ok())
        .unwrap_or(0);
    let mut version = inner.model.version();
    let _ = tokio::time::timeout(LONG_POLL, version.wait_for(|v| *v > after)).await;
    let now = *version.borrow();
    ok(json!({ "version": now }))
}

fn respond(inner: &Arc<Inner>, request: &Request) -> Result<Response, Response> {
    let model = &inner.model;
    let segments = segments(request);
    let method = request.method.as_str();
    Ok(match (method, segments.as_slice()) {
        ("GET", []) => ok(json!({
            "base_url": inner.base_url,
            "account_sid": model.settings.account_sid,
            "chunderw": inner.chunderw(),
            "signal_url": format!("wss://{}/signal", inner.chunderw()),
            "certificate_spki_sha256": inner.certificate.spki_sha256,
        })),
        ("GET", ["certificate"]) => {
            Response::new(200, "application/x-pem-file", inner.certificate.pem.clone())
        }
        ("POST", ["access-tokens"]) => {
            let asked: TokenRequest = body(request)?;
            let Some(identity) = asked.identity.filter(|i| !i.is_empty()) else {
                return Err(problem(
                    400,
                    "give the client's identity: {\"identity\": \"alice\"}",
                ));
            };
            let ttl = Duration::from_secs(asked.ttl_secs.unwrap_or(3600));
            Response::json(
                201,
                &json!({
                    "token": inner.access_token(&identity, ttl),
                    "identity": identity,
                    "api_key_sid": model.settings.api_keys[0].sid,
                    "chunderw": inner.chunderw(),
                    "signal_url": format!("wss://{}/signal", inner.chunderw()),
                }),
            )
        }
        ("GET", ["voice-clients"]) => ok(model.voice_clients()),
        ("POST", ["voice-clients", "ring"]) => {
            let ring: Ring = body(request)?;
            let Some(identity) = ring.identity else {
                return Err(problem(
                    400,
                    "give the identity to ring: {\"identity\": \"alice\"}",
                ));
            };
            let call = model
                .ring_client(&identity, ring.from.as_deref().unwrap_or(OTHER_PARTY))
                .map_err(from_error)?;
            Response::json(201, &serde_json::to_value(call).unwrap_or(Value::Null))
        }
        ("POST", ["reset"]) => {
            model.reset();
            ok(json!({ "ok": true }))
        }
        ("POST", ["calls"]) => {
            let new: NewCall = body(request)?;
            if let Some(from) = new.from.as_deref() {
                if new.sid.is_some()
                    || new.parent_call_sid.is_some()
                    || new.client_leg.is_some()
                    || new.status.is_some()
                {
                    return Err(problem(
                        400,
                        "a dialled call is {\"from\", \"to\"?} alone: its legs get fresh SIDs, and it is in-progress (ringing without \"to\")",
                    ));
                }
                let from = endpoint(from)?;
                let call = match new.to.as_deref() {
                    Some(to) => model.dial(from, endpoint(to)?),
                    None => crate::model::DialedCall {
                        parent: model.ringing_call(from),
                        child: None,
                    },
                };
                return Ok(Response::json(
                    201,
                    &json!({
                        "parent": call.parent,
                        "child": call.child,
                        "legs": model.legs(&call.parent),
                    }),
                ));
            }
            if new.to.is_some() {
                return Err(problem(400, "give \"from\" with \"to\""));
            }
            let status = status_of(new.status.as_deref())?;
            if let Some(leg) = new.client_leg.as_deref() {
                if new.sid.is_some() || new.parent_call_sid.is_some() {
                    return Err(problem(
                        400,
                        "a client call's legs get fresh SIDs: give client_leg without sid or parent_call_sid",
                    ));
                }
                let leg: ClientLeg = leg.parse().map_err(|e: String| problem(400, e))?;
                let call = model.create_client_call(leg, status);
                let info = model.call(&call.client);
                let mut answer = serde_json::to_value(info).unwrap_or(Value::Null);
                answer["legs"] = serde_json::to_value(model.legs(&call.client)).unwrap_or_default();
                answer["parent"] = call.parent.as_str().into();
                answer["child"] = call.child.as_str().into();
                return Ok(Response::json(201, &answer));
            }
            let sid = match new.sid.as_deref() {
                Some(text) => call_sid(text)?,
                None => new_sid("CA"),
            };
            let parent = new.parent_call_sid.as_deref().map(call_sid).transpose()?;
            let info = model.add_call(sid, status, parent).map_err(from_error)?;
            Response::json(201, &serde_json::to_value(info).unwrap_or(Value::Null))
        }
        ("GET", ["calls"]) => ok(model.calls()),
        ("GET", ["calls", sid]) => {
            let sid = call_sid(sid)?;
            match model.call(&sid) {
                Some(info) => ok(info),
                None => from_error(EmulatorError::UnknownCall(sid.to_string())),
            }
        }
        ("POST", ["calls", sid]) => {
            let sid = call_sid(sid)?;
            let update: CallUpdate = body(request)?;
            let Some(status) = update.status else {
                return Err(problem(
                    400,
                    "give a status, e.g. {\"status\": \"completed\"}",
                ));
            };
            let status = status_of(Some(&status))?;
            ok(model.set_call_status(&sid, status).map_err(from_error)?)
        }
        ("POST", ["calls", sid, "dial"]) => {
            let sid = call_sid(sid)?;
            let dial: Dial = body(request)?;
            let Some(to) = dial.to.as_deref() else {
                return Err(problem(
                    400,
                    "give whom to dial: {\"to\": \"client:alice\"}",
                ));
            };
            let child = model.dial_child(&sid, endpoint(to)?).map_err(from_error)?;
            Response::json(
                201,
                &json!({ "parent": sid, "child": child, "legs": model.legs(&sid) }),
            )
        }
        ("POST", ["conferences"]) => {
            let new: NewConference = body(request)?;
            let sid = model.create_conference(new.friendly_name.as_deref().unwrap_or(""));
            Response::json(
                201,
                &serde_json::to_value(model.conference(&sid)).unwrap_or_default(),
            )
        }
        ("GET", ["conferences"]) => ok(model.conferences()),
        ("GET", ["conferences", sid]) => match model.conference(sid) {
            Some(found) => ok(found),
            None => from_error(EmulatorError::UnknownConference((*sid).to_owned())),
        },
        ("POST", ["conferences", sid, "participants"]) => {
            let new: NewParticipant = body(request)?;
            let call = match (new.to, new.call_sid, new.ring_client) {
                (Some(to), None, None) => model.add_participant(sid, endpoint(&to)?),
                (None, Some(call), None) => {
                    let call = call_sid(&call)?;
                    model.join_conference(sid, &call).map(|()| call)
                }
                (None, None, Some(identity)) => model.ring_client_into_conference(sid, &identity),
                _ => {
                    return Err(problem(
                        400,
                        "give one of: {\"to\": \"client:alice\" or a number} (a new leg), {\"call_sid\": \"CA…\"} (a call joins), {\"ring_client\": \"alice\"} (rings a registered Voice SDK client)",
                    ));
                }
            }
            .map_err(from_error)?;
            Response::json(
                201,
                &json!({ "conference_sid": sid, "call_sid": call, "call": model.call(&call) }),
            )
        }
        ("POST", ["calls", sid, "client-messages"]) => {
            let sid = call_sid(sid)?;
            let send: ClientSend = body(request)?;
            let text = match (send.content, send.content_text) {
                (Some(raw), None) => raw.get().to_owned(),
                (None, Some(text)) => text,
                _ => {
                    return Err(problem(
                        400,
                        "give a content (any JSON, e.g. {\"content\": {\"a\": 1}}) or a content_text (JSON text in a string), one of them",
                    ));
                }
            };
            let message_type = send.message_type.as_deref().unwrap_or(USER_DEFINED_MESSAGE);
            let (message, leg) =
                callbacks::client_send(inner, &sid, &text, message_type, Default::default())
                    .map_err(from_error)?;
            Response::json(201, &json!({ "sid": message, "call_sid": leg }))
        }
        ("GET", ["calls", sid, "client-messages"]) => {
            let sid = known(inner, sid)?;
            ok(model.client_messages(&sid))
        }
        ("GET", ["calls", sid, "client-messages", message]) => {
            let sid = known(inner, sid)?;
            match model
                .client_messages(&sid)
                .into_iter()
                .find(|m| m.sid.as_str() == *message)
            {
                Some(found) => ok(found),
                None => problem(404, format!("no client message {message} in call {sid}")),
            }
        }
        ("GET", ["calls", sid, "messages"]) => {
            let sid = known(inner, sid)?;
            ok(model.client_received(&sid))
        }
        ("GET", ["calls", sid, "dropped-messages"]) => {
            let sid = known(inner, sid)?;
            ok(model.dropped(&sid))
        }
        ("GET", ["calls", sid, "subscriptions"]) => {
            let sid = known(inner, sid)?;
            ok(model.subscriptions(&sid))
        }
        ("GET", ["calls", sid, "timeline"]) => {
            let sid = known(inner, sid)?;
            ok(timeline(inner, &sid))
        }
        ("GET", ["refused"]) => ok(rest::refused_requests(inner)),
        ("GET", ["settings"]) => ok(model.live_view()),
        ("GET", ["stats"]) => ok(json!({
            "stats": model.stats(),
            "requests_per_key": model.requests_per_key(),
            "succeeded_per_key": model.succeeded_per_key(),
            "pending_deliveries": model.pending_now(),
        })),
        ("POST", ["faults"]) => {
            let given: FaultsBody = body(request)?;
            let mut faults = Faults::none().seed(given.seed);
            if let Some(ms) = given.stall_ms {
                faults = faults.stall(Duration::from_millis(ms));
            }
            for (name, rate) in given.rates {
                let kind: FaultKind = name.parse().map_err(|e: String| problem(400, e))?;
                faults = faults.with(kind, rate);
            }
            model.set_faults(faults).map_err(from_error)?;
            ok(json!({ "ok": true }))
        }
        ("POST", ["callback-faults"]) => {
            let given: CallbackFaultsBody = body(request)?;
            model
                .set_callback_faults(CallbackFaults {
                    duplicate: given.duplicate,
                    reorder: given.reorder,
                    drop_first: given.drop_first,
                    seed: given.seed,
                })
                .map_err(from_error)?;
            ok(json!({ "ok": true }))
        }
        ("POST", ["limits"]) => {
            let given: LimitsBody = body(request)?;
            if let Some(limit) = given.concurrency_limit {
                model.set_concurrency_limit(limit);
            }
            if let Some(ms) = given.latency_ms {
                model.set_latency(Duration::from_millis(ms));
            }
            ok(json!({ "ok": true }))
        }
        _ => problem(
            404,
            format!("no control endpoint {method} {}", request.path()),
        ),
    })
}

/// Everything about one call, both legs of a client call together: what went in (received or
/// dropped), what came out (each delivery attempt), its subscriptions, and the REST requests
/// refused on its paths.
fn timeline(inner: &Inner, sid: &CallSid) -> Value {
    let model = &inner.model;
    let legs = model.legs(sid);
    let mut received = Vec::new();
    let mut dropped = Vec::new();
    let mut sent = Vec::new();
    let mut subscriptions = Vec::new();
    for leg in &legs {
        for m in model.client_received(&leg.sid) {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            v["call_sid"] = leg.sid.as_str().into();
            received.push(v);
        }
        dropped.extend(model.dropped(&leg.sid));
        sent.extend(model.client_messages(&leg.sid));
        for s in model.subscriptions(&leg.sid) {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["call_sid"] = leg.sid.as_str().into();
            subscriptions.push(v);
        }
    }
    let refused: Vec<_> = rest::refused_requests(inner)
        .into_iter()
        .filter(|r| r.call_sid.is_some_and(|c| legs.iter().any(|l| l.sid == c)))
        .collect();
    json!({
        "call": model.call(sid),
        "legs": legs,
        "received": received,
        "dropped": dropped,
        "sent": sent,
        "subscriptions": subscriptions,
        "refused": refused,
    })
}

fn known(inner: &Inner, text: &str) -> Result<CallSid, Response> {
    let sid = call_sid(text)?;
    match inner.model.call(&sid) {
        Some(_) => Ok(sid),
        None => Err(from_error(EmulatorError::UnknownCall(sid.to_string()))),
    }
}
