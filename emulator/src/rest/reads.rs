//! The read operations of the Call and conference resources: FetchCall, ListCall,
//! FetchConference, ListParticipant and FetchParticipant, their bodies as upstream's schemas
//! (`api.v2010.account.call`, `api.v2010.account.conference`,
//! `api.v2010.account.conference.participant`) and Twilio's paging, as twilio-oai
//! `spec/json/twilio_api_v2010.json` describes them (the excerpt in `openapi/upstream/`).

use serde_json::{Value, json};
use twilio_call_messages::{AccountSid, CallSid};

use crate::model::{CallInfo, ConferenceInfo, Model, ParticipantInfo, Refusal};

/// `PageSize` when none is given, and the most it may be (upstream's ListCall and
/// ListParticipant: `PageSize` "How many resources to return in each list page. The default is
/// 50, and the maximum is 1000.").
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// The query string's pairs, decoded.
pub(super) fn query_of(target: &str) -> Vec<(String, String)> {
    let query = target
        .split_once('?')
        .map_or("", |(_, q)| q.split('#').next().unwrap_or(""));
    serde_urlencoded::from_str(query).unwrap_or_default()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn account_path(account: &AccountSid) -> String {
    format!("/2010-04-01/Accounts/{account}")
}

/// FetchCall's body: every property of upstream's `api.v2010.account.call`, `null` where the
/// emulator has nothing (no phone number resources, prices, SIP trunks or groups).
pub(super) fn call_body(call: &CallInfo) -> Value {
    let uri = format!("{}/Calls/{}", account_path(&call.account_sid), call.sid);
    let sub = |name: &str| format!("{uri}/{name}.json");
    json!({
        "sid": call.sid,
        "date_created": call.date_created,
        "date_updated": call.date_updated,
        "parent_call_sid": call.parent_call_sid,
        "account_sid": call.account_sid,
        "to": call.to,
        "to_formatted": formatted(&call.to),
        "from": call.from,
        "from_formatted": formatted(&call.from),
        "phone_number_sid": null,
        "status": call.status.as_str(),
        "start_time": call.start_time,
        "end_time": call.end_time,
        "duration": call.duration,
        "price": null,
        "price_unit": "USD",
        "direction": call.direction,
        "answered_by": null,
        "api_version": "2010-04-01",
        "forwarded_from": null,
        "group_sid": null,
        "caller_name": null,
        "queue_time": "0",
        "trunk_sid": null,
        "uri": format!("{uri}.json"),
        "subresource_uris": {
            "notifications": sub("Notifications"),
            "recordings": sub("Recordings"),
            "payments": sub("Payments"),
            "events": sub("Events"),
            "siprec": sub("Siprec"),
            "streams": sub("Streams"),
            "transcriptions": sub("Transcriptions"),
            "user_defined_message_subscriptions": sub("UserDefinedMessageSubscriptions"),
            "user_defined_messages": sub("UserDefinedMessages"),
        },
    })
}

/// `to_formatted` / `from_formatted`: a North American number as `(305) 141-6799`, as
/// upstream's example formats `+13051416799` ("Non-North American phone numbers are in E.164
/// format"); anything else (a `client:` identifier, another country) as it is.
fn formatted(address: &str) -> String {
    match address.strip_prefix("+1") {
        Some(d) if d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..])
        }
        _ => address.to_owned(),
    }
}

pub(super) fn conference_body(conference: &ConferenceInfo) -> Value {
    let uri = format!(
        "{}/Conferences/{}",
        account_path(&conference.account_sid),
        conference.sid
    );
    let mut body = json!({
        "account_sid": conference.account_sid,
        "date_created": conference.date_created,
        "date_updated": conference.date_updated,
        "api_version": "2010-04-01",
        "friendly_name": conference.friendly_name,
        // ASSUMPTION: Twilio's default region (upstream's `region`: "us1" is listed first and
        // is the default mixing region).
        "region": "us1",
        "sid": conference.sid,
        "status": conference.status,
        "uri": format!("{uri}.json"),
        "subresource_uris": {
            "participants": format!("{uri}/Participants.json"),
            "recordings": format!("{uri}/Recordings.json"),
        },
    });
    // Only once it ended: upstream's `reason_conference_ended` is "`null`" while in progress
    // but not nullable in the schema, and its in-progress example leaves both out.
    if let Some(reason) = &conference.reason_conference_ended {
        body["reason_conference_ended"] = reason.as_str().into();
        body["call_sid_ending_conference"] = json!(conference.call_sid_ending_conference);
    }
    body
}

