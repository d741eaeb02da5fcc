//! The Voice SDK's signaling at `wss://HOST:PORT/signal`: the frames twilio-voice.js speaks
//! (`lib/twilio/pstream.ts`: `{"type", "version", "payload"}` as JSON text; a bare newline
//! as a heartbeat, `lib/twilio/wstransport.ts`), turned into operations of the model and back.
//! A thin caller: which call is whose, what a message becomes and who hears what live in the
//! model; this module keeps only what one connection needs to speak (the temporary `TJS…` id
//! of a call it placed).
//!
//! Client to server: `listen` (the token), `register`, `invite`, `answer`, `hangup`, `reject`,
//! `message`; `reinvite` and `dtmf` are read and ignored (no media). Server to client:
//! `connected`, `ready`, `offline`, `invite`, `ringing`, `answer`, `cancel`, `hangup`,
//! `message`, `ack`, `error`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use twilio_call_messages::{CallSid, MessageSid};

use crate::Inner;
use crate::model::{EmulatorError, SendAs, ToClient};
use crate::websocket::{self, Message};
use crate::{callbacks, http, sdp, token};

/// The protocol version the SDK writes in every frame (`lib/twilio/pstream.ts`,
/// `PSTREAM_VERSION`); the emulator answers with the same.
const VERSION: &str = "1.6";

/// How often the emulator sends its heartbeat. ASSUMPTION: the SDK reconnects after 15 s
/// without any frame (`lib/twilio/wstransport.ts`, `HEARTBEAT_TIMEOUT`) and echoes a
/// heartbeat; Twilio's own interval is not published, so well inside those 15 s.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The code of a refusal that has none of the SDK's own. ASSUMPTION: 31000, the SDK's
/// `GeneralErrors.UnknownError` (`lib/twilio/errors/generated.ts`).
const UNKNOWN_ERROR: u32 = 31000;

/// Frames before a valid `listen` are refused with 31204 (the SDK's 2.18.5 CHANGELOG: a
/// `register` replayed before the server validated the token "earns a 31204").
const NOT_LISTENING: u32 = 31204;

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Listen {
    token: String,
}

#[derive(Deserialize)]
struct Register {
    #[serde(default)]
    media: Media,
}

#[derive(Default, Deserialize)]
struct Media {
    #[serde(default)]
    audio: bool,
}

#[derive(Deserialize)]
struct Invite {
    callsid: String,
    sdp: String,
    /// `{params: "To=…&…"}`: the `Device.connect({params})`, form-encoded
    /// (twilio-voice.js `lib/twilio/call.ts`, the `invite` it sends).
    #[serde(default)]
    twilio: Option<InviteTwilio>,
}

#[derive(Default, Deserialize)]
struct InviteTwilio {
    #[serde(default)]
    params: Option<String>,
}

impl Invite {
    /// The `To` parameter of the call, if the client gave one.
    fn to(&self) -> Option<String> {
        let params = self.twilio.as_ref()?.params.as_deref()?;
        serde_urlencoded::from_str::<Vec<(String, String)>>(params)
            .ok()?
            .into_iter()
            .find(|(name, _)| name == "To")
            .map(|(_, value)| value)
    }
}

#[derive(Deserialize)]
struct OfCall {
    callsid: String,
}

#[derive(Deserialize)]
struct ClientMessage<'a> {
    callsid: String,
    #[serde(borrow)]
    content: &'a RawValue,
    messagetype: Option<String>,
    voiceeventsid: Option<String>,
}

