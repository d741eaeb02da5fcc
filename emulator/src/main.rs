//! `twilio-call-messages-emulator`: a local Twilio for call messages, for every language and
//! for docker-compose. Prints what to configure, serves the REST API at Twilio's paths and the
//! control API under `/emulator/`, and stops cleanly on SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use twilio_call_messages_emulator::{
    CallbackBody, CallbackFaults, Emulator, EmulatorBuilder, FaultKind, Faults, Signing,
};

const USAGE: &str = "\
usage: twilio-call-messages-emulator [options]

  --port P                    port to listen on (default 4010; 0 picks a free one)
  --bind ADDR                 address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  --allow-host NAME           a Host name the control API and page answer besides loopback
                              and the bind address (repeatable; e.g. a docker-compose name)
  --account-sid AC…           the account (default: a random one, printed)
  --auth-token T              its auth token (default: a random one, printed)
  --api-key SK…:SECRET        an API key that may authenticate too (repeatable); the first
                              signs and every one verifies Voice access tokens (default: a
                              generated one, printed)
  --certificate-out PATH      write the signaling endpoint's TLS certificate (PEM) there
  --concurrency-limit N       429 / 20429 beyond N REST requests in flight
  --no-concurrency-header     do not send Twilio-Concurrent-Requests
  --latency-ms L              each REST request takes L ms inside the account
  --idempotency-window-secs S how long a repeated IdempotencyKey replays (default 86400)
  --fault KIND=RATE           fail a share of REST requests (repeatable); KIND is one of
                              reset, stall, throttle, 502, 503, 502-oversized, 500-after,
                              reset-after, truncated-after, stall-after, 504-after
  --fault-seed N              seed of the REST faults (default 0)
  --stall-ms MS               how long a stall holds a connection (default 35000)
  --callback-duplicate RATE   share of callbacks delivered twice
  --callback-reorder RATE     share of callbacks delivered after the next one
  --callback-drop-first RATE  share of callbacks whose first attempt is dropped
  --callback-seed N           seed of the callback faults (default 0)
  --callback-body json|form   the callbacks' body (default json)
  --sequence-start 0|1        the first SequenceNumber of a call (default 1)
  --signing auth-token|body-sha256|shared-key
                              how callbacks are signed (default auth-token)
  --shared-key-id ID          the shared key's id (with --signing shared-key)
  --shared-key-secret SECRET  the shared key's secret (with --signing shared-key)
  -h, --help                  this text
  -V, --version               the version
";

struct Options {
    builder: EmulatorBuilder,
    port: u16,
    bind: IpAddr,
    printed_token: Option<String>,
    printed_account: bool,
    printed_api_key: bool,
    certificate_out: Option<String>,
}