pub(super) fn participant_body(account: &AccountSid, p: &ParticipantInfo) -> Value {
    json!({
        "account_sid": account,
        "call_sid": p.call_sid,
        "label": null,
        "call_sid_to_coach": null,
        "coaching": p.coaching,
        "conference_sid": p.conference_sid,
        "date_created": p.date_created,
        "date_updated": p.date_created,
        "end_conference_on_exit": false,
        "muted": p.muted,
        "hold": p.hold,
        "start_conference_on_enter": true,
        "status": p.status,
        "queue_time": null,
        "uri": format!(
            "{}/Conferences/{}/Participants/{}.json",
            account_path(account),
            p.conference_sid,
            p.call_sid
        ),
    })
}

/// ListCall's filters: `To`, `From`, `ParentCallSid`, `Status`, each an exact match.
/// ASSUMPTION: the `StartTime`/`EndTime` filters are accepted and not applied (the
/// emulator's calls all start today), and `To`/`From` match the address as written.
pub(super) fn filter_calls(calls: Vec<CallInfo>, query: &[(String, String)]) -> Vec<CallInfo> {
    let to = param(query, "To");
    let from = param(query, "From");
    let parent = param(query, "ParentCallSid");
    let status = param(query, "Status");
    calls
        .into_iter()
        .filter(|c| to.is_none_or(|t| c.to == t))
        .filter(|c| from.is_none_or(|f| c.from == f))
        .filter(|c| parent.is_none_or(|p| c.parent_call_sid.is_some_and(|s| s.as_str() == p)))
        .filter(|c| status.is_none_or(|s| c.status.as_str() == s))
        .collect()
}

/// ListParticipant's filters `Muted`, `Hold`, `Coaching`: the emulator's participants are
/// never muted, held nor coaching, so `true` lists none.
pub(super) fn filter_participants(
    participants: Vec<ParticipantInfo>,
    query: &[(String, String)],
) -> Result<Vec<ParticipantInfo>, Refusal> {
    let flag = |name: &'static str| -> Result<Option<bool>, Refusal> {
        match param(query, name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(Refusal::InvalidParameter(name)),
        }
    };
    let (muted, hold, coaching) = (flag("Muted")?, flag("Hold")?, flag("Coaching")?);
    Ok(participants
        .into_iter()
        .filter(|p| muted.is_none_or(|m| p.muted == m))
        .filter(|p| hold.is_none_or(|h| p.hold == h))
        .filter(|p| coaching.is_none_or(|c| p.coaching == c))
        .collect())
}