/// Serves one TLS connection: the HTTP upgrade to WebSocket at `/signal`, then the frames.
pub(crate) async fn serve(inner: Arc<Inner>, stream: TcpStream) {
    let Ok(mut tls) = inner.certificate.acceptor.accept(stream).await else {
        return;
    };
    let mut buf = Vec::new();
    let request = match http::read_request(&mut tls, &mut buf).await {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(response) => {
            let _ = tls.write_all(&response.to_bytes(true)).await;
            return;
        }
    };
    let upgrade = request
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = request.header("sec-websocket-key");
    let (true, "GET", "/signal", Some(key)) =
        (upgrade, request.method.as_str(), request.path(), key)
    else {
        let refused = http::Response::new(
            404,
            "text/plain",
            "this TLS port serves only the Voice SDK's signaling: a WebSocket at /signal\n",
        );
        let _ = tls.write_all(&refused.to_bytes(true)).await;
        return;
    };
    // A 101 carries no Content-Length (RFC 9110, section 8.6), so not through `Response`.
    let accepted = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        websocket::accept_key(key)
    );
    if tls.write_all(accepted.as_bytes()).await.is_err() {
        return;
    }
    let (read, write) = tokio::io::split(tls);
    let mut session = Session {
        inner,
        out: write,
        client: None,
        placed: HashMap::new(),
    };
    // Reading runs in its own task so that a frame half-read is never lost to `select!`.
    let (frames_tx, mut frames) = mpsc::channel(16);
    let reader = tokio::spawn(async move {
        let mut reader = websocket::Reader::new(read);
        loop {
            let message = reader.next().await;
            let end = message == Message::Close;
            if frames_tx.send(message).await.is_err() || end {
                return;
            }
        }
    });
    let (to_client, mut events) = mpsc::unbounded_channel();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        let alive = tokio::select! {
            frame = frames.recv() => match frame {
                Some(Message::Text(text)) => session.frame(&text, &to_client).await,
                Some(Message::Ping(payload)) => session.write(&websocket::pong(&payload)).await,
                Some(Message::Binary(_) | Message::Pong) => true,
                Some(Message::Close) | None => {
                    let _ = session.out.write_all(&websocket::close(1000)).await;
                    false
                }
            },
            Some(event) = events.recv() => session.event(event).await,
            _ = heartbeat.tick() => session.write(&websocket::text("\n")).await,
        };
        if !alive {
            break;
        }
    }
    reader.abort();
    if let Some(id) = session.client {
        session.inner.model.disconnect_client(id);
    }
}

/// One signaling connection.
struct Session<W> {
    inner: Arc<Inner>,
    out: W,
    /// The model's number for this client, once its token was accepted.
    client: Option<u64>,
    /// Calls it placed: the SDK's temporary `TJS…` id to the call's SID (it may hang up a call
    /// by either).
    placed: HashMap<String, CallSid>,
}

fn frame(kind: &str, payload: Value) -> String {
    json!({"type": kind, "version": VERSION, "payload": payload}).to_string()
}

fn error_payload(code: u32, message: &str) -> Value {
    json!({"code": code, "message": message})
}

impl<W: AsyncWrite + Unpin> Session<W> {
    /// Sends bytes; `false` once the connection is gone.
    async fn write(&mut self, bytes: &[u8]) -> bool {
        self.out.write_all(bytes).await.is_ok() && self.out.flush().await.is_ok()
    }

    async fn send(&mut self, kind: &str, payload: Value) -> bool {
        self.write(&websocket::text(&frame(kind, payload))).await
    }

