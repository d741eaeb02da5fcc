//! The axum extractor, served on 127.0.0.1 and called by a real HTTP client: accepted
//! requests reach the handler; bad or missing signatures (403), oversized bodies (413) and
//! malformed but correctly signed events (400) are refused before it runs.
#![cfg(feature = "axum")]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::post;
use serde_json::json;
use twilio_call_messages::reqwest;
use twilio_call_messages::webhook::axum::{VerifiedCallMessage, WebhookConfig};
use twilio_call_messages::{CallMessageEvent, SignatureValidator};

const TOKEN: &str = "test-auth-token";
const PATH: &str = "/twilio/messages";

type Seen = Arc<Mutex<Vec<CallMessageEvent>>>;

#[derive(Clone)]
struct AppState {
    webhook: Arc<WebhookConfig>,
    seen: Seen,
}

impl FromRef<AppState> for Arc<WebhookConfig> {
    fn from_ref(state: &AppState) -> Self {
        state.webhook.clone()
    }
}

impl FromRef<AppState> for Seen {
    fn from_ref(state: &AppState) -> Self {
        state.seen.clone()
    }
}

async fn on_message(
    State(seen): State<Seen>,
    VerifiedCallMessage(event): VerifiedCallMessage,
) -> &'static str {
    seen.lock().unwrap().push(event);
    "ok"
}

struct Server {
    /// `http://127.0.0.1:<port>`: what the client connects to.
    local: String,
    seen: Seen,
    http: reqwest::Client,
}

impl Server {
    /// Serves `PATH` (nested under `prefix`, if any) on an ephemeral loopback port.
    async fn start(config: impl FnOnce(String) -> WebhookConfig, prefix: Option<&str>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = format!("http://{}", listener.local_addr().unwrap());
        let seen = Seen::default();
        let state = AppState {
            webhook: Arc::new(config(local.clone())),
            seen: seen.clone(),
        };
        let routes = Router::new().route(PATH, post(on_message).get(on_message));
        let app = match prefix {
            Some(prefix) => Router::new().nest(prefix, routes),
            None => routes,
        }
        .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        // With the default `rustls-ring` feature reqwest needs a process-wide provider.
        #[cfg(feature = "rustls-ring")]
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No proxy: every request of this test stays on the loopback interface.
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Server { local, seen, http }
    }

    async fn plain() -> Server {
        Self::start(|_| WebhookConfig::new(SignatureValidator::new(TOKEN)), None).await
    }

