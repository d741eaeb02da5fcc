//! Stoplight's Prism (`@stoplight/prism-cli` from npm, at [`PRISM`]) as a validating proxy in
//! front of the emulator, with Twilio's own description of the operations (the unedited
//! excerpts in `openapi/upstream/`, merged): every request the SDK makes for `client_legs`,
//! `.to_client()` and `broadcast_to_conference`, for every call shape, and every answer the
//! emulator gives to them, must pass; so must FetchConference and FetchParticipant, which the
//! SDK does not call. With `--errors` Prism answers a violation itself (422 for a request, 500
//! for a response, with a problem body) instead of passing it on, and logs it.
//!
//! Prism is installed at test time into a throwaway directory under the build's temporary
//! directory (never committed). Skipped, loudly, without npm or the registry, unless
//! `CI=true`, where that fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use twilio_call_messages::{CallSid, Client, ClientLeg, Error, LegError, RetryPolicy};
use twilio_call_messages_emulator::{Emulator, Endpoint};

use crate::browser::npm_package;
use crate::common::http;

/// Pinned. The last release whose `engines` accepts Node 18 and 20 (5.15 and later ask for
/// Node 24).
const PRISM: &str = "5.14.2";

const TEST: &str = "prism_accepts_the_sdks_requests_and_the_emulators_answers";

const CALLS_AND_CONFERENCES: &str = "twilio_api_v2010.calls_conferences.json";
const MESSAGES: &str = "twilio_api_v2010.user_defined_messages.json";

const LIST_CALL: &str = "/2010-04-01/Accounts/{AccountSid}/Calls.json";
const LIST_PARTICIPANT: &str =
    "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json";
/// The page fields of both lists.
const PAGE_FIELDS: [&str; 4] = [
    "uri",
    "first_page_uri",
    "next_page_uri",
    "previous_page_uri",
];

/// What Prism writes, in its log, for a request or an answer it found wrong: a problem type
/// of its own (`…/prism/errors#VIOLATIONS`, `#UNPROCESSABLE_ENTITY`, …) when it answered
/// instead, `Violation:` when it only warned (e.g. a status the description does not list).
const VIOLATION_MARKERS: [&str; 2] = ["stoplight.io/prism/errors#", "Violation"];

const STARTUP: Duration = Duration::from_secs(15);

/// The `prism` command of the pinned release, installed from npm on first use.
fn prism_cli() -> Option<PathBuf> {
    npm_package(
        TEST,
        "@stoplight/prism-cli",
        PRISM,
        "node_modules/.bin/prism",
    )
}

