//! The page at `GET /emulator/` (for a browser: `Accept: text/html`; API clients keep the JSON
//! answer): the calls with their legs, one call's timeline, and the actions, drawn by a small
//! script from the control API. HTML, CSS and JavaScript are compiled into the binary: no
//! CDN, no build step.

use crate::http::{Request, Response};

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/page.js");
const STYLE: &str = include_str!("page/page.css");

/// The page's files, or `None` for the control API.
pub(crate) fn serve(request: &Request) -> Option<Response> {
    if request.method != "GET" {
        return None;
    }
    let (content_type, body) = match request.path() {
        "/emulator" | "/emulator/" if wants_html(request) => ("text/html; charset=utf-8", INDEX),
        "/emulator/page.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/emulator/page.css" => ("text/css; charset=utf-8", STYLE),
        _ => return None,
    };
    Some(
        Response::new(200, content_type, body)
            // Only its own files run, and no other site may frame its buttons.
            .with_header(
                "Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            )
            .with_header("X-Frame-Options", "DENY")
            .with_header("Cache-Control", "no-store"),
    )
}

fn wants_html(request: &Request) -> bool {
    request
        .header("accept")
        .is_some_and(|a| a.contains("text/html"))
}
