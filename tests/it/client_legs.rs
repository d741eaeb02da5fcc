//! `.to_client()`, `client_legs` and `broadcast_to_conference` against the emulator, for every
//! call shape: the client placed the call (its leg the parent), accepted it (a child),
//! client to client, phone to phone, a child leg not dialled yet, a call that does not exist,
//! and a conference of clients and phones over more than one page. Each message is checked
//! where the emulator's client would see it (`client_received`), and nothing is sent where no
//! leg has a client.

use twilio_call_messages::{CallSid, Client, Error, LegError};
use twilio_call_messages_emulator::{Emulator, Endpoint};

fn client(twilio: &Emulator) -> Client {
    Client::builder()
        .account_sid(twilio.account_sid().as_str())
        .auth_token(twilio.auth_token())
        .base_url(twilio.base_url())
        .build()
        .unwrap()
}

fn phone(n: u32) -> Endpoint {
    Endpoint::Phone(format!("+1500555{n:04}"))
}

fn person(identity: &str) -> Endpoint {
    Endpoint::Client(identity.to_owned())
}

fn leg_error(error: &Error) -> &LegError {
    match error {
        Error::Leg(e) => e,
        other => panic!("not a leg error: {other:?}"),
    }
}

/// Sends `.to_client()` with each leg's SID; the client on `expected` sees every message.
async fn reaches(twilio: &Emulator, legs: &[CallSid], expected: CallSid, identity: &str) {
    let client = client(twilio);
    for (n, given) in legs.iter().enumerate() {
        let message = client
            .send_message(*given, &serde_json::json!({"n": n}))
            .to_client()
            .await
            .unwrap();
        assert_eq!(message.call_sid, expected, "given {given}");
        assert_eq!(message.client_identity.as_deref(), Some(identity));
    }
    assert_eq!(twilio.client_received(&expected).len(), legs.len());
    for leg in legs.iter().filter(|l| **l != expected) {
        assert!(twilio.client_received(leg).is_empty());
        assert!(
            twilio.dropped_messages(leg).is_empty(),
            "nothing went to the other leg"
        );
    }
}

#[tokio::test]
async fn a_client_that_placed_the_call_is_reached_on_the_parent() {
    let twilio = Emulator::start().await.unwrap();
    let call = twilio.dial(person("alice"), phone(1));
    let child = call.child.unwrap();
    reaches(&twilio, &[child, call.parent], call.parent, "alice").await;
}

#[tokio::test]
async fn a_client_that_accepted_the_call_is_reached_on_the_child() {
    let twilio = Emulator::start().await.unwrap();
    let call = twilio.dial(phone(1), person("bob"));
    let child = call.child.unwrap();
    reaches(&twilio, &[call.parent, child], child, "bob").await;
    // The subscription too: on the client's leg, whichever SID is given.
    let subscription = client(&twilio)
        .subscribe(call.parent, "https://hooks.example.com/messages")
        .to_client()
        .await
        .unwrap();
    assert_eq!(subscription.call_sid, child);
    assert_eq!(subscription.client_identity.as_deref(), Some("bob"));
    assert_eq!(twilio.subscriptions(&child).len(), 1);
    assert!(twilio.subscriptions(&call.parent).is_empty());
}

