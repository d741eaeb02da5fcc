//! Building a [`Client`]: credentials, host (edge and region), timeouts, user agent.
//! Setters only record; [`ClientBuilder::build`] checks everything and reports the first problem.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::HeaderValue;

use crate::client::{Client, ClientRef};
use crate::error::{ConfigError, Error};
use crate::flow::ConcurrencyLimit;
use crate::flow::limiter::ConcurrencyLimiter;
use crate::legs::cache::LegCache;
use crate::retry::RetryPolicy;
use crate::retry::budget::RetryBudget;
use crate::sid::{AccountSid, ApiKeySid, IntoSid, SidError};
use crate::transport::Endpoint;

/// Default host: Twilio's US1 region.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Default time allowed to establish a connection (clients built by this crate only).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for one request, from sending until the whole response is read.
/// Node's official library uses 30 s as well.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A secret that never prints.
#[derive(Clone, Default)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug)]
enum Credentials {
    AuthToken(Secret),
    ApiKey { sid: ApiKeySid, secret: Secret },
}

/// Configures and builds a [`Client`]. Start with [`Client::builder`] or
/// [`ClientBuilder::from_env`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    account_sid: Option<String>,
    auth_token: Option<Secret>,
    api_key: Option<(Result<ApiKeySid, SidError>, Secret)>,
    edge: Option<String>,
    region: Option<String>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent_extensions: Vec<String>,
    http_client: Option<reqwest::Client>,
    retry: Option<RetryPolicy>,
    concurrency: Option<ConcurrencyLimit>,
    /// `Some(None)`: no budget. The bucket itself is made by `build`, so that two clients
    /// built from clones of one builder do not share it.
    retry_budget: Option<Option<usize>>,
    /// `base_url` may be plain `http://` to any host (not only loopback).
    allow_plain_http: bool,
}

impl ClientBuilder {
    /// The account whose calls are addressed (`AC…`). Required.
    pub fn account_sid(mut self, sid: impl Into<String>) -> Self {
        self.account_sid = Some(sid.into());
        self
    }

