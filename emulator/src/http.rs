//! A small HTTP/1.1 server on tokio's TCP: keep-alive, `content-length` and chunked request
//! bodies, `content-length` responses. It is written by hand (not axum/hyper) because the
//! emulator's faults need the socket itself: a TCP reset before or after the answer, half a
//! body, a connection that never answers. A framework hides exactly those.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest request body read (Twilio's content limit is 10,000 characters; a form-encoded
/// body of that is at most about 90 kB).
const MAX_BODY: usize = 1024 * 1024;
/// The largest request head read.
const MAX_HEAD: usize = 64 * 1024;

/// One request.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("")
    }
}

/// One response.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The whole answer, head and body.
    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut bytes = self.head(close).into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    fn head(&self, close: bool) -> String {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head
    }
}

/// What to do with a connection after a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Answer and keep the connection.
    Respond(Response),
    /// Close with a TCP reset, answering nothing.
    Reset,
    /// Answer nothing for this long, then close.
    Stall(Duration),
    /// Send the head and half the body, then reset.
    Truncated(Response),
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Serves one connection: reads requests one after the other and answers each with `handle`.
pub(crate) async fn serve_connection<F, Fut>(mut stream: TcpStream, handle: F)
where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        let request = match read_request(&mut stream, &mut buf).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(response) => {
                let _ = stream.write_all(response.head(true).as_bytes()).await;
                let _ = stream.write_all(&response.body).await;
                return;
            }
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match handle(request).await {
            Outcome::Respond(response) => {
                let mut bytes = response.head(close).into_bytes();
                bytes.extend_from_slice(&response.body);
                if stream.write_all(&bytes).await.is_err() || close {
                    return;
                }
            }
            Outcome::Reset => return reset(stream),
            Outcome::Stall(time) => {
                tokio::time::sleep(time).await;
                return;
            }
            Outcome::Truncated(response) => {
                let mut bytes = response.head(false).into_bytes();
                bytes.extend_from_slice(&response.body[..response.body.len() / 2]);
                let _ = stream.write_all(&bytes).await;
                let _ = stream.flush().await;
                return reset(stream);
            }
        }
    }
}

/// Closes with a TCP reset (RST, not FIN): a zero linger.
#[allow(deprecated)] // tokio deprecates `set_linger` because a non-zero linger blocks; zero does not
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// The next request of a keep-alive connection (plain, or TLS for the signaling endpoint);
/// `Ok(None)` when the client closed it, `Err` with the answer to a malformed one.
pub(crate) async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, Response> {
    let bad = |why: &str| Response::new(400, "text/plain", why.to_owned());
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("request head too large"));
        }
        if !fill(stream, buf).await {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target)) = (first.next(), first.next()) else {
        return Err(bad("malformed request line"));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        // RFC 9112 §5.1: whitespace between a field's name and its colon MUST be refused
        // with 400 (one reader's `Content-Length :` is another's unknown field).
        if name.ends_with([' ', '\t']) {
            return Err(bad("whitespace before a header's colon"));
        }
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    buf.drain(..end + 4);
    // Refused before the go-ahead below: the client need not send a body nobody reads.
    let framing = framing(&headers).map_err(bad)?;
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    // curl and others wait for a go-ahead before they send a larger body.
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let body = match framing {
        Framing::Chunked => read_chunked(stream, buf).await?,
        Framing::Length(len) => {
            if len > MAX_BODY {
                return Err(Response::new(413, "text/plain", "body too large"));
            }
            while buf.len() < len {
                if !fill(stream, buf).await {
                    return Ok(None);
                }
            }
            buf.drain(..len).collect()
        }
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

/// How a request's body is delimited.
enum Framing {
    /// `Content-Length` bytes (0 without the header).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The body's framing, or why the request is refused (400, then the connection closes): a
/// request whose body length two readers could read differently is the request-smuggling
/// shape (RFC 9112 §11.2), so nothing ambiguous is guessed at.
fn framing(headers: &[(String, String)]) -> Result<Framing, &'static str> {
    let values = |name: &str| {
        headers
            .iter()
            .filter(move |(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let lengths = values("content-length");
    let codings = values("transfer-encoding");
    if !codings.is_empty() {
        // RFC 9112 §6.1: a server MAY reject a request with both (§6.3: "ought to be handled
        // as an error").
        if !lengths.is_empty() {
            return Err("both content-length and transfer-encoding");
        }
        // RFC 9112 §6.3: chunked not the final coding, the length cannot be known: 400.
        return match codings.last() {
            Some(last) if last.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err("transfer-encoding does not end with chunked"),
        };
    }
    match lengths.as_slice() {
        [] => Ok(Framing::Length(0)),
        // Content-Length = 1*DIGIT (RFC 9110 §8.6); `usize::from_str` would also take "+5".
        [one] if !one.is_empty() && one.bytes().all(|b| b.is_ascii_digit()) => one
            .parse()
            .map(Framing::Length)
            .map_err(|_| "bad content-length"),
        [_] => Err("bad content-length"),
        // RFC 9112 §6.3: differing values make the framing invalid (400); identical ones a
        // recipient MAY reject as well (RFC 9110 §8.6), and no client sends them.
        _ => Err("more than one content-length"),
    }
}

async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Vec<u8>, Response> {
    let bad = || Response::new(400, "text/plain", "malformed chunked body");
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
                break at;
            }
            if !fill(stream, buf).await {
                return Err(bad());
            }
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers (rare) end with an empty line.
            loop {
                if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
                    let empty = at == 0;
                    buf.drain(..at + 2);
                    if empty {
                        return Ok(body);
                    }
                    continue;
                }
                if !fill(stream, buf).await {
                    return Err(bad());
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(Response::new(413, "text/plain", "body too large"));
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf).await {
                return Err(bad());
            }
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// Reads more bytes; `false` at end of stream or on an error.
async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}