fn excerpt(name: &str) -> Value {
    // Committed (openapi/upstream/README.md): a missing file is a broken checkout, not a skip.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../openapi/upstream")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// Both excerpts as one description (Prism takes one document): their paths and schemas
/// united, the rest from the first (the two agree on it).
fn merged() -> Value {
    let (mut spec, messages) = (excerpt(CALLS_AND_CONFERENCES), excerpt(MESSAGES));
    for section in ["openapi", "info", "security"] {
        assert_eq!(spec[section], messages[section], "the excerpts' {section}");
    }
    let mut unite = |pointer: &str| {
        let from = messages.pointer(pointer).unwrap().as_object().unwrap();
        let into = spec.pointer_mut(pointer).unwrap().as_object_mut().unwrap();
        for (name, value) in from {
            let clash = into.insert(name.clone(), value.clone());
            assert!(clash.is_none(), "{pointer}/{name} is in both excerpts");
        }
    };
    unite("/paths");
    unite("/components/schemas");
    let securities = &spec["components"]["securitySchemes"];
    assert_eq!(securities, &messages["components"]["securitySchemes"]);
    json!({
        "openapi": spec["openapi"],
        "info": spec["info"],
        "security": spec["security"],
        "paths": spec["paths"],
        "components": {
            "securitySchemes": securities,
            "schemas": spec["components"]["schemas"],
        },
    })
}

/// The page fields of the two lists (`uri`, `first_page_uri`, `next_page_uri`,
/// `previous_page_uri`), upstream's own disagreement: declared `format: uri` (an absolute
/// URI), while every one of upstream's examples of them, and Twilio's answers, are paths
/// relative to the API host (`/2010-04-01/Accounts/AC…/Calls.json?PageSize=2&Page=0`).
/// Relaxed to `uri-reference`, which a relative path is; the strict description is checked
/// to flag exactly these fields and nothing else. (`To` and `From`, `format: phone-number`
/// while `client:name` is valid, need nothing: Prism ignores a format it does not know.)
fn relaxed(mut spec: Value) -> Value {
    for path in [LIST_CALL, LIST_PARTICIPANT] {
        let answer = format!(
            "/paths/{}/get/responses/200/content/application~1json",
            path.replace('/', "~1")
        );
        // Upstream's examples: relative, every one.
        let examples = spec.pointer(&format!("{answer}/examples")).unwrap();
        for (name, example) in examples.as_object().unwrap() {
            for field in ["uri", "first_page_uri"] {
                let value = example["value"][field].as_str().unwrap();
                assert!(value.starts_with("/2010-04-01/"), "{path} {name} {field}");
            }
        }
        let fields = spec
            .pointer_mut(&format!("{answer}/schema/properties"))
            .unwrap();
        for field in PAGE_FIELDS {
            let format = &mut fields[field]["format"];
            assert_eq!(format, "uri", "{path} {field}: upstream changed, revisit");
            *format = json!("uri-reference");
        }
    }
    spec
}

/// A directory of the run's own (the descriptions, Prism's logs), removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `prism proxy`, killed when dropped.
struct Prism {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prism {
    /// Starts Prism with `spec` in front of `upstream` on a free port of 127.0.0.1.
    fn start(cli: &Path, scratch: &Path, name: &str, spec: &Value, upstream: &str) -> Prism {
        let document = scratch.join(format!("{name}.json"));
        std::fs::write(&document, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = scratch.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(cli)
            .arg("proxy")
            .arg(&document)
            .arg(upstream)
            .args(["--errors", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stderr(out.try_clone().unwrap())
            .stdout(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (is Node installed?)", cli.display()));
        Prism {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn listening(&mut self) {
        let started = Instant::now();
        let addr = self.url.trim_start_matches("http://").to_owned();
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prism exited ({status}):\n{}", self.log());
            }
            assert!(
                started.elapsed() < STARTUP,
                "prism did not listen:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn violations(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| VIOLATION_MARKERS.iter().any(|m| l.contains(m)))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the log flags a request with `needle` in its path (Prism writes the line
    /// after answering, and after the line that it received the request).
    async fn flagged(&self, needle: &str) {
        let started = Instant::now();
        while !self.violations().iter().any(|l| l.contains(needle)) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "prism never flagged {needle:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn sdk(twilio: &Emulator, base_url: &str) -> Client {
    Client::builder()
        .account_sid(twilio.account_sid().as_str())
        .auth_token(twilio.auth_token())
        .base_url(base_url)
        // Prism's 500 for a violation is its verdict: one attempt, not a retry that hides it.
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

/// A raw GET through Prism, for what the SDK does not call.
async fn get(prism: &Prism, twilio: &Emulator, path: &str) -> (u16, Value) {
    let response = http()
        .get(format!("{}{path}", prism.url))
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The SDK's result, or a panic that says what Prism flagged.
fn passed<T>(prism: &Prism, what: &str, result: Result<T, Error>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}\nPrism's log:\n{}", prism.log()))
}

fn leg_error(prism: &Prism, what: &str, result: Result<impl std::fmt::Debug, Error>) -> LegError {
    match result {
        Err(Error::Leg(e)) => *e,
        other => panic!("{what}: {other:?}\nPrism's log:\n{}", prism.log()),
    }
}

struct Shapes<'a> {
    twilio: &'a Emulator,
    prism: &'a Prism,
    through: Client,
    direct: Client,
}

impl Shapes<'_> {
    /// `client_legs` through Prism is what it is without Prism.
    async fn legs(&self, what: &str, given: CallSid) -> Vec<ClientLeg> {
        let legs = passed(self.prism, what, self.through.client_legs(given).await);
        assert_eq!(
            legs,
            self.direct.client_legs(given).await.unwrap(),
            "{what}: the same without Prism"
        );
        legs
    }

    /// `.to_client()` from each SID given reaches the client on `expected`; so does the
    /// subscription.
    async fn reaches(&self, what: &str, given: &[CallSid], expected: CallSid, identity: &str) {
        for (n, sid) in given.iter().enumerate() {
            let legs = self.legs(what, *sid).await;
            assert_eq!(
                legs.iter()
                    .map(|l| (l.call_sid, l.identity.as_str()))
                    .collect::<Vec<_>>(),
                [(expected, identity)],
                "{what}"
            );
            let sent = self
                .through
                .send_message(*sid, &json!({"shape": what, "n": n}))
                .to_client()
                .await;
            let message = passed(self.prism, what, sent);
            assert_eq!(message.call_sid, expected, "{what}: given {sid}");
            assert_eq!(message.client_identity.as_deref(), Some(identity));
            let subscribed = self
                .through
                .subscribe(*sid, "https://hooks.example.com/x")
                .to_client()
                .await;
            let subscription = passed(self.prism, what, subscribed);
            assert_eq!(subscription.call_sid, expected, "{what}: given {sid}");
        }
        let received = self.twilio.client_received(&expected);
        assert_eq!(received.len(), given.len(), "{what}");
        assert_eq!(received[0].content, json!({"shape": what, "n": 0}));
        assert_eq!(self.twilio.subscriptions(&expected).len(), given.len());
    }

    /// No leg of the call has a client: nothing is sent, by the SDK's own decision (a
    /// `LegError`, not Prism's error status), having read `legs` legs.
    async fn reaches_nobody(&self, what: &str, given: CallSid, legs: usize) {
        assert!(self.legs(what, given).await.is_empty(), "{what}");
        let sent = self.through.send_message(given, &1).to_client().await;
        let LegError::NoClient { found, .. } = leg_error(self.prism, what, sent) else {
            panic!("{what}: not NoClient")
        };
        assert_eq!(found.len(), legs, "{what}: {found:?}");
        let subscribed = self
            .through
            .subscribe(given, "https://hooks.example.com/x")
            .to_client()
            .await;
        let error = leg_error(self.prism, what, subscribed);
        assert!(
            matches!(error, LegError::NoClient { .. }),
            "{what}: {error}"
        );
        assert!(self.twilio.client_received(&given).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prism_accepts_the_sdks_requests_and_the_emulators_answers() {
    let Some(cli) = prism_cli() else {
        return;
    };
    let scratch = Scratch(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prism-run-{}", std::process::id())),
    );
    std::fs::create_dir_all(&scratch.0).unwrap();
    let twilio = Emulator::builder().list_page_size(2).start().await.unwrap();
    let spec = merged();
    // Both at once: their start-up (Node reading the description) is most of the time.
    let mut prism = Prism::start(
        &cli,
        &scratch.0,
        "relaxed",
        &relaxed(spec.clone()),
        twilio.base_url(),
    );
    let mut strict = Prism::start(&cli, &scratch.0, "strict", &spec, twilio.base_url());
    prism.listening().await;
    strict.listening().await;

    let shapes = Shapes {
        twilio: &twilio,
        prism: &prism,
        through: sdk(&twilio, &prism.url),
        direct: sdk(&twilio, twilio.base_url()),
    };
    let phone = |n: &str| Endpoint::Phone(n.into());
    let person = |name: &str| Endpoint::Client(name.into());

    // The client placed the call: its leg is the parent; from either SID.
    let placed = twilio.dial(person("alice"), phone("+15005550006"));
    let child = placed.child.unwrap();
    shapes
        .reaches("placed", &[placed.parent, child], placed.parent, "alice")
        .await;
    // The client accepted an incoming call: its leg is the child.
    let accepted = twilio.dial(phone("+15005550006"), person("bob"));
    let child = accepted.child.unwrap();
    shapes
        .reaches("accepted", &[accepted.parent, child], child, "bob")
        .await;
    // Client to client: two clients; `.to_client()` asks for a name, and a name finds it.
    let both = twilio.dial(person("carol"), person("dave"));
    let child = both.child.unwrap();
    assert_eq!(shapes.legs("client to client", child).await.len(), 2);
    let sent = shapes.through.send_message(child, &1).to_client().await;
    let error = leg_error(&prism, "client to client", sent);
    assert!(matches!(error, LegError::SeveralClients { .. }), "{error}");
    let sent = shapes
        .through
        .send_message(both.parent, &2)
        .to_client_named("dave")
        .await;
    assert_eq!(passed(&prism, "client to client", sent).call_sid, child);
    assert_eq!(twilio.client_received(&child).len(), 1);
    // Phone to phone: no client on either leg.
    let phones = twilio.dial(phone("+15005550006"), phone("+15005550009"));
    shapes
        .reaches_nobody("phone to phone", phones.parent, 2)
        .await;
    // Ringing, its child not dialled yet: the parent only.
    let ringing = twilio.ringing_call(phone("+15005550006"));
    shapes.reaches_nobody("ringing", ringing, 1).await;

    // A conference of clients and phones, more participants than a page holds: the SDK
    // follows `next_page_uri` through Prism.
    let conference = twilio.create_conference("prism");
    let mut participants = Vec::new();
    for endpoint in [
        person("p0"),
        phone("+15005550006"),
        person("p2"),
        person("p3"),
        phone("+15005550009"),
    ] {
        let is_client = matches!(endpoint, Endpoint::Client(_));
        participants.push((
            twilio.add_participant(&conference, endpoint).unwrap(),
            is_client,
        ));
    }
    let broadcast = shapes
        .through
        .broadcast_to_conference(conference.as_str(), &json!({"poll": "open"}))
        .await;
    let results = passed(&prism, "broadcast", broadcast);
    assert_eq!(results.len(), participants.len());
    for (result, (leg, is_client)) in results.iter().zip(&participants) {
        assert_eq!(result.call_sid, Some(*leg));
        match (&result.result, is_client) {
            (Ok(message), true) => assert_eq!(message.call_sid, *leg),
            (Err(Error::Leg(e)), false) if matches!(**e, LegError::NoClient { .. }) => {}
            (other, _) => panic!("participant {leg}: {other:?}\n{}", prism.log()),
        }
        assert_eq!(
            twilio.client_received(leg).len(),
            usize::from(*is_client),
            "{leg}"
        );
    }

    // What the SDK does not call, raw: FetchConference, FetchParticipant; and ListCall with
    // a client's `From` (upstream's `phone-number` format, which Prism leaves alone).
    let account = format!("/2010-04-01/Accounts/{}", twilio.account_sid());
    let conference_path = format!("{account}/Conferences/{conference}");
    let (status, body) = get(&prism, &twilio, &format!("{conference_path}.json")).await;
    assert_eq!(status, 200, "FetchConference: {body}");
    assert_eq!(body["sid"], conference.as_str());
    for (leg, _) in &participants {
        let path = format!("{conference_path}/Participants/{leg}.json");
        let (status, body) = get(&prism, &twilio, &path).await;
        assert_eq!(status, 200, "FetchParticipant: {body}");
        assert_eq!(body["call_sid"], leg.as_str());
    }
    for (filter, leg) in [
        ("From=client%3Aalice", placed.parent),
        ("To=client%3Abob", accepted.child.unwrap()),
    ] {
        let (status, body) = get(&prism, &twilio, &format!("{account}/Calls.json?{filter}")).await;
        assert_eq!(status, 200, "ListCall {filter}: {body}");
        assert_eq!(body["calls"][0]["sid"], leg.as_str(), "{filter}: {body}");
    }

    // Not vacuous: a malformed SID is refused by Prism itself, and logged.
    let (status, body) = get(
        &prism,
        &twilio,
        &format!("{account}/Calls/CAnot-a-sid.json"),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("errors#UNPROCESSABLE_ENTITY"),
        "{body}"
    );
    assert_eq!(body["validation"][0]["location"], json!(["path", "sid"]));
    prism.flagged("CAnot-a-sid").await;
    let violations = prism.violations();
    assert!(
        violations.iter().all(|l| l.contains("CAnot-a-sid")) && !violations.is_empty(),
        "Prism flagged:\n{}",
        violations.join("\n")
    );

    // The relaxation is needed, and for nothing else: the strict description refuses the
    // emulator's lists for the page fields' `format: uri` only.
    for path in [
        format!("{account}/Calls.json?PageSize=1"),
        format!("{conference_path}/Participants.json?PageSize=1"),
    ] {
        let (status, body) = get(&strict, &twilio, &path).await;
        assert_eq!(status, 500, "{path}: {body}");
        let flagged = body["validation"].as_array().unwrap();
        assert!(!flagged.is_empty(), "{body}");
        for v in flagged {
            let field = v["location"][2].as_str().unwrap();
            assert!(
                v["code"] == "format" && PAGE_FIELDS.contains(&field),
                "{path}: {v}"
            );
        }
    }
}