    /// Authenticate with the account's auth token.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(Secret(token.into()));
        self
    }

    /// Authenticate with an API key (`SK…`) and its secret, as Twilio recommends for
    /// production; the account SID is still required for the paths.
    ///
    /// The SID may be an [`ApiKeySid`] or its text; malformed text is reported by
    /// [`build`](Self::build).
    pub fn api_key(mut self, sid: impl IntoSid<ApiKeySid>, secret: impl Into<String>) -> Self {
        self.api_key = Some((sid.into_sid(), Secret(secret.into())));
        self
    }

    /// Twilio edge location (e.g. `dublin`, `sydney`); without a region it means `us1`.
    pub fn edge(mut self, edge: impl Into<String>) -> Self {
        self.edge = Some(edge.into());
        self
    }

    /// Twilio region (e.g. `ie1`, `au1`). Other regions than `us1` need an edge: Twilio turned
    /// off the `api.{region}.twilio.com` hosts on 2026-04-28.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Send requests to this base URL instead (a proxy, or a local server in tests). It must
    /// be `https`, or `http` to a loopback address (or to any host after
    /// [`allow_plain_http`](Self::allow_plain_http)). Cannot be combined with edge or region.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Allows a [`base_url`](Self::base_url) with plain `http://` to a host that is not
    /// loopback: a local Twilio emulator reached by name, e.g. `http://emulator:4010` in a
    /// docker-compose network. The credentials then travel unencrypted, so a `twilio.com`
    /// host is still refused over plain http.
    pub fn allow_plain_http(mut self) -> Self {
        self.allow_plain_http = true;
        self
    }

    /// Time allowed for one request, from sending until the whole response is read.
    /// Default: [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Time allowed to establish a connection. Default: [`DEFAULT_CONNECT_TIMEOUT`]. Applies to
    /// the HTTP client this crate builds; a client given to [`http_client`](Self::http_client)
    /// keeps its own.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Appends a product token to the User-Agent, e.g. `my-service/1.4`.
    pub fn user_agent_extension(mut self, extension: impl Into<String>) -> Self {
        self.user_agent_extensions.push(extension.into());
        self
    }

    /// How failed requests are retried; default: [`RetryPolicy::default`], whichever way the
    /// client is built. [`RetryPolicy::none`] turns retries off.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// How many requests the client (all its clones, every operation) keeps in flight to
    /// Twilio at once. Default: [`ConcurrencyLimit::default`], adaptive: it learns the
    /// account's limit from Twilio's 429s, so that requests wait for a slot instead of being
    /// throttled, and several processes sharing the account converge to fair shares.
    pub fn concurrency_limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.concurrency = Some(limit);
        self
    }

    /// A fixed limit of `n` requests in flight at once (at least 1): the same as
    /// `.concurrency_limit(ConcurrencyLimit::Fixed(n))`.
    pub fn max_in_flight(self, n: usize) -> Self {
        self.concurrency_limit(ConcurrencyLimit::Fixed(n))
    }

    /// The client's retry budget, shared by every clone: `Some(tokens)` (default 500), or
    /// `None` for no budget. A retry after a fault (a 5xx, a timeout, a connection that failed
    /// or broke) costs 10 tokens; a retry that succeeds gets its tokens back, and a call that
    /// succeeds at once returns 1. When the bucket is empty, faults are not retried, so an outage is not
    /// multiplied by retries (smithy-rs's standard retry strategy works the same way).
    /// Throttled requests (429) never spend the budget.
    pub fn retry_budget(mut self, tokens: Option<usize>) -> Self {
        self.retry_budget = Some(tokens);
        self
    }

    /// Use this `reqwest::Client` (and its connection pool, proxy and TLS settings). Auth, the
    /// User-Agent and the request timeout are still applied to every request.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// A builder filled from the environment, as Twilio's official libraries read it:
    /// `TWILIO_ACCOUNT_SID`, then `TWILIO_API_KEY` with `TWILIO_API_SECRET` or else
    /// `TWILIO_AUTH_TOKEN`, and optionally `TWILIO_EDGE` and `TWILIO_REGION`. The error names
    /// the variable that is missing or malformed. Empty variables count as unset.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, Error> {
        let var = |name: &str| -> Result<Option<String>, Error> {
            match lookup(name) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v
                    .into_string()
                    .map(Some)
                    .map_err(|_| ConfigError::new(name, "is not valid UTF-8").into()),
            }
        };
        let required = |name: &str, why: &str| -> Result<String, Error> {
            var(name)?.ok_or_else(|| ConfigError::new(name, format!("is not set ({why})")).into())
        };

        let account = required("TWILIO_ACCOUNT_SID", "the account that owns the calls")?;
        check_account_sid("TWILIO_ACCOUNT_SID", &account)?;
        let mut builder = ClientBuilder::default().account_sid(account);

        match (var("TWILIO_API_KEY")?, var("TWILIO_API_SECRET")?) {
            (Some(key), Some(secret)) => {
                let key = check_api_key("TWILIO_API_KEY", &key)?;
                check_secret("TWILIO_API_SECRET", &secret)?;
                builder = builder.api_key(key, secret);
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TWILIO_API_SECRET",
                    "is not set, but TWILIO_API_KEY is (an API key needs its secret)",
                )
                .into());
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TWILIO_API_KEY",
                    "is not set, but TWILIO_API_SECRET is (a secret needs its API key SID)",
                )
                .into());
            }
            (None, None) => {
                let token = required(
                    "TWILIO_AUTH_TOKEN",
                    "set it, or TWILIO_API_KEY and TWILIO_API_SECRET",
                )?;
                check_secret("TWILIO_AUTH_TOKEN", &token)?;
                builder = builder.auth_token(token);
            }
        }
        if let Some(edge) = var("TWILIO_EDGE")? {
            check_label("TWILIO_EDGE", &edge)?;
            builder = builder.edge(edge);
        }
        if let Some(region) = var("TWILIO_REGION")? {
            check_label("TWILIO_REGION", &region)?;
            builder = builder.region(region);
        }
        Ok(builder)
    }

    /// Checks the configuration and builds the client; the error names the first problem.
    pub fn build(self) -> Result<Client, Error> {
        let account = self
            .account_sid
            .as_deref()
            .ok_or_else(|| ConfigError::new("account_sid", "is not set"))?;
        let account_sid = check_account_sid("account_sid", account)?;

        let credentials = match (self.auth_token, self.api_key) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "credentials",
                    "both auth_token and api_key are set; choose one",
                )
                .into());
            }
            (Some(token), None) => {
                check_secret("auth_token", &token.0)?;
                Credentials::AuthToken(token)
            }
            (None, Some((sid, secret))) => {
                let sid = sid.map_err(|e| ConfigError::new("api_key", e.to_string()))?;
                check_secret("api_key secret", &secret.0)?;
                Credentials::ApiKey { sid, secret }
            }
            (None, None) => {
                return Err(
                    ConfigError::new("credentials", "set auth_token(..) or api_key(..)").into(),
                );
            }
        };

        let base_url = match (self.base_url, self.edge, self.region) {
            (Some(url), None, None) => check_base_url_allowing(&url, self.allow_plain_http)?,
            (Some(_), _, _) => {
                return Err(
                    ConfigError::new("base_url", "cannot be combined with edge or region").into(),
                );
            }
            (None, edge, region) => host_url(edge.as_deref(), region.as_deref())?,
        };

        let timeout = non_zero("timeout", self.timeout.unwrap_or(DEFAULT_TIMEOUT))?;
        let connect_timeout = non_zero(
            "connect_timeout",
            self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        )?;

        for extension in &self.user_agent_extensions {
            if extension.trim().is_empty() || extension.chars().any(|c| c.is_control()) {
                return Err(ConfigError::new(
                    "user_agent_extension",
                    "must be non-empty printable text (no control characters such as CR or LF)",
                )
                .into());
            }
        }
        let user_agent = HeaderValue::from_str(&user_agent(&self.user_agent_extensions))
            .map_err(|_| ConfigError::new("user_agent_extension", "must be ASCII"))?;

        // Our own client carries the per-attempt timeout as its default, so the hook sets a
        // request's timeout only when it differs (a cut deadline, a per-call timeout): setting
        // one allocates the request's extension map. A caller's client may have any default.
        let (http, http_timeout) = match self.http_client {
            Some(client) => (client, None),
            None => (
                default_http_client(connect_timeout, timeout)?,
                Some(timeout),
            ),
        };

        let server_address = reqwest::Url::parse(&base_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        let authorization = authorization(&account_sid, &credentials)?;
        Ok(Client::new(ClientRef {
            endpoint: Endpoint::new(&base_url, http, http_timeout, authorization, user_agent),
            server_address,
            account_sid,
            timeout,
            retry: self.retry.unwrap_or_default(),
            limiter: ConcurrencyLimiter::new(self.concurrency.unwrap_or_default()),
            retry_budget: match self.retry_budget {
                None => RetryBudget::default(),
                Some(tokens) => tokens.map_or_else(RetryBudget::unlimited, RetryBudget::new),
            },
            legs: LegCache::default(),
        }))
    }
}

