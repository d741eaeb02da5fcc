//! The page in a real browser: Debian's `chromium`, driven through `chromedriver` (WebDriver).
//! It creates a call and sends as the client from the page, watches the delivery attempts
//! with the receiver's statuses, a message from the SDK in the client's panel, and one sent
//! to the wrong leg dropped with the reason; then it saves a screenshot (to
//! `EMULATOR_PAGE_SCREENSHOT` when set, as `cargo xtask screenshot` does). Skipped, loudly,
//! without the browser, unless `CI=true`, where that fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::json;
use twilio_call_messages::{CallSid, Client};
use twilio_call_messages_emulator::Emulator;

use crate::common::{Receiver, skip};

const WAIT: Duration = Duration::from_secs(15);

/// Kills chromedriver (and so its browser) however the test ends.
pub(crate) struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The browser and its driver, or `None` (after saying loudly that `test` was skipped) on a
/// machine without them; under `CI=true` their absence fails the test.
pub(crate) fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let browser = find(&["chromium", "chromium-browser"]);
    let driver = find(&["chromedriver"]);
    match (browser, driver) {
        (Some(b), Some(d)) => Some((b, d)),
        _ => {
            skip(
                test,
                "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
            );
            None
        }
    }
}

pub(crate) async fn start_driver(driver: &Path) -> (Driver, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn open_browser(chromium: &Path, port: u16, profile: &Path) -> Browser {
    open_browser_with(
        chromium,
        port,
        profile,
        &["--window-size=1280,1000", "--hide-scrollbars"],
    )
    .await
}

/// Headless chromium through chromedriver with a fresh profile and these extra flags.
pub(crate) async fn open_browser_with(
    chromium: &Path,
    port: u16,
    profile: &Path,
    extra: &[&str],
) -> Browser {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .chain(extra)
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": args,
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session through chromedriver")
}

/// Waits for an element by XPath.
async fn until(browser: &Browser, xpath: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("no {xpath} in the page: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_drives_and_shows_a_call() {
    let Some((chromium, chromedriver)) = tools("the_page_drives_and_shows_a_call") else {
        return;
    };
    let twilio = Emulator::start().await.unwrap();
    let receiver = Receiver::start().await;
    let (_driver, port) = start_driver(&chromedriver).await;
    let profile = std::env::temp_dir().join(format!("emulator-page-{}", std::process::id()));
    let browser = open_browser(&chromium, port, &profile).await;
    let result = drive(&browser, &twilio, &receiver).await;
    let _ = browser.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(e) = result {
        panic!("the page: {e}");
    }
}

async fn drive(
    browser: &Browser,
    twilio: &Emulator,
    receiver: &Receiver,
) -> Result<(), fantoccini::error::CmdError> {
    let sdk = Client::builder()
        .account_sid(twilio.account_sid().as_str())
        .auth_token(twilio.auth_token())
        .base_url(twilio.base_url())
        .build()
        .unwrap();
    browser
        .goto(&format!("{}/emulator/", twilio.base_url()))
        .await?;
    until(browser, "//span[@id='live'][.='live']").await;

    // Create a call in the page: the client placed it, so it is on the parent leg.
    browser
        .find(Locator::Css("#new-call-leg"))
        .await?
        .select_by_value("outgoing")
        .await?;
    browser
        .find(Locator::Id("create-call"))
        .await?
        .click()
        .await?;
    until(browser, "//ul[@id='calls']/li[contains(@class,'selected')]").await;
    // Each leg shows who is on it (the Call resource's from/to) and its direction.
    until(
        browser,
        "//ul[@id='calls']/li[contains(@class,'selected')]//code[starts-with(.,'client:')]",
    )
    .await;
    until(browser, "//ul[@id='calls']//span[.='outbound-dial']").await;
    // Read in the page in one step: the list is redrawn on every change, so an element
    // found before may be stale by the time it is asked.
    let selected = browser
        .execute(
            "return document.querySelector('#calls li.selected').dataset.sid",
            vec![],
        )
        .await?;
    let client_leg: CallSid = selected.as_str().unwrap().parse().unwrap();
    let call = twilio.call(&client_leg).unwrap();
    assert_eq!(call.client_call_sid, client_leg);
    assert!(call.parent_call_sid.is_none(), "the client placed the call");
    let other_leg = twilio
        .calls()
        .into_iter()
        .find(|c| c.parent_call_sid == Some(client_leg))
        .unwrap()
        .sid;

    // The service subscribes to the client's leg; its first answer is a 503, then 200.
    receiver.answer(&[503]);
    sdk.subscribe(client_leg, &receiver.url("/twilio/messages"))
        .await
        .unwrap();

    // The page's JSON editor reports invalid JSON before sending anything.
    let editor = browser.find(Locator::Id("content")).await?;
    editor.clear().await?;
    editor.send_keys("{\"clicked\": ").await?;
    browser
        .find(Locator::Id("send-message"))
        .await?
        .click()
        .await?;
    until(
        browser,
        "//p[@id='content-error'][starts-with(., 'Not valid JSON')]",
    )
    .await;
    assert!(twilio.client_messages(&client_leg).is_empty());

    // Send as the client from the page: both attempts appear with the receiver's statuses.
    editor.clear().await?;
    editor
        .send_keys("{\"clicked\": \"upgrade\", \"plan\": \"pro\"}")
        .await?;
    browser
        .find(Locator::Id("send-message"))
        .await?
        .click()
        .await?;
    until(
        browser,
        "//ol[@id='timeline']/li[contains(@class,'out')]//li[contains(@class,'attempt')][contains(., 'status 503')]",
    )
    .await;
    until(
        browser,
        "//ol[@id='timeline']/li[contains(@class,'out')]//li[contains(@class,'attempt')][contains(., 'status 200')]",
    )
    .await;
    let sent = twilio.client_messages(&client_leg);
    assert_eq!(
        sent[0].content_text,
        r#"{"clicked": "upgrade", "plan": "pro"}"#
    );

    // The service sends with the SDK: the client's panel shows it.
    sdk.send_message(client_leg, &json!({"hint": "offer the annual plan"}))
        .await
        .unwrap();
    until(
        browser,
        "//ol[@id='timeline']/li[contains(@class,'in')][contains(., 'offer the annual plan')]",
    )
    .await;

    // To the wrong leg: Twilio answers 201, the client drops it, and the page says why.
    sdk.send_message(other_leg, &json!({"hint": "wrong leg"}))
        .await
        .unwrap();
    until(
        browser,
        "//ol[@id='timeline']/li[contains(@class,'dropped')][contains(., 'wrong leg')][contains(., 'not its own')]",
    )
    .await;

    // A conference with its participants.
    let conference = twilio.create_conference("standup");
    twilio
        .add_participant(
            &conference,
            twilio_call_messages_emulator::Endpoint::Client("carol".into()),
        )
        .unwrap();
    until(
        browser,
        &format!("//ul[@id='conferences']/li[@data-sid='{conference}']//span[.='connected']"),
    )
    .await;

    let png = browser.screenshot().await?;
    let path = std::env::var_os("EMULATOR_PAGE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("emulator-page.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

/// `file` (relative to the install directory) of the npm package `package@version`, installed
/// on first use into a directory of its own under the build's temporary directory (never
/// committed), one install at a time (two tests installing into one directory at once make npm
/// fail). Without npm or the registry, `test` is skipped loudly (failed under `CI=true`).
pub(crate) fn npm_package(test: &str, package: &str, version: &str, file: &str) -> Option<PathBuf> {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let name = package.trim_start_matches('@').replace('/', "-");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{version}"));
    let wanted = dir.join(file);
    if wanted.is_file() {
        return Some(wanted);
    }
    let Some(npm) = find(&["npm"]) else {
        crate::common::skip(test, "needs npm and Node (apt-get install npm)");
        return None;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let installed = std::process::Command::new(npm)
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&dir)
        .arg(format!("{package}@{version}"))
        .status();
    match installed {
        Ok(status) if status.success() && wanted.is_file() => Some(wanted),
        other => {
            crate::common::skip(
                test,
                &format!("could not install {package}@{version} from npm ({other:?})"),
            );
            None
        }
    }
}
