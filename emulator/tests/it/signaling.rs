//! The Voice SDK's signaling at `wss://…/signal`, from a second WebSocket implementation
//! (tokio-tungstenite over rustls, trusting the emulator's certificate): tokens checked at
//! `listen`, registration, calls placed and rung, accepted, rejected, cancelled and hung up,
//! messages both ways with the leg they were addressed to, and the client's refusals.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use twilio_call_messages::{CallSid, Client, SignatureValidator};
use twilio_call_messages_emulator::{CallStatus, ClientLeg, Emulator};

use crate::common::{Receiver, verified};

const WAIT: Duration = Duration::from_secs(10);

/// A signaling connection as the SDK opens it.
struct Signal(WebSocketStream<TlsStream<TcpStream>>);

impl Signal {
    async fn open(twilio: &Emulator) -> Signal {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(twilio.certificate_pem().as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(twilio.addr()).await.unwrap();
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .expect("the emulator's certificate is valid for 127.0.0.1");
        let (ws, _) = tokio_tungstenite::client_async(twilio.signal_url(), tls)
            .await
            .expect("the WebSocket handshake at /signal");
        Signal(ws)
    }

    /// Sends a frame as `lib/twilio/pstream.ts` writes it.
    async fn send(&mut self, kind: &str, payload: Value) {
        self.send_raw(kind, &payload.to_string()).await;
    }

    /// With the payload's JSON text as given (key order kept).
    async fn send_raw(&mut self, kind: &str, payload: &str) {
        let text = format!(r#"{{"payload":{payload},"type":"{kind}","version":"1.6"}}"#);
        self.0.send(Message::text(text)).await.unwrap();
    }

    /// The next frame (heartbeats are echoed, as the SDK does, and skipped).
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a frame in time")
                .expect("the connection is open")
                .unwrap();
            match message {
                Message::Text(text) if text.as_str() == "\n" => {
                    self.0.send(Message::text("\n")).await.unwrap();
                }
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                _ => {}
            }
        }
    }

    async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "{frame}");
        assert_eq!(frame["version"], "1.6");
        frame["payload"].clone()
    }

    /// `listen` with a good token, `connected`, `register`, `ready`.
    async fn registered(twilio: &Emulator, identity: &str) -> Signal {
        let mut signal = Signal::open(twilio).await;
        signal
            .send("listen", json!({"token": twilio.access_token(identity), "browserinfo": {}, "reconnectTimeout": 0}))
            .await;
        let connected = signal.expect("connected").await;
        assert_eq!(connected["token"]["identity"], identity);
        let ttl = connected["token"]["ttl"].as_u64().unwrap();
        assert!((3590..=3600).contains(&ttl), "{ttl}");
        signal
            .send("register", json!({"media": {"audio": true}}))
            .await;
        signal.expect("ready").await;
        signal
    }
}

/// Waits until the emulator shows what a frame did (frames without a reply).
async fn until(done: impl Fn() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("in time");
}

fn sdk(twilio: &Emulator) -> Client {
    Client::builder()
        .account_sid(twilio.account_sid().as_str())
        .auth_token(twilio.auth_token())
        .base_url(twilio.base_url())
        .build()
        .unwrap()
}

#[tokio::test]
async fn tokens_are_checked_at_listen_with_twilios_codes() {
    let twilio = Emulator::start().await.unwrap();
    let mut signal = Signal::open(&twilio).await;

    // Anything before a valid listen is refused.
    signal
        .send("register", json!({"media": {"audio": true}}))
        .await;
    assert_eq!(signal.expect("error").await["error"]["code"], 31204);

    // A token signed with another secret, then an expired one.
    let other = Emulator::start().await.unwrap();
    signal
        .send("listen", json!({"token": other.access_token("alice")}))
        .await;
    assert_eq!(signal.expect("error").await["error"]["code"], 31204);
    let expired = twilio.access_token_for("alice", Duration::ZERO);
    signal.send("listen", json!({"token": expired})).await;
    let refused = signal.expect("error").await;
    assert_eq!(refused["error"]["code"], 31205, "{refused}");
    assert!(twilio.voice_clients().is_empty());

    // The same connection then listens with a good one (`Device.updateToken`).
    signal
        .send("listen", json!({"token": twilio.access_token("alice")}))
        .await;
    assert_eq!(
        signal.expect("connected").await["token"]["identity"],
        "alice"
    );
    let clients = twilio.voice_clients();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].identity, "alice");
    assert!(!clients[0].registered);
    assert_eq!(
        twilio.check_access_token(&twilio.access_token("bob")),
        Ok("bob".to_owned())
    );

    // Unregistering is answered `offline` (`Device.unregister()` waits for it).
    signal
        .send("register", json!({"media": {"audio": true}}))
        .await;
    signal.expect("ready").await;
    assert!(twilio.voice_clients()[0].registered);
    signal
        .send("register", json!({"media": {"audio": false}}))
        .await;
    signal.expect("offline").await;
}

