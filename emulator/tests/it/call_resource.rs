//! The Call resource over REST for every call shape (FetchCall, ListCall with its filters and
//! Twilio's paging), and conferences with their participants (FetchConference,
//! ListParticipant, FetchParticipant): who is on each leg, as upstream's `from`, `to` and
//! `direction` say.

use serde_json::{Value, json};
use twilio_call_messages::{CallSid, Client};
use twilio_call_messages_emulator::{
    ACCOUNT_NUMBER, CallStatus, ClientLeg, Emulator, EmulatorError, Endpoint, OTHER_PARTY,
};

use crate::common;

fn phone(n: &str) -> Endpoint {
    Endpoint::Phone(n.into())
}

fn client(name: &str) -> Endpoint {
    Endpoint::Client(name.into())
}

/// A GET of a path (with its query) relative to the API host, as Twilio's paging URIs are.
async fn get(e: &Emulator, path: &str) -> (u16, Value) {
    let response = common::http()
        .get(format!("{}{path}", e.base_url()))
        .basic_auth(e.account_sid(), Some(e.auth_token()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn account_path(e: &Emulator) -> String {
    format!("/2010-04-01/Accounts/{}", e.account_sid())
}

async fn fetch(e: &Emulator, sid: &CallSid) -> Value {
    let (status, body) = get(e, &format!("{}/Calls/{sid}.json", account_path(e))).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `(from, to, direction, parent_call_sid)` of a leg as FetchCall answers it.
async fn ends(e: &Emulator, sid: &CallSid) -> (String, String, String, Value) {
    let body = fetch(e, sid).await;
    assert_eq!(body["sid"], sid.as_str());
    (
        body["from"].as_str().unwrap().to_owned(),
        body["to"].as_str().unwrap().to_owned(),
        body["direction"].as_str().unwrap().to_owned(),
        body["parent_call_sid"].clone(),
    )
}

fn t(from: &str, to: &str, direction: &str, parent: Value) -> (String, String, String, Value) {
    (from.into(), to.into(), direction.into(), parent)
}

/// Every page of a list, following `next_page_uri` to the end (as Twilio's libraries do).
async fn all_pages(e: &Emulator, first: &str, key: &str) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(path) = next {
        let (status, body) = get(e, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        pages += 1;
        assert!(pages < 100, "the pages end");
        items.extend(body[key].as_array().unwrap().iter().cloned());
        next = body["next_page_uri"].as_str().map(str::to_owned);
    }
    (items, pages)
}

#[tokio::test]
async fn a_client_that_placed_the_call_is_the_from_of_the_inbound_parent() {
    let e = Emulator::start().await.unwrap();
    let call = e.dial(client("alice"), phone("+15005550009"));
    let child = call.child.unwrap();
    assert_eq!(
        ends(&e, &call.parent).await,
        t("client:alice", ACCOUNT_NUMBER, "inbound", Value::Null)
    );
    // A client dialling a phone presents a number as caller ID.
    assert_eq!(
        ends(&e, &child).await,
        t(
            ACCOUNT_NUMBER,
            "+15005550009",
            "outbound-dial",
            json!(call.parent)
        )
    );
    let info = e.call(&call.parent).unwrap();
    assert_eq!(
        (info.from.as_str(), info.direction.as_str()),
        ("client:alice", "inbound")
    );
    assert_eq!(info.client_call_sid, call.parent);
    assert_eq!(e.call(&child).unwrap().client_call_sid, call.parent);
    assert_eq!(info.client_leg, Some(ClientLeg::Outgoing));

    // The handle's older shape, with a generated identity on the same leg.
    let old = e.create_client_call(ClientLeg::Outgoing);
    let (from, to, direction, _) = ends(&e, &old.parent).await;
    assert!(from.starts_with("client:"), "{from}");
    assert_eq!(
        (to.as_str(), direction.as_str()),
        (ACCOUNT_NUMBER, "inbound")
    );
    assert_eq!(
        ends(&e, &old.child).await,
        t(
            ACCOUNT_NUMBER,
            OTHER_PARTY,
            "outbound-dial",
            json!(old.parent)
        )
    );
}

#[tokio::test]
async fn a_client_that_accepted_the_call_is_the_to_of_the_outbound_dial_child() {
    let e = Emulator::start().await.unwrap();
    let call = e.dial(phone("+15005550006"), client("bob"));
    let child = call.child.unwrap();
    assert_eq!(
        ends(&e, &call.parent).await,
        t("+15005550006", ACCOUNT_NUMBER, "inbound", Value::Null)
    );
    // The caller's number passes through as the child leg's caller ID.
    assert_eq!(
        ends(&e, &child).await,
        t(
            "+15005550006",
            "client:bob",
            "outbound-dial",
            json!(call.parent)
        )
    );
    assert_eq!(e.call(&call.parent).unwrap().client_call_sid, child);
    let body = fetch(&e, &child).await;
    assert_eq!(body["from_formatted"], "(500) 555-0006");
    assert_eq!(body["to_formatted"], "client:bob");
    assert_eq!(body["status"], "in-progress");
    assert_eq!(
        body["uri"],
        format!("{}/Calls/{child}.json", account_path(&e))
    );

    let old = e.create_client_call(ClientLeg::Incoming);
    let (_, to, direction, parent) = ends(&e, &old.child).await;
    assert!(to.starts_with("client:"), "{to}");
    assert_eq!(direction, "outbound-dial");
    assert_eq!(parent, json!(old.parent));
    assert_eq!(ends(&e, &old.parent).await.0, OTHER_PARTY);
}

#[tokio::test]
async fn client_to_client_and_phone_to_phone() {
    let e = Emulator::start().await.unwrap();
    let sdk = Client::builder()
        .account_sid(e.account_sid().as_str())
        .auth_token(e.auth_token())
        .base_url(e.base_url())
        .build()
        .unwrap();
    let both = e.dial(client("alice"), client("bob"));
    let child = both.child.unwrap();
    assert_eq!(
        ends(&e, &both.parent).await,
        t("client:alice", ACCOUNT_NUMBER, "inbound", Value::Null)
    );
    assert_eq!(
        ends(&e, &child).await,
        t(
            "client:alice",
            "client:bob",
            "outbound-dial",
            json!(both.parent)
        )
    );
    assert_eq!(e.call(&child).unwrap().client_leg, Some(ClientLeg::Both));
    // Each client sees the messages to its own leg.
    sdk.send_message(both.parent, &json!({"to": "alice"}))
        .await
        .unwrap();
    sdk.send_message(child, &json!({"to": "bob"}))
        .await
        .unwrap();
    assert_eq!(
        e.client_received(&both.parent)[0].content,
        json!({"to": "alice"})
    );
    assert_eq!(e.client_received(&child)[0].content, json!({"to": "bob"}));

    let phones = e.dial(phone("+15005550006"), phone("+15005550009"));
    let child = phones.child.unwrap();
    assert_eq!(
        ends(&e, &child).await,
        t(
            "+15005550006",
            "+15005550009",
            "outbound-dial",
            json!(phones.parent)
        )
    );
    assert_eq!(e.call(&child).unwrap().client_leg, None);
    // Twilio answers 201 and nobody sees it; no phone sends call messages.
    sdk.send_message(child, &json!({"to": "nobody"}))
        .await
        .unwrap();
    assert!(e.client_received(&child).is_empty());
    let dropped = e.dropped_messages(&child);
    assert!(
        dropped[0].reason.contains("no Voice SDK client"),
        "{dropped:?}"
    );
    assert!(matches!(
        e.client_send(&phones.parent, json!({})),
        Err(EmulatorError::NoClientOnCall(_))
    ));

    // A call the REST API places to a client: one outbound-api leg.
    let plain = e.create_call();
    let (from, to, direction, parent) = ends(&e, &plain).await;
    assert_eq!(
        (from.as_str(), direction.as_str(), parent),
        (ACCOUNT_NUMBER, "outbound-api", Value::Null)
    );
    assert!(to.starts_with("client:"), "{to}");
}

#[tokio::test]
async fn a_parent_rings_before_its_child_leg_is_dialled() {
    let e = Emulator::start().await.unwrap();
    let parent = e.ringing_call(phone("+15005550006"));
    assert_eq!(fetch(&e, &parent).await["status"], "ringing");
    let children = format!("{}/Calls.json?ParentCallSid={parent}", account_path(&e));
    let (status, body) = get(&e, &children).await;
    assert_eq!(status, 200);
    assert_eq!(body["calls"], json!([]), "no child yet");
    assert_eq!(body["next_page_uri"], Value::Null);

    let child = e.dial_child(&parent, client("carol")).unwrap();
    let (_, body) = get(&e, &children).await;
    assert_eq!(body["calls"].as_array().unwrap().len(), 1);
    assert_eq!(body["calls"][0]["sid"], child.as_str());
    assert_eq!(body["calls"][0]["to"], "client:carol");
    assert_eq!(fetch(&e, &parent).await["status"], "in-progress");
    assert_eq!(e.call(&parent).unwrap().client_call_sid, child);
    assert!(matches!(
        e.dial_child(&parent, client("dave")),
        Err(EmulatorError::AlreadyDialed(_))
    ));
    // Both legs end together.
    e.set_call_status(&parent, CallStatus::Completed).unwrap();
    let body = fetch(&e, &child).await;
    assert_eq!(body["status"], "completed");
    assert!(body["end_time"].is_string() && body["duration"].is_string());
}

#[tokio::test]
async fn list_calls_filters_and_pages() {
    let e = Emulator::start().await.unwrap();
    for n in 0..3 {
        e.dial(client(&format!("alice{n}")), phone("+15005550009"));
    }
    let to_phone = format!(
        "{}/Calls.json?To=%2B15005550009&PageSize=2",
        account_path(&e)
    );
    let (status, first) = get(&e, &to_phone).await;
    assert_eq!(status, 200);
    assert_eq!(first["page"], 0);
    assert_eq!(first["page_size"], 2);
    assert_eq!(
        (first["start"].clone(), first["end"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(first["previous_page_uri"], Value::Null);
    let next = first["next_page_uri"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{}/Calls.json?To=%2B15005550009&PageSize=2&Page=1&PageToken=PA",
            account_path(&e)
        )),
        "{next}"
    );
    assert_eq!(
        first["first_page_uri"],
        format!(
            "{}/Calls.json?To=%2B15005550009&PageSize=2&Page=0",
            account_path(&e)
        )
    );
    let (all, pages) = all_pages(&e, &to_phone, "calls").await;
    assert_eq!((all.len(), pages), (3, 2));
    assert!(
        all.iter()
            .all(|c| c["to"] == "+15005550009" && c["direction"] == "outbound-dial")
    );
    // The second page links back.
    let (_, second) = get(&e, next).await;
    assert_eq!(second["start"], 2);
    assert!(second["previous_page_uri"].is_string());

    let (_, by_from) = get(
        &e,
        &format!("{}/Calls.json?From=client%3Aalice1", account_path(&e)),
    )
    .await;
    assert_eq!(by_from["calls"].as_array().unwrap().len(), 1);
    assert_eq!(by_from["calls"][0]["direction"], "inbound");
    let (_, ringing) = get(
        &e,
        &format!("{}/Calls.json?Status=ringing", account_path(&e)),
    )
    .await;
    assert_eq!(ringing["calls"], json!([]));
    let (_, everything) = get(&e, &format!("{}/Calls.json", account_path(&e))).await;
    assert_eq!(everything["calls"].as_array().unwrap().len(), 6);
    assert_eq!(everything["page_size"], 50);

    // Twilio's errors: an unknown call, a bad page size, another account.
    let (status, body) = get(
        &e,
        &format!("{}/Calls/CA{}.json", account_path(&e), "0".repeat(32)),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (404, json!(20404)));
    let (status, body) = get(&e, &format!("{}/Calls.json?PageSize=0", account_path(&e))).await;
    assert_eq!((status, body["code"].clone()), (400, json!(20001)));
    let (status, _) = get(
        &e,
        &format!("/2010-04-01/Accounts/AC{}/Calls.json", "1".repeat(32)),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_conference_of_clients_and_phones_over_more_than_one_page() {
    let e = Emulator::start().await.unwrap();
    let conference = e.create_conference("standup");
    assert!(conference.starts_with("CF") && conference.len() == 34);
    let path = format!("{}/Conferences/{conference}", account_path(&e));
    let (status, body) = get(&e, &format!("{path}.json")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["status"].clone(), body["friendly_name"].clone()),
        (json!("init"), json!("standup"))
    );

    let alice = e.add_participant(&conference, client("alice")).unwrap();
    let phone_leg = e
        .add_participant(&conference, phone("+15005550009"))
        .unwrap();
    // A client's own inbound call that dialled into the conference.
    let bob = e.ringing_call(client("bob"));
    e.join_conference(&conference, &bob).unwrap();
    let carol = e.add_participant(&conference, client("carol")).unwrap();
    let joined = [alice, phone_leg, bob, carol];

    let (participants, pages) = all_pages(
        &e,
        &format!("{path}/Participants.json?PageSize=2"),
        "participants",
    )
    .await;
    assert_eq!(pages, 2);
    let listed: Vec<&str> = participants
        .iter()
        .map(|p| p["call_sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        joined.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "in the order they joined"
    );
    assert!(
        participants
            .iter()
            .all(|p| p["conference_sid"] == conference.as_str() && p["status"] == "connected")
    );
    // Each participant's call_sid is its own leg: who is on it, from the Call resource.
    assert_eq!(
        ends(&e, &alice).await,
        t(ACCOUNT_NUMBER, "client:alice", "outbound-api", Value::Null)
    );
    assert_eq!(ends(&e, &phone_leg).await.1, "+15005550009");
    assert_eq!(
        ends(&e, &bob).await,
        t("client:bob", ACCOUNT_NUMBER, "inbound", Value::Null)
    );
    assert_eq!(
        e.call(&bob).unwrap().conference_sid.as_deref(),
        Some(conference.as_str())
    );

    let (status, one) = get(&e, &format!("{path}/Participants/{carol}.json")).await;
    assert_eq!(status, 200);
    assert_eq!(one["call_sid"], carol.as_str());
    let (_, muted) = get(&e, &format!("{path}/Participants.json?Muted=true")).await;
    assert_eq!(muted["participants"], json!([]));
    let (_, body) = get(&e, &format!("{path}.json")).await;
    assert_eq!(body["status"], "in-progress");

    // A leg that ends leaves; the last to leave ends the conference.
    for leg in joined {
        e.set_call_status(&leg, CallStatus::Completed).unwrap();
    }
    let (_, body) = get(&e, &format!("{path}.json")).await;
    assert_eq!(body["status"], "completed");
    assert_eq!(body["reason_conference_ended"], "last-participant-left");
    let (status, _) = get(&e, &format!("{path}/Participants/{carol}.json")).await;
    assert_eq!(status, 404);
    assert!(matches!(
        e.add_participant(&conference, client("erin")),
        Err(EmulatorError::ConferenceEnded(_))
    ));
    let (status, body) = get(
        &e,
        &format!("{}/Conferences/CF{}.json", account_path(&e), "0".repeat(32)),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (404, json!(20404)));
}

#[tokio::test]
async fn the_control_api_dials_and_makes_conferences() {
    let e = Emulator::start().await.unwrap();
    let http = common::http();
    let control = |path: &str, body: Value| {
        http.post(format!("{}/emulator{path}", e.base_url()))
            .json(&body)
            .send()
    };
    let answer = control(
        "/calls",
        json!({"from": "client:alice", "to": "+15005550009"}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 201);
    let dialled: Value = answer.json().await.unwrap();
    assert_eq!(dialled["legs"][0]["from"], "client:alice");
    assert_eq!(dialled["legs"][1]["direction"], "outbound-dial");

    let ringing: Value = control("/calls", json!({"from": "+15005550006"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ringing["child"], Value::Null);
    let parent = ringing["parent"].as_str().unwrap();
    let answer = control(
        &format!("/calls/{parent}/dial"),
        json!({"to": "client:bob"}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 201);
    let answer = control(
        &format!("/calls/{parent}/dial"),
        json!({"to": "client:bob"}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 409);

    let conference: Value = control("/conferences", json!({"friendly_name": "room"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = conference["sid"].as_str().unwrap();
    for body in [
        json!({"to": "client:carol"}),
        json!({"to": "+15005550009"}),
        json!({"call_sid": parent}),
    ] {
        let answer = control(&format!("/conferences/{sid}/participants"), body)
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    let answer = control(
        &format!("/conferences/{sid}/participants"),
        json!({"ring_client": "nobody"}),
    )
    .await
    .unwrap();
    assert_eq!(
        answer.status(),
        404,
        "nobody is registered as that identity"
    );
    let shown: Value = http
        .get(format!("{}/emulator/conferences/{sid}", e.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["participants"].as_array().unwrap().len(), 3);
    assert_eq!(e.conference(sid).unwrap().participants.len(), 3);
}