fn default_http_client(
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, Error> {
    #[cfg(all(feature = "rustls-ring", not(feature = "rustls-aws-lc-rs")))]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // reqwest needs a process-wide provider with `rustls-no-provider`; one installed
        // by the application wins, and a concurrent install by another thread is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        // Twilio's API does not redirect these operations; following a redirect could carry
        // the credentials elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConfigError::new("http_client", format!("cannot be built: {e}")).into())
}

/// `Authorization: Basic …`, built once and marked sensitive so it never prints.
fn authorization(account: &AccountSid, credentials: &Credentials) -> Result<HeaderValue, Error> {
    let (user, secret) = match credentials {
        Credentials::AuthToken(token) => (account.as_str(), &token.0),
        Credentials::ApiKey { sid, secret } => (sid.as_str(), &secret.0),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| ConfigError::new("credentials", "cannot form an Authorization header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `twilio-call-messages/<version> (<os> <arch>) rust/<version>` and the extensions, following
/// the official libraries' convention.
fn user_agent(extensions: &[String]) -> String {
    let mut ua = format!(
        "twilio-call-messages/{} ({} {}) rust/{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        env!("TWILIO_CALL_MESSAGES_RUSTC_VERSION"),
    );
    for extension in extensions {
        ua.push(' ');
        ua.push_str(extension.trim());
    }
    ua
}

/// The API host for an edge and region.
fn host_url(edge: Option<&str>, region: Option<&str>) -> Result<String, Error> {
    if let Some(edge) = edge {
        check_label("edge", edge)?;
    }
    if let Some(region) = region {
        check_label("region", region)?;
    }
    match (edge, region) {
        (None, None) | (None, Some("us1")) => Ok(DEFAULT_BASE_URL.to_owned()),
        (Some(edge), region) => Ok(format!(
            "https://api.{edge}.{}.twilio.com",
            region.unwrap_or("us1")
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "region",
            "needs an edge (e.g. region ie1 with edge dublin): Twilio turned off the \
             api.{region}.twilio.com hosts on 2026-04-28",
        )
        .into()),
    }
}

#[cfg(test)]
fn check_base_url(url: &str) -> Result<String, Error> {
    check_base_url_allowing(url, false)
}

fn check_base_url_allowing(url: &str, allow_plain_http: bool) -> Result<String, Error> {
    let bad = |reason: &str| -> Error { ConfigError::new("base_url", reason.to_owned()).into() };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" if allow_plain_http && !is_twilio(&parsed) => {}
        "http" if allow_plain_http => {
            return Err(bad(
                "must use https to a twilio.com host, even with allow_plain_http",
            ));
        }
        "http" => {
            return Err(bad(
                "must use https (plain http is allowed only to loopback)",
            ));
        }
        _ => return Err(bad("must be an https URL")),
    }
    // Paths are appended to it: a trailing slash would double.
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn is_twilio(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_end_matches('.');
    host.eq_ignore_ascii_case("twilio.com") || host.to_ascii_lowercase().ends_with(".twilio.com")
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_account_sid(setting: &str, value: &str) -> Result<AccountSid, Error> {
    value
        .parse()
        .map_err(|e| ConfigError::new(setting, format!("{e}")).into())
}

fn check_api_key(setting: &str, value: &str) -> Result<ApiKeySid, Error> {
    value
        .parse()
        .map_err(|e| ConfigError::new(setting, format!("{e}")).into())
}

/// Secrets become a header: printable ASCII only, which also rules out CR/LF injection.
fn check_secret(setting: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(ConfigError::new(setting, "is empty").into());
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            setting,
            "must be printable ASCII without spaces (check for a trailing newline)",
        )
        .into());
    }
    Ok(())
}

/// Edges and regions are DNS labels: lowercase letters, digits and hyphens.
fn check_label(setting: &str, value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(setting, "must be a lowercase name like `dublin` or `ie1`").into())
    }
}

