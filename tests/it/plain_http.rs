//! `ClientBuilder::allow_plain_http`: plain `http://` to a named host (a local emulator in a
//! docker-compose network) only when asked, and never to twilio.com.

use twilio_call_messages::{Client, Error};

fn build(url: &str, allow: bool) -> Result<Client, Error> {
    let builder = Client::builder()
        .account_sid("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .auth_token("token")
        .base_url(url);
    if allow {
        builder.allow_plain_http()
    } else {
        builder
    }
    .build()
}

fn refused_setting(result: Result<Client, Error>) -> String {
    match result {
        Err(Error::Config(e)) => e.setting,
        Err(other) => panic!("not a configuration error: {other}"),
        Ok(client) => panic!("accepted {}", client.base_url()),
    }
}

#[test]
fn plain_http_to_a_named_host_needs_the_opt_in() {
    assert_eq!(
        refused_setting(build("http://emulator:4010", false)),
        "base_url"
    );
    let client = build("http://emulator:4010/", true).unwrap();
    assert_eq!(client.base_url(), "http://emulator:4010");
    // Loopback never needed it; https is unaffected.
    assert!(build("http://127.0.0.1:4010", false).is_ok());
    assert!(build("https://proxy.example.com", true).is_ok());
}

#[test]
fn twilio_hosts_stay_https_even_with_the_opt_in() {
    for url in [
        "http://api.twilio.com",
        "http://api.dublin.ie1.twilio.com",
        "http://API.TWILIO.COM.",
    ] {
        let setting = refused_setting(build(url, true));
        assert_eq!(setting, "base_url", "{url}");
    }
}
