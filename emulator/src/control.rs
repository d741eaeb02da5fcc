//! The control API under `/emulator/` (JSON in, JSON out): what a test in any language needs to
//! play the call and its client, read what happened, and set the faults. These paths are a
//! stable interface that tests in other languages rely on: `POST /emulator/calls`,
//! `POST /emulator/calls/{CallSid}`,
//! `POST|GET /emulator/calls/{CallSid}/client-messages`, `GET /emulator/calls/{CallSid}/messages`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use twilio_call_messages::CallSid;

use crate::http::{Request, Response};
use crate::settings::{CallStatus, CallbackFaults, FaultKind, Faults};
use crate::{Emulator, EmulatorError, Inner};

fn problem(status: u16, message: impl Into<String>) -> Response {
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
        EmulatorError::UnknownCall(_) => 404,
        EmulatorError::CallExists(_) => 409,
        _ => 400,
    };
    problem(status, e.to_string())
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
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallUpdate {
    status: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSend {
    content: Option<Value>,
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

fn call_sid(text: &str) -> Result<CallSid, Response> {
    text.parse()
        .map_err(|e| problem(400, format!("not a call SID: {e}")))
}

pub(crate) fn handle(inner: &Arc<Inner>, request: &Request) -> Response {
    match respond(inner, request) {
        Ok(response) | Err(response) => response,
    }
}

fn respond(inner: &Arc<Inner>, request: &Request) -> Result<Response, Response> {
    let emulator = Emulator {
        inner: inner.clone(),
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let segments: Vec<&str> = request
        .path()
        .trim_start_matches("/emulator")
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = request.method.as_str();
    Ok(match (method, segments.as_slice()) {
        ("GET", []) => ok(json!({
            "base_url": inner.base_url,
            "account_sid": inner.settings.account_sid,
        })),
        ("POST", ["calls"]) => {
            let new: NewCall = body(request)?;
            let sid = match new.sid.as_deref() {
                Some(text) => call_sid(text)?,
                None => crate::new_sid("CA"),
            };
            let parent = new.parent_call_sid.as_deref().map(call_sid).transpose()?;
            let status = status_of(new.status.as_deref())?;
            let info = emulator.add_call(sid, status, parent).map_err(from_error)?;
            Response::json(201, &serde_json::to_value(info).unwrap_or(Value::Null))
        }
        ("GET", ["calls"]) => ok(emulator.calls()),
        ("GET", ["calls", sid]) => {
            let sid = call_sid(sid)?;
            match emulator.call(&sid) {
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
            ok(emulator.set_call_status(&sid, status).map_err(from_error)?)
        }
        ("POST", ["calls", sid, "client-messages"]) => {
            let sid = call_sid(sid)?;
            let send: ClientSend = body(request)?;
            let Some(content) = send.content else {
                return Err(problem(
                    400,
                    "give a content, e.g. {\"content\": {\"a\": 1}}",
                ));
            };
            let message = emulator.client_send(&sid, content).map_err(from_error)?;
            Response::json(201, &json!({ "sid": message, "call_sid": sid }))
        }
        ("GET", ["calls", sid, "client-messages"]) => {
            let sid = call_sid(sid)?;
            known(&emulator, &sid)?;
            ok(emulator.client_messages(&sid))
        }
        ("GET", ["calls", sid, "client-messages", message]) => {
            let sid = call_sid(sid)?;
            known(&emulator, &sid)?;
            match emulator
                .client_messages(&sid)
                .into_iter()
                .find(|m| m.sid.as_str() == *message)
            {
                Some(found) => ok(found),
                None => problem(404, format!("no client message {message} in call {sid}")),
            }
        }
        ("GET", ["calls", sid, "messages"]) => {
            let sid = call_sid(sid)?;
            known(&emulator, &sid)?;
            ok(emulator.client_received(&sid))
        }
        ("GET", ["calls", sid, "subscriptions"]) => {
            let sid = call_sid(sid)?;
            known(&emulator, &sid)?;
            ok(emulator.subscriptions(&sid))
        }
        ("GET", ["stats"]) => ok(json!({
            "stats": emulator.stats(),
            "requests_per_key": emulator.requests_per_key(),
            "succeeded_per_key": emulator.succeeded_per_key(),
            "pending_deliveries": *inner.pending.borrow(),
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
            emulator.set_faults(faults).map_err(from_error)?;
            ok(json!({ "ok": true }))
        }
        ("POST", ["callback-faults"]) => {
            let given: CallbackFaultsBody = body(request)?;
            emulator
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
                emulator.set_concurrency_limit(limit);
            }
            if let Some(ms) = given.latency_ms {
                emulator.set_latency(Duration::from_millis(ms));
            }
            ok(json!({ "ok": true }))
        }
        _ => problem(
            404,
            format!("no control endpoint {method} {}", request.path()),
        ),
    })
}

fn known(emulator: &Emulator, sid: &CallSid) -> Result<(), Response> {
    match emulator.call(sid) {
        Some(_) => Ok(()),
        None => Err(from_error(EmulatorError::UnknownCall(sid.to_string()))),
    }
}