fn non_zero(setting: &str, d: Duration) -> Result<Duration, Error> {
    if d.is_zero() {
        Err(ConfigError::new(setting, "must be greater than zero").into())
    } else {
        Ok(d)
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const KEY: &str = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn env(vars: &[(&str, &str)]) -> Result<ClientBuilder, Error> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        ClientBuilder::from_lookup(|name| map.get(name).cloned())
    }

    fn config_error(result: Result<impl fmt::Debug, Error>) -> (String, String) {
        match result {
            Err(Error::Config(ConfigError { setting, reason })) => (setting, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn host_table() {
        let cases: [(Option<&str>, Option<&str>, Result<&str, &str>); 7] = [
            (None, None, Ok("https://api.twilio.com")),
            (
                Some("sydney"),
                Some("au1"),
                Ok("https://api.sydney.au1.twilio.com"),
            ),
            (
                Some("dublin"),
                Some("ie1"),
                Ok("https://api.dublin.ie1.twilio.com"),
            ),
            (
                Some("ashburn"),
                None,
                Ok("https://api.ashburn.us1.twilio.com"),
            ),
            (None, Some("us1"), Ok("https://api.twilio.com")),
            (None, Some("ie1"), Err("region")),
            (Some("Dublin"), Some("ie1"), Err("edge")),
        ];
        for (edge, region, expected) in cases {
            let got = host_url(edge, region);
            match expected {
                Ok(url) => assert_eq!(got.unwrap(), url, "{edge:?} {region:?}"),
                Err(setting) => assert_eq!(config_error(got).0, setting, "{edge:?} {region:?}"),
            }
        }
    }

    #[test]
    fn base_url_rules() {
        assert_eq!(
            check_base_url("https://proxy.example.com/twilio/").unwrap(),
            "https://proxy.example.com/twilio"
        );
        assert_eq!(
            check_base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_base_url("http://localhost:1").unwrap(),
            "http://localhost:1"
        );
        assert_eq!(check_base_url("http://[::1]:1/").unwrap(), "http://[::1]:1");
        for bad in [
            "http://api.twilio.com",
            "ftp://127.0.0.1",
            "https://user:pw@api.twilio.com",
            "https://api.twilio.com?x=1",
            "not a url",
        ] {
            assert_eq!(config_error(check_base_url(bad)).0, "base_url", "{bad}");
        }
    }

    #[test]
    fn from_env_table() {
        let ok = env(&[
            ("TWILIO_ACCOUNT_SID", ACCOUNT),
            ("TWILIO_AUTH_TOKEN", "tok"),
        ])
        .unwrap();
        assert!(ok.auth_token.is_some() && ok.api_key.is_none());

        let key = env(&[
            ("TWILIO_ACCOUNT_SID", ACCOUNT),
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWILIO_API_KEY", KEY),
            ("TWILIO_API_SECRET", "sec"),
            ("TWILIO_EDGE", "dublin"),
            ("TWILIO_REGION", "ie1"),
        ])
        .unwrap();
        assert!(key.api_key.is_some() && key.auth_token.is_none());
        assert_eq!(key.edge.as_deref(), Some("dublin"));
        assert_eq!(key.region.as_deref(), Some("ie1"));

        let cases: [(&[(&str, &str)], &str, &str); 9] = [
            (&[], "TWILIO_ACCOUNT_SID", "is not set"),
            (
                &[("TWILIO_ACCOUNT_SID", "")],
                "TWILIO_ACCOUNT_SID",
                "is not set",
            ),
            (
                &[("TWILIO_ACCOUNT_SID", "AC123")],
                "TWILIO_ACCOUNT_SID",
                "invalid account SID",
            ),
            (
                &[("TWILIO_ACCOUNT_SID", ACCOUNT)],
                "TWILIO_AUTH_TOKEN",
                "is not set",
            ),
            (
                &[("TWILIO_ACCOUNT_SID", ACCOUNT), ("TWILIO_API_KEY", KEY)],
                "TWILIO_API_SECRET",
                "is not set",
            ),
            (
                &[("TWILIO_ACCOUNT_SID", ACCOUNT), ("TWILIO_API_SECRET", "s")],
                "TWILIO_API_KEY",
                "is not set",
            ),
            (
                &[
                    ("TWILIO_ACCOUNT_SID", ACCOUNT),
                    ("TWILIO_API_KEY", ACCOUNT),
                    ("TWILIO_API_SECRET", "s"),
                ],
                "TWILIO_API_KEY",
                "invalid API key SID",
            ),
            (
                &[
                    ("TWILIO_ACCOUNT_SID", ACCOUNT),
                    ("TWILIO_AUTH_TOKEN", "tok\n"),
                ],
                "TWILIO_AUTH_TOKEN",
                "printable ASCII",
            ),
            (
                &[
                    ("TWILIO_ACCOUNT_SID", ACCOUNT),
                    ("TWILIO_AUTH_TOKEN", "t"),
                    ("TWILIO_EDGE", "Dub lin"),
                ],
                "TWILIO_EDGE",
                "lowercase",
            ),
        ];
        for (vars, setting, reason) in cases {
            let (got_setting, got_reason) = config_error(env(vars));
            assert_eq!(got_setting, setting, "{vars:?}");
            assert!(got_reason.contains(reason), "{vars:?}: {got_reason}");
        }
    }

    #[test]
    fn build_reports_the_first_problem() {
        let cases: [(ClientBuilder, &str); 7] = [
            (ClientBuilder::default(), "account_sid"),
            (ClientBuilder::default().account_sid(ACCOUNT), "credentials"),
            (
                ClientBuilder::default()
                    .account_sid(ACCOUNT)
                    .auth_token("t")
                    .api_key(KEY, "s"),
                "credentials",
            ),
            (
                ClientBuilder::default()
                    .account_sid(ACCOUNT)
                    .auth_token("a\r\nb"),
                "auth_token",
            ),
            (
                ClientBuilder::default()
                    .account_sid(ACCOUNT)
                    .auth_token("t")
                    .base_url("https://x.test")
                    .edge("dublin"),
                "base_url",
            ),
            (
                ClientBuilder::default()
                    .account_sid(ACCOUNT)
                    .auth_token("t")
                    .user_agent_extension("a\nb"),
                "user_agent_extension",
            ),
            (
                ClientBuilder::default()
                    .account_sid(ACCOUNT)
                    .auth_token("t")
                    .timeout(Duration::ZERO),
                "timeout",
            ),
        ];
        for (builder, setting) in cases {
            assert_eq!(config_error(builder.build()).0, setting);
        }
    }

    #[test]
    fn user_agent_follows_the_convention() {
        let ua = user_agent(&["my-app/1.0".into()]);
        let expected_start = format!("twilio-call-messages/{} (", env!("CARGO_PKG_VERSION"));
        assert!(ua.starts_with(&expected_start), "{ua}");
        assert!(
            ua.contains(") rust/") && ua.ends_with(" my-app/1.0"),
            "{ua}"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let builder = ClientBuilder::default()
            .account_sid(ACCOUNT)
            .auth_token("s3cr3t-token")
            .api_key(KEY, "s3cr3t-secret");
        let debug = format!("{builder:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }
}