fn parse(args: Vec<String>) -> Result<Option<Options>, String> {
    let mut builder = Emulator::builder();
    let mut port = 4010u16;
    let mut bind: IpAddr = [127, 0, 0, 1].into();
    let mut token = None;
    let mut account = false;
    let mut faults = Faults::none();
    let mut callback = CallbackFaults::default();
    let mut signing = None;
    let (mut key_id, mut key_secret) = (None, None);
    let mut api_key = false;
    let mut certificate_out = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if matches!(name.as_str(), "-h" | "--help") {
            print!("{USAGE}");
            return Ok(None);
        }
        if matches!(name.as_str(), "-V" | "--version") {
            println!(
                "twilio-call-messages-emulator {}",
                env!("CARGO_PKG_VERSION")
            );
            return Ok(None);
        }
        if name == "--no-concurrency-header" {
            builder = builder.concurrency_header(false);
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let number = |what: &str| -> Result<u64, String> {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what} must be a whole number, not {value:?}"))
        };
        let rate = |what: &str, text: &str| -> Result<f64, String> {
            text.parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| format!("{what} must be a rate within 0..=1, not {text:?}"))
        };
        match name.as_str() {
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("--port must be 0..=65535, not {value:?}"))?
            }
            "--bind" => {
                bind = value
                    .parse()
                    .map_err(|_| format!("--bind must be an IP address, not {value:?}"))?
            }
            "--allow-host" => builder = builder.allow_host(value),
            "--account-sid" => {
                builder =
                    builder.account_sid(value.parse().map_err(|e| format!("--account-sid: {e}"))?);
                account = true;
            }
            "--auth-token" => {
                if value.is_empty() {
                    return Err("--auth-token must not be empty".into());
                }
                builder = builder.auth_token(value);
                token = Some(());
            }
            "--api-key" => {
                let (sid, secret) = value.split_once(':').ok_or("--api-key is SK…:SECRET")?;
                builder =
                    builder.api_key(sid.parse().map_err(|e| format!("--api-key: {e}"))?, secret);
                api_key = true;
            }
            "--certificate-out" => certificate_out = Some(value),
            "--concurrency-limit" => {
                let n = number("--concurrency-limit")?;
                if n == 0 {
                    return Err("--concurrency-limit must be at least 1".into());
                }
                builder = builder.concurrency_limit(n as usize);
            }
            "--latency-ms" => {
                builder = builder.latency(Duration::from_millis(number("--latency-ms")?))
            }
            "--idempotency-window-secs" => {
                builder = builder
                    .idempotency_window(Duration::from_secs(number("--idempotency-window-secs")?))
            }
            "--fault" => {
                let (kind, r) = value
                    .split_once('=')
                    .ok_or("--fault is KIND=RATE, e.g. --fault 503=0.1")?;
                let kind: FaultKind = kind.parse()?;
                faults = faults.with(kind, rate("--fault", r)?);
            }
            "--fault-seed" => faults = faults.seed(number("--fault-seed")?),
            "--stall-ms" => faults = faults.stall(Duration::from_millis(number("--stall-ms")?)),
            "--callback-duplicate" => callback.duplicate = rate(&name, &value)?,
            "--callback-reorder" => callback.reorder = rate(&name, &value)?,
            "--callback-drop-first" => callback.drop_first = rate(&name, &value)?,
            "--callback-seed" => callback.seed = number("--callback-seed")?,
            "--callback-body" => builder = builder.callback_body(value.parse::<CallbackBody>()?),
            "--sequence-start" => match value.as_str() {
                "0" | "1" => builder = builder.sequence_start(number("--sequence-start")?),
                _ => return Err("--sequence-start must be 0 or 1".into()),
            },
            "--signing" => signing = Some(value),
            "--shared-key-id" => key_id = Some(value),
            "--shared-key-secret" => key_secret = Some(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let signing = match signing.as_deref() {
        None | Some("auth-token") => Signing::AuthToken,
        Some("body-sha256") => Signing::BodySha256,
        Some("shared-key") => match (key_id, key_secret) {
            (Some(id), Some(secret)) => Signing::SharedKey { id, secret },
            _ => {
                return Err(
                    "--signing shared-key needs --shared-key-id and --shared-key-secret".into(),
                );
            }
        },
        Some(other) => {
            return Err(format!(
                "--signing is auth-token, body-sha256 or shared-key, not {other:?}"
            ));
        }
    };
    let builder = builder
        .signing(signing)
        .faults(faults)
        .callback_faults(callback)
        .bind(SocketAddr::new(bind, port));
    Ok(Some(Options {
        builder,
        port,
        bind,
        printed_token: token.is_none().then(String::new),
        printed_account: !account,
        printed_api_key: !api_key,
        certificate_out,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(Some(options)) => options,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Listen for the signals before saying we serve: a signal sent as soon as the banner is
    // read must stop us cleanly, not kill us.
    let stop = Stop::listen();
    let emulator = match options.builder.start().await {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!(
                "error: cannot serve on {}:{}: {e}",
                options.bind, options.port
            );
            return ExitCode::FAILURE;
        }
    };
    // What to configure. A token given on the command line is not echoed (it is a secret to
    // whoever chose it); a generated one is printed, since nobody else knows it.
    println!(
        "twilio-call-messages-emulator listening on {}",
        emulator.base_url()
    );
    println!("  base URL:     {}", emulator.base_url());
    println!(
        "  account SID:  {}{}",
        emulator.account_sid(),
        if options.printed_account {
            " (generated)"
        } else {
            ""
        }
    );
    match options.printed_token {
        Some(_) => println!("  auth token:   {} (generated)", emulator.auth_token()),
        None => println!("  auth token:   as given with --auth-token"),
    }
    let (key_sid, key_secret) = emulator.api_key();
    if options.printed_api_key {
        println!("  API key:      {key_sid}:{key_secret} (generated; signs Voice access tokens)");
    }
    println!(
        "  Voice SDK:    Device option chunderw: \"{}\" ({}, a certificate made now; its key's SHA-256 {})",
        emulator.chunderw(),
        emulator.signal_url(),
        emulator.certificate_spki_sha256()
    );
    if let Some(path) = &options.certificate_out {
        match std::fs::write(path, emulator.certificate_pem()) {
            Ok(()) => println!("  certificate:  {path} (PEM)"),
            Err(e) => eprintln!("warning: cannot write the certificate to {path}: {e}"),
        }
    }
    println!("  control API:  {}/emulator/", emulator.base_url());
    println!(
        "  page:         {}/emulator/ (in a browser)",
        emulator.base_url()
    );
    println!("Stop with Ctrl-C (SIGINT) or SIGTERM.");

    stop.wait().await;
    emulator.shutdown();
    println!("stopped");
    ExitCode::SUCCESS
}

/// SIGINT or, on Unix, SIGTERM (what `docker stop` sends), registered when made.
struct Stop {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    fn listen() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Stop { signals }
        }
        #[cfg(not(unix))]
        {
            Stop {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