#[tokio::test]
async fn a_placed_call_is_the_parent_leg_and_messages_go_both_ways() {
    let twilio = Emulator::start().await.unwrap();
    let receiver = Receiver::start().await;
    let mut signal = Signal::registered(&twilio, "alice").await;

    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\n";
    signal
        .send(
            "invite",
            json!({"callsid": "TJSaaaa", "sdp": offer, "twilio": {"params": "To=bob"}}),
        )
        .await;
    let ringing = signal.expect("ringing").await;
    let answer = signal.expect("answer").await;
    assert_eq!(ringing["callsid"], answer["callsid"]);
    assert!(answer["sdp"].as_str().unwrap().contains("a=mid:0\r\n"));
    let parent: CallSid = answer["callsid"].as_str().unwrap().parse().unwrap();
    let call = twilio.call(&parent).unwrap();
    assert_eq!(
        call.client_call_sid, parent,
        "the client placed it: the parent leg"
    );
    assert!(call.parent_call_sid.is_none());
    assert_eq!(call.status, CallStatus::InProgress);
    assert_eq!(call.client_leg, Some(ClientLeg::Outgoing));
    assert_eq!(call.client_identity.as_deref(), Some("alice"));
    let child = twilio
        .calls()
        .into_iter()
        .find(|c| c.parent_call_sid == Some(parent))
        .unwrap()
        .sid;

    // The service's message reaches the client as `message`, addressed to the leg it chose.
    let service = sdk(&twilio);
    let sent = service
        .send_message(parent, &json!({"hint": "offer the upgrade"}))
        .await
        .unwrap();
    let message = signal.expect("message").await;
    assert_eq!(message["callsid"], parent.as_str());
    assert_eq!(message["content"], json!({"hint": "offer the upgrade"}));
    assert_eq!(message["contenttype"], "application/json");
    assert_eq!(message["messagetype"], "user-defined-message");
    assert_eq!(message["voiceeventsid"], sent.sid.as_str());
    // To the other leg: the frame names that leg (the SDK drops it); the emulator says so.
    service
        .send_message(child, &json!({"hint": "wrong leg"}))
        .await
        .unwrap();
    assert_eq!(signal.expect("message").await["callsid"], child.as_str());
    assert_eq!(twilio.dropped_messages(&child).len(), 1);

    // The client's message: `ack`, then the signed callback with the SDK's name as `Sid`.
    service
        .subscribe(parent, &receiver.url("/messages"))
        .await
        .unwrap();
    let voice_event_sid = "KX0123456789abcdef0123456789abcdef";
    signal
        .send_raw(
            "message",
            &format!(
                r#"{{"callsid":"{parent}","content":{{"b":1,"a":[true]}},"contenttype":"application/json","messagetype":"user-defined-message","voiceeventsid":"{voice_event_sid}"}}"#
            ),
        )
        .await;
    let ack = signal.expect("ack").await;
    assert_eq!(
        ack,
        json!({"acktype": "message", "callsid": parent, "voiceeventsid": voice_event_sid})
    );
    twilio.settled().await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let event = verified(
        &SignatureValidator::new(twilio.auth_token()),
        &receiver,
        &got[0],
    );
    assert_eq!(event.message_sid.as_str(), voice_event_sid);
    assert_eq!(event.call_sid, parent);
    assert_eq!(event.content, r#"{"b":1,"a":[true]}"#);
    assert_eq!(event.sequence_number, 1);

    // Refused as Twilio refuses: another type (31210), over 10 KB (31212); never posted.
    let big = "x".repeat(10_001);
    for (content, kind, code) in [
        (json!({"a": 1}), "not-a-valid-message-type", 31210),
        (json!(big), "user-defined-message", 31212),
    ] {
        signal
            .send(
                "message",
                json!({"callsid": parent, "content": content, "contenttype": "application/json",
                       "messagetype": kind, "voiceeventsid": "KXffffffffffffffffffffffffffffffff"}),
            )
            .await;
        let error = signal.expect("error").await;
        assert_eq!(error["error"]["code"], code, "{error}");
        assert_eq!(error["callsid"], parent.as_str());
        assert_eq!(error["voiceeventsid"], "KXffffffffffffffffffffffffffffffff");
    }
    // Nor into a call that is not the client's own (the other leg).
    signal
        .send(
            "message",
            json!({"callsid": child, "content": {}, "messagetype": "user-defined-message"}),
        )
        .await;
    signal.expect("error").await;
    assert_eq!(twilio.client_messages(&parent).len(), 1);

    // The call ends elsewhere: the client hears `hangup`.
    twilio
        .set_call_status(&parent, CallStatus::Completed)
        .unwrap();
    assert_eq!(signal.expect("hangup").await["callsid"], parent.as_str());
    assert_eq!(twilio.call(&child).unwrap().status, CallStatus::Completed);
}

#[tokio::test]
async fn a_rung_call_is_the_child_leg_accepted_rejected_or_cancelled() {
    let twilio = Emulator::start().await.unwrap();
    assert!(twilio.ring_client("bob").is_err(), "nobody registered yet");
    let mut signal = Signal::registered(&twilio, "bob").await;

    // Accepted: both legs in progress, the client on the child.
    let call = twilio.ring_client("bob").unwrap();
    assert_eq!(call.client, call.child);
    assert_eq!(
        twilio.call(&call.child).unwrap().status,
        CallStatus::Ringing
    );
    let invite = signal.expect("invite").await;
    assert_eq!(invite["callsid"], call.child.as_str());
    assert_eq!(invite["parameters"]["CallSid"], call.child.as_str());
    assert_eq!(invite["parameters"]["To"], "client:bob");
    assert!(invite["sdp"].as_str().unwrap().contains("a=setup:actpass"));
    signal
        .send("answer", json!({"callsid": call.child, "sdp": "v=0\r\n"}))
        .await;
    let service = sdk(&twilio);
    // `answer` has no reply: the next frame is the service's message, which proves the order.
    service
        .send_message(call.child, &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(
        signal.expect("message").await["callsid"],
        call.child.as_str()
    );
    assert_eq!(
        twilio.call(&call.parent).unwrap().status,
        CallStatus::InProgress
    );
    assert_eq!(twilio.client_received(&call.child).len(), 1);
    signal.send("hangup", json!({"callsid": call.child})).await;
    until(|| twilio.call(&call.child).unwrap().status == CallStatus::Completed).await;

    // Rejected: busy.
    let rejected = twilio.ring_client("bob").unwrap();
    signal.expect("invite").await;
    signal
        .send("reject", json!({"callsid": rejected.child}))
        .await;
    until(|| twilio.call(&rejected.parent).unwrap().status == CallStatus::Busy).await;
    // Cancelled while ringing: the client hears `cancel`.
    let cancelled = twilio.ring_client("bob").unwrap();
    signal.expect("invite").await;
    twilio
        .set_call_status(&cancelled.parent, CallStatus::Canceled)
        .unwrap();
    assert_eq!(
        signal.expect("cancel").await["callsid"],
        cancelled.child.as_str()
    );

    // The control API rings too, and mints tokens.
    let http = crate::common::http();
    let rung: Value = http
        .post(format!("{}/emulator/voice-clients/ring", twilio.base_url()))
        .json(&json!({"identity": "bob", "from": "+15551230000"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let invite = signal.expect("invite").await;
    assert_eq!(invite["callsid"], rung["child"]);
    assert_eq!(invite["parameters"]["From"], "+15551230000");
    let minted: Value = http
        .post(format!("{}/emulator/access-tokens", twilio.base_url()))
        .json(&json!({"identity": "carol"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        twilio.check_access_token(minted["token"].as_str().unwrap()),
        Ok("carol".to_owned())
    );
    assert_eq!(minted["signal_url"], twilio.signal_url());

    // The connection closes: its calls end.
    drop(signal);
    until(|| twilio.voice_clients().is_empty()).await;
    let child: CallSid = rung["child"].as_str().unwrap().parse().unwrap();
    assert_eq!(twilio.call(&child).unwrap().status, CallStatus::Completed);
}

/// The TLS port is only the signaling endpoint; the same port still speaks plain HTTP.
#[tokio::test]
async fn tls_and_plain_http_share_the_port() {
    let twilio = Emulator::start().await.unwrap();
    let info: Value = crate::common::http()
        .get(format!("{}/emulator/", twilio.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["signal_url"], twilio.signal_url());
    assert_eq!(
        info["certificate_spki_sha256"],
        twilio.certificate_spki_sha256()
    );
    let mut signal = Signal::open(&twilio).await;
    signal.send("listen", json!({"token": "not-a-jwt"})).await;
    assert_eq!(signal.expect("error").await["error"]["code"], 31204);
}