/// One page of a list, as Twilio pages (upstream's list schemas: `first_page_uri`,
/// `next_page_uri`, `previous_page_uri`, `page`, `page_size`, `start`, `end`, `uri`, and the
/// items under `key`). The URIs are paths relative to the API host, with the filters given,
/// then `PageSize`, `Page` and `PageToken`, as upstream's examples write them: a client that
/// follows `next_page_uri` gets the next page. `PageToken` is `PA` and the last SID of the
/// page before (`PB` and the first SID of the page after, for `previous_page_uri`), as in
/// upstream's examples; a token whose item is gone falls back to `Page` × `PageSize`.
pub(super) fn page<T>(
    max_page_size: usize,
    path: &str,
    query: &[(String, String)],
    key: &str,
    items: &[T],
    sid_of: impl Fn(&T) -> String,
    body_of: impl Fn(&T) -> Value,
) -> Result<Value, Refusal> {
    let page_size = match param(query, "PageSize") {
        None => DEFAULT_PAGE_SIZE.min(max_page_size),
        Some(text) => match text.parse::<usize>() {
            Ok(0) | Err(_) => return Err(Refusal::InvalidParameter("PageSize")),
            // ASSUMPTION: beyond the maximum, the maximum (Twilio's libraries cap it too).
            Ok(n) => n.min(max_page_size),
        },
    };
    let page = match param(query, "Page") {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Refusal::InvalidParameter("Page"))?,
    };
    let position = |sid: &str| items.iter().position(|item| sid_of(item) == sid);
    let token = param(query, "PageToken");
    let start = match token {
        Some(t) if t.starts_with("PA") => position(&t[2..]).map(|i| i + 1),
        Some(t) if t.starts_with("PB") => position(&t[2..]).map(|i| i.saturating_sub(page_size)),
        _ => None,
    }
    .unwrap_or_else(|| page.saturating_mul(page_size))
    .min(items.len());
    let end = (start + page_size).min(items.len());
    let shown = &items[start..end];

    let filters: Vec<(&str, &str)> = query
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "PageSize" | "Page" | "PageToken"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let uri = |page: usize, token: Option<String>| {
        let mut pairs = filters.clone();
        let (size, page) = (page_size.to_string(), page.to_string());
        pairs.push(("PageSize", &size));
        pairs.push(("Page", &page));
        if let Some(token) = &token {
            pairs.push(("PageToken", token));
        }
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let next = (end < items.len())
        .then(|| shown.last())
        .flatten()
        .map(|last| uri(page + 1, Some(format!("PA{}", sid_of(last)))));
    let previous = (start > 0).then(|| {
        let token = shown.first().map(|first| format!("PB{}", sid_of(first)));
        uri(page.saturating_sub(1), token)
    });
    let mut body = json!({
        "first_page_uri": uri(0, None),
        "next_page_uri": next,
        "previous_page_uri": previous,
        "uri": uri(page, token.map(str::to_owned)),
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + shown.len().saturating_sub(1),
    });
    body[key] = Value::Array(shown.iter().map(body_of).collect());
    Ok(body)
}

/// What the read routes answer, or why not.
pub(super) enum Read {
    Call(CallSid),
    Calls,
    Conference(String),
    Participants(String),
    Participant(String, CallSid),
}

pub(super) fn read(
    model: &Model,
    route: Read,
    path: &str,
    query: &[(String, String)],
) -> Result<Value, Refusal> {
    let account = model.settings.account_sid;
    match route {
        Read::Call(sid) => model
            .call(&sid)
            .map(|c| call_body(&c))
            .ok_or(Refusal::CallNotFound),
        Read::Calls => {
            // ASSUMPTION: newest first (upstream does not say; Twilio's console lists the
            // latest calls first).
            let mut calls = filter_calls(model.calls(), query);
            calls.reverse();
            page(
                model.settings.list_page_size.unwrap_or(MAX_PAGE_SIZE),
                path,
                query,
                "calls",
                &calls,
                |c| c.sid.to_string(),
                call_body,
            )
        }
        Read::Conference(sid) => model
            .conference(&sid)
            .map(|c| conference_body(&c))
            .ok_or(Refusal::NoResource),
        Read::Participants(sid) => {
            let conference = model.conference(&sid).ok_or(Refusal::NoResource)?;
            // ASSUMPTION: in the order they joined (upstream does not say).
            let participants = filter_participants(conference.participants, query)?;
            page(
                model.settings.list_page_size.unwrap_or(MAX_PAGE_SIZE),
                path,
                query,
                "participants",
                &participants,
                |p| p.call_sid.to_string(),
                |p| participant_body(&account, p),
            )
        }
        Read::Participant(sid, call) => model
            .conference(&sid)
            .and_then(|c| c.participants.into_iter().find(|p| p.call_sid == call))
            .map(|p| participant_body(&account, &p))
            .ok_or(Refusal::NoResource),
    }
}