    fn handled(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Posts `body` to `local_url` with the given headers; returns the status and body text.
    async fn post(
        &self,
        local_url: &str,
        content_type: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> (u16, String) {
        let mut request = self
            .http
            .post(local_url)
            .header("content-type", content_type)
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

fn event_json() -> serde_json::Value {
    json!({
        "ContentType": "application/json",
        "Content": "{\"answer\":42}",
        "SequenceNumber": 7,
        "CallSid": "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "Timestamp": "Wed, 18 Dec 2019 20:02:01 +0000",
        "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Sid": "KXcccccccccccccccccccccccccccccccc",
        "Unknown": "ignored",
    })
}

fn event_form() -> Vec<(String, String)> {
    event_json()
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect()
}

fn signer() -> SignatureValidator {
    SignatureValidator::new(TOKEN)
}

#[tokio::test]
async fn accepts_a_signed_json_event() {
    let server = Server::plain().await;
    let body = serde_json::to_vec(&event_json()).unwrap();
    let (url, signature) = signer().sign_json(&format!("{}{PATH}?tenant=1", server.local), &body);
    let (status, text) = server
        .post(&url, "application/json", body, Some(&signature))
        .await;
    assert_eq!((status, text.as_str()), (200, "ok"));
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sequence_number, 7);
    assert_eq!(
        seen[0].content_as::<serde_json::Value>().unwrap(),
        json!({"answer": 42})
    );
}

#[tokio::test]
async fn accepts_a_signed_form_event() {
    let server = Server::plain().await;
    let url = format!("{}{PATH}", server.local);
    let params = event_form();
    let signature = signer().sign_form(&url, &params);
    let body = serde_urlencoded::to_string(&params).unwrap().into_bytes();
    let (status, _) = server
        .post(
            &url,
            "application/x-www-form-urlencoded",
            body,
            Some(&signature),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(server.handled(), 1);
}

#[tokio::test]
async fn accepts_a_signed_get_event() {
    let server = Server::plain().await;
    let query = serde_urlencoded::to_string(event_form()).unwrap();
    let url = format!("{}{PATH}?{query}", server.local);
    let signature = signer().sign_form::<&str, &str>(&url, &[]);
    let response = server
        .http
        .get(&url)
        .header("X-Twilio-Signature", signature)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(server.handled(), 1);
}

#[tokio::test]
async fn rejects_missing_and_bad_signatures_with_403() {
    let server = Server::plain().await;
    let body = serde_json::to_vec(&event_json()).unwrap();
    let (url, signature) = signer().sign_json(&format!("{}{PATH}", server.local), &body);

    let (status, text) = server
        .post(&url, "application/json", body.clone(), None)
        .await;
    assert_eq!(
        (status, text.as_str()),
        (403, "missing X-Twilio-Signature header")
    );

    for bad in [
        "",
        "garbage",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        &signature[1..],
    ] {
        let (status, _) = server
            .post(&url, "application/json", body.clone(), Some(bad))
            .await;
        assert_eq!(status, 403, "{bad:?}");
    }

    // Signed with another token.
    let (_, forged) = SignatureValidator::new("not-the-token")
        .sign_json(&format!("{}{PATH}", server.local), &body);
    let (status, text) = server
        .post(&url, "application/json", body.clone(), Some(&forged))
        .await;
    assert_eq!((status, text.as_str()), (403, "invalid X-Twilio-Signature"));

    // A different body under a valid URL and signature.
    let mut tampered = event_json();
    tampered["SequenceNumber"] = json!(8);
    let tampered = serde_json::to_vec(&tampered).unwrap();
    let (status, _) = server
        .post(&url, "application/json", tampered, Some(&signature))
        .await;
    assert_eq!(status, 403);

    // A changed query string.
    let (status, _) = server
        .post(
            &format!("{url}&x=1"),
            "application/json",
            body.clone(),
            Some(&signature),
        )
        .await;
    assert_eq!(status, 403);

    // JSON signed over the URL alone, without bodySHA256: the body is not covered.
    let plain_url = format!("{}{PATH}", server.local);
    let url_only = signer().sign_form::<&str, &str>(&plain_url, &[]);
    let (status, _) = server
        .post(
            &plain_url,
            "application/json",
            body.clone(),
            Some(&url_only),
        )
        .await;
    assert_eq!(status, 403);

    // A form body with one changed field.
    let params = event_form();
    let signature = signer().sign_form(&plain_url, &params);
    let mut changed = params.clone();
    changed[0].1.push('x');
    let form = serde_urlencoded::to_string(&changed).unwrap().into_bytes();
    let (status, _) = server
        .post(
            &plain_url,
            "application/x-www-form-urlencoded",
            form,
            Some(&signature),
        )
        .await;
    assert_eq!(status, 403);

    assert_eq!(server.handled(), 0, "the handler must not run");
}

#[tokio::test]
async fn rejects_a_signed_but_malformed_event_with_400() {
    let server = Server::plain().await;
    let mut event = event_json();
    event.as_object_mut().unwrap().remove("CallSid");
    let body = serde_json::to_vec(&event).unwrap();
    let (url, signature) = signer().sign_json(&format!("{}{PATH}", server.local), &body);
    let (status, text) = server
        .post(&url, "application/json", body, Some(&signature))
        .await;
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            "malformed call message event: field `CallSid` is missing"
        )
    );

    let body = b"[1, 2, 3]".to_vec();
    let (url, signature) = signer().sign_json(&format!("{}{PATH}", server.local), &body);
    let (status, _) = server
        .post(&url, "application/json", body, Some(&signature))
        .await;
    assert_eq!(status, 400);

    let url = format!("{}{PATH}", server.local);
    let params = [("SequenceNumber", "minus one")];
    let signature = signer().sign_form(&url, &params);
    let body = serde_urlencoded::to_string(params).unwrap().into_bytes();
    let (status, _) = server
        .post(
            &url,
            "application/x-www-form-urlencoded",
            body,
            Some(&signature),
        )
        .await;
    assert_eq!(status, 400);

    assert_eq!(server.handled(), 0, "the handler must not run");
}

#[tokio::test]
async fn rejects_oversized_bodies_with_413() {
    let server = Server::start(
        |_| WebhookConfig::new(SignatureValidator::new(TOKEN)).body_limit(1024),
        None,
    )
    .await;
    let body = vec![b' '; 4096];
    let (url, signature) = signer().sign_json(&format!("{}{PATH}", server.local), &body);
    let (status, _) = server
        .post(&url, "application/json", body, Some(&signature))
        .await;
    assert_eq!(status, 413);
    assert_eq!(server.handled(), 0);
}

#[tokio::test]
async fn public_base_url_and_nesting_rebuild_the_signed_url() {
    // Behind a proxy: Twilio calls https://hooks.example.com/api/twilio/messages, the proxy
    // forwards to this server, whose router nests the route under /api.
    let server = Server::start(
        |_| {
            WebhookConfig::new(SignatureValidator::new("old-token").with_token(TOKEN))
                .public_base_url("https://hooks.example.com/")
        },
        Some("/api"),
    )
    .await;
    let body = serde_json::to_vec(&event_json()).unwrap();
    let public = format!("https://hooks.example.com/api{PATH}?a=b");
    let (public_signed, signature) = signer().sign_json(&public, &body);
    let query = public_signed.split_once('?').unwrap().1;
    let local = format!("{}/api{PATH}?{query}", server.local);
    let (status, _) = server
        .post(&local, "application/json", body.clone(), Some(&signature))
        .await;
    assert_eq!(status, 200);

    // Twilio may sign with the default port spelled out.
    let with_port = public_signed.replace("example.com", "example.com:443");
    let port_signature = signer().sign_form::<&str, &str>(&with_port, &[]);
    let (status, _) = server
        .post(
            &local,
            "application/json",
            body.clone(),
            Some(&port_signature),
        )
        .await;
    assert_eq!(status, 200);

    // A signature for the local URL is not one for the public URL.
    let (local_signed, local_signature) =
        signer().sign_json(&format!("{}/api{PATH}?a=b", server.local), &body);
    let (status, _) = server
        .post(
            &local_signed,
            "application/json",
            body,
            Some(&local_signature),
        )
        .await;
    assert_eq!(status, 403);

    assert_eq!(server.handled(), 2);
}

#[test]
fn config_debug_redacts_tokens() {
    let config =
        WebhookConfig::new(SignatureValidator::new("top-secret-1").with_token("top-secret-2"))
            .public_base_url("https://hooks.example.com");
    let debug = format!("{config:?}");
    assert!(!debug.contains("top-secret"), "{debug}");
    assert!(debug.contains("hooks.example.com"), "{debug}");
}
