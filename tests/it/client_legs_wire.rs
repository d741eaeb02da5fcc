//! `.to_client()` on the wire (httpmock): which reads it makes and how often (the cache), the
//! paging it follows, what a refusal to read calls becomes, and the one re-resolution after a
//! stale cached leg. The call shapes themselves run against the emulator (`client_legs`).

use httpmock::{Method::GET, Method::POST, MockServer};
use twilio_call_messages::{Client, Error, LegError};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const PARENT: &str = "CA00000000000000000000000000000001";
const CHILD: &str = "CA00000000000000000000000000000002";
const LATER: &str = "CA00000000000000000000000000000003";
const CALLS: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .account_sid(ACCOUNT)
        .auth_token("token")
        .base_url(server.base_url())
        .build()
        .unwrap()
}

fn call(
    sid: &str,
    parent: Option<&str>,
    direction: &str,
    from: &str,
    to: &str,
    status: &str,
) -> serde_json::Value {
    serde_json::json!({
        "sid": sid, "parent_call_sid": parent, "account_sid": ACCOUNT,
        "direction": direction, "from": from, "to": to, "status": status,
    })
}

fn created(call: &str) -> String {
    format!(
        r#"{{"account_sid":"{ACCOUNT}","call_sid":"{call}","sid":"KXcccccccccccccccccccccccccccccccc","date_created":"Wed, 18 Dec 2019 20:02:01 +0000"}}"#
    )
}

/// An incoming call to the client `bob`: the parent from a phone, the child to `client:bob`.
async fn incoming<'a>(server: &'a MockServer, status: &str) -> [httpmock::Mock<'a>; 3] {
    let parent = server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{CALLS}/{PARENT}.json"));
            then.status(200).json_body(call(
                PARENT,
                None,
                "inbound",
                "+15005550006",
                "+15005550001",
                status,
            ));
        })
        .await;
    let child = server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{CALLS}/{CHILD}.json"));
            then.status(200).json_body(call(
                CHILD,
                Some(PARENT),
                "outbound-dial",
                "+15005550006",
                "client:bob",
                status,
            ));
        })
        .await;
    let children = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{CALLS}.json"))
                .query_param("ParentCallSid", PARENT);
            then.status(200).json_body(serde_json::json!({
                "calls": [call(CHILD, Some(PARENT), "outbound-dial", "+15005550006", "client:bob", status)],
                "next_page_uri": null,
            }));
        })
        .await;
    [parent, child, children]
}

#[tokio::test]
async fn a_connected_call_is_read_once_then_cached() {
    let server = MockServer::start_async().await;
    let [parent, child, children] = incoming(&server, "in-progress").await;
    let send = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("{CALLS}/{CHILD}/UserDefinedMessages.json"));
            then.status(201).body(created(CHILD));
        })
        .await;
    let client = client(&server);
    for _ in 0..3 {
        let message = client
            .send_message(PARENT, &serde_json::json!({"n": 1}))
            .to_client()
            .await
            .unwrap();
        assert_eq!(message.call_sid, CHILD);
        assert_eq!(message.client_identity.as_deref(), Some("bob"));
    }
    // Given the parent: the parent read, its children listed, once for three messages.
    assert_eq!((parent.calls(), children.calls(), child.calls()), (1, 1, 0));
    assert_eq!(send.calls(), 3);
    // Given the child, the same call: still cached.
    client.send_message(CHILD, &1).to_client().await.unwrap();
    assert_eq!((parent.calls(), children.calls(), child.calls()), (1, 1, 0));
}

#[tokio::test]
async fn a_ringing_call_is_read_again_each_time() {
    let server = MockServer::start_async().await;
    let [parent, child, children] = incoming(&server, "ringing").await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("{CALLS}/{CHILD}/UserDefinedMessages.json"));
            then.status(201).body(created(CHILD));
        })
        .await;
    let client = client(&server);
    for _ in 0..2 {
        client.send_message(CHILD, &1).to_client().await.unwrap();
    }
    // Given the child: the child, its parent, the parent's children, every time.
    assert_eq!((child.calls(), parent.calls(), children.calls()), (2, 2, 2));
}

