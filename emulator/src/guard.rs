//! Only its own page and local tools drive the emulator. It signs callbacks with the
//! account's token, so a web page the developer happens to visit must not be able to create
//! calls or make the client send (a validly signed callback the service never asked for):
//! the class of attack Jupyter's token and the browsers' Private Network Access work exist
//! for. Control requests whose `Host` is not loopback, the bind address or an allowed name
//! (DNS rebinding) are refused; so are those whose `Origin` is another site's; requests that
//! change state must be `application/json`, which a cross-origin page can only send after a
//! preflight, and preflights (`OPTIONS`) are refused. Twilio's REST paths are not guarded:
//! they answer Twilio's clients as the real API does, with credentials.

use std::net::IpAddr;

use crate::Inner;
use crate::control::problem;
use crate::http::{Request, Response};

pub(crate) fn check(inner: &Inner, request: &Request) -> Result<(), Response> {
    let host = request.header("host");
    if let Some(host) = host
        && !allowed_host(inner, host)
    {
        return Err(problem(
            403,
            format!(
                "refused: Host {host:?} is not this emulator's (loopback, {}, or a name given with --allow-host)",
                inner.bind.ip()
            ),
        ));
    }
    if let Some(origin) = request.header("origin") {
        let own = host.is_some_and(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
        if !own {
            return Err(problem(
                403,
                format!(
                    "refused: a request from the web page at {origin:?}; only the emulator's own page may drive it"
                ),
            ));
        }
    }
    match request.method.as_str() {
        "GET" | "HEAD" => Ok(()),
        "OPTIONS" => Err(problem(
            403,
            "refused: no cross-origin requests (no CORS preflight is answered)",
        )),
        _ => {
            let json = request.header("content-type").is_some_and(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
            if json {
                Ok(())
            } else {
                Err(problem(
                    415,
                    "refused: requests that change the emulator need Content-Type: application/json",
                ))
            }
        }
    }
}

/// A loopback name or address, the address it listens on, or a name allowed by a flag. The
/// port is not compared: the socket already chose it.
fn allowed_host(inner: &Inner, host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        },
    }
    .to_ascii_lowercase();
    if name == "localhost" || inner.allowed_hosts.contains(&name) {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || (ip == inner.bind.ip() && !ip.is_unspecified()),
        Err(_) => false,
    }
}