    /// One frame from the client; `false` when the connection should end.
    async fn frame(&mut self, text: &str, to_client: &mpsc::UnboundedSender<ToClient>) -> bool {
        // The SDK echoes the emulator's heartbeat (`lib/twilio/wstransport.ts`).
        if text == "\n" {
            return true;
        }
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            return self
                .send(
                    "error",
                    json!({"error": error_payload(UNKNOWN_ERROR, "not a signaling frame")}),
                )
                .await;
        };
        let payload = frame.payload.map_or("{}", RawValue::get);
        if frame.kind == "listen" {
            return self.listen(payload, to_client).await;
        }
        let Some(client) = self.client else {
            let message = format!("{:?} before a valid listen (access token)", frame.kind);
            return self
                .send(
                    "error",
                    json!({"error": error_payload(NOT_LISTENING, &message)}),
                )
                .await;
        };
        let inner = self.inner.clone();
        let model = &inner.model;
        match frame.kind.as_str() {
            "register" => {
                let on = serde_json::from_str::<Register>(payload).is_ok_and(|r| r.media.audio);
                model.register_client(client, on);
                // `Device.register()` waits for `ready`, `unregister()` for `offline`
                // (`lib/twilio/device.ts`).
                self.send(if on { "ready" } else { "offline" }, json!({}))
                    .await
            }
            "invite" => match serde_json::from_str::<Invite>(payload) {
                Ok(invite) => self.place(client, invite).await,
                Err(e) => self.refuse(None, None, UNKNOWN_ERROR, &e.to_string()).await,
            },
            "answer" => {
                let Ok(of) = serde_json::from_str::<OfCall>(payload) else {
                    return true;
                };
                match model.client_accepts(client, &of.callsid) {
                    Ok(_) => true,
                    Err(e) => {
                        self.refuse(Some(&of.callsid), None, UNKNOWN_ERROR, &e.to_string())
                            .await
                    }
                }
            }
            "hangup" | "reject" => {
                let Ok(of) = serde_json::from_str::<OfCall>(payload) else {
                    return true;
                };
                let sid = self
                    .placed
                    .get(&of.callsid)
                    .map_or(of.callsid.clone(), |sid| sid.to_string());
                // A call that ended already ends quietly (the SDK hangs up what it hears hung up).
                let _ = model.client_ends(client, &sid, frame.kind == "reject");
                true
            }
            "message" => self.message(client, payload).await,
            // No media: DTMF and ICE restarts have nothing to act on.
            _ => true,
        }
    }

    async fn listen(&mut self, payload: &str, to_client: &mpsc::UnboundedSender<ToClient>) -> bool {
        let settings = &self.inner.model.settings;
        let now = token::now_secs();
        let checked = serde_json::from_str::<Listen>(payload)
            .map_err(|e| token::TokenError::Malformed(e.to_string()))
            .and_then(|l| {
                token::check(
                    &l.token,
                    settings.account_sid.as_str(),
                    &settings.api_keys,
                    now,
                )
            });
        match checked {
            Err(refused) => {
                // Read by `Device._onSignalingError` (`lib/twilio/device.ts`): 31204, 31205 or
                // 31201 become the Device's `error`. The connection stays open: a
                // `Device.updateToken(..)` sends `listen` again.
                self.send(
                    "error",
                    json!({"error": error_payload(refused.code(), &refused.to_string())}),
                )
                .await
            }
            Ok(grant) => {
                if self.client.is_none() {
                    self.client = Some(self.inner.model.connect_client(
                        &grant.identity,
                        grant.incoming_allow,
                        to_client.clone(),
                    ));
                }
                // `Device._onSignalingConnected` takes the identity and the lifetime (for
                // `tokenWillExpire`) from here. ASSUMPTION: region and edge are the
                // emulator's own names; the SDK keeps them as given.
                self.send(
                    "connected",
                    json!({
                        "region": "emulator",
                        "edge": "emulator",
                        "token": {"identity": grant.identity, "ttl": grant.expires_at.saturating_sub(now)},
                    }),
                )
                .await
            }
        }
    }

    /// The client places a call: `ringing`, then `answer` with the call's SID and an SDP
    /// answer (the SDK's Call takes its `CallSid` from either, `lib/twilio/call.ts`
    /// `_setCallSid`).
    async fn place(&mut self, client: u64, invite: Invite) -> bool {
        let call = match self.inner.model.place_call(client, invite.to().as_deref()) {
            Ok(call) => call,
            Err(e) => {
                return self
                    .refuse(Some(&invite.callsid), None, UNKNOWN_ERROR, &e.to_string())
                    .await;
            }
        };
        self.placed.insert(invite.callsid, call.parent);
        let answer = sdp::answer(&invite.sdp, &self.inner.certificate.fingerprint);
        self.send("ringing", json!({"callsid": call.parent})).await
            && self
                .send("answer", json!({"callsid": call.parent, "sdp": answer}))
                .await
    }

    /// The client's `call.sendMessage(..)`: `ack` once Twilio took it (the SDK's
    /// `messageSent`), or an `error` with the message's `voiceeventsid` (the call's `error`).
    async fn message(&mut self, client: u64, payload: &str) -> bool {
        let message = match serde_json::from_str::<ClientMessage>(payload) {
            Ok(m) => m,
            Err(e) => return self.refuse(None, None, UNKNOWN_ERROR, &e.to_string()).await,
        };
        let voice_event_sid = message.voiceeventsid.clone();
        let named: Option<MessageSid> = voice_event_sid.as_deref().and_then(|s| s.parse().ok());
        let sent = message
            .callsid
            .parse::<CallSid>()
            .map_err(|_| EmulatorError::NotClientsCall(message.callsid.clone()))
            .and_then(|sid| {
                callbacks::client_send(
                    &self.inner,
                    &sid,
                    // The content as the SDK serialized it: the callbacks' `Content`.
                    message.content.get(),
                    message.messagetype.as_deref().unwrap_or_default(),
                    SendAs {
                        client: Some(client),
                        voice_event_sid: named,
                    },
                )
            });
        match sent {
            Ok(_) => {
                self.send(
                    "ack",
                    json!({"acktype": "message", "callsid": message.callsid, "voiceeventsid": voice_event_sid}),
                )
                .await
            }
            Err(e) => {
                let code = e.code().unwrap_or(UNKNOWN_ERROR);
                self.refuse(
                    Some(&message.callsid),
                    voice_event_sid.as_deref(),
                    code,
                    &e.to_string(),
                )
                .await
            }
        }
    }

    async fn refuse(
        &mut self,
        callsid: Option<&str>,
        voice_event_sid: Option<&str>,
        code: u32,
        why: &str,
    ) -> bool {
        let mut payload = json!({"error": error_payload(code, why)});
        if let Some(sid) = callsid {
            payload["callsid"] = json!(sid);
        }
        if let Some(sid) = voice_event_sid {
            payload["voiceeventsid"] = json!(sid);
        }
        self.send("error", payload).await
    }

    /// Something the model tells this client.
    async fn event(&mut self, event: ToClient) -> bool {
        match event {
            ToClient::Incoming { call, from, to } => {
                let account = self.inner.model.settings.account_sid;
                let offer = sdp::offer(&self.inner.certificate.fingerprint);
                // `Device._onSignalingInvite` needs `callsid` and `sdp`, and reads the call's
                // parameters from `parameters` (`lib/twilio/device.ts`). ASSUMPTION: these
                // four names, as Twilio's Call resource and webhooks spell them.
                self.send(
                    "invite",
                    json!({
                        "callsid": call,
                        "sdp": offer,
                        "parameters": {"CallSid": call, "AccountSid": account, "From": from, "To": to},
                    }),
                )
                .await
            }
            ToClient::Message { call_sid, message } => {
                self.send(
                    "message",
                    json!({
                        "callsid": call_sid,
                        "content": message.content,
                        "contenttype": message.content_type,
                        "messagetype": message.message_type,
                        "voiceeventsid": message.voice_event_sid,
                    }),
                )
                .await
            }
            ToClient::Hangup { call_sid } => {
                self.send("hangup", json!({"callsid": call_sid})).await
            }
            ToClient::Cancel { call_sid } => {
                self.send("cancel", json!({"callsid": call_sid})).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_sdks_envelope() {
        let text = frame("ready", json!({}));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({"type": "ready", "version": "1.6", "payload": {}})
        );
    }
}