#[tokio::test]
async fn children_are_listed_to_the_last_page() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{CALLS}/{PARENT}.json"));
            then.status(200).json_body(call(
                PARENT,
                None,
                "inbound",
                "+15005550006",
                "+15005550001",
                "in-progress",
            ));
        })
        .await;
    let first = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{CALLS}.json"))
                .query_param("ParentCallSid", PARENT)
                .query_param_missing("PageToken");
            then.status(200).json_body(serde_json::json!({
                "calls": [call(CHILD, Some(PARENT), "outbound-dial", "+1500", "+15005550009", "completed")],
                "next_page_uri": format!("{CALLS}.json?ParentCallSid={PARENT}&PageSize=1&Page=1&PageToken=PAnext"),
            }));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{CALLS}.json"))
                .query_param("ParentCallSid", PARENT)
                .query_param("Page", "1")
                .query_param("PageToken", "PAnext");
            then.status(200).json_body(serde_json::json!({
                "calls": [call(LATER, Some(PARENT), "outbound-dial", "+1500", "client:eve", "in-progress")],
                "next_page_uri": null,
            }));
        })
        .await;
    let legs = client(&server).client_legs(PARENT).await.unwrap();
    assert_eq!((first.calls(), second.calls()), (1, 1));
    assert_eq!(legs.len(), 1);
    assert_eq!(
        (legs[0].call_sid.as_str(), legs[0].identity.as_str()),
        (LATER, "eve")
    );
}

#[tokio::test]
async fn credentials_that_may_not_read_calls_are_a_leg_error_before_anything_is_sent() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{CALLS}/{PARENT}.json"));
            then.status(403).json_body(serde_json::json!({
                "code": 20003, "message": "Authenticate", "status": 403,
                "more_info": "https://www.twilio.com/docs/errors/20003",
            }));
        })
        .await;
    let send = server
        .mock_async(|when, then| {
            when.method(POST);
            then.status(201).body(created(PARENT));
        })
        .await;
    let error = client(&server)
        .send_message(PARENT, &1)
        .to_client()
        .await
        .unwrap_err();
    let Error::Leg(leg) = &error else {
        panic!("{error:?}")
    };
    assert!(matches!(**leg, LegError::NotPermitted { .. }), "{leg:?}");
    assert!(error.to_string().contains("may not read call"), "{error}");
    assert_eq!(send.calls(), 0);
}

/// A cached leg that ended (Twilio: 21220) is resolved again once; the message goes to the
/// leg the call's client is on now, and the stale entry is gone.
#[tokio::test]
async fn a_stale_cached_leg_is_resolved_again_once() {
    let server = MockServer::start_async().await;
    let mut mocks = incoming(&server, "in-progress").await;
    let client = client(&server);
    let first = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("{CALLS}/{CHILD}/UserDefinedMessages.json"));
            then.status(201).body(created(CHILD));
        })
        .await;
    client.send_message(PARENT, &1).to_client().await.unwrap();
    first.delete_async().await;
    // The child hung up and the parent dialled the client again.
    let ended = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("{CALLS}/{CHILD}/UserDefinedMessages.json"));
            then.status(400).json_body(serde_json::json!({
                "code": 21220, "message": "Call is not in-progress", "status": 400,
            }));
        })
        .await;
    for mock in &mut mocks {
        mock.delete_async().await;
    }
    server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{CALLS}/{PARENT}.json"));
            then.status(200).json_body(call(
                PARENT,
                None,
                "inbound",
                "+15005550006",
                "+1500",
                "in-progress",
            ));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{CALLS}.json"));
            then.status(200).json_body(serde_json::json!({
                "calls": [
                    call(CHILD, Some(PARENT), "outbound-dial", "+1500", "client:bob", "completed"),
                    call(LATER, Some(PARENT), "outbound-dial", "+1500", "client:bob", "in-progress"),
                ],
                "next_page_uri": null,
            }));
        })
        .await;
    let later = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("{CALLS}/{LATER}/UserDefinedMessages.json"));
            then.status(201).body(created(LATER));
        })
        .await;
    let message = client.send_message(PARENT, &2).to_client().await.unwrap();
    assert_eq!(message.call_sid, LATER);
    assert_eq!((ended.calls(), later.calls()), (1, 1));
    // The new leg is cached in its turn.
    client.send_message(PARENT, &3).to_client().await.unwrap();
    assert_eq!((ended.calls(), later.calls()), (1, 2));
}