#[tokio::test]
async fn client_to_client_needs_a_name() {
    let twilio = Emulator::start().await.unwrap();
    let call = twilio.dial(person("alice"), person("bob"));
    let child = call.child.unwrap();
    let client = client(&twilio);
    let error = client
        .send_message(call.parent, &1)
        .to_client()
        .await
        .unwrap_err();
    let LegError::SeveralClients { clients, .. } = leg_error(&error) else {
        panic!("{error}")
    };
    let names: Vec<&str> = clients.iter().map(|c| c.identity.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    for (given, name, leg) in [(child, "alice", call.parent), (call.parent, "bob", child)] {
        let message = client
            .send_message(given, &1)
            .to_client_named(name)
            .await
            .unwrap();
        assert_eq!(message.call_sid, leg);
    }
    let error = client
        .send_message(child, &1)
        .to_client_named("carol")
        .await
        .unwrap_err();
    assert!(
        matches!(leg_error(&error), LegError::NoSuchClient { identity, .. } if identity == "carol")
    );
    let legs = client.client_legs(child).await.unwrap();
    assert_eq!(
        legs.iter()
            .map(|l| (l.call_sid, l.identity.as_str()))
            .collect::<Vec<_>>(),
        [(call.parent, "alice"), (child, "bob")]
    );
}

#[tokio::test]
async fn a_phone_call_has_no_client_and_nothing_is_sent() {
    let twilio = Emulator::start().await.unwrap();
    let call = twilio.dial(phone(1), phone(2));
    let error = client(&twilio)
        .send_message(call.parent, &1)
        .to_client()
        .await
        .unwrap_err();
    let LegError::NoClient { found, .. } = leg_error(&error) else {
        panic!("{error}")
    };
    assert_eq!(found.len(), 2, "{error}");
    assert!(error.to_string().contains("a phone number"), "{error}");
    assert!(twilio.messages().is_empty());
}

#[tokio::test]
async fn a_child_not_dialled_yet_is_found_once_it_is() {
    let twilio = Emulator::start().await.unwrap();
    let parent = twilio.ringing_call(phone(1));
    let client = client(&twilio);
    let error = client
        .send_message(parent, &1)
        .to_client()
        .await
        .unwrap_err();
    assert!(
        matches!(leg_error(&error), LegError::NoClient { .. }),
        "{error}"
    );
    // Not cached: the call dials its client's leg, and the next send finds it.
    let child = twilio.dial_child(&parent, person("dave")).unwrap();
    let message = client.send_message(parent, &2).to_client().await.unwrap();
    assert_eq!(message.call_sid, child);
    assert_eq!(twilio.client_received(&child).len(), 1);
}

#[tokio::test]
async fn a_call_that_does_not_exist_is_a_leg_error() {
    let twilio = Emulator::start().await.unwrap();
    let error = client(&twilio)
        .send_message("CA0123456789abcdef0123456789abcdef", &1)
        .to_client()
        .await
        .unwrap_err();
    let LegError::CallNotFound { source, .. } = leg_error(&error) else {
        panic!("{error}")
    };
    assert_eq!(source.code(), Some(20404));
}

#[tokio::test]
async fn a_conference_broadcast_reaches_every_client_participant_over_several_pages() {
    let twilio = Emulator::builder().list_page_size(2).start().await.unwrap();
    let conference = twilio.create_conference("town-hall");
    let mut expected = Vec::new();
    for n in 0..7 {
        let endpoint = if n % 3 == 2 {
            phone(n)
        } else {
            person(&format!("p{n}"))
        };
        let is_client = matches!(endpoint, Endpoint::Client(_));
        let leg = twilio.add_participant(&conference, endpoint).unwrap();
        expected.push((leg, is_client));
    }
    // A client that dialled into the conference: its own inbound leg is the participant.
    let dialled_in = twilio.ringing_call(person("late"));
    twilio.join_conference(&conference, &dialled_in).unwrap();
    expected.push((dialled_in, true));

    let results = client(&twilio)
        .broadcast_to_conference(conference.as_str(), &serde_json::json!({"poll": "open"}))
        .idempotency_key_prefix("poll-1")
        .await
        .unwrap();
    assert_eq!(results.len(), expected.len());
    for (result, (leg, is_client)) in results.iter().zip(&expected) {
        assert_eq!(result.call_sid, Some(*leg));
        match (&result.result, is_client) {
            (Ok(message), true) => {
                assert_eq!(message.call_sid, *leg);
                assert_eq!(message.idempotency_key, format!("poll-1:{leg}"));
                assert_eq!(twilio.client_received(leg).len(), 1);
            }
            (Err(e), false) => {
                assert!(matches!(leg_error(e), LegError::NoClient { .. }), "{e}");
                assert!(twilio.client_received(leg).is_empty());
            }
            (other, _) => panic!("participant {leg}: {other:?}"),
        }
    }
    // Run again after a crash, say: the same keys, nothing delivered twice.
    client(&twilio)
        .broadcast_to_conference(conference.as_str(), &serde_json::json!({"poll": "open"}))
        .idempotency_key_prefix("poll-1")
        .await
        .unwrap();
    for (leg, is_client) in &expected {
        assert_eq!(twilio.client_received(leg).len(), usize::from(*is_client));
    }
}

#[tokio::test]
async fn a_conference_that_does_not_exist_fails_the_whole_broadcast_before_sending() {
    let twilio = Emulator::start().await.unwrap();
    let error = client(&twilio)
        .broadcast_to_conference("CF0123456789abcdef0123456789abcdef", &1)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(20404), "{error}");
    let error = client(&twilio)
        .broadcast_to_conference("not-a-sid", &1)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput(_)), "{error}");
    assert!(twilio.messages().is_empty());
}
