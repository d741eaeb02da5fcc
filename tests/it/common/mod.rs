//! A minimal HTTP/1.1 server side for tests that need faults httpmock cannot make: resets,
//! stalls, truncated and oversized bodies.
#![allow(dead_code)] // each test crate uses a part
pub mod callback;
pub mod captured;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one request: its head (lowercased) and its `content-length` body. `None` when the
/// client went away first.
pub async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return Some((head, buf[end + 4..end + 4 + len].to_vec()));
        }
    }
}

/// A response head that closes the connection afterwards.
pub fn head(status: u16, content_type: &str, len: usize) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    )
}

/// Writes a whole response.
pub async fn answer(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let _ = stream
        .write_all(head(status, content_type, body.len()).as_bytes())
        .await;
    let _ = stream.write_all(body).await;
    let _ = stream.flush().await;
}

/// Closes with a TCP reset. A zero linger does not block, which is what tokio's deprecation
/// of `set_linger` warns about.
#[allow(deprecated)]
pub fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}
